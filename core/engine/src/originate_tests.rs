//! `originate` on the switch's virtual clock (see switch_tests for the harness): the test plays
//! the target's responses, the switch's INVITE, ACK, CANCEL and BYE are checked as bytes.

use std::time::Duration;

use switchyard_config::{Cidr, GatewayConfig, GatewayTransport};
use switchyard_sdp::SessionDescription;
use switchyard_sip::{Message, Method};

use crate::switch_tests::*;

const TRUNK: Phone = Phone {
    user: "trunk",
    addr: "127.0.0.1:7100",
};

/// Runs `originate ARGS`; returns the uuid it answered and the INVITE `target` got.
fn originate(h: &mut Harness, args: &str, target: Phone) -> (String, Message) {
    let uuid = h
        .switch
        .execute(h.now, &format!("originate {args}"))
        .expect("originate is accepted");
    let sent = h.sent();
    let invite = requests_to(&sent, target, Method::Invite)
        .pop()
        .expect("the target is rung");
    (uuid.trim().to_owned(), invite)
}

/// The `show calls` line of the one call up.
fn call_line(h: &mut Harness) -> String {
    let listing = h.switch.execute(h.now, "show calls").unwrap();
    let mut lines = listing.lines();
    assert_eq!(lines.next(), Some("1 calls"), "{listing}");
    lines.next().unwrap().to_owned()
}

/// The names of the call events published so far, and the fields of the last `name`.
fn events(h: &Harness, name: &str) -> (Vec<String>, Option<serde_json::Value>) {
    let published = h.switch.published.borrow();
    let names = published
        .iter()
        .map(|v| v["event"].as_str().unwrap_or_default().to_owned())
        .collect();
    let last = published.iter().rev().find(|v| v["event"] == name).cloned();
    (names, last)
}

fn sdp_codecs(message: &Message) -> Vec<String> {
    SessionDescription::parse(message.body())
        .expect("an SDP body")
        .audio_codecs()
        .into_iter()
        .map(|c| c.name)
        .collect()
}

#[test]
fn an_originated_call_rings_with_our_offer_and_runs_its_application_once_answered() {
    let mut h = Harness::new(45000, |_| {});
    h.register(BOB_DESK);
    let (uuid, invite) = originate(
        &mut h,
        "{origination_caller_id_number=5551234,origination_caller_id_name='Callback Desk'}user/1001 &park()",
        BOB_DESK,
    );
    assert_eq!(uuid.len(), 36, "{uuid}");
    assert_eq!(invite.request_uri(), Some("sip:1001@127.0.0.1:7001"));
    let from = invite.header("From").unwrap();
    assert!(
        from.starts_with("\"Callback Desk\" <sip:5551234@"),
        "{from}"
    );
    assert!(invite.header("To").unwrap().contains("sip:1001@"));
    assert_eq!(
        sdp_codecs(&invite),
        [
            "PCMU",
            "PCMA",
            "G722",
            "opus",
            "telephone-event",
            "telephone-event"
        ],
        "what [media] codecs we terminate, with DTMF events"
    );
    let offer = SessionDescription::parse(invite.body()).unwrap();
    let rtp = offer.audio_destination().unwrap();
    assert!((45000..45040).contains(&rtp.port()), "{rtp}");
    let line = call_line(&mut h);
    assert!(line.starts_with(&uuid), "{line}");
    assert!(
        line.contains("5551234 -> user/1001 (1001) ringing originating"),
        "{line}"
    );

    h.answer(BOB_DESK, &invite, 180, "bob");
    assert!(h.sent().is_empty(), "a provisional answer needs nothing");
    h.answer(BOB_DESK, &invite, 200, "bob");
    let sent = h.sent();
    let ack = requests_to(&sent, BOB_DESK, Method::Ack)
        .pop()
        .expect("the 200 is ACKed");
    assert_eq!(ack.to().tag(), Some("bob"));
    assert_eq!(ack.cseq().0, 1);
    assert!(call_line(&mut h).contains("answered parked"));
    let channels = h.switch.execute(h.now, "show channels").unwrap();
    assert!(channels.contains(&format!("{uuid} outbound {}", invite.call_id())));

    h.switch
        .execute(h.now, &format!("uuid_kill {uuid}"))
        .unwrap();
    let bye = requests_to(&h.sent(), BOB_DESK, Method::Bye)
        .pop()
        .expect("a kill hangs the target up");
    assert_eq!(bye.call_id(), invite.call_id());
    assert_eq!(bye.cseq().0, 2);
    h.answer(BOB_DESK, &bye, 200, "bob");
    let cdr = &h.cdrs()[0];
    assert_eq!(cdr.uuid, uuid);
    assert_eq!(cdr.caller, "5551234");
    assert_eq!(cdr.destination, "user/1001");
    assert_eq!(cdr.callee, "1001");
    assert_eq!(cdr.hangup_cause, "MANAGER_REQUEST");
    assert_eq!(cdr.a_sip_code, Some(200));
    assert!(cdr.answer_ms.is_some());
    let (names, new) = events(&h, "call.new");
    assert_eq!(names, ["call.new", "call.answered", "call.ended"]);
    let new = new.unwrap();
    assert_eq!(new["uuid"], uuid.as_str());
    assert_eq!(new["variables"]["direction"], "outbound");
    assert_eq!(new["variables"]["origination_caller_id_number"], "5551234");
    h.assert_nothing_left_after_bye_answers(&[BOB_DESK]);
}

