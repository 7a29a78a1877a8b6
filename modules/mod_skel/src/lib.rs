//! mod_skel: the template every switchyard module starts from (like FreeSWITCH's
//! `mod_skel.c`). Copy this crate, rename it, keep what you need.
//!
//! What it shows, in the order switchyard drives a module:
//! 1. `load`: register what the module offers (a dialplan application `skel_say`, a console
//!    command `skel`, a subscription to `call.ended`, its config section) and log.
//! 2. `module.config`: the `[module.config]` table of conf/modules.toml, as JSON, right after
//!    load and on every reload; parsed into a typed [`Config`] with defaults.
//! 3. `app.run`: a call reached `skel_say DATA` in the dialplan; the reply is the list of
//!    applications the call runs in its place.
//! 4. `command`: `skel ARGS` typed at the console or sent through the API.
//! 5. `event`: events the module subscribed to.
//! 6. `unload`: free what `load` took (here: nothing but the state, dropped by the SDK).
//!
//! A module needs no unsafe code: `declare_module!` (switchyard-abi's SDK) writes the
//! exported entry and the `extern "C"` trampolines, which also catch panics so a bug here
//! disables this module instead of taking the switch down.
//!
//! Build: `cargo build -p mod_skel` gives `target/debug/libmod_skel.so`; list it in
//! conf/modules.toml (`[[module]] name = "mod_skel"`) or `load mod_skel` at the console.

#![forbid(unsafe_code)]

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_abi::sdk::{Frame, HostApi, MessageError, Module};
use switchyard_abi::{InterfaceKind, LogLevel};

/// The module's configuration, the `[module.config]` table of conf/modules.toml.
/// A typed table (name, type, default, reloadable, help) as in FreeSWITCH's mod_skel; every
/// key is reloadable here because it is read on each use.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// What `skel_say` plays when the dialplan gives it no data.
    pub greeting: String,
    /// Whether each `call.ended` event is logged.
    pub log_events: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            greeting: "welcome".into(),
            log_events: true,
        }
    }
}

/// The help of the config section: one line per key (name, type, default, reloadable, help),
/// shown by the console with the module's other registrations.
const CONFIG_HELP: &str = "greeting: string = \"welcome\" (reloadable) what skel_say plays without data; \
                           log_events: bool = true (reloadable) log each call.ended";

/// The body of `app.run`.
#[derive(Debug, Deserialize)]
struct AppRun {
    app: String,
    #[serde(default)]
    data: String,
    #[serde(default)]
    uuid: String,
    #[serde(default)]
    answered: bool,
}

/// The body of `command`.
#[derive(Debug, Deserialize)]
struct Command {
    command: String,
    #[serde(default)]
    args: String,
}

/// The module's state: one per load, owned by the SDK between calls. Calls arrive one at a
/// time, so plain fields (no locks) are enough.
#[derive(Debug, Default)]
pub struct Skel {
    config: Config,
    /// How many times `skel` ran since load.
    commands: u64,
    /// How many `call.ended` events arrived since load.
    calls_ended: u64,
    /// Media frames received since load (a console `tap start UUID mod_skel` sends a call's).
    frames: u64,
}

impl Skel {
    /// `module.config`: replaces the configuration; an empty body means all defaults.
    pub fn configure(&mut self, body: &[u8]) -> Result<Value, MessageError> {
        self.config = if body.iter().all(u8::is_ascii_whitespace) {
            Config::default()
        } else {
            serde_json::from_slice(body)
                .map_err(|e| MessageError::BadInput(format!("[module.config]: {e}")))?
        };
        Ok(json!({}))
    }

