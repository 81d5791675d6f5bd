//! Dotted paths into the node tree, matched against patterns such as `services.*.ports`.

use std::fmt;

/// The segment list items are matched with (compose-go's `[]`).
pub(crate) const LIST: &str = "[]";

/// A path from the document root, one segment per mapping key or `[]` per list item.
#[derive(Clone, Debug, Default)]
pub(crate) struct TreePath {
    segs: Vec<String>,
}

impl TreePath {
    /// The root path.
    pub(crate) fn root() -> Self {
        TreePath { segs: Vec::new() }
    }

    /// A path from literal segments.
    pub(crate) fn from_segments(segs: &[&str]) -> Self {
        TreePath {
            segs: segs.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Descend into a key or `[]`.
    pub(crate) fn push(&mut self, seg: &str) {
        self.segs.push(seg.to_string());
    }

    /// Climb back up.
    pub(crate) fn pop(&mut self) {
        self.segs.pop();
    }

    /// The segments.
    pub(crate) fn segments(&self) -> &[String] {
        &self.segs
    }

    /// Same length and every segment equal or `*` in the pattern.
    pub(crate) fn matches(&self, pattern: &[&str]) -> bool {
        self.segs.len() == pattern.len()
            && self
                .segs
                .iter()
                .zip(pattern)
                .all(|(s, p)| *p == "*" || s == p || (*p == LIST && s.starts_with('[')))
    }
}

impl fmt::Display for TreePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.segs {
            if s.starts_with('[') {
                f.write_str(s)?;
            } else {
                if !first {
                    f.write_str(".")?;
                }
                f.write_str(s)?;
            }
            first = false;
        }
        Ok(())
    }
}
