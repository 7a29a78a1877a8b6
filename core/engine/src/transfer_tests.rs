//! Transfers on the switch's virtual clock (see switch_tests for the harness): REFER blind
//! and attended from the callee, and the console's `transfer`; module applications and
//! `hangup_after_bridge=false`, which the transfer machinery carries out.

use std::time::Duration;

use switchyard_sdp::SessionDescription;
use switchyard_sip::{Message, Method};

use crate::switch_tests::*;

const CAROL: Phone = Phone {
    user: "1002",
    addr: "127.0.0.1:7003",
};

/// A request from a callee inside the dialog our INVITE (to it) created; `tag` is its To tag.
fn callee_request(
    phone: Phone,
    invite: &Message,
    tag: &str,
    method: &str,
    cseq: u32,
    extra: &str,
) -> String {
    format!(
        "{method} sip:switchyard@127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP {addr};branch=z9hG4bK{method}{tag}{cseq}\n\
         Max-Forwards: 70\nFrom: {to};tag={tag}\nTo: {from}\nCall-ID: {call_id}\nCSeq: {cseq} {method}\n\
         Contact: <sip:{user}@{addr}>\n{extra}Content-Length: 0\n\n",
        addr = phone.addr,
        user = phone.user,
        to = invite.header("To").unwrap(),
        from = invite.header("From").unwrap(),
        call_id = invite.call_id(),
    )
}

/// ALICE calls `to`, who answers with To tag `tag`: the INVITE the callee got and our 200 to
/// ALICE (already ACKed).
fn bridged_call(h: &mut Harness, caller: Phone, callee: Phone, tag: &str) -> (Message, Message) {
    dial_and_answer(h, caller, callee.user, callee, tag)
}

/// `caller` dials `destination`; `callee` answers.
fn dial_and_answer(
    h: &mut Harness,
    caller: Phone,
    destination: &str,
    callee: Phone,
    tag: &str,
) -> (Message, Message) {
    let (_, sent) = h.call(caller, destination);
    let invite = requests_to(&sent, callee, Method::Invite)
        .pop()
        .expect("the callee is rung");
    h.answer(callee, &invite, 200, tag);
    let ok = h.ok_to(caller);
    let ack = format!(
        "ACK sip:switchyard@127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP {addr};branch=z9hG4bKack{tag}\n\
         Max-Forwards: 70\nFrom: <sip:{user}@switchyard.test>;tag=a{user}\nTo: {to}\nCall-ID: {call_id}\n\
         CSeq: 2 ACK\nContent-Length: 0\n\n",
        addr = caller.addr,
        user = caller.user,
        to = ok.header("To").unwrap(),
        call_id = ok.call_id(),
    );
    h.send(caller, ack);
    h.sent();
    (invite, ok)
}

fn notify_statuses(sent: &[(std::net::SocketAddr, Message)], phone: Phone) -> Vec<String> {
    requests_to(sent, phone, Method::Notify)
        .iter()
        .map(|n| {
            assert_eq!(n.header("Event"), Some("refer;id=5"));
            String::from_utf8_lossy(n.body()).trim().to_owned()
        })
        .collect()
}

#[test]
fn a_blind_refer_from_the_callee_sends_the_caller_to_the_target() {
    let mut h = Harness::new(40400, |_| {});
    for phone in [ALICE, BOB_DESK, CAROL] {
        h.register(phone);
    }
    let (bob_invite, _) = bridged_call(&mut h, ALICE, BOB_DESK, "desk");
    h.send(
        BOB_DESK,
        callee_request(
            BOB_DESK,
            &bob_invite,
            "desk",
            "REFER",
            5,
            "Refer-To: <sip:1002@switchyard.test>\n",
        ),
    );
    let sent = h.sent();
    assert_eq!(statuses_to(&sent, BOB_DESK), vec![202]);
    assert_eq!(
        notify_statuses(&sent, BOB_DESK),
        vec!["SIP/2.0 100 Trying", "SIP/2.0 200 OK"]
    );
    assert_eq!(
        requests_to(&sent, BOB_DESK, Method::Bye).len(),
        1,
        "the transferor is hung up"
    );
    let carol_invite = requests_to(&sent, CAROL, Method::Invite)
        .pop()
        .expect("the target is rung");
    assert!(
        statuses_to(&sent, ALICE).is_empty(),
        "the caller's dialog is untouched"
    );
    h.answer(CAROL, &carol_invite, 200, "carol");
    let sent = h.sent();
    assert_eq!(requests_to(&sent, CAROL, Method::Ack).len(), 1);
    let calls = h.switch.execute(h.now, "show calls").unwrap();
    assert!(calls.starts_with("1 calls"), "{calls}");
    assert!(calls.contains("(1002) answered bridged"), "{calls}");
    // The target hangs up: the caller gets our BYE and the CDR names the target.
    h.send(
        CAROL,
        callee_request(CAROL, &carol_invite, "carol", "BYE", 7, ""),
    );
    let sent = h.sent();
    assert_eq!(requests_to(&sent, ALICE, Method::Bye).len(), 1);
    let cdrs = h.cdrs();
    assert_eq!(cdrs.len(), 1);
    assert_eq!(cdrs[0].callee, "1002");
    assert_eq!(cdrs[0].hangup_cause, "NORMAL_CLEARING");
    h.assert_nothing_left_after_bye_answers(&[ALICE, BOB_DESK, CAROL]);
}

