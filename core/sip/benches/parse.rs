//! Parse rate for a typical INVITE with SDP and a typical 200 OK: framing plus the headers a
//! transaction and dialog layer read (Call-ID, CSeq, From/To tags, top Via branch, Contact).
//!
//! `cargo bench -p switchyard-sip --bench parse` prints "SIP parse rate: N messages/s per core"
//! from a plain timed loop, then runs criterion.

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use switchyard_sip::Message;

const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com:5060;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REFER, NOTIFY\r\n\
Supported: replaces, timer, 100rel\r\n\
User-Agent: Switchyard-bench/0.1\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 142\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

const OK200: &[u8] = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport=5060;received=192.0.2.101\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:bob@192.0.2.4>\r\n\
Content-Length: 0\r\n\
\r\n";

fn key_headers(buf: &Bytes) -> usize {
    let m = Message::parse_datagram(buf.clone()).expect("bench message parses");
    let mut n = m.call_id().len() + m.cseq().0 as usize;
    n += m.from().tag().map_or(0, str::len);
    n += m.to().tag().map_or(0, str::len);
    n += m.top_via().branch().map_or(0, str::len);
    n += m.contacts().map_or(0, |c| c.len());
    n + m.body().len()
}

// A benchmark is a reactor of sorts: it measures wall-clock time on purpose.
#[allow(clippy::disallowed_methods)]
fn rate(name: &str, buf: &Bytes, iters: u32) -> f64 {
    let t = Instant::now();
    let mut acc = 0usize;
    for _ in 0..iters {
        acc = acc.wrapping_add(key_headers(black_box(buf)));
    }
    black_box(acc);
    let per_sec = f64::from(iters) / t.elapsed().as_secs_f64();
    println!(
        "{name}: {per_sec:.0} messages/s ({:.0} ns each)",
        1e9 / per_sec
    );
    per_sec
}

fn main() {
    let invite = Bytes::from_static(INVITE);
    let ok = Bytes::from_static(OK200);
    assert!(key_headers(&invite) > 0 && key_headers(&ok) > 0);
    let iters = std::env::var("SIP_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let a = rate("INVITE+SDP", &invite, iters);
    let b = rate("200 OK", &ok, iters);
    println!(
        "SIP parse rate: {:.0} messages/s per core (INVITE+SDP {a:.0}/s, 200 OK {b:.0}/s)",
        2.0 / (1.0 / a + 1.0 / b)
    );

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("sip_parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("invite_sdp_key_headers", |bch| {
        bch.iter(|| key_headers(black_box(&invite)))
    });
    g.bench_function("ok200_key_headers", |bch| {
        bch.iter(|| key_headers(black_box(&ok)))
    });
    g.bench_function("invite_framing_only", |bch| {
        bch.iter(|| Message::parse_datagram(black_box(invite.clone())).map(|m| m.body().len()))
    });
    g.finish();
    c.final_summary();
}
