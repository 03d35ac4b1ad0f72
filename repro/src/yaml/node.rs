//! A YAML document as a tree of nodes that remember their line, for `file:line` errors.

use std::collections::HashMap;
use std::path::Path;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::Value;
use crate::error::{Error, Result};

/// One YAML node and the (1-based) line it starts on.
#[derive(Clone, Debug)]
pub struct Node {
    pub line: usize,
    pub kind: NodeKind,
}

/// The shape of a node; scalars keep their text and whether they were written plain.
#[derive(Clone, Debug)]
pub enum NodeKind {
    Scalar { text: String, plain: bool },
    List(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The scalar's text when this node is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// True for an empty plain scalar or `null`/`~`.
    pub fn is_null(&self) -> bool {
        matches!(self.to_value(), Value::Null)
    }

    /// Converts to a plain value, resolving plain scalars with YAML 1.2 rules.
    pub fn to_value(&self) -> Value {
        match &self.kind {
            NodeKind::Scalar { text, plain: true } => Value::resolve_plain(text),
            NodeKind::Scalar { text, plain: false } => Value::Str(text.clone()),
            NodeKind::List(items) => Value::List(items.iter().map(Node::to_value).collect()),
            NodeKind::Map(entries) => {
                Value::Map(entries.iter().map(|(k, v)| (k.to_value().to_key(), v.to_value())).collect())
            }
        }
    }
}

/// Parses the text of `path` into its first document (an empty document is `null`).
pub fn load(text: &str, path: &Path) -> Result<Node> {
    let mut builder = Builder::default();
    let syntax = |line: usize, msg: String| Error::Syntax { path: path.to_path_buf(), line, msg };
    Parser::new_from_str(text)
        .load(&mut builder, false)
        .map_err(|e| syntax(e.marker().line(), e.info().to_string()))?;
    if let Some((line, msg)) = builder.error {
        return Err(syntax(line, msg));
    }
    Ok(builder.root.unwrap_or(Node { line: 1, kind: NodeKind::Scalar { text: String::new(), plain: true } }))
}

#[derive(Default)]
struct Builder {
    stack: Vec<(Node, usize)>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    error: Option<(usize, String)>,
}

impl Builder {
    fn push(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let Some((parent, _)) = self.stack.last_mut() else {
            if self.root.is_none() {
                self.root = Some(node);
            }
            return;
        };
        match &mut parent.kind {
            NodeKind::List(items) => items.push(node),
            NodeKind::Map(entries) => {
                // A pending key is stored with a placeholder value until its value arrives.
                match entries.last_mut() {
                    Some((_, v)) if v.line == 0 => *v = node,
                    _ => {
                        let key = node.as_str().map(str::to_owned);
                        if let Some(key) = key {
                            let dup = entries.iter().any(|(k, _)| k.as_str() == Some(key.as_str()));
                            if dup && self.error.is_none() {
                                self.error = Some((node.line, format!("duplicate key `{key}`")));
                            }
                        }
                        let placeholder = Node { line: 0, kind: NodeKind::List(Vec::new()) };
                        entries.push((node, placeholder));
                    }
                }
            }
            NodeKind::Scalar { .. } => unreachable!("scalars have no children"),
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(text, style, anchor, _) => {
                let plain = style == TScalarStyle::Plain;
                self.push(Node { line, kind: NodeKind::Scalar { text, plain } }, anchor);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push((Node { line, kind: NodeKind::List(Vec::new()) }, anchor));
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push((Node { line, kind: NodeKind::Map(Vec::new()) }, anchor));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, anchor)) = self.stack.pop() {
                    self.push(node, anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    node.line = line;
                    self.push(node, 0);
                }
                None => {
                    self.error.get_or_insert((line, format!("unknown alias {id}")));
                }
            },
            _ => {}
        }
    }
}
