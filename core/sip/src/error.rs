//! The crate's error type, and the stateless answer to a malformed request.

use std::fmt;

use bytes::Bytes;

use crate::builder::{MessageBuilder, default_reason};
use crate::header::{CommaSplit, NameAddr, Params, Via, is_token, trim_lws};
use crate::message::{HeaderKind, Method};

/// Everything this crate can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A peer sent bytes that are not a well-formed SIP message.
    #[error("malformed SIP message: {0}")]
    Parse(#[from] ParseError),
    /// A transaction-layer failure (local misuse or a peer violating RFC 3261 §17).
    #[error("transaction error: {0}")]
    Transaction(String),
    /// Digest authentication failure (RFC 2617 / RFC 8760).
    #[error("authentication error: {0}")]
    Auth(String),
}

/// Why a message was refused; `detail` names the offending element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub kind: ParseErrorKind,
    pub detail: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The bytes end before the header section does.
    Incomplete,
    /// Nothing that looks like a SIP start line (keep-alive noise, another protocol): drop.
    NotSip,
    BadStartLine,
    /// A SIP version other than 2.0 (RFC 3261 §8.2.2 has no number, RFC 4475 §3.1.2.16: 505).
    UnsupportedVersion,
    BadUri,
    BadHeader,
    MissingHeader,
    DuplicateHeader,
    BadContentLength,
    CseqMethodMismatch,
    /// Any defect in a response: RFC 4475 §3.1.2.5/§3.1.2.19 say to drop it silently.
    ResponseMalformed,
    /// The message is larger than this parser is willing to buffer.
    TooLarge,
}

impl ParseError {
    pub const fn new(kind: ParseErrorKind, detail: &'static str) -> Self {
        ParseError { kind, detail }
    }

    /// The status a UAS answers a malformed REQUEST with: 400, or 505 for a bad version
    /// (RFC 4475 §3.1.2.16); None when the input must be silently dropped (malformed
    /// responses, garbage with no request line).
    pub fn status(&self) -> Option<u16> {
        match self.kind {
            ParseErrorKind::ResponseMalformed | ParseErrorKind::NotSip => None,
            ParseErrorKind::UnsupportedVersion => Some(505),
            ParseErrorKind::TooLarge => Some(513),
            _ => Some(400),
        }
    }

    /// RFC 3261 §8.2.6 / RFC 4475: a stateless error response to a malformed request, built from
    /// whatever Via, From, To, Call-ID and CSeq could be recovered from `raw` (adds a To tag).
    /// None when no response is due or too little could be recovered to address one (no Via).
    ///
    /// The response always re-parses: a header that does not validate is salvaged (a Via keeps
    /// its sent-by and valid params) or replaced by a placeholder; the client matches it by
    /// branch and CSeq method (RFC 3261 §17.1.3), which are kept whenever they are readable.
    pub fn stateless_response(&self, raw: &[u8]) -> Option<Bytes> {
        let status = self.status()?;
        let rec = Recovered::scan(raw)?;
        if rec.vias.is_empty() {
            return None;
        }
        let mut b = MessageBuilder::response(status, default_reason(status));
        for v in &rec.vias {
            b.raw_header_line("Via", v);
        }
        let hash = fnv1a(raw);
        let from = rec.from.and_then(salvage_name_addr).unwrap_or_else(|| {
            format!(
                "<sip:anonymous@anonymous.invalid>;tag=sy{:x}",
                hash ^ 0x5a5a
            )
        });
        let mut to = rec
            .to
            .and_then(salvage_name_addr)
            .unwrap_or_else(|| "<sip:anonymous@anonymous.invalid>".to_owned());
        if NameAddr::parse(&to).ok().and_then(|n| n.tag()).is_none() {
            to = format!("{to};tag=sy{hash:x}");
        }
        b.raw_header_line("From", &from);
        b.raw_header_line("To", &to);
        let call_id = rec
            .call_id
            .filter(|c| crate::message::valid_call_id(c))
            .map(str::to_owned)
            .unwrap_or_else(|| format!("invalid.{hash:x}"));
        b.raw_header_line("Call-ID", &call_id);
        let cseq = rec
            .cseq
            .filter(|c| crate::message::parse_cseq(c).is_ok())
            .map(unfold)
            .unwrap_or_else(|| format!("{} {}", rec.cseq_num.unwrap_or(0), rec.method));
        b.raw_header_line("CSeq", &cseq);
        Some(b.finish(None, b""))
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.detail)
    }
}

