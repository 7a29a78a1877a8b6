//! The RFC 3261 §17 / RFC 6026 transaction machines on a virtual clock: no sleeps, every
//! deadline is an `Instant` offset from a fixed base.

use std::cell::Cell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchyard_sip::Message;
use switchyard_sip::transaction::{
    ClientTxId, Peer, ServerTxId, TimerConfig, TransactionLayer, Transmit, TransportKind, TxEvent,
};

const UAC: &str = "10.0.0.1:5060";
const UAS: &str = "10.0.0.2:5060";

/// The virtual clock's origin; every later instant is `epoch() + offset`.
#[allow(clippy::disallowed_methods)]
fn epoch() -> Instant {
    Instant::now()
}

fn peer(transport: TransportKind, addr: &str) -> Peer {
    Peer {
        transport,
        addr: addr.parse::<SocketAddr>().unwrap(),
    }
}

fn parse(text: &str) -> Message {
    Message::parse_datagram(Bytes::from(text.to_owned()))
        .unwrap_or_else(|e| panic!("fixture does not parse: {e:?}\n{text}"))
}

fn parse_bytes(b: &Bytes) -> Message {
    Message::parse_datagram(b.clone()).expect("the layer sent something unparsable")
}

fn transport_token(t: TransportKind) -> &'static str {
    match t {
        TransportKind::Udp => "UDP",
        TransportKind::Tcp => "TCP",
    }
}

/// A request from the UAC side; `call_id` and `cseq` let a CANCEL or BYE share a dialog.
fn request(method: &str, branch: &str, t: TransportKind, call_id: &str, cseq: u32) -> Message {
    parse(&format!(
        "{method} sip:2000@10.0.0.2 SIP/2.0\r\n\
         Via: SIP/2.0/{} 10.0.0.1:5060;branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         Route: <sip:proxy.example.net;lr>\r\n\
         From: \"Alice\" <sip:1000@10.0.0.1>;tag=from1\r\n\
         To: <sip:2000@10.0.0.2>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:1000@10.0.0.1>\r\n\
         Content-Length: 0\r\n\r\n",
        transport_token(t)
    ))
}

/// A response to `req`, echoing its Vias, From, Call-ID, CSeq; `to_tag` is added to To.
fn response(req: &Message, status: u16, to_tag: Option<&str>) -> Message {
    let mut s = format!("SIP/2.0 {status} Whatever\r\n");
    for v in req.headers("Via") {
        s.push_str(&format!("Via: {v}\r\n"));
    }
    s.push_str(&format!("From: {}\r\n", req.header("From").unwrap()));
    match to_tag {
        Some(tag) => s.push_str(&format!("To: {};tag={tag}\r\n", req.header("To").unwrap())),
        None => s.push_str(&format!("To: {}\r\n", req.header("To").unwrap())),
    }
    s.push_str(&format!("Call-ID: {}\r\n", req.call_id()));
    s.push_str(&format!("CSeq: {}\r\n", req.header("CSeq").unwrap()));
    s.push_str("Content-Length: 0\r\n\r\n");
    parse(&s)
}

/// The ACK a UAC core sends for a 2xx (§13.2.2.4): a new branch, To from the 2xx.
fn ack_for_2xx(invite: &Message, ok: &Message, branch: &str) -> Message {
    parse(&format!(
        "ACK {} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: {}\r\n\
         To: {}\r\n\
         Call-ID: {}\r\n\
         CSeq: {} ACK\r\n\
         Content-Length: 0\r\n\r\n",
        invite.request_uri().unwrap(),
        invite.header("From").unwrap(),
        ok.header("To").unwrap(),
        invite.call_id(),
        invite.cseq().0
    ))
}

fn transmits(l: &mut TransactionLayer) -> Vec<Transmit> {
    std::iter::from_fn(|| l.poll_transmit()).collect()
}

fn events(l: &mut TransactionLayer) -> Vec<TxEvent> {
    std::iter::from_fn(|| l.poll_event()).collect()
}

/// What happened while timers ran: (offset from base, what). Test-only, short-lived: the size
/// gap between the variants (a parsed `Message` inside `TxEvent`) costs nothing here.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Seen {
    Sent(Transmit),
    Event(TxEvent),
}

/// Fire timers up to `base + until`, recording transmits and events with their offsets.
fn run_timers(l: &mut TransactionLayer, base: Instant, until: Duration) -> Vec<(Duration, Seen)> {
    let mut out = Vec::new();
    while let Some(at) = l.poll_timeout() {
        if at > base + until {
            break;
        }
        l.handle_timeout(at);
        for t in transmits(l) {
            out.push((at - base, Seen::Sent(t)));
        }
        for e in events(l) {
            out.push((at - base, Seen::Event(e)));
        }
    }
    out
}

fn sent_times(seen: &[(Duration, Seen)]) -> Vec<Duration> {
    seen.iter()
        .filter(|(_, s)| matches!(s, Seen::Sent(_)))
        .map(|(t, _)| *t)
        .collect()
}

fn ms(v: &[u64]) -> Vec<Duration> {
    v.iter().map(|&m| Duration::from_millis(m)).collect()
}

fn new_layer() -> TransactionLayer {
    TransactionLayer::new(TimerConfig::default())
}

fn server_tx_of(evs: &[TxEvent]) -> ServerTxId {
    match evs {
        [TxEvent::Request { tx: Some(tx), .. }] => *tx,
        other => panic!("expected one new server transaction, got {other:?}"),
    }
}

// ---------------------------------------------------------------- INVITE client (§17.1.1)

