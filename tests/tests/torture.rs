//! RFC 4475 torture messages against the running daemon, over UDP (one socket per file)
//! and TCP (one connection per file). Each file's expected answer is encoded below with
//! the reason; afterwards the daemon must still be up and still complete a call.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};
use switchyard_e2e::{Daemon, SipMessage, sipp_callee, sipp_caller};

/// How long an absent answer is waited for (the waits run concurrently).
const SILENCE: Duration = Duration::from_secs(2);
const ANSWER: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The first final answer is one of these codes.
    Code(&'static [u16]),
    /// Some final answer that is none of these (well-formed requests must not get 400).
    Not(&'static [u16]),
    /// Any final answer (the RFC allows a rejection as well as processing).
    Any,
    /// No answer at all (responses are never answered; broken ones are dropped).
    Silence,
}

use Expect::*;

/// (file, UDP expectation, TCP expectation, reason).
const TABLE: &[(&str, Expect, Expect, &str)] = &[
    // --- 3.1.1 valid messages: must be parsed; the application then answers what it wants.
    (
        "wsinv",
        Not(&[400]),
        Not(&[400]),
        "3.1.1.1 tortuous but valid INVITE",
    ),
    (
        "intmeth",
        Code(&[501]),
        Code(&[501]),
        "3.1.1.2 unknown method: UAS answers 501",
    ),
    (
        "esc01",
        Not(&[400]),
        Not(&[400]),
        "3.1.1.3 %HEX escapes are valid",
    ),
    (
        "escnull",
        Not(&[400]),
        Not(&[400]),
        "3.1.1.4 %00 in user parts is valid",
    ),
    (
        "esc02",
        Code(&[501]),
        Code(&[501]),
        "3.1.1.5 method RE%47IST%45R is unknown, not REGISTER: 501",
    ),
    (
        "lwsdisp",
        Not(&[400]),
        Not(&[400]),
        "3.1.1.6 no LWS before < is accepted",
    ),
    (
        "longreq",
        Not(&[400]),
        Not(&[400]),
        "3.1.1.7 long values are valid",
    ),
    (
        "dblreq",
        Not(&[400]),
        Not(&[400]),
        "3.1.1.8 REGISTER handled, trailing octets ignored",
    ),
    (
        "semiuri",
        Not(&[400]),
        Not(&[400]),
        "3.1.1.9 ; in user part is valid",
    ),
    (
        "transports",
        Not(&[400]),
        Not(&[400]),
        "3.1.1.10 unknown transports in Via are valid",
    ),
    (
        "mpart01",
        Not(&[400]),
        Not(&[400]),
        "3.1.1.11 binary multipart body framed by Content-Length",
    ),
    (
        "unreason",
        Silence,
        Silence,
        "3.1.1.12 a response: never answered",
    ),
    (
        "noreason",
        Silence,
        Silence,
        "3.1.1.13 a response: never answered",
    ),
    // --- 3.1.2 invalid messages.
    (
        "badinv01",
        Code(&[400]),
        Code(&[400]),
        "3.1.2.1 ;;,;,, in Via: 400",
    ),
    (
        "clerr",
        Code(&[400]),
        Silence,
        "3.1.2.2 Content-Length past the datagram: UDP 400; TCP waits for the rest",
    ),
    (
        "ncl",
        Code(&[400]),
        Code(&[400]),
        "3.1.2.3 negative Content-Length: 400 (TCP then closes)",
    ),
    (
        "scalar02",
        Code(&[400]),
        Code(&[400]),
        "3.1.2.4 CSeq > 2^32-1: 400",
    ),
    (
        "scalarlg",
        Silence,
        Silence,
        "3.1.2.5 broken RESPONSE: discarded",
    ),
    (
        "quotbal",
        Code(&[400]),
        Code(&[400]),
        "3.1.2.6 unterminated quote: 400",
    ),
    (
        "ltgtruri",
        Code(&[400]),
        Code(&[400]),
        "3.1.2.7 Request-URI in <>: 400",
    ),
    (
        "lwsruri",
        Code(&[400]),
        Code(&[400]),
        "3.1.2.8 LWS inside Request-URI: 400",
    ),
    (
        "lwsstart",
        Code(&[400]),
        Code(&[400]),
        "3.1.2.9 several SP in Request-Line: 400",
    ),
    (
        "trws",
        Code(&[400]),
        Code(&[400]),
        "3.1.2.10 trailing SP after SIP-Version: 400",
    ),
    (
        "escruri",
        Code(&[400]),
        Code(&[400]),
        "3.1.2.11 escaped headers in Request-URI: 400",
    ),
    (
        "baddate",
        Not(&[]),
        Not(&[]),
        "3.1.2.12 non-GMT Date: may be rejected but SHOULD NOT be unless the Date matters: some answer",
    ),
    (
        "regbadct",
        Code(&[400]),
        Code(&[400]),
        "3.1.2.13 Contact with ? not in <>: 400",
    ),
    (
        "badaspec",
        Code(&[400]),
        Code(&[400]),
        "3.1.2.14 spaces inside <addr-spec>: 400",
    ),
    (
        "baddn",
        Code(&[400]),
        Code(&[400]),
        "3.1.2.15 unquoted non-token display name: 400",
    ),
    (
        "badvers",
        Code(&[505]),
        Code(&[505]),
        "3.1.2.16 SIP/7.0: 505 Version Not Supported",
    ),
    (
        "mismatch01",
        Code(&[400]),
        Code(&[400]),
        "3.1.2.17 Request-Line method != CSeq method: 400",
    ),
    (
        "mismatch02",
        Code(&[501, 400]),
        Code(&[501, 400]),
        "3.1.2.18 unknown method with CSeq INVITE: 501 (400 allowed)",
    ),
    (
        "bigcode",
        Silence,
        Silence,
        "3.1.2.19 RESPONSE with status > 699: dropped",
    ),
    // --- 3.2 / 3.3 / 3.4 application-level cases.
    (
        "badbranch",
        Any,
        Any,
        "3.2.1 empty branch after magic cookie: may be processed or rejected",
    ),
    (
        "insuf",
        Code(&[400]),
        Code(&[400]),
        "3.3.1 no Call-ID/From/To: 400",
    ),
    (
        "unkscm",
        Code(&[416]),
        Code(&[416]),
        "3.3.2 unknown URI scheme: 416",
    ),
    (
        "novelsc",
        Code(&[416]),
        Code(&[416]),
        "3.3.3 soap.beep URI never accepted here: 416",
    ),
    (
        "unksm2",
        Any,
        Any,
        "3.3.4 REGISTER To isbn: parsed; registrar may answer 400 (To must be SIP)",
    ),
    (
        "bext01",
        Code(&[420]),
        Code(&[420]),
        "3.3.5 unknown Require option: 420 Bad Extension",
    ),
    (
        "invut",
        Code(&[415]),
        Code(&[415]),
        "3.3.6 unknown body type with disposition session: 415",
    ),
    (
        "regaut01",
        Code(&[401]),
        Code(&[401]),
        "3.3.7 unknown Authorization scheme: 401 with a supported challenge",
    ),
    (
        "multi01",
        Code(&[400]),
        Code(&[400]),
        "3.3.8 several values in single-value headers: 400",
    ),
    (
        "mcl01",
        Code(&[400]),
        Code(&[400]),
        "3.3.9 conflicting Content-Length: 400 (TCP then closes)",
    ),
    (
        "bcast",
        Silence,
        Silence,
        "3.3.10 a 200 response: never answered (and never sent to broadcast)",
    ),
    (
        "zeromf",
        Not(&[400]),
        Not(&[400]),
        "3.3.11 Max-Forwards 0 at a UAS is processed normally",
    ),
    (
        "cparam01",
        Not(&[400]),
        Not(&[400]),
        "3.3.12 contact-param without <> is valid",
    ),
    (
        "cparam02",
        Not(&[400]),
        Not(&[400]),
        "3.3.13 URI param in <> is valid",
    ),
    (
        "regescrt",
        Not(&[400]),
        Not(&[400]),
        "3.3.14 escaped Route header in <> Contact is valid",
    ),
    (
        "sdp01",
        Not(&[400]),
        Not(&[400]),
        "3.3.15 Accept without SDP: 406 or processing, not 400",
    ),
    // RFC 2543 syntax without Content-Length: over UDP the body is the rest of the datagram;
    // over TCP there is no framing at all, so any answer (or none) is acceptable.
    (
        "inv2543",
        Not(&[400]),
        Any,
        "3.4.1 RFC 2543 INVITE: accepted over UDP",
    ),
    (
        "test",
        Any,
        Any,
        "Appendix A test.dat: no SIP-Version, not recognisably SIP: 400 or dropped (no RFC expectation)",
    ),
];

fn data_dir() -> PathBuf {
    PathBuf::from("/work/shared/testdata/rfc4475")
}

fn load(name: &str) -> Vec<u8> {
    let p = data_dir().join(format!("{name}.dat"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Outcome of one exchange: final status (if any), and for TCP whether the server closed.
#[derive(Debug, Clone)]
struct Got {
    status: Option<u16>,
    first_line: String,
    closed: bool,
}

fn udp_exchange(server: SocketAddr, bytes: Vec<u8>, wait: Duration) -> Got {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.send_to(&bytes, server).expect("send");
    let deadline = Instant::now() + wait;
    let mut buf = vec![0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Got {
                status: None,
                first_line: String::new(),
                closed: false,
            };
        }
        sock.set_read_timeout(Some(left)).expect("timeout");
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => {
                let m = SipMessage::new(&buf[..n]);
                if let Some(s) = m.status().filter(|s| *s >= 200) {
                    let first_line = m.text.lines().next().unwrap_or("").to_string();
                    return Got {
                        status: Some(s),
                        first_line,
                        closed: false,
                    };
                }
            }
            Err(_) => {
                return Got {
                    status: None,
                    first_line: String::new(),
                    closed: false,
                };
            }
        }
    }
}

/// Splits complete SIP messages off a TCP byte stream (head + Content-Length body).
fn split_stream(buf: &mut Vec<u8>) -> Option<SipMessage> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let cl = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            let n = n.trim();
            (n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("l"))
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0usize);
    if buf.len() < end + cl {
        return None;
    }
    let m = SipMessage::new(&buf[..end + cl]);
    buf.drain(..end + cl);
    Some(m)
}

