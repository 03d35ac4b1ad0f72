//! Plain YAML values with Python's equality and the scalar types DVC's params can hold.

use super::resolve::{Implicit, resolve};
use crate::pyjson::float_repr;

/// A loaded YAML value; mappings keep their order.
#[derive(Clone, Debug)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Map(Vec<(String, Value)>),
}

impl PartialEq for Value {
    /// Python's `==`: `1 == 1.0`, `True == 1`, mappings equal regardless of order.
    fn eq(&self, other: &Value) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) => true,
            (Str(a), Str(b)) => a == b,
            (List(a), List(b)) => a == b,
            (Map(a), Map(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| b.iter().any(|(k2, v2)| k == k2 && v == v2))
            }
            (a, b) => match (a.as_number(), b.as_number()) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            },
        }
    }
}

impl Value {
    fn as_number(&self) -> Option<f64> {
        match self {
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Resolves a plain scalar the way ruamel's YAML 1.2 safe loader does.
    pub fn resolve_plain(text: &str) -> Value {
        match resolve(text) {
            Some(Implicit::Null) => Value::Null,
            Some(Implicit::Bool) => Value::Bool(text.starts_with(['t', 'T'])),
            Some(Implicit::Int) => parse_int(text).map_or_else(|| Value::Str(text.into()), Value::Int),
            Some(Implicit::Float) => Value::Float(parse_float(text)),
            Some(Implicit::Other) | None => Value::Str(text.to_owned()),
        }
    }

    /// The text used when this value is a mapping key or interpolated into a string
    /// (Python's `str()`, with DVC's lowercase booleans).
    pub fn to_key(&self) -> String {
        match self {
            Value::Null => "None".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => float_repr(*f),
            Value::Str(s) => s.clone(),
            Value::List(_) | Value::Map(_) => crate::pyjson::dumps(self),
        }
    }

    /// Looks up a dotted key path (`train.lr`, `layers.0`) like DVC's `dpath.get`.
    pub fn get_path(&self, path: &str) -> Option<&Value> {
        path.split('.').try_fold(self, |v, part| match v {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == part).map(|(_, v)| v),
            Value::List(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
    }

    /// The entry `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string inside a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

fn parse_int(text: &str) -> Option<i64> {
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    let (neg, digits) = match clean.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let value = if let Some(b) = digits.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if let Some(x) = digits.strip_prefix("0x") {
        i64::from_str_radix(x, 16).ok()?
    } else if let Some(o) = digits.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else {
        digits.parse().ok()?
    };
    Some(if neg { -value } else { value })
}

fn parse_float(text: &str) -> f64 {
    let clean: String = text.chars().filter(|&c| c != '_').collect::<String>().to_ascii_lowercase();
    let (neg, body) = match clean.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let v = match body {
        ".inf" => f64::INFINITY,
        ".nan" => f64::NAN,
        b => b.parse().unwrap_or(f64::NAN),
    };
    if neg { -v } else { v }
}
