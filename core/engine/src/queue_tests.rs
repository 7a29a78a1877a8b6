//! What a queue module (mod_acd) needs of the engine, on the switch's virtual clock (see
//! switch_tests for the harness): `uuid_exec` into held calls, `transfer_ringback`, the
//! `bridge.failed` event, bridges to literal SIP URIs, the `tick` event and `now_ms`, the
//! `queue_log` and `event` messages. Modules are not loaded here: what the switch publishes
//! is read from `Switch::published`.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_sip::{Message, Method};

use crate::switch_tests::*;

/// A SIPp-style agent: no registration, rung at its URI.
const AGENT: Phone = Phone {
    user: "agent7",
    addr: "127.0.0.1:7009",
};

fn action(application: &str, data: &str) -> String {
    format!("      <action application=\"{application}\" data=\"{data}\"/>\n")
}

fn extension(number: &str, actions: &[(&str, &str)]) -> String {
    let actions: String = actions.iter().map(|(a, d)| action(a, d)).collect();
    format!(
        "    <extension name=\"q{number}\"><condition field=\"destination_number\" expression=\"^{number}$\">\n\
         {actions}    </condition></extension>\n"
    )
}

/// A plan of `extensions` only, and a harness serving it with the repository's sounds.
fn harness(rtp_base: u16, extensions: &[String]) -> (Harness, tempfile::TempDir) {
    let mut plan = String::from("<include>\n  <context name=\"default\">\n");
    for e in extensions {
        plan.push_str(e);
    }
    plan.push_str("  </context>\n</include>\n");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("queue.xml"), plan).unwrap();
    let h = Harness::with_plan_dir(rtp_base, dir.path(), |config| {
        config.media.sounds_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sounds");
    });
    (h, dir)
}

/// The uuid and script state of the only call, from `show calls`.
fn only_call(h: &mut Harness) -> (String, String) {
    let listing = h.switch.execute(h.now, "show calls").unwrap();
    assert!(listing.starts_with("1 calls"), "{listing}");
    let line = listing.lines().nth(1).unwrap().to_owned();
    (line.split_whitespace().next().unwrap().to_owned(), line)
}

/// ALICE's call answered by the plan: the 200, ACKed.
fn answered(h: &mut Harness, sent: &[(std::net::SocketAddr, Message)]) {
    let ok = sent
        .iter()
        .find(|(to, m)| *to == ALICE.peer().addr && m.status() == Some(200))
        .map(|(_, m)| m.clone())
        .expect("the plan answers the caller");
    h.send(ALICE, caller_request(&ok, "ACK", 2));
}

/// Events published so far named `name`, oldest first.
fn events(h: &Harness, name: &str) -> Vec<Value> {
    h.switch
        .published
        .borrow()
        .iter()
        .filter(|e| e["event"] == name)
        .cloned()
        .collect()
}

fn cdr_cause(h: &Harness, call_id: &str) -> String {
    h.cdrs()
        .into_iter()
        .find(|c| c.a_call_id == call_id)
        .map(|c| c.hangup_cause)
        .expect("a CDR")
}

