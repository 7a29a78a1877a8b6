//! The dialplan executor on the switch's virtual clock (see switch_tests for the harness):
//! bridges that fail over, digit collection, transfers, reload. The extensions are the 59xx
//! of tests/conf/basic/dialplan/engine-tests.xml; media events never reach the switch here,
//! so prompts are `silence_stream://0` (no player: the collection's own timer runs).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_sip::{Message, Method};
use switchyard_store::Cdr;

use crate::switch_tests::*;

const CAROL: Phone = Phone {
    user: "1002",
    addr: "127.0.0.1:7003",
};

/// The CDR of the call whose caller leg had `call_id`.
fn cdr_of(h: &Harness, call_id: &str) -> Cdr {
    let cdrs = h.cdrs();
    cdrs.iter()
        .find(|c| c.a_call_id == call_id)
        .cloned()
        .unwrap_or_else(|| panic!("no CDR for {call_id}: {cdrs:?}"))
}

/// ALICE's call answered by the plan itself: the 200 among `sent`, ACKed.
fn answered_by_plan(h: &mut Harness, sent: &[(std::net::SocketAddr, Message)]) -> Message {
    let ok = sent
        .iter()
        .find(|(to, m)| *to == ALICE.peer().addr && m.status() == Some(200))
        .map(|(_, m)| m.clone())
        .expect("the plan answers the caller");
    h.send(ALICE, caller_request(&ok, "ACK", 2));
    ok
}

/// A digit from ALICE as SIP INFO (the de-facto application/dtmf-relay body).
fn info_digit(h: &mut Harness, ok: &Message, cseq: u32, digit: char) {
    let body = format!("Signal={digit}\nDuration=160\n");
    h.send(
        ALICE,
        format!(
            "INFO sip:switchyard@127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP {addr};branch=z9hG4bKinfo{cseq}\n\
             Max-Forwards: 70\nFrom: <sip:1000@switchyard.test>;tag=a1000\nTo: {to}\nCall-ID: {call_id}\n\
             CSeq: {cseq} INFO\nContent-Type: application/dtmf-relay\nContent-Length: {len}\n\n{body}",
            addr = ALICE.addr,
            to = ok.header("To").unwrap(),
            call_id = ok.call_id(),
            len = body.replace('\n', "\r\n").len(),
        ),
    );
}

/// Sends `digits` one INFO each; every INFO is answered 200 and nothing else reaches ALICE.
fn info_digits(h: &mut Harness, ok: &Message, cseq: &mut u32, digits: &str) {
    for digit in digits.chars() {
        *cseq += 1;
        info_digit(h, ok, *cseq, digit);
        let sent = h.sent();
        assert_eq!(
            statuses_to(&sent, ALICE),
            vec![200],
            "INFO {digit} answered"
        );
        assert!(
            requests_to(&sent, ALICE, Method::Bye).is_empty(),
            "no BYE after digit {digit}"
        );
    }
}

/// The script state `show calls` reports for the only call.
fn script_state(h: &mut Harness) -> String {
    let listing = h.switch.execute(h.now, "show calls").unwrap();
    assert!(listing.starts_with("1 calls"), "{listing}");
    listing.lines().nth(1).unwrap_or_default().to_owned()
}

// ----- A1 ----------------------------------------------------------------------------------

