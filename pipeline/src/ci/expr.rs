//! The small subset of the Actions expression language the local executor evaluates: context
//! lookups (`inputs.x`, `github.event_name`, `env.X`, `secrets.X`, `steps.id.outputs.k`),
//! string literals, `==` / `!=`, one kind of `&&` or `||` chain, and `always()`. Anything else
//! is an error naming the expression, never a silent guess.

use std::collections::BTreeMap;

use super::CiError;

/// Everything an expression can read.
#[derive(Debug, Default, Clone)]
pub struct Context {
    pub inputs: BTreeMap<String, String>,
    pub event_name: String,
    pub workspace: String,
    pub env: BTreeMap<String, String>,
    pub outputs: BTreeMap<String, BTreeMap<String, String>>,
}

impl Context {
    /// The value of one operand.
    fn value(&self, term: &str) -> Result<String, CiError> {
        let term = term.trim();
        if let Some(lit) = term.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
            return Ok(lit.replace("''", "'"));
        }
        if term == "always()" || term == "true" {
            return Ok("true".into());
        }
        if term == "false" {
            return Ok("false".into());
        }
        let lookup = |map: &BTreeMap<String, String>, key: &str| map.get(key).cloned().unwrap_or_default();
        if let Some(k) = term.strip_prefix("inputs.").or_else(|| term.strip_prefix("github.event.inputs.")) {
            return Ok(lookup(&self.inputs, k));
        }
        if let Some(k) = term.strip_prefix("env.") {
            return Ok(self.env.get(k).cloned().or_else(|| std::env::var(k).ok()).unwrap_or_default());
        }
        if let Some(k) = term.strip_prefix("secrets.") {
            return Ok(std::env::var(k).unwrap_or_default());
        }
        match term {
            "github.event_name" => return Ok(self.event_name.clone()),
            "github.workspace" => return Ok(self.workspace.clone()),
            _ => {}
        }
        if let Some(rest) = term.strip_prefix("steps.")
            && let Some((id, key)) = rest.split_once(".outputs.")
        {
            return Ok(self.outputs.get(id).map(|o| lookup(o, key)).unwrap_or_default());
        }
        Err(CiError::Expression(term.to_string()))
    }

    /// Evaluates an `if:` condition (with or without `${{ }}`).
    pub fn condition(&self, text: &str) -> Result<bool, CiError> {
        let inner = text.trim().strip_prefix("${{").and_then(|t| t.strip_suffix("}}")).unwrap_or(text).trim();
        let (parts, all): (Vec<&str>, bool) = match (inner.contains("&&"), inner.contains("||")) {
            (true, true) => return Err(CiError::Expression(inner.to_string())),
            (true, false) => (inner.split("&&").collect(), true),
            (false, _) => (inner.split("||").collect(), false),
        };
        let mut results = parts.iter().map(|p| self.comparison(p));
        if all {
            results.try_fold(true, |acc, r| Ok(acc && r?))
        } else {
            results.try_fold(false, |acc, r| Ok(acc || r?))
        }
    }

    fn comparison(&self, text: &str) -> Result<bool, CiError> {
        if let Some((l, r)) = text.split_once("!=") {
            return Ok(self.value(l)? != self.value(r)?);
        }
        if let Some((l, r)) = text.split_once("==") {
            return Ok(self.value(l)? == self.value(r)?);
        }
        let v = self.value(text)?;
        Ok(!v.is_empty() && v != "false" && v != "0")
    }

    /// Replaces every `${{ ... }}` in `text` with its value.
    pub fn substitute(&self, text: &str) -> Result<String, CiError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find("}}").ok_or_else(|| CiError::Expression(rest[start..].to_string()))?;
            out.push_str(&self.value(&rest[start + 3..start + end])?);
            rest = &rest[start + end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}
