//! The module boundary: `module.config`, `module.reload` and `app.run` messages in JSON.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use switchyard_abi::sdk::{HostApi, MessageError, Module};
use switchyard_abi::{InterfaceKind, LogLevel};

use crate::menu::MenuSet;

/// Where the menus are when `module.config` names no directory.
pub const DEFAULT_DIR: &str = "ivr";

/// The module's state: the menus loaded and where they came from.
#[derive(Debug, Default)]
pub struct IvrModule {
    menus: MenuSet,
    dir: Option<PathBuf>,
    /// The daemon's configuration directory (`module.host`): a relative `dir` is under it.
    conf_dir: Option<PathBuf>,
}

/// Lines for the host's log, with their levels.
pub type LogLines = Vec<(LogLevel, String)>;

#[derive(Deserialize)]
struct HostFacts {
    conf_dir: PathBuf,
}

#[derive(Deserialize)]
struct Config {
    #[serde(default)]
    dir: Option<String>,
}

#[derive(Deserialize)]
struct AppRun {
    app: String,
    #[serde(default)]
    data: String,
    #[serde(default)]
    variables: BTreeMap<String, String>,
}

impl IvrModule {
    /// The menus in use.
    pub fn menus(&self) -> &MenuSet {
        &self.menus
    }

    /// Handles one message; the SDK-free core of [`Module::message`], with log lines
    /// returned instead of sent.
    pub fn handle(&mut self, name: &str, body: &[u8]) -> Result<(Vec<u8>, LogLines), MessageError> {
        match name {
            "module.host" => {
                let facts: HostFacts = serde_json::from_slice(body)
                    .map_err(|e| MessageError::BadInput(format!("module.host: {e}")))?;
                self.conf_dir = Some(facts.conf_dir);
                Ok((b"{}".to_vec(), Vec::new()))
            }
            "module.config" => {
                let config: Config = serde_json::from_slice(body)
                    .map_err(|e| MessageError::BadInput(format!("module.config: {e}")))?;
                let dir = PathBuf::from(config.dir.unwrap_or_else(|| DEFAULT_DIR.to_owned()));
                let dir = match &self.conf_dir {
                    Some(conf) if dir.is_relative() => conf.join(dir),
                    _ => dir,
                };
                let logs = self.load(dir)?;
                Ok((b"{}".to_vec(), logs))
            }
            "module.reload" => {
                let dir = self
                    .dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
                let logs = self.load(dir)?;
                Ok((b"{}".to_vec(), logs))
            }
            "app.run" => {
                let run: AppRun = serde_json::from_slice(body)
                    .map_err(|e| MessageError::BadInput(format!("app.run: {e}")))?;
                let actions = self
                    .menus
                    .app_run(&run.app, &run.data, &run.variables)
                    .map_err(|e| MessageError::Failed(e.to_string()))?;
                // The menu's decision in the daemon's log: what an engineer reads to follow a
                // caller through the menus.
                let decided: Vec<String> = actions
                    .iter()
                    .map(|(app, data)| format!("{app} {data}").trim_end().to_owned())
                    .collect();
                let line = format!("{} {} -> {}", run.app, run.data, decided.join("; "));
                let reply = serde_json::json!({ "actions": actions });
                Ok((reply.to_string().into_bytes(), vec![(LogLevel::Info, line)]))
            }
            _ => Err(MessageError::Unknown),
        }
    }

