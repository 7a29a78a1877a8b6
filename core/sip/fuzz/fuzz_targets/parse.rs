//! `cargo fuzz run parse` (from core/sip): datagram and stream parsing plus every accessor,
//! and the stateless error response, which must itself parse.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use switchyard_sip::{Contact, Message};

fn touch(m: &Message) {
    let _ = (
        m.call_id(),
        m.cseq(),
        m.method(),
        m.status(),
        m.reason(),
        m.request_uri(),
    );
    let (f, t) = (m.from(), m.to());
    let _ = (
        f.tag(),
        t.tag(),
        f.uri.user_unescaped(),
        t.display_name.as_deref(),
    );
    let v = m.top_via();
    let _ = (v.branch(), v.received(), v.rport(), v.has_rport());
    for v in m.vias() {
        let _ = v.param("maddr");
    }
    if let Ok(cs) = m.contacts() {
        for c in cs {
            if let Contact::Address(a) = c {
                let _ = (
                    a.param("expires"),
                    a.uri.transport(),
                    a.uri.user_unescaped(),
                );
            }
        }
    }
    for (n, v) in m.iter_headers() {
        let _ = (n.len(), v.len());
    }
    let _ = m.header_values("Allow").count();
    let _ = (
        m.max_forwards(),
        m.expires(),
        m.content_type(),
        m.body().len(),
    );
    let _ = m.top_via_with_received("192.0.2.1:5060".parse().unwrap());
}

fuzz_target!(|data: &[u8]| {
    match Message::parse_datagram(Bytes::copy_from_slice(data)) {
        Ok(m) => touch(&m),
        Err(e) => {
            if let Some(r) = e.stateless_response(data) {
                let r = Message::parse_datagram(r).expect("stateless response parses");
                assert_eq!(r.status(), e.status());
                touch(&r);
            }
        }
    }
    if let Ok(Some((m, used))) = Message::parse_stream(data) {
        assert!(used <= data.len());
        touch(&m);
    }
});
