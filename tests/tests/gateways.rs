//! SIP trunks ("gateways") against SIPp providers: the daemon registers with digest, calls
//! out through `sofia/gateway/NAME/NUMBER` answering the provider's 407, fails over to the
//! next trunk on a 503, and lets calls from a trunk's proxy in without a challenge (while a
//! phone on another port is still challenged).
//!
//! The conf template `tests/conf/gateways` holds `__PROVIDER1_PORT__`/`__PROVIDER2_PORT__`
//! in its gateways.toml: each test copies it with its slot's provider ports filled in and
//! starts the daemon from that copy (an absolute template path), the providers already
//! listening so the first REGISTER finds them.

use std::net::SocketAddr;
use std::time::Duration;
use switchyard_e2e::daemon::copy_tree;
use switchyard_e2e::slot::offset;
use switchyard_e2e::{
    Daemon, Sipp, Slot, UdpPeer, digest_response, e2e_dir, sipp_callee, sipp_caller, wait_until,
};

const T: Duration = Duration::from_secs(25);
/// Slot offsets of the two providers' signalling and media (free in the slot layout).
const PROVIDER1: u16 = 50;
const PROVIDER1_MEDIA: u16 = 52;
const PROVIDER2: u16 = 70;
const PROVIDER2_MEDIA: u16 = 72;
/// The accounts of tests/conf/gateways/gateways.toml.
const GW1: (&str, &str) = ("gw1user", "gw1secret");
const GW2: (&str, &str) = ("gw2user", "gw2secret");
/// The number dialled after the 9 of the outbound route, and the DID of the public context.
const NUMBER: &str = "5551234";
const DID: &str = "442071230001";

/// Starts the daemon from tests/conf/gateways with this slot's provider ports.
fn start_daemon(slot: Slot) -> Daemon {
    let p1 = slot.port(PROVIDER1).to_string();
    let p2 = slot.port(PROVIDER2).to_string();
    let conf = tempfile::Builder::new()
        .prefix("sy-gw-template-")
        .tempdir()
        .expect("tempdir");
    copy_tree(
        &e2e_dir().join("conf").join("gateways"),
        conf.path(),
        &|t| {
            t.replace("__PROVIDER1_PORT__", &p1)
                .replace("__PROVIDER2_PORT__", &p2)
        },
    );
    // An absolute template path: `Path::join` takes it as is. The daemon copies it again
    // into its own conf dir at start, so this one can go when we return.
    let template = conf.path().to_str().expect("UTF-8 temp path");
    Daemon::builder(template).start_with_slot(slot)
}

/// A SIPp provider (UAS) on the slot ports `off`/`media`, with account `(user, pass)`,
/// exiting after `calls` SIPp calls (one REGISTER exchange or one INVITE each).
fn provider(
    slot: &Slot,
    scenario: &str,
    off: u16,
    media: u16,
    account: (&str, &str),
    calls: &str,
) -> Sipp {
    let p = slot.port(off).to_string();
    let mp = slot.port(media).to_string();
    Sipp::spawn(
        scenario,
        None,
        &[
            "-p", &p, "-mp", &mp, "-set", "user", account.0, "-set", "pass", account.1, "-m",
            calls, "-timeout", "40",
        ],
    )
}

/// The `show gateways` line of `name`, once its state column reads `state`.
fn wait_gateway(d: &Daemon, name: &str, state: &str) -> String {
    wait_until(
        Duration::from_secs(10),
        &format!("gateway {name} {state}"),
        || {
            d.ctl_ok("show gateways")
                .lines()
                .find(|l| {
                    let mut w = l.split_whitespace();
                    w.next() == Some(name) && w.nth(1).is_some_and(|s| s.starts_with(state))
                })
                .map(str::to_string)
        },
        || {
            format!(
                "show gateways:\n{}\n{}",
                d.ctl("show gateways").unwrap_or_else(|e| e),
                d.log_tail()
            )
        },
    )
}

/// A phone calling `9<NUMBER>` from the slot's UAC port, hanging up once answered.
fn call_out(d: &Daemon) -> Sipp {
    sipp_caller(
        d,
        "uac",
        &[],
        "1000",
        &format!("9{NUMBER}"),
        &[
            "-m",
            "1",
            "-d",
            "500",
            "-recv_timeout",
            "15000",
            "-timeout",
            "30",
        ],
    )
}

/// A parameter of a `Digest ...` header value: `key="v"` or `key=v`.
fn digest_param<'a>(value: &'a str, key: &str) -> Option<&'a str> {
    value.split(',').find_map(|part| {
        let part = part.trim().trim_start_matches("Digest").trim();
        let (k, v) = part.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"'))
    })
}

