//! Interpolation over a node tree: every string value (never a key) is substituted, values of
//! typed attributes (`cpus`, `privileged`, `ports[].target`...) are cast as compose-go's
//! `interpolateTypeCastMapping` does, and unset variables are collected for warnings.

use indexmap::IndexMap;

use crate::error::{Error, Result};
use crate::interpolation::substitute;
use crate::yaml::{Node, Resolved, Scalar, Value};

#[derive(Clone, Copy)]
enum Cast {
    Int,
    Float,
    Bool,
}

/// Interpolate every string value of `node` with `env`; unset variable names are appended
/// to `unset`. The tree path is kept so errors read `services.web.image`.
pub(crate) fn interpolate(
    node: &mut Node,
    env: &IndexMap<String, String>,
    unset: &mut Vec<String>,
) -> Result<()> {
    let lookup = |name: &str| env.get(name).cloned();
    let Value::Map(top) = &mut node.value else {
        return walk(node, &mut Vec::new(), &lookup, unset);
    };
    for (key, value) in top.iter_mut() {
        match &mut value.value {
            Value::Map(services) if key.name == "services" => {
                let mut items: Vec<_> = services.iter_mut().collect();
                let unsets = crate::par::try_chunks(&mut items, Vec::new, |(name, svc), unset| {
                    let lookup = |name: &str| env.get(name).cloned();
                    let mut path = vec![Seg::Key("services"), Seg::Key(&name.name)];
                    walk(svc, &mut path, &lookup, unset)
                })?;
                unset.extend(unsets.into_iter().flatten());
            }
            _ => walk(value, &mut vec![Seg::Key(&key.name)], &lookup, unset)?,
        }
    }
    Ok(())
}

/// Substitute one string with `env` (used for the project `name`).
pub(crate) fn interpolate_str(
    text: &str,
    env: &IndexMap<String, String>,
    unset: &mut Vec<String>,
) -> std::result::Result<String, crate::interpolation::InterpolationError> {
    let lookup = |name: &str| env.get(name).cloned();
    let s = substitute(text, &lookup)?;
    unset.extend(s.unset);
    Ok(s.value)
}

/// One step of the path to a value; borrowed from the tree so walking allocates nothing.
#[derive(Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

impl Seg<'_> {
    fn key(&self) -> Option<&str> {
        match self {
            Seg::Key(k) => Some(k),
            Seg::Index(_) => None,
        }
    }
}

/// `services.web.ports[0].target`, only built for error messages.
fn path_string(path: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn walk<'a>(
    node: &'a mut Node,
    path: &mut Vec<Seg<'a>>,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<()> {
    match &mut node.value {
        Value::Map(m) => {
            for (k, v) in m.iter_mut() {
                path.push(Seg::Key(&k.name));
                let r = walk(v, path, lookup, unset);
                path.pop();
                r?;
            }
            Ok(())
        }
        Value::Seq(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                path.push(Seg::Index(i));
                let r = walk(v, path, lookup, unset);
                path.pop();
                r?;
            }
            Ok(())
        }
        Value::Scalar(s) => {
            // Most values have no `$` and no cast: skip them before typing the scalar.
            let cast = cast_for(path);
            if cast.is_none() && !s.text.contains('$') {
                return Ok(());
            }
            let Resolved::Str(text) = s.resolve() else {
                return Ok(());
            };
            let substituted = substitute(text, lookup).map_err(|source| Error::Interpolation {
                loc: node.loc.clone(),
                path: path_string(path),
                source,
            })?;
            unset.extend(substituted.unset);
            let value = substituted.value;
            *s = match cast {
                None => Scalar::string(value),
                Some(c) => Scalar::plain(apply_cast(c, &value).map_err(|message| Error::Cast {
                    loc: node.loc.clone(),
                    path: path_string(path),
                    message,
                })?),
            };
            Ok(())
        }
        Value::Null => Ok(()),
    }
}

fn apply_cast(cast: Cast, value: &str) -> std::result::Result<String, String> {
    match cast {
        Cast::Int => value
            .parse::<i64>()
            .map(|v| v.to_string())
            .map_err(|_| format!("strconv.Atoi: parsing {value:?}: invalid syntax")),
        Cast::Float => value
            .parse::<f64>()
            .map(|v| {
                let s = v.to_string();
                if s.contains(['.', 'e', 'E']) || !v.is_finite() {
                    s
                } else {
                    format!("{s}.0")
                }
            })
            .map_err(|_| format!("strconv.ParseFloat: parsing {value:?}: invalid syntax")),
        Cast::Bool => match value.to_ascii_lowercase().as_str() {
            "true" | "y" | "yes" | "on" => Ok("true".into()),
            "false" | "n" | "no" | "off" => Ok("false".into()),
            _ => Err(format!("invalid boolean: {value}")),
        },
    }
}

