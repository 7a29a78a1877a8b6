//! The recording policy: which calls are recorded, when, in which layout. Pure state and
//! decisions; each decision returns the core console line that carries it out
//! (`record start|mono|pause|resume|stop UUID`), which the module sends the host.
//!
//! The core keeps the mechanism (taps, the WAV writer, encryption, the `record` command) and
//! refuses what it cannot do (no such call, not answered, already recording): its answer is
//! logged by the host. The policy only tracks what it asked for, to not ask twice and to show
//! it in `recorder status`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::RecorderError;
use crate::config::{Layout, Mode, RecorderConfig, is_word};

/// Why a call is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `mode = "all"`.
    All,
    /// The call's queue is in `queues`.
    Queue(String),
    /// `record_session` in the dialplan.
    OnDemand,
}

/// What the policy knows of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallRecording {
    /// `record_session` ran before the call was bridged: recorded once it is.
    Waiting { layout: Layout },
    /// The policy asked the core to record it.
    Recording {
        layout: Layout,
        paused: bool,
        reason: Reason,
    },
    /// `record_stop` ran: not recorded again unless `record_session` asks.
    Stopped,
}

/// A `call.answered` event, as the policy needs it.
#[derive(Debug, Clone, Copy)]
pub struct AnsweredCall<'a> {
    pub uuid: &'a str,
    pub caller: &'a str,
    /// Connected to another party (a bridge), not answered by the dialplan itself.
    pub bridged: bool,
    /// The value of the configured queue variable, if the call has one.
    pub queue: Option<&'a str>,
}

/// The recording policy of the running calls.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    config: RecorderConfig,
    calls: BTreeMap<String, CallRecording>,
}