#[test]
fn invite_client_timer_a_doubles_until_timer_b_over_udp() {
    let base = epoch();
    let mut l = new_layer();
    let to = peer(TransportKind::Udp, UAS);
    let tx = l.send_request(
        base,
        request("INVITE", "z9hG4bKa1", TransportKind::Udp, "c1", 1),
        to,
    );
    let first = transmits(&mut l);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].peer, to);
    assert_eq!(l.poll_timeout(), Some(base + Duration::from_millis(500)));

    let seen = run_timers(&mut l, base, Duration::from_secs(100));
    // Timer A: 500 ms, 1 s, 2 s, 4 s, 8 s, 16 s apart; Timer B at 64*T1 = 32 s.
    assert_eq!(
        sent_times(&seen),
        ms(&[500, 1500, 3500, 7500, 15500, 31500])
    );
    assert!(seen.iter().all(|(_, s)| match s {
        Seen::Sent(t) => t.peer == to && t.bytes == first[0].bytes,
        _ => true,
    }));
    let timeouts: Vec<_> = seen
        .iter()
        .filter_map(|(t, s)| match s {
            Seen::Event(TxEvent::ClientTimeout { tx: id }) => Some((*t, *id)),
            _ => None,
        })
        .collect();
    assert_eq!(timeouts, vec![(Duration::from_secs(32), tx)]);
    assert_eq!(l.len(), (0, 0));
    assert_eq!(l.poll_timeout(), None);
}

#[test]
fn invite_client_over_tcp_never_retransmits() {
    let base = epoch();
    let mut l = new_layer();
    let to = peer(TransportKind::Tcp, UAS);
    l.send_request(
        base,
        request("INVITE", "z9hG4bKt1", TransportKind::Tcp, "c1", 1),
        to,
    );
    assert_eq!(transmits(&mut l).len(), 1);
    let seen = run_timers(&mut l, base, Duration::from_secs(100));
    assert!(sent_times(&seen).is_empty(), "{seen:?}");
    assert!(matches!(
        &seen[..],
        [(t, Seen::Event(TxEvent::ClientTimeout { .. }))] if *t == Duration::from_secs(32)
    ));
    assert_eq!(l.len(), (0, 0));
}

#[test]
fn invite_client_provisional_stops_retransmits_and_timer_b() {
    let base = epoch();
    let mut l = new_layer();
    let to = peer(TransportKind::Udp, UAS);
    let inv = request("INVITE", "z9hG4bKp1", TransportKind::Udp, "c1", 1);
    let tx = l.send_request(base, inv.clone(), to);
    transmits(&mut l);
    let seen = run_timers(&mut l, base, Duration::from_millis(600));
    assert_eq!(sent_times(&seen), ms(&[500]));
    l.handle_receive(
        base + Duration::from_millis(700),
        response(&inv, 180, Some("u1")),
        to,
    );
    assert!(
        matches!(&events(&mut l)[..], [TxEvent::Response { tx: t, msg }] if *t == tx && msg.status() == Some(180))
    );
    // Proceeding: no Timer A, no Timer B; the TU's no-answer timer / CANCEL ends it.
    let seen = run_timers(&mut l, base, Duration::from_secs(100));
    assert!(seen.is_empty(), "{seen:?}");
    assert_eq!(l.len(), (1, 0));
    // The final response still completes it.
    l.handle_receive(
        base + Duration::from_secs(101),
        response(&inv, 486, Some("u1")),
        to,
    );
    assert_eq!(transmits(&mut l).len(), 1, "ACK");
    run_timers(&mut l, base, Duration::from_secs(200));
    assert_eq!(l.len(), (0, 0));
}

#[test]
fn invite_client_non_2xx_final_generates_ack_and_waits_timer_d() {
    let base = epoch();
    let mut l = new_layer();
    let to = peer(TransportKind::Udp, UAS);
    let inv = request(
        "INVITE",
        "z9hG4bKn1",
        TransportKind::Udp,
        "call-n1@10.0.0.1",
        7,
    );
    let tx = l.send_request(base, inv.clone(), to);
    transmits(&mut l);

    let t = base + Duration::from_millis(100);
    let busy = response(&inv, 486, Some("uas-tag"));
    l.handle_receive(t, busy.clone(), to);
    let evs = events(&mut l);
    assert!(
        matches!(&evs[..], [TxEvent::Response { tx: id, msg }] if *id == tx && msg.status() == Some(486))
    );
    let out = transmits(&mut l);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].peer, to);
    let ack = parse_bytes(&out[0].bytes);
    // §17.1.1.3: same Request-URI, Call-ID, From, single Via with the INVITE's branch, To with
    // the response's tag, CSeq number with method ACK, Route headers of the INVITE.
    assert!(ack.is_request());
    assert_eq!(ack.method(), Some(&switchyard_sip::Method::Ack));
    assert_eq!(ack.request_uri(), inv.request_uri());
    assert_eq!(ack.call_id(), "call-n1@10.0.0.1");
    assert_eq!(ack.cseq().0, 7);
    assert_eq!(ack.cseq().1, &switchyard_sip::Method::Ack);
    assert_eq!(ack.top_via().branch(), Some("z9hG4bKn1"));
    assert_eq!(ack.vias().len(), 1);
    assert_eq!(ack.from().tag(), Some("from1"));
    assert_eq!(ack.to().tag(), Some("uas-tag"));
    assert_eq!(ack.header("Route"), Some("<sip:proxy.example.net;lr>"));
    assert!(ack.body().is_empty());

    // Retransmitted finals are absorbed and re-ACKed.
    l.handle_receive(t + Duration::from_secs(1), busy.clone(), to);
    assert!(events(&mut l).is_empty());
    let again = transmits(&mut l);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].bytes, out[0].bytes);

    // No Timer A / B left; Timer D = 32 s ends it.
    assert_eq!(l.poll_timeout(), Some(t + Duration::from_secs(32)));
    let seen = run_timers(&mut l, base, Duration::from_secs(200));
    assert!(seen.is_empty(), "{seen:?}");
    assert_eq!(l.len(), (0, 0));
    // After the transaction is gone the same 486 matches nothing: dropped silently.
    l.handle_receive(base + Duration::from_secs(300), busy, to);
    assert!(events(&mut l).is_empty() && transmits(&mut l).is_empty());
}

#[test]
fn invite_client_non_2xx_over_tcp_ends_at_once() {
    let base = epoch();
    let mut l = new_layer();
    let to = peer(TransportKind::Tcp, UAS);
    let inv = request("INVITE", "z9hG4bKn2", TransportKind::Tcp, "c", 1);
    l.send_request(base, inv.clone(), to);
    transmits(&mut l);
    l.handle_receive(base, response(&inv, 503, Some("x")), to);
    assert_eq!(transmits(&mut l).len(), 1, "the ACK");
    assert_eq!(events(&mut l).len(), 1);
    assert_eq!(l.len(), (0, 0), "Timer D = 0 on reliable transports");
    assert_eq!(l.poll_timeout(), None);
}

