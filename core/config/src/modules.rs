//! `conf/modules.toml`: which dynamic modules the daemon loads at start, in order.
//!
//! ```toml
//! [[module]]
//! name = "mod_ivr"          # the module's name; its file is lib<name>.so
//! required = true           # the daemon refuses to start without it (default true)
//! # path = "/opt/vendor/libmod_card.so"   # default: searched in the module directories
//! [module.config]           # handed to the module as JSON ("module.config")
//! dir = "ivr"
//! ```
//!
//! The file is optional; without it no module is loaded.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, line_col, parse_file};

/// The file name inside a configuration directory.
pub const MODULES_FILE: &str = "modules.toml";

/// One module to load at start.
#[derive(Clone, Debug, PartialEq)]
pub struct ModuleEntry {
    pub name: String,
    /// The shared object, absolute or relative to the configuration directory; `None`: the
    /// engine searches its module directories for `lib<name>.so`.
    pub path: Option<PathBuf>,
    /// A required module that fails to load stops the daemon from starting; an optional one
    /// is reported and skipped.
    pub required: bool,
    /// `[module.config]`, handed to the module after it loads.
    pub config: toml::Table,
    /// Where its `[[module]]` starts in modules.toml, for messages.
    pub line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModulesFile {
    #[serde(default)]
    module: Vec<toml::Spanned<RawEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: String,
    path: Option<PathBuf>,
    #[serde(default = "yes")]
    required: bool,
    #[serde(default)]
    config: toml::Table,
}

fn yes() -> bool {
    true
}

/// Loads `path` if it exists; names must be unique and look like module names.
pub(crate) fn load(path: &Path) -> Result<Vec<ModuleEntry>, Error> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let (text, file) = parse_file::<ModulesFile>(path)?;
    let mut entries: Vec<ModuleEntry> = Vec::with_capacity(file.module.len());
    for spanned in file.module {
        let (line, _) = line_col(&text, spanned.span().start);
        let raw = spanned.into_inner();
        let invalid = |message: String| Error::Invalid {
            path: path.to_path_buf(),
            line: Some(line),
            message,
        };
        let valid_name = !raw.name.is_empty()
            && raw
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_name {
            return Err(invalid(format!(
                "module name {:?}: use letters, digits, '_' and '-' (its file is lib<name>.so)",
                raw.name
            )));
        }
        if let Some(first) = entries.iter().find(|e| e.name == raw.name) {
            return Err(invalid(format!(
                "module {} is listed twice (first at line {})",
                raw.name, first.line
            )));
        }
        entries.push(ModuleEntry {
            name: raw.name,
            path: raw.path,
            required: raw.required,
            config: raw.config,
            line,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Vec<ModuleEntry>, Error> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MODULES_FILE);
        std::fs::write(&path, text).unwrap();
        load(&path)
    }

    #[test]
    fn entries_keep_their_order_defaults_and_config() {
        let entries = load_text(
            "[[module]]\nname = \"mod_ivr\"\n[module.config]\ndir = \"ivr\"\n\n\
             [[module]]\nname = \"mod_vendor\"\nrequired = false\npath = \"/opt/v/libmod_vendor.so\"\n",
        )
        .unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].name, "mod_ivr");
        assert!(entries[0].required);
        assert_eq!(entries[0].path, None);
        assert_eq!(entries[0].config["dir"].as_str(), Some("ivr"));
        assert_eq!(entries[0].line, 1);
        assert_eq!(entries[1].name, "mod_vendor");
        assert!(!entries[1].required);
        assert_eq!(entries[1].line, 6);
    }

    #[test]
    fn a_missing_file_loads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(&dir.path().join(MODULES_FILE)).unwrap().is_empty());
    }

    #[test]
    fn bad_entries_are_refused_at_their_line() {
        let err = load_text("[[module]]\nname = \"a\"\n\n[[module]]\nname = \"a\"\n").unwrap_err();
        assert!(
            err.to_string()
                .contains(":4: module a is listed twice (first at line 1)"),
            "{err}"
        );
        let err = load_text("[[module]]\nname = \"../evil\"\n").unwrap_err();
        assert!(
            err.to_string().contains(":1: module name \"../evil\""),
            "{err}"
        );
        let err = load_text("[[module]]\nname = \"a\"\nrequierd = true\n").unwrap_err();
        assert!(err.to_string().contains("requierd"), "{err}");
    }
}
