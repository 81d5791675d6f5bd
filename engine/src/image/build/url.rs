//! `ADD <url>`: the download, its file name and its `Last-Modified` time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Downloads `url`; returns the body and the `Last-Modified` time if the server sent one.
pub(super) fn fetch(
    rt: &tokio::runtime::Handle,
    url: &str,
) -> Result<(Vec<u8>, Option<SystemTime>), String> {
    rt.block_on(async {
        let resp = reqwest::Client::new()
            .get(url)
            .send()
            .await
            .map_err(|e| format!("failed to GET {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("failed to GET {url} with status {}", resp.status()));
        }
        let mtime = resp
            .headers()
            .get(reqwest::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date);
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("failed to read {url}: {e}"))?;
        Ok((body.to_vec(), mtime))
    })
}

/// The last path segment of a URL (`index.html` when there is none).
pub(super) fn file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let after_host = path
        .split_once("://")
        .map_or(path, |(_, rest)| rest)
        .split_once('/')
        .map_or("", |(_, p)| p);
    after_host
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or("index.html")
        .to_string()
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form HTTP servers send.
pub(super) fn parse_http_date(s: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, mon, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = months.iter().position(|x| x == mon)? as i64 + 1;
    let d: i64 = day.parse().ok()?;
    let y: i64 = year.parse().ok()?;
    let mut t = time.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_dates() {
        assert_eq!(file_name("http://127.0.0.1:80/a/b.txt?x=1"), "b.txt");
        assert_eq!(file_name("http://127.0.0.1:80/"), "index.html");
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(784_111_777))
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
