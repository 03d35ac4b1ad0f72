//! The INI dialects remotes are configured in: DVC's `.dvc/config` (configobj: indented keys,
//! `['remote "name"']` sections, quoted values) and AWS's `~/.aws/credentials` and
//! `~/.aws/config` (`[default]`, `[profile name]`). Sections and keys keep their file order.

use std::path::Path;

use super::RemoteError;

/// One `key = value`.
#[derive(Clone, Debug)]
pub struct Entry {
    pub key: String,
    pub value: String,
}

/// A parsed file: sections in order, each with its entries.
#[derive(Clone, Debug, Default)]
pub struct Ini {
    pub sections: Vec<(String, Vec<Entry>)>,
}

impl Ini {
    /// Reads `path`; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<Ini, RemoteError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ini::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ini::default()),
            Err(e) => Err(crate::Error::Io { path: path.to_path_buf(), source: e }.into()),
        }
    }

    /// Parses INI text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Ini, RemoteError> {
        let mut ini = Ini::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let err = |msg: &str| RemoteError::Config { path: path.to_path_buf(), line: i + 1, msg: msg.to_owned() };
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[') {
                let name = name.strip_suffix(']').ok_or_else(|| err("a section header must end with ']'"))?;
                ini.sections.push((unquote(name.trim()).to_owned(), Vec::new()));
                continue;
            }
            let (key, value) = line.split_once('=').ok_or_else(|| err("expected `key = value`"))?;
            let (_, entries) = ini.sections.last_mut().ok_or_else(|| err("a key before any [section]"))?;
            entries.push(Entry { key: key.trim().to_owned(), value: value_of(value.trim()).to_owned() });
        }
        Ok(ini)
    }

    /// The entries of the last section called `name`, if any.
    pub fn section(&self, name: &str) -> Option<&[Entry]> {
        self.sections.iter().rev().find(|(n, _)| n == name).map(|(_, e)| e.as_slice())
    }

    /// The value of `key` in section `name`.
    pub fn get(&self, name: &str, key: &str) -> Option<&str> {
        self.section(name)?.iter().rev().find(|e| e.key == key).map(|e| e.value.as_str())
    }
}

/// `'x'` or `"x"` → `x`.
fn unquote(s: &str) -> &str {
    for q in ['\'', '"'] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

/// A value without its quotes, or without a trailing ` # comment` when unquoted.
fn value_of(s: &str) -> &str {
    if s.starts_with(['\'', '"']) {
        let q = &s[..1];
        if let Some(end) = s[1..].find(q) {
            return &s[1..1 + end];
        }
    }
    match s.find(" #") {
        Some(at) => s[..at].trim_end(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dvc_and_aws_dialects() {
        let text = "[core]\n    remote = storage\n    autostage = true # a comment\n['remote \"storage\"']\n    url = s3://bucket/dvc\n    endpointurl = \"http://127.0.0.1:9000\"\n# skipped\n[profile ci]\naws_access_key_id=AKIA\n";
        let ini = Ini::parse(text, Path::new("config")).unwrap();
        assert_eq!(ini.get("core", "remote"), Some("storage"));
        assert_eq!(ini.get("core", "autostage"), Some("true"));
        assert_eq!(ini.get("remote \"storage\"", "url"), Some("s3://bucket/dvc"));
        assert_eq!(ini.get("remote \"storage\"", "endpointurl"), Some("http://127.0.0.1:9000"));
        assert_eq!(ini.get("profile ci", "aws_access_key_id"), Some("AKIA"));
        let err = Ini::parse("x = 1\n", Path::new("config")).unwrap_err().to_string();
        assert_eq!(err, "config:1: a key before any [section]");
    }
}
