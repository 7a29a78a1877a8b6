//! RFC 4475 and RFC 5118 torture messages: every file, through datagram and stream framing.

mod common;

use bytes::Bytes;
use switchyard_sip::{Contact, Message, Method, ParseErrorKind, response_to};

/// What we do with each RFC 4475 file, and why where RFC 4475 leaves a choice.
enum Want {
    /// Parses; the application may still answer with an error (501, 416, 420, 415...).
    Accept,
    /// Refused; the status a UAS answers with (None = drop silently).
    Reject(Option<u16>),
}
use Want::*;

const RFC4475: &[(&str, Want, &str)] = &[
    ("wsinv.dat", Accept, ""),
    ("intmeth.dat", Accept, "app answers 501"),
    ("esc01.dat", Accept, ""),
    ("escnull.dat", Accept, ""),
    (
        "esc02.dat",
        Accept,
        "method RE%47IST%45R is an extension: app answers 501",
    ),
    ("lwsdisp.dat", Accept, ""),
    ("longreq.dat", Accept, ""),
    ("dblreq.dat", Accept, "trailing INVITE-like junk ignored"),
    ("semiuri.dat", Accept, ""),
    ("transports.dat", Accept, ""),
    ("mpart01.dat", Accept, ""),
    ("unreason.dat", Accept, ""),
    ("noreason.dat", Accept, ""),
    ("badinv01.dat", Reject(Some(400)), ";;,;,, in Via"),
    (
        "clerr.dat",
        Reject(Some(400)),
        "UDP: CL beyond the datagram; TCP waits",
    ),
    ("ncl.dat", Reject(Some(400)), "negative CL"),
    (
        "scalar02.dat",
        Reject(Some(400)),
        "CSeq > 2^32-1 (MF 300 also refused: 0-255)",
    ),
    ("scalarlg.dat", Reject(None), "malformed response: drop"),
    (
        "quotbal.dat",
        Reject(Some(400)),
        "no closing quote inferred",
    ),
    (
        "ltgtruri.dat",
        Reject(Some(400)),
        "liberal accept allowed; we reject: '<' is no scheme",
    ),
    ("lwsruri.dat", Reject(Some(400)), ""),
    (
        "lwsstart.dat",
        Reject(Some(400)),
        "liberal accept allowed; we reject extra SP",
    ),
    (
        "trws.dat",
        Reject(Some(400)),
        "liberal accept allowed; we reject trailing SP",
    ),
    (
        "escruri.dat",
        Reject(Some(400)),
        "liberal accept allowed; we reject headers in Request-URI",
    ),
    (
        "baddate.dat",
        Accept,
        "liberal accept: Date is never examined by the parser",
    ),
    (
        "regbadct.dat",
        Reject(Some(400)),
        "liberal accept allowed; Contact is validated eagerly",
    ),
    (
        "badaspec.dat",
        Reject(Some(400)),
        "liberal accept allowed; we reject LWS inside <>",
    ),
    (
        "baddn.dat",
        Reject(Some(400)),
        "liberal accept allowed; unquoted ',' in display name",
    ),
    ("badvers.dat", Reject(Some(505)), ""),
    ("mismatch01.dat", Reject(Some(400)), ""),
    (
        "mismatch02.dat",
        Reject(Some(400)),
        "400 is acceptable per RFC 4475 §3.1.2.18",
    ),
    ("bigcode.dat", Reject(None), "malformed response: drop"),
    ("badbranch.dat", Accept, ""),
    (
        "insuf.dat",
        Reject(Some(400)),
        "no From/To/Call-ID: 400 with placeholders",
    ),
    ("unkscm.dat", Accept, "app answers 416"),
    ("novelsc.dat", Accept, "app answers 416"),
    ("unksm2.dat", Accept, "registrar answers 400"),
    ("bext01.dat", Accept, "app answers 420"),
    ("invut.dat", Accept, "app answers 415"),
    ("regaut01.dat", Accept, "registrar answers 401"),
    ("multi01.dat", Reject(Some(400)), ""),
    ("mcl01.dat", Reject(Some(400)), ""),
    ("bcast.dat", Accept, ""),
    ("zeromf.dat", Accept, ""),
    ("cparam01.dat", Accept, ""),
    ("cparam02.dat", Accept, ""),
    ("regescrt.dat", Accept, ""),
    ("sdp01.dat", Accept, ""),
    ("inv2543.dat", Accept, ""),
    (
        "test.dat",
        Reject(Some(400)),
        "no SIP-Version; no Via so no response",
    ),
];