#[test]
fn invite_client_2xx_retransmissions_pass_up_until_timer_m() {
    let base = epoch();
    let mut l = new_layer();
    let to = peer(TransportKind::Udp, UAS);
    let inv = request("INVITE", "z9hG4bKok1", TransportKind::Udp, "c", 1);
    let tx = l.send_request(base, inv.clone(), to);
    transmits(&mut l);
    let ok = response(&inv, 200, Some("u"));
    l.handle_receive(base + Duration::from_millis(50), ok.clone(), to);
    l.handle_receive(base + Duration::from_millis(550), ok.clone(), to);
    let evs = events(&mut l);
    assert_eq!(evs.len(), 2, "RFC 6026: every 2xx goes to the TU");
    assert!(
        evs.iter()
            .all(|e| matches!(e, TxEvent::Response { tx: id, .. } if *id == tx))
    );
    assert!(
        transmits(&mut l).is_empty(),
        "the TU ACKs a 2xx, not the transaction"
    );
    // A late non-2xx in Accepted is ignored.
    l.handle_receive(
        base + Duration::from_secs(1),
        response(&inv, 500, Some("v")),
        to,
    );
    assert!(events(&mut l).is_empty() && transmits(&mut l).is_empty());

    let seen = run_timers(&mut l, base, Duration::from_secs(100));
    assert!(seen.is_empty(), "no retransmits after 2xx: {seen:?}");
    assert_eq!(l.len(), (0, 0), "Timer M");
    // After Timer M a 2xx is stray: surfaced so the TU can still ACK and BYE.
    l.handle_receive(base + Duration::from_secs(101), ok, to);
    assert!(
        matches!(&events(&mut l)[..], [TxEvent::StrayResponse { msg }] if msg.status() == Some(200))
    );
}

#[test]
fn cancelled_invite_without_final_gives_up_after_64_t1() {
    let base = epoch();
    let mut l = new_layer();
    let to = peer(TransportKind::Udp, UAS);
    let inv = request("INVITE", "z9hG4bKc1", TransportKind::Udp, "c", 1);
    let itx = l.send_request(base, inv.clone(), to);
    l.handle_receive(
        base + Duration::from_millis(10),
        response(&inv, 180, Some("u")),
        to,
    );
    let cancel_at = base + Duration::from_secs(10);
    let ctx = l.send_request(
        cancel_at,
        request("CANCEL", "z9hG4bKc1", TransportKind::Udp, "c", 1),
        to,
    );
    transmits(&mut l);
    events(&mut l);
    // The CANCEL is answered, the INVITE never is.
    let cancel_req = l.client_request(ctx).unwrap().clone();
    l.handle_receive(cancel_at, response(&cancel_req, 200, Some("u")), to);
    assert!(matches!(&events(&mut l)[..], [TxEvent::Response { tx, .. }] if *tx == ctx));
    let seen = run_timers(&mut l, base, Duration::from_secs(100));
    let timeouts: Vec<_> = seen
        .iter()
        .filter_map(|(t, s)| match s {
            Seen::Event(TxEvent::ClientTimeout { tx }) => Some((*t, *tx)),
            _ => None,
        })
        .collect();
    assert_eq!(timeouts, vec![(Duration::from_secs(42), itx)]);
    assert_eq!(l.len(), (0, 0));
}

// ------------------------------------------------------------ non-INVITE client (§17.1.2)

#[test]
fn non_invite_client_timer_e_capped_at_t2_until_timer_f() {
    let base = epoch();
    let mut l = new_layer();
    let to = peer(TransportKind::Udp, UAS);
    let tx = l.send_request(
        base,
        request("OPTIONS", "z9hG4bKo1", TransportKind::Udp, "c", 1),
        to,
    );
    assert_eq!(transmits(&mut l).len(), 1);
    let seen = run_timers(&mut l, base, Duration::from_secs(100));
    assert_eq!(
        sent_times(&seen),
        ms(&[
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ])
    );
    assert!(matches!(
        seen.last(),
        Some((t, Seen::Event(TxEvent::ClientTimeout { tx: id }))) if *t == Duration::from_secs(32) && *id == tx
    ));
    assert_eq!(l.len(), (0, 0));
}

#[test]
fn non_invite_client_proceeding_retransmits_every_t2() {
    let base = epoch();
    let mut l = new_layer();
    let to = peer(TransportKind::Udp, UAS);
    let reg = request("REGISTER", "z9hG4bKr1", TransportKind::Udp, "c", 1);
    l.send_request(base, reg.clone(), to);
    transmits(&mut l);
    run_timers(&mut l, base, Duration::from_millis(600));
    l.handle_receive(
        base + Duration::from_millis(1000),
        response(&reg, 100, None),
        to,
    );
    assert_eq!(events(&mut l).len(), 1);
    let seen = run_timers(&mut l, base, Duration::from_secs(14));
    // Timer E was due at 1.5 s; in Proceeding it then fires every T2.
    assert_eq!(sent_times(&seen), ms(&[1500, 5500, 9500, 13500]));
}

#[test]
fn non_invite_client_completed_absorbs_then_timer_k() {
    for (transport, k) in [(TransportKind::Udp, Some(5)), (TransportKind::Tcp, None)] {
        let base = epoch();
        let mut l = new_layer();
        let to = peer(transport, UAS);
        let opt = request("OPTIONS", "z9hG4bKk1", transport, "c", 1);
        let tx = l.send_request(base, opt.clone(), to);
        transmits(&mut l);
        let ok = response(&opt, 200, Some("u"));
        l.handle_receive(base + Duration::from_millis(20), ok.clone(), to);
        assert!(matches!(&events(&mut l)[..], [TxEvent::Response { tx: id, .. }] if *id == tx));
        match k {
            Some(secs) => {
                assert_eq!(l.len(), (1, 0));
                l.handle_receive(base + Duration::from_millis(600), ok, to);
                assert!(events(&mut l).is_empty(), "retransmitted final absorbed");
                assert!(transmits(&mut l).is_empty());
                assert_eq!(
                    l.poll_timeout(),
                    Some(base + Duration::from_millis(20) + Duration::from_secs(secs))
                );
                let seen = run_timers(&mut l, base, Duration::from_secs(100));
                assert!(seen.is_empty(), "{seen:?}");
            }
            None => assert_eq!(l.poll_timeout(), None),
        }
        assert_eq!(l.len(), (0, 0));
    }
}

