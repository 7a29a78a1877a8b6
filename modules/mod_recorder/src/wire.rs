//! The host's messages (issue 5 contract: `module.config`, `app.run`, `command`, `event`) in
//! and out of JSON, around the [`Policy`]. No host here: what the module must send the host is
//! returned in [`Handled::console`], so the whole exchange is tested without a loaded library.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::RecorderError;
use crate::config::RecorderConfig;
use crate::policy::{AnsweredCall, Policy};

/// The dialplan applications the module registers, with their help.
pub const APPLICATIONS: [(&str, &str); 4] = [
    (
        "record_session",
        "record_session [mono|stereo]: record this call once it is bridged",
    ),
    ("record_pause", "record_pause: pause this call's recording"),
    (
        "record_resume",
        "record_resume: resume this call's recording",
    ),
    ("record_stop", "record_stop: stop this call's recording"),
];

/// The console command the module registers, with its help.
pub const COMMAND: (&str, &str) = (
    "recorder",
    "recorder status: the recording policy and the calls it records",
);

/// The events the module subscribes to.
pub const EVENTS: [&str; 2] = ["call.answered", "call.ended"];

/// The outcome of one host message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    /// The JSON reply to the message.
    pub reply: Vec<u8>,
    /// A core console line the module sends the host (`console` message) to act on a call.
    pub console: Option<String>,
}

impl Handled {
    fn reply(value: Value) -> Handled {
        Handled {
            reply: value.to_string().into_bytes(),
            console: None,
        }
    }
}

/// The body of the `console` message that runs `line`: `{"line":"record start UUID"}`.
pub fn console_body(line: &str) -> Vec<u8> {
    json!({ "line": line }).to_string().into_bytes()
}

#[derive(Deserialize)]
struct AppRun {
    app: String,
    #[serde(default)]
    data: String,
    uuid: String,
    #[serde(default)]
    answered: bool,
    #[serde(default)]
    variables: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct Command {
    command: String,
    #[serde(default)]
    args: String,
}

#[derive(Deserialize)]
struct Event {
    event: String,
    #[serde(default)]
    uuid: String,
    #[serde(default)]
    caller: String,
    #[serde(default)]
    bridged: bool,
    #[serde(default)]
    variables: BTreeMap<String, Value>,
}

/// The recorder module's state behind the host's messages.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    policy: Policy,
}

