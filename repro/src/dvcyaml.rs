//! dvc.yaml: stages with their commands, dependencies, params and outputs, after `vars`
//! and `${...}` interpolation. Unknown keys and bad values are errors with file and line.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::interp::Context;
use crate::yaml::{self, Node, NodeKind, Value};

/// The file name DVC reads a pipeline from.
pub const DVC_YAML: &str = "dvc.yaml";
/// The default params file, relative to a stage's wdir.
pub const PARAMS_YAML: &str = "params.yaml";

/// A stage command: one string (possibly several lines) or a list of commands.
#[derive(Clone, Debug, PartialEq)]
pub enum Cmd {
    One(String),
    Many(Vec<String>),
}

impl Cmd {
    /// The shell commands to run, one per line or list item, as DVC runs them.
    pub fn lines(&self) -> Vec<&str> {
        match self {
            Cmd::One(s) => s.lines().collect(),
            Cmd::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }

    /// The value DVC writes under `cmd:` in dvc.lock.
    pub fn to_value(&self) -> Value {
        match self {
            Cmd::One(s) => Value::Str(s.clone()),
            Cmd::Many(v) => Value::List(v.iter().cloned().map(Value::Str).collect()),
        }
    }
}

/// A dependency: a path as written in dvc.yaml (relative to wdir) and the line it is on.
#[derive(Clone, Debug)]
pub struct Dep {
    pub path: String,
    pub line: usize,
}

/// A params dependency: a file (relative to wdir) and the keys used, or all of it; `line`
/// is where the file is first named (for params.yaml, the line of its first key).
#[derive(Clone, Debug)]
pub struct ParamsDep {
    pub file: String,
    pub keys: Option<Vec<String>>,
    pub line: usize,
}

/// What kind of output an entry was declared as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutKind {
    Out,
    Metric,
    Plot,
}

/// One output with its options and the dvc.yaml line it is declared on.
#[derive(Clone, Debug)]
pub struct Out {
    pub path: String,
    pub line: usize,
    pub cache: bool,
    pub persist: bool,
    pub kind: OutKind,
}

/// One stage of dvc.yaml.
#[derive(Clone, Debug)]
pub struct Stage {
    pub name: String,
    pub line: usize,
    pub cmd: Cmd,
    /// The working directory relative to the repo root ("." for the root).
    pub wdir: String,
    /// The line of `wdir:`, or of the stage's name when it has none.
    pub wdir_line: usize,
    pub deps: Vec<Dep>,
    pub params: Vec<ParamsDep>,
    pub outs: Vec<Out>,
    pub frozen: bool,
    pub always_changed: bool,
}

const STAGE_KEYS: &[&str] =
    &["cmd", "wdir", "deps", "params", "outs", "metrics", "plots", "frozen", "always_changed", "desc", "meta", "vars"];
const OUT_KEYS: &[&str] = &[
    "cache", "persist", "desc", "remote", "push", "type", "labels", "meta", "x", "y", "template", "title", "x_label",
    "y_label", "header",
];

struct Parser<'a> {
    path: &'a Path,
}

