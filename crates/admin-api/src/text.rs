//! Text from the API, as a terminal may show it.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Text as a terminal may show it. Anyone can put text into the API (a
/// display name, a group name, an audit message): control characters (C0,
/// DEL, C1: escape sequences that clear, retitle or recolour a terminal,
/// carriage returns and backspaces that hide text) and the invisible and
/// bidirectional formatting characters that disguise it are shown as
/// escapes (`\u{1b}`, `\n`), never raw. Machine formats (CSV, JSON,
/// Parquet) keep the data exact instead.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if hidden(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Characters a terminal acts on or does not show.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}