fn want(name: &str) -> &'static Want {
    &RFC4475
        .iter()
        .find(|(n, _, _)| *n == name)
        .unwrap_or_else(|| panic!("{name} missing from the table"))
        .1
}

fn parse(name: &str) -> Message {
    let files = common::corpus("rfc4475");
    let raw = &files.iter().find(|(n, _)| n == name).expect("file").1;
    Message::parse_datagram(Bytes::from(raw.clone())).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn table_covers_expected_tsv() {
    let classes = common::classes("rfc4475");
    assert_eq!(classes.len(), RFC4475.len());
    for (name, class) in classes {
        match (class.as_str(), want(&name)) {
            ("valid", Accept) | ("invalid", Reject(_)) => {}
            // RFC 4475 §3.1.2.12 permits accepting a non-GMT Date.
            ("invalid", Accept) if name == "baddate.dat" => {}
            (c, _) => panic!("{name}: EXPECTED.tsv says {c}, table disagrees"),
        }
    }
}

#[test]
fn every_rfc4475_file_over_udp() {
    for (name, raw) in common::corpus("rfc4475") {
        let res = Message::parse_datagram(Bytes::from(raw.clone()));
        match (want(&name), res) {
            (Accept, Ok(m)) => {
                common::touch_everything(&m);
                if m.is_request() {
                    // The stateless-response path must work on good requests too.
                    let r = response_to(
                        &m,
                        200,
                        "OK",
                        Some("t1"),
                        Some("192.0.2.200:5060".parse().unwrap()),
                    )
                    .finish(None, b"");
                    let r = Message::parse_datagram(r)
                        .unwrap_or_else(|e| panic!("{name}: response {e}"));
                    assert_eq!(r.vias().len(), m.vias().len(), "{name}");
                    assert_eq!(r.top_via().branch(), m.top_via().branch(), "{name}");
                    assert_eq!(r.call_id(), m.call_id(), "{name}");
                    assert_eq!(r.cseq(), m.cseq(), "{name}");
                    assert!(r.to().tag().is_some(), "{name}");
                }
            }
            (Reject(status), Err(e)) => {
                assert_eq!(e.status(), *status, "{name}: {e}");
                let resp = e.stateless_response(&raw);
                match status {
                    None => assert!(resp.is_none(), "{name}"),
                    Some(_) if name == "test.dat" => {
                        assert!(resp.is_none(), "{name}: no Via to answer")
                    }
                    Some(code) => {
                        let resp = resp.unwrap_or_else(|| panic!("{name}: no stateless response"));
                        let r = Message::parse_datagram(resp).unwrap_or_else(|e| {
                            panic!("{name}: stateless response does not parse: {e}")
                        });
                        assert_eq!(r.status(), Some(*code), "{name}");
                        assert!(r.to().tag().is_some(), "{name}");
                        assert!(!r.vias().is_empty(), "{name}");
                    }
                }
            }
            (Accept, Err(e)) => panic!("{name}: should parse, got {e}"),
            (Reject(_), Ok(_)) => panic!("{name}: should be refused"),
        }
    }
}

#[test]
fn every_rfc4475_file_over_tcp() {
    for (name, raw) in common::corpus("rfc4475") {
        let res = Message::parse_stream(&raw);
        match name.as_str() {
            // RFC 4475 §3.1.2.2: over TCP, wait for the rest of the 9999 octets.
            "clerr.dat" => assert!(matches!(res, Ok(None)), "{name}"),
            // RFC 3261 §18.3: a stream message needs Content-Length.
            "inv2543.dat" => assert_eq!(res.unwrap_err().kind, ParseErrorKind::MissingHeader),
            "dblreq.dat" => {
                let (m, used) = res.unwrap().expect("complete");
                assert_eq!(m.method(), Some(&Method::Register));
                // On a stream the trailing INVITE is simply the next message.
                assert!(used < raw.len());
                let (next, _) = Message::parse_stream(&raw[used..])
                    .unwrap()
                    .expect("second message");
                assert_eq!(next.method(), Some(&Method::Invite));
            }
            _ => match (want(&name), res) {
                (Accept, Ok(Some((m, used)))) => {
                    common::touch_everything(&m);
                    assert_eq!(m.as_bytes().len(), used, "{name}");
                    // Same message as over UDP.
                    let d = Message::parse_datagram(Bytes::from(raw.clone())).unwrap();
                    assert_eq!(d.body(), m.body(), "{name}");
                    // Every strict prefix is "need more".
                    for cut in [1, used / 3, used / 2, used - 1] {
                        assert!(
                            matches!(Message::parse_stream(&raw[..cut]), Ok(None)),
                            "{name} cut {cut}"
                        );
                    }
                }
                (Reject(status), Err(e)) => assert_eq!(e.status(), *status, "{name}: {e}"),
                (_, other) => panic!("{name}: unexpected {:?}", other.map(|o| o.map(|(_, n)| n))),
            },
        }
    }
}

#[test]
fn wsinv_details() {
    let m = parse("wsinv.dat");
    assert_eq!(m.method(), Some(&Method::Invite));
    assert_eq!(
        m.request_uri(),
        Some("sip:vivekg@chair-dnrc.example.com;unknownparam")
    );
    assert_eq!(m.max_forwards(), Some(68));
    assert_eq!(m.cseq(), (9, &Method::Invite));
    assert_eq!(m.to().tag(), Some("1918181833n"));
    assert_eq!(m.from().tag(), Some("98asjd8"));
    assert_eq!(m.from().display_name.as_deref(), Some("J Rosenberg \\\""));
    let vias = m.vias();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        (vias[0].protocol, vias[0].transport, vias[0].host),
        ("SIP/2.0", "UDP", "192.0.2.2")
    );
    assert_eq!(vias[1].transport, "TCP");
    assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(m.top_via().branch(), Some("390skdjuw"));
    let cs = m.contacts().unwrap();
    let Contact::Address(c) = &cs[0] else {
        panic!("star")
    };
    assert_eq!(c.display_name.as_deref(), Some("Quoted string \"\""));
    assert_eq!(c.param("q"), Some(Some("0.33")));
    assert_eq!(c.param("newparam"), Some(Some("newvalue")));
    assert_eq!(c.param("secondparam"), Some(None));
    assert_eq!(m.header("Subject"), Some(""));
    assert_eq!(m.header("s"), Some(""));
    assert_eq!(m.content_type(), Some("application/sdp"));
    assert_eq!(m.body().len(), 150);
    assert!(
        m.header("newfangledheader")
            .unwrap()
            .contains("continued newfangled value")
    );
}

