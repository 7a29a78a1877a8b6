//! Menus in TOML: FreeSWITCH's `ivr.conf` attributes as keys (`greet-long` or
//! `greet_long`), one table per menu and one `[[menu.NAME.entry]]` per entry.
//!
//! ```toml
//! [menu.main]
//! language = "en"
//! greet-long = "welcome!press-1-sales!press-2-zh"
//! greet-short = "press-1-sales!press-2-zh"
//! invalid-sound = "invalid-option"
//! exit-sound = "goodbye"
//! timeout = 5000              # ms
//! inter-digit-timeout = 2000  # ms
//! max-failures = 3
//! max-timeouts = 3
//! digit-len = 1
//!
//! [[menu.main.entry]]
//! digits = "1"
//! action = "exec-app"
//! param = "transfer 9197 XML default"
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::menu::{Diagnostic, Location, RawEntry, RawMenu, Written, error, location};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    menu: BTreeMap<Spanned<String>, Spanned<MenuTable>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct MenuTable {
    language: Option<Spanned<String>>,
    #[serde(alias = "greet_long")]
    greet_long: Option<Spanned<String>>,
    #[serde(alias = "greet_short")]
    greet_short: Option<Spanned<String>>,
    #[serde(alias = "invalid_sound")]
    invalid_sound: Option<Spanned<String>>,
    #[serde(alias = "exit_sound")]
    exit_sound: Option<Spanned<String>>,
    timeout: Option<Spanned<u64>>,
    #[serde(alias = "inter_digit_timeout")]
    inter_digit_timeout: Option<Spanned<u64>>,
    #[serde(alias = "max_failures")]
    max_failures: Option<Spanned<u64>>,
    #[serde(alias = "max_timeouts")]
    max_timeouts: Option<Spanned<u64>>,
    #[serde(alias = "digit_len")]
    digit_len: Option<Spanned<u64>>,
    #[serde(default)]
    entry: Vec<Spanned<EntryTable>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryTable {
    digits: Option<Spanned<String>>,
    action: Option<Spanned<String>>,
    param: Option<Spanned<String>>,
}

/// Turns byte offsets into line:column.
struct Lines<'t> {
    file: &'t str,
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> Lines<'t> {
    fn new(file: &'t str, text: &'t str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Lines { file, text, starts }
    }

    fn at(&self, byte: usize) -> Location {
        let byte = byte.min(self.text.len());
        let line = self.starts.partition_point(|&start| start <= byte);
        let start = self.starts[line - 1];
        let column = self
            .text
            .get(start..byte)
            .map_or(1, |s| s.chars().count() + 1);
        location(self.file, line as u32, column as u32)
    }

    fn written<T: Clone>(&self, value: &Spanned<T>) -> Written<T> {
        Written {
            value: value.get_ref().clone(),
            location: self.at(value.span().start),
        }
    }

    fn optional<T: Clone>(&self, value: &Option<Spanned<T>>) -> Option<Written<T>> {
        value.as_ref().map(|v| self.written(v))
    }
}

/// The menus of one document as written; a document that does not parse yields none and
/// one diagnostic at the offending line.
pub(crate) fn read(file: &str, text: &str, diagnostics: &mut Vec<Diagnostic>) -> Vec<RawMenu> {
    let lines = Lines::new(file, text);
    let document: Document = match toml::from_str(text) {
        Ok(document) => document,
        Err(e) => {
            let at = lines.at(e.span().map_or(0, |span| span.start));
            diagnostics.push(error(at, e.message().trim().to_owned(), None));
            return Vec::new();
        }
    };
    document
        .menu
        .iter()
        .map(|(name, table)| {
            let t = table.get_ref();
            RawMenu {
                name: Some(lines.written(name)),
                language: lines.optional(&t.language),
                greet_long: lines.optional(&t.greet_long),
                greet_short: lines.optional(&t.greet_short),
                invalid_sound: lines.optional(&t.invalid_sound),
                exit_sound: lines.optional(&t.exit_sound),
                timeout: lines.optional(&t.timeout),
                inter_digit_timeout: lines.optional(&t.inter_digit_timeout),
                max_failures: lines.optional(&t.max_failures),
                max_timeouts: lines.optional(&t.max_timeouts),
                digit_len: lines.optional(&t.digit_len),
                entries: t
                    .entry
                    .iter()
                    .map(|entry| RawEntry {
                        digits: lines.optional(&entry.get_ref().digits),
                        action: lines.optional(&entry.get_ref().action),
                        param: lines.optional(&entry.get_ref().param),
                        location: lines.at(entry.span().start),
                    })
                    .collect(),
                location: Some(lines.at(name.span().start)),
            }
        })
        .collect()
}
