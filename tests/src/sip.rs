//! Raw SIP for tests: a tiny response reader, a UDP peer, and the RFC 7616 / RFC 2617
//! digest computation (MD5 and SHA-256) so registrar tests can authenticate by hand.

use md5::Md5;
use sha2::{Digest, Sha256};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// A received SIP message, kept as text with a few accessors.
#[derive(Debug, Clone)]
pub struct SipMessage {
    pub text: String,
}

impl SipMessage {
    pub fn new(bytes: &[u8]) -> SipMessage {
        SipMessage {
            text: String::from_utf8_lossy(bytes).into_owned(),
        }
    }

    /// Status code of a response; None for requests or garbage.
    pub fn status(&self) -> Option<u16> {
        let first = self.text.lines().next()?;
        let mut it = first.split_whitespace();
        if it.next()? != "SIP/2.0" {
            return None;
        }
        it.next()?.parse().ok()
    }

    /// The request method (None for a response).
    pub fn method(&self) -> Option<&str> {
        let first = self.text.lines().next()?;
        if first.starts_with("SIP/2.0") {
            return None;
        }
        first.split_whitespace().next()
    }

    /// All values of a header (case-insensitive name; compact forms not expanded).
    pub fn headers(&self, name: &str) -> Vec<String> {
        let head = self.text.split("\r\n\r\n").next().unwrap_or("");
        head.lines()
            .skip(1)
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers(name).into_iter().next()
    }
}

/// One `WWW-Authenticate`/`Proxy-Authenticate: Digest ...` challenge.
#[derive(Debug, Clone, Default)]
pub struct DigestChallenge {
    pub realm: String,
    pub nonce: String,
    pub algorithm: String,
    pub qop: Option<String>,
    pub opaque: Option<String>,
}

impl DigestChallenge {
    /// Parses `Digest realm="..", nonce="..", algorithm=.., qop=".."`.
    pub fn parse(value: &str) -> Option<DigestChallenge> {
        let rest = value.trim().strip_prefix("Digest")?.trim();
        let mut c = DigestChallenge {
            algorithm: "MD5".into(),
            ..Default::default()
        };
        for (k, v) in split_params(rest) {
            match k.to_ascii_lowercase().as_str() {
                "realm" => c.realm = v,
                "nonce" => c.nonce = v,
                "algorithm" => c.algorithm = v,
                "qop" => c.qop = Some(v),
                "opaque" => c.opaque = Some(v),
                _ => {}
            }
        }
        Some(c)
    }

    /// `Authorization` header value for `method uri` answering this challenge.
    pub fn authorization(&self, user: &str, pass: &str, method: &str, uri: &str) -> String {
        let cnonce = "0a4f113b";
        let nc = "00000001";
        // We only implement qop=auth (auth-int would need the body hash).
        let qop = self
            .qop
            .as_deref()
            .filter(|q| q.split(',').any(|x| x.trim() == "auth"))
            .map(|_| "auth");
        let resp = digest_response(
            &self.algorithm,
            user,
            &self.realm,
            pass,
            method,
            uri,
            &self.nonce,
            qop.map(|q| (q, nc, cnonce)),
        );
        let mut h = format!(
            "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{resp}\", algorithm={}",
            self.realm, self.nonce, self.algorithm
        );
        if let Some(q) = qop {
            h.push_str(&format!(", qop={q}, nc={nc}, cnonce=\"{cnonce}\""));
        }
        if let Some(o) = &self.opaque {
            h.push_str(&format!(", opaque=\"{o}\""));
        }
        h
    }
}

fn split_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let Some((k, r)) = rest.split_once('=') else {
            break;
        };
        let k = k.trim().trim_start_matches(',').trim().to_string();
        let r = r.trim_start();
        let (v, r) = if let Some(r) = r.strip_prefix('"') {
            let end = r.find('"').unwrap_or(r.len());
            (r[..end].to_string(), r.get(end + 1..).unwrap_or(""))
        } else {
            let end = r.find(',').unwrap_or(r.len());
            (r[..end].trim().to_string(), &r[end..])
        };
        out.push((k, v));
        rest = r.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