#[test]
fn origination_uuid_names_the_call() {
    let mut h = Harness::new(45400, |_| {});
    h.register(BOB_DESK);
    let (uuid, _) = originate(
        &mut h,
        "{origination_uuid=acd-callback-7}user/1001 &park()",
        BOB_DESK,
    );
    assert_eq!(uuid, "acd-callback-7");
    assert!(call_line(&mut h).starts_with("acd-callback-7 "));
    let again = h
        .switch
        .execute(
            h.now,
            "originate {origination_uuid=acd-callback-7}user/1001 &park()",
        )
        .expect_err("one call per uuid");
    assert!(again.contains("exists already"), "{again}");
    h.switch.execute(h.now, "hupall").unwrap();
    assert_eq!(h.cdrs()[0].uuid, "acd-callback-7");
}

#[test]
fn a_busy_target_fails_the_originate_with_its_cause() {
    let mut h = Harness::new(45040, |_| {});
    h.register(BOB_DESK);
    let (uuid, invite) = originate(&mut h, "user/1001 9196", BOB_DESK);
    assert!(invite.header("From").unwrap().contains("<sip:0000000000@"));
    h.answer(BOB_DESK, &invite, 486, "bob");
    let sent = h.sent();
    assert_eq!(
        requests_to(&sent, BOB_DESK, Method::Ack).len(),
        1,
        "the transaction ACKs the 486"
    );
    assert_eq!(h.active_calls(), 0);
    let cdr = &h.cdrs()[0];
    assert_eq!(cdr.uuid, uuid);
    assert_eq!(cdr.hangup_cause, "USER_BUSY");
    assert_eq!(cdr.a_sip_code, Some(486));
    assert_eq!(cdr.answer_ms, None);
    let (names, failed) = events(&h, "originate.failed");
    assert_eq!(names, ["call.new", "originate.failed", "call.ended"]);
    let failed = failed.unwrap();
    assert_eq!(failed["uuid"], uuid.as_str());
    assert_eq!(failed["cause"], "USER_BUSY");
    assert_eq!(failed["status"], 486);
    assert_eq!(failed["variables"]["destination_number"], "9196");
    h.assert_nothing_left_after_bye_answers(&[BOB_DESK]);
}

#[test]
fn originate_timeout_cancels_a_ringing_target() {
    let mut h = Harness::new(45080, |_| {});
    h.register(BOB_DESK);
    let (_, invite) = originate(&mut h, "{originate_timeout=5}user/1001 &park()", BOB_DESK);
    h.answer(BOB_DESK, &invite, 180, "bob");
    h.advance(Duration::from_secs(4));
    assert!(requests_to(&h.sent(), BOB_DESK, Method::Cancel).is_empty());
    h.advance(Duration::from_secs(2));
    let cancel = requests_to(&h.sent(), BOB_DESK, Method::Cancel)
        .pop()
        .expect("the timeout cancels");
    assert_eq!(cancel.cseq().0, 1);
    assert_eq!(h.active_calls(), 0);
    let cdr = &h.cdrs()[0];
    assert_eq!(cdr.hangup_cause, "NO_ANSWER");
    assert_eq!(cdr.hangup_side, "system");
    let (_, failed) = events(&h, "originate.failed");
    assert_eq!(failed.unwrap()["cause"], "NO_ANSWER");
    // The target confirms the CANCEL and ends its INVITE with 487.
    h.answer(BOB_DESK, &cancel, 200, "bob");
    h.answer(BOB_DESK, &invite, 487, "bob");
    h.assert_nothing_left_after_bye_answers(&[BOB_DESK]);
}