#[test]
fn escapes_and_methods() {
    let m = parse("esc02.dat");
    assert_eq!(m.method(), Some(&Method::Extension("RE%47IST%45R".into())));
    assert_eq!(
        m.contacts().unwrap().len(),
        2,
        "C%6Fntact is an unknown header"
    );
    assert_eq!(m.headers("C%6Fntact").count(), 1);
    assert_eq!(
        m.top_via().branch(),
        Some("z9hG4bK209%fzsnel234"),
        "Via escapes not decoded"
    );

    let m = parse("esc01.dat");
    assert_eq!(
        m.request_uri_parsed().unwrap().user_unescaped().as_deref(),
        Some("sips:user@example.com")
    );
    assert_eq!(m.to().uri.user_unescaped().as_deref(), Some("user"));

    let m = parse("escnull.dat");
    let users: Vec<String> = m
        .contacts()
        .unwrap()
        .iter()
        .map(|c| {
            c.address()
                .unwrap()
                .uri
                .user_unescaped()
                .unwrap()
                .into_owned()
        })
        .collect();
    assert_eq!(users, ["\0", "\0\0"]);

    let m = parse("intmeth.dat");
    let Some(Method::Extension(x)) = m.method() else {
        panic!("extension")
    };
    assert_eq!(&**x, "!interesting-Method0123456789_*+`.%indeed'~");
    assert_eq!(m.cseq().1, m.method().unwrap());
    assert_eq!(m.call_id(), "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{");

    let m = parse("semiuri.dat");
    let u = m.request_uri_parsed().unwrap();
    assert_eq!(
        (u.user, u.host),
        (Some("user;par=u%40example.net"), "example.com")
    );
    assert_eq!(m.header_values("Accept").count(), 6);
}