/// `answer`, `moh`, then a `hangup CALL_REJECTED` that must never run: `uuid_exec` steps in
/// and out of the music. A sleep runs and the call goes back to music, not on in the plan;
/// a second `uuid_exec` while the first one's sleep runs cuts it (its timer is void); the
/// last one hangs up.
#[test]
fn uuid_exec_runs_in_a_held_call_which_then_goes_back_to_its_music() {
    let (mut h, _dir) = harness(
        42000,
        &[extension(
            "5970",
            &[("answer", ""), ("moh", ""), ("hangup", "CALL_REJECTED")],
        )],
    );
    h.register(ALICE);
    let (call_id, sent) = h.call(ALICE, "5970");
    answered(&mut h, &sent);
    let (uuid, state) = only_call(&mut h);
    assert!(state.contains("parked"), "{state}");

    let out = h
        .switch
        .execute(h.now, &format!("uuid_exec {uuid} sleep 1000"))
        .unwrap();
    assert!(out.contains("sleep started"), "{out}");
    assert!(only_call(&mut h).1.contains("sleep"));
    h.advance(Duration::from_millis(1000));
    assert!(
        only_call(&mut h).1.contains("parked"),
        "back to the music after the sleep"
    );

    h.switch
        .execute(h.now, &format!("uuid_exec {uuid} sleep 1000"))
        .unwrap();
    h.advance(Duration::from_millis(500));
    h.switch
        .execute(h.now, &format!("uuid_exec {uuid} sleep 2000"))
        .unwrap();
    h.advance(Duration::from_millis(1000));
    assert!(
        only_call(&mut h).1.contains("sleep"),
        "the first sleep was cut: its end does not end the second"
    );
    h.advance(Duration::from_millis(1000));
    assert!(only_call(&mut h).1.contains("parked"));

    h.advance(Duration::from_secs(120));
    assert!(
        requests_to(&h.sent(), ALICE, Method::Bye).is_empty(),
        "the plan's hangup after moh never runs"
    );
    h.switch
        .execute(h.now, &format!("uuid_exec {uuid} hangup USER_BUSY"))
        .unwrap();
    assert_eq!(requests_to(&h.sent(), ALICE, Method::Bye).len(), 1);
    assert_eq!(cdr_cause(&h, &call_id), "USER_BUSY");
    h.assert_nothing_left_after_bye_answers(&[ALICE]);
}

/// An unanswered `park` goes back to park after the application, with its no-answer time
/// counted again; `playback` is cut and the plan goes on after it (a `tone` that holds).
#[test]
fn uuid_exec_in_park_and_playback() {
    let (mut h, _dir) = harness(
        42040,
        &[
            extension("5971", &[("park", ""), ("hangup", "CALL_REJECTED")]),
            extension(
                "5972",
                &[
                    ("playback", "welcome"),
                    ("tone", "ringback"),
                    ("hangup", ""),
                ],
            ),
        ],
    );
    h.register(ALICE);
    let (_, sent) = h.call(ALICE, "5971");
    assert_eq!(statuses_to(&sent, ALICE), vec![100], "park does not answer");
    let (uuid, _) = only_call(&mut h);
    h.switch
        .execute(h.now, &format!("uuid_exec {uuid} set queue=sales"))
        .unwrap();
    let (_, state) = only_call(&mut h);
    assert!(state.contains("parked"), "{state}");
    assert!(
        statuses_to(&h.sent(), ALICE).is_empty(),
        "still not answered"
    );
    h.switch.execute(h.now, "hupall").unwrap();
    h.assert_nothing_left_after_bye_answers(&[ALICE]);

    let (_, sent) = h.call(ALICE, "5972");
    answered(&mut h, &sent);
    let (uuid, state) = only_call(&mut h);
    assert!(state.contains("playback"), "{state}");
    h.switch
        .execute(h.now, &format!("uuid_exec {uuid} set cut=yes"))
        .unwrap();
    let (_, state) = only_call(&mut h);
    assert!(
        state.contains("parked"),
        "the playback was cut; the plan went on to its tone: {state}"
    );
    h.switch.execute(h.now, "hupall").unwrap();
    h.assert_nothing_left_after_bye_answers(&[ALICE]);
}

