//! Dynamic modules in the engine: which are loaded (conf/modules.toml at start, the console's
//! `load` / `unload` / `reload` later), what each registered, and the bridge from the switch
//! to them. Every call into a module happens on the signalling thread, one at a time, which
//! is what the module ABI promises modules.
//!
//! A call that ran a module's application keeps that module instance (an `Arc`) for its life:
//! `unload` refuses while calls hold it, and `reload` serves new calls with the new code
//! while the old library stays mapped until its last call ends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use switchyard_config::ModuleEntry;
use switchyard_loader::{CallError, Host, InterfaceKind, Library, LogLevel, Module};
use tracing::{debug, error, info, warn};

use crate::reactor::{Input, ReactorHandle};
use crate::switch::{CallView, ModuleApplication};

/// What a module registered while it loaded.
#[derive(Clone, Debug)]
pub(crate) struct Registration {
    pub kind: InterfaceKind,
    pub name: String,
    pub help: String,
}

/// The host side of the module ABI: registrations are collected per module while it loads;
/// messages a module sends (from any thread) are queued to the signalling reactor.
pub(crate) struct EngineHost {
    reactor: Option<ReactorHandle>,
    registrations: Mutex<Vec<(String, Registration)>>,
}

impl EngineHost {
    pub(crate) fn new(reactor: Option<ReactorHandle>) -> Arc<EngineHost> {
        Arc::new(EngineHost {
            reactor,
            registrations: Mutex::new(Vec::new()),
        })
    }

    fn take_registrations(&self, module: &str) -> Vec<Registration> {
        let mut all = self
            .registrations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (mine, others): (Vec<_>, Vec<_>) = all.drain(..).partition(|(m, _)| m == module);
        *all = others;
        mine.into_iter().map(|(_, r)| r).collect()
    }
}

impl Host for EngineHost {
    fn register(
        &self,
        module: &str,
        kind: InterfaceKind,
        name: &str,
        help: &str,
    ) -> Result<(), String> {
        if name.is_empty() || name.len() > 64 || name.contains(char::is_whitespace) {
            return Err(format!(
                "interface name {name:?}: 1-64 characters, no spaces"
            ));
        }
        self.registrations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((
                module.to_owned(),
                Registration {
                    kind,
                    name: name.to_owned(),
                    help: help.to_owned(),
                },
            ));
        Ok(())
    }

    fn send(&self, module: &str, name: &str, body: &[u8]) {
        if let Some(reactor) = &self.reactor {
            reactor.send(Input::Module {
                module: module.to_owned(),
                name: name.to_owned(),
                body: body.to_vec(),
            });
        }
    }

    fn log(&self, module: &str, level: LogLevel, message: &str) {
        match level {
            LogLevel::Error => error!(module, "{message}"),
            LogLevel::Warn => warn!(module, "{message}"),
            LogLevel::Info => info!(module, "{message}"),
            LogLevel::Debug => debug!(module, "{message}"),
        }
    }
}

/// One loaded module and what it registered.
pub(crate) struct Loaded {
    pub module: Arc<Module>,
    pub path: PathBuf,
    pub interfaces: Vec<Registration>,
    /// The ABI version the module was built for.
    pub abi: (u16, u16),
}

/// The modules of the daemon, by name.
pub(crate) struct Modules {
    host: Arc<EngineHost>,
    loaded: BTreeMap<String, Loaded>,
    /// modules.toml: paths and config of the modules it names (also for later `load`s).
    entries: Vec<ModuleEntry>,
    conf_dir: PathBuf,
    /// Where a module without a `path` is looked for (`lib<name>.so`), in order.
    search: Vec<PathBuf>,
}

impl Modules {
    pub(crate) fn new(
        host: Arc<EngineHost>,
        entries: Vec<ModuleEntry>,
        conf_dir: &Path,
        search: Vec<PathBuf>,
    ) -> Modules {
        Modules {
            host,
            loaded: BTreeMap::new(),
            entries,
            conf_dir: conf_dir.to_path_buf(),
            search,
        }
    }