#[test]
fn a_kill_before_any_provisional_cancels_on_the_first_and_a_late_answer_is_hung_up() {
    let mut h = Harness::new(45120, |_| {});
    h.register(BOB_DESK);
    let (uuid, invite) = originate(&mut h, "user/1001 &park()", BOB_DESK);
    h.switch
        .execute(h.now, &format!("uuid_kill {uuid}"))
        .unwrap();
    assert!(
        h.sent().is_empty(),
        "RFC 3261 §9.1: no CANCEL before a provisional"
    );
    assert_eq!(h.cdrs()[0].hangup_cause, "MANAGER_REQUEST");
    h.answer(BOB_DESK, &invite, 180, "bob");
    assert_eq!(requests_to(&h.sent(), BOB_DESK, Method::Cancel).len(), 1);
    // The answer raced the CANCEL: ACK and BYE.
    h.answer(BOB_DESK, &invite, 200, "bob");
    let sent = h.sent();
    assert_eq!(requests_to(&sent, BOB_DESK, Method::Ack).len(), 1);
    assert_eq!(requests_to(&sent, BOB_DESK, Method::Bye).len(), 1);
    h.assert_nothing_left_after_bye_answers(&[BOB_DESK]);
}

#[test]
fn an_originated_call_bridges_to_a_second_party_and_ends_with_either_side() {
    let mut h = Harness::new(45160, |_| {});
    h.register(ALICE);
    h.register(BOB_DESK);
    let (uuid, invite) = originate(
        &mut h,
        "{origination_caller_id_number=1001}user/1001 &bridge(user/1000)",
        BOB_DESK,
    );
    assert!(
        h.sent().is_empty(),
        "the second party rings only once the first answers"
    );
    h.answer(BOB_DESK, &invite, 200, "bob");
    let sent = h.sent();
    assert_eq!(requests_to(&sent, BOB_DESK, Method::Ack).len(), 1);
    let to_alice = requests_to(&sent, ALICE, Method::Invite)
        .pop()
        .expect("the bridge rings 1000");
    assert!(to_alice.header("From").unwrap().contains("sip:1001@"));
    assert!(sdp_codecs(&to_alice).contains(&"PCMU".to_owned()));
    h.answer(ALICE, &to_alice, 200, "alice");
    assert_eq!(requests_to(&h.sent(), ALICE, Method::Ack).len(), 1);
    assert!(call_line(&mut h).contains("answered bridged"));

    // 1000 hangs up: the originated leg gets our BYE.
    h.send(ALICE, callee_bye(ALICE, &to_alice, "alice"));
    let sent = h.sent();
    let bye = requests_to(&sent, BOB_DESK, Method::Bye)
        .pop()
        .expect("the other side is hung up");
    assert_eq!(bye.call_id(), invite.call_id());
    h.answer(BOB_DESK, &bye, 200, "bob");
    let cdr = &h.cdrs()[0];
    assert_eq!(cdr.uuid, uuid);
    assert_eq!(cdr.callee, "1000", "the party bridged to");
    assert_eq!(cdr.destination, "user/1001");
    assert_eq!(cdr.b_sip_code, Some(200));
    h.assert_nothing_left_after_bye_answers(&[ALICE, BOB_DESK]);

    // And the originated side hanging up first ends the bridge too.
    let (_, invite) = originate(&mut h, "user/1001 &bridge(user/1000)", BOB_DESK);
    h.answer(BOB_DESK, &invite, 200, "bob2");
    let to_alice = requests_to(&h.sent(), ALICE, Method::Invite).pop().unwrap();
    h.answer(ALICE, &to_alice, 200, "alice2");
    h.sent();
    h.send(BOB_DESK, callee_bye(BOB_DESK, &invite, "bob2"));
    assert_eq!(requests_to(&h.sent(), ALICE, Method::Bye).len(), 1);
    assert_eq!(h.cdrs()[0].hangup_side, "caller");
    h.assert_nothing_left_after_bye_answers(&[ALICE, BOB_DESK]);
}

