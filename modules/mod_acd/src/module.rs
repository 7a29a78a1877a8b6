//! The SDK glue: `declare_module!` and the [`Module`] impl. It registers the interfaces and
//! hands the host what the [`Switchboard`] decided: console lines, queue-log rows, events,
//! log lines.

use switchyard_abi::sdk::{Host, HostApi, MessageError, Module};
use switchyard_abi::{InterfaceKind, LogLevel};

use crate::AcdError;
use crate::voice::{APPLICATIONS, COMMANDS, EVENTS, Send, Switchboard};

/// The loaded module.
#[derive(Debug, Default)]
pub struct AcdModule {
    switchboard: Switchboard,
}

impl AcdModule {
    /// Registers the applications, the commands and the event subscriptions.
    pub fn start(host: &impl Host) -> Result<AcdModule, String> {
        for (name, help) in APPLICATIONS {
            host.register(InterfaceKind::Application, name, help)?;
        }
        for (name, help) in COMMANDS {
            host.register(InterfaceKind::Command, name, help)?;
        }
        for event in EVENTS {
            host.register(InterfaceKind::Subscription, event, "")?;
        }
        Ok(AcdModule::default())
    }

    pub fn switchboard(&self) -> &Switchboard {
        &self.switchboard
    }

    /// One host message: what the switchboard decided is sent (queued by the host) before
    /// the reply goes back.
    pub fn handle(
        &mut self,
        host: &impl Host,
        name: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, MessageError> {
        let handled = self.switchboard.handle(name, body).map_err(|error| {
            if !matches!(error, AcdError::UnknownMessage(_)) {
                host.log(LogLevel::Warn, &error.to_string());
            }
            message_error(error)
        })?;
        for send in handled.sends {
            deliver(host, &send);
        }
        Ok(handled.reply.to_string().into_bytes())
    }
}

fn deliver(host: &impl Host, send: &Send) {
    if send.name == "log" {
        let text = send.body["message"].as_str().unwrap_or_default();
        let level = match send.body["level"].as_str() {
            Some("warn") => LogLevel::Warn,
            Some("error") => LogLevel::Error,
            _ => LogLevel::Info,
        };
        return host.log(level, text);
    }
    if let Err(reason) = host.send(send.name, send.body.to_string().as_bytes()) {
        host.log(
            LogLevel::Error,
            &format!("{} {}: {reason}", send.name, send.body),
        );
    }
}

fn message_error(error: AcdError) -> MessageError {
    match error {
        AcdError::UnknownMessage(_) => MessageError::Unknown,
        AcdError::BadMessage { .. } | AcdError::UnknownApplication(_) => {
            MessageError::BadInput(error.to_string())
        }
        other => MessageError::Failed(other.to_string()),
    }
}

impl Module for AcdModule {
    fn load(host: &HostApi) -> Result<Self, String> {
        AcdModule::start(host)
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

switchyard_abi::declare_module!(name = "mod_acd", version = "0.1.0", module = AcdModule);

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use serde_json::{Value, json};

    use super::*;

    /// A host that records what the module does.
    #[derive(Default)]
    struct FakeHost {
        registered: RefCell<Vec<(InterfaceKind, String)>>,
        sent: RefCell<Vec<(String, Value)>>,
        logged: RefCell<Vec<(LogLevel, String)>>,
    }

    impl Host for FakeHost {
        fn register(&self, kind: InterfaceKind, name: &str, _help: &str) -> Result<(), String> {
            self.registered.borrow_mut().push((kind, name.to_owned()));
            Ok(())
        }

        fn send(&self, name: &str, body: &[u8]) -> Result<(), String> {
            let body = serde_json::from_slice(body).map_err(|e| e.to_string())?;
            self.sent.borrow_mut().push((name.to_owned(), body));
            Ok(())
        }

        fn log(&self, level: LogLevel, message: &str) {
            self.logged.borrow_mut().push((level, message.to_owned()));
        }
    }

    #[test]
    fn load_registers_and_messages_reach_the_host() {
        let host = FakeHost::default();
        let mut module = AcdModule::start(&host).unwrap();
        let registered = host.registered.borrow().clone();
        let count = |kind: InterfaceKind| registered.iter().filter(|(k, _)| *k == kind).count();
        assert_eq!(count(InterfaceKind::Application), APPLICATIONS.len());
        assert_eq!(count(InterfaceKind::Command), COMMANDS.len());
        assert_eq!(count(InterfaceKind::Subscription), EVENTS.len());

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("queues.toml"),
            "[[queue]]\nname = \"q\"\n[[agent]]\nid = 7\ntiers = [{ queue = \"q\" }]\n",
        )
        .unwrap();
        let host_body = json!({ "conf_dir": dir.path() }).to_string();
        module
            .handle(&host, "module.host", host_body.as_bytes())
            .unwrap();
        module
            .handle(&host, "module.config", br#"{"file":"queues.toml"}"#)
            .unwrap();
        let command = json!({ "command": "agent", "args": "login 7", "now_ms": 5 }).to_string();
        let reply = module.handle(&host, "command", command.as_bytes()).unwrap();
        let reply: Value = serde_json::from_slice(&reply).unwrap();
        assert_eq!(reply["text"], "agent 7 available\n");
        // The login's queue-log row and event went to the host as messages.
        let sent = host.sent.borrow();
        assert!(
            sent.iter()
                .any(|(n, b)| n == "queue_log" && b["event"] == "AGENTLOGIN")
        );
        assert!(
            sent.iter()
                .any(|(n, b)| n == "event" && b["event"] == "acd.agent")
        );

        // A refused configuration is an error the loader sees, and is logged.
        std::fs::write(dir.path().join("queues.toml"), "[[queue]]\nname = 1\n").unwrap();
        let error = module
            .handle(&host, "module.config", br#"{"file":"queues.toml"}"#)
            .unwrap_err();
        assert!(matches!(error, MessageError::Failed(ref t) if t.contains("queues.toml")));
        assert_eq!(host.logged.borrow().len(), 1);
        assert_eq!(
            module.handle(&host, "http.request", b"{}").unwrap_err(),
            MessageError::Unknown
        );
    }
}