/// `bridge user/1005|user/1001`, call_timeout=2, continue_on_fail=NO_ANSWER, then
/// `hangup ${originate_disposition}`: 1005 is not registered so 1001 rings at once; 2 s later
/// it is cancelled and the plan's hangup gives the caller 480 with the cause NO_ANSWER.
#[test]
fn a_failover_bridge_times_out_into_the_rest_of_the_plan() {
    let mut h = Harness::new(41000, |_| {});
    h.register(ALICE);
    h.register(BOB_DESK);
    let (call_id, sent) = h.call(ALICE, "5901");
    assert_eq!(statuses_to(&sent, ALICE), vec![100]);
    let invite = requests_to(&sent, BOB_DESK, Method::Invite)
        .pop()
        .expect("1005 is not registered: the next group (1001) rings");
    h.answer(BOB_DESK, &invite, 180, "desk");
    assert_eq!(statuses_to(&h.sent(), ALICE), vec![180]);
    h.advance(Duration::from_millis(1999));
    let sent = h.sent();
    assert!(
        statuses_to(&sent, ALICE).is_empty(),
        "still ringing at 1.999 s"
    );
    assert!(requests_to(&sent, BOB_DESK, Method::Cancel).is_empty());
    h.advance(Duration::from_millis(1));
    let sent = h.sent();
    assert_eq!(
        requests_to(&sent, BOB_DESK, Method::Cancel).len(),
        1,
        "call_timeout cancels 1001"
    );
    assert_eq!(statuses_to(&sent, ALICE), vec![480]);
    let cdr = cdr_of(&h, &call_id);
    assert_eq!(cdr.hangup_cause, "NO_ANSWER", "{cdr:?}");
    assert_eq!(
        cdr.hangup_side, "system",
        "the plan's own hangup ended the call, not the bridge: {cdr:?}"
    );
    assert_eq!(cdr.a_sip_code, Some(480));
    h.answer(BOB_DESK, &invite, 487, "desk");
    h.assert_nothing_left_after_bye_answers(&[ALICE, BOB_DESK]);
}

// ----- A2 ----------------------------------------------------------------------------------

/// Without continue_on_fail a busy callee ends the call: 486, USER_BUSY, and the plan's
/// `hangup CALL_REJECTED` after the bridge never runs.
#[test]
fn a_busy_callee_ends_the_call_without_continue_on_fail() {
    let mut h = Harness::new(41040, |_| {});
    h.register(ALICE);
    h.register(BOB_DESK);
    let (call_id, sent) = h.call(ALICE, "5902");
    let invite = requests_to(&sent, BOB_DESK, Method::Invite).pop().unwrap();
    h.answer(BOB_DESK, &invite, 486, "desk");
    let sent = h.sent();
    assert_eq!(
        requests_to(&sent, BOB_DESK, Method::Ack).len(),
        1,
        "the 486 is ACKed"
    );
    assert_eq!(statuses_to(&sent, ALICE), vec![486]);
    let cdr = cdr_of(&h, &call_id);
    assert_eq!(cdr.hangup_cause, "USER_BUSY", "{cdr:?}");
    assert_eq!(cdr.b_sip_code, Some(486), "{cdr:?}");
    h.assert_nothing_left_after_bye_answers(&[ALICE, BOB_DESK]);
}

/// With continue_on_fail=true the plan goes on after the busy bridge: its `transfer 5904`
/// runs, and 5904's `hangup CALL_REJECTED` gives the caller 403.
#[test]
fn a_busy_callee_with_continue_on_fail_lets_a_transfer_run() {
    let mut h = Harness::new(41080, |_| {});
    h.register(ALICE);
    h.register(BOB_DESK);
    let (call_id, sent) = h.call(ALICE, "5903");
    let invite = requests_to(&sent, BOB_DESK, Method::Invite).pop().unwrap();
    h.answer(BOB_DESK, &invite, 486, "desk");
    let sent = h.sent();
    assert_eq!(statuses_to(&sent, ALICE), vec![403]);
    let cdr = cdr_of(&h, &call_id);
    assert_eq!(cdr.hangup_cause, "CALL_REJECTED", "{cdr:?}");
    assert_eq!(cdr.b_sip_code, Some(486), "the bridge was tried: {cdr:?}");
    h.assert_nothing_left_after_bye_answers(&[ALICE, BOB_DESK]);
}

// ----- A3 ----------------------------------------------------------------------------------

