//! Building [`Node`] trees from parser events, with anchors, aliases, merge keys and tags.
//!
//! The builder keeps its own stack instead of recursing, refuses documents nested deeper than a
//! limit (so later recursive passes cannot overflow the stack), and charges every node an alias
//! expands to against a budget (so a "billion laughs" document is an error, not an OOM).

use std::collections::HashMap;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle as YamlStyle, Span};

use super::node::{Key, Location, Mapping, Node, Resolved, Scalar, ScalarStyle, Tag, Value};

/// Bounds on what a document may cost to load.
#[derive(Clone, Copy, Debug)]
pub struct ParseLimits {
    /// Deepest nesting of sequences and mappings.
    pub max_depth: usize,
    /// Most nodes that aliases may expand to in one document.
    pub max_alias_nodes: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_depth: 128,
            max_alias_nodes: 1_000_000,
        }
    }
}

/// Why a YAML document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The text is not valid YAML.
    #[error("{loc}: {message}")]
    Syntax {
        /// Where the parser stopped.
        loc: Location,
        /// The parser's explanation.
        message: String,
    },
    /// The same key twice in one mapping.
    #[error("{loc}: mapping key \"{key}\" already defined at line {first_line}")]
    DuplicateKey {
        /// The second occurrence.
        loc: Location,
        /// The key.
        key: String,
        /// Line of the first occurrence.
        first_line: u32,
    },
    /// A key that is a number, boolean, null or collection.
    #[error("{loc}: non-string key {where_}: {key}")]
    NonStringKey {
        /// Where the key is.
        loc: Location,
        /// "at top level" or "in services.web".
        where_: String,
        /// The key as written.
        key: String,
    },
    /// Nesting beyond [`ParseLimits::max_depth`].
    #[error("{loc}: document nests deeper than {max} levels")]
    TooDeep {
        /// Where the limit was crossed.
        loc: Location,
        /// The limit.
        max: usize,
    },
    /// Aliases expanding beyond [`ParseLimits::max_alias_nodes`].
    #[error(
        "{loc}: aliases expand to more than {max} nodes; refusing a document that grows exponentially"
    )]
    AliasBomb {
        /// The alias that crossed the budget.
        loc: Location,
        /// The budget.
        max: usize,
    },
    /// `<<: x` where x is not a mapping or a list of mappings.
    #[error("{loc}: merge key `<<` needs a mapping or a sequence of mappings")]
    BadMerge {
        /// The merge value.
        loc: Location,
    },
}

impl ParseError {
    /// Where the error is.
    pub fn location(&self) -> &Location {
        match self {
            ParseError::Syntax { loc, .. }
            | ParseError::DuplicateKey { loc, .. }
            | ParseError::NonStringKey { loc, .. }
            | ParseError::TooDeep { loc, .. }
            | ParseError::AliasBomb { loc, .. }
            | ParseError::BadMerge { loc } => loc,
        }
    }
}

/// Parse every document of a YAML stream. An empty stream gives no documents; an empty document
/// gives a `null` node.
pub fn parse_documents(
    text: &str,
    file: &Arc<str>,
    limits: ParseLimits,
) -> Result<Vec<Node>, ParseError> {
    let mut b = Builder {
        file: file.clone(),
        limits,
        stack: Vec::new(),
        anchors: HashMap::new(),
        alias_nodes: 0,
        docs: Vec::new(),
        root: None,
    };
    if text.len() < PIPELINE_MIN_BYTES {
        for event in Parser::new_from_str(text) {
            b.feed(event)?;
        }
        return Ok(b.docs);
    }
    // Scanning and building cost about the same on large files: scan on a second thread and
    // hand events over in batches, so the two overlap.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<ParserItem<'_>>>(PIPELINE_DEPTH);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut batch = Vec::with_capacity(PIPELINE_BATCH);
            for event in Parser::new_from_str(text) {
                let stop = event.is_err();
                batch.push(event);
                if batch.len() == PIPELINE_BATCH || stop {
                    // A closed channel means the builder gave up on an error: stop scanning.
                    if tx.send(std::mem::take(&mut batch)).is_err() || stop {
                        return;
                    }
                    batch.reserve(PIPELINE_BATCH);
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
        });
        // `rx` moves into this closure and is dropped when it returns, even on an error, so the
        // scanning thread never blocks on a full channel.
        let build = move || -> Result<Vec<Node>, ParseError> {
            for batch in rx {
                for event in batch {
                    b.feed(event)?;
                }
            }
            Ok(b.docs)
        };
        build()
    })
}