/// What `uuid_exec` refuses, and says why.
#[test]
fn uuid_exec_refuses_calls_it_cannot_step_into() {
    let (mut h, _dir) = harness(
        42080,
        &[
            extension("5973", &[("answer", ""), ("echo", "")]),
            extension(
                "5974",
                &[(
                    "play_and_get_digits",
                    "1 1 1 5000 # silence_stream://0 silence_stream://0 x ^\\d$",
                )],
            ),
            extension("5975", &[("bridge", "user/1001")]),
            extension("5976", &[("park", "")]),
        ],
    );
    h.register(ALICE);
    h.register(BOB_DESK);
    let exec = |h: &mut Harness, uuid: &str, rest: &str| {
        h.switch
            .execute(h.now, &format!("uuid_exec {uuid} {rest}"))
            .unwrap_err()
    };
    assert!(exec(&mut h, "nope", "park").contains("no such call"));
    assert!(
        h.switch
            .execute(h.now, "uuid_exec")
            .unwrap_err()
            .contains("usage")
    );

    let (_, sent) = h.call(ALICE, "5973");
    answered(&mut h, &sent);
    let (uuid, _) = only_call(&mut h);
    assert!(exec(&mut h, &uuid, "hangup").contains("echo test or a conference"));
    h.switch.execute(h.now, "hupall").unwrap();
    h.assert_nothing_left_after_bye_answers(&[ALICE]);

    let (_, sent) = h.call(ALICE, "5974");
    answered(&mut h, &sent);
    let (uuid, _) = only_call(&mut h);
    assert!(exec(&mut h, &uuid, "hangup").contains("collecting digits"));
    h.switch.execute(h.now, "hupall").unwrap();
    h.assert_nothing_left_after_bye_answers(&[ALICE]);

    let (_, sent) = h.call(ALICE, "5975");
    let invite = requests_to(&sent, BOB_DESK, Method::Invite).pop().unwrap();
    let (uuid, _) = only_call(&mut h);
    assert!(exec(&mut h, &uuid, "hangup").contains("bridging"));
    h.answer(BOB_DESK, &invite, 200, "desk");
    h.sent();
    assert!(exec(&mut h, &uuid, "hangup").contains("bridged"));
    h.switch.execute(h.now, "hupall").unwrap();
    h.assert_nothing_left_after_bye_answers(&[ALICE, BOB_DESK]);

    h.call(ALICE, "5976");
    let (uuid, _) = only_call(&mut h);
    assert!(exec(&mut h, &uuid, "no_such_app x").contains("unknown application"));
    assert!(only_call(&mut h).1.contains("parked"), "left as it was");
    h.switch.execute(h.now, "hupall").unwrap();
    h.assert_nothing_left_after_bye_answers(&[ALICE]);
}

/// INFO events with a `sound` field, as "message sound" lines.
#[derive(Clone, Default)]
struct Ringbacks(Arc<Mutex<Vec<String>>>);

struct SoundField(Option<String>, String);