#[test]
fn framing_cases() {
    let m = parse("dblreq.dat");
    assert_eq!(m.method(), Some(&Method::Register));
    assert!(m.body().is_empty());
    assert!(!m.as_bytes().windows(6).any(|w| w == b"INVITE"));

    let m = parse("mpart01.dat");
    assert_eq!(m.body().len() as u32, m.content_length().unwrap());
    assert!(m.body().contains(&0));

    let m = parse("inv2543.dat");
    assert_eq!(m.content_length(), None);
    assert!(!m.body().is_empty());
    assert_eq!(m.top_via().branch(), None);
    assert_eq!(m.from().tag(), None);
    assert_eq!(m.max_forwards(), None);
}

#[test]
fn addresses_and_schemes() {
    let m = parse("unkscm.dat");
    assert!(!m.request_uri_parsed().unwrap().is_sip());
    let m = parse("novelsc.dat");
    assert_eq!(m.request_uri_parsed().unwrap().scheme, "soap.beep");
    let m = parse("unksm2.dat");
    assert_eq!(m.to().uri.scheme, "isbn");
    assert_eq!(m.from().uri.scheme, "http");
    let m = parse("cparam01.dat");
    let c = m.contacts().unwrap().remove(0);
    let a = c.address().unwrap();
    assert_eq!(a.param("unknownparam"), Some(None));
    assert_eq!(a.uri.param("unknownparam"), None);
    let m = parse("cparam02.dat");
    let c = m.contacts().unwrap().remove(0);
    let a = c.address().unwrap();
    assert_eq!(a.param("unknownparam"), None);
    assert_eq!(a.uri.param("unknownparam"), Some(None));
    let m = parse("regescrt.dat");
    assert_eq!(
        m.contacts().unwrap()[0].address().unwrap().uri.headers,
        Some("Route=%3Csip:sip.example.com%3E")
    );
    let m = parse("transports.dat");
    let t: Vec<&str> = m.vias().iter().map(|v| v.transport).collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    let m = parse("bcast.dat");
    assert_eq!(m.vias()[1].host, "255.255.255.255");
    let m = parse("zeromf.dat");
    assert_eq!(m.max_forwards(), Some(0));
    let m = parse("badbranch.dat");
    assert_eq!(m.top_via().branch(), Some("z9hG4bK"));
    let m = parse("noreason.dat");
    assert_eq!((m.status(), m.reason()), (Some(100), Some("")));
    let m = parse("unreason.dat");
    assert_eq!(m.status(), Some(200));
    assert!(m.reason().unwrap().len() > 10);
    let m = parse("longreq.dat");
    assert_eq!(m.vias().len(), 34);
    let m = parse("lwsdisp.dat");
    assert_eq!(m.from().display_name.as_deref(), Some("caller"));
}

