//! `vars` and `${...}` interpolation in dvc.yaml, with params.yaml as the default context.

use crate::yaml::Value;

/// The values `${...}` can refer to: params.yaml, then `vars` entries, merged in order.
#[derive(Clone, Debug, Default)]
pub struct Context {
    root: Vec<(String, Value)>,
}

impl Context {
    /// Merges a mapping into the context; a key defined twice is an error, as in DVC.
    pub fn merge(&mut self, value: &Value) -> Result<(), String> {
        let Value::Map(entries) = value else {
            return Err("vars must be mappings or file names".into());
        };
        for (k, v) in entries {
            if self.root.iter().any(|(k2, _)| k2 == k) {
                return Err(format!("cannot redefine '{k}' in vars"));
            }
            self.root.push((k.clone(), v.clone()));
        }
        Ok(())
    }

    fn lookup(&self, key: &str) -> Option<&Value> {
        let normalized = key.replace('[', ".").replace(']', "");
        let (first, rest) = normalized.split_once('.').unwrap_or((&normalized, ""));
        let top = self.root.iter().find(|(k, _)| k == first).map(|(_, v)| v)?;
        if rest.is_empty() { Some(top) } else { top.get_path(rest) }
    }

    /// Interpolates one string: `${x}` alone yields x's value as is, otherwise every
    /// `${...}` is replaced by the value's text. `\${` stays a literal `${`.
    pub fn interpolate(&self, s: &str) -> Result<Value, String> {
        if !s.contains("${") {
            return Ok(Value::Str(s.to_owned()));
        }
        let trimmed = s.trim();
        if let Some(inner) = trimmed.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
            && !inner.contains("${")
            && !inner.contains('}')
        {
            return self.value_of(inner).cloned();
        }
        let mut out = String::new();
        let mut rest = s;
        while let Some(pos) = rest.find("${") {
            if pos > 0 && rest.as_bytes()[pos - 1] == b'\\' {
                out.push_str(&rest[..pos - 1]);
                out.push_str("${");
                rest = &rest[pos + 2..];
                continue;
            }
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 2..];
            let end = after.find('}').ok_or_else(|| format!("unclosed '${{' in '{s}'"))?;
            let value = self.value_of(&after[..end])?;
            match value {
                Value::List(_) | Value::Map(_) => {
                    return Err(format!("cannot interpolate a list or mapping '{}' into '{s}'", &after[..end]));
                }
                v => out.push_str(&v.to_key()),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(Value::Str(out))
    }

    fn value_of(&self, expr: &str) -> Result<&Value, String> {
        let key = expr.trim();
        self.lookup(key).ok_or_else(|| format!("could not find '{key}' (used in '${{{expr}}}')"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        let mut c = Context::default();
        let v = Value::Map(vec![
            ("train".into(), Value::Map(vec![("lr".into(), Value::Float(0.001)), ("ok".into(), Value::Bool(true))])),
            ("layers".into(), Value::List(vec![Value::Int(3), Value::Int(4)])),
        ]);
        c.merge(&v).unwrap();
        c
    }

    #[test]
    fn interpolates_like_dvc() {
        let c = ctx();
        let check = |s: &str, want: Value| assert_eq!(c.interpolate(s).unwrap(), want, "{s}");
        check("${train.lr}", Value::Float(0.001));
        check("lr=${ train.lr } ok=${train.ok}", Value::Str("lr=0.001 ok=true".into()));
        check("${layers[1]}-${layers.0}", Value::Str("4-3".into()));
        check(r"\${literal}", Value::Str("${literal}".into()));
        assert!(c.interpolate("${nope}").unwrap_err().contains("could not find 'nope'"));
        assert!(c.interpolate("x ${train}").is_err());
    }
}
