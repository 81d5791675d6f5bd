//! `healthcheck` as the Engine API's `HealthConfig` (compose's `ToMobyHealthCheck`).

use bollard_stubs::models::HealthConfig;
use compose_spec::model::Service;

use super::invalid;
use crate::compose::error::Result;

/// The health check; `None` keeps the image's. Durations are nanoseconds, zero meaning "the
/// engine's default", as the API's omitted fields do.
pub(super) fn config(s: &Service) -> Result<Option<HealthConfig>> {
    let Some(h) = &s.healthcheck else {
        return Ok(None);
    };
    if h.start_interval.is_some() && h.start_period.is_none() {
        // moby/moby#48874: the engine ignores start_interval without a start period.
        return Err(invalid(
            s,
            "healthcheck.start_interval",
            "requires healthcheck.start_period to be set",
        ));
    }
    let test = if h.disable {
        vec!["NONE".to_string()]
    } else {
        h.test.clone()
    };
    let ns = |d: Option<compose_spec::model::Duration>| d.map(|d| d.0).filter(|&n| n != 0);
    Ok(Some(HealthConfig {
        test: (!test.is_empty()).then_some(test),
        interval: ns(h.interval),
        timeout: ns(h.timeout),
        start_period: ns(h.start_period),
        start_interval: ns(h.start_interval),
        retries: h.retries.map(|r| r as i64).filter(|&r| r != 0),
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn test_forms_and_durations() {
        let p = project(
            "services:\n  a:\n    image: x\n    healthcheck:\n      test: [CMD, 'true']\n      interval: 1m\n      timeout: 500ms\n      start_period: 2s\n      start_interval: 1s\n      retries: 4\n  b:\n    image: x\n    healthcheck:\n      test: curl -f localhost\n  c:\n    image: x\n    healthcheck:\n      test: [CMD-SHELL, exit 0]\n  d:\n    image: x\n    healthcheck:\n      disable: true\n  e:\n    image: x\n    healthcheck:\n      test: [NONE]\n  f:\n    image: x\n",
        );
        let a = convert(&p, "a").body.healthcheck.unwrap();
        assert_eq!(a.test, Some(vec!["CMD".to_string(), "true".to_string()]));
        assert_eq!(a.interval, Some(60_000_000_000));
        assert_eq!(a.timeout, Some(500_000_000));
        assert_eq!(a.start_period, Some(2_000_000_000));
        assert_eq!(a.start_interval, Some(1_000_000_000));
        assert_eq!(a.retries, Some(4));
        let b = convert(&p, "b").body.healthcheck.unwrap();
        assert_eq!(
            b.test,
            Some(vec![
                "CMD-SHELL".to_string(),
                "curl -f localhost".to_string()
            ])
        );
        assert_eq!(b.interval, None);
        let c = convert(&p, "c").body.healthcheck.unwrap();
        assert_eq!(c.test.unwrap()[0], "CMD-SHELL");
        let d = convert(&p, "d").body.healthcheck.unwrap();
        assert_eq!(d.test, Some(vec!["NONE".to_string()]));
        let e = convert(&p, "e").body.healthcheck.unwrap();
        assert_eq!(e.test, Some(vec!["NONE".to_string()]));
        assert!(convert(&p, "f").body.healthcheck.is_none());
    }

    #[test]
    fn start_interval_needs_start_period() {
        let p = project(
            "services:\n  a:\n    image: x\n    healthcheck:\n      test: [CMD, 'true']\n      start_interval: 1s\n",
        );
        assert_err(&p, "a", &["\"a\"", "start_period"]);
    }
}