#[test]
fn stateless_responses_keep_transaction_keys() {
    let files = common::corpus("rfc4475");
    let get = |n: &str| files.iter().find(|(f, _)| f == n).unwrap().1.clone();
    // badinv01: the Via's broken params are dropped, sent-by kept.
    let raw = get("badinv01.dat");
    let e = Message::parse_datagram(Bytes::from(raw.clone())).unwrap_err();
    let r = Message::parse_datagram(e.stateless_response(&raw).unwrap()).unwrap();
    assert_eq!(r.top_via().host, "192.0.2.15");
    assert_eq!(r.call_id(), "badinv01.0ha0isndaksdjasdf3234nas");
    assert_eq!(r.cseq(), (8, &Method::Invite));
    // mismatch01: CSeq is echoed as sent so the client transaction matches it.
    let raw = get("mismatch01.dat");
    let e = Message::parse_datagram(Bytes::from(raw.clone())).unwrap_err();
    let r = Message::parse_datagram(e.stateless_response(&raw).unwrap()).unwrap();
    assert_eq!(r.cseq().1, &Method::Invite);
    // badvers: 505.
    let raw = get("badvers.dat");
    let e = Message::parse_datagram(Bytes::from(raw.clone())).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::UnsupportedVersion);
    let r = Message::parse_datagram(e.stateless_response(&raw).unwrap()).unwrap();
    assert_eq!(r.status(), Some(505));
    // insuf: branch kept, placeholders for the rest.
    let raw = get("insuf.dat");
    let e = Message::parse_datagram(Bytes::from(raw.clone())).unwrap_err();
    let r = Message::parse_datagram(e.stateless_response(&raw).unwrap()).unwrap();
    assert_eq!(r.top_via().branch(), Some("z9hG4bKkdj.insuf"));
    assert_eq!(r.cseq(), (193942, &Method::Invite));
}

#[test]
fn rfc5118_ipv6() {
    let classes = common::classes("rfc5118");
    let files = common::corpus("rfc5118");
    assert_eq!(files.len(), 12);
    for ((name, raw), (_, class)) in files.iter().zip(&classes) {
        let res = Message::parse_datagram(Bytes::from(raw.clone()));
        match (class.as_str(), res) {
            ("valid", Ok(m)) => {
                common::touch_everything(&m);
            }
            ("invalid", Err(e)) => {
                assert_eq!(e.status(), Some(400), "{name}");
                let r = e.stateless_response(raw).expect("response");
                Message::parse_datagram(r).unwrap();
            }
            (c, r) => panic!("{name}: {c} but {:?}", r.map(|_| ())),
        }
    }
    let get = |n: &str| {
        Message::parse_datagram(Bytes::from(
            files.iter().find(|(f, _)| f == n).unwrap().1.clone(),
        ))
        .unwrap()
    };
    let m = get("port-unambiguous");
    let u = m.request_uri_parsed().unwrap();
    assert_eq!((u.host, u.port), ("[2001:db8::10]", Some(5070)));
    let m = get("port-ambiguous");
    let u = m.request_uri_parsed().unwrap();
    assert_eq!((u.host, u.port), ("[2001:db8::10:5070]", None));
    let m = get("via-received-param-with-delim");
    assert_eq!(m.top_via().received(), Some("[2001:db8::9:255]"));
    let m = get("via-received-param-no-delim");
    assert_eq!(m.top_via().received(), Some("2001:db8::9:255"));
    let m = get("ipv4-mapped-ipv6");
    let v = m.top_via();
    assert_eq!((v.host, v.port), ("[::ffff:192.0.2.10]", Some(19823)));
    assert_eq!(
        m.top_via_with_received("[::ffff:192.0.2.10]:19823".parse().unwrap()),
        "SIP/2.0/UDP [::ffff:192.0.2.10]:19823;branch=z9hG4bKbh19"
    );
    let m = get("mult-ip-in-header");
    let hosts: Vec<&str> = m.vias().iter().map(|v| v.host).collect();
    assert_eq!(hosts, ["[2001:db8::9:1]", "192.0.2.1", "[2001:db8::9:255]"]);
    assert_eq!(m.vias()[2].received(), Some("192.0.2.200"));
}

#[test]
fn sipsorcery_baddn_variant() {
    let p = common::testdata().join("rfc4475/variants/baddn.dat.sipsorcery-no-final-crlf");
    let raw = std::fs::read(p).unwrap();
    let e = Message::parse_datagram(Bytes::from(raw.clone())).unwrap_err();
    assert_eq!(e.status(), Some(400));
}