#[test]
fn an_extension_is_hunted_in_its_context_once_answered() {
    let mut h = Harness::new(45200, |_| {});
    h.register(BOB_DESK);
    let (_, invite) = originate(&mut h, "user/1001 9196 XML default", BOB_DESK);
    h.answer(BOB_DESK, &invite, 200, "bob");
    h.sent();
    assert!(
        call_line(&mut h).contains("answered parked"),
        "9196 answers (already done) and echoes"
    );
    // A re-INVITE from the target is answered with our own session, in its codec.
    let reinvite = format!(
        "INVITE sip:switchyard@127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP {addr};branch=z9hG4bKre1\n\
         Max-Forwards: 70\nFrom: {to};tag=bob\nTo: {from}\nCall-ID: {call_id}\nCSeq: 7 INVITE\n\
         Contact: <sip:1001@{addr}>\nContent-Type: application/sdp\nContent-Length: {len}\n\n{sdp}",
        addr = BOB_DESK.addr,
        to = invite.header("To").unwrap(),
        from = invite.header("From").unwrap(),
        call_id = invite.call_id(),
        len = SDP_PCMU.replace('\n', "\r\n").len(),
        sdp = SDP_PCMU,
    );
    h.send(BOB_DESK, reinvite);
    let ok = h
        .responses_to(BOB_DESK)
        .into_iter()
        .find(|m| m.status() == Some(200))
        .expect("the re-INVITE is answered");
    assert_eq!(sdp_codecs(&ok)[0], "PCMU");
    h.switch.execute(h.now, "hupall").unwrap();
    h.assert_nothing_left_after_bye_answers(&[BOB_DESK]);

    // An extension the context lacks: answered, then hung up for want of a route.
    let (_, invite) = originate(&mut h, "user/1001 4711", BOB_DESK);
    h.answer(BOB_DESK, &invite, 200, "bob3");
    assert_eq!(requests_to(&h.sent(), BOB_DESK, Method::Bye).len(), 1);
    assert_eq!(h.cdrs()[0].hangup_cause, "NO_ROUTE_DESTINATION");
    h.assert_nothing_left_after_bye_answers(&[BOB_DESK]);
}

const SDP_PCMU: &str = "v=0\no=- 3 3 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 31000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n";

#[test]
fn an_answer_in_a_codec_we_did_not_offer_is_hung_up() {
    let mut h = Harness::new(45240, |_| {});
    h.register(BOB_DESK);
    let (_, invite) = originate(&mut h, "user/1001 &park()", BOB_DESK);
    let gsm = "v=0\no=- 2 2 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 31000 RTP/AVP 3\na=rtpmap:3 GSM/8000\n";
    h.answer_with_sdp(BOB_DESK, &invite, 200, "bob", gsm);
    let sent = h.sent();
    assert_eq!(requests_to(&sent, BOB_DESK, Method::Ack).len(), 1);
    assert_eq!(requests_to(&sent, BOB_DESK, Method::Bye).len(), 1);
    assert_eq!(h.cdrs()[0].hangup_cause, "INCOMPATIBLE_DESTINATION");
    h.assert_nothing_left_after_bye_answers(&[BOB_DESK]);
}