/// `bridge user/1001,user/1002`: both ring; the first 200 wins, the other is cancelled.
#[test]
fn a_parallel_bridge_rings_both_and_the_first_answer_wins() {
    let mut h = Harness::new(41120, |_| {});
    for phone in [ALICE, BOB_DESK, CAROL] {
        h.register(phone);
    }
    let (call_id, sent) = h.call(ALICE, "5905");
    let bob = requests_to(&sent, BOB_DESK, Method::Invite)
        .pop()
        .expect("1001 rings");
    let carol = requests_to(&sent, CAROL, Method::Invite)
        .pop()
        .expect("1002 rings at the same time");
    h.answer(CAROL, &carol, 180, "carol");
    h.answer(BOB_DESK, &bob, 200, "desk");
    let sent = h.sent();
    assert_eq!(
        statuses_to(&sent, ALICE),
        vec![180, 200],
        "ringing, then 1001's answer"
    );
    assert_eq!(requests_to(&sent, BOB_DESK, Method::Ack).len(), 1);
    let cancel = requests_to(&sent, CAROL, Method::Cancel)
        .pop()
        .expect("1002 is cancelled");
    assert_eq!(cancel.top_via().branch(), carol.top_via().branch());
    h.answer(CAROL, &cancel, 200, "carol");
    h.answer(CAROL, &carol, 487, "carol");
    let ok = h
        .sent()
        .into_iter()
        .find(|(_, m)| m.status() == Some(200) && m.call_id() == call_id);
    assert!(ok.is_none(), "one answer to the caller");
    assert_eq!(h.active_calls(), 1);
    let listing = h.switch.execute(h.now, "show calls").unwrap();
    assert!(listing.contains("bridged"), "{listing}");
    h.send(BOB_DESK, callee_bye(BOB_DESK, &bob, "desk"));
    let cdr = cdr_of(&h, &call_id);
    assert_eq!(cdr.hangup_cause, "NORMAL_CLEARING", "{cdr:?}");
    h.assert_nothing_left_after_bye_answers(&[ALICE, BOB_DESK, CAROL]);
}

/// The CDR (and the callee's DTMF mode, which connect_late reads from the same field) of a
/// parallel bridge is the user who answered, not the last one rung.
#[test]
fn a_parallel_bridge_names_the_callee_who_answered() {
    let mut h = Harness::new(41440, |_| {});
    for phone in [ALICE, BOB_DESK, CAROL] {
        h.register(phone);
    }
    let (call_id, sent) = h.call(ALICE, "5905");
    let bob = requests_to(&sent, BOB_DESK, Method::Invite).pop().unwrap();
    h.answer(BOB_DESK, &bob, 200, "desk");
    h.sent();
    h.send(BOB_DESK, callee_bye(BOB_DESK, &bob, "desk"));
    let cdr = cdr_of(&h, &call_id);
    assert_eq!(cdr.callee, "1001", "the CDR names who answered: {cdr:?}");
}

// ----- A4 ----------------------------------------------------------------------------------

/// 5910: `play_and_get_digits 2 2 3 5000 # ... choice ^1[12]$ 2000` then
/// `transfer 59${choice:-13}`. A wrong pair (13) and a lone digit (after the 2 s digit
/// timeout) are retries; 12 on the last try reaches 5912 (`hangup USER_BUSY`): a BYE.
#[test]
fn digits_by_sip_info_retry_then_pick_the_extension() {
    let mut h = Harness::new(41160, |_| {});
    h.register(ALICE);
    let (call_id, sent) = h.call(ALICE, "5910");
    let ok = answered_by_plan(&mut h, &sent);
    assert!(script_state(&mut h).contains("collecting digits"));
    let mut cseq = 2;
    info_digits(&mut h, &ok, &mut cseq, "13");
    assert!(
        script_state(&mut h).contains("collecting digits"),
        "13 does not match: a retry"
    );
    info_digits(&mut h, &ok, &mut cseq, "1");
    h.advance(Duration::from_millis(1999));
    assert!(requests_to(&h.sent(), ALICE, Method::Bye).is_empty());
    h.advance(Duration::from_millis(1));
    assert!(
        requests_to(&h.sent(), ALICE, Method::Bye).is_empty(),
        "one digit of two after the digit timeout: the third try"
    );
    cseq += 1;
    info_digit(&mut h, &ok, cseq, '1');
    h.sent();
    cseq += 1;
    info_digit(&mut h, &ok, cseq, '2');
    let sent = h.sent();
    assert_eq!(statuses_to(&sent, ALICE), vec![200]);
    assert_eq!(
        requests_to(&sent, ALICE, Method::Bye).len(),
        1,
        "12 transfers to 5912, which hangs up"
    );
    let cdr = cdr_of(&h, &call_id);
    assert_eq!(cdr.hangup_cause, "USER_BUSY", "{cdr:?}");
    assert_eq!(cdr.dtmf_digits.as_deref(), Some("13112"), "{cdr:?}");
    h.assert_nothing_left_after_bye_answers(&[ALICE]);
}

