//! Block YAML written exactly like ruamel.yaml's round-trip dumper (width 80, indent 2,
//! sequences not indented under their key), which is how DVC writes `dvc.lock`.

use super::Value;
use super::resolve::resolves_to_non_str;
use crate::pyjson::float_repr;

const BEST_WIDTH: usize = 80;

/// Serializes a value as a YAML document, the way DVC's `dump_yaml` does.
pub fn dump(value: &Value) -> String {
    let mut e = Emitter { out: String::new(), column: 0, whitespace: true, indention: true };
    match value {
        Value::Map(entries) if !entries.is_empty() => e.map(entries, 0),
        Value::List(items) if !items.is_empty() => e.seq(items, 0),
        other => {
            e.value_inline(other, 0);
        }
    }
    if e.column != 0 {
        e.line_break();
    }
    e.out
}

#[derive(Clone, Copy, PartialEq)]
enum Style {
    Plain,
    Single,
    Double,
}

struct Emitter {
    out: String,
    column: usize,
    whitespace: bool,
    indention: bool,
}

impl Emitter {
    fn write(&mut self, s: &str) {
        self.column += s.chars().count();
        self.out.push_str(s);
    }

    fn line_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indent(&mut self, indent: usize) {
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.line_break();
        }
        if self.column < indent {
            self.whitespace = true;
            self.out.extend(std::iter::repeat_n(' ', indent - self.column));
            self.column = indent;
        }
    }

    fn indicator(&mut self, ind: &str, need_whitespace: bool, indention: bool) {
        if self.whitespace || !need_whitespace {
            self.write(ind);
        } else {
            self.write(&format!(" {ind}"));
        }
        self.whitespace = false;
        self.indention = self.indention && indention;
    }

    /// A block mapping whose keys start at column `col`; the first key may already have
    /// its position (right after a sequence dash).
    fn map(&mut self, entries: &[(String, Value)], col: usize) {
        for (key, value) in entries {
            self.write_indent(col);
            self.scalar_str(key, col + 2, false, true);
            self.indicator(":", false, false);
            match value {
                Value::Map(m) if !m.is_empty() => self.map(m, col + 2),
                Value::List(l) if !l.is_empty() => self.seq(l, col),
                v => self.value_inline(v, col + 2),
            }
        }
    }

    fn seq(&mut self, items: &[Value], col: usize) {
        for item in items {
            self.write_indent(col);
            self.indicator("-", true, true);
            match item {
                Value::Map(m) if !m.is_empty() => {
                    self.write_indent(col + 2);
                    self.map(m, col + 2);
                }
                Value::List(l) if !l.is_empty() => {
                    self.write_indent(col + 2);
                    self.seq(l, col + 2);
                }
                v => {
                    self.write_indent(col + 2);
                    self.value_inline(v, col + 2);
                }
            }
        }
    }

    fn value_inline(&mut self, value: &Value, indent: usize) {
        match value {
            Value::Null => {}
            Value::Bool(b) => self.plain(if *b { "true" } else { "false" }, indent, true),
            Value::Int(i) => self.plain(&i.to_string(), indent, true),
            Value::Float(f) => self.plain(&yaml_float(*f), indent, true),
            Value::Str(s) => self.scalar_str(s, indent, true, false),
            Value::List(_) => self.indicator("[]", true, false),
            Value::Map(_) => self.indicator("{}", true, false),
        }
    }

    fn scalar_str(&mut self, s: &str, indent: usize, split: bool, simple_key: bool) {
        match choose_style(s, simple_key) {
            Style::Plain => self.plain(s, indent, split),
            Style::Single => self.single_quoted(s, indent, split),
            Style::Double => self.double_quoted(s, indent, split),
        }
    }

    fn plain(&mut self, text: &str, indent: usize, split: bool) {
        if text.is_empty() {
            return;
        }
        if !self.whitespace {
            self.write(" ");
        }
        self.whitespace = false;
        self.indention = false;
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        let (mut start, mut end) = (0, 0);
        while end <= chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column >= BEST_WIDTH && split {
                        self.write_indent(indent);
                        self.whitespace = false;
                        self.indention = false;
                    } else {
                        self.write(&chars[start..end].iter().collect::<String>());
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    if chars[start] == '\n' {
                        self.line_break();
                    }
                    for _ in start..end {
                        self.line_break();
                    }
                    self.write_indent(indent);
                    self.whitespace = false;
                    self.indention = false;
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || is_break(c)) {
                let data: String = chars[start..end].iter().collect();
                if data.chars().count() + self.column > BEST_WIDTH && self.column > indent {
                    self.write_indent(indent);
                }
                self.write(&data);
                start = end;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
            end += 1;
        }
    }

    fn single_quoted(&mut self, text: &str, indent: usize, split: bool) {
        self.indicator("'", true, false);
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        let (mut start, mut end) = (0, 0);
        while end <= chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column > BEST_WIDTH && split && start != 0 && end != chars.len() {
                        self.write_indent(indent);
                    } else {
                        self.write(&chars[start..end].iter().collect::<String>());
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    if chars[start] == '\n' {
                        self.line_break();
                    }
                    for _ in start..end {
                        self.line_break();
                    }
                    self.write_indent(indent);
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || c == '\'' || is_break(c)) && start < end {
                self.write(&chars[start..end].iter().collect::<String>());
                start = end;
            }
            if ch == Some('\'') {
                self.write("''");
                start = end + 1;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
            end += 1;
        }
        self.indicator("'", false, false);
    }

    fn double_quoted(&mut self, text: &str, indent: usize, split: bool) {
        self.indicator("\"", true, false);
        let chars: Vec<char> = text.chars().collect();
        let n = chars.len();
        let (mut start, mut end) = (0, 0);
        while end <= n {
            let ch = chars.get(end).copied();
            if ch.is_none_or(|c| "\"\\\u{85}\u{2028}\u{2029}\u{FEFF}".contains(c) || !printable(c)) {
                if start < end {
                    self.write(&chars[start..end].iter().collect::<String>());
                    start = end;
                }
                if let Some(c) = ch {
                    self.write(&escape(c));
                    start = end + 1;
                }
            }
            if 0 < end
                && end + 1 < n
                && (ch == Some(' ') || start >= end)
                && self.column as isize + end as isize - start as isize > BEST_WIDTH as isize
                && split
            {
                let need_backslash = needs_backslash(&chars, start, end);
                let mut data: String = chars[start..end].iter().collect();
                if need_backslash {
                    data.push('\\');
                }
                if start < end {
                    start = end;
                }
                self.write(&data);
                self.write_indent(indent);
                self.whitespace = false;
                self.indention = false;
                if chars[start] == ' ' {
                    if !need_backslash {
                        start += 1;
                    }
                    if need_backslash {
                        self.write("\\");
                    }
                }
            }
            end += 1;
        }
        self.indicator("\"", false, false);
    }
}