    /// `app.run` for `skel_say`: log the data, answer if needed, play the data (a sound name)
    /// or the configured greeting.
    pub fn app_run(&self, body: &[u8]) -> Result<Value, MessageError> {
        let run: AppRun =
            serde_json::from_slice(body).map_err(|e| MessageError::BadInput(e.to_string()))?;
        if run.app != "skel_say" {
            return Err(MessageError::BadInput(format!(
                "mod_skel has no application {}",
                run.app
            )));
        }
        let sound = if run.data.is_empty() {
            self.config.greeting.as_str()
        } else {
            run.data.as_str()
        };
        let mut actions = Vec::new();
        // Playback needs media: answer first unless the call already is.
        if !run.answered {
            actions.push(json!(["answer", ""]));
        }
        actions.push(json!([
            "log",
            format!("INFO skel_say: {} on {}", run.data, run.uuid)
        ]));
        actions.push(json!(["playback", sound]));
        Ok(json!({ "actions": actions }))
    }

    /// `command` for `skel`: counts the calls and shows the configuration.
    pub fn command(&mut self, body: &[u8]) -> Result<Value, MessageError> {
        let command: Command =
            serde_json::from_slice(body).map_err(|e| MessageError::BadInput(e.to_string()))?;
        if command.command != "skel" {
            return Ok(
                json!({ "ok": false, "error": format!("mod_skel has no command {}", command.command) }),
            );
        }
        self.commands += 1;
        let text = format!(
            "skel: call {} (args {:?}); greeting={:?} log_events={}; frames {}; calls ended: {}",
            self.commands,
            command.args,
            self.config.greeting,
            self.config.log_events,
            self.frames,
            self.calls_ended
        );
        Ok(json!({ "ok": true, "text": text }))
    }

    /// `on_frame`: a 20 ms frame of a tapped call. A real module analyses it here; the frame
    /// is only lent, copy what outlives the call. Counts well-formed frames.
    pub fn frame(&mut self, frame: &Frame<'_>) -> Result<(), MessageError> {
        if frame.channels == 0
            || !frame
                .samples
                .len()
                .is_multiple_of(usize::from(frame.channels))
        {
            return Err(MessageError::BadInput(format!(
                "{} samples do not split into {} channels",
                frame.samples.len(),
                frame.channels
            )));
        }
        self.frames += 1;
        Ok(())
    }

    /// `event`: counts `call.ended`; returns the line to log, if any.
    pub fn event(&mut self, body: &[u8]) -> Result<Option<String>, MessageError> {
        let event: Value =
            serde_json::from_slice(body).map_err(|e| MessageError::BadInput(e.to_string()))?;
        if event.get("event").and_then(Value::as_str) != Some("call.ended") {
            return Ok(None);
        }
        self.calls_ended += 1;
        let field = |key: &str| {
            event
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned()
        };
        Ok(self.config.log_events.then(|| {
            format!(
                "call {} ended ({}), {} so far",
                field("uuid"),
                field("cause"),
                self.calls_ended
            )
        }))
    }
}

impl Module for Skel {
    fn load(host: &HostApi) -> Result<Skel, String> {
        // Registrations are only accepted during load; a refused one (a name another module
        // took) refuses the whole module, so nothing half-registered stays behind.
        host.register(
            InterfaceKind::Application,
            "skel_say",
            "skel_say [SOUND]: logs, then plays SOUND or the greeting",
        )?;
        host.register(
            InterfaceKind::Command,
            "skel",
            "skel [ARGS]: shows mod_skel's counters and configuration",
        )?;
        host.register(
            InterfaceKind::Subscription,
            "call.ended",
            "counts ended calls",
        )?;
        host.register(InterfaceKind::ConfigSection, "mod_skel", CONFIG_HELP)?;
        host.log(LogLevel::Info, "mod_skel loaded");
        Ok(Skel::default())
    }