#[test]
fn responses_match_on_branch_and_cseq_method() {
    let base = epoch();
    let mut l = new_layer();
    let to = peer(TransportKind::Udp, UAS);
    let inv = request("INVITE", "z9hG4bKm1", TransportKind::Udp, "c", 1);
    l.send_request(base, inv.clone(), to);
    transmits(&mut l);
    // Same branch, CSeq method CANCEL: the CANCEL's response, not the INVITE's.
    let cancel = request("CANCEL", "z9hG4bKm1", TransportKind::Udp, "c", 1);
    l.handle_receive(base, response(&cancel, 200, Some("u")), to);
    // Other branch.
    let other = request("INVITE", "z9hG4bKm2", TransportKind::Udp, "c", 1);
    l.handle_receive(base, response(&other, 486, Some("u")), to);
    assert!(events(&mut l).is_empty());
    assert!(transmits(&mut l).is_empty());
    assert_eq!(l.len(), (1, 0));
}

// ---------------------------------------------------------------- INVITE server (§17.2.1)

#[test]
fn invite_server_retransmitted_invite_resends_last_provisional() {
    let base = epoch();
    let mut l = new_layer();
    let from = peer(TransportKind::Udp, UAC);
    let inv = request("INVITE", "z9hG4bKs1", TransportKind::Udp, "c", 1);
    l.handle_receive(base, inv.clone(), from);
    let tx = server_tx_of(&events(&mut l));
    assert_eq!(l.server_request(tx).map(|m| m.call_id()), Some("c"));
    // Nothing sent yet: a retransmission is absorbed silently (no automatic 100).
    l.handle_receive(base + Duration::from_millis(500), inv.clone(), from);
    assert!(events(&mut l).is_empty());
    assert!(transmits(&mut l).is_empty());
    assert_eq!(l.poll_timeout(), None, "no automatic 100 Trying timer");

    l.send_response(base, tx, response(&inv, 100, None));
    l.send_response(base, tx, response(&inv, 180, Some("uas")));
    let sent = transmits(&mut l);
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|t| t.peer == from));
    l.handle_receive(base + Duration::from_millis(1500), inv, from);
    assert!(events(&mut l).is_empty());
    let again = transmits(&mut l);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].bytes, sent[1].bytes, "the last provisional (180)");
    assert_eq!(l.len(), (0, 1));
}

#[test]
fn invite_server_timer_g_until_ack_then_confirmed_and_timer_i() {
    let base = epoch();
    let mut l = new_layer();
    let from = peer(TransportKind::Udp, UAC);
    let inv = request("INVITE", "z9hG4bKg1", TransportKind::Udp, "c", 1);
    l.handle_receive(base, inv.clone(), from);
    let tx = server_tx_of(&events(&mut l));
    let busy = response(&inv, 486, Some("uas"));
    l.send_response(base, tx, busy.clone());
    assert_eq!(transmits(&mut l).len(), 1);

    let seen = run_timers(&mut l, base, Duration::from_secs(12));
    // Timer G: T1 doubling capped at T2.
    assert_eq!(sent_times(&seen), ms(&[500, 1500, 3500, 7500, 11500]));
    assert!(
        seen.iter().all(
            |(_, s)| matches!(s, Seen::Sent(t) if t.bytes == *busy.as_bytes() && t.peer == from)
        )
    );

    // A retransmitted INVITE in Completed gets the final again.
    l.handle_receive(base + Duration::from_millis(12_100), inv.clone(), from);
    assert_eq!(transmits(&mut l).len(), 1);

    // The ACK (same branch, To tag of the 486) confirms: absorbed, not passed up.
    let ack = parse(
        "ACK sip:2000@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKg1\r\n\
         Max-Forwards: 70\r\nFrom: \"Alice\" <sip:1000@10.0.0.1>;tag=from1\r\n\
         To: <sip:2000@10.0.0.2>;tag=uas\r\nCall-ID: c\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
    );
    let ack_at = base + Duration::from_millis(12_200);
    l.handle_receive(ack_at, ack.clone(), from);
    assert!(events(&mut l).is_empty());
    assert!(transmits(&mut l).is_empty());
    // Confirmed: ACK and INVITE retransmits absorbed, no more G, Timer I = T4.
    l.handle_receive(ack_at, ack, from);
    l.handle_receive(ack_at, inv, from);
    assert!(events(&mut l).is_empty() && transmits(&mut l).is_empty());
    assert_eq!(l.poll_timeout(), Some(ack_at + Duration::from_secs(5)));
    let seen = run_timers(&mut l, base, Duration::from_secs(100));
    assert!(seen.is_empty(), "{seen:?}");
    assert_eq!(l.len(), (0, 0));
}

#[test]
fn invite_server_timer_h_fires_ack_timeout() {
    let base = epoch();
    let mut l = new_layer();
    let from = peer(TransportKind::Udp, UAC);
    let inv = request("INVITE", "z9hG4bKh1", TransportKind::Udp, "c", 1);
    l.handle_receive(base, inv.clone(), from);
    let tx = server_tx_of(&events(&mut l));
    l.send_response(base, tx, response(&inv, 404, Some("uas")));
    transmits(&mut l);
    let seen = run_timers(&mut l, base, Duration::from_secs(100));
    assert_eq!(
        sent_times(&seen),
        ms(&[
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ])
    );
    assert!(matches!(
        seen.last(),
        Some((t, Seen::Event(TxEvent::ServerAckTimeout { tx: id }))) if *t == Duration::from_secs(32) && *id == tx
    ));
    assert_eq!(l.len(), (0, 0));
}

