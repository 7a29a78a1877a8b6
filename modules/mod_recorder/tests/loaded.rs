//! The built `libmod_recorder.so` through the real loader, as the daemon drives it: its entry
//! passes the checks, it registers its interfaces, takes its config, and a bridged call's
//! `call.answered` comes back as a `console` message carrying `record start UUID`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use switchyard_loader::{CallError, Host, InterfaceKind, Library, LogLevel};

#[derive(Default)]
struct Seen {
    registered: Vec<(InterfaceKind, String)>,
    sent: Vec<(String, Value)>,
}

#[derive(Default)]
struct RecordingHost(Mutex<Seen>);

impl Host for RecordingHost {
    fn register(
        &self,
        _module: &str,
        kind: InterfaceKind,
        name: &str,
        _help: &str,
    ) -> Result<(), String> {
        self.0
            .lock()
            .unwrap()
            .registered
            .push((kind, name.to_owned()));
        Ok(())
    }

    fn send(&self, _module: &str, name: &str, body: &[u8]) {
        let body = serde_json::from_slice(body).expect("the module sends JSON");
        self.0.lock().unwrap().sent.push((name.to_owned(), body));
    }

    fn log(&self, _module: &str, _level: LogLevel, _message: &str) {}
}

/// The cdylib cargo built next to this test binary (target/<profile>/deps).
fn library_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    [deps, deps.parent().unwrap()]
        .iter()
        .map(|dir| dir.join("libmod_recorder.so"))
        .find(|path| path.is_file())
        .expect("libmod_recorder.so is built with the tests")
}

fn request(
    module: &switchyard_loader::Module,
    name: &str,
    body: Value,
) -> Result<Value, CallError> {
    let reply = module.request(name, body.to_string().as_bytes())?;
    Ok(serde_json::from_slice(&reply).unwrap())
}

#[test]
fn the_loaded_module_records_a_bridged_call_through_the_console() {
    let library = Library::open(&library_path()).unwrap();
    assert_eq!(library.name(), "mod_recorder");
    assert_eq!(library.abi(), (1, 0));
    let host = Arc::new(RecordingHost::default());
    let module = library.start(host.clone()).unwrap();
    {
        let seen = host.0.lock().unwrap();
        assert!(
            seen.registered
                .contains(&(InterfaceKind::Application, "record_session".into()))
        );
        assert!(
            seen.registered
                .contains(&(InterfaceKind::Command, "recorder".into()))
        );
        assert!(
            seen.registered
                .contains(&(InterfaceKind::Subscription, "call.answered".into()))
        );
    }
    let error = request(&module, "module.config", json!({ "mode": "sometimes" })).unwrap_err();
    assert!(error.to_string().contains("sometimes"), "{error}");
    assert_eq!(
        request(&module, "module.config", json!({ "queues": ["sales"] })).unwrap(),
        json!({})
    );

    let run = json!({ "app": "record_session", "data": "mono", "uuid": "u1", "answered": false,
                      "variables": {} });
    assert_eq!(
        request(&module, "app.run", run).unwrap(),
        json!({ "actions": [] })
    );
    for (uuid, queue) in [("u1", "none"), ("u2", "sales"), ("u3", "billing")] {
        let event = json!({ "event": "call.answered", "uuid": uuid, "caller": "1000",
                            "callee": "1001", "bridged": true, "variables": { "queue": queue } });
        request(&module, "event", event).unwrap();
    }
    let status = request(
        &module,
        "command",
        json!({ "command": "recorder", "args": "status" }),
    );
    let text = status.unwrap()["text"].as_str().unwrap().to_owned();
    assert!(
        text.contains("u1 recording (mono, record_session)"),
        "{text}"
    );
    assert!(
        text.contains("u2 recording (stereo, queue sales)"),
        "{text}"
    );

    let sent = std::mem::take(&mut host.0.lock().unwrap().sent);
    assert_eq!(
        sent,
        [
            ("console".to_owned(), json!({ "line": "record mono u1" })),
            ("console".to_owned(), json!({ "line": "record start u2" })),
        ]
    );
    let error = module.request("http.request", b"{}").unwrap_err();
    assert!(matches!(error, CallError::UnknownMessage { .. }), "{error}");
    assert!(!module.is_disabled());
}
