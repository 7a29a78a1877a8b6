//! The serializer: messages are written straight into one buffer, in the order given.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use crate::header::{Params, Via, is_token_char, unfold};
use crate::message::{Message, Method};

/// Writes a SIP message line by line. Header values are written as given, except that CR and
/// LF are replaced by spaces so a value can never inject a header or end the head early.
#[derive(Clone, Debug)]
pub struct MessageBuilder {
    buf: Vec<u8>,
}

/// Adapts `fmt::Write` to the buffer while neutralising line breaks.
struct Sanitizing<'a>(&'a mut Vec<u8>);

impl fmt::Write for Sanitizing<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if s.bytes().any(|c| c == b'\r' || c == b'\n') {
            self.0.extend(
                s.bytes()
                    .map(|c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
            );
        } else {
            self.0.extend_from_slice(s.as_bytes());
        }
        Ok(())
    }
}

impl MessageBuilder {
    pub fn request(method: &Method, uri: &str) -> Self {
        let mut b = MessageBuilder {
            buf: Vec::with_capacity(1024),
        };
        let mut w = Sanitizing(&mut b.buf);
        let _ = write!(w, "{} {} SIP/2.0", method.as_str(), uri.replace(' ', "%20"));
        b.buf.extend_from_slice(b"\r\n");
        b
    }

    pub fn response(status: u16, reason: &str) -> Self {
        let mut b = MessageBuilder {
            buf: Vec::with_capacity(1024),
        };
        let mut w = Sanitizing(&mut b.buf);
        let _ = write!(w, "SIP/2.0 {:03} {}", status.clamp(100, 699), reason);
        b.buf.extend_from_slice(b"\r\n");
        b
    }

    pub fn header(&mut self, name: &str, value: impl fmt::Display) -> &mut Self {
        let mut w = Sanitizing(&mut self.buf);
        let _ = write!(w, "{name}: {value}");
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    pub fn raw_header_line(&mut self, name: &str, value: &str) -> &mut Self {
        let mut w = Sanitizing(&mut self.buf);
        let _ = w.write_str(name);
        let _ = w.write_str(": ");
        let _ = w.write_str(value);
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    /// Finishes: writes Content-Length (and Content-Type if the body is non-empty and
    /// `content_type` is Some), the blank line and the body. The builder is left empty.
    pub fn finish(&mut self, content_type: Option<&str>, body: &[u8]) -> Bytes {
        if !body.is_empty()
            && let Some(ct) = content_type
        {
            self.raw_header_line("Content-Type", ct);
        }
        self.header("Content-Length", body.len());
        self.buf.extend_from_slice(b"\r\n");
        self.buf.extend_from_slice(body);
        Bytes::from(std::mem::take(&mut self.buf))
    }

    /// Bytes written so far (for tests and logging).
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }
}

/// Reason phrases of RFC 3261 §21 and the extensions we emit.
pub fn default_reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Conditional Request Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        417 => "Unknown Resource-Priority",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        428 => "Use Identity Header",
        429 => "Provide Referrer Identity",
        430 => "Flow Failed",
        433 => "Anonymity Disallowed",
        436 => "Bad Identity-Info",
        437 => "Unsupported Certificate",
        438 => "Invalid Identity Header",
        439 => "First Hop Lacks Outbound Support",
        440 => "Max-Breadth Exceeded",
        469 => "Bad Info Package",
        470 => "Consent Needed",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        494 => "Security Agreement Required",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        555 => "Push Notification Service Not Supported",
        580 => "Precondition Failure",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        607 => "Unwanted",
        608 => "Rejected",
        s if s < 200 => "Session Progress",
        s if s < 300 => "OK",
        s if s < 400 => "Redirection",
        s if s < 500 => "Client Error",
        s if s < 600 => "Server Error",
        _ => "Global Failure",
    }
}

fn push_param(out: &mut String, name: &str, value: Option<&str>) {
    out.push(';');
    out.push_str(name);
    if let Some(v) = value {
        out.push('=');
        if !v.is_empty()
            && v.bytes()
                .all(|c| is_token_char(c) || matches!(c, b':' | b'[' | b']'))
        {
            out.push_str(v);
        } else {
            // Params strips the quotes but keeps quoted-pairs, so re-quoting is exact.
            out.push('"');
            out.push_str(v);
            out.push('"');
        }
    }
}