fn needs_backslash(chars: &[char], start: usize, end: usize) -> bool {
    let Some(space_pos) = chars[end..].iter().position(|&c| c == ' ').map(|p| p + end) else {
        return true;
    };
    let space_pos = chars[end..space_pos].iter().position(|&c| c == '\n').map_or(space_pos, |p| p + end);
    let Some(&next) = chars.get(space_pos + 1) else { return true };
    if chars[space_pos] == '\n' && next != ' ' {
        return true;
    }
    let word = &chars[end..space_pos];
    !(!word.contains(&'"')
        && !word.contains(&'\'')
        && next != ' '
        && next != '\n'
        && !(chars[end - 1] == ' ' && chars.get(end) == Some(&' '))
        && start != end)
}

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn printable(c: char) -> bool {
    ('\x20'..='\x7e').contains(&c)
        || ('\u{a0}'..='\u{d7ff}').contains(&c)
        || ('\u{e000}'..='\u{fffd}').contains(&c)
        || ('\u{10000}'..='\u{10ffff}').contains(&c)
}

fn escape(c: char) -> String {
    let short = match c {
        '\0' => "0",
        '\x07' => "a",
        '\x08' => "b",
        '\t' => "t",
        '\n' => "n",
        '\x0b' => "v",
        '\x0c' => "f",
        '\r' => "r",
        '\x1b' => "e",
        '"' => "\"",
        '\\' => "\\",
        '\u{85}' => "N",
        '\u{a0}' => "_",
        '\u{2028}' => "L",
        '\u{2029}' => "P",
        _ => "",
    };
    let code = c as u32;
    match short {
        "" if code <= 0xff => format!("\\x{code:02X}"),
        "" if code <= 0xffff => format!("\\u{code:04X}"),
        "" => format!("\\U{code:08X}"),
        s => format!("\\{s}"),
    }
}