    fn message(
        &mut self,
        host: &HostApi,
        name: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, MessageError> {
        let reply = match name {
            "module.config" => self.configure(body)?,
            "module.reload" => json!({}),
            "app.run" => self.app_run(body)?,
            "command" => self.command(body)?,
            "event" => {
                if let Some(line) = self.event(body)? {
                    host.log(LogLevel::Info, &line);
                }
                json!({})
            }
            // Unknown names are normal: newer switchyards may send messages we predate.
            _ => return Err(MessageError::Unknown),
        };
        Ok(reply.to_string().into_bytes())
    }

    fn frame(
        &mut self,
        _host: &HostApi,
        _stream: u64,
        frame: Frame<'_>,
    ) -> Result<(), MessageError> {
        Skel::frame(self, &frame)
    }

    fn unload(&mut self) {
        // Stop threads, close files, flush here. mod_skel holds nothing outside its state.
    }
}

switchyard_abi::declare_module!(name = "mod_skel", version = "0.1.0", module = Skel);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_overrides() {
        let mut skel = Skel::default();
        skel.configure(b"").expect("empty is defaults");
        assert_eq!(skel.config, Config::default());
        skel.configure(br#"{"greeting":"ivr/hello"}"#)
            .expect("partial table");
        assert_eq!(
            skel.config,
            Config {
                greeting: "ivr/hello".into(),
                log_events: true
            }
        );
        let error = skel
            .configure(br#"{"greting":"x"}"#)
            .expect_err("a misspelt key is refused");
        assert!(
            matches!(error, MessageError::BadInput(ref text) if text.contains("greting")),
            "{error:?}"
        );
    }

    #[test]
    fn skel_say_answers_logs_and_plays() {
        let skel = Skel::default();
        let reply = skel
            .app_run(br#"{"app":"skel_say","data":"","uuid":"u1","answered":false,"variables":{}}"#)
            .expect("app.run");
        assert_eq!(
            reply,
            json!({"actions":[["answer",""],["log","INFO skel_say:  on u1"],["playback","welcome"]]})
        );
        let reply = skel
            .app_run(br#"{"app":"skel_say","data":"tone_stream://%(100,0,440)","uuid":"u2","answered":true}"#)
            .expect("app.run");
        assert_eq!(
            reply["actions"][1],
            json!(["playback", "tone_stream://%(100,0,440)"])
        );
        assert!(skel.app_run(br#"{"app":"other"}"#).is_err());
        assert!(skel.app_run(b"not json").is_err());
    }

    #[test]
    fn command_counts_and_events_count_ended_calls() {
        let mut skel = Skel::default();
        let ended = skel
            .event(br#"{"event":"call.ended","uuid":"u1","cause":"NORMAL_CLEARING"}"#)
            .expect("event");
        assert_eq!(
            ended.as_deref(),
            Some("call u1 ended (NORMAL_CLEARING), 1 so far")
        );
        assert_eq!(
            skel.event(br#"{"event":"call.new","uuid":"u2"}"#)
                .expect("event"),
            None
        );
        let first = skel
            .command(br#"{"command":"skel","args":"a b"}"#)
            .expect("command");
        assert_eq!(first["ok"], json!(true));
        let text = first["text"].as_str().expect("text");
        assert!(
            text.starts_with("skel: call 1 (args \"a b\")") && text.ends_with("calls ended: 1"),
            "{text}"
        );
        let second = skel
            .command(br#"{"command":"skel","args":""}"#)
            .expect("command");
        assert!(
            second["text"]
                .as_str()
                .expect("text")
                .starts_with("skel: call 2")
        );
        let other = skel.command(br#"{"command":"nope"}"#).expect("command");
        assert_eq!(other["ok"], json!(false));
    }

    #[test]
    fn frames_are_counted_and_shown_by_skel() {
        let mut skel = Skel::default();
        let stereo = [0i16; 320];
        let frame = |samples, channels| Frame {
            samples,
            rate: 8000,
            channels,
            format: switchyard_abi::SY_FORMAT_PCM_S16,
        };
        skel.frame(&frame(&stereo, 2)).expect("a stereo frame");
        skel.frame(&frame(&stereo, 2)).expect("a stereo frame");
        assert!(skel.frame(&frame(&stereo[..3], 2)).is_err());
        assert!(skel.frame(&frame(&stereo, 0)).is_err());
        let reply = skel
            .command(br#"{"command":"skel","args":""}"#)
            .expect("command");
        let text = reply["text"].as_str().expect("text");
        assert!(text.contains("; frames 2; "), "{text}");
    }
}