/// The Via value rewritten for a request received from `from`: RFC 3261 §18.2.1 adds
/// `received` when the sent-by host is not the source address; RFC 3581 §4 fills a bare
/// `rport` with the source port (and then always adds `received`).
pub(crate) fn via_with_received(via: &Via<'_>, from: SocketAddr) -> String {
    let src = from.ip().to_canonical();
    let sent_by_ip = via
        .host_unbracketed()
        .parse::<IpAddr>()
        .ok()
        .map(|ip| ip.to_canonical());
    let rport = via.param("rport");
    let add_received = sent_by_ip != Some(src) || rport.is_some();
    let mut out = String::with_capacity(via.raw.len() + 48);
    out.push_str(&unfold(via.protocol));
    out.push('/');
    out.push_str(via.transport);
    out.push(' ');
    out.push_str(via.host);
    if let Some(p) = via.port {
        let _ = write!(out, ":{p}");
    }
    for (n, v) in Params::new(via.params).map_while(Result::ok) {
        if n.eq_ignore_ascii_case("received") && add_received {
            continue;
        }
        if n.eq_ignore_ascii_case("rport") && v.is_none() {
            let _ = write!(out, ";rport={}", from.port());
            continue;
        }
        push_param(&mut out, n, v);
    }
    if add_received {
        let _ = write!(out, ";received={src}");
    }
    out
}

/// RFC 3261 §8.2.6.2: a response to `req` copying every Via (in order), From, To (adding
/// `;tag=to_tag` when given and To has no tag yet), Call-ID, CSeq. When `received_from` is
/// Some, the TOP Via gets `;received=IP` (RFC 3261 §18.2.1, when the host differs) and, if it
/// carries a bare `;rport`, `;rport=PORT` (RFC 3581 §4). Caller then adds headers and finish().
pub fn response_to(
    req: &Message,
    status: u16,
    reason: &str,
    to_tag: Option<&str>,
    received_from: Option<SocketAddr>,
) -> MessageBuilder {
    let mut b = MessageBuilder::response(status, reason);
    let mut first = true;
    for v in req.headers("Via") {
        if first && let Some(src) = received_from {
            let mut parts = crate::header::CommaSplit::new(v);
            let mut line = match parts.next().and_then(|t| Via::parse(t).ok()) {
                Some(top) => via_with_received(&top, src),
                None => unfold(v).into_owned(),
            };
            for rest in parts {
                line.push_str(", ");
                line.push_str(&unfold(rest));
            }
            b.raw_header_line("Via", &line);
        } else {
            b.raw_header_line("Via", &unfold(v));
        }
        first = false;
    }
    b.raw_header_line("From", &unfold(req.header("From").unwrap_or("")));
    let to = unfold(req.header("To").unwrap_or(""));
    match to_tag {
        Some(tag) if req.to().tag().is_none() => {
            let _ = b.header("To", format_args!("{to};tag={tag}"));
        }
        _ => {
            b.raw_header_line("To", &to);
        }
    }
    b.raw_header_line("Call-ID", req.call_id());
    let (n, m) = req.cseq();
    b.header("CSeq", format_args!("{n} {m}"));
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_reparses() {
        let mut b = MessageBuilder::request(&Method::Options, "sip:bob@example.com");
        b.header("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx;rport")
            .raw_header_line("From", "<sip:a@example.com>;tag=1")
            .raw_header_line("To", "<sip:bob@example.com>")
            .raw_header_line("Call-ID", "c1")
            .header("CSeq", "1 OPTIONS")
            .header("Subject", "evil\r\nInjected: yes");
        let bytes = b.finish(Some("text/plain"), b"hi");
        let m = Message::parse_datagram(bytes).unwrap();
        assert_eq!(m.body(), b"hi");
        assert_eq!(m.content_type(), Some("text/plain"));
        assert_eq!(m.header("Injected"), None);

        let r = response_to(
            &m,
            200,
            "OK",
            Some("xyz"),
            Some("203.0.113.9:6000".parse().unwrap()),
        )
        .finish(None, b"");
        let r = Message::parse_datagram(r).unwrap();
        assert_eq!(r.status(), Some(200));
        assert_eq!(r.to().tag(), Some("xyz"));
        let v = r.top_via();
        assert_eq!(v.received(), Some("203.0.113.9"));
        assert_eq!(v.rport(), Some(6000));
        assert_eq!(v.branch(), Some("z9hG4bKx"));
        assert_eq!(r.cseq(), (1, &Method::Options));
        assert_eq!(r.content_length(), Some(0));
    }

    #[test]
    fn received_only_when_host_differs() {
        let v = Via::parse("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx").unwrap();
        assert_eq!(
            via_with_received(&v, "192.0.2.1:5060".parse().unwrap()),
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx"
        );
        let v = Via::parse("SIP/2.0/TCP host.example.com;branch=z9hG4bKx").unwrap();
        assert_eq!(
            via_with_received(&v, "[2001:db8::1]:5060".parse().unwrap()),
            "SIP/2.0/TCP host.example.com;branch=z9hG4bKx;received=2001:db8::1"
        );
    }
}