    /// The module directories: next to the switchyard binary (a build tree, or a package's
    /// /usr/lib/switchyard), then the packaged location.
    pub(crate) fn default_search() -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Ok(exe) = std::env::current_exe()
            && let Some(dir) = exe.parent()
        {
            dirs.push(dir.to_path_buf());
            dirs.push(dir.join("modules"));
        }
        dirs.push(PathBuf::from("/usr/lib/switchyard/modules"));
        dirs
    }

    fn path_of(&self, name: &str) -> Result<PathBuf, String> {
        if let Some(path) = self
            .entries
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| e.path.as_ref())
        {
            return Ok(if path.is_absolute() {
                path.clone()
            } else {
                self.conf_dir.join(path)
            });
        }
        let file = format!("lib{name}.so");
        self.search
            .iter()
            .map(|dir| dir.join(&file))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                let looked: Vec<String> = self
                    .search
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect();
                format!("module {name}: no {file} in {}", looked.join(", "))
            })
    }

    fn config_of(&self, name: &str) -> Value {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| serde_json::to_value(&e.config).ok())
            .unwrap_or_else(|| json!({}))
    }

    /// Opens, checks and starts module `name`, then hands it its config. The library's entry
    /// is checked before any of its code runs (the loader's promise).
    fn open(&self, name: &str) -> Result<Loaded, String> {
        let path = self.path_of(name)?;
        // glibc's dlopen hands back the library already mapped for a path while it is
        // open, so a reload would get the old code: each load maps its own copy. The copy
        // is removed once mapped (the mapping stays).
        // The copy goes into a fresh directory only this process can enter (mkdtemp, 0700),
        // so no other local user can plant or swap the file that dlopen maps.
        let dir = tempfile::Builder::new()
            .prefix("switchyard-module-")
            .tempdir()
            .map_err(|e| format!("module {name}: a private directory for its copy: {e}"))?;
        let copy = dir.path().join(format!("lib{name}.so"));
        std::fs::copy(&path, &copy).map_err(|e| {
            format!(
                "module {name}: copying {} to {}: {e}",
                path.display(),
                copy.display()
            )
        })?;
        let library = Library::open(&copy);
        drop(dir);
        let library = library.map_err(|e| {
            e.to_string()
                .replace(&copy.display().to_string(), &path.display().to_string())
        })?;
        if library.name() != name {
            return Err(format!(
                "{} is module {}, not {name}",
                path.display(),
                library.name()
            ));
        }
        let abi = library.abi();
        let host: Arc<dyn Host> = self.host.clone();
        let started = library.start(host);
        let interfaces = self.host.take_registrations(name);
        let module = started.map_err(|e| e.to_string())?;
        // Where the daemon's configuration is, before the module's own: a module resolves the
        // relative paths of its config against it. Modules that need no paths ignore it.
        let host_facts = json!({ "conf_dir": self.conf_dir }).to_string();
        match module.request("module.host", host_facts.as_bytes()) {
            Ok(_) | Err(CallError::UnknownMessage { .. }) => {}
            Err(e) => return Err(format!("module {name} refused module.host: {e}")),
        }
        let config = self.config_of(name).to_string();
        module
            .request("module.config", config.as_bytes())
            .or_else(|e| match e {
                // A module with no configuration need not know the message.
                CallError::UnknownMessage { .. } => Ok(Vec::new()),
                e => Err(e),
            })
            .map_err(|e| format!("module {name} refused its configuration: {e}"))?;
        info!(
            module = name,
            version = module.version(),
            path = %path.display(),
            interfaces = interfaces.len(),
            "module loaded"
        );
        Ok(Loaded {
            module: Arc::new(module),
            path,
            interfaces,
            abi,
        })
    }

    /// `load NAME`: a module not loaded yet. Name clashes with what other modules registered
    /// are refused (the caller checks clashes with the core).
    /// Takes modules.toml as it is now: `load` and `reload` use a module's current path and
    /// config.
    pub(crate) fn reread_entries(&mut self) -> Result<(), String> {
        self.entries =
            switchyard_config::load_modules(&self.conf_dir).map_err(|e| e.to_string())?;
        Ok(())
    }

    pub(crate) fn load(&mut self, name: &str) -> Result<&Loaded, String> {
        if self.loaded.contains_key(name) {
            return Err(format!("module {name} is already loaded (use reload)"));
        }
        let loaded = self.open(name)?;
        self.check_clashes(name, &loaded.interfaces)?;
        self.loaded.insert(name.to_owned(), loaded);
        Ok(&self.loaded[name])
    }

    fn check_clashes(&self, name: &str, interfaces: &[Registration]) -> Result<(), String> {
        for mine in interfaces {
            // The console's own words come first: a module command by one of them could
            // never run.
            let core_word = crate::switch::COMMANDS
                .iter()
                .any(|c| c.split_whitespace().next() == Some(mine.name.as_str()));
            if mine.kind == InterfaceKind::Command && core_word {
                return Err(format!(
                    "module {name}: command {} is a console command of the core",
                    mine.name
                ));
            }
            for (other, loaded) in self.loaded.iter().filter(|(n, _)| n.as_str() != name) {
                if loaded.interfaces.iter().any(|r| {
                    r.kind == mine.kind
                        && r.name == mine.name
                        && r.kind != InterfaceKind::Subscription
                }) {
                    return Err(format!(
                        "module {name}: {:?} {} is already registered by {other}",
                        mine.kind, mine.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// `unload NAME`: refused while `in_use` calls hold the module.
    pub(crate) fn unload(&mut self, name: &str, in_use: usize) -> Result<Loaded, String> {
        if !self.loaded.contains_key(name) {
            return Err(format!("module {name} is not loaded"));
        }
        if in_use > 0 {
            return Err(format!(
                "module {name} is in use by {in_use} call(s); unload it when they end, or `reload` it"
            ));
        }
        let loaded = self.loaded.remove(name).expect("checked above");
        info!(module = name, "module unloaded");
        Ok(loaded)
    }

    /// `reload NAME`: the new code is loaded beside the old; the old instance is dropped here
    /// and stays mapped while calls still hold it.
    pub(crate) fn reload(&mut self, name: &str) -> Result<&Loaded, String> {
        if !self.loaded.contains_key(name) {
            return Err(format!("module {name} is not loaded"));
        }
        let fresh = self.open(name)?;
        self.check_clashes(name, &fresh.interfaces)?;
        self.loaded.insert(name.to_owned(), fresh);
        info!(module = name, "module reloaded");
        Ok(&self.loaded[name])
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Loaded> {
        self.loaded.get(name)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Loaded)> {
        self.loaded.iter()
    }

    /// Every module command: (module, command, help), for the console's `help`.
    pub(crate) fn commands(&self) -> Vec<(&str, &str, &str)> {
        self.loaded
            .iter()
            .flat_map(|(name, l)| {
                l.interfaces
                    .iter()
                    .filter(|r| r.kind == InterfaceKind::Command)
                    .map(move |r| (name.as_str(), r.name.as_str(), r.help.as_str()))
            })
            .collect()
    }

    /// The module that registered console command `command`.
    pub(crate) fn command_owner(&self, command: &str) -> Option<Arc<Module>> {
        self.loaded.values().find_map(|l| {
            l.interfaces
                .iter()
                .any(|r| r.kind == InterfaceKind::Command && r.name == command)
                .then(|| Arc::clone(&l.module))
        })
    }

    /// Modules subscribed to `event` (or to every event, "*"), by name.
    pub(crate) fn subscribers(&self, event: &str) -> Vec<(String, Arc<Module>)> {
        self.loaded
            .iter()
            .filter(|(_, l)| {
                !l.module.is_disabled()
                    && l.interfaces.iter().any(|r| {
                        r.kind == InterfaceKind::Subscription && (r.name == event || r.name == "*")
                    })
            })
            .map(|(name, l)| (name.clone(), Arc::clone(&l.module)))
            .collect()
    }

    /// `show modules`.
    pub(crate) fn status_text(&self, in_use: impl Fn(&str) -> usize) -> String {
        let mut out = format!("{} modules\n", self.loaded.len());
        for (name, l) in &self.loaded {
            let (major, minor) = l.abi;
            let state = if l.module.is_disabled() {
                "DISABLED (panicked)"
            } else {
                "running"
            };
            out.push_str(&format!(
                "{name} {} abi {major}.{minor} {state} calls {} {}\n",
                l.module.version(),
                in_use(name),
                l.path.display()
            ));
            for r in &l.interfaces {
                out.push_str(&format!("  {:?} {} {}\n", r.kind, r.name, r.help));
            }
        }
        out
    }
}

/// A dialplan application a module registered: `app.run` answers with the core applications
/// the call runs in its place.
pub(crate) struct ModuleApp {
    pub module: Arc<Module>,
    pub app: String,
}

impl ModuleApplication for ModuleApp {
    fn owner(&self) -> &str {
        self.module.name()
    }

    fn instance(&self) -> Option<Arc<Module>> {
        Some(Arc::clone(&self.module))
    }

    fn run(&self, call: &CallView<'_>, data: &str) -> Vec<(String, String)> {
        let variables: serde_json::Map<String, Value> = call
            .variables
            .iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect();
        let body = json!({
            "app": self.app,
            "data": data,
            "uuid": call.uuid,
            "answered": call.answered,
            "variables": variables,
            "now_ms": call.now_ms,
        })
        .to_string();
        let reply = match self.module.request("app.run", body.as_bytes()) {
            Ok(reply) => reply,
            Err(error) => {
                report_call_error(&error);
                return Vec::new();
            }
        };
        match parse_actions(&reply) {
            Ok(actions) => actions,
            Err(problem) => {
                warn!(
                    module = self.module.name(),
                    app = self.app,
                    "bad app.run reply: {problem}"
                );
                Vec::new()
            }
        }
    }
}

/// A failed call into a module, in the log; a panic disables the module (the loader did).
pub(crate) fn report_call_error(error: &CallError) {
    match error {
        CallError::Panicked { .. } => {
            error!("{error}: the module is disabled; calls and other modules go on")
        }
        other => warn!("{other}"),
    }
}

/// `{"actions":[["APP","DATA"],...]}`.
fn parse_actions(reply: &[u8]) -> Result<Vec<(String, String)>, String> {
    let value: Value = serde_json::from_slice(reply).map_err(|e| e.to_string())?;
    let Some(list) = value.get("actions").and_then(Value::as_array) else {
        return Err("no \"actions\" list".into());
    };
    list.iter()
        .map(|item| match item.as_array().map(Vec::as_slice) {
            Some([Value::String(app), Value::String(data)]) => Ok((app.clone(), data.clone())),
            Some([Value::String(app)]) => Ok((app.clone(), String::new())),
            _ => Err(format!("action {item} is not [\"app\", \"data\"]")),
        })
        .collect()
}

/// A module command's reply, `{"ok":true,"text":..}` or `{"ok":false,"error":..}`, as the
/// console's result.
pub(crate) fn command_result(reply: &[u8]) -> Result<String, String> {
    let value: Value =
        serde_json::from_slice(reply).map_err(|e| format!("bad reply from the module: {e}"))?;
    let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default();
    if value.get("ok").and_then(Value::as_bool) == Some(true) {
        let mut out = text("text").to_owned();
        if !out.ends_with('\n') {
            out.push('\n');
        }
        Ok(out)
    } else {
        Err(text("error").to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse() {
        assert_eq!(
            parse_actions(br#"{"actions":[["log","INFO hi"],["hangup"]]}"#).unwrap(),
            vec![
                ("log".to_owned(), "INFO hi".to_owned()),
                ("hangup".to_owned(), String::new())
            ]
        );
        assert!(parse_actions(br#"{"actions":[[1,2]]}"#).is_err());
        assert!(parse_actions(b"nope").is_err());
        assert_eq!(
            command_result(br#"{"ok":true,"text":"fine"}"#).unwrap(),
            "fine\n"
        );
        assert_eq!(
            command_result(br#"{"ok":false,"error":"bad"}"#).unwrap_err(),
            "bad"
        );
    }
}
