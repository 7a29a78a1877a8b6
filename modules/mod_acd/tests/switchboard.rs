//! The switchboard driven by the host's JSON messages, as the daemon sends them: what the
//! module tells the switch (console lines), the queue log and the events it emits.

use serde_json::{Value, json};

use mod_acd::voice::{Send, Switchboard};

const QUEUES: &str = r#"
[[queue]]
name = "sales"
strategy = "top-down"
offer_timeout = 15
wrap_up = 5

[[queue]]
name = "zh"
language = "zh"
strategy = "ring-progressively"
ring_progressively = 4
announce_every = 30
comfort_every = 20
callback_digit = "*"
max_wait = 600

[[queue]]
name = "short"
max_wait = 10

[[queue]]
name = "spill"
max_wait = 10
overflow = { extension = "5100" }

[[agent]]
id = 1000
tiers = [{ queue = "sales", position = 1 }, { queue = "zh", position = 1 }]

[[agent]]
id = 1001
tiers = [{ queue = "sales", position = 2 }, { queue = "zh", position = 2 }]

[[agent]]
id = 2001
contact = "sip:2001@127.0.0.1:5090"
tiers = [{ queue = "short" }]
"#;

struct Rig {
    board: Switchboard,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queues.toml");
        std::fs::write(&path, QUEUES).unwrap();
        let mut board = Switchboard::new();
        send(
            &mut board,
            "module.host",
            json!({ "conf_dir": dir.path().to_str().unwrap() }),
        );
        send(
            &mut board,
            "module.config",
            json!({ "file": "queues.toml" }),
        );
        Rig {
            board,
            _dir: dir,
            path,
        }
    }

    fn msg(&mut self, name: &str, body: Value) -> (Value, Vec<Send>) {
        send(&mut self.board, name, body)
    }

    fn command(&mut self, now: u64, command: &str, args: &str) -> (Value, Vec<Send>) {
        self.msg(
            "command",
            json!({ "command": command, "args": args, "now_ms": now }),
        )
    }

    fn login(&mut self, now: u64, agent: u32) {
        let (reply, _) = self.command(now, "agent", &format!("login {agent}"));
        assert_eq!(reply["ok"], true, "{reply}");
    }

    fn enter(&mut self, now: u64, uuid: &str, queue: &str) -> (Value, Vec<Send>) {
        self.msg(
            "app.run",
            json!({ "app": "queue", "data": queue, "uuid": uuid, "now_ms": now,
                    "answered": false,
                    "variables": { "caller_id_number": "5551234", "user_name": "5551234" } }),
        )
    }

    fn event(&mut self, now: u64, event: &str, uuid: &str, extra: Value) -> Vec<Send> {
        let mut body = json!({ "event": event, "uuid": uuid, "now_ms": now,
                               "variables": { "caller_id_number": "5551234" } });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.msg("event", body).1
    }

    fn tick(&mut self, now: u64) -> Vec<Send> {
        self.msg("event", json!({ "event": "tick", "now_ms": now }))
            .1
    }

    fn agent_state(&mut self, now: u64, agent: u32) -> String {
        let (reply, _) = self.command(now, "agent", &format!("show {agent}"));
        let text = reply["text"].as_str().unwrap().to_owned();
        let line = text.lines().nth(1).unwrap().to_owned();
        line.split_whitespace().nth(1).unwrap().to_owned()
    }
}

