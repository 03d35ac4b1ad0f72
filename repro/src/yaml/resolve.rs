//! ruamel.yaml's YAML 1.2 implicit resolver: which plain scalars are not strings.

use std::sync::OnceLock;

use regex::Regex;

/// The implicit types a plain scalar can resolve to (strings are everything else).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Implicit {
    Null,
    Bool,
    Int,
    Float,
    Other,
}

struct Rule {
    kind: Implicit,
    first: &'static str,
    re: Regex,
}

fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        let rule = |kind, first, re: &str| Rule { kind, first, re: Regex::new(re).expect("valid regex") };
        vec![
            rule(Implicit::Bool, "tTfF", r"^(?:true|True|TRUE|false|False|FALSE)$"),
            rule(
                Implicit::Float,
                "-+0123456789.",
                r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)|[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
            ),
            rule(
                Implicit::Int,
                "-+0123456789",
                r"^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?[0-9_]+|[-+]?0x[0-9a-fA-F_]+)$",
            ),
            rule(Implicit::Other, "<", r"^(?:<<)$"),
            rule(Implicit::Null, "~nN", r"^(?:~|null|Null|NULL)$"),
            rule(
                Implicit::Other,
                "0123456789",
                r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
            ),
            rule(Implicit::Other, "=", r"^(?:=)$"),
        ]
    })
}

/// What a plain scalar with this text resolves to; `None` means a string.
pub fn resolve(text: &str) -> Option<Implicit> {
    let Some(first) = text.chars().next() else { return Some(Implicit::Null) };
    rules().iter().find(|r| r.first.contains(first) && r.re.is_match(text)).map(|r| r.kind)
}

/// True when `text`, written plain, would be read back as something other than a string.
pub fn resolves_to_non_str(text: &str) -> bool {
    resolve(text).is_some()
}
