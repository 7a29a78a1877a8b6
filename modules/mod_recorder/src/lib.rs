//! `mod_recorder`: the call-recording policy as a module. The core keeps the mechanism (media
//! taps, the WAV writer, encryption at rest, the console's `record start|mono|pause|resume|stop
//! UUID`); this module decides which calls are recorded and drives the core through that
//! console command.
//!
//! - `mode = "all"` records every answered, bridged call; `"on-demand"` (the default) records
//!   the calls of `queues` and those the dialplan asks for; `"off"` records nothing.
//! - Dialplan applications: `record_session [mono|stereo]`, `record_pause`, `record_resume`,
//!   `record_stop`. Console: `recorder status`.
//!
//! [`Policy`] is the pure decision core, [`Recorder`] its JSON messages; the `declare_module!`
//! glue only forwards the host's messages and sends the console lines they produce.

#![forbid(unsafe_code)]

pub mod config;
pub mod policy;
pub mod wire;

pub use config::{Layout, Mode, RecorderConfig};
pub use policy::{AnsweredCall, CallRecording, Policy, Reason};
pub use wire::{Handled, Recorder, console_body};

/// Everything the recorder refuses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecorderError {
    /// conf/modules.toml's `[module.config]` table for mod_recorder is wrong.
    #[error("mod_recorder config: {0}")]
    Config(String),
    /// `record_session` while `mode = "off"`.
    #[error("recording is off (mode = \"off\" in mod_recorder's config)")]
    Off,
    /// `record_session` data other than `mono` / `stereo`.
    #[error("unknown layout {0:?}: say mono or stereo")]
    Layout(String),
    /// A call uuid that would not be one word of a console line.
    #[error("call uuid {0:?} is not one word")]
    Uuid(String),
    /// `record_pause` / `record_resume` while `record_session` waits for the bridge.
    #[error("{uuid} is waiting for the bridge, not recording yet: nothing to {action}")]
    NotRecordingYet { uuid: String, action: &'static str },
    /// A host message whose body is not what the contract says.
    #[error("bad {message} body: {reason}")]
    BadMessage { message: String, reason: String },
    /// `app.run` for an application this module did not register.
    #[error("mod_recorder has no application {0}")]
    UnknownApplication(String),
    /// A host message this module does not handle.
    #[error("mod_recorder does not handle message {0}")]
    UnknownMessage(String),
}

pub mod module;