#[test]
fn invite_server_over_tcp_no_timer_g_and_no_timer_i() {
    let base = epoch();
    let mut l = new_layer();
    let from = peer(TransportKind::Tcp, UAC);
    let inv = request("INVITE", "z9hG4bKtcp", TransportKind::Tcp, "c", 1);
    l.handle_receive(base, inv.clone(), from);
    let tx = server_tx_of(&events(&mut l));
    l.send_response(base, tx, response(&inv, 603, Some("uas")));
    assert_eq!(transmits(&mut l).len(), 1);
    assert_eq!(
        l.poll_timeout(),
        Some(base + Duration::from_secs(32)),
        "only Timer H"
    );
    let ack = parse(
        "ACK sip:2000@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKtcp\r\n\
         From: <sip:1000@10.0.0.1>;tag=from1\r\nTo: <sip:2000@10.0.0.2>;tag=uas\r\n\
         Call-ID: c\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
    );
    l.handle_receive(base + Duration::from_secs(1), ack, from);
    assert!(events(&mut l).is_empty());
    assert_eq!(l.len(), (0, 0), "Timer I = 0 on reliable transports");
}

#[test]
fn invite_server_2xx_retransmitted_until_confirm() {
    let base = epoch();
    let mut l = new_layer();
    let from = peer(TransportKind::Udp, UAC);
    let inv = request("INVITE", "z9hG4bKa2", TransportKind::Udp, "call-a2", 3);
    l.handle_receive(base, inv.clone(), from);
    let tx = server_tx_of(&events(&mut l));
    let ok = response(&inv, 200, Some("uas"));
    l.send_response(base, tx, ok.clone());
    assert_eq!(transmits(&mut l).len(), 1);
    let seen = run_timers(&mut l, base, Duration::from_secs(5));
    assert_eq!(sent_times(&seen), ms(&[500, 1500, 3500]));
    // Retransmitted INVITE in Accepted: absorbed (RFC 6026 §7.1), no event, no reply.
    l.handle_receive(base + Duration::from_secs(5), inv.clone(), from);
    assert!(events(&mut l).is_empty() && transmits(&mut l).is_empty());

    // The ACK for the 2xx has its own branch: passed up with tx None; match_ack finds the INVITE.
    let ack = ack_for_2xx(&inv, &ok, "z9hG4bKack2");
    l.handle_receive(base + Duration::from_secs(6), ack, from);
    let evs = events(&mut l);
    let TxEvent::Request {
        tx: None,
        msg,
        peer: p,
        cancels: None,
    } = &evs[0]
    else {
        panic!("{evs:?}")
    };
    assert_eq!(*p, from);
    assert_eq!(l.match_ack(msg), Some(tx));
    l.confirm_2xx(tx);
    // No more 2xx retransmits; Timer L (32 s) ends the transaction without ServerAckTimeout.
    let seen = run_timers(&mut l, base, Duration::from_secs(100));
    assert!(seen.is_empty(), "{seen:?}");
    assert_eq!(l.len(), (0, 0));
}

#[test]
fn invite_server_2xx_without_ack_times_out() {
    let base = epoch();
    let mut l = new_layer();
    let from = peer(TransportKind::Udp, UAC);
    let inv = request("INVITE", "z9hG4bKa3", TransportKind::Udp, "c", 1);
    l.handle_receive(base, inv.clone(), from);
    let tx = server_tx_of(&events(&mut l));
    l.send_response(base, tx, response(&inv, 200, Some("uas")));
    transmits(&mut l);
    let seen = run_timers(&mut l, base, Duration::from_secs(100));
    assert_eq!(
        sent_times(&seen),
        ms(&[
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ])
    );
    assert!(matches!(
        seen.last(),
        Some((t, Seen::Event(TxEvent::ServerAckTimeout { tx: id }))) if *t == Duration::from_secs(32) && *id == tx
    ));
    assert_eq!(l.len(), (0, 0));
}

#[test]
fn match_ack_checks_tags() {
    let base = epoch();
    let mut l = new_layer();
    let from = peer(TransportKind::Udp, UAC);
    let inv = request("INVITE", "z9hG4bKa4", TransportKind::Udp, "c4", 1);
    l.handle_receive(base, inv.clone(), from);
    let tx = server_tx_of(&events(&mut l));
    let ok = response(&inv, 200, Some("right"));
    l.send_response(base, tx, ok.clone());
    let wrong_to = response(&inv, 200, Some("wrong"));
    assert_eq!(l.match_ack(&ack_for_2xx(&inv, &wrong_to, "z9hG4bKx")), None);
    assert_eq!(l.match_ack(&ack_for_2xx(&inv, &ok, "z9hG4bKx")), Some(tx));
}

// ------------------------------------------------------------ non-INVITE server (§17.2.2)

#[test]
fn non_invite_server_timer_j_over_udp_and_zero_over_tcp() {
    for transport in [TransportKind::Udp, TransportKind::Tcp] {
        let base = epoch();
        let mut l = new_layer();
        let from = peer(transport, UAC);
        let opt = request("OPTIONS", "z9hG4bKj1", transport, "c", 1);
        l.handle_receive(base, opt.clone(), from);
        let tx = server_tx_of(&events(&mut l));
        // Trying: retransmissions absorbed without reply.
        l.handle_receive(base, opt.clone(), from);
        assert!(events(&mut l).is_empty() && transmits(&mut l).is_empty());
        l.send_response(base, tx, response(&opt, 200, Some("u")));
        let sent = transmits(&mut l);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].peer, from);
        if transport == TransportKind::Udp {
            l.handle_receive(base + Duration::from_secs(1), opt.clone(), from);
            let again = transmits(&mut l);
            assert_eq!(again.len(), 1, "retransmitted request gets the final again");
            assert_eq!(again[0].bytes, sent[0].bytes);
            assert!(events(&mut l).is_empty());
            // A second final from the TU is ignored.
            l.send_response(base, tx, response(&opt, 500, Some("u")));
            assert!(transmits(&mut l).is_empty());
            assert_eq!(l.poll_timeout(), Some(base + Duration::from_secs(32)));
            let seen = run_timers(&mut l, base, Duration::from_secs(100));
            assert!(seen.is_empty(), "{seen:?}");
        }
        assert_eq!(l.len(), (0, 0), "{transport:?}");
    }
}