/// SIPp's <verifyauth> never reads Proxy-Authorization, so the digest answering the
/// provider's 407 is checked here (RFC 7616 §3.4.1) against the account's password.
fn assert_invite_digest(trace: &str, account: (&str, &str)) {
    let value = trace
        .lines()
        .find_map(|l| l.strip_prefix("Proxy-Authorization:"))
        .unwrap_or_else(|| panic!("no Proxy-Authorization in the provider's trace:\n{trace}"));
    let get = |k: &str| {
        digest_param(value, k).unwrap_or_else(|| panic!("no {k} in Proxy-Authorization:{value}"))
    };
    assert_eq!(get("username"), account.0, "{value}");
    let expected = digest_response(
        "MD5",
        account.0,
        get("realm"),
        account.1,
        "INVITE",
        get("uri"),
        get("nonce"),
        Some((get("qop"), get("nc"), get("cnonce"))),
    );
    assert_eq!(get("response"), expected, "the digest of {value}");
}

#[test]
fn registers_with_digest() {
    let slot = Slot::acquire();
    let mut p1 = provider(&slot, "gw_provider", PROVIDER1, PROVIDER1_MEDIA, GW1, "1");
    let proxy = format!("udp:127.0.0.1:{}", slot.port(PROVIDER1));
    let d = start_daemon(slot);
    let line = wait_gateway(&d, "provider1", "REGED");
    assert!(line.contains(&proxy), "{line}");
    // <verifyauth> refuses a wrong digest with 403 and fails the SIPp call.
    p1.wait(T).assert_ok(1, &d.log_tail());
    let trace = p1.messages();
    assert!(
        trace.contains("SIP/2.0 401 Unauthorized"),
        "challenged first:\n{trace}"
    );
    assert!(
        trace.contains(&format!("username=\"{}\"", GW1.0)),
        "the REGISTER answers as the account:\n{trace}"
    );
    assert!(trace.contains("SIP/2.0 200 OK"), "{trace}");
    wait_gateway(&d, "provider2", "NOREG");
}

#[test]
fn wrong_password_is_refused_and_retried_later() {
    let slot = Slot::acquire();
    let mut p1 = provider(
        &slot,
        "gw_provider",
        PROVIDER1,
        PROVIDER1_MEDIA,
        (GW1.0, "not-it"),
        "1",
    );
    let d = start_daemon(slot);
    wait_gateway(&d, "provider1", "FAIL_WAIT");
    let out = p1.wait(T);
    assert_eq!(
        (out.successful, out.failed),
        (0, 1),
        "the provider refused the digest with 403\n{}",
        out.report
    );
    assert!(out.report.contains("403 Forbidden"), "{}", out.report);
}

#[test]
fn call_out_answers_the_providers_challenge() {
    let slot = Slot::acquire();
    let port = slot.port(PROVIDER1);
    // The REGISTER exchange, then the call.
    let mut p1 = provider(&slot, "gw_provider", PROVIDER1, PROVIDER1_MEDIA, GW1, "2");
    let d = start_daemon(slot);
    wait_gateway(&d, "provider1", "REGED");
    let mut uac = call_out(&d);
    uac.wait(T).assert_ok(1, &d.log_tail());
    p1.wait(T).assert_ok(2, &d.log_tail());
    let trace = p1.messages();
    assert!(
        trace.contains(&format!("INVITE sip:{NUMBER}@127.0.0.1:{port} SIP/2.0")),
        "the number, without the 9, in the Request-URI:\n{trace}"
    );
    assert!(trace.contains("SIP/2.0 407"), "{trace}");
    assert_invite_digest(&trace, GW1);
    assert!(
        trace.contains("From: <sip:1000@127.0.0.1>"),
        "the caller's number as caller id, the proxy host as domain:\n{trace}"
    );
    let cdrs = d.wait_cdrs(1, Duration::from_secs(5));
    let c = &cdrs[0];
    assert_eq!(c.hangup_cause, "NORMAL_CLEARING", "{c:?}");
    assert_eq!(c.caller, "1000", "{c:?}");
    assert_eq!(c.callee, format!("provider1/{NUMBER}"), "{c:?}");
    assert!(c.answer_ms.is_some(), "answered: {c:?}");
    d.wait_calls(0, Duration::from_secs(5));
}

