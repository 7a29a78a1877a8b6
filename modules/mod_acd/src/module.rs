//! The SDK glue: `declare_module!` and the [`Module`] impl. It registers the interfaces and
//! hands the host what the [`Switchboard`] decided: console lines, queue-log rows, events,
//! log lines.

use switchyard_abi::sdk::{HostApi, MessageError, Module};
use switchyard_abi::{InterfaceKind, LogLevel};

use crate::AcdError;
use crate::voice::{APPLICATIONS, COMMANDS, EVENTS, Send, Switchboard};

/// What the glue needs of the host: [`HostApi`] in the daemon, a recorder in the tests.
pub trait Host {
    fn register(&self, kind: InterfaceKind, name: &str, help: &str) -> Result<(), String>;
    fn send(&self, name: &str, body: &[u8]) -> Result<(), String>;
    fn log(&self, level: LogLevel, message: &str);
}

impl Host for HostApi {
    fn register(&self, kind: InterfaceKind, name: &str, help: &str) -> Result<(), String> {
        HostApi::register(self, kind, name, help)
    }

    fn send(&self, name: &str, body: &[u8]) -> Result<(), String> {
        HostApi::send(self, name, body)
    }

    fn log(&self, level: LogLevel, message: &str) {
        HostApi::log(self, level, message);
    }
}

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