/// Files smaller than this are parsed on the calling thread alone.
const PIPELINE_MIN_BYTES: usize = 64 * 1024;
/// Events per batch handed from the scanning thread to the builder.
const PIPELINE_BATCH: usize = 2048;
/// Batches in flight.
const PIPELINE_DEPTH: usize = 8;

type ParserItem<'a> = Result<(Event<'a>, Span), saphyr_parser::ScanError>;

/// One path segment of the node being built, for error messages.
enum Seg {
    Root,
    Key(String),
    Index(usize),
}

enum Frame {
    Seq {
        node: Node,
        items: Vec<Node>,
        anchor: usize,
        count: usize,
        seg: Seg,
    },
    Map {
        node: Node,
        map: Mapping,
        key: Option<Key>,
        merges: Vec<Node>,
        anchor: usize,
        count: usize,
        seg: Seg,
    },
}

struct Builder {
    file: Arc<str>,
    limits: ParseLimits,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Node, usize)>,
    alias_nodes: usize,
    docs: Vec<Node>,
    root: Option<Node>,
}

const MERGE_KEY: &str = "<<";

impl Builder {
    fn loc(&self, span: Span) -> Location {
        Location {
            file: self.file.clone(),
            line: span.start.line() as u32,
            column: span.start.col() as u32 + 1,
        }
    }

    fn feed(&mut self, item: ParserItem<'_>) -> Result<(), ParseError> {
        match item {
            Ok((ev, span)) => self.event(ev, span),
            Err(e) => {
                let m = e.marker();
                Err(ParseError::Syntax {
                    loc: Location {
                        file: self.file.clone(),
                        line: m.line() as u32,
                        column: m.col() as u32 + 1,
                    },
                    message: e.info().to_string(),
                })
            }
        }
    }

