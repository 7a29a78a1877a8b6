//! Shared helpers: locating the torture corpora and exercising every accessor.

#![allow(dead_code)]

use std::path::PathBuf;

use switchyard_sip::{Contact, Message};

/// The RFC 4475 / RFC 5118 corpora: $SWITCHYARD_TESTDATA, the repository's testdata/, or the
/// team's shared checkout. Panics when none exists, so a missing corpus fails loudly.
pub fn testdata() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        std::env::var_os("SWITCHYARD_TESTDATA").map(PathBuf::from),
        Some(manifest.join("../../testdata")),
        Some(manifest.join("../../../shared/testdata")),
        Some(PathBuf::from("/work/shared/testdata")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("rfc4475/EXPECTED.tsv").is_file())
        .expect("RFC 4475 corpus not found: set SWITCHYARD_TESTDATA")
}

/// (file name, bytes) of every message in `sub` (EXPECTED.tsv order).
pub fn corpus(sub: &str) -> Vec<(String, Vec<u8>)> {
    let dir = testdata().join(sub);
    let tsv = std::fs::read_to_string(dir.join("EXPECTED.tsv")).expect("EXPECTED.tsv");
    tsv.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let name = l.split('\t').next().expect("name").to_owned();
            let bytes = std::fs::read(dir.join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, bytes)
        })
        .collect()
}

/// (file name, class) from EXPECTED.tsv.
pub fn classes(sub: &str) -> Vec<(String, String)> {
    let tsv =
        std::fs::read_to_string(testdata().join(sub).join("EXPECTED.tsv")).expect("EXPECTED.tsv");
    tsv.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split('\t');
            (
                f.next().expect("name").to_owned(),
                f.next().expect("class").to_owned(),
            )
        })
        .collect()
}

/// Calls every accessor; returns a checksum so the work cannot be optimised away.
pub fn touch_everything(m: &Message) -> usize {
    let mut n = m.call_id().len();
    let (seq, method) = m.cseq();
    n += seq as usize % 7 + method.as_str().len();
    let from = m.from();
    let to = m.to();
    n += from.tag().map_or(0, str::len) + to.tag().map_or(0, str::len);
    n += from.display_name.as_deref().map_or(0, str::len) + to.uri.host.len();
    n += from.uri.user_unescaped().map_or(0, |u| u.len());
    let top = m.top_via();
    n += top.branch().map_or(0, str::len) + top.host.len() + usize::from(top.has_rport());
    n += top.rport().unwrap_or(0) as usize + top.received().map_or(0, str::len);
    for v in m.vias() {
        n += v.transport.len() + v.port.unwrap_or(0) as usize;
    }
    if let Ok(cs) = m.contacts() {
        for c in cs {
            if let Contact::Address(a) = c {
                n += a.uri.raw.len() + a.param("expires").flatten().map_or(0, str::len);
                n += a.uri.transport().map_or(0, str::len);
            }
        }
    }
    for (name, value) in m.iter_headers() {
        n += name.len() + value.len();
    }
    n += m.header_values("Allow").count() + m.headers("v").count();
    n += m.max_forwards().unwrap_or(0) as usize + m.expires().unwrap_or(0) as usize;
    n += m.content_type().map_or(0, str::len) + m.body().len() + m.as_bytes().len();
    n += m.request_uri().map_or(0, str::len) + m.reason().map_or(0, str::len);
    n += usize::from(m.status().unwrap_or(0)) + m.method().map_or(0, |m| m.as_str().len());
    n += m
        .top_via_with_received("192.0.2.77:5070".parse().expect("addr"))
        .len();
    n
}