#[test]
fn a_503_fails_over_to_the_next_gateway() {
    let slot = Slot::acquire();
    let port2 = slot.port(PROVIDER2);
    let mut p1 = provider(
        &slot,
        "gw_provider_503",
        PROVIDER1,
        PROVIDER1_MEDIA,
        GW1,
        "2",
    );
    // provider2 does not register: its one SIPp call is the INVITE.
    let mut p2 = provider(&slot, "gw_provider", PROVIDER2, PROVIDER2_MEDIA, GW2, "1");
    let d = start_daemon(slot);
    wait_gateway(&d, "provider1", "REGED");
    let mut uac = call_out(&d);
    uac.wait(T).assert_ok(1, &d.log_tail());
    p1.wait(T).assert_ok(2, &d.log_tail());
    p2.wait(T).assert_ok(1, &d.log_tail());
    assert!(p1.messages().contains("SIP/2.0 503"), "{}", p1.messages());
    let trace = p2.messages();
    assert!(
        trace.contains(&format!("INVITE sip:{NUMBER}@127.0.0.1:{port2} SIP/2.0")),
        "{trace}"
    );
    // provider2's challenge is answered with provider2's account.
    assert_invite_digest(&trace, GW2);
    let cdrs = d.wait_cdrs(1, Duration::from_secs(5));
    let c = &cdrs[0];
    assert_eq!(c.hangup_cause, "NORMAL_CLEARING", "{c:?}");
    assert_eq!(c.callee, format!("provider2/{NUMBER}"), "{c:?}");
    assert!(c.answer_ms.is_some(), "answered: {c:?}");
    d.wait_calls(0, Duration::from_secs(5));
}

/// An INVITE to the DID from `port`, as a phone would send it (no credentials).
fn invite_to_did(daemon: SocketAddr, port: u16) -> String {
    let sdp = "v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 4000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
    format!(
        "INVITE sip:{DID}@{daemon} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-gwphone-1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:1002@127.0.0.1>;tag=gwphone\r\n\
         To: <sip:{DID}@127.0.0.1>\r\n\
         Call-ID: gw-phone-{port}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:1002@127.0.0.1:{port}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

#[test]
fn calls_from_the_trunk_skip_auth_and_others_are_challenged() {
    let slot = Slot::acquire();
    // provider1 takes the REGISTER the daemon sends at start; the calls come from provider2.
    let mut p1 = provider(&slot, "gw_provider", PROVIDER1, PROVIDER1_MEDIA, GW1, "1");
    let d = start_daemon(slot);
    wait_gateway(&d, "provider1", "REGED");
    p1.wait(T).assert_ok(1, &d.log_tail());

    let mut uas = sipp_callee(&d, "uas_echo", "1001", &["-m", "1"]);
    d.wait_registered("1001", 1, Duration::from_secs(5));
    let p2 = d.slot().port(PROVIDER2).to_string();
    let mp2 = d.slot().port(PROVIDER2_MEDIA).to_string();
    let mut trunk = Sipp::spawn(
        "uac",
        Some(d.sip_port()),
        &[
            "-p",
            &p2,
            "-mp",
            &mp2,
            "-s",
            DID,
            "-key",
            "caller",
            "2079460123",
            "-m",
            "1",
            "-d",
            "500",
            "-recv_timeout",
            "15000",
            "-timeout",
            "30",
        ],
    );
    trunk.wait(T).assert_ok(1, &d.log_tail());
    uas.wait(T).assert_ok(1, &d.log_tail());
    let trace = trunk.messages();
    assert!(
        !trace.contains("SIP/2.0 407"),
        "no challenge for the trunk:\n{trace}"
    );
    let cdrs = d.wait_cdrs(1, Duration::from_secs(5));
    let c = &cdrs[0];
    assert_eq!(c.hangup_cause, "NORMAL_CLEARING", "{c:?}");
    assert_eq!(c.caller, "2079460123", "{c:?}");
    assert_eq!(c.callee, "1001", "the DID reached user 1001: {c:?}");
    d.wait_calls(0, Duration::from_secs(5));

    // The same INVITE from a port that is not the trunk's proxy is challenged.
    let phone = UdpPeer::new(d.sip_addr(), Some(d.slot().port(offset::SCRATCH)));
    let port = phone.local_port();
    let reply = phone
        .transact(&invite_to_did(d.sip_addr(), port), Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no final response to the phone's INVITE\n{}", d.log_tail()));
    assert_eq!(reply.status(), Some(407), "{}", reply.text);
    assert!(
        reply.header("Proxy-Authenticate").is_some(),
        "{}",
        reply.text
    );
    let to = reply.header("To").expect("To in the 407");
    phone.send(&format!(
        "ACK sip:{DID}@{} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-gwphone-1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:1002@127.0.0.1>;tag=gwphone\r\n\
         To: {to}\r\n\
         Call-ID: gw-phone-{port}\r\n\
         CSeq: 1 ACK\r\n\
         Content-Length: 0\r\n\r\n",
        d.sip_addr()
    ));
    assert_eq!(d.cdrs().len(), 1, "the challenged INVITE started no call");
}