    /// Loads a directory; on errors the menus in use stay.
    fn load(&mut self, dir: PathBuf) -> Result<LogLines, MessageError> {
        let menus = MenuSet::load_dir(&dir).map_err(|e| MessageError::Failed(e.to_string()))?;
        let mut logs: LogLines = menus
            .warnings
            .iter()
            .map(|w| (LogLevel::Warn, w.to_string()))
            .collect();
        logs.push((
            LogLevel::Info,
            format!(
                "{} IVR menus from {}: {}",
                menus.menus.len(),
                dir.display(),
                menus.menus.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
        self.menus = menus;
        self.dir = Some(dir);
        Ok(logs)
    }
}

impl Module for IvrModule {
    fn load(host: &HostApi) -> Result<Self, String> {
        host.register(
            InterfaceKind::Application,
            "ivr",
            "ivr MENU: runs an IVR menu of conf/ivr",
        )?;
        host.register(
            InterfaceKind::Application,
            "ivr_route",
            "ivr_route MENU: acts on the digits an ivr menu collected (ivr chains into it)",
        )?;
        Ok(IvrModule::default())
    }

    fn message(
        &mut self,
        host: &HostApi,
        name: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, MessageError> {
        let (reply, logs) = self.handle(name, body)?;
        for (level, line) in logs {
            host.log(level, &line);
        }
        Ok(reply)
    }
}

switchyard_abi::declare_module!(name = "mod_ivr", version = "0.1.0", module = IvrModule);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::menu::tests::conf_dir;

    fn config(dir: &std::path::Path) -> Vec<u8> {
        serde_json::json!({ "dir": dir }).to_string().into_bytes()
    }

    #[test]
    fn the_entry_is_the_sdks() {
        assert_eq!(switchyard_module.magic, switchyard_abi::SY_MAGIC);
        assert_eq!(switchyard_module.abi_major, switchyard_abi::SY_ABI_MAJOR);
        assert!(switchyard_module.on_message.is_some());
    }

    #[test]
    fn a_relative_dir_is_under_the_hosts_configuration_directory() {
        let mut module = IvrModule::default();
        let conf = conf_dir();
        let parent = conf.parent().expect("conf/ivr has a parent");
        let facts = serde_json::json!({ "conf_dir": parent }).to_string();
        module.handle("module.host", facts.as_bytes()).unwrap();
        let name = conf.file_name().unwrap().to_str().unwrap();
        let relative = serde_json::json!({ "dir": name }).to_string();
        module.handle("module.config", relative.as_bytes()).unwrap();
        assert!(
            module.menus().get("demo").is_some(),
            "the shipped menus loaded"
        );
        assert!(
            module.handle("module.host", b"{}").is_err(),
            "conf_dir is required"
        );
    }

    #[test]
    fn config_loads_the_directory_and_app_run_answers_with_actions() {
        let mut module = IvrModule::default();
        let (reply, logs) = module
            .handle("module.config", &config(&conf_dir()))
            .unwrap();
        assert_eq!(reply, b"{}");
        assert_eq!(logs.len(), 1);
        assert!(logs[0].1.starts_with("4 IVR menus from "), "{logs:?}");
        assert!(
            logs[0]
                .1
                .ends_with(": demo, demo_more, demo_more_zh, demo_zh"),
            "{logs:?}"
        );

        let body = serde_json::json!({
            "app": "ivr_route",
            "data": "demo",
            "uuid": "u-1",
            "answered": true,
            "variables": { "ivr_digits": "2", "read_result": "success" },
        });
        let (reply, _) = module
            .handle("app.run", body.to_string().as_bytes())
            .unwrap();
        let reply: serde_json::Value = serde_json::from_slice(&reply).unwrap();
        assert_eq!(
            reply,
            serde_json::json!({ "actions": [["transfer", "7002 XML default"]] })
        );

        let body = serde_json::json!({ "app": "ivr", "data": "nowhere", "variables": {} });
        assert_eq!(
            module
                .handle("app.run", body.to_string().as_bytes())
                .unwrap_err(),
            MessageError::Failed("unknown IVR menu \"nowhere\"".into())
        );
        assert!(matches!(
            module.handle("app.run", b"{"),
            Err(MessageError::BadInput(_))
        ));
        assert_eq!(
            module.handle("event", b"{}").unwrap_err(),
            MessageError::Unknown
        );
    }

    #[test]
    fn a_bad_directory_is_refused_and_the_menus_in_use_stay() {
        let dir = tempfile::tempdir().unwrap();
        let good = "[menu.m]\ngreet-long = \"welcome\"\nconfirm-key = 1\n[[menu.m.entry]]\ndigits = \"1\"\naction = \"exit\"\n";
        std::fs::write(
            dir.path().join("m.toml"),
            good.replace("confirm-key = 1\n", ""),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("x.xml"),
            "<menu name=\"x\" greet-long=\"busy\" confirm-key=\"1\"><entry action=\"menu-top\" digits=\"1\"/></menu>",
        )
        .unwrap();
        let mut module = IvrModule::default();
        let (_, logs) = module.handle("module.config", &config(dir.path())).unwrap();
        assert_eq!(logs[0].0, LogLevel::Warn);
        assert!(
            logs[0]
                .1
                .ends_with("x.xml:1:34: warning: attribute \"confirm-key\" is ignored"),
            "{logs:?}"
        );
        assert_eq!(module.menus().menus.len(), 2);

        // An error in a reload: refused whole, with its place; the old menus stay.
        std::fs::write(dir.path().join("m.toml"), good).unwrap();
        let Err(MessageError::Failed(text)) = module.handle("module.reload", b"{}") else {
            panic!("a bad reload must fail");
        };
        assert!(
            text.contains("m.toml:3:1: error: unknown field `confirm-key`"),
            "{text}"
        );
        assert_eq!(module.menus().menus.len(), 2);

        std::fs::remove_file(dir.path().join("m.toml")).unwrap();
        module.handle("module.reload", b"{}").unwrap();
        assert_eq!(module.menus().menus.keys().collect::<Vec<_>>(), ["x"]);
    }
}