fn yaml_float(f: f64) -> String {
    if f.is_nan() {
        ".nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { ".inf".into() } else { "-.inf".into() }
    } else {
        float_repr(f)
    }
}

/// ruamel's `analyze_scalar` + `choose_scalar_style` for a string in block context.
fn choose_style(s: &str, simple_key: bool) -> Style {
    let a = analyze(s);
    if !(simple_key && (a.empty || a.multiline)) && a.allow_block_plain && !resolves_to_non_str(s) {
        return Style::Plain;
    }
    if a.allow_double_quoted && (s.contains('\'') || s.contains('\n')) {
        return Style::Double;
    }
    if a.allow_single_quoted && !(simple_key && a.multiline) {
        return Style::Single;
    }
    Style::Double
}

struct Analysis {
    empty: bool,
    multiline: bool,
    allow_block_plain: bool,
    allow_single_quoted: bool,
    allow_double_quoted: bool,
}

fn analyze(s: &str) -> Analysis {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return Analysis {
            empty: true,
            multiline: false,
            allow_block_plain: true,
            allow_single_quoted: true,
            allow_double_quoted: true,
        };
    }
    let ws = |c: char| "\0 \t\r\n\u{85}\u{2028}\u{2029}".contains(c);
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) = (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let mut preceded_by_ws = true;
    let mut followed_by_ws = chars.len() == 1 || ws(chars[1]);
    let (mut prev_space, mut prev_break) = (false, false);
    for (index, &ch) in chars.iter().enumerate() {
        if index == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(ch) {
                block_indicators = true;
            }
            if "?:".contains(ch) && followed_by_ws {
                block_indicators = true;
            }
            if ch == '-' && followed_by_ws {
                block_indicators = true;
            }
        } else if (ch == ':' && followed_by_ws) || (ch == '#' && preceded_by_ws) {
            block_indicators = true;
        }
        if is_break(ch) {
            line_breaks = true;
        }
        if !(ch == '\n' || ('\x20'..='\x7e').contains(&ch)) {
            let unicode = (ch == '\u{85}'
                || ('\u{a0}'..='\u{d7ff}').contains(&ch)
                || ('\u{e000}'..='\u{fffd}').contains(&ch)
                || ('\u{10000}'..='\u{10ffff}').contains(&ch))
                && ch != '\u{feff}';
            if !unicode {
                special = true;
            }
        }
        if ch == ' ' {
            leading_space |= index == 0;
            trailing_space |= index == chars.len() - 1;
            break_space |= prev_break;
            prev_space = true;
            prev_break = false;
        } else if is_break(ch) {
            leading_break |= index == 0;
            trailing_break |= index == chars.len() - 1;
            space_break |= prev_space;
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = ws(ch);
        followed_by_ws = index + 2 >= chars.len() || ws(chars[index + 2]);
    }
    let mut allow_block_plain = true;
    let mut allow_single_quoted = true;
    if leading_space || leading_break || trailing_space || trailing_break {
        allow_block_plain = false;
    }
    if break_space {
        allow_block_plain = false;
        allow_single_quoted = false;
    }
    if special || space_break {
        allow_block_plain = false;
        allow_single_quoted = false;
    }
    if line_breaks || block_indicators {
        allow_block_plain = false;
    }
    Analysis { empty: false, multiline: line_breaks, allow_block_plain, allow_single_quoted, allow_double_quoted: true }
}
