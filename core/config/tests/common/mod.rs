//! Helpers of the configuration tests: a conf directory from (file, text) pairs.
#![allow(dead_code)]

use std::fs;

use switchyard_config::load;

/// A temporary configuration directory holding these files.
pub fn conf(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = dir.path().join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    dir
}

/// The error loading these files gives (they must not load).
pub fn err_of(files: &[(&str, &str)]) -> String {
    let dir = conf(files);
    match load(dir.path()) {
        Ok(_) => panic!("{files:?} loaded"),
        Err(e) => e.to_string(),
    }
}