#[test]
fn a_gateway_challenge_is_answered_with_the_trunk_credentials() {
    let mut h = Harness::new(45280, |config| {
        config.gateways.insert(
            "carrier".into(),
            GatewayConfig {
                name: "carrier".into(),
                proxy: TRUNK.addr.parse().unwrap(),
                proxy_host: "127.0.0.1".into(),
                transport: GatewayTransport::Udp,
                username: "4420".into(),
                password: "secret".into(),
                realm: None,
                register: false,
                expires_secs: 600,
                retry_secs: 30,
                max_retry_secs: 600,
                from_user: "4420".into(),
                from_domain: "127.0.0.1".into(),
                caller_id_number: None,
                caller_id_name: None,
                caller_id_in_from: true,
                inbound_acl: Vec::<Cidr>::new(),
                inbound_context: "public".into(),
                enabled: true,
                line: None,
            },
        );
    });
    let (_, invite) = originate(
        &mut h,
        "{origination_caller_id_number=4420}sofia/gateway/carrier/15551230000 &park()",
        TRUNK,
    );
    assert_eq!(invite.request_uri(), Some("sip:15551230000@127.0.0.1:7100"));
    let challenge = format!(
        "SIP/2.0 407 Proxy Authentication Required\nVia: {via}\nFrom: {from}\nTo: {to};tag=t1\n\
         Call-ID: {call_id}\nCSeq: 1 INVITE\nProxy-Authenticate: Digest realm=\"carrier\", nonce=\"n1\"\n\
         Content-Length: 0\n\n",
        via = invite.header("Via").unwrap(),
        from = invite.header("From").unwrap(),
        to = invite.header("To").unwrap(),
        call_id = invite.call_id(),
    );
    h.send(TRUNK, challenge);
    let sent = h.sent();
    let again = requests_to(&sent, TRUNK, Method::Invite)
        .pop()
        .expect("the INVITE again, with credentials");
    assert_eq!(again.cseq().0, 2);
    assert_eq!(again.call_id(), invite.call_id());
    let credentials = again.header("Proxy-Authorization").unwrap();
    for part in [
        "username=\"4420\"",
        "realm=\"carrier\"",
        "nonce=\"n1\"",
        "uri=\"sip:15551230000@127.0.0.1:7100\"",
    ] {
        assert!(credentials.contains(part), "{part} in {credentials}");
    }
    // A second challenge is not answered again: the call fails with it.
    let challenge = format!(
        "SIP/2.0 407 Proxy Authentication Required\nVia: {via}\nFrom: {from}\nTo: {to};tag=t2\n\
         Call-ID: {call_id}\nCSeq: 2 INVITE\nProxy-Authenticate: Digest realm=\"carrier\", nonce=\"n2\"\n\
         Content-Length: 0\n\n",
        via = again.header("Via").unwrap(),
        from = again.header("From").unwrap(),
        to = again.header("To").unwrap(),
        call_id = again.call_id(),
    );
    h.send(TRUNK, challenge);
    assert!(requests_to(&h.sent(), TRUNK, Method::Invite).is_empty());
    assert_eq!(h.active_calls(), 0);
    assert_eq!(h.cdrs()[0].a_sip_code, Some(407));
    h.assert_nothing_left_after_bye_answers(&[TRUNK]);
}

#[test]
fn bad_originates_are_refused_at_once() {
    let mut h = Harness::new(45320, |_| {});
    let refused = |h: &mut Harness, args: &str| {
        h.switch
            .execute(h.now, &format!("originate {args}"))
            .expect_err(args)
    };
    assert!(
        refused(&mut h, "{acd_callback=7,acd_agent=1001}user/1001 &park()")
            .contains("USER_NOT_REGISTERED")
    );
    // A module that placed it hears the refusal as an event, with its variables.
    let (_, failed) = events(&h, "originate.failed");
    let failed = failed.expect("originate.failed for a refused originate");
    assert_eq!(failed["cause"], "USER_NOT_REGISTERED");
    assert_eq!(failed["variables"]["acd_callback"], "7");
    assert_eq!(failed["variables"]["acd_agent"], "1001");
    h.register(BOB_DESK);
    assert!(refused(&mut h, "").starts_with("usage"));
    assert!(refused(&mut h, "user/1001").starts_with("usage"));
    assert!(refused(&mut h, "pstn/1001 9196").contains("unknown target"));
    assert!(refused(&mut h, "sofia/gateway/nowhere/123 9196").contains("no gateway nowhere"));
    assert!(refused(&mut h, "user/1001 &frobnicate(x)").contains("unknown application"));
    assert!(refused(&mut h, "user/1001 &playback(x").contains("without its `)`"));
    assert!(refused(&mut h, "user/1001 9196 LUA").contains("only dialplan is XML"));
    assert!(refused(&mut h, "{a=b user/1001 9196").contains("without its `}`"));
    assert!(refused(&mut h, "{origination_uuid=a/b}user/1001 9196").contains("origination_uuid"));
    assert!(h.sent().is_empty());
    assert_eq!(h.active_calls(), 0);
    assert!(h.cdrs().is_empty());
}

#[test]
fn a_shutdown_ends_ringing_originates_at_once() {
    let mut h = Harness::new(45360, |_| {});
    h.register(BOB_DESK);
    let (_, invite) = originate(&mut h, "user/1001 &park()", BOB_DESK);
    h.answer(BOB_DESK, &invite, 180, "bob");
    h.switch.execute(h.now, "shutdown").unwrap();
    assert_eq!(requests_to(&h.sent(), BOB_DESK, Method::Cancel).len(), 1);
    assert!(h.switch.is_stopped());
    assert_eq!(h.cdrs()[0].hangup_cause, "SYSTEM_SHUTDOWN");
    assert!(
        h.switch
            .execute(h.now, "originate user/1001 &park()")
            .is_err(),
        "no new calls while stopping"
    );
    h.answer(BOB_DESK, &invite, 487, "bob");
    h.assert_nothing_left_after_bye_answers(&[BOB_DESK]);
}