impl Recorder {
    /// A recorder with the default configuration, until `module.config` arrives.
    pub fn new() -> Recorder {
        Recorder::default()
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// One host message. A refused configuration, a malformed body or an unknown message is
    /// an error; a dialplan application that cannot act answers with a `log` action instead,
    /// so the call's log says why, and a command failing answers `{"ok":false}`.
    pub fn handle(&mut self, name: &str, body: &[u8]) -> Result<Handled, RecorderError> {
        match name {
            "module.config" => {
                let config = RecorderConfig::from_json(body)?;
                self.policy.reconfigure(config);
                Ok(Handled::reply(json!({})))
            }
            "module.reload" => Ok(Handled::reply(json!({}))),
            "app.run" => self.app_run(parse(name, body)?),
            "command" => Ok(self.command(parse(name, body)?)),
            "event" => self.event(parse(name, body)?),
            other => Err(RecorderError::UnknownMessage(other.to_owned())),
        }
    }

    fn app_run(&mut self, run: AppRun) -> Result<Handled, RecorderError> {
        let decision = match run.app.as_str() {
            "record_session" => {
                // A dialplan application runs while the call is not in a bridge; should the
                // core one day run one during it, it says so with the `bridged` variable.
                let in_bridge = run.answered
                    && run.variables.get("bridged").and_then(Value::as_str) == Some("true");
                self.policy.record_session(&run.uuid, &run.data, in_bridge)
            }
            "record_pause" => self.policy.pause(&run.uuid),
            "record_resume" => self.policy.resume(&run.uuid),
            "record_stop" => self.policy.stop(&run.uuid),
            other => return Err(RecorderError::UnknownApplication(other.to_owned())),
        };
        Ok(match decision {
            Ok(console) => Handled {
                reply: json!({ "actions": [] }).to_string().into_bytes(),
                console,
            },
            Err(error) => Handled::reply(json!({
                "actions": [["log", format!("WARNING {}: {error}", run.app)]]
            })),
        })
    }

    fn command(&self, command: Command) -> Handled {
        let args = command.args.trim();
        if command.command == COMMAND.0 && matches!(args, "" | "status") {
            Handled::reply(json!({ "ok": true, "text": self.policy.status() }))
        } else {
            Handled::reply(json!({ "ok": false, "error": "usage: recorder [status]" }))
        }
    }

    fn event(&mut self, event: Event) -> Result<Handled, RecorderError> {
        let console = match event.event.as_str() {
            "call.answered" => {
                let variable = &self.policy.config().queue_variable;
                let queue = event.variables.get(variable).and_then(Value::as_str);
                self.policy.call_answered(AnsweredCall {
                    uuid: &event.uuid,
                    caller: &event.caller,
                    bridged: event.bridged,
                    queue,
                })?
            }
            "call.ended" => {
                self.policy.call_ended(&event.uuid);
                None
            }
            // Subscribed to the two above only; anything else is not ours to act on.
            _ => None,
        };
        Ok(Handled {
            reply: b"{}".to_vec(),
            console,
        })
    }
}

fn parse<'a, T: Deserialize<'a>>(message: &str, body: &'a [u8]) -> Result<T, RecorderError> {
    serde_json::from_slice(body).map_err(|e| RecorderError::BadMessage {
        message: message.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;
    use crate::policy::CallRecording;

    fn configured(config: &str) -> Recorder {
        let mut recorder = Recorder::new();
        let handled = recorder.handle("module.config", config.as_bytes()).unwrap();
        assert_eq!(handled.reply, b"{}");
        recorder
    }

    fn json_of(handled: &Handled) -> Value {
        serde_json::from_slice(&handled.reply).unwrap()
    }

    fn answered(uuid: &str, bridged: bool, queue: Option<&str>) -> String {
        let variables = match queue {
            Some(q) => json!({ "queue": q, "caller_id_number": "1000" }),
            None => json!({}),
        };
        json!({
            "event": "call.answered", "uuid": uuid, "caller": "1000", "callee": "1001",
            "destination": "1001", "answered": true, "bridged": bridged, "variables": variables,
        })
        .to_string()
    }

    fn app(name: &str, data: &str, uuid: &str, answered: bool) -> String {
        json!({ "app": name, "data": data, "uuid": uuid, "answered": answered,
                "variables": { "queue": "sales" } })
        .to_string()
    }

    #[test]
    fn the_default_before_any_config_is_on_demand_stereo() {
        let recorder = Recorder::new();
        assert_eq!(recorder.policy().config(), &RecorderConfig::default());
    }

    #[test]
    fn a_bad_config_is_refused_and_the_old_one_kept() {
        let mut recorder = configured(r#"{"mode":"all"}"#);
        let error = recorder
            .handle("module.config", br#"{"mode":"sometimes"}"#)
            .unwrap_err();
        assert!(error.to_string().contains("sometimes"), "{error}");
        assert_eq!(recorder.policy().config().mode, Mode::All);
    }

    #[test]
    fn mode_all_records_at_the_bridged_answer_and_forgets_at_the_end() {
        let mut recorder = configured(r#"{"mode":"all"}"#);
        let handled = recorder
            .handle("event", answered("u1", false, None).as_bytes())
            .unwrap();
        assert_eq!(handled.console, None);
        let handled = recorder
            .handle("event", answered("u1", true, None).as_bytes())
            .unwrap();
        assert_eq!(handled.console.as_deref(), Some("record start u1"));
        assert_eq!(handled.reply, b"{}");
        let ended = json!({ "event": "call.ended", "uuid": "u1", "cause": "NORMAL_CLEARING" });
        let handled = recorder
            .handle("event", ended.to_string().as_bytes())
            .unwrap();
        assert_eq!(handled.console, None);
        assert_eq!(recorder.policy().tracked(), 0);
    }

    #[test]
    fn the_queue_is_read_from_the_configured_variable() {
        let mut recorder = configured(r#"{"queues":["sales"],"queue_variable":"acd_queue"}"#);
        // The default variable name no longer counts.
        let handled = recorder
            .handle("event", answered("u1", true, Some("sales")).as_bytes())
            .unwrap();
        assert_eq!(handled.console, None);
        let event = json!({ "event": "call.answered", "uuid": "u2", "caller": "1000",
                            "bridged": true, "variables": { "acd_queue": "sales" } });
        let handled = recorder
            .handle("event", event.to_string().as_bytes())
            .unwrap();
        assert_eq!(handled.console.as_deref(), Some("record start u2"));
        // A variable that is not a string is no queue.
        let event = json!({ "event": "call.answered", "uuid": "u3", "caller": "1000",
                            "bridged": true, "variables": { "acd_queue": ["sales"] } });
        let handled = recorder
            .handle("event", event.to_string().as_bytes())
            .unwrap();
        assert_eq!(handled.console, None);
    }

    #[test]
    fn record_session_waits_for_the_bridge_then_records() {
        let mut recorder = configured("{}");
        let handled = recorder
            .handle(
                "app.run",
                app("record_session", "mono", "u1", false).as_bytes(),
            )
            .unwrap();
        assert_eq!(json_of(&handled), json!({ "actions": [] }));
        assert_eq!(handled.console, None);
        // Answered by the plan (say an IVR) and not bridged: still waiting.
        let handled = recorder
            .handle("app.run", app("record_session", "", "u2", true).as_bytes())
            .unwrap();
        assert_eq!(handled.console, None);
        let handled = recorder
            .handle("event", answered("u1", true, None).as_bytes())
            .unwrap();
        assert_eq!(handled.console.as_deref(), Some("record mono u1"));
        let handled = recorder
            .handle("event", answered("u2", true, None).as_bytes())
            .unwrap();
        assert_eq!(handled.console.as_deref(), Some("record start u2"));
    }

    #[test]
    fn record_session_in_a_bridge_records_now() {
        let mut recorder = configured("{}");
        let body = json!({ "app": "record_session", "data": "", "uuid": "u1", "answered": true,
                           "variables": { "bridged": "true" } });
        let handled = recorder
            .handle("app.run", body.to_string().as_bytes())
            .unwrap();
        assert_eq!(handled.console.as_deref(), Some("record start u1"));
    }

    #[test]
    fn pause_resume_stop_applications_send_their_lines() {
        let mut recorder = configured(r#"{"mode":"all"}"#);
        recorder
            .handle("event", answered("u1", true, None).as_bytes())
            .unwrap();
        for (application, line) in [
            ("record_pause", "record pause u1"),
            ("record_resume", "record resume u1"),
            ("record_stop", "record stop u1"),
        ] {
            let handled = recorder
                .handle("app.run", app(application, "", "u1", true).as_bytes())
                .unwrap();
            assert_eq!(json_of(&handled), json!({ "actions": [] }));
            assert_eq!(handled.console.as_deref(), Some(line));
        }
        assert_eq!(recorder.policy().call("u1"), Some(&CallRecording::Stopped));
    }

    #[test]
    fn an_application_that_cannot_act_logs_why_in_the_call() {
        let mut recorder = configured(r#"{"mode":"off"}"#);
        let handled = recorder
            .handle("app.run", app("record_session", "", "u1", false).as_bytes())
            .unwrap();
        assert_eq!(handled.console, None);
        let reply = json_of(&handled);
        let log = reply["actions"][0].as_array().unwrap();
        assert_eq!(log[0], "log");
        let text = log[1].as_str().unwrap();
        assert!(
            text.starts_with("WARNING record_session: recording is off"),
            "{text}"
        );
        let mut recorder = configured("{}");
        let handled = recorder
            .handle(
                "app.run",
                app("record_session", "5.1", "u1", false).as_bytes(),
            )
            .unwrap();
        let reply = json_of(&handled);
        assert!(
            reply["actions"][0][1].as_str().unwrap().contains("5.1"),
            "{reply}"
        );
    }

    #[test]
    fn an_unknown_application_or_message_is_an_error() {
        let mut recorder = configured("{}");
        let error = recorder
            .handle("app.run", app("record_louder", "", "u1", true).as_bytes())
            .unwrap_err();
        assert!(matches!(error, RecorderError::UnknownApplication(ref a) if a == "record_louder"));
        let error = recorder.handle("http.request", b"{}").unwrap_err();
        assert!(matches!(error, RecorderError::UnknownMessage(ref m) if m == "http.request"));
        assert_eq!(recorder.handle("module.reload", b"").unwrap().reply, b"{}");
    }

    #[test]
    fn a_malformed_body_is_refused_naming_the_message() {
        let mut recorder = configured("{}");
        for name in ["app.run", "command", "event"] {
            let error = recorder.handle(name, b"{not json").unwrap_err();
            assert!(
                matches!(error, RecorderError::BadMessage { ref message, .. } if message == name)
            );
        }
        // app.run without a uuid.
        let error = recorder
            .handle("app.run", br#"{"app":"record_stop"}"#)
            .unwrap_err();
        assert!(error.to_string().contains("uuid"), "{error}");
        // An event whose uuid could smuggle in a second command.
        let event = json!({ "event": "call.answered", "uuid": "u1 hupall", "bridged": true });
        let error = recorder
            .handle("event", event.to_string().as_bytes())
            .unwrap_err();
        assert!(matches!(error, RecorderError::Uuid(_)));
    }

    #[test]
    fn other_events_are_ignored() {
        let mut recorder = configured(r#"{"mode":"all"}"#);
        let event = json!({ "event": "dtmf", "uuid": "u1", "digit": "5" });
        let handled = recorder
            .handle("event", event.to_string().as_bytes())
            .unwrap();
        assert_eq!(handled.console, None);
        assert_eq!(recorder.policy().tracked(), 0);
    }

    #[test]
    fn the_recorder_command_shows_the_status() {
        let mut recorder = configured(r#"{"mode":"all"}"#);
        recorder
            .handle("event", answered("u1", true, None).as_bytes())
            .unwrap();
        for args in ["", "status", "  status "] {
            let body = json!({ "command": "recorder", "args": args }).to_string();
            let reply = json_of(&recorder.handle("command", body.as_bytes()).unwrap());
            assert_eq!(reply["ok"], true);
            let text = reply["text"].as_str().unwrap();
            assert!(text.starts_with("mode all, layout stereo\n"), "{text}");
            assert!(text.contains("u1 recording (stereo, all calls)"), "{text}");
        }
        let body = json!({ "command": "recorder", "args": "purge" }).to_string();
        let reply = json_of(&recorder.handle("command", body.as_bytes()).unwrap());
        assert_eq!(reply["ok"], false);
        assert_eq!(reply["error"], "usage: recorder [status]");
    }

    #[test]
    fn the_console_message_carries_the_line() {
        let body: Value = serde_json::from_slice(&console_body("record start u1")).unwrap();
        assert_eq!(body, json!({ "line": "record start u1" }));
    }
}