#[test]
fn non_invite_server_provisional_resent_on_retransmission() {
    let base = epoch();
    let mut l = new_layer();
    let from = peer(TransportKind::Udp, UAC);
    let reg = request("REGISTER", "z9hG4bKj2", TransportKind::Udp, "c", 1);
    l.handle_receive(base, reg.clone(), from);
    let tx = server_tx_of(&events(&mut l));
    l.send_response(base, tx, response(&reg, 100, None));
    let first = transmits(&mut l);
    l.handle_receive(base, reg.clone(), from);
    assert_eq!(transmits(&mut l)[0].bytes, first[0].bytes);
    l.send_response(base, tx, response(&reg, 401, Some("u")));
    assert_eq!(transmits(&mut l).len(), 1);
}

// --------------------------------------------------------------------- CANCEL (§9.2)

#[test]
fn cancel_gets_own_transaction_and_names_the_invite() {
    let base = epoch();
    let mut l = new_layer();
    let from = peer(TransportKind::Udp, UAC);
    let inv = request("INVITE", "z9hG4bKcx", TransportKind::Udp, "cc", 1);
    l.handle_receive(base, inv.clone(), from);
    let itx = server_tx_of(&events(&mut l));
    l.send_response(base, itx, response(&inv, 180, Some("uas")));

    let cancel = request("CANCEL", "z9hG4bKcx", TransportKind::Udp, "cc", 1);
    l.handle_receive(base + Duration::from_secs(1), cancel.clone(), from);
    let evs = events(&mut l);
    let [
        TxEvent::Request {
            tx: Some(ctx),
            cancels,
            msg,
            ..
        },
    ] = &evs[..]
    else {
        panic!("{evs:?}")
    };
    assert_ne!(*ctx, itx);
    assert_eq!(*cancels, Some(itx));
    assert_eq!(msg.method(), Some(&switchyard_sip::Method::Cancel));
    assert_eq!(l.len(), (0, 2));

    // A CANCEL with another branch, or from another sent-by, cancels nothing.
    let other = request("CANCEL", "z9hG4bKother", TransportKind::Udp, "cc", 1);
    l.handle_receive(base, other.clone(), from);
    let mut strays = Vec::new();
    let evs = events(&mut l);
    let [
        TxEvent::Request {
            tx: Some(s),
            cancels: None,
            ..
        },
    ] = &evs[..]
    else {
        panic!("{evs:?}")
    };
    strays.push((*s, other));
    let foreign = parse(
        "CANCEL sip:2000@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bKcx\r\n\
         From: <sip:1000@10.0.0.1>;tag=from1\r\nTo: <sip:2000@10.0.0.2>\r\nCall-ID: cc\r\n\
         CSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n",
    );
    l.handle_receive(base, foreign.clone(), from);
    let evs = events(&mut l);
    let [
        TxEvent::Request {
            tx: Some(s),
            cancels: None,
            ..
        },
    ] = &evs[..]
    else {
        panic!("{evs:?}")
    };
    strays.push((*s, foreign));

    // 200 to the CANCEL, 487 to the INVITE, ACK: all transactions end.
    l.send_response(base, *ctx, response(&cancel, 200, Some("uas")));
    l.send_response(base, itx, response(&inv, 487, Some("uas")));
    let ack = parse(
        "ACK sip:2000@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKcx\r\n\
         From: <sip:1000@10.0.0.1>;tag=from1\r\nTo: <sip:2000@10.0.0.2>;tag=uas\r\n\
         Call-ID: cc\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
    );
    l.handle_receive(base + Duration::from_secs(2), ack, from);
    assert!(events(&mut l).is_empty(), "ACK for the 487 absorbed");
    run_timers(&mut l, base, Duration::from_secs(100));
    assert_eq!(
        l.len(),
        (0, 2),
        "the two unanswered CANCELs stay until answered"
    );
    // §9.2: a CANCEL matching no transaction gets 481; then Timer J ends them.
    for (tx, req) in strays {
        l.send_response(
            base + Duration::from_secs(100),
            tx,
            response(&req, 481, Some("x")),
        );
    }
    run_timers(&mut l, base, Duration::from_secs(200));
    assert_eq!(l.len(), (0, 0));
}

// -------------------------------------------------------------- RFC 2543 fallback (§17.2.3)

/// RFC 4475 §3.4.1 inv2543.dat, byte for byte (CRLF line endings, no Content-Length).
const INV2543: &[u8] = b"INVITE sip:UserB@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP iftgw.example.com\r\n\
From: <sip:+13035551111@ift.client.example.net;user=phone>\r\n\
Record-Route: <sip:UserB@example.com;maddr=ss1.example.com>\r\n\
To: sip:+16505552222@ss1.example.net;user=phone\r\n\
Call-ID: inv2543.1717@ift.client.example.com\r\n\
CSeq: 56 INVITE\r\n\
Content-Type: application/sdp\r\n\
\r\n\
v=0\r\n\
o=mhandley 29739 7272939 IN IP4 192.0.2.5\r\n\
s=-\r\n\
c=IN IP4 192.0.2.5\r\n\
t=0 0\r\n\
m=audio 49217 RTP/AVP 0\r\n";

fn inv2543() -> Message {
    // The shared torture-test corpus, when present, must hold the same bytes.
    for path in [
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/rfc4475/inv2543.dat"
        ),
        "/work/shared/testdata/rfc4475/inv2543.dat",
    ] {
        if let Ok(file) = std::fs::read(path) {
            assert_eq!(file, INV2543, "{path}");
        }
    }
    Message::parse_datagram(Bytes::from_static(INV2543))
        .expect("inv2543 is valid (RFC 4475 §3.4.1)")
}

