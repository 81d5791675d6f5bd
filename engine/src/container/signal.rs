//! Signal names as Docker accepts them: `KILL`, `SIGKILL`, `sigkill`, `9`, `SIGRTMIN+3`.

use super::ContainerError;

const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// Parses a signal name or number; an empty string is SIGKILL (Docker's kill default).
pub fn parse(s: &str) -> Result<i32, ContainerError> {
    let bad = || ContainerError::Invalid(format!("Invalid signal: {s}"));
    if s.is_empty() {
        return Ok(libc::SIGKILL);
    }
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some((_, n)) = SIGNALS.iter().find(|(k, _)| *k == name) {
        return Ok(*n);
    }
    let rt = |base: i32, off: &str| -> Result<i32, ContainerError> {
        let o: i32 = if off.is_empty() {
            0
        } else {
            off.parse().map_err(|_| bad())?
        };
        let n = base + o;
        if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        }
    };
    if let Some(r) = name.strip_prefix("RTMIN") {
        return rt(libc::SIGRTMIN(), r.strip_prefix('+').unwrap_or(r));
    }
    if let Some(r) = name.strip_prefix("RTMAX") {
        let o: i32 = if r.is_empty() {
            0
        } else {
            r.parse().map_err(|_| bad())?
        };
        return rt(libc::SIGRTMAX() + o.min(0), "");
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGTERM").unwrap(), 15);
        assert_eq!(parse("sighup").unwrap(), 1);
        assert_eq!(parse("10").unwrap(), 10);
        assert_eq!(parse("").unwrap(), 9);
        assert_eq!(parse("SIGRTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        assert_eq!(parse("FOO").unwrap_err().to_string(), "Invalid signal: FOO");
        assert!(parse("0").is_err());
    }
}
