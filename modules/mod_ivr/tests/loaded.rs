//! mod_ivr as the daemon sees it: its cdylib opened by the loader, its entry checked, its
//! applications registered, its menus configured and run across the C ABI.
//!
//! `cargo test -p mod_ivr` builds the cdylib next to this test's `deps/` directory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};
use switchyard_loader::{CallError, Host, InterfaceKind, Library, LogLevel};

#[derive(Default)]
struct RecordingHost {
    registered: Mutex<Vec<(InterfaceKind, String)>>,
    logs: Mutex<Vec<(LogLevel, String)>>,
}

impl Host for RecordingHost {
    fn register(
        &self,
        _module: &str,
        kind: InterfaceKind,
        name: &str,
        _help: &str,
    ) -> Result<(), String> {
        self.registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((kind, name.to_owned()));
        Ok(())
    }

    fn send(&self, _module: &str, _name: &str, _body: &[u8]) {}

    fn log(&self, _module: &str, level: LogLevel, message: &str) {
        self.logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((level, message.to_owned()));
    }
}

fn cdylib() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let path = profile_dir.join(format!(
        "{}mod_ivr{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

#[test]
fn the_module_loads_registers_and_runs_the_demo_menu() {
    let library = Library::open(&cdylib()).unwrap();
    assert_eq!((library.name(), library.version()), ("mod_ivr", "0.1.0"));
    let host = Arc::new(RecordingHost::default());
    let module = library.start(host.clone()).unwrap();
    assert_eq!(
        *host.registered.lock().unwrap(),
        [
            (InterfaceKind::Application, "ivr".to_owned()),
            (InterfaceKind::Application, "ivr_route".to_owned()),
        ]
    );

    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/ivr");
    let reply = module
        .request(
            "module.config",
            json!({ "dir": conf }).to_string().as_bytes(),
        )
        .unwrap();
    assert_eq!(reply, b"{}");
    let logs = host.logs.lock().unwrap().clone();
    assert!(
        logs.iter()
            .any(|(_, line)| line.ends_with(": demo, demo_more, demo_more_zh, demo_zh")),
        "{logs:?}"
    );

    let run = |app: &str, data: &str, variables: Value| -> Value {
        let body = json!({ "app": app, "data": data, "uuid": "u-1", "answered": true, "variables": variables });
        serde_json::from_slice(
            &module
                .request("app.run", body.to_string().as_bytes())
                .unwrap(),
        )
        .unwrap()
    };
    let start = run("ivr", "demo_zh", json!({}));
    assert_eq!(start["actions"][0], json!(["set", "language=zh"]));
    assert_eq!(start["actions"][3], json!(["ivr_route", "demo_zh"]));
    let chosen = run(
        "ivr_route",
        "demo_zh",
        json!({ "ivr_digits": "1", "read_result": "success" }),
    );
    assert_eq!(
        chosen,
        json!({ "actions": [["transfer", "7001 XML default"]] })
    );

    // A menu that does not exist fails the request; the module stays in service.
    let body = json!({ "app": "ivr", "data": "nowhere", "variables": {} }).to_string();
    assert!(matches!(
        module.request("app.run", body.as_bytes()),
        Err(CallError::Failed { .. })
    ));
    assert!(matches!(
        module.request("event", b"{}"),
        Err(CallError::UnknownMessage { .. })
    ));
    assert!(!module.is_disabled());
    drop(module);
}