impl std::error::Error for ParseError {}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &c| {
        (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn unfold(s: &str) -> String {
    crate::header::unfold(s).into_owned()
}

/// A From/To value that re-parses: as is, or its `<uri>` and whichever params are valid.
fn salvage_name_addr(v: &str) -> Option<String> {
    let v = unfold(v);
    if NameAddr::parse(&v).is_ok() {
        return Some(v);
    }
    let lt = v.find('<')?;
    let gt = v[lt..].find('>')? + lt;
    let uri = v[lt + 1..gt].trim();
    crate::uri::Uri::parse(uri).ok()?;
    let mut out = format!("<{uri}>");
    push_valid_params(&mut out, &v[gt + 1..]);
    Some(out)
}

fn push_valid_params(out: &mut String, params: &str) {
    for seg in params.split(';').skip(1) {
        let one = format!(";{}", seg.trim());
        if let Some(Ok((n, v))) = Params::new(&one).next()
            && Params::new(&one).nth(1).is_none()
        {
            out.push(';');
            out.push_str(n);
            if let Some(v) = v {
                out.push('=');
                if is_token(v)
                    || v.bytes()
                        .all(|c| c.is_ascii_hexdigit() || matches!(c, b':' | b'.' | b'[' | b']'))
                {
                    out.push_str(v);
                } else {
                    out.push('"');
                    out.push_str(&v.replace(['"', '\\'], ""));
                    out.push('"');
                }
            }
        }
    }
}

/// Headers read back from a message the strict parser refused.
struct Recovered<'a> {
    method: Method,
    vias: Vec<String>,
    from: Option<&'a str>,
    to: Option<&'a str>,
    call_id: Option<&'a str>,
    cseq: Option<&'a str>,
    cseq_num: Option<u32>,
}

impl<'a> Recovered<'a> {
    fn scan(raw: &'a [u8]) -> Option<Recovered<'a>> {
        let start = raw.iter().position(|&c| c != b'\r' && c != b'\n')?;
        let raw = &raw[start..];
        // Only the header section; stop at the first empty line or invalid UTF-8.
        let head_end = find_head_end(raw).unwrap_or(raw.len());
        let head = match std::str::from_utf8(&raw[..head_end]) {
            Ok(h) => h,
            Err(e) => std::str::from_utf8(&raw[..e.valid_up_to()]).ok()?,
        };
        let mut lines = head.split('\n');
        let first_raw = lines.next()?;
        let first = first_raw.trim_end_matches('\r');
        let method = first.split(' ').next().filter(|m| is_token(m))?;
        let mut rec = Recovered {
            method: Method::from_token(method),
            vias: Vec::new(),
            from: None,
            to: None,
            call_id: None,
            cseq: None,
            cseq_num: None,
        };
        // Re-join folded lines: work on (name, value) pairs where value spans continuation lines.
        let mut entries: Vec<(&str, usize, usize)> = Vec::new();
        let mut off = first_raw.len() + 1;
        for line in lines {
            let lstart = off;
            off += line.len() + 1;
            let l = line.trim_end_matches('\r');
            if l.starts_with([' ', '\t']) {
                if let Some(last) = entries.last_mut() {
                    last.2 = lstart + l.len();
                }
                continue;
            }
            if let Some(c) = l.find(':') {
                let name = l[..c].trim_end_matches([' ', '\t']);
                entries.push((name, lstart + c + 1, lstart + l.len()));
            }
        }
        for (name, vs, ve) in entries {
            let Some(value) = head.get(vs..ve.min(head.len())) else {
                continue;
            };
            let value = trim_lws(value);
            match HeaderKind::of(name) {
                HeaderKind::Via => {
                    for part in CommaSplit::new(value) {
                        if let Some(v) = salvage_via(part) {
                            rec.vias.push(v);
                        }
                    }
                }
                HeaderKind::From => {
                    rec.from.get_or_insert(value);
                }
                HeaderKind::To => {
                    rec.to.get_or_insert(value);
                }
                HeaderKind::CallId => {
                    rec.call_id.get_or_insert(value);
                }
                HeaderKind::CSeq if rec.cseq.is_none() => {
                    rec.cseq = Some(value);
                    rec.cseq_num = value
                        .split(|c: char| !c.is_ascii_digit())
                        .next()
                        .and_then(|n| n.parse().ok());
                }
                _ => {}
            }
        }
        Some(rec)
    }
}

pub(crate) fn find_head_end(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = memchr::memchr(b'\n', &b[i..]) {
        let nl = i + p;
        let next = nl + 1;
        if b.get(next) == Some(&b'\n') {
            return Some(next + 1);
        }
        if b.get(next) == Some(&b'\r') && b.get(next + 1) == Some(&b'\n') {
            return Some(next + 2);
        }
        i = next;
    }
    None
}

/// A Via value that re-parses: as is, or rebuilt from sent-protocol, sent-by and the params
/// that are individually valid (RFC 4475 §3.1.2.1 has `;;,;,,` after the sent-by).
fn salvage_via(part: &str) -> Option<String> {
    let part = unfold(part);
    if let Ok(v) = Via::parse(&part) {
        return Some(format!(
            "SIP/2.0/{} {}{}{}",
            v.transport,
            v.host,
            port_suffix(v.port),
            canonical_params(v.params)
        ));
    }
    // Cut at the first ';' and retry the sent-by alone.
    let semi = part.find(';').unwrap_or(part.len());
    let v = Via::parse(&part[..semi]).ok()?;
    let mut out = format!("SIP/2.0/{} {}{}", v.transport, v.host, port_suffix(v.port));
    push_valid_params(&mut out, &part[semi..]);
    Via::parse(&out).ok()?;
    Some(out)
}

fn port_suffix(p: Option<u16>) -> String {
    p.map(|p| format!(":{p}")).unwrap_or_default()
}

fn canonical_params(params: &str) -> String {
    let mut out = String::new();
    for (n, v) in Params::new(params).map_while(Result::ok) {
        out.push(';');
        out.push_str(n);
        if let Some(v) = v {
            out.push('=');
            if v.bytes()
                .all(|c| crate::header::is_token_char(c) || matches!(c, b':' | b'[' | b']'))
                && !v.is_empty()
            {
                out.push_str(v);
            } else {
                out.push('"');
                out.push_str(v);
                out.push('"');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping() {
        assert_eq!(
            ParseError::new(ParseErrorKind::UnsupportedVersion, "").status(),
            Some(505)
        );
        assert_eq!(
            ParseError::new(ParseErrorKind::ResponseMalformed, "").status(),
            None
        );
        assert_eq!(ParseError::new(ParseErrorKind::NotSip, "").status(), None);
        assert_eq!(
            ParseError::new(ParseErrorKind::BadHeader, "").status(),
            Some(400)
        );
    }

    #[test]
    fn salvages_broken_via() {
        assert_eq!(
            salvage_via("SIP/2.0/UDP 192.0.2.15;;,;,,").as_deref(),
            Some("SIP/2.0/UDP 192.0.2.15")
        );
        assert_eq!(
            salvage_via("SIP/2.0/UDP h:5060;branch=z9hG4bK1;;x=\"a b\"").as_deref(),
            Some("SIP/2.0/UDP h:5060;branch=z9hG4bK1;x=\"a b\"")
        );
    }
}