#[test]
fn an_attended_refer_connects_the_caller_to_the_consultation_party() {
    let mut h = Harness::new(40420, |_| {});
    for phone in [ALICE, BOB_DESK, CAROL] {
        h.register(phone);
    }
    let (bob_invite, _) = bridged_call(&mut h, ALICE, BOB_DESK, "desk");
    // Bob consults Carol.
    let (carol_invite, consult_ok) = bridged_call(&mut h, BOB_DESK, CAROL, "carol");
    let replaces = format!(
        "{}%3Bto-tag%3D{}%3Bfrom-tag%3Da1001",
        consult_ok.call_id(),
        consult_ok.to().tag().unwrap()
    );
    h.send(
        BOB_DESK,
        callee_request(
            BOB_DESK,
            &bob_invite,
            "desk",
            "REFER",
            5,
            &format!("Refer-To: <sip:1002@switchyard.test?Replaces={replaces}>\n"),
        ),
    );
    let sent = h.sent();
    assert_eq!(statuses_to(&sent, BOB_DESK), vec![202]);
    assert_eq!(
        notify_statuses(&sent, BOB_DESK),
        vec!["SIP/2.0 100 Trying", "SIP/2.0 200 OK"]
    );
    assert_eq!(
        requests_to(&sent, BOB_DESK, Method::Bye).len(),
        2,
        "the transferor leaves both calls"
    );
    assert!(
        requests_to(&sent, CAROL, Method::Invite).is_empty(),
        "no new call to the target"
    );
    assert!(statuses_to(&sent, ALICE).is_empty());
    let calls = h.switch.execute(h.now, "show calls").unwrap();
    assert!(calls.starts_with("1 calls"), "{calls}");
    assert!(calls.contains("1000 -> 1001 (1002) answered"), "{calls}");
    let cdrs = h.cdrs();
    assert_eq!(cdrs.len(), 1, "the consultation call ended");
    assert_eq!(cdrs[0].hangup_cause, "ATTENDED_TRANSFER");
    // Carol hangs up in her old dialog: Alice gets the BYE.
    h.send(
        CAROL,
        callee_request(CAROL, &carol_invite, "carol", "BYE", 7, ""),
    );
    let sent = h.sent();
    assert_eq!(requests_to(&sent, ALICE, Method::Bye).len(), 1);
    assert_eq!(h.cdrs().len(), 2);
    h.assert_nothing_left_after_bye_answers(&[ALICE, BOB_DESK, CAROL]);
}

#[test]
fn refer_edge_cases_are_refused_cleanly() {
    let mut h = Harness::new(40440, |_| {});
    for phone in [ALICE, BOB_DESK] {
        h.register(phone);
    }
    let (bob_invite, _) = bridged_call(&mut h, ALICE, BOB_DESK, "desk");
    let refer = |h: &mut Harness, cseq: u32, header: &str| {
        h.send(
            BOB_DESK,
            callee_request(BOB_DESK, &bob_invite, "desk", "REFER", cseq, header),
        );
        statuses_to(&h.sent(), BOB_DESK)
    };
    assert_eq!(refer(&mut h, 3, ""), vec![400], "no Refer-To");
    assert_eq!(refer(&mut h, 4, "Refer-To: <nonsense\n"), vec![400]);
    assert_eq!(
        refer(
            &mut h,
            5,
            "Refer-To: <sip:1002@switchyard.test?Replaces=nope%3Bto-tag%3Dx%3Bfrom-tag%3Dy>\n"
        ),
        vec![481],
        "Replaces naming no dialog"
    );
    let calls = h.switch.execute(h.now, "show calls").unwrap();
    assert!(
        calls.contains("(1001) answered bridged"),
        "the call goes on: {calls}"
    );
    assert!(h.switch.execute(h.now, "transfer nope 9196").is_err());
    h.advance(Duration::from_secs(1));
}

#[test]
fn the_console_transfers_a_bridged_caller_to_an_extension() {
    let mut h = Harness::new(40460, |_| {});
    for phone in [ALICE, BOB_DESK, CAROL] {
        h.register(phone);
    }
    bridged_call(&mut h, ALICE, BOB_DESK, "desk");
    let calls = h.switch.execute(h.now, "show calls").unwrap();
    let uuid = calls
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let out = h
        .switch
        .execute(h.now, &format!("transfer {uuid} 1002"))
        .unwrap();
    assert!(out.contains("transferred"), "{out}");
    let sent = h.sent();
    assert_eq!(requests_to(&sent, BOB_DESK, Method::Bye).len(), 1);
    let carol_invite = requests_to(&sent, CAROL, Method::Invite)
        .pop()
        .expect("1002 rung");
    h.answer(CAROL, &carol_invite, 200, "carol");
    h.sent();
    let calls = h.switch.execute(h.now, "show calls").unwrap();
    assert!(calls.contains("(1002) answered bridged"), "{calls}");
    h.send(
        CAROL,
        callee_request(CAROL, &carol_invite, "carol", "BYE", 7, ""),
    );
    assert_eq!(requests_to(&h.sent(), ALICE, Method::Bye).len(), 1);
    h.assert_nothing_left_after_bye_answers(&[ALICE, BOB_DESK, CAROL]);
}

