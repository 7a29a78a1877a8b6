//! The SDK glue: `declare_module!` and the [`Module`](switchyard_abi::sdk::Module) impl. It
//! registers the interfaces, forwards the host's messages to [`Recorder`] and sends the
//! console lines the policy decides on.

use switchyard_abi::sdk::{Host, HostApi, MessageError, Module};
use switchyard_abi::{InterfaceKind, LogLevel};

use crate::RecorderError;
use crate::wire::{APPLICATIONS, COMMAND, EVENTS, Recorder, console_body};

/// The loaded module: the recorder and nothing else.
#[derive(Debug, Default)]
pub struct RecorderModule {
    recorder: Recorder,
}

impl RecorderModule {
    /// Registers the applications, the `recorder` command and the two event subscriptions.
    pub fn start(host: &impl Host) -> Result<RecorderModule, String> {
        for (name, help) in APPLICATIONS {
            host.register(InterfaceKind::Application, name, help)?;
        }
        host.register(InterfaceKind::Command, COMMAND.0, COMMAND.1)?;
        for event in EVENTS {
            host.register(InterfaceKind::Subscription, event, "")?;
        }
        Ok(RecorderModule::default())
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// One host message: the policy's console line, if any, is sent (queued by the host)
    /// before the reply goes back.
    pub fn handle(
        &mut self,
        host: &impl Host,
        name: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, MessageError> {
        let handled = self.recorder.handle(name, body).map_err(|error| {
            if !matches!(error, RecorderError::UnknownMessage(_)) {
                host.log(LogLevel::Warn, &error.to_string());
            }
            message_error(error)
        })?;
        if let Some(line) = handled.console {
            match host.send("console", &console_body(&line)) {
                Ok(()) => host.log(LogLevel::Info, &line),
                Err(reason) => host.log(LogLevel::Error, &format!("{line}: {reason}")),
            }
        }
        Ok(handled.reply)
    }
}

fn message_error(error: RecorderError) -> MessageError {
    match error {
        RecorderError::UnknownMessage(_) => MessageError::Unknown,
        RecorderError::BadMessage { .. }
        | RecorderError::Uuid(_)
        | RecorderError::UnknownApplication(_) => MessageError::BadInput(error.to_string()),
        other => MessageError::Failed(other.to_string()),
    }
}

impl Module for RecorderModule {
    fn load(host: &HostApi) -> Result<Self, String> {
        RecorderModule::start(host)
    }

    fn message(
        &mut self,
        host: &HostApi,
        name: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, MessageError> {
        self.handle(host, name, body)
    }
}

switchyard_abi::declare_module!(
    name = "mod_recorder",
    version = "0.1.0",
    module = RecorderModule
);

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use serde_json::{Value, json};

    use super::*;

    /// A host that records what the module does, and refuses what it is told to.
    #[derive(Default)]
    struct FakeHost {
        registered: RefCell<Vec<(InterfaceKind, String)>>,
        sent: RefCell<Vec<(String, Value)>>,
        logged: RefCell<Vec<(LogLevel, String)>>,
        refuse: Option<&'static str>,
    }

    impl Host for FakeHost {
        fn register(&self, kind: InterfaceKind, name: &str, _help: &str) -> Result<(), String> {
            if self.refuse == Some(name) {
                return Err(format!("{name} is taken"));
            }
            self.registered.borrow_mut().push((kind, name.to_owned()));
            Ok(())
        }

        fn send(&self, name: &str, body: &[u8]) -> Result<(), String> {
            if self.refuse == Some(name) {
                return Err("queue full".into());
            }
            let body = serde_json::from_slice(body).map_err(|e| e.to_string())?;
            self.sent.borrow_mut().push((name.to_owned(), body));
            Ok(())
        }

        fn log(&self, level: LogLevel, message: &str) {
            self.logged.borrow_mut().push((level, message.to_owned()));
        }
    }

    fn answered(uuid: &str) -> Vec<u8> {
        json!({ "event": "call.answered", "uuid": uuid, "caller": "1000", "bridged": true,
                "variables": {} })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn load_registers_the_applications_the_command_and_the_subscriptions() {
        let host = FakeHost::default();
        RecorderModule::start(&host).unwrap();
        let registered = host.registered.borrow();
        let names = |kind: InterfaceKind| -> Vec<&str> {
            registered
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, n)| n.as_str())
                .collect()
        };
        assert_eq!(
            names(InterfaceKind::Application),
            [
                "record_session",
                "record_pause",
                "record_resume",
                "record_stop"
            ]
        );
        assert_eq!(names(InterfaceKind::Command), ["recorder"]);
        assert_eq!(
            names(InterfaceKind::Subscription),
            ["call.answered", "call.ended"]
        );
        assert_eq!(registered.len(), 7);
    }

    #[test]
    fn a_refused_registration_refuses_the_load() {
        let host = FakeHost {
            refuse: Some("recorder"),
            ..FakeHost::default()
        };
        let error = RecorderModule::start(&host).unwrap_err();
        assert_eq!(error, "recorder is taken");
    }

    #[test]
    fn a_decision_is_sent_to_the_host_as_a_console_line() {
        let host = FakeHost::default();
        let mut module = RecorderModule::start(&host).unwrap();
        let reply = module
            .handle(&host, "module.config", br#"{"mode":"all","layout":"mono"}"#)
            .unwrap();
        assert_eq!(reply, b"{}");
        assert_eq!(
            module.handle(&host, "event", &answered("u1")).unwrap(),
            b"{}"
        );
        assert_eq!(
            *host.sent.borrow(),
            [("console".to_owned(), json!({ "line": "record mono u1" }))]
        );
        assert!(
            host.logged
                .borrow()
                .contains(&(LogLevel::Info, "record mono u1".to_owned()))
        );
        assert!(module.recorder().policy().call("u1").is_some());
    }

    #[test]
    fn a_send_the_host_refuses_is_logged() {
        let host = FakeHost {
            refuse: Some("console"),
            ..FakeHost::default()
        };
        let mut module = RecorderModule::default();
        module
            .handle(&host, "module.config", br#"{"mode":"all"}"#)
            .unwrap();
        module.handle(&host, "event", &answered("u1")).unwrap();
        assert!(host.sent.borrow().is_empty());
        assert_eq!(
            *host.logged.borrow(),
            [(LogLevel::Error, "record start u1: queue full".to_owned())]
        );
    }

    #[test]
    fn errors_map_to_the_abi_codes() {
        let host = FakeHost::default();
        let mut module = RecorderModule::default();
        let error = module.handle(&host, "http.request", b"{}").unwrap_err();
        assert_eq!(error, MessageError::Unknown);
        let error = module
            .handle(&host, "module.config", br#"{"layout":"5.1"}"#)
            .unwrap_err();
        assert!(
            matches!(error, MessageError::Failed(ref text) if text.starts_with("mod_recorder config:")),
            "{error:?}"
        );
        let error = module.handle(&host, "event", b"[").unwrap_err();
        assert!(matches!(error, MessageError::BadInput(_)), "{error:?}");
        let body = json!({ "app": "record_louder", "uuid": "u1" }).to_string();
        let error = module
            .handle(&host, "app.run", body.as_bytes())
            .unwrap_err();
        assert!(matches!(error, MessageError::BadInput(ref t) if t.contains("record_louder")));
        // Every refusal but the unknown message name is logged.
        assert_eq!(host.logged.borrow().len(), 3);
        assert!(
            host.logged
                .borrow()
                .iter()
                .all(|(level, _)| *level == LogLevel::Warn)
        );
    }

    #[test]
    fn the_entry_names_abi_1() {
        assert_eq!(switchyard_module.magic, switchyard_abi::SY_MAGIC);
        assert_eq!(switchyard_module.abi_major, switchyard_abi::SY_ABI_MAJOR);
        assert!(switchyard_module.on_message.is_some());
    }
}
