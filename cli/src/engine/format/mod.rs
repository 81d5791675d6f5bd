//! Docker-like output: aligned tables, `--format` Go templates (`table ...` included), human
//! sizes and "2 minutes ago".

mod template;

pub use template::{Template, TemplateError};

use serde_json::Value;
use std::collections::BTreeMap;

/// Docker's `units.HumanSize`: decimal units, three significant digits.
pub fn human_size(size: f64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let (mut s, mut i) = (size, 0);
    while s >= 1000.0 && i < UNITS.len() - 1 {
        s /= 1000.0;
        i += 1;
    }
    let decimals = if s >= 100.0 {
        0
    } else if s >= 10.0 {
        1
    } else {
        2
    };
    let mut n = format!("{s:.decimals$}");
    if n.contains('.') {
        n = n.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{n}{}", UNITS[i])
}

/// Docker's `units.HumanDuration` + " ago".
pub fn ago(unix: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let s = (now - unix).max(0);
    let d = if s < 1 {
        "Less than a second".to_string()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if s / 60 == 1 {
        "About a minute".into()
    } else if s < 3600 {
        format!("{} minutes", s / 60)
    } else if s / 3600 == 1 {
        "About an hour".into()
    } else if s < 48 * 3600 {
        format!("{} hours", s / 3600)
    } else if s < 7 * 24 * 3600 * 2 {
        format!("{} days", s / 86400)
    } else if s < 30 * 24 * 3600 * 2 {
        format!("{} weeks", s / (7 * 86400))
    } else if s < 365 * 24 * 3600 * 2 {
        format!("{} months", s / (30 * 86400))
    } else {
        format!("{} years", s / (365 * 86400))
    };
    format!("{d} ago")
}

/// A row of named string fields.
pub type Row = BTreeMap<&'static str, String>;

/// Prints `rows` as a table with `columns` (header, field), or through a `--format` template.
pub fn print_rows(rows: &[Row], columns: &[(&str, &'static str)], format: Option<&str>) {
    match format {
        Some(f) if !f.starts_with("table") => {
            let t = Template::parse(f).unwrap_or_else(|e| fail_parse(&e, 1));
            for r in rows {
                println!("{}", render_parsed(&t, r));
            }
        }
        Some(f) => {
            let tmpl = f.trim_start_matches("table").trim_start();
            if tmpl.is_empty() {
                return print_rows(rows, columns, None);
            }
            let header: Row = columns
                .iter()
                .map(|(h, k)| (*k, (*h).to_string()))
                .collect();
            let t = Template::parse(tmpl).unwrap_or_else(|e| fail_parse(&e, 1));
            let mut lines = vec![render_parsed(&t, &header)];
            lines.extend(rows.iter().map(|r| render_parsed(&t, r)));
            print_aligned(&lines);
        }
        None => {
            let mut lines = vec![
                columns
                    .iter()
                    .map(|(h, _)| (*h).to_string())
                    .collect::<Vec<_>>()
                    .join("\t"),
            ];
            for r in rows {
                lines.push(
                    columns
                        .iter()
                        .map(|(_, k)| r.get(k).cloned().unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join("\t"),
                );
            }
            print_aligned(&lines);
        }
    }
}

/// Aligns tab-separated cells like Go's tabwriter (padding 3, minimum width 10 but last).
fn print_aligned(lines: &[String]) {
    let cells: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let ncol = cells.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; ncol];
    for row in &cells {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    for row in &cells {
        let mut out = String::new();
        for (i, c) in row.iter().enumerate() {
            if i + 1 == row.len() {
                out.push_str(c);
            } else {
                let w = (widths[i] + 3).max(10);
                out.push_str(c);
                out.push_str(&" ".repeat(w - c.chars().count()));
            }
        }
        println!("{}", out.trim_end());
    }
}

/// Renders a Go template against a row; `{{.Label "k"}}` reads the row's `Labels`.
// Part of the module's API for one-off rows; print_rows parses once for all its rows.
#[allow(dead_code)]
pub fn render(tmpl: &str, row: &Row) -> String {
    match Template::parse(tmpl) {
        Ok(t) => render_parsed(&t, row),
        Err(e) => fail_parse(&e, 1),
    }
}

/// Renders a Go template against a JSON value (used by `inspect -f`, `version -f`, `info -f`).
/// Docker's errors end the command: exit 64 for a parse error, 1 for an execution error.
pub fn render_value(tmpl: &str, v: &Value) -> String {
    match Template::parse(tmpl) {
        Ok(t) => t.execute(v).unwrap_or_else(|e| fail(&e)),
        Err(e) => fail_parse(&e, 64),
    }
}

fn render_parsed(t: &Template, row: &Row) -> String {
    let v = template::row_value(row.iter().map(|(k, v)| (*k, v.as_str())));
    t.execute(&v).unwrap_or_else(|e| fail(&e))
}

fn fail_parse(e: &TemplateError, code: i32) -> ! {
    eprintln!("template parsing error: {e}");
    std::process::exit(code)
}

fn fail(e: &TemplateError) -> ! {
    eprintln!("{e}");
    std::process::exit(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let mut r = Row::new();
        r.insert("Repository", "busybox".into());
        r.insert("Tag", "latest".into());
        assert_eq!(render("{{.Repository}}:{{.Tag}}", &r), "busybox:latest");
        assert_eq!(
            render("{{json .}}", &r),
            r#"{"Repository":"busybox","Tag":"latest"}"#
        );
        assert_eq!(human_size(1982398.0), "1.98MB");
    }
}