/// A module application that answers with core ones: a `set` then a `hangup` with the cause
/// it was given.
struct Greet;

impl crate::ModuleApplication for Greet {
    fn owner(&self) -> &str {
        "test"
    }

    fn run(&self, call: &crate::CallView<'_>, data: &str) -> Vec<(String, String)> {
        assert!(!call.uuid.is_empty());
        assert_eq!(call.variables.get("destination_number"), Some("5801"));
        vec![
            ("set".into(), "greeted=yes".into()),
            ("hangup".into(), data.to_owned()),
        ]
    }
}

#[test]
fn module_applications_join_the_registry_and_run_as_core_ones() {
    let plan = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/module-plan");
    let mut h = Harness::with_plan_dir(40480, &plan, |_| {});
    h.register(ALICE);
    assert!(
        h.switch
            .register_application("bridge", std::sync::Arc::new(Greet))
            .is_err(),
        "a core name cannot be taken"
    );
    h.switch
        .register_application("greet", std::sync::Arc::new(Greet))
        .unwrap();
    assert!(
        h.switch
            .register_application("greet", std::sync::Arc::new(Greet))
            .is_err()
    );
    let (_, sent) = h.call(ALICE, "5801");
    assert_eq!(statuses_to(&sent, ALICE), vec![100, 403]);
    assert_eq!(h.cdrs()[0].hangup_cause, "CALL_REJECTED");
    assert!(h.switch.unregister_application("greet"));
    // Unregistered: the application is skipped and the plan runs out unanswered.
    let (_, sent) = h.call(ALICE, "5801");
    assert_eq!(statuses_to(&sent, ALICE), vec![100, 404]);
}

#[test]
fn with_hangup_after_bridge_false_the_plan_goes_on_when_the_callee_hangs_up() {
    let mut h = Harness::new(40500, |_| {});
    for phone in [ALICE, BOB_DESK] {
        h.register(phone);
    }
    let (invite, _) = dial_and_answer(&mut h, ALICE, "5802", BOB_DESK, "desk");
    h.send(
        BOB_DESK,
        callee_request(BOB_DESK, &invite, "desk", "BYE", 7, ""),
    );
    let sent = h.sent();
    assert_eq!(requests_to(&sent, ALICE, Method::Bye).len(), 1);
    assert_eq!(
        h.cdrs()[0].hangup_cause,
        "NORMAL_UNSPECIFIED",
        "the hangup after the bridge ended the call, not the callee's BYE"
    );
    h.assert_nothing_left_after_bye_answers(&[ALICE, BOB_DESK]);
}

#[test]
fn a_caller_answered_on_another_media_thread_is_moved_into_the_room_by_a_reinvite() {
    let mut h = Harness::new(40520, |c| c.media.threads = 2);
    for phone in [ALICE, BOB_DESK] {
        h.register(phone);
    }
    // Alice opens room 3000: it lives on her leg's media thread.
    let (_, sent) = h.call(ALICE, "3000");
    assert_eq!(statuses_to(&sent, ALICE), vec![100, 200]);
    // Bob is answered by the plan first (the next thread, round robin), then sent to 3000.
    let (_, sent) = h.call(BOB_DESK, "5803");
    let first_ok = sent
        .iter()
        .find(|(to, m)| *to == BOB_DESK.peer().addr && m.status() == Some(200))
        .map(|(_, m)| m.clone())
        .expect("Bob is answered");
    let first_port = SessionDescription::parse(first_ok.body())
        .unwrap()
        .audio_destination()
        .unwrap()
        .port();
    h.advance(Duration::from_millis(100));
    let sent = h.sent();
    let reinvite = requests_to(&sent, BOB_DESK, Method::Invite)
        .pop()
        .expect("Bob's leg moves: a re-INVITE");
    assert_eq!(reinvite.call_id(), first_ok.call_id());
    let moved_port = SessionDescription::parse(reinvite.body())
        .unwrap()
        .audio_destination()
        .unwrap()
        .port();
    assert_ne!(moved_port, first_port, "a new endpoint beside the room");
    h.answer(BOB_DESK, &reinvite, 200, "a1001");
    let sent = h.sent();
    assert_eq!(
        requests_to(&sent, BOB_DESK, Method::Ack).len(),
        1,
        "our re-INVITE is ACKed"
    );
    let rooms = h.switch.execute(h.now, "show conferences").unwrap();
    assert!(rooms.contains("3000 2 members"), "{rooms}");
}
