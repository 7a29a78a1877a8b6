//! Digest authentication on real SIP messages: the registrar's view (parse a REGISTER, read
//! its Authorization header, verify) and RFC 4475 regaut01.

use std::time::Duration;

use bytes::Bytes;
use switchyard_sip::auth::{AuthOutcome, DigestChallenger, authorization_for};
use switchyard_sip::{Message, MessageBuilder, Method};

const REGAUT01: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
To: sip:j.user@example.com\r\n\
From: sip:j.user@example.com;tag=87321hj23128\r\n\
Max-Forwards: 8\r\n\
Call-ID: regaut01.0ha0isndaksdj\r\n\
CSeq: 9338 REGISTER\r\n\
Via: SIP/2.0/TCP 192.0.2.253;branch=z9hG4bKkdjuw\r\n\
Authorization: NoOneKnowsThisScheme opaque-data=here\r\n\
Content-Length:0\r\n\
\r\n";

fn users(name: &str) -> Option<String> {
    (name == "1000").then(|| "pass1000".to_owned())
}

#[test]
fn rfc4475_regaut01_unknown_scheme_is_just_challenged() {
    if let Ok(file) = std::fs::read("/work/shared/testdata/rfc4475/regaut01.dat") {
        assert_eq!(file, REGAUT01);
    }
    let msg = Message::parse_datagram(Bytes::from_static(REGAUT01)).unwrap();
    let mut ch = DigestChallenger::new("example.com", [3; 32], Duration::from_secs(60));
    let header = msg.header("Authorization").unwrap();
    assert_eq!(
        ch.verify(1_000, "REGISTER", "sip:example.com", header, users),
        AuthOutcome::UnsupportedScheme
    );
}

#[test]
fn register_challenge_answer_verify_through_messages() {
    let mut ch = DigestChallenger::new("switchyard.test", [9; 32], Duration::from_secs(60));
    let now = 1_750_000_000;
    // Both challenges of a 401 carry one nonce: the second answer is that nonce's second use.
    for (nc, challenge) in (1..).zip(ch.challenges(now, false)) {
        // The UAC reads the challenge off a 401 ...
        let mut b = MessageBuilder::response(401, "Unauthorized");
        b.header("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1")
            .header("From", "<sip:1000@switchyard.test>;tag=a")
            .header("To", "<sip:1000@switchyard.test>;tag=b")
            .header("Call-ID", "reg1")
            .header("CSeq", "1 REGISTER")
            .header("WWW-Authenticate", &challenge);
        let resp = Message::parse_datagram(b.finish(None, &[])).unwrap();
        let got = resp.header("WWW-Authenticate").unwrap();
        let auth = authorization_for(
            got,
            "REGISTER",
            "sip:switchyard.test",
            "1000",
            "pass1000",
            "0a4f113b",
            nc,
        )
        .unwrap();
        // ... and retries the REGISTER with the answer.
        let mut b = MessageBuilder::request(&Method::Register, "sip:switchyard.test");
        b.header("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK2")
            .header("Max-Forwards", 70)
            .header("From", "<sip:1000@switchyard.test>;tag=a")
            .header("To", "<sip:1000@switchyard.test>")
            .header("Call-ID", "reg1")
            .header("CSeq", "2 REGISTER")
            .header("Authorization", &auth);
        let req = Message::parse_datagram(b.finish(None, &[])).unwrap();
        let method = req.method().unwrap().as_str();
        let ruri = req.request_uri().unwrap();
        let header = req.header("Authorization").unwrap();
        assert_eq!(
            ch.verify(now + 5, method, ruri, header, users),
            AuthOutcome::Authorized {
                username: "1000".into()
            },
            "{challenge}"
        );
        // The same REGISTER captured and resent (a new transaction): a replay.
        assert_eq!(
            ch.verify(now + 6, method, ruri, header, users),
            AuthOutcome::Rejected {
                username: Some("1000".into()),
                reason: "replayed nonce count"
            }
        );
        assert_eq!(
            ch.verify(now + 61, method, ruri, header, users),
            AuthOutcome::Stale {
                username: "1000".into()
            }
        );
        let forged = header
            .replace("pass", "x")
            .replacen("response=\"", "response=\"0", 1);
        assert!(matches!(
            ch.verify(now + 5, method, ruri, &forged, users),
            AuthOutcome::Rejected { .. }
        ));
    }
}