impl tracing::field::Visit for SoundField {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "sound" {
            self.0 = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.1 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for Ringbacks {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = SoundField(None, String::new());
        event.record(&mut fields);
        if let SoundField(Some(sound), message) = fields {
            self.0.lock().unwrap().push(format!("{message} {sound}"));
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// An answered caller hears `${transfer_ringback}` while the bridge rings (music here); one
/// without it, or whose sound cannot be played, hears the ringback tone.
#[test]
fn transfer_ringback_is_what_an_answered_caller_hears_while_the_bridge_rings() {
    let seen = Ringbacks::default();
    let lines = seen.clone();
    tracing::subscriber::with_default(seen, || {
        let (mut h, _dir) = harness(
            42120,
            &[
                extension(
                    "5977",
                    &[
                        ("answer", ""),
                        ("set", "transfer_ringback=local_stream://moh"),
                        ("bridge", "user/1001"),
                    ],
                ),
                extension("5978", &[("answer", ""), ("bridge", "user/1001")]),
                extension(
                    "5979",
                    &[
                        ("answer", ""),
                        ("set", "transfer_ringback=no-such-prompt"),
                        ("bridge", "user/1001"),
                    ],
                ),
            ],
        );
        h.register(ALICE);
        h.register(BOB_DESK);
        for number in ["5977", "5978", "5979"] {
            let (_, sent) = h.call(ALICE, number);
            answered(&mut h, &sent);
            assert_eq!(requests_to(&sent, BOB_DESK, Method::Invite).len(), 1);
            h.switch.execute(h.now, "hupall").unwrap();
            h.assert_nothing_left_after_bye_answers(&[ALICE, BOB_DESK]);
        }
    });
    let lines = lines.0.lock().unwrap();
    let ringbacks: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("ringback while the bridge rings"))
        .collect();
    assert_eq!(
        ringbacks,
        [
            "ringback while the bridge rings local_stream://moh",
            "ringback while the bridge rings tone_stream://ringback",
            "ringback while the bridge rings tone_stream://ringback",
        ],
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("playing ringback instead") && l.ends_with("no-such-prompt")),
        "the bad sound is named: {lines:#?}"
    );
}

/// A queue offers a parked caller to an agent at a literal URI: the INVITE goes to its
/// address with the URI as Request-URI and To. A busy agent raises `bridge.failed` (cause,
/// status, callee) and the caller goes back to park; the second offer is answered and
/// `call.answered` names the agent. Every event carries `now_ms`.
#[test]
fn an_agent_at_a_sip_uri_is_rung_directly_and_its_outcome_published() {
    let uri = "sip:agent7@127.0.0.1:7009";
    let (mut h, _dir) = harness(
        42160,
        &[extension(
            "5980",
            &[
                ("answer", ""),
                ("set", "continue_on_fail=true"),
                ("set", "hangup_after_bridge=true"),
                ("park", ""),
            ],
        )],
    );
    h.register(ALICE);
    let (call_id, sent) = h.call(ALICE, "5980");
    answered(&mut h, &sent);
    let (uuid, _) = only_call(&mut h);
    let new = events(&h, "call.new");
    assert_eq!(new.len(), 1);
    assert_eq!(
        new[0]["now_ms"], 0,
        "the switch started at the harness's now"
    );

    h.advance(Duration::from_millis(1500));
    h.switch
        .execute(
            h.now,
            &format!("uuid_exec {uuid} bridge sofia/internal/{uri}"),
        )
        .unwrap();
    let invite = requests_to(&h.sent(), AGENT, Method::Invite)
        .pop()
        .expect("the agent's address gets the INVITE");
    assert_eq!(invite.request_uri(), Some(uri));
    assert_eq!(invite.header("To"), Some(format!("<{uri}>").as_str()));
    h.answer(AGENT, &invite, 486, "agent");
    h.sent();
    let failed = events(&h, "bridge.failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["cause"], "USER_BUSY");
    assert_eq!(failed[0]["status"], 486);
    assert_eq!(
        failed[0]["callee"], "agent7",
        "the URI's user, as for user/ID"
    );
    assert_eq!(failed[0]["uuid"], uuid.as_str());
    assert_eq!(failed[0]["now_ms"], 1500);
    assert!(only_call(&mut h).1.contains("parked"), "back in park");

    h.advance(Duration::from_millis(500));
    h.switch
        .execute(h.now, &format!("uuid_exec {uuid} bridge {uri}"))
        .unwrap();
    let invite = requests_to(&h.sent(), AGENT, Method::Invite).pop().unwrap();
    h.answer(AGENT, &invite, 200, "agent");
    h.sent();
    let answers = events(&h, "call.answered");
    let agent_answer = answers.last().expect("call.answered");
    assert_eq!(agent_answer["callee"], "agent7", "{answers:?}");
    assert_eq!(agent_answer["bridged"], true);
    assert_eq!(agent_answer["now_ms"], 2000);

    h.send(AGENT, callee_bye(AGENT, &invite, "agent"));
    assert_eq!(requests_to(&h.sent(), ALICE, Method::Bye).len(), 1);
    assert_eq!(cdr_cause(&h, &call_id), "NORMAL_CLEARING");
    let ended = events(&h, "call.ended");
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["side"], "callee");
    h.assert_nothing_left_after_bye_answers(&[ALICE, AGENT]);
}

/// `tick` once a second with the switch's milliseconds, whatever the wake-ups.
#[test]
fn ticks_come_once_a_second_on_the_switch_clock() {
    let (mut h, _dir) = harness(42200, &[]);
    h.advance(Duration::from_millis(999));
    assert!(events(&h, "tick").is_empty());
    h.advance(Duration::from_millis(1));
    h.advance(Duration::from_millis(2300));
    let ticks: Vec<Value> = events(&h, "tick");
    assert_eq!(
        ticks,
        [
            json!({"event": "tick", "now_ms": 1000}),
            json!({"event": "tick", "now_ms": 3300}),
        ],
        "a late wake-up gets one tick, not the ones it missed"
    );
    h.advance(Duration::from_millis(699));
    assert_eq!(events(&h, "tick").len(), 2);
    h.advance(Duration::from_millis(1));
    assert_eq!(
        events(&h, "tick").last().unwrap()["now_ms"],
        4000,
        "on the grid"
    );
    assert_eq!(events(&h, "tick").len(), 3);
}

/// A module application's `app.run` sees `now_ms`.
struct Clocked(Arc<Mutex<Vec<u64>>>);

impl crate::ModuleApplication for Clocked {
    fn owner(&self) -> &str {
        "mod_test"
    }
    fn run(&self, call: &crate::CallView<'_>, _data: &str) -> Vec<(String, String)> {
        self.0.lock().unwrap().push(call.now_ms);
        vec![("hangup".into(), "USER_BUSY".into())]
    }
}

#[test]
fn module_applications_see_the_switch_clock() {
    let (mut h, _dir) = harness(42240, &[extension("5981", &[("greet", "")])]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    h.switch
        .register_application("greet", Arc::new(Clocked(Arc::clone(&seen))))
        .unwrap();
    h.register(ALICE);
    h.advance(Duration::from_millis(2500));
    let (_, sent) = h.call(ALICE, "5981");
    assert_eq!(statuses_to(&sent, ALICE), vec![100, 486]);
    assert_eq!(*seen.lock().unwrap(), [2500]);
    h.assert_nothing_left_after_bye_answers(&[ALICE]);
}

/// `queue_log` rows from a module get the switch's wall clock and show in the console;
/// malformed ones are dropped; a module not loaded is not listened to.
#[test]
fn queue_log_messages_become_rows_the_console_shows() {
    let (mut h, _dir) = harness(42280, &[]);
    let row = |event: &str| {
        json!({"queue": "sales", "call_uuid": "c-1", "agent": "1001", "event": event,
               "data": {"position": 1}})
        .to_string()
    };
    h.switch
        .module_queue_log(h.now, "mod_acd", row("enter").as_bytes());
    h.advance(Duration::from_millis(250));
    h.switch
        .module_queue_log(h.now, "mod_acd", row("offer").as_bytes());
    h.switch.module_queue_log(
        h.now,
        "mod_acd",
        br#"{"queue":"sales","event":"agent-break"}"#,
    );
    // An agent's own change names no queue.
    h.switch.module_queue_log(
        h.now,
        "mod_acd",
        br#"{"queue":"","agent":"1001","event":"AGENTLOGIN"}"#,
    );
    for bad in [
        &b"nope"[..],
        br#"{"queue":"sales"}"#,
        br#"["x"]"#,
        br#"{"event":"AGENTLOGIN"}"#,
    ] {
        h.switch.module_queue_log(h.now, "mod_acd", bad);
    }
    h.switch
        .handle_module_message(h.now, "mod_acd", "queue_log", row("lost").as_bytes());
    h.store.flush().unwrap();
    let shown = h.switch.execute(h.now, "show queue_log").unwrap();
    let t0 = 1_800_000_000_000i64;
    assert_eq!(
        shown,
        format!(
            "4 queue log rows\n\
             {t0} sales c-1 1001 enter {{\"position\":1}}\n\
             {t1} sales c-1 1001 offer {{\"position\":1}}\n\
             {t1} sales - - agent-break {{}}\n\
             {t1} - - 1001 AGENTLOGIN {{}}\n",
            t1 = t0 + 250
        )
    );
    let last = h.switch.execute(h.now, "show queue_log 1").unwrap();
    assert_eq!(last.lines().count(), 2, "{last}");
    assert!(last.contains("AGENTLOGIN"), "{last}");
    assert!(
        h.switch
            .execute(h.now, "show queue_log x")
            .unwrap_err()
            .contains("usage")
    );
}

/// A module's `event` is published under its name with `now_ms`; the core's names are not
/// for modules to raise, and a body without a name is dropped.
#[test]
fn module_events_are_published_but_not_as_core_events() {
    let (mut h, _dir) = harness(42320, &[]);
    h.advance(Duration::from_millis(40));
    let body = json!({"event": "acd.agent", "agent": "1001", "state": "available"});
    h.switch
        .module_event(h.now, "mod_acd", body.to_string().as_bytes());
    for bad in [
        json!({"event": "call.ended", "uuid": "x"}),
        json!({"event": "tick"}),
        json!({"agent": "1001"}),
    ] {
        h.switch
            .module_event(h.now, "mod_acd", bad.to_string().as_bytes());
    }
    let published: Vec<Value> = h
        .switch
        .published
        .borrow()
        .iter()
        .filter(|e| e["event"] != "tick")
        .cloned()
        .collect();
    assert_eq!(
        published,
        [json!({"event": "acd.agent", "agent": "1001", "state": "available", "now_ms": 40})]
    );
}

/// `uuid_break` lets a caller out of the music: the plan goes on after `moh` (here a hangup
/// with the cause a `uuid_exec set` left), also when a `uuid_exec` playback was under way
/// (its way back into the music is dropped).
#[test]
fn uuid_break_lets_the_plan_go_on_after_the_held_action() {
    let (mut h, _dir) = harness(
        42360,
        &[extension(
            "5983",
            &[
                ("answer", ""),
                ("set", "queue_result=NORMAL_CLEARING"),
                ("moh", ""),
                ("hangup", "${queue_result}"),
            ],
        )],
    );
    h.register(ALICE);
    for (number, steps) in [
        (1, &["set queue_result=NO_ANSWER"][..]),
        (2, &["set queue_result=NO_ANSWER", "playback welcome"][..]),
    ] {
        let (call_id, sent) = h.call(ALICE, "5983");
        answered(&mut h, &sent);
        let (uuid, _) = only_call(&mut h);
        for step in steps {
            h.switch
                .execute(h.now, &format!("uuid_exec {uuid} {step}"))
                .unwrap();
        }
        assert!(
            requests_to(&h.sent(), ALICE, Method::Bye).is_empty(),
            "{number}"
        );
        let out = h
            .switch
            .execute(h.now, &format!("uuid_break {uuid}"))
            .unwrap();
        assert!(out.contains("broken out"), "{out}");
        assert_eq!(
            requests_to(&h.sent(), ALICE, Method::Bye).len(),
            1,
            "{number}: the plan went on to its hangup"
        );
        assert_eq!(cdr_cause(&h, &call_id), "NO_ANSWER", "{number}");
        h.assert_nothing_left_after_bye_answers(&[ALICE]);
    }
    assert!(
        h.switch
            .execute(h.now, "uuid_break nope")
            .unwrap_err()
            .contains("no such call")
    );
}

/// `uuid_bridge_cancel` cancels the agent being rung; `bridge.failed` says ORIGINATOR_CANCEL
/// and the caller goes back to park even though `continue_on_fail` lists other causes only.
/// The agent's late 487 changes nothing.
#[test]
fn uuid_bridge_cancel_sends_the_caller_back_to_where_it_waited() {
    let (mut h, _dir) = harness(
        42400,
        &[extension(
            "5984",
            &[
                ("answer", ""),
                ("set", "continue_on_fail=NO_ANSWER,USER_BUSY"),
                ("park", ""),
            ],
        )],
    );
    h.register(ALICE);
    let (_, sent) = h.call(ALICE, "5984");
    answered(&mut h, &sent);
    let (uuid, _) = only_call(&mut h);
    assert!(
        h.switch
            .execute(h.now, &format!("uuid_bridge_cancel {uuid}"))
            .unwrap_err()
            .contains("no bridge to cancel")
    );
    h.switch
        .execute(
            h.now,
            &format!("uuid_exec {uuid} bridge {{call_timeout=30}}sip:agent7@127.0.0.1:7009"),
        )
        .unwrap();
    let invite = requests_to(&h.sent(), AGENT, Method::Invite).pop().unwrap();
    h.answer(AGENT, &invite, 180, "agent");
    h.sent();
    let out = h
        .switch
        .execute(h.now, &format!("uuid_bridge_cancel {uuid}"))
        .unwrap();
    assert!(out.contains("bridge cancelled"), "{out}");
    let cancel = requests_to(&h.sent(), AGENT, Method::Cancel)
        .pop()
        .expect("the agent is cancelled");
    let failed = events(&h, "bridge.failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["cause"], "ORIGINATOR_CANCEL");
    assert_eq!(failed[0]["status"], 487);
    assert!(only_call(&mut h).1.contains("parked"), "back in park");
    h.answer(AGENT, &cancel, 200, "agent");
    h.answer(AGENT, &invite, 487, "agent");
    h.advance(Duration::from_secs(40));
    assert!(only_call(&mut h).1.contains("parked"));
    assert_eq!(events(&h, "bridge.failed").len(), 1);
    assert!(requests_to(&h.sent(), ALICE, Method::Bye).is_empty());
    h.switch.execute(h.now, "hupall").unwrap();
    h.assert_nothing_left_after_bye_answers(&[ALICE, AGENT]);
}

/// FreeSWITCH's inline dialplan from the console: `transfer UUID app:data,app:data inline`
/// replaces the plan of a held call (a queue's callback confirmation, then the hang-up), and
/// `moh SOUND` holds the caller on a sound of its own rather than the music.
#[test]
fn an_inline_transfer_replaces_the_plan_and_moh_plays_its_own_sound() {
    let (mut h, _dir) = harness(
        42420,
        &[extension(
            "5990",
            &[
                ("answer", ""),
                ("moh", "tone_stream://%(200,200,440)"),
                ("hangup", "CALL_REJECTED"),
            ],
        )],
    );
    h.register(ALICE);
    let (call_id, sent) = h.call(ALICE, "5990");
    answered(&mut h, &sent);
    let (uuid, state) = only_call(&mut h);
    assert!(state.contains("parked"), "{state}");
    let out = h
        .switch
        .execute(
            h.now,
            &format!("transfer {uuid} set:why=USER_BUSY,sleep:500,hangup:${{why}} inline"),
        )
        .unwrap();
    assert!(out.contains(&uuid), "{out}");
    assert!(
        only_call(&mut h).1.contains("sleep"),
        "the inline plan runs"
    );
    assert!(requests_to(&h.sent(), ALICE, Method::Bye).is_empty());
    h.advance(Duration::from_millis(500));
    assert_eq!(requests_to(&h.sent(), ALICE, Method::Bye).len(), 1);
    assert_eq!(cdr_cause(&h, &call_id), "USER_BUSY");
    h.assert_nothing_left_after_bye_answers(&[ALICE]);
}

/// In a plan, `transfer ... inline` is refused: a variable a caller controls must never
/// become applications. The call ends NO_ROUTE_DESTINATION.
#[test]
fn the_dialplan_may_not_transfer_inline() {
    let (mut h, _dir) = harness(
        42460,
        &[extension(
            "5991",
            &[("transfer", "answer,bridge:sofia/gateway/x/1 inline")],
        )],
    );
    h.register(ALICE);
    let (call_id, sent) = h.call(ALICE, "5991");
    assert!(
        sent.iter()
            .any(|(to, m)| *to == ALICE.peer().addr && m.status() == Some(404)),
        "refused with 404"
    );
    assert_eq!(cdr_cause(&h, &call_id), "NO_ROUTE_DESTINATION");
}

/// A second agent AGENT2 (a SIPp-style URI) for `uuid_bridge_add`.
const AGENT2: Phone = Phone {
    user: "agent8",
    addr: "127.0.0.1:7011",
};

/// `uuid_bridge_add` rings one more target in the bridge in progress, the first one still
/// ringing (no CANCEL, no new INVITE to it); the second answers and wins, the first is
/// cancelled. Refused without a bridge, or for a target that cannot be rung.
#[test]
fn uuid_bridge_add_rings_one_more_without_stopping_the_first() {
    let (mut h, _dir) = harness(
        42480,
        &[extension(
            "5992",
            &[
                ("answer", ""),
                ("set", "continue_on_fail=true"),
                ("moh", ""),
            ],
        )],
    );
    h.register(ALICE);
    let (_, sent) = h.call(ALICE, "5992");
    answered(&mut h, &sent);
    let (uuid, _) = only_call(&mut h);
    assert!(
        h.switch
            .execute(
                h.now,
                &format!("uuid_bridge_add {uuid} sip:agent8@127.0.0.1:7011")
            )
            .unwrap_err()
            .contains("no bridge to add to")
    );
    h.switch
        .execute(
            h.now,
            &format!("uuid_exec {uuid} bridge {{call_timeout=30}}sip:agent7@127.0.0.1:7009"),
        )
        .unwrap();
    let first = requests_to(&h.sent(), AGENT, Method::Invite).pop().unwrap();
    h.answer(AGENT, &first, 180, "agent");
    h.advance(Duration::from_secs(4));
    let out = h
        .switch
        .execute(
            h.now,
            &format!("uuid_bridge_add {uuid} sip:agent8@127.0.0.1:7011"),
        )
        .unwrap();
    assert!(out.contains("ringing 1 more"), "{out}");
    let sent = h.sent();
    assert!(
        requests_to(&sent, AGENT, Method::Cancel).is_empty(),
        "the first still rings"
    );
    assert!(requests_to(&sent, AGENT, Method::Invite).is_empty());
    let second = requests_to(&sent, AGENT2, Method::Invite)
        .pop()
        .expect("the second rung");
    assert!(
        h.switch
            .execute(h.now, &format!("uuid_bridge_add {uuid} user/nobody"))
            .unwrap_err()
            .contains("cannot be rung")
    );
    h.answer(AGENT2, &second, 200, "agent8");
    let sent = h.sent();
    let cancel = requests_to(&sent, AGENT, Method::Cancel)
        .pop()
        .expect("the first is cancelled once the second answers");
    let answered_events = events(&h, "call.answered");
    assert_eq!(answered_events.last().unwrap()["callee"], "agent8");
    h.answer(AGENT, &cancel, 200, "agent");
    h.answer(AGENT, &first, 487, "agent");
    h.switch.execute(h.now, "hupall").unwrap();
    h.assert_nothing_left_after_bye_answers(&[ALICE, AGENT, AGENT2]);
}

/// `uuid_bridge_remove` stops one target of a ringing bridge (CANCEL to it only) and the
/// others ring on; the last one is not removed (that is `uuid_bridge_cancel`).
#[test]
fn uuid_bridge_remove_stops_one_target_and_the_others_ring_on() {
    let (mut h, _dir) = harness(
        42520,
        &[extension(
            "5993",
            &[
                ("answer", ""),
                ("set", "continue_on_fail=true"),
                ("moh", ""),
            ],
        )],
    );
    h.register(ALICE);
    let (_, sent) = h.call(ALICE, "5993");
    answered(&mut h, &sent);
    let (uuid, _) = only_call(&mut h);
    h.switch
        .execute(
            h.now,
            &format!(
                "uuid_exec {uuid} bridge {{call_timeout=30}}sip:agent7@127.0.0.1:7009,sip:agent8@127.0.0.1:7011"
            ),
        )
        .unwrap();
    let sent = h.sent();
    let first = requests_to(&sent, AGENT, Method::Invite).pop().unwrap();
    let second = requests_to(&sent, AGENT2, Method::Invite).pop().unwrap();
    h.answer(AGENT, &first, 180, "agent");
    h.answer(AGENT2, &second, 180, "agent8");
    let out = h
        .switch
        .execute(
            h.now,
            &format!("uuid_bridge_remove {uuid} sip:agent7@127.0.0.1:7009"),
        )
        .unwrap();
    assert!(out.contains("agent7 no longer rung"), "{out}");
    let sent = h.sent();
    let cancel = requests_to(&sent, AGENT, Method::Cancel)
        .pop()
        .expect("agent7 is cancelled");
    assert!(
        requests_to(&sent, AGENT2, Method::Cancel).is_empty(),
        "agent8 rings on"
    );
    h.answer(AGENT, &cancel, 200, "agent");
    h.answer(AGENT, &first, 487, "agent");
    assert!(events(&h, "bridge.failed").is_empty(), "the bridge goes on");
    assert!(
        h.switch
            .execute(
                h.now,
                &format!("uuid_bridge_remove {uuid} sip:agent8@127.0.0.1:7011")
            )
            .unwrap_err()
            .contains("last target")
    );
    assert!(
        h.switch
            .execute(
                h.now,
                &format!("uuid_bridge_remove {uuid} sip:agent7@127.0.0.1:7009")
            )
            .unwrap_err()
            .contains("not ringing")
    );
    h.answer(AGENT2, &second, 200, "agent8");
    assert_eq!(
        events(&h, "call.answered").last().unwrap()["callee"],
        "agent8"
    );
    h.switch.execute(h.now, "hupall").unwrap();
    h.assert_nothing_left_after_bye_answers(&[ALICE, AGENT, AGENT2]);
}