    fn event(&mut self, ev: Event<'_>, span: Span) -> Result<(), ParseError> {
        match ev {
            Event::Nothing | Event::StreamStart | Event::StreamEnd => {}
            Event::DocumentStart(_) => {
                self.anchors.clear();
                self.alias_nodes = 0;
                self.root = None;
            }
            Event::DocumentEnd => {
                let loc = self.loc(span);
                let root = self.root.take().unwrap_or(Node::new(Value::Null, loc));
                self.docs.push(root);
            }
            Event::Alias(id) => {
                let loc = self.loc(span);
                let Some((node, count)) = self.anchors.get(&id) else {
                    return Err(ParseError::Syntax {
                        loc,
                        message: "unknown anchor".into(),
                    });
                };
                let (mut node, count) = (node.clone(), *count);
                self.alias_nodes += count;
                if self.alias_nodes > self.limits.max_alias_nodes {
                    return Err(ParseError::AliasBomb {
                        loc,
                        max: self.limits.max_alias_nodes,
                    });
                }
                node.loc = loc;
                self.complete(node, 0, count)?;
            }
            Event::Scalar(text, style, anchor, tag) => {
                let loc = self.loc(span);
                let (tag, force_string) = convert_tag(tag.as_deref());
                let quoted = force_string || style != YamlStyle::Plain;
                let value = if !quoted && matches!(&*text, "" | "~" | "null" | "Null" | "NULL") {
                    Value::Null
                } else {
                    Value::Scalar(Scalar {
                        text: text.into_owned(),
                        style: if quoted {
                            ScalarStyle::Quoted
                        } else {
                            ScalarStyle::Plain
                        },
                    })
                };
                let node = Node { value, loc, tag };
                self.complete(node, anchor, 1)?;
            }
            Event::SequenceStart(anchor, tag) => {
                let node = self.open(tag.as_deref(), span)?;
                let seg = self.next_seg();
                self.stack.push(Frame::Seq {
                    node,
                    items: Vec::new(),
                    anchor,
                    count: 1,
                    seg,
                });
            }
            Event::MappingStart(anchor, tag) => {
                let node = self.open(tag.as_deref(), span)?;
                let seg = self.next_seg();
                self.stack.push(Frame::Map {
                    node,
                    map: Mapping::default(),
                    key: None,
                    merges: Vec::new(),
                    anchor,
                    count: 1,
                    seg,
                });
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq {
                    mut node,
                    items,
                    anchor,
                    count,
                    ..
                }) = self.stack.pop()
                {
                    node.value = Value::Seq(items);
                    self.complete(node, anchor, count)?;
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    mut node,
                    mut map,
                    merges,
                    anchor,
                    count,
                    ..
                }) = self.stack.pop()
                {
                    apply_merges(&mut map, merges)?;
                    node.value = Value::Map(map);
                    self.complete(node, anchor, count)?;
                }
            }
        }
        Ok(())
    }

    fn open(&mut self, tag: Option<&saphyr_parser::Tag>, span: Span) -> Result<Node, ParseError> {
        let loc = self.loc(span);
        if self.stack.len() >= self.limits.max_depth {
            return Err(ParseError::TooDeep {
                loc,
                max: self.limits.max_depth,
            });
        }
        let (tag, _) = convert_tag(tag);
        Ok(Node {
            value: Value::Null,
            loc,
            tag,
        })
    }

    /// The path segment the next value will occupy in its parent.
    fn next_seg(&self) -> Seg {
        match self.stack.last() {
            None => Seg::Root,
            Some(Frame::Seq { items, .. }) => Seg::Index(items.len()),
            Some(Frame::Map { key: Some(k), .. }) => Seg::Key(k.name.clone()),
            // A collection used as a key: reported as a non-string key when it completes.
            Some(Frame::Map { key: None, .. }) => Seg::Root,
        }
    }

    /// Dotted path of the innermost open mapping, as compose-go prints it.
    fn path(&self) -> String {
        let mut out = String::new();
        for frame in &self.stack {
            let seg = match frame {
                Frame::Seq { seg, .. } | Frame::Map { seg, .. } => seg,
            };
            match seg {
                Seg::Root => {}
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

    /// Attach a finished node to its parent (or make it the document root).
    fn complete(&mut self, node: Node, anchor: usize, count: usize) -> Result<(), ParseError> {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), count));
        }
        // The dotted path is only needed to report a non-string key; building it for every
        // node made parsing allocation-bound on large files.
        let key_is_bad = matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
            && !matches!(&node.value, Value::Scalar(s) if matches!(s.resolve(), Resolved::Str(_)));
        let path = if key_is_bad {
            self.path()
        } else {
            String::new()
        };
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq {
                items, count: c, ..
            }) => {
                *c += count;
                items.push(node);
            }
            Some(Frame::Map {
                map,
                key,
                merges,
                count: c,
                ..
            }) => {
                *c += count;
                match key.take() {
                    None => *key = Some(key_of(node, &path)?),
                    Some(k) if k.name == MERGE_KEY => {
                        if !is_merge_source(&node) {
                            return Err(ParseError::BadMerge { loc: node.loc });
                        }
                        merges.push(node);
                    }
                    Some(k) => {
                        if let Some((first, _)) = map.get_key_value(k.name.as_str()) {
                            return Err(ParseError::DuplicateKey {
                                loc: k.loc.clone(),
                                key: k.name.clone(),
                                first_line: first.loc.line,
                            });
                        }
                        map.insert(k, node);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Turn a completed node into a mapping key, refusing anything that is not a string.
fn key_of(node: Node, path: &str) -> Result<Key, ParseError> {
    let where_ = if path.is_empty() {
        "at top level".to_string()
    } else {
        format!("in {path}")
    };
    match node.value {
        Value::Scalar(s) => match s.resolve() {
            Resolved::Str(_) => Ok(Key::new(s.text, node.loc)),
            _ => Err(ParseError::NonStringKey {
                loc: node.loc,
                where_,
                key: s.text,
            }),
        },
        Value::Null => Err(ParseError::NonStringKey {
            loc: node.loc,
            where_,
            key: "null".into(),
        }),
        Value::Seq(_) | Value::Map(_) => Err(ParseError::NonStringKey {
            loc: node.loc,
            where_,
            key: "a collection".into(),
        }),
    }
}

fn is_merge_source(node: &Node) -> bool {
    match &node.value {
        Value::Map(_) => true,
        Value::Seq(items) => items.iter().all(|n| matches!(n.value, Value::Map(_))),
        _ => false,
    }
}

/// Apply `<<` merge keys: explicit keys win, then earlier merge sources win over later ones.
fn apply_merges(map: &mut Mapping, merges: Vec<Node>) -> Result<(), ParseError> {
    for source in merges {
        let sources = match source.value {
            Value::Map(m) => vec![m],
            Value::Seq(items) => items
                .into_iter()
                .filter_map(|n| match n.value {
                    Value::Map(m) => Some(m),
                    _ => None,
                })
                .collect(),
            _ => return Err(ParseError::BadMerge { loc: source.loc }),
        };
        for m in sources {
            for (k, v) in m {
                if !map.contains_key(k.name.as_str()) {
                    map.insert(k, v);
                }
            }
        }
    }
    Ok(())
}

/// Map a YAML tag to a Compose tag; the bool says the scalar is forced to a string (`!!str`).
fn convert_tag(tag: Option<&saphyr_parser::Tag>) -> (Tag, bool) {
    let Some(tag) = tag else {
        return (Tag::None, false);
    };
    if tag.is_yaml_core_schema() {
        return (Tag::None, tag.suffix == "str");
    }
    match (tag.handle.as_str(), tag.suffix.as_str()) {
        ("!", "reset") => (Tag::Reset, false),
        ("!", "override") => (Tag::Override, false),
        _ => (Tag::Other(tag.to_string()), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Node>, ParseError> {
        parse_documents(text, &Arc::from("compose.yaml"), ParseLimits::default())
    }

    fn one(text: &str) -> Node {
        let mut docs = parse(text).unwrap();
        assert_eq!(docs.len(), 1);
        docs.remove(0)
    }

    #[test]
    fn locations_are_one_based() {
        let doc = one("services:\n  web:\n    image: nginx\n");
        let image = doc
            .get("services")
            .unwrap()
            .get("web")
            .unwrap()
            .get("image");
        let image = image.unwrap();
        assert_eq!((image.loc.line, image.loc.column), (3, 12));
        assert_eq!(image.loc.to_string(), "compose.yaml:3:12");
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let doc = one(
            "x-base: &base\n  image: busybox\n  restart: always\nservices:\n  a:\n    <<: *base\n    restart: 'no'\n",
        );
        let a = doc.get("services").unwrap().get("a").unwrap();
        assert_eq!(a.get("image").unwrap().as_str(), Some("busybox"));
        assert_eq!(a.get("restart").unwrap().as_str(), Some("no"));
    }

    #[test]
    fn merge_key_with_list_prefers_earlier_sources() {
        let doc = one("a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc:\n  <<: [*a, *b]\n");
        let c = doc.get("c").unwrap();
        assert_eq!(c.get("x").unwrap().to_json(), serde_json::json!(1));
        assert_eq!(c.get("y").unwrap().to_json(), serde_json::json!(2));
    }

    #[test]
    fn tags_reset_override_and_str() {
        let doc = one("a: !reset []\nb: !override {x: 1}\nc: !!str 123\n");
        assert_eq!(doc.get("a").unwrap().tag, Tag::Reset);
        assert_eq!(doc.get("b").unwrap().tag, Tag::Override);
        assert_eq!(doc.get("c").unwrap().as_str(), Some("123"));
    }

    #[test]
    fn non_string_keys_name_their_path() {
        let err = parse("services:\n  web:\n    environment:\n      1: x\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "compose.yaml:4:7: non-string key in services.web.environment: 1"
        );
        let err = parse("123: x\n").unwrap_err();
        assert!(err.to_string().contains("non-string key at top level: 123"));
        let err = parse("a:\n  b:\n    - 123: x\n").unwrap_err();
        assert!(
            err.to_string().contains("non-string key in a.b[0]: 123"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "compose.yaml:3:1: mapping key \"a\" already defined at line 1"
        );
    }

    #[test]
    fn syntax_errors_have_locations() {
        let err = parse("services:\n  web: [\n").unwrap_err();
        assert!(err.to_string().starts_with("compose.yaml:"), "{err}");
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(matches!(parse(&text), Err(ParseError::AliasBomb { .. })));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = "[".repeat(10_000);
        assert!(parse(&text).is_err());
    }

    #[test]
    fn documents_and_empty_input() {
        assert!(parse("").unwrap().is_empty());
        assert_eq!(parse("a: 1\n---\nb: 2\n").unwrap().len(), 2);
        assert!(one("---\n").is_null());
    }
}