impl Parser<'_> {
    fn err(&self, node: &Node, msg: impl Into<String>) -> Error {
        Error::Syntax { path: self.path.to_path_buf(), line: node.line, msg: msg.into() }
    }

    fn map<'n>(&self, node: &'n Node, what: &str) -> Result<&'n [(Node, Node)]> {
        match &node.kind {
            NodeKind::Map(entries) => Ok(entries),
            _ => Err(self.err(node, format!("{what} must be a mapping"))),
        }
    }

    fn list<'n>(&self, node: &'n Node, what: &str) -> Result<&'n [Node]> {
        match &node.kind {
            NodeKind::List(items) => Ok(items),
            _ => Err(self.err(node, format!("{what} must be a list"))),
        }
    }

    fn key<'n>(&self, node: &'n Node) -> Result<&'n str> {
        node.as_str().ok_or_else(|| self.err(node, "keys must be strings"))
    }

    fn string(&self, ctx: &Context, node: &Node, what: &str) -> Result<String> {
        let text = node.as_str().ok_or_else(|| self.err(node, format!("{what} must be a string")))?;
        match ctx.interpolate(text).map_err(|m| self.err(node, m))? {
            Value::Str(s) if !s.is_empty() => Ok(s),
            Value::Str(_) => Err(self.err(node, format!("{what} must not be empty"))),
            v @ (Value::Int(_) | Value::Float(_) | Value::Bool(_)) => Ok(v.to_key()),
            _ => Err(self.err(node, format!("{what} must be a string"))),
        }
    }

    fn boolean(&self, ctx: &Context, node: &Node, what: &str) -> Result<bool> {
        let v = match &node.kind {
            NodeKind::Scalar { text, .. } if text.contains("${") => {
                ctx.interpolate(text).map_err(|m| self.err(node, m))?
            }
            _ => node.to_value(),
        };
        match v {
            Value::Bool(b) => Ok(b),
            _ => Err(self.err(node, format!("{what} must be true or false"))),
        }
    }

    fn vars(&self, ctx: &mut Context, node: &Node, base: &Path) -> Result<()> {
        for item in self.list(node, "vars")? {
            match &item.kind {
                NodeKind::Map(_) => ctx.merge(&item.to_value()).map_err(|m| self.err(item, m))?,
                NodeKind::Scalar { text, .. } => {
                    let (file, keys) = match text.split_once(':') {
                        Some((f, k)) => (f, Some(k.split(',').map(str::trim).collect::<Vec<_>>())),
                        None => (text.as_str(), None),
                    };
                    let loaded = crate::params::load(&base.join(file))?;
                    let selected = match keys {
                        None => loaded,
                        Some(keys) => Value::Map(
                            keys.iter()
                                .map(|k| {
                                    loaded
                                        .get(k)
                                        .map(|v| ((*k).to_owned(), v.clone()))
                                        .ok_or_else(|| self.err(item, format!("'{k}' not found in '{file}'")))
                                })
                                .collect::<Result<_>>()?,
                        ),
                    };
                    ctx.merge(&selected).map_err(|m| self.err(item, m))?;
                }
                NodeKind::List(_) => return Err(self.err(item, "vars entries must be file names or mappings")),
            }
        }
        Ok(())
    }

    fn outs(&self, ctx: &Context, node: &Node, kind: OutKind, out: &mut Vec<Out>) -> Result<()> {
        let what = match kind {
            OutKind::Out => "outs",
            OutKind::Metric => "metrics",
            OutKind::Plot => "plots",
        };
        for item in self.list(node, what)? {
            let mut o = Out { path: String::new(), line: item.line, cache: true, persist: false, kind };
            match &item.kind {
                NodeKind::Scalar { .. } => o.path = self.string(ctx, item, what)?,
                NodeKind::Map(entries) if entries.len() == 1 => {
                    let (k, opts) = &entries[0];
                    o.path = self.string(ctx, k, what)?;
                    if !opts.is_null() {
                        for (ok, ov) in self.map(opts, "output options")? {
                            match self.key(ok)? {
                                "cache" => o.cache = self.boolean(ctx, ov, "cache")?,
                                "persist" => o.persist = self.boolean(ctx, ov, "persist")?,
                                k if OUT_KEYS.contains(&k) => {}
                                k => return Err(self.err(ok, format!("unknown output option `{k}`"))),
                            }
                        }
                    }
                }
                _ => return Err(self.err(item, format!("{what} entries must be a path or `path: {{options}}`"))),
            }
            out.push(o);
        }
        Ok(())
    }

    fn params(&self, ctx: &Context, node: &Node) -> Result<Vec<ParamsDep>> {
        let mut groups: Vec<ParamsDep> = Vec::new();
        let mut add =
            |file: String, keys: Option<Vec<String>>, line: usize| match groups.iter_mut().find(|g| g.file == file) {
                Some(g) => match (&mut g.keys, keys) {
                    (Some(have), Some(more)) => have.extend(more),
                    (slot, None) => *slot = None,
                    (None, Some(_)) => {}
                },
                None => groups.push(ParamsDep { file, keys, line }),
            };
        for item in self.list(node, "params")? {
            match &item.kind {
                NodeKind::Scalar { .. } => {
                    add(PARAMS_YAML.into(), Some(vec![self.string(ctx, item, "param")?]), item.line)
                }
                NodeKind::Map(entries) => {
                    for (k, v) in entries {
                        let file = self.string(ctx, k, "params file")?;
                        if v.is_null() {
                            add(file, None, k.line);
                            continue;
                        }
                        let keys = self
                            .list(v, "params keys")?
                            .iter()
                            .map(|n| self.string(ctx, n, "param"))
                            .collect::<Result<Vec<_>>>()?;
                        add(file, if keys.is_empty() { None } else { Some(keys) }, k.line);
                    }
                }
                NodeKind::List(_) => return Err(self.err(item, "params entries must be keys or `file: [keys]`")),
            }
        }
        Ok(groups)
    }

    fn stage(&self, ctx: &Context, root: &Path, name_node: &Node, node: &Node) -> Result<Stage> {
        let name = self.key(name_node)?;
        let entries = self.map(node, &format!("stage '{name}'"))?;
        let mut ctx = ctx.clone();
        if let Some((_, vars)) = entries.iter().find(|(k, _)| k.as_str() == Some("vars")) {
            self.vars(&mut ctx, vars, root)?;
        }
        let mut stage = Stage {
            name: name.to_owned(),
            line: name_node.line,
            cmd: Cmd::One(String::new()),
            wdir: ".".into(),
            wdir_line: name_node.line,
            deps: Vec::new(),
            params: Vec::new(),
            outs: Vec::new(),
            frozen: false,
            always_changed: false,
        };
        let mut has_cmd = false;
        for (k, v) in entries {
            match self.key(k)? {
                "cmd" => {
                    has_cmd = true;
                    stage.cmd = match &v.kind {
                        NodeKind::Scalar { .. } => Cmd::One(self.string(&ctx, v, "cmd")?),
                        NodeKind::List(items) if !items.is_empty() => {
                            Cmd::Many(items.iter().map(|n| self.string(&ctx, n, "cmd")).collect::<Result<_>>()?)
                        }
                        _ => return Err(self.err(v, "cmd must be a string or a non-empty list of strings")),
                    }
                }
                "wdir" => {
                    stage.wdir = self.string(&ctx, v, "wdir")?;
                    stage.wdir_line = v.line;
                }
                "deps" => {
                    stage.deps = self
                        .list(v, "deps")?
                        .iter()
                        .map(|n| Ok(Dep { path: self.string(&ctx, n, "dependency")?, line: n.line }))
                        .collect::<Result<_>>()?
                }
                "params" => stage.params = self.params(&ctx, v)?,
                "outs" => self.outs(&ctx, v, OutKind::Out, &mut stage.outs)?,
                "metrics" => self.outs(&ctx, v, OutKind::Metric, &mut stage.outs)?,
                "plots" => self.outs(&ctx, v, OutKind::Plot, &mut stage.outs)?,
                "frozen" => stage.frozen = self.boolean(&ctx, v, "frozen")?,
                "always_changed" => stage.always_changed = self.boolean(&ctx, v, "always_changed")?,
                "desc" | "meta" | "vars" => {}
                "foreach" | "do" | "matrix" => {
                    return Err(self.err(k, "`foreach`/`matrix` stages are not supported by this runner"));
                }
                other => {
                    return Err(self.err(
                        k,
                        format!("unknown key `{other}` in stage '{name}' (expected one of {})", STAGE_KEYS.join(", ")),
                    ));
                }
            }
        }
        if !has_cmd {
            return Err(self.err(name_node, format!("stage '{name}' has no `cmd`")));
        }
        Ok(stage)
    }
}