impl Policy {
    pub fn new(config: RecorderConfig) -> Policy {
        Policy {
            config,
            calls: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &RecorderConfig {
        &self.config
    }

    /// A new configuration (module reload): the calls already known keep their state.
    pub fn reconfigure(&mut self, config: RecorderConfig) {
        self.config = config;
    }

    /// What the policy knows of call `uuid`.
    pub fn call(&self, uuid: &str) -> Option<&CallRecording> {
        self.calls.get(uuid)
    }

    /// How many calls the policy is recording or waiting for (stopped ones included).
    pub fn tracked(&self) -> usize {
        self.calls.len()
    }

    /// A call was answered. Records it if it is bridged and either `record_session` asked for
    /// it, or the mode / its queue say so and its caller is not excluded.
    pub fn call_answered(
        &mut self,
        call: AnsweredCall<'_>,
    ) -> Result<Option<String>, RecorderError> {
        checked_uuid(call.uuid)?;
        // The core announces a call answered by the dialplan (an IVR) with bridged = false and
        // again once bridged: only a conversation between two parties is recorded.
        if !call.bridged {
            return Ok(None);
        }
        match self.calls.get(call.uuid) {
            Some(CallRecording::Recording { .. } | CallRecording::Stopped) => Ok(None),
            Some(CallRecording::Waiting { layout }) => {
                let layout = *layout;
                if self.config.mode == Mode::Off {
                    // Turned off by a reload since record_session ran.
                    self.calls.remove(call.uuid);
                    return Ok(None);
                }
                Ok(Some(self.start(call.uuid, layout, Reason::OnDemand)))
            }
            None => Ok(self
                .automatic_reason(&call)
                .map(|reason| self.start(call.uuid, self.config.layout, reason))),
        }
    }

    /// Why the policy records `call` on its own, if it does.
    fn automatic_reason(&self, call: &AnsweredCall<'_>) -> Option<Reason> {
        if self.config.excludes(call.caller) {
            return None;
        }
        match self.config.mode {
            Mode::Off => None,
            Mode::All => Some(Reason::All),
            Mode::OnDemand => call
                .queue
                .filter(|queue| self.config.records_queue(queue))
                .map(|queue| Reason::Queue(queue.to_owned())),
        }
    }

    /// `record_session [mono|stereo]`: records now if the call is bridged, else once it is.
    /// `record_session` is explicit: the excluded callers are not consulted.
    pub fn record_session(
        &mut self,
        uuid: &str,
        data: &str,
        bridged: bool,
    ) -> Result<Option<String>, RecorderError> {
        checked_uuid(uuid)?;
        if self.config.mode == Mode::Off {
            return Err(RecorderError::Off);
        }
        let layout = Layout::parse_or(data, self.config.layout)?;
        match self.calls.get(uuid) {
            Some(CallRecording::Recording { .. }) => Ok(None),
            _ if bridged => Ok(Some(self.start(uuid, layout, Reason::OnDemand))),
            _ => {
                self.calls
                    .insert(uuid.to_owned(), CallRecording::Waiting { layout });
                Ok(None)
            }
        }
    }

    /// `record_pause`. The line is sent for a call the policy did not start too: the console
    /// may have started it, and the core knows.
    pub fn pause(&mut self, uuid: &str) -> Result<Option<String>, RecorderError> {
        self.set_paused(uuid, true)
    }

    /// `record_resume`.
    pub fn resume(&mut self, uuid: &str) -> Result<Option<String>, RecorderError> {
        self.set_paused(uuid, false)
    }

    fn set_paused(&mut self, uuid: &str, pause: bool) -> Result<Option<String>, RecorderError> {
        checked_uuid(uuid)?;
        let action = if pause { "pause" } else { "resume" };
        match self.calls.get_mut(uuid) {
            Some(CallRecording::Waiting { .. }) => Err(RecorderError::NotRecordingYet {
                uuid: uuid.to_owned(),
                action,
            }),
            Some(CallRecording::Recording { paused, .. }) => {
                *paused = pause;
                Ok(Some(format!("record {action} {uuid}")))
            }
            Some(CallRecording::Stopped) | None => Ok(Some(format!("record {action} {uuid}"))),
        }
    }

    /// `record_stop`: stops the recording, or cancels a `record_session` still waiting for the
    /// bridge. Either way the policy does not record the call again on its own.
    pub fn stop(&mut self, uuid: &str) -> Result<Option<String>, RecorderError> {
        checked_uuid(uuid)?;
        let before = self.calls.insert(uuid.to_owned(), CallRecording::Stopped);
        Ok(match before {
            Some(CallRecording::Waiting { .. }) => None,
            _ => Some(format!("record stop {uuid}")),
        })
    }

    /// `call.ended`: the call is forgotten. Returns whether the policy knew it.
    pub fn call_ended(&mut self, uuid: &str) -> bool {
        self.calls.remove(uuid).is_some()
    }

    /// `recorder status`: the policy, then one line per call it records or waits for.
    pub fn status(&self) -> String {
        let config = &self.config;
        let list = |items: &[String]| match items.is_empty() {
            true => "none".to_owned(),
            false => items.join(", "),
        };
        let mut out = format!(
            "mode {}, layout {}\nqueues (variable {}): {}\nexcluded callers: {}\n",
            config.mode.as_str(),
            config.layout.as_str(),
            config.queue_variable,
            list(&config.queues),
            list(&config.exclude_callers),
        );
        let active = self
            .calls
            .iter()
            .filter(|(_, state)| !matches!(state, CallRecording::Stopped));
        let mut count = 0;
        for (uuid, state) in active {
            count += 1;
            let _ = match state {
                CallRecording::Waiting { layout } => {
                    writeln!(out, "{uuid} waiting for the bridge ({})", layout.as_str())
                }
                CallRecording::Recording {
                    layout,
                    paused,
                    reason,
                } => {
                    let why = match reason {
                        Reason::All => "all calls".to_owned(),
                        Reason::Queue(queue) => format!("queue {queue}"),
                        Reason::OnDemand => "record_session".to_owned(),
                    };
                    let what = if *paused { "paused" } else { "recording" };
                    writeln!(out, "{uuid} {what} ({}, {why})", layout.as_str())
                }
                CallRecording::Stopped => Ok(()),
            };
        }
        let _ = write!(out, "{count} {}", if count == 1 { "call" } else { "calls" });
        out
    }

    fn start(&mut self, uuid: &str, layout: Layout, reason: Reason) -> String {
        self.calls.insert(
            uuid.to_owned(),
            CallRecording::Recording {
                layout,
                paused: false,
                reason,
            },
        );
        format!("record {} {uuid}", layout.console_verb())
    }
}

/// A uuid goes into a console line: one word, or it could smuggle in another command.
fn checked_uuid(uuid: &str) -> Result<(), RecorderError> {
    if is_word(uuid) && uuid.len() <= 128 {
        Ok(())
    } else {
        Err(RecorderError::Uuid(uuid.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> Policy {
        Policy::new(RecorderConfig::from_json(json.as_bytes()).unwrap())
    }

    fn bridged<'a>(uuid: &'a str, caller: &'a str, queue: Option<&'a str>) -> AnsweredCall<'a> {
        AnsweredCall {
            uuid,
            caller,
            bridged: true,
            queue,
        }
    }

    fn line(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    #[test]
    fn mode_all_records_every_bridged_call_once() {
        let mut p = policy(r#"{"mode":"all"}"#);
        assert_eq!(
            p.call_answered(bridged("u1", "1000", None)).unwrap(),
            line("record start u1")
        );
        // Announced again (a transfer re-bridges it): already recording.
        assert_eq!(p.call_answered(bridged("u1", "1000", None)).unwrap(), None);
        assert_eq!(
            p.call("u1"),
            Some(&CallRecording::Recording {
                layout: Layout::Stereo,
                paused: false,
                reason: Reason::All
            })
        );
        assert_eq!(
            p.call_answered(bridged("u2", "1001", Some("x"))).unwrap(),
            line("record start u2")
        );
    }

    #[test]
    fn a_call_answered_by_the_dialplan_is_not_recorded_until_bridged() {
        let mut p = policy(r#"{"mode":"all","layout":"mono"}"#);
        let ivr = AnsweredCall {
            bridged: false,
            ..bridged("u1", "1000", None)
        };
        assert_eq!(p.call_answered(ivr).unwrap(), None);
        assert_eq!(p.tracked(), 0);
        assert_eq!(
            p.call_answered(bridged("u1", "1000", None)).unwrap(),
            line("record mono u1")
        );
    }

    #[test]
    fn mode_off_records_nothing_and_refuses_record_session() {
        let mut p = policy(r#"{"mode":"off","queues":["sales"]}"#);
        assert_eq!(
            p.call_answered(bridged("u1", "1000", Some("sales")))
                .unwrap(),
            None
        );
        let error = p.record_session("u1", "", true).unwrap_err();
        assert!(matches!(error, RecorderError::Off));
        assert!(error.to_string().contains("off"), "{error}");
        assert_eq!(p.tracked(), 0);
    }

    #[test]
    fn on_demand_records_only_the_configured_queues() {
        let mut p = policy(r#"{"queues":["sales","support"]}"#);
        assert_eq!(p.call_answered(bridged("u1", "1000", None)).unwrap(), None);
        assert_eq!(
            p.call_answered(bridged("u2", "1000", Some("billing")))
                .unwrap(),
            None
        );
        assert_eq!(
            p.call_answered(bridged("u3", "1000", Some("support")))
                .unwrap(),
            line("record start u3")
        );
        assert_eq!(
            p.call("u3"),
            Some(&CallRecording::Recording {
                layout: Layout::Stereo,
                paused: false,
                reason: Reason::Queue("support".into())
            })
        );
        assert_eq!(p.tracked(), 1);
    }

    #[test]
    fn excluded_callers_are_not_recorded_on_the_policys_own() {
        let mut p = policy(r#"{"mode":"all","exclude_callers":["1000"]}"#);
        assert_eq!(p.call_answered(bridged("u1", "1000", None)).unwrap(), None);
        assert_eq!(
            p.call_answered(bridged("u2", "1001", None)).unwrap(),
            line("record start u2")
        );
        let mut p = policy(r#"{"queues":["sales"],"exclude_callers":["1000"]}"#);
        assert_eq!(
            p.call_answered(bridged("u1", "1000", Some("sales")))
                .unwrap(),
            None
        );
        // record_session is the dialplan's explicit wish.
        p.record_session("u3", "", false).unwrap();
        assert_eq!(
            p.call_answered(bridged("u3", "1000", None)).unwrap(),
            line("record start u3")
        );
    }

    #[test]
    fn record_session_before_the_answer_waits_for_the_bridge() {
        let mut p = policy("{}");
        assert_eq!(p.record_session("u1", "mono", false).unwrap(), None);
        assert_eq!(
            p.call("u1"),
            Some(&CallRecording::Waiting {
                layout: Layout::Mono
            })
        );
        let answered_by_plan = AnsweredCall {
            bridged: false,
            ..bridged("u1", "1000", None)
        };
        assert_eq!(p.call_answered(answered_by_plan).unwrap(), None);
        assert_eq!(
            p.call_answered(bridged("u1", "1000", None)).unwrap(),
            line("record mono u1")
        );
        assert_eq!(
            p.call("u1"),
            Some(&CallRecording::Recording {
                layout: Layout::Mono,
                paused: false,
                reason: Reason::OnDemand
            })
        );
    }

    #[test]
    fn record_session_on_a_bridged_call_records_now_once() {
        let mut p = policy(r#"{"layout":"mono"}"#);
        assert_eq!(
            p.record_session("u1", "", true).unwrap(),
            line("record mono u1")
        );
        assert_eq!(p.record_session("u1", "stereo", true).unwrap(), None);
        assert_eq!(p.call_answered(bridged("u1", "1000", None)).unwrap(), None);
        assert_eq!(
            p.record_session("u2", "stereo", true).unwrap(),
            line("record start u2")
        );
    }

    #[test]
    fn record_session_layout_overrides_mode_all() {
        let mut p = policy(r#"{"mode":"all"}"#);
        p.record_session("u1", "mono", false).unwrap();
        assert_eq!(
            p.call_answered(bridged("u1", "1000", None)).unwrap(),
            line("record mono u1")
        );
    }

    #[test]
    fn record_session_refuses_an_unknown_layout() {
        let mut p = policy("{}");
        let error = p.record_session("u1", "quad", false).unwrap_err();
        assert!(matches!(error, RecorderError::Layout(_)));
        assert_eq!(p.tracked(), 0);
    }

    #[test]
    fn pause_resume_and_stop_send_the_console_lines() {
        let mut p = policy(r#"{"mode":"all"}"#);
        p.call_answered(bridged("u1", "1000", None)).unwrap();
        assert!(p.status().ends_with("\n1 call"), "{}", p.status());
        assert_eq!(p.pause("u1").unwrap(), line("record pause u1"));
        assert!(matches!(
            p.call("u1"),
            Some(CallRecording::Recording { paused: true, .. })
        ));
        assert!(
            p.status().contains("u1 paused (stereo, all calls)"),
            "{}",
            p.status()
        );
        assert_eq!(p.resume("u1").unwrap(), line("record resume u1"));
        assert!(matches!(
            p.call("u1"),
            Some(CallRecording::Recording { paused: false, .. })
        ));
        assert_eq!(p.stop("u1").unwrap(), line("record stop u1"));
        assert_eq!(p.call("u1"), Some(&CallRecording::Stopped));
        // Stopped: a later bridge (after a transfer) does not restart it...
        assert_eq!(p.call_answered(bridged("u1", "1000", None)).unwrap(), None);
        // ...but record_session does.
        assert_eq!(
            p.record_session("u1", "", true).unwrap(),
            line("record start u1")
        );
    }

    #[test]
    fn pause_of_a_call_the_console_recorded_goes_to_the_core() {
        let mut p = policy("{}");
        assert_eq!(p.pause("u9").unwrap(), line("record pause u9"));
        assert_eq!(p.resume("u9").unwrap(), line("record resume u9"));
        assert_eq!(p.tracked(), 0);
    }

    #[test]
    fn stop_before_the_bridge_cancels_the_wish() {
        let mut p = policy("{}");
        p.record_session("u1", "", false).unwrap();
        let error = p.pause("u1").unwrap_err();
        assert!(error.to_string().contains("waiting"), "{error}");
        assert!(p.resume("u1").is_err());
        assert_eq!(p.stop("u1").unwrap(), None);
        assert_eq!(p.call_answered(bridged("u1", "1000", None)).unwrap(), None);
        // In mode all, record_stop before the bridge keeps the call out of the recordings.
        let mut p = policy(r#"{"mode":"all"}"#);
        assert_eq!(p.stop("u2").unwrap(), line("record stop u2"));
        assert_eq!(p.call_answered(bridged("u2", "1000", None)).unwrap(), None);
    }

    #[test]
    fn ended_calls_are_forgotten() {
        let mut p = policy(r#"{"mode":"all"}"#);
        p.call_answered(bridged("u1", "1000", None)).unwrap();
        p.record_session("u2", "", false).unwrap();
        p.stop("u3").unwrap();
        assert_eq!(p.tracked(), 3);
        assert!(p.call_ended("u1"));
        assert!(p.call_ended("u2"));
        assert!(p.call_ended("u3"));
        assert!(!p.call_ended("u1"));
        assert_eq!(p.tracked(), 0);
        assert_eq!(p.call("u2"), None);
        assert!(p.status().ends_with("0 calls"), "{}", p.status());
    }

    #[test]
    fn a_reload_to_off_drops_the_waiting_calls_at_their_bridge() {
        let mut p = policy("{}");
        p.record_session("u1", "", false).unwrap();
        p.reconfigure(RecorderConfig::from_json(br#"{"mode":"off"}"#).unwrap());
        assert_eq!(p.config().mode, Mode::Off);
        assert_eq!(p.call_answered(bridged("u1", "1000", None)).unwrap(), None);
        assert_eq!(p.tracked(), 0);
    }

    #[test]
    fn a_uuid_that_is_not_one_word_is_refused() {
        let mut p = policy(r#"{"mode":"all"}"#);
        for bad in ["", "u1 hupall", "u1\nshutdown", &"x".repeat(129)] {
            assert!(matches!(
                p.call_answered(bridged(bad, "1000", None)),
                Err(RecorderError::Uuid(_))
            ));
            assert!(matches!(
                p.record_session(bad, "", true),
                Err(RecorderError::Uuid(_))
            ));
            assert!(matches!(p.pause(bad), Err(RecorderError::Uuid(_))));
            assert!(matches!(p.resume(bad), Err(RecorderError::Uuid(_))));
            assert!(matches!(p.stop(bad), Err(RecorderError::Uuid(_))));
        }
        assert_eq!(p.tracked(), 0);
    }

    #[test]
    fn status_shows_the_policy_and_the_calls() {
        let mut p = policy(
            r#"{"layout":"mono","queue_variable":"acd_queue","queues":["sales","support"],
                "exclude_callers":["1000"]}"#,
        );
        p.call_answered(bridged("u1", "1001", Some("sales")))
            .unwrap();
        p.record_session("u2", "stereo", false).unwrap();
        p.record_session("u3", "", true).unwrap();
        p.stop("u4").unwrap();
        let status = p.status();
        assert_eq!(
            status,
            "mode on-demand, layout mono\n\
             queues (variable acd_queue): sales, support\n\
             excluded callers: 1000\n\
             u1 recording (mono, queue sales)\n\
             u2 waiting for the bridge (stereo)\n\
             u3 recording (mono, record_session)\n\
             3 calls"
        );
        let empty = policy("{}").status();
        assert_eq!(
            empty,
            "mode on-demand, layout stereo\nqueues (variable queue): none\n\
             excluded callers: none\n0 calls"
        );
    }
}
