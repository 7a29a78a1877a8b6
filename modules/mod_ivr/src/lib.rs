//! IVR menus as a module: FreeSWITCH's `ivr.conf` menus, written in TOML ([`toml_menu`]) or
//! XML ([`xml_menu`]), both read into one [`Menu`] and checked alike ([`menu`]), run by a
//! state machine that lives in channel variables ([`route`]).
//!
//! The module registers the dialplan applications `ivr MENU` (start a menu) and
//! `ivr_route MENU` (what the menu chains into after collecting digits), and reads its
//! menus from the directory of its `module.config` (`{"dir": "/etc/switchyard/ivr"}`,
//! default `ivr`); `module.reload` reads them again. A directory with errors is refused
//! whole, with every error at its file:line:column, and the menus already loaded stay.
#![forbid(unsafe_code)]

pub mod menu;
pub mod route;
pub mod toml_menu;
pub mod xml_menu;

mod glue;

pub use glue::IvrModule;
pub use menu::{
    Diagnostic, Digits, Entry, Location, Menu, MenuAction, MenuSet, MenuSetBuilder, Severity,
};
pub use route::Actions;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The menu files hold errors (warnings come along, in source order).
    #[error("{}", diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Config { diagnostics: Vec<Diagnostic> },
    #[error("cannot read the menu directory {dir}: {reason}")]
    ReadDir { dir: String, reason: String },
    #[error("unknown IVR menu {menu:?}")]
    UnknownMenu { menu: String },
    #[error("{app}: which menu? (usage: {app} MENU)")]
    NoMenuName { app: String },
    #[error("mod_ivr runs ivr and ivr_route, not {app:?}")]
    UnknownApplication { app: String },
}