fn tcp_exchange(server: SocketAddr, bytes: Vec<u8>, wait: Duration) -> Got {
    let mut s = TcpStream::connect(server).expect("connect tcp");
    s.write_all(&bytes).expect("write tcp");
    let deadline = Instant::now() + wait;
    let mut buf = Vec::new();
    let mut got: Option<(u16, String)> = None;
    let mut chunk = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        s.set_read_timeout(Some(left)).expect("timeout");
        match s.read(&mut chunk) {
            Ok(0) => {
                let (status, first_line) = got
                    .map(|(a, b)| (Some(a), b))
                    .unwrap_or((None, String::new()));
                return Got {
                    status,
                    first_line,
                    closed: true,
                };
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                while let Some(m) = split_stream(&mut buf) {
                    if got.is_none()
                        && let Some(st) = m.status().filter(|s| *s >= 200)
                    {
                        got = Some((st, m.text.lines().next().unwrap_or("").to_string()));
                    }
                }
                // For a framing error we also want to see the close: keep reading (bounded by
                // the deadline) only when the answer is a 400; otherwise stop at the answer.
                if let Some((st, _)) = &got
                    && *st != 400
                {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let (status, first_line) = got
        .map(|(a, b)| (Some(a), b))
        .unwrap_or((None, String::new()));
    Got {
        status,
        first_line,
        closed: false,
    }
}

fn check(name: &str, transport: &str, expect: Expect, got: &Got, reason: &str) -> Option<String> {
    let ok = match expect {
        Code(codes) => got.status.is_some_and(|s| codes.contains(&s)),
        Not(codes) => got.status.is_some_and(|s| !codes.contains(&s)),
        Any => true,
        Silence => got.status.is_none(),
    };
    (!ok).then(|| {
        format!(
            "{name} over {transport}: expected {expect:?}, got {:?} ({:?}) — {reason}",
            got.status, got.first_line
        )
    })
}

/// The server-transaction key of a message (top Via branch, sent-by, CSeq method): several
/// RFC 4475 files share one (e.g. cparam01/cparam02, escnull/regescrt, novelsc/unkscm), and
/// a server rightly treats the second as a retransmission of the first (RFC 3261 §17.2.3).
fn transaction_key(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut via = String::new();
    let mut method = String::new();
    for line in text.lines() {
        let lower = line.to_ascii_lowercase();
        if via.is_empty()
            && (lower.starts_with("via") || lower.starts_with("v ") || lower.starts_with("v:"))
        {
            via = lower.split(',').next().unwrap_or("").replace(' ', "");
        }
        if method.is_empty() && lower.starts_with("cseq") {
            method = lower.split_whitespace().last().unwrap_or("").to_string();
        }
    }
    format!("{via}|{method}")
}

/// Splits the table into waves with no repeated transaction key inside a wave.
fn waves() -> Vec<Vec<usize>> {
    let mut waves: Vec<(Vec<usize>, Vec<String>)> = Vec::new();
    for (i, &(name, ..)) in TABLE.iter().enumerate() {
        let key = transaction_key(&load(name));
        match waves.iter_mut().find(|(_, keys)| !keys.contains(&key)) {
            Some((members, keys)) => {
                members.push(i);
                keys.push(key);
            }
            None => waves.push((vec![i], vec![key])),
        }
    }
    waves.into_iter().map(|(m, _)| m).collect()
}

/// Sends the files of one wave over one transport concurrently; returns the failed
/// expectations.
fn run_transport(d: &Daemon, tcp: bool, wave: &[usize]) -> Vec<String> {
    let server = d.sip_addr();
    let transport = if tcp { "TCP" } else { "UDP" };
    let mut handles = Vec::new();
    for &(name, udp_expect, tcp_expect, reason) in wave.iter().map(|&i| &TABLE[i]) {
        let expect = if tcp { tcp_expect } else { udp_expect };
        let bytes = load(name);
        let wait = if matches!(expect, Silence | Any) {
            SILENCE
        } else {
            ANSWER
        };
        let h = thread::spawn(move || {
            if tcp {
                tcp_exchange(server, bytes, wait)
            } else {
                udp_exchange(server, bytes, wait)
            }
        });
        handles.push((name, expect, reason, h));
    }
    let mut failures = Vec::new();
    let mut results: HashMap<&str, Got> = HashMap::new();
    for (name, expect, reason, h) in handles {
        let got = h.join().expect("exchange thread");
        if let Some(f) = check(name, transport, expect, &got, reason) {
            failures.push(f);
        }
        results.insert(name, got);
    }
    if tcp {
        // Framing errors on TCP: after the 400 the server closes the connection (RFC 4475
        // 3.1.2.3, 3.3.9: the stream cannot be resynchronised).
        for name in ["ncl", "mcl01"] {
            let Some(g) = results.get(name) else { continue };
            if !g.closed {
                failures.push(format!(
                    "{name} over TCP: server did not close the connection after {:?}",
                    g.status
                ));
            }
        }
    }
    failures
}

/// Still alive, still switching calls.
fn assert_still_switching(d: &mut Daemon) {
    assert!(
        d.is_running(),
        "daemon died during the torture run\n{}",
        d.log_tail()
    );
    d.ctl_ok("status");
    let mut uas = sipp_callee(d, "uas_echo", "1001", &["-m", "1"]);
    let mut uac = sipp_caller(
        d,
        "uac",
        &[],
        "1000",
        "1001",
        &["-m", "1", "-d", "200", "-timeout", "20"],
    );
    uac.wait(Duration::from_secs(25))
        .assert_ok(1, &d.log_tail());
    uas.wait(Duration::from_secs(10))
        .assert_ok(1, &d.log_tail());
}

#[test]
fn rfc4475_torture_over_udp_and_tcp() {
    // Every file of the data set is covered by the table.
    let listed: Vec<String> = std::fs::read_to_string(data_dir().join("EXPECTED.tsv"))
        .expect("EXPECTED.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            l.split('\t')
                .next()
                .unwrap_or("")
                .trim_end_matches(".dat")
                .to_string()
        })
        .collect();
    for f in &listed {
        assert!(
            TABLE.iter().any(|t| t.0 == f),
            "{f} from EXPECTED.tsv missing in the table"
        );
    }
    // One daemon per transport and wave: the same file over UDP and TCP carries the same
    // branch and sent-by, so a single daemon would rightly treat the second copy as a
    // retransmission (RFC 3261 §17.2.3) and answer it on the first one's transport.
    let waves = waves();
    assert!(
        waves.len() <= 3,
        "unexpectedly many transaction-key collisions: {waves:?}"
    );
    let mut daemons: Vec<(Daemon, bool, Vec<usize>)> = Vec::new();
    for wave in &waves {
        for tcp in [false, true] {
            daemons.push((Daemon::start("basic"), tcp, wave.clone()));
        }
    }
    let failures: Vec<String> = thread::scope(|s| {
        let hs: Vec<_> = daemons
            .iter()
            .map(|(d, tcp, wave)| s.spawn(move || run_transport(d, *tcp, wave)))
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("torture phase"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} torture expectations failed:\n{}\n{}",
        failures.len(),
        failures.join("\n"),
        daemons
            .iter()
            .map(|(d, tcp, _)| format!(
                "[{} daemon]\n{}",
                if *tcp { "TCP" } else { "UDP" },
                d.log_tail()
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
    for (d, ..) in daemons.iter_mut() {
        assert_still_switching(d);
    }
}