/// compose-go's `interpolateTypeCastMapping`.
fn cast_for(s: &[Seg<'_>]) -> Option<Cast> {
    let key = |i: usize| s.get(i).and_then(Seg::key);
    let is_item = |i: usize| matches!(s.get(i), Some(Seg::Index(_)));
    let k = |i: usize| key(i).unwrap_or("");
    match key(0)? {
        "services" => {}
        "networks" if s.len() == 3 => {
            return matches!(
                k(2),
                "external" | "internal" | "attachable" | "enable_ipv4" | "enable_ipv6"
            )
            .then_some(Cast::Bool);
        }
        "volumes" | "secrets" | "configs" if s.len() == 3 && k(2) == "external" => {
            return Some(Cast::Bool);
        }
        _ => return None,
    }
    match s.len() {
        3 => match k(2) {
            "cpu_count" | "cpu_period" | "cpu_quota" | "cpu_rt_period" | "cpu_rt_runtime"
            | "cpu_shares" | "oom_score_adj" | "pids_limit" | "scale" => Some(Cast::Int),
            "cpu_percent" | "cpus" => Some(Cast::Float),
            "init" | "oom_kill_disable" | "privileged" | "read_only" | "stdin_open" | "tty" => {
                Some(Cast::Bool)
            }
            _ => None,
        },
        4 => match (k(2), key(3)) {
            ("deploy", Some("replicas"))
            | ("healthcheck", Some("retries"))
            | ("ulimits", Some(_)) => Some(Cast::Int),
            ("healthcheck", Some("disable")) => Some(Cast::Bool),
            _ => None,
        },
        5 => match (k(2), k(3), k(4)) {
            ("depends_on", _, "required" | "restart") if !is_item(3) => Some(Cast::Bool),
            ("deploy", "update_config" | "rollback_config", "parallelism") => Some(Cast::Int),
            ("deploy", "update_config" | "rollback_config", "max_failure_ratio") => {
                Some(Cast::Float)
            }
            ("deploy", "restart_policy", "max_attempts") => Some(Cast::Int),
            ("deploy", "placement", "max_replicas_per_node") => Some(Cast::Int),
            ("ports", _, "target") if is_item(3) => Some(Cast::Int),
            ("ulimits", _, "hard" | "soft") if !is_item(3) => Some(Cast::Int),
            ("volumes", _, "read_only") if is_item(3) => Some(Cast::Bool),
            _ => None,
        },
        6 if k(2) == "volumes" && is_item(3) && k(4) == "volume" && k(5) == "nocopy" => {
            Some(Cast::Bool)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{ParseLimits, parse_documents};
    use std::sync::Arc;

    fn doc(text: &str) -> Node {
        parse_documents(text, &Arc::from("c.yaml"), ParseLimits::default())
            .unwrap()
            .remove(0)
    }

    #[test]
    fn values_not_keys_and_casts() {
        let mut n = doc(
            "services:\n  ${X}:\n    image: ${IMG:-nginx}\n    cpus: ${C}\n    privileged: 'yes'\n    ports:\n      - target: ${P}\n",
        );
        let env: IndexMap<String, String> = [("C", "1.5"), ("P", "80"), ("X", "nope")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let mut unset = Vec::new();
        interpolate(&mut n, &env, &mut unset).unwrap();
        let j = n.to_json();
        let web = &j["services"]["${X}"];
        assert_eq!(web["image"], "nginx");
        assert_eq!(web["cpus"], 1.5);
        assert_eq!(web["privileged"], true);
        assert_eq!(web["ports"][0]["target"], 80);
    }

    #[test]
    fn errors_name_the_path() {
        let mut n = doc("services:\n  web:\n    image: ${A:?need A}\n");
        let err = interpolate(&mut n, &IndexMap::new(), &mut Vec::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.yaml:3:12: error while interpolating services.web.image: required variable A is missing a value: need A"
        );
        let mut n = doc("services:\n  web:\n    cpus: abc\n");
        assert!(interpolate(&mut n, &IndexMap::new(), &mut Vec::new()).is_err());
    }
}