#[test]
fn rfc2543_invite_matches_by_legacy_fields() {
    let base = epoch();
    let mut l = new_layer();
    let from = peer(TransportKind::Udp, "192.0.2.5:5060");
    let inv = inv2543();
    assert_eq!(inv.top_via().branch(), None);
    l.handle_receive(base, inv.clone(), from);
    let tx = server_tx_of(&events(&mut l));
    // The retransmission matches (no branch: Request-URI, tags, Call-ID, CSeq, top Via).
    l.handle_receive(base + Duration::from_millis(500), inv.clone(), from);
    assert!(events(&mut l).is_empty());

    let busy = response(&inv, 486, Some("b2543"));
    l.send_response(base, tx, busy.clone());
    assert_eq!(transmits(&mut l).len(), 1);
    l.handle_receive(base + Duration::from_secs(1), inv.clone(), from);
    let again = transmits(&mut l);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].bytes, *busy.as_bytes());

    // An INVITE differing only in CSeq is a new transaction.
    let text = String::from_utf8(inv.as_bytes().to_vec()).unwrap();
    let newer = parse(&text.replace("CSeq: 56 INVITE", "CSeq: 57 INVITE"));
    l.handle_receive(base, newer, from);
    assert_eq!(events(&mut l).len(), 1);
    assert_eq!(l.len(), (0, 2));

    // ACK with the To tag of our response: matches (absorbed). With another tag: passed up.
    let ack_text = |tag: &str| {
        format!(
            "ACK sip:UserB@example.com SIP/2.0\r\nVia: SIP/2.0/UDP iftgw.example.com\r\n\
             From: <sip:+13035551111@ift.client.example.net;user=phone>\r\n\
             To: sip:+16505552222@ss1.example.net;user=phone;tag={tag}\r\n\
             Call-ID: inv2543.1717@ift.client.example.com\r\nCSeq: 56 ACK\r\n\r\n"
        )
    };
    l.handle_receive(
        base + Duration::from_secs(2),
        parse(&ack_text("other")),
        from,
    );
    assert!(matches!(
        &events(&mut l)[..],
        [TxEvent::Request { tx: None, .. }]
    ));
    l.handle_receive(
        base + Duration::from_secs(2),
        parse(&ack_text("b2543")),
        from,
    );
    assert!(events(&mut l).is_empty(), "ACK for our 486 absorbed");
    // Confirmed: no more Timer G retransmits of the 486.
    let seen = run_timers(&mut l, base, Duration::from_secs(6));
    assert!(
        sent_times(&seen)
            .iter()
            .all(|t| *t < Duration::from_secs(2)),
        "{seen:?}"
    );
}

#[test]
fn rfc2543_cancel_matches_invite() {
    let base = epoch();
    let mut l = new_layer();
    let from = peer(TransportKind::Udp, "192.0.2.5:5060");
    let inv = inv2543();
    l.handle_receive(base, inv, from);
    let itx = server_tx_of(&events(&mut l));
    let cancel = parse(
        "CANCEL sip:UserB@example.com SIP/2.0\r\nVia: SIP/2.0/UDP iftgw.example.com\r\n\
         From: <sip:+13035551111@ift.client.example.net;user=phone>\r\n\
         To: sip:+16505552222@ss1.example.net;user=phone\r\n\
         Call-ID: inv2543.1717@ift.client.example.com\r\nCSeq: 56 CANCEL\r\n\r\n",
    );
    l.handle_receive(base, cancel, from);
    let evs = events(&mut l);
    assert!(
        matches!(&evs[..], [TxEvent::Request { tx: Some(c), cancels: Some(i), .. }] if *c != itx && *i == itx),
        "{evs:?}"
    );
}

#[test]
fn bare_magic_cookie_branch_falls_back_to_legacy_matching() {
    // RFC 4475 §3.2.1 badbranch: `branch=z9hG4bK` alone is no unique id.
    let base = epoch();
    let mut l = new_layer();
    let from = peer(TransportKind::Udp, UAC);
    let a = request("OPTIONS", "z9hG4bK", TransportKind::Udp, "call-a", 1);
    let b = request("OPTIONS", "z9hG4bK", TransportKind::Udp, "call-b", 1);
    l.handle_receive(base, a, from);
    l.handle_receive(base, b, from);
    assert_eq!(
        events(&mut l).len(),
        2,
        "different Call-IDs: two transactions"
    );
    assert_eq!(l.len(), (0, 2));
}

// ------------------------------------------------------- two endpoints over a lossy network

/// Decides from the packet's sequence number and bytes whether the network loses it.
type DropRule = dyn Fn(usize, &Bytes) -> bool;

/// quinn `Pair::step` in miniature: a UAC and a UAS layer, a one-way delay, a drop rule.
struct Pair {
    base: Instant,
    now: Instant,
    uac: TransactionLayer,
    uas: TransactionLayer,
    /// (deliver at, to the UAS?, bytes)
    wire: VecDeque<(Instant, bool, Bytes)>,
    delay: Duration,
    sent: usize,
    dropped: usize,
    drop: Box<DropRule>,
    uac_events: Vec<(Duration, TxEvent)>,
    uas_events: Vec<(Duration, TxEvent)>,
}

impl Pair {
    fn new(drop: impl Fn(usize, &Bytes) -> bool + 'static) -> Self {
        let base = epoch();
        Pair {
            base,
            now: base,
            uac: new_layer(),
            uas: new_layer(),
            wire: VecDeque::new(),
            delay: Duration::from_millis(20),
            sent: 0,
            dropped: 0,
            drop: Box::new(drop),
            uac_events: Vec::new(),
            uas_events: Vec::new(),
        }
    }

    fn flush(&mut self) {
        for (to_uas, layer) in [(true, &mut self.uac), (false, &mut self.uas)] {
            while let Some(t) = layer.poll_transmit() {
                let n = self.sent;
                self.sent += 1;
                if (self.drop)(n, &t.bytes) {
                    self.dropped += 1;
                } else {
                    self.wire
                        .push_back((self.now + self.delay, to_uas, t.bytes));
                }
            }
        }
    }