fn hash(alg: &str, s: &str) -> String {
    if alg.eq_ignore_ascii_case("SHA-256") {
        hex::encode(Sha256::digest(s.as_bytes()))
    } else {
        hex::encode(Md5::digest(s.as_bytes()))
    }
}

/// RFC 7616 §3.4.1 response = H(H(A1):nonce[:nc:cnonce:qop]:H(A2)), A1 = user:realm:pass,
/// A2 = method:uri. `qop` = (qop, nc, cnonce).
#[allow(clippy::too_many_arguments)]
pub fn digest_response(
    alg: &str,
    user: &str,
    realm: &str,
    pass: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str, &str)>,
) -> String {
    let ha1 = hash(alg, &format!("{user}:{realm}:{pass}"));
    let ha2 = hash(alg, &format!("{method}:{uri}"));
    match qop {
        Some((q, nc, cnonce)) => hash(alg, &format!("{ha1}:{nonce}:{nc}:{cnonce}:{q}:{ha2}")),
        None => hash(alg, &format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// A UDP socket on 127.0.0.1 talking to the daemon.
pub struct UdpPeer {
    pub sock: UdpSocket,
    pub server: SocketAddr,
}

impl UdpPeer {
    /// Binds an ephemeral port (or `port` when Some).
    pub fn new(server: SocketAddr, port: Option<u16>) -> UdpPeer {
        let sock = UdpSocket::bind(("127.0.0.1", port.unwrap_or(0))).expect("bind udp");
        UdpPeer { sock, server }
    }

    pub fn local_port(&self) -> u16 {
        self.sock.local_addr().expect("local addr").port()
    }

    pub fn send(&self, msg: &str) {
        self.sock
            .send_to(msg.as_bytes(), self.server)
            .expect("send udp");
    }

    pub fn send_bytes(&self, msg: &[u8]) {
        self.sock.send_to(msg, self.server).expect("send udp");
    }

    /// Next datagram within `timeout`, or None.
    pub fn recv(&self, timeout: Duration) -> Option<SipMessage> {
        self.sock
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .ok()?;
        let mut buf = vec![0u8; 65536];
        match self.sock.recv_from(&mut buf) {
            Ok((n, _)) => Some(SipMessage::new(&buf[..n])),
            Err(_) => None,
        }
    }

    /// Next final response (≥ 200) within `timeout`, skipping provisional ones.
    pub fn recv_final(&self, timeout: Duration) -> Option<SipMessage> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            let m = self.recv(left)?;
            if m.status().map(|s| s >= 200).unwrap_or(false) {
                return Some(m);
            }
        }
    }

    /// Sends and waits for the final response.
    pub fn transact(&self, msg: &str, timeout: Duration) -> Option<SipMessage> {
        self.send(msg);
        self.recv_final(timeout)
    }
}

/// A REGISTER request text (UDP, from `local_port`), optionally with an Authorization
/// header and an explicit Contact header value.
#[allow(clippy::too_many_arguments)]
pub fn register_request(
    server_port: u16,
    local_port: u16,
    user: &str,
    call_id: &str,
    cseq: u32,
    contact: &str,
    expires: Option<u32>,
    authorization: Option<&str>,
) -> String {
    let mut m = format!(
        "REGISTER sip:127.0.0.1:{server_port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{call_id}{cseq};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@127.0.0.1>;tag=t{call_id}\r\n\
         To: <sip:{user}@127.0.0.1>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: {contact}\r\n"
    );
    if let Some(e) = expires {
        m.push_str(&format!("Expires: {e}\r\n"));
    }
    if let Some(a) = authorization {
        m.push_str(&format!("Authorization: {a}\r\n"));
    }
    m.push_str("Content-Length: 0\r\n\r\n");
    m
}