/// Reads and interpolates `root/dvc.yaml`.
pub fn load(root: &Path) -> Result<Vec<Stage>> {
    let path: PathBuf = root.join(DVC_YAML);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NoPipeline(root.to_path_buf())),
        Err(e) => return Err(Error::Io { path, source: e }),
    };
    let doc = yaml::load(&text, &path)?;
    let p = Parser { path: &path };
    let mut ctx = Context::default();
    let default_params = root.join(PARAMS_YAML);
    if default_params.is_file() {
        ctx.merge(&crate::params::load(&default_params)?).map_err(|m| p.err(&doc, m))?;
    }
    let mut stages = Vec::new();
    if doc.is_null() {
        return Ok(stages);
    }
    let top = p.map(&doc, "dvc.yaml")?;
    if let Some((_, vars)) = top.iter().find(|(k, _)| k.as_str() == Some("vars")) {
        p.vars(&mut ctx, vars, root)?;
    }
    for (k, v) in top {
        match p.key(k)? {
            "stages" => {
                for (name_node, def) in p.map(v, "stages")? {
                    let name = p.key(name_node)?;
                    if name.is_empty() || name.contains([':', '/', '@', '#']) {
                        return Err(p.err(name_node, format!("invalid stage name '{name}'")));
                    }
                    stages.push(p.stage(&ctx, root, name_node, def)?);
                }
            }
            "vars" | "plots" | "metrics" | "params" | "artifacts" | "datasets" => {}
            other => return Err(p.err(k, format!("unknown top-level key `{other}` in dvc.yaml"))),
        }
    }
    Ok(stages)
}