fn send(board: &mut Switchboard, name: &str, body: Value) -> (Value, Vec<Send>) {
    let handled = board
        .handle(name, body.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (handled.reply, handled.sends)
}

fn lines(sends: &[Send]) -> Vec<String> {
    sends
        .iter()
        .filter(|s| s.name == "console")
        .map(|s| s.body["line"].as_str().unwrap().to_owned())
        .collect()
}

fn log_events(sends: &[Send]) -> Vec<String> {
    sends
        .iter()
        .filter(|s| s.name == "queue_log")
        .map(|s| s.body["event"].as_str().unwrap().to_owned())
        .collect()
}

fn actions(reply: &Value) -> Vec<(String, String)> {
    reply["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a[0].as_str().unwrap().to_owned(),
                a[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_caller_is_held_on_music_and_rung_through_to_the_first_agent() {
    let mut rig = Rig::new();
    rig.login(0, 1000);
    rig.login(0, 1001);
    let (reply, sends) = rig.enter(1_000, "u1", "sales");
    let steps = actions(&reply);
    assert_eq!(steps[0], ("answer".into(), String::new()));
    assert!(steps.contains(&("set".into(), "queue=sales".into())));
    assert!(steps.contains(&("set".into(), "continue_on_fail=true".into())));
    assert!(steps.contains(&("set".into(), "transfer_ringback=local_stream://moh".into())));
    assert_eq!(
        steps.last().unwrap(),
        &("moh".to_owned(), "local_stream://moh".to_owned())
    );
    // Top-down: 1000 first; the bridge times out a second before the core's offer does.
    assert_eq!(
        lines(&sends),
        ["uuid_exec u1 bridge {call_timeout=14,acd_queue=sales}user/1000"]
    );
    assert_eq!(log_events(&sends), ["ENTERQUEUE", "OFFER"]);
    assert_eq!(rig.agent_state(1_000, 1000), "reserved");

    let sends = rig.event(
        4_000,
        "call.answered",
        "u1",
        json!({ "bridged": true, "callee": "1000" }),
    );
    assert_eq!(log_events(&sends), ["CONNECT"]);
    let connect = sends.iter().find(|s| s.name == "queue_log").unwrap();
    assert_eq!(connect.body["agent"], "1000");
    assert_eq!(connect.body["call_uuid"], "u1");
    assert_eq!(connect.body["data"]["waited_ms"], 3_000);
    assert!(sends.iter().any(|s| s.name == "event"
        && s.body["event"] == "acd.agent"
        && s.body["state"] == "on-contact"));
    assert_eq!(rig.agent_state(4_000, 1000), "on-contact");

    let sends = rig.event(64_000, "call.ended", "u1", json!({}));
    assert_eq!(log_events(&sends), ["COMPLETE"]);
    // The row of the end still names the call that just went.
    let complete = sends.iter().find(|s| s.name == "queue_log").unwrap();
    assert_eq!(complete.body["call_uuid"], "u1");
    assert_eq!(rig.agent_state(64_000, 1000), "wrap-up");
    rig.tick(69_000);
    assert_eq!(rig.agent_state(69_000, 1000), "available");

    let (reply, _) = rig.command(69_000, "queue", "show sales");
    let text = reply["text"].as_str().unwrap();
    let row = text.lines().nth(1).unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    // queue strategy waiting longest answered abandoned overflow SL% ASA AHT
    assert_eq!(
        cols,
        [
            "sales", "top-down", "0", "0s", "1", "0", "0", "100.0", "3s", "65s"
        ]
    );
}

#[test]
fn a_failed_bridge_is_a_no_answer_and_the_next_agent_is_rung() {
    let mut rig = Rig::new();
    rig.login(0, 1000);
    rig.login(0, 1001);
    rig.enter(0, "u1", "sales");
    let sends = rig.event(
        14_000,
        "bridge.failed",
        "u1",
        json!({ "cause": "NO_ANSWER", "status": 480 }),
    );
    assert_eq!(log_events(&sends), ["RINGNOANSWER", "OFFER"]);
    assert_eq!(
        lines(&sends),
        ["uuid_exec u1 bridge {call_timeout=14,acd_queue=sales}user/1001"]
    );
    // The core's own expiry of the first offer came and went: nothing more to do.
    assert!(lines(&rig.tick(15_500)).is_empty());
    assert_eq!(rig.agent_state(15_500, 1001), "reserved");
}

#[test]
fn a_caller_hanging_up_while_waiting_is_an_abandon_and_frees_the_agent() {
    let mut rig = Rig::new();
    rig.login(0, 1000);
    rig.enter(0, "u1", "sales");
    let sends = rig.event(2_000, "call.ended", "u1", json!({}));
    assert_eq!(log_events(&sends), ["OFFERCANCELLED", "ABANDON"]);
    assert!(
        sends
            .iter()
            .filter(|s| s.name == "queue_log")
            .all(|s| s.body["call_uuid"] == "u1")
    );
    assert_eq!(rig.agent_state(2_000, 1000), "available");
    // An event of the gone call changes nothing.
    assert!(lines(&rig.event(2_100, "bridge.failed", "u1", json!({}))).is_empty());
}

#[test]
fn waiting_callers_hear_position_wait_and_comfort_prompts_in_their_language() {
    let mut rig = Rig::new();
    // One member on break still counts as staff for the estimate (180 s per call, the
    // default handle time before the queue has answered anything).
    rig.command(0, "agent", "break 1001");
    let (reply, _) = rig.enter(0, "u1", "zh");
    assert!(actions(&reply).contains(&("set".into(), "language=zh".into())));
    rig.enter(1_000, "u2", "zh");
    let sends = rig.tick(20_000);
    // Comfort prompt at 20 s with the callback offer (the zh queue takes callbacks).
    // u2 came a second later: its comfort prompt is not due yet.
    assert_eq!(
        lines(&sends),
        ["uuid_exec u1 playback call-important!leave-callback"]
    );
    let said = lines(&rig.tick(31_000));
    // u1 is first, u2 second: "您现在排在第一位，预计等待三分钟" / "第二位 ... 六分钟".
    assert_eq!(
        said,
        [
            "uuid_exec u2 playback call-important!leave-callback",
            "uuid_exec u1 playback you-are-caller-number!digits/1!caller-number-suffix!estimated-wait!digits/3!minutes",
            "uuid_exec u2 playback you-are-caller-number!digits/2!caller-number-suffix!estimated-wait!digits/6!minutes",
        ]
    );
}

#[test]
fn the_maximum_wait_lets_the_plan_go_on_after_queue() {
    let mut rig = Rig::new();
    rig.enter(0, "u1", "short");
    let sends = rig.tick(10_000);
    assert_eq!(
        lines(&sends),
        [
            "uuid_exec u1 unset continue_on_fail",
            "uuid_exec u1 unset hangup_after_bridge",
            "uuid_exec u1 unset transfer_ringback",
            "uuid_exec u1 set queue_result=timeout",
            "uuid_break u1"
        ]
    );
    assert_eq!(log_events(&sends), ["EXITWITHTIMEOUT"]);
    // The call then ends elsewhere in the plan: not an abandon.
    let sends = rig.event(12_000, "call.ended", "u1", json!({}));
    assert!(log_events(&sends).is_empty());
}

#[test]
fn overflow_to_an_extension_transfers_the_caller() {
    let mut rig = Rig::new();
    rig.enter(0, "u1", "spill");
    let sends = rig.tick(10_000);
    // The queue's own bridge settings are cleared first: the plan's next bridges are its own.
    assert_eq!(
        lines(&sends),
        [
            "uuid_exec u1 unset continue_on_fail",
            "uuid_exec u1 unset hangup_after_bridge",
            "uuid_exec u1 unset transfer_ringback",
            "transfer u1 5100"
        ]
    );
    assert_eq!(log_events(&sends), ["OVERFLOW"]);
}

#[test]
fn ring_progressively_adds_agents_to_the_ringing_bridge() {
    let mut rig = Rig::new();
    rig.login(0, 1000);
    rig.login(0, 1001);
    let (_, sends) = rig.enter(0, "u1", "zh");
    assert_eq!(
        lines(&sends),
        ["uuid_exec u1 bridge {call_timeout=19,acd_queue=zh}user/1000"]
    );
    // 4 s later one more agent rings too; 1000's phone goes on ringing.
    let sends = rig.tick(4_000);
    assert_eq!(lines(&sends), ["uuid_bridge_add u1 user/1001"]);
    assert_eq!(log_events(&sends), ["OFFER"]);
    // 1000 logs out while both ring: only its phone stops, 1001's rings on.
    let (_, sends) = rig.command(6_000, "agent", "logout 1000");
    assert_eq!(lines(&sends), ["uuid_bridge_remove u1 user/1000"]);
    let sends = rig.event(
        8_000,
        "call.answered",
        "u1",
        json!({ "bridged": true, "callee": "1001" }),
    );
    assert_eq!(log_events(&sends), ["CONNECT"]);
    assert_eq!(rig.agent_state(8_000, 1000), "offline");
    assert_eq!(rig.agent_state(8_000, 1001), "on-contact");
}

#[test]
fn a_reload_keeps_agents_logged_in_and_callers_waiting() {
    let mut rig = Rig::new();
    rig.login(0, 1000);
    rig.enter(0, "u1", "short");
    rig.enter(0, "u2", "short");
    let text = QUEUES.replace(
        "max_wait = 10\n\n[[queue]]\nname = \"spill\"",
        "max_wait = 30\n\n[[queue]]\nname = \"spill\"",
    );
    std::fs::write(&rig.path, text).unwrap();
    let (reply, _) = rig.command(1_000, "acd", "reload");
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(rig.agent_state(1_000, 1000), "available");
    let (reply, _) = rig.command(1_000, "queue", "show short");
    assert!(reply["text"].as_str().unwrap().contains("  2. u2"));
    // The new maximum wait applies: nothing times out at 10 s.
    assert!(lines(&rig.tick(10_000)).is_empty());
    // A broken file is refused and the old configuration stays.
    std::fs::write(&rig.path, "[[queue]]\nname = \n").unwrap();
    let (reply, _) = rig.command(11_000, "acd", "reload");
    assert_eq!(reply["ok"], false);
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("previous configuration stays"),
        "{reply}"
    );
    assert_eq!(rig.agent_state(11_000, 1000), "available");
}

#[test]
fn console_commands_refuse_what_does_not_exist() {
    let mut rig = Rig::new();
    for (command, args, needle) in [
        ("agent", "show 4242", "no agent 4242"),
        ("agent", "login 4242", "unknown agent"),
        ("agent", "login bob", "not a number"),
        ("queue", "show nope", "no queue nope"),
        ("agent", "dance", "usage"),
    ] {
        let (reply, _) = rig.command(0, command, args);
        assert_eq!(reply["ok"], false, "{command} {args}");
        assert!(
            reply["error"].as_str().unwrap().contains(needle),
            "{command} {args}: {reply}"
        );
    }
    let (reply, _) = rig.enter(0, "u9", "nope");
    assert!(actions(&reply).contains(&("set".into(), "queue_result=refused".into())));
}

#[test]
fn an_agent_reached_by_sip_uri_is_matched_by_the_user_part() {
    let mut rig = Rig::new();
    rig.login(0, 2001);
    let (_, sends) = rig.enter(0, "u1", "short");
    assert_eq!(
        lines(&sends),
        ["uuid_exec u1 bridge {call_timeout=19,acd_queue=short}sip:2001@127.0.0.1:5090"]
    );
    let sends = rig.event(
        1_000,
        "call.answered",
        "u1",
        json!({ "bridged": true, "callee": "2001" }),
    );
    assert_eq!(log_events(&sends), ["CONNECT"]);
}

#[test]
fn a_caller_whose_wait_runs_out_while_an_agent_rings_waits_for_the_ringing_to_end() {
    let mut rig = Rig::new();
    rig.login(0, 2001);
    rig.login(0, 1000);
    let (_, sends) = rig.enter(0, "u1", "short");
    assert_eq!(lines(&sends).len(), 1, "the agent rings");
    // Maximum wait reached while the phone rings: the agent may still answer, so the
    // caller stays until the ringing ends.
    assert!(lines(&rig.tick(10_000)).is_empty());
    let sends = rig.event(
        19_000,
        "bridge.failed",
        "u1",
        json!({ "cause": "NO_ANSWER", "status": 480 }),
    );
    // No new offer past the maximum wait...
    assert_eq!(log_events(&sends), ["RINGNOANSWER"]);
    assert!(lines(&sends).is_empty());
    // ...and the next tick lets the plan go on after `queue`.
    let sends = rig.tick(20_000);
    assert_eq!(
        lines(&sends),
        [
            "uuid_exec u1 unset continue_on_fail",
            "uuid_exec u1 unset hangup_after_bridge",
            "uuid_exec u1 unset transfer_ringback",
            "uuid_exec u1 set queue_result=timeout",
            "uuid_break u1"
        ]
    );
    assert_eq!(log_events(&sends), ["EXITWITHTIMEOUT"]);
}

#[test]
fn an_agent_answering_after_the_maximum_wait_still_gets_the_caller() {
    let mut rig = Rig::new();
    rig.login(0, 2001);
    rig.enter(0, "u1", "short");
    assert!(lines(&rig.tick(10_000)).is_empty());
    let sends = rig.event(
        11_000,
        "call.answered",
        "u1",
        json!({ "bridged": true, "callee": "2001" }),
    );
    assert_eq!(log_events(&sends), ["CONNECT"]);
    assert_eq!(rig.agent_state(11_000, 2001), "on-contact");
}

#[test]
fn a_caller_number_that_could_rewrite_the_originate_line_gets_no_callback() {
    let mut rig = Rig::new();
    rig.msg(
        "app.run",
        json!({ "app": "queue", "data": "zh", "uuid": "u1", "now_ms": 0,
                "variables": { "caller_id_number": "1}x,&hangup(" } }),
    );
    let sends = rig
        .msg(
            "event",
            json!({ "event": "dtmf", "uuid": "u1", "digit": "*", "now_ms": 1_000,
                "variables": { "caller_id_number": "1}x,&hangup(" } }),
        )
        .1;
    assert!(lines(&sends).is_empty(), "{sends:?}");
    assert!(log_events(&sends).is_empty());
}

/// The events of a callback's agent leg, as the switch sends them.
fn leg_event(rig: &mut Rig, now: u64, event: &str, leg: &str, bridged: bool) -> Vec<Send> {
    rig.event(
        now,
        event,
        leg,
        json!({ "bridged": bridged,
                "variables": { "acd_callback": "1", "acd_agent": "1000" } }),
    )
}

/// A caller presses * and hangs up: interaction 1 waits in zh as a callback.
fn callback_waiting(rig: &mut Rig) {
    rig.enter(0, "u1", "zh");
    let sends = rig.event(
        5_000,
        "dtmf",
        "u1",
        json!({ "digit": "*", "leg": "caller" }),
    );
    assert_eq!(
        lines(&sends),
        ["transfer u1 playback:callback-confirmed,hangup inline"]
    );
    assert_eq!(log_events(&sends), ["CALLBACK"]);
    let sends = rig.event(7_000, "call.ended", "u1", json!({}));
    assert!(log_events(&sends).is_empty(), "no abandon: {sends:?}");
}

const LEG: &str = "acd-callback-1-1000-1";

#[test]
fn a_callback_keeps_the_place_and_the_switch_calls_agent_then_customer() {
    let mut rig = Rig::new();
    callback_waiting(&mut rig);
    rig.enter(6_000, "u2", "zh");
    let (reply, _) = rig.command(7_000, "queue", "show zh");
    let text = reply["text"].as_str().unwrap();
    assert!(text.contains("  1. (callback) 5551234"), "{text}");
    assert!(text.contains("  2. u2"), "{text}");

    // First in line still: the first agent free is called, with a leg named by the module.
    let (_, sends) = rig.command(9_000, "agent", "login 1000");
    assert_eq!(
        lines(&sends),
        [format!(
            "originate {{origination_uuid={LEG},acd_callback=1,acd_agent=1000,acd_queue=zh,origination_caller_id_number=5551234,originate_timeout=19,hangup_after_bridge=true}}user/1000 &bridge(user/5551234)"
        )]
    );
    // The agent answers; the rows carry the uuid of the call that asked for the callback.
    let sends = leg_event(&mut rig, 12_000, "call.answered", LEG, false);
    assert_eq!(log_events(&sends), ["CONNECT"]);
    let connect = sends.iter().find(|s| s.name == "queue_log").unwrap();
    assert_eq!(connect.body["call_uuid"], "u1");
    // Then the customer, on the same leg.
    assert!(leg_event(&mut rig, 15_000, "call.answered", LEG, true).is_empty());
    let sends = leg_event(&mut rig, 70_000, "call.ended", LEG, true);
    // The agent is free again (no wrap-up in this queue) and takes the next caller, u2.
    assert_eq!(log_events(&sends), ["COMPLETE", "OFFER"]);
    assert_eq!(
        lines(&sends),
        ["uuid_exec u2 bridge {call_timeout=19,acd_queue=zh}user/1000"]
    );
}

#[test]
fn a_callback_whose_customer_does_not_answer_joins_the_queue_again() {
    let mut rig = Rig::new();
    callback_waiting(&mut rig);
    rig.command(9_000, "agent", "login 1000");
    leg_event(&mut rig, 10_000, "call.answered", LEG, false);
    // The agent's leg rings the customer in vain, and ends.
    leg_event(&mut rig, 20_000, "bridge.failed", LEG, false);
    let sends = leg_event(&mut rig, 20_100, "call.ended", LEG, false);
    assert_eq!(log_events(&sends), ["CALLBACK_RETRY", "COMPLETE"]);
    assert!(lines(&sends).is_empty());
    // A minute later attempt 2 joins the queue, under a new interaction, and the agent (free
    // again) is called first.
    assert!(log_events(&rig.tick(80_000)).is_empty());
    let sends = rig.tick(80_100);
    assert_eq!(log_events(&sends), ["ENTERQUEUE", "OFFER"]);
    let retry = &lines(&sends)[0];
    assert!(
        retry.starts_with("originate {origination_uuid=acd-callback-2-1000-2,acd_callback=2,"),
        "{retry}"
    );
    let rows: Vec<&Send> = sends.iter().filter(|s| s.name == "queue_log").collect();
    assert!(rows.iter().all(|r| r.body["call_uuid"] == "u1"), "{rows:?}");
}

#[test]
fn a_callback_agent_leg_that_fails_is_a_no_answer_and_a_withdrawn_one_is_hung_up() {
    let mut rig = Rig::new();
    callback_waiting(&mut rig);
    rig.command(9_000, "agent", "login 1000");
    let sends = rig.event(
        10_000,
        "originate.failed",
        LEG,
        json!({ "cause": "USER_BUSY",
                "variables": { "acd_callback": "1", "acd_agent": "1000" } }),
    );
    assert_eq!(log_events(&sends)[0], "RINGNOANSWER");
    // Logging the agent out while the next leg rings hangs that leg up.
    // (Saying "available" ends the rest after the no-answer at once.)
    let (_, sends) = rig.command(12_000, "agent", "available 1000");
    assert!(lines(&sends)[0].starts_with("originate {origination_uuid=acd-callback-1-1000-2,"));
    let (_, sends) = rig.command(13_000, "agent", "logout 1000");
    assert_eq!(lines(&sends), ["uuid_kill acd-callback-1-1000-2"]);
}

#[test]
fn feature_codes_log_in_break_and_back_from_the_agents_phone() {
    let mut rig = Rig::new();
    let run = |app: &str, data: &str, uuid: &str| {
        json!({ "app": app, "data": data, "uuid": uuid, "now_ms": 100,
                "variables": { "user_name": "1001" } })
    };
    rig.enter(50, "u1", "sales");
    let (reply, sends) = rig.msg("app.run", run("agent_login", "", "f1"));
    assert!(actions(&reply).contains(&("playback".into(), "agent-logged-in".into())));
    // Available once the login call ends: the waiting caller does not ring the phone that
    // is still hearing "logged in".
    assert!(sends.is_empty(), "{sends:?}");
    assert_eq!(rig.agent_state(100, 1001), "offline");
    let sends = rig.event(2_000, "call.ended", "f1", json!({}));
    assert_eq!(log_events(&sends), ["AGENTLOGIN", "OFFER"]);
    assert_eq!(
        lines(&sends),
        ["uuid_exec u1 bridge {call_timeout=14,acd_queue=sales}user/1001"]
    );
    rig.event(2_500, "call.ended", "u1", json!({}));
    assert_eq!(rig.agent_state(2_500, 1001), "available");

    let (reply, _) = rig.msg("app.run", run("agent_break", "lunch", "f2"));
    assert!(actions(&reply).contains(&("playback".into(), "agent-on-break".into())));
    assert_eq!(rig.agent_state(2_500, 1001), "break(lunch)");
    rig.msg("app.run", run("agent_break", "", "f3"));
    assert_eq!(
        rig.agent_state(2_500, 1001),
        "break(lunch)",
        "until f3 ends"
    );
    rig.event(3_000, "call.ended", "f3", json!({}));
    assert_eq!(rig.agent_state(3_000, 1001), "available");
    rig.msg("app.run", run("agent_logout", "", "f4"));
    assert_eq!(rig.agent_state(3_000, 1001), "offline");
    // A caller who is no agent hears the invalid prompt.
    for app in ["agent_login", "agent_logout"] {
        let (reply, _) = rig.msg(
            "app.run",
            json!({ "app": app, "data": "", "uuid": "f9",
                    "variables": { "user_name": "7777" } }),
        );
        let steps = actions(&reply);
        assert!(
            steps.contains(&("set".into(), "agent_result=refused".into())),
            "{app}"
        );
        assert!(
            steps.contains(&("log".into(), format!("WARNING {app}: unknown agent 7777"))),
            "{app}: {steps:?}"
        );
    }
}

#[test]
fn an_answer_that_crosses_the_withdrawal_of_its_offer_still_connects() {
    let mut rig = Rig::new();
    rig.login(0, 1000);
    rig.enter(0, "u1", "sales");
    // The bridge's own timeout (14 s) was lost; the core expires the offer at 15 s and the
    // switchboard cancels the bridge...
    let sends = rig.tick(15_000);
    assert_eq!(lines(&sends), ["uuid_bridge_cancel u1"]);
    assert_eq!(log_events(&sends), ["RINGNOANSWER"]);
    // ...but the agent's 200 OK crossed the CANCEL: the caller talks to 1000, and so says
    // the ACD (a late answer), instead of offering the caller again.
    let sends = rig.event(
        15_010,
        "call.answered",
        "u1",
        json!({ "bridged": true, "callee": "1000" }),
    );
    assert_eq!(log_events(&sends), ["CONNECT"]);
    assert_eq!(rig.agent_state(15_010, 1000), "on-contact");
    let sends = rig.event(30_000, "call.ended", "u1", json!({}));
    assert_eq!(log_events(&sends), ["COMPLETE"]);
}

#[test]
fn an_answer_the_acd_cannot_credit_takes_the_caller_out_of_the_queue() {
    let mut rig = Rig::new();
    rig.login(0, 1000);
    rig.enter(0, "u1", "sales");
    // Somebody who is no agent (a forwarded phone) answered.
    let sends = rig.event(
        1_000,
        "call.answered",
        "u1",
        json!({ "bridged": true, "callee": "555" }),
    );
    assert!(
        log_events(&sends).contains(&"ABANDON".to_owned()),
        "{sends:?}"
    );
    assert!(sends.iter().any(|s| s.name == "log"));
    assert_eq!(rig.agent_state(1_000, 1000), "available");
    let (reply, _) = rig.command(1_000, "queue", "show sales");
    assert!(!reply["text"].as_str().unwrap().contains("u1"));
}

#[test]
fn an_agent_added_to_the_bridge_late_is_not_charged_when_the_first_ones_time_runs_out() {
    let mut rig = Rig::new();
    rig.login(0, 1000);
    rig.login(0, 1001);
    rig.enter(0, "u1", "zh");
    assert_eq!(lines(&rig.tick(4_000)), ["uuid_bridge_add u1 user/1001"]);
    // The bridge's time (19 s, from 1000's offer) runs out: 1000 rang its whole time, 1001
    // only 15 s of its 20.
    let sends = rig.event(
        19_000,
        "bridge.failed",
        "u1",
        json!({ "cause": "NO_ANSWER", "status": 480 }),
    );
    let rows: Vec<(String, String)> = sends
        .iter()
        .filter(|s| s.name == "queue_log")
        .map(|s| {
            (
                s.body["event"].as_str().unwrap().to_owned(),
                s.body["agent"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        rows.contains(&("RINGNOANSWER".into(), "1000".into())),
        "{rows:?}"
    );
    assert!(
        !rows.contains(&("RINGNOANSWER".into(), "1001".into())),
        "{rows:?}"
    );
    // 1001 rings again for what its offer has left (5 s, minus the second of margin).
    assert_eq!(
        lines(&sends),
        ["uuid_exec u1 bridge {call_timeout=4,acd_queue=zh}user/1001"]
    );
}

#[test]
fn the_last_agent_taken_back_cancels_the_bridge_and_the_next_offer_rings_anew() {
    let mut rig = Rig::new();
    rig.login(0, 1000);
    rig.enter(0, "u1", "zh");
    let (_, sends) = rig.command(2_000, "agent", "logout 1000");
    assert_eq!(lines(&sends), ["uuid_bridge_cancel u1"]);
    rig.login(2_500, 1001);
    let sends = rig.event(
        2_550,
        "bridge.failed",
        "u1",
        json!({ "cause": "ORIGINATOR_CANCEL" }),
    );
    // Our own cancel is no no-answer; 1001, offered meanwhile, is rung now.
    assert!(
        !log_events(&sends).contains(&"RINGNOANSWER".to_owned()),
        "{sends:?}"
    );
    assert_eq!(
        lines(&sends),
        ["uuid_exec u1 bridge {call_timeout=18,acd_queue=zh}user/1001"]
    );
}

#[test]
fn a_refusal_crossing_our_cancel_changes_nothing_more() {
    let mut rig = Rig::new();
    rig.login(0, 1000);
    rig.enter(0, "u1", "sales");
    // The agent goes on break and we cancel; but the phone had already refused the call
    // (486), and the switch reports that instead of our cancel.
    let (_, sends) = rig.command(2_000, "agent", "break 1000");
    assert_eq!(lines(&sends), ["uuid_bridge_cancel u1"]);
    let sends = rig.event(
        2_010,
        "bridge.failed",
        "u1",
        json!({ "cause": "USER_BUSY", "status": 486 }),
    );
    // The offer was already taken back by the break: nothing more to charge, no new bridge.
    assert!(lines(&sends).is_empty(), "{sends:?}");
    assert_eq!(rig.agent_state(2_010, 1000), "break(break)");
}

#[test]
fn a_bridge_cancel_never_acknowledged_does_not_strand_the_caller() {
    let mut rig = Rig::new();
    rig.login(0, 1000);
    rig.enter(0, "u1", "sales");
    // Suppose the switch refused the bridge line: nothing rings, and the cancel sent when
    // 1000 logs out is refused too; no bridge.failed ever comes.
    let (_, sends) = rig.command(1_000, "agent", "logout 1000");
    assert_eq!(lines(&sends), ["uuid_bridge_cancel u1"]);
    let (_, sends) = rig.command(1_500, "agent", "login 1001");
    assert!(lines(&sends).is_empty(), "waits for the cancel: {sends:?}");
    assert!(lines(&rig.tick(5_000)).is_empty());
    // Five seconds without the acknowledgement: the call is waiting again and rings 1001,
    // for what its offer (made at 1.5 s, 15 s) has left.
    let sends = rig.tick(6_000);
    assert_eq!(
        lines(&sends),
        ["uuid_exec u1 bridge {call_timeout=9,acd_queue=sales}user/1001"]
    );
    assert!(sends.iter().any(|s| s.name == "log"));
}

#[test]
fn the_break_code_toggles_from_the_presence_even_in_wrap_up() {
    let mut rig = Rig::new();
    rig.login(0, 1000);
    rig.enter(0, "u1", "sales");
    rig.event(
        1_000,
        "call.answered",
        "u1",
        json!({ "bridged": true, "callee": "1000" }),
    );
    rig.event(5_000, "call.ended", "u1", json!({}));
    assert_eq!(rig.agent_state(5_000, 1000), "wrap-up");
    let run = |uuid: &str| {
        json!({ "app": "agent_break", "data": "", "uuid": uuid, "now_ms": 5_100,
                "variables": { "user_name": "1000" } })
    };
    let (reply, _) = rig.msg("app.run", run("f1"));
    assert!(actions(&reply).contains(&("playback".into(), "agent-on-break".into())));
    // Still in wrap-up on screen, but on break underneath: the code again means "back".
    let (reply, _) = rig.msg("app.run", run("f2"));
    assert!(
        actions(&reply).contains(&("playback".into(), "agent-logged-in".into())),
        "{reply}"
    );
    rig.event(5_200, "call.ended", "f2", json!({}));
    rig.tick(10_100);
    assert_eq!(rig.agent_state(10_100, 1000), "available");
}

#[test]
fn a_callback_whose_queue_was_removed_fails_instead_of_vanishing() {
    let mut rig = Rig::new();
    callback_waiting(&mut rig);
    rig.command(9_000, "agent", "login 1000");
    leg_event(&mut rig, 10_000, "call.answered", LEG, false);
    // The zh queue is removed while the agent rings the customer.
    let text = QUEUES
        .replace(
            "[[queue]]\nname = \"zh\"\nlanguage = \"zh\"\nstrategy = \"ring-progressively\"\nring_progressively = 4\nannounce_every = 30\ncomfort_every = 20\ncallback_digit = \"*\"\nmax_wait = 600\n",
            "",
        )
        .replace(", { queue = \"zh\", position = 1 }", "")
        .replace(", { queue = \"zh\", position = 2 }", "");
    assert!(!text.contains("\"zh\""), "{text}");
    std::fs::write(&rig.path, text).unwrap();
    let (reply, _) = rig.command(11_000, "acd", "reload");
    assert_eq!(reply["ok"], true, "{reply}");
    let sends = leg_event(&mut rig, 20_000, "call.ended", LEG, false);
    assert!(
        log_events(&sends).contains(&"CALLBACK_RETRY".to_owned()),
        "{sends:?}"
    );
    let sends = rig.tick(80_000);
    assert_eq!(log_events(&sends), ["CALLBACK_FAILED"]);
    assert!(lines(&sends).is_empty(), "{sends:?}");
}