/// 5915: digits pressed while the plan sleeps before its `play_and_get_digits` are typed
/// ahead: the collection takes them at once, so 11 reaches 5911 as soon as the sleep ends.
#[test]
fn digits_typed_ahead_count_for_the_next_collection() {
    let mut h = Harness::new(41240, |_| {});
    h.register(ALICE);
    let (call_id, sent) = h.call(ALICE, "5915");
    let ok = answered_by_plan(&mut h, &sent);
    let mut cseq = 2;
    info_digits(&mut h, &ok, &mut cseq, "11");
    assert!(script_state(&mut h).contains("sleep"), "still asleep");
    h.advance(Duration::from_millis(1000));
    assert_eq!(
        requests_to(&h.sent(), ALICE, Method::Bye).len(),
        1,
        "11 typed ahead transfers to 5911, which hangs up"
    );
    assert_eq!(cdr_of(&h, &call_id).hangup_cause, "CALL_REJECTED");
}

/// 11 at the first try: 5911 (`hangup CALL_REJECTED`).
#[test]
fn the_first_valid_choice_transfers_at_once() {
    let mut h = Harness::new(41200, |_| {});
    h.register(ALICE);
    let (call_id, sent) = h.call(ALICE, "5910");
    let ok = answered_by_plan(&mut h, &sent);
    h.sent();
    info_digit(&mut h, &ok, 3, '1');
    h.sent();
    info_digit(&mut h, &ok, 4, '1');
    assert_eq!(requests_to(&h.sent(), ALICE, Method::Bye).len(), 1);
    assert_eq!(cdr_of(&h, &call_id).hangup_cause, "CALL_REJECTED");
}

/// Three timeouts of 5 s: `choice` (set to 99 before) is unset, so `59${choice:-13}` is
/// 5913 (`hangup NORMAL_TEMPORARY_FAILURE`); nothing happens before the third timeout ends.
#[test]
fn no_digits_after_every_try_unsets_the_variable() {
    let mut h = Harness::new(41240, |_| {});
    h.register(ALICE);
    let (call_id, sent) = h.call(ALICE, "5910");
    answered_by_plan(&mut h, &sent);
    h.sent();
    for _ in 0..2 {
        h.advance(Duration::from_secs(5));
        assert!(requests_to(&h.sent(), ALICE, Method::Bye).is_empty());
    }
    h.advance(Duration::from_millis(4999));
    assert!(requests_to(&h.sent(), ALICE, Method::Bye).is_empty());
    assert!(script_state(&mut h).contains("collecting digits"));
    h.advance(Duration::from_millis(1));
    assert_eq!(requests_to(&h.sent(), ALICE, Method::Bye).len(), 1);
    let cdr = cdr_of(&h, &call_id);
    assert_eq!(
        cdr.hangup_cause, "NORMAL_TEMPORARY_FAILURE",
        "the variable was unset, not left at 99 (5999 has no route): {cdr:?}"
    );
    h.assert_nothing_left_after_bye_answers(&[ALICE]);
}

// ----- A5 ----------------------------------------------------------------------------------

