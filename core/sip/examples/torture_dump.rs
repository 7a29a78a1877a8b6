//! Prints how the parser judges each file given on the command line (a debugging aid).
fn main() {
    for path in std::env::args().skip(1) {
        let raw = std::fs::read(&path).expect("read");
        let name = std::path::Path::new(&path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match switchyard_sip::Message::parse_datagram(bytes::Bytes::from(raw.clone())) {
            Ok(m) => println!("{name:32} OK   {:?} {:?} cid={} vias={} contacts={:?} body={}", m.method(), m.status(), m.call_id(), m.vias().len(), m.contacts().map(|c| c.len()), m.body().len()),
            Err(e) => println!("{name:32} ERR  {e} status={:?} resp={}", e.status(), e.stateless_response(&raw).map(|b| String::from_utf8_lossy(&b).lines().next().unwrap_or("").to_owned()).unwrap_or_default()),
        }
    }
}
