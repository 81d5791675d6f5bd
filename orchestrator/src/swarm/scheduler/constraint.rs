//! Placement constraints (`node.labels.zone==east`) parsed once per task group and matched
//! against nodes the way swarmkit does: keys and values compare case-insensitively, a missing
//! label reads as the empty string, an unknown key never matches.

use bollard_stubs::models::{Node, NodeSpecRoleEnum};

/// One parsed `key==value` or `key!=value` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    key: Key,
    equal: bool,
    value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Id,
    Hostname,
    Role,
    Os,
    Arch,
    NodeLabel(String),
    EngineLabel(String),
    Unknown,
}

/// A constraint expression that is neither `a==b` nor `a!=b`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid constraint {0:?}: expected key==value or key!=value")]
pub struct InvalidConstraint(pub String);

impl Constraint {
    /// Parses one expression.
    pub fn parse(expr: &str) -> Result<Self, InvalidConstraint> {
        let (key, equal, value) = if let Some((k, v)) = expr.split_once("==") {
            (k, true, v)
        } else if let Some((k, v)) = expr.split_once("!=") {
            (k, false, v)
        } else {
            return Err(InvalidConstraint(expr.to_string()));
        };
        let key = key.trim();
        let lower = key.to_ascii_lowercase();
        let key = match lower.as_str() {
            "node.id" => Key::Id,
            "node.hostname" => Key::Hostname,
            "node.role" => Key::Role,
            "node.platform.os" => Key::Os,
            "node.platform.arch" => Key::Arch,
            // Label names keep their case: swarmkit looks them up exactly.
            _ if lower.starts_with("node.labels.") => {
                Key::NodeLabel(key["node.labels.".len()..].to_string())
            }
            _ if lower.starts_with("engine.labels.") => {
                Key::EngineLabel(key["engine.labels.".len()..].to_string())
            }
            _ => Key::Unknown,
        };
        Ok(Constraint {
            key,
            equal,
            value: value.trim().to_string(),
        })
    }

    /// Parses a list; an invalid entry disables nothing and matches no node, as a constraint
    /// that cannot be understood must not place a task anywhere.
    pub fn parse_all(exprs: &[String]) -> Vec<Constraint> {
        exprs
            .iter()
            .map(|e| {
                Constraint::parse(e).unwrap_or(Constraint {
                    key: Key::Unknown,
                    equal: true,
                    value: String::new(),
                })
            })
            .collect()
    }

    /// True when `node` satisfies this expression.
    pub fn matches(&self, node: &Node) -> bool {
        let desc = node.description.as_ref();
        let spec = node.spec.as_ref();
        let found: Option<&str> = match &self.key {
            Key::Id => node.id.as_deref(),
            Key::Hostname => desc.and_then(|d| d.hostname.as_deref()),
            Key::Role => Some(match spec.and_then(|s| s.role) {
                Some(NodeSpecRoleEnum::MANAGER) => "manager",
                _ => "worker",
            }),
            Key::Os => desc
                .and_then(|d| d.platform.as_ref())
                .and_then(|p| p.os.as_deref()),
            Key::Arch => desc
                .and_then(|d| d.platform.as_ref())
                .and_then(|p| p.architecture.as_deref()),
            Key::NodeLabel(l) => spec
                .and_then(|s| s.labels.as_ref())
                .and_then(|m| m.get(l))
                .map(String::as_str),
            Key::EngineLabel(l) => desc
                .and_then(|d| d.engine.as_ref())
                .and_then(|e| e.labels.as_ref())
                .and_then(|m| m.get(l))
                .map(String::as_str),
            Key::Unknown => return false,
        };
        let same = self.value.eq_ignore_ascii_case(found.unwrap_or(""));
        same == self.equal
    }
}

/// True when `node` satisfies every constraint.
pub fn all_match(constraints: &[Constraint], node: &Node) -> bool {
    constraints.iter().all(|c| c.matches(node))
}