/// 5920 (`sleep 3000`, `hangup`): nothing before 3 s, then 480; 5921 answers first, so the
/// hangup after the sleep is a BYE.
#[test]
fn sleep_holds_the_plan_for_its_time() {
    let mut h = Harness::new(41280, |_| {});
    h.register(ALICE);
    let (call_id, sent) = h.call(ALICE, "5920");
    assert_eq!(statuses_to(&sent, ALICE), vec![100]);
    assert!(script_state(&mut h).contains("sleep"));
    h.advance(Duration::from_millis(2999));
    assert!(statuses_to(&h.sent(), ALICE).is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(statuses_to(&h.sent(), ALICE), vec![480]);
    let cdr = cdr_of(&h, &call_id);
    assert_eq!(cdr.hangup_cause, "NORMAL_CLEARING", "{cdr:?}");
    assert_eq!(cdr.duration_s, 3);

    let (call_id, sent) = h.call(ALICE, "5921");
    answered_by_plan(&mut h, &sent);
    h.advance(Duration::from_millis(2999));
    assert!(requests_to(&h.sent(), ALICE, Method::Bye).is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(requests_to(&h.sent(), ALICE, Method::Bye).len(), 1);
    let cdr = cdr_of(&h, &call_id);
    assert_eq!(cdr.hangup_cause, "NORMAL_CLEARING", "{cdr:?}");
    assert_eq!(cdr.billsec_s, 3, "{cdr:?}");
    h.assert_nothing_left_after_bye_answers(&[ALICE]);
}

// ----- A6 ----------------------------------------------------------------------------------

/// 5930 transfers to itself: the loop is cut with 483 and EXCHANGE_ROUTING_ERROR.
#[test]
fn a_transfer_loop_ends_with_exchange_routing_error() {
    let mut h = Harness::new(41320, |_| {});
    h.register(ALICE);
    let (call_id, sent) = h.call(ALICE, "5930");
    assert_eq!(statuses_to(&sent, ALICE), vec![100, 483]);
    let cdr = cdr_of(&h, &call_id);
    assert_eq!(cdr.hangup_cause, "EXCHANGE_ROUTING_ERROR", "{cdr:?}");
    h.assert_nothing_left_after_bye_answers(&[ALICE]);
}

// ----- A7 ----------------------------------------------------------------------------------

/// A copy of the test dialplan directory.
fn plan_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(conf_dir().join("dialplan")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}

fn engine_tests_xml() -> String {
    std::fs::read_to_string(conf_dir().join("dialplan/engine-tests.xml")).unwrap()
}

/// engine-tests.xml without its 5912 extension and with `extra` extensions added.
fn edited_plan(dir: &Path, extra: &str) {
    let text = engine_tests_xml();
    let start = text.find("    <extension name=\"et-choice-12\">").unwrap();
    let end = start + text[start..].find("</extension>\n").unwrap() + "</extension>\n".len();
    let mut edited = format!("{}{}", &text[..start], &text[end..]);
    let close = edited.rfind("  </context>").unwrap();
    edited.insert_str(close, extra);
    std::fs::write(dir.join("engine-tests.xml"), edited).unwrap();
}

/// One call from ALICE to `number` that the plan refuses at once: its final status.
fn final_status(h: &mut Harness, number: &str) -> u16 {
    let (_, sent) = h.call(ALICE, number);
    let statuses = statuses_to(&sent, ALICE);
    assert_eq!(statuses.len(), 2, "{number}: {statuses:?}");
    statuses[1]
}

/// A call waiting in play_and_get_digits keeps the plan it started with after `reload
/// dialplan` removed its target (5912); a new call hunts in the new plan; a plan with an
/// XML error is refused with its file:line and the plan in force keeps serving; `reloadxml`
/// does the same as `reload dialplan`.
#[test]
fn reload_swaps_the_plan_for_new_calls_only_and_refuses_a_broken_one() {
    let dir = plan_copy();
    let mut h = Harness::with_plan_dir(41360, dir.path(), |_| {});
    h.register(ALICE);
    assert_eq!(final_status(&mut h, "5912"), 486, "5912 is there at first");
    assert_eq!(final_status(&mut h, "5960"), 404);

    let (waiting_id, sent) = h.call(ALICE, "5910");
    let ok = answered_by_plan(&mut h, &sent);
    h.sent();

    let added = "    <extension name=\"et-added\"><condition field=\"destination_number\" expression=\"^5960$\">\n      \
                 <action application=\"hangup\" data=\"CALL_REJECTED\"/></condition></extension>\n";
    edited_plan(dir.path(), added);
    let out = h.switch.execute(h.now, "reload dialplan").expect("reloads");
    assert!(out.starts_with("dialplan reloaded"), "{out}");
    assert_eq!(final_status(&mut h, "5912"), 404, "new calls: 5912 is gone");
    assert_eq!(
        final_status(&mut h, "5960"),
        403,
        "new calls: 5960 is there"
    );

    // The waiting call still transfers into the plan it started with.
    info_digit(&mut h, &ok, 3, '1');
    h.sent();
    info_digit(&mut h, &ok, 4, '2');
    assert_eq!(requests_to(&h.sent(), ALICE, Method::Bye).len(), 1);
    assert_eq!(cdr_of(&h, &waiting_id).hangup_cause, "USER_BUSY");

    // A plan that does not parse: refused, with where.
    let broken = engine_tests_xml().replacen(
        "<extension name=\"et-rejected\">",
        "<extension name=\"et-rejected\" name=\"twice\">",
        1,
    );
    let line = broken
        .lines()
        .position(|l| l.contains("name=\"twice\""))
        .unwrap()
        + 1;
    std::fs::write(dir.path().join("engine-tests.xml"), &broken).unwrap();
    let error = h
        .switch
        .execute(h.now, "reload dialplan")
        .expect_err("a broken plan is refused");
    assert!(
        error.contains(&format!("engine-tests.xml:{line}")),
        "the error names the file and line {line}: {error}"
    );
    assert!(error.contains("old plan keeps serving"), "{error}");
    assert_eq!(
        final_status(&mut h, "5960"),
        403,
        "the plan in force serves"
    );
    assert_eq!(final_status(&mut h, "5912"), 404);

    // `reloadxml`: the same, under FreeSWITCH's name.
    std::fs::write(dir.path().join("engine-tests.xml"), engine_tests_xml()).unwrap();
    let out = h.switch.execute(h.now, "reloadxml").expect("reloads");
    assert!(out.starts_with("dialplan reloaded"), "{out}");
    assert_eq!(final_status(&mut h, "5912"), 486);
    assert_eq!(final_status(&mut h, "5960"), 404);
    h.assert_nothing_left_after_bye_answers(&[ALICE]);
}

// ----- A8 ----------------------------------------------------------------------------------

/// WARN events of this thread: the executor warns when it skips an action (an unknown
/// application, arguments it cannot parse).
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl tracing::Subscriber for Warnings {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() <= tracing::Level::WARN {
            let mut text = Fields(String::new());
            event.record(&mut text);
            self.0.lock().unwrap().push(text.0);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Each core application with data it runs with, and whether the plan goes on after it
/// (`false`: it holds the call until a hang-up).
const SAMPLES: &[(&str, &str, bool)] = &[
    ("set", "continue_on_fail=true", true),
    ("export", "exported=1", true),
    ("unset", "exported", true),
    ("log", "INFO every core application", true),
    ("ring_ready", "", true),
    ("pre_answer", "", true),
    ("sleep", "1000", true),
    ("answer", "", true),
    ("read", "1 1 silence_stream://0 got 1000 #", true),
    (
        "play_and_get_digits",
        "1 1 1 1000 # silence_stream://0 silence_stream://0 got ^\\d$",
        true,
    ),
    ("bridge", "user/1005", true),
    ("transfer", "5981", true),
    ("hangup", "USER_BUSY", true),
    ("playback", "welcome", false),
    ("moh", "", false),
    ("tone", "ringback", false),
    ("echo", "", false),
    ("park", "", false),
    ("conference", "5999", false),
];

fn action(application: &str, data: &str) -> String {
    format!("      <action application=\"{application}\" data=\"{data}\"/>\n")
}

fn extension(number: &str, actions: &str) -> String {
    format!(
        "    <extension name=\"x{number}\"><condition field=\"destination_number\" expression=\"^{number}$\">\n\
         {actions}    </condition></extension>\n"
    )
}

/// Every name of `CORE_APPLICATIONS` is run by the executor itself: a plan of them all
/// (5980 runs those that finish, in order, and transfers to 5981 for the `hangup`; 5982.. run
/// one that holds the call each, then a `hangup CALL_REJECTED` that must never run) reaches
/// its end with each application's effect seen, and no action is skipped with a warning.
#[test]
fn every_core_application_is_run_by_the_executor() {
    let core = switchyard_dialplan::check::CORE_APPLICATIONS;
    for name in core {
        assert!(
            SAMPLES.iter().any(|(app, _, _)| app == name),
            "{name} is a core application: give it a sample here"
        );
    }
    assert_eq!(SAMPLES.len(), core.len());

    let mut plan = String::from("<include>\n  <context name=\"default\">\n");
    let finishing: String = SAMPLES
        .iter()
        .filter(|(app, _, goes_on)| *goes_on && *app != "hangup")
        .map(|(app, data, _)| action(app, data))
        .collect();
    plan.push_str(&extension("5980", &finishing));
    plan.push_str(&extension("5981", &action("hangup", "USER_BUSY")));
    let holding: Vec<&(&str, &str, bool)> = SAMPLES.iter().filter(|s| !s.2).collect();
    for (i, (app, data, _)) in holding.iter().enumerate() {
        let actions = action(app, data) + &action("hangup", "CALL_REJECTED");
        plan.push_str(&extension(&format!("{}", 5982 + i), &actions));
    }
    plan.push_str("  </context>\n</include>\n");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("every.xml"), plan).unwrap();

    let warnings = Warnings::default();
    let seen = warnings.clone();
    tracing::subscriber::with_default(warnings, || {
        let mut h = Harness::with_plan_dir(41400, dir.path(), |config| {
            config.media.sounds_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sounds");
        });
        h.register(ALICE);
        h.register(BOB_DESK);
        let (call_id, sent) = h.call(ALICE, "5980");
        // ring_ready, pre_answer, then the sleep holds the answer back.
        assert_eq!(statuses_to(&sent, ALICE), vec![100, 180, 183]);
        let early = sent.iter().find(|(_, m)| m.status() == Some(183)).unwrap();
        assert!(!early.1.body().is_empty(), "183 with SDP");
        assert!(script_state(&mut h).contains("sleep"));
        h.advance(Duration::from_millis(1000));
        let sent = h.sent();
        let ok = answered_by_plan(&mut h, &sent);
        assert!(script_state(&mut h).contains("collecting digits"), "read");
        info_digit(&mut h, &ok, 3, '7');
        h.sent();
        assert!(
            script_state(&mut h).contains("collecting digits"),
            "play_and_get_digits after read got its digit"
        );
        h.advance(Duration::from_millis(1000));
        // bridge user/1005 (not registered) fails, continue_on_fail (set) goes on, transfer
        // to 5981, hangup USER_BUSY.
        assert_eq!(requests_to(&h.sent(), ALICE, Method::Bye).len(), 1);
        let cdr = cdr_of(&h, &call_id);
        assert_eq!(cdr.hangup_cause, "USER_BUSY", "{cdr:?}");
        h.assert_nothing_left_after_bye_answers(&[ALICE]);

        for (i, (app, _, _)) in holding.iter().enumerate() {
            let number = format!("{}", 5982 + i);
            let (call_id, sent) = h.call(ALICE, &number);
            if *app == "park" {
                // FreeSWITCH's park does not answer either.
                assert_eq!(statuses_to(&sent, ALICE), vec![100], "park");
            } else {
                answered_by_plan(&mut h, &sent);
            }
            h.advance(Duration::from_secs(10));
            assert_eq!(h.active_calls(), 1, "{app}: {:?}", h.cdrs().first());
            let state = script_state(&mut h);
            let expected = if *app == "playback" {
                "playback"
            } else {
                "parked"
            };
            assert!(state.contains(expected), "{app}: {state}");
            assert!(
                requests_to(&h.sent(), ALICE, Method::Bye).is_empty(),
                "{app} holds the call"
            );
            h.switch.execute(h.now, "hupall").unwrap();
            assert_eq!(
                cdr_of(&h, &call_id).hangup_cause,
                "MANAGER_REQUEST",
                "{app}"
            );
            h.assert_nothing_left_after_bye_answers(&[ALICE]);
        }
    });
    let warnings = seen.0.lock().unwrap();
    assert!(
        warnings.is_empty(),
        "no action was skipped: {:#?}",
        *warnings
    );
}