    /// Advance to the next packet arrival or timer, deliver / fire it. False when idle.
    fn step(&mut self) -> bool {
        self.flush();
        let next = [
            self.wire.front().map(|w| w.0),
            self.uac.poll_timeout(),
            self.uas.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else {
            return false;
        };
        self.now = next;
        while self.wire.front().is_some_and(|w| w.0 <= self.now) {
            let (_, to_uas, bytes) = self.wire.pop_front().unwrap();
            let msg = parse_bytes(&bytes);
            if to_uas {
                self.uas
                    .handle_receive(self.now, msg, peer(TransportKind::Udp, UAC));
            } else {
                self.uac
                    .handle_receive(self.now, msg, peer(TransportKind::Udp, UAS));
            }
        }
        self.uac.handle_timeout(self.now);
        self.uas.handle_timeout(self.now);
        let at = self.now - self.base;
        while let Some(e) = self.uac.poll_event() {
            self.uac_events.push((at, e));
        }
        while let Some(e) = self.uas.poll_event() {
            self.uas_events.push((at, e));
        }
        true
    }
}

/// Runs a UAS TU that answers INVITE with `status` (180 first), ACKs 2xx on the UAC side and
/// confirms 2xx on the UAS side, until both layers are idle.
fn run_call(pair: &mut Pair, status: u16) -> (ClientTxId, usize) {
    let inv = request("INVITE", "z9hG4bKnet1", TransportKind::Udp, "net-call", 1);
    let ctx = pair
        .uac
        .send_request(pair.now, inv.clone(), peer(TransportKind::Udp, UAS));
    let (mut uac_seen, mut uas_seen) = (0, 0);
    let mut steps = 0;
    while pair.step() {
        steps += 1;
        assert!(steps < 10_000, "no progress");
        // UAS TU.
        while uas_seen < pair.uas_events.len() {
            let now = pair.now;
            let reply = match &pair.uas_events[uas_seen].1 {
                TxEvent::Request {
                    tx: Some(tx), msg, ..
                } => Some((*tx, msg.clone())),
                TxEvent::Request { tx: None, msg, .. } => {
                    let tx = pair.uas.match_ack(msg).expect("ACK for our 2xx");
                    pair.uas.confirm_2xx(tx);
                    None
                }
                _ => None,
            };
            if let Some((tx, msg)) = reply {
                pair.uas
                    .send_response(now, tx, response(&msg, 180, Some("net")));
                pair.uas
                    .send_response(now, tx, response(&msg, status, Some("net")));
            }
            uas_seen += 1;
        }
        // UAC TU: ACK every 2xx (§13.2.2.4), including retransmissions.
        while uac_seen < pair.uac_events.len() {
            if let TxEvent::Response { msg, .. } = &pair.uac_events[uac_seen].1
                && msg.status() == Some(200)
            {
                let ack = ack_for_2xx(&inv, msg, "z9hG4bKnetack");
                pair.uac
                    .send_stateless(peer(TransportKind::Udp, UAS), ack.as_bytes().clone());
            }
            uac_seen += 1;
        }
    }
    (ctx, steps)
}

#[test]
fn lossy_network_invite_rejected_completes() {
    // The first three packets (INVITE, and its first two retransmissions) are lost.
    let mut pair = Pair::new(|n, _| n < 3);
    let (ctx, _) = run_call(&mut pair, 486);
    assert_eq!(pair.dropped, 3);
    let finals: Vec<_> = pair
        .uac_events
        .iter()
        .filter_map(|(t, e)| match e {
            TxEvent::Response { tx, msg } if *tx == ctx && msg.status() == Some(486) => Some(*t),
            _ => None,
        })
        .collect();
    // INVITE copies leave at 0, 0.5, 1.5 (lost) and 3.5 s; 486 arrives 40 ms later.
    assert_eq!(finals, vec![Duration::from_millis(3540)]);
    assert!(
        pair.uas_events
            .iter()
            .all(|(_, e)| !matches!(e, TxEvent::ServerAckTimeout { .. }))
    );
    assert!(
        pair.uac_events
            .iter()
            .all(|(_, e)| !matches!(e, TxEvent::ClientTimeout { .. }))
    );
    assert_eq!(pair.uac.len(), (0, 0));
    assert_eq!(pair.uas.len(), (0, 0));
}

#[test]
fn lossy_network_invite_answered_completes() {
    // Lose the first three packets, then the first 200 OK and the first ACK as well.
    let (oks_lost, acks_lost) = (Cell::new(0), Cell::new(0));
    let mut pair = Pair::new(move |n, b| {
        let first = |c: &Cell<u32>| {
            c.set(c.get() + 1);
            c.get() == 1
        };
        if b.starts_with(b"SIP/2.0 200") {
            first(&oks_lost)
        } else if b.starts_with(b"ACK") {
            first(&acks_lost)
        } else {
            n < 3
        }
    });
    let (ctx, _) = run_call(&mut pair, 200);
    // Lost: 3 INVITEs, the first 200 (3.52 s) and the ACK for its first retransmission
    // (4.02 s); the second retransmission (5.02 s) gets through and is ACKed.
    assert_eq!(pair.dropped, 5);
    let oks: Vec<Duration> = pair
        .uac_events
        .iter()
        .filter_map(|(t, e)| match e {
            TxEvent::Response { tx, msg } if *tx == ctx && msg.status() == Some(200) => Some(*t),
            _ => None,
        })
        .collect();
    assert_eq!(
        oks,
        ms(&[4040, 5040]),
        "every 2xx copy reaches the TU for re-ACK"
    );
    assert!(
        pair.uas_events
            .iter()
            .all(|(_, e)| !matches!(e, TxEvent::ServerAckTimeout { .. }))
    );
    assert!(
        pair.uac_events
            .iter()
            .all(|(_, e)| !matches!(e, TxEvent::ClientTimeout { .. }))
    );
    assert_eq!(pair.uac.len(), (0, 0));
    assert_eq!(pair.uas.len(), (0, 0));
}

#[test]
fn poll_timeout_is_the_earliest_live_deadline() {
    let base = epoch();
    let mut l = new_layer();
    let to = peer(TransportKind::Udp, UAS);
    let inv = request("INVITE", "z9hG4bKpt", TransportKind::Udp, "c", 1);
    l.send_request(base, inv.clone(), to);
    l.send_request(
        base + Duration::from_millis(100),
        request("OPTIONS", "z9hG4bKpt2", TransportKind::Tcp, "c2", 1),
        peer(TransportKind::Tcp, UAS),
    );
    assert_eq!(l.poll_timeout(), Some(base + Duration::from_millis(500)));
    // A provisional stops A and B: the OPTIONS' Timer F is next, not a stale A.
    l.handle_receive(
        base + Duration::from_millis(200),
        response(&inv, 180, Some("u")),
        to,
    );
    assert_eq!(
        l.poll_timeout(),
        Some(base + Duration::from_millis(100) + Duration::from_secs(32))
    );
}
