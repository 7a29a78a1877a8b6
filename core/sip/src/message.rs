//! The SIP message (RFC 3261 §7): one shared buffer and byte ranges into it.
//!
//! Parsing checks eagerly only what framing and transaction matching rely on (start line, Via,
//! From, To, Call-ID, CSeq, Max-Forwards, Content-Length, Contact); every other header is kept as
//! a (name, value) range and typed on access. Nothing is copied: accessors borrow the buffer.
//!
//! Validating the top Via, From, To and the first Contact already finds where each of their
//! pieces lies; the message keeps those u32 offsets (`*Layout` in header.rs and uri.rs), so
//! `top_via()`, `from()`, `to()` and `contacts()` are range lookups, not second parses.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;

use crate::error::{ParseError, ParseErrorKind as K, find_head_end};
use crate::header::{
    CommaSplit, Contact, ContactLayout, NameAddr, NameAddrLayout, Span, Via, ViaLayout, find_byte,
    is_lws, is_token, is_token_char, trim_lws,
};
use crate::uri::Uri;

/// Largest header section accepted before the blank line (a stream peer sending more is hostile).
pub const MAX_HEAD_LEN: usize = 64 * 1024;
/// Largest Content-Length accepted; bigger answers 513 Message Too Large.
pub const MAX_BODY_LEN: usize = 16 * 1024 * 1024;

/// A SIP method. Matching is exact and case-sensitive (RFC 3261 §7.1): `INVITEX` and `invite`
/// are extension methods, not INVITE.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Info,
    Update,
    Prack,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    Extension(Box<str>),
}

impl Method {
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Extension(s) => s,
        }
    }

    /// Does not validate `s` as a token; the parser does that before calling.
    pub fn from_token(s: &str) -> Method {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Extension(other.into()),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Headers the parser recognises by name, long or compact (RFC 3261 §7.3.3, §20).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeaderKind {
    Via,
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    ContentLength,
    ContentType,
    Contact,
    Expires,
    ContentEncoding,
    Subject,
    Supported,
    Event,
    ReferTo,
    ReferredBy,
    SessionExpires,
    AllowEvents,
    Other,
}

impl HeaderKind {
    pub(crate) fn of(name: &str) -> HeaderKind {
        Self::of_bytes(name.as_bytes())
    }

    pub(crate) fn of_bytes(n: &[u8]) -> HeaderKind {
        use HeaderKind::*;
        let eq = |s: &str| n.eq_ignore_ascii_case(s.as_bytes());
        match n.len() {
            0 => Other,
            1 => match n[0] | 0x20 {
                b'i' => CallId,
                b'm' => Contact,
                b'e' => ContentEncoding,
                b'l' => ContentLength,
                b'c' => ContentType,
                b'f' => From,
                b's' => Subject,
                b'k' => Supported,
                b't' => To,
                b'v' => Via,
                b'o' => Event,
                b'r' => ReferTo,
                b'b' => ReferredBy,
                b'x' => SessionExpires,
                b'u' => AllowEvents,
                _ => Other,
            },
            _ => {
                // (length, first letter) leaves at most one candidate to compare.
                let (want, kind) = match (n.len(), n[0] | 0x20) {
                    (2, b't') => ("to", To),
                    (3, b'v') => ("via", Via),
                    (4, b'f') => ("from", From),
                    (4, b'c') => ("cseq", CSeq),
                    (5, b'e') => ("event", Event),
                    (7, b'c') if n[2] | 0x20 == b'l' => ("call-id", CallId),
                    (7, b'c') => ("contact", Contact),
                    (7, b'e') => ("expires", Expires),
                    (7, b's') => ("subject", Subject),
                    (8, b'r') => ("refer-to", ReferTo),
                    (9, b's') => ("supported", Supported),
                    (11, b'r') => ("referred-by", ReferredBy),
                    (12, b'm') => ("max-forwards", MaxForwards),
                    (12, b'c') => ("content-type", ContentType),
                    (12, b'a') => ("allow-events", AllowEvents),
                    (14, b'c') => ("content-length", ContentLength),
                    (15, b's') => ("session-expires", SessionExpires),
                    (16, b'c') => ("content-encoding", ContentEncoding),
                    _ => return Other,
                };
                if eq(want) { kind } else { Other }
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct HeaderSpan {
    name: Span,
    value: Span,
    kind: HeaderKind,
}

#[derive(Clone, Debug)]
enum StartLine {
    Request { method: Method, uri: Span },
    Response { status: u16, reason: Span },
}

/// A parsed SIP request or response; cheap to clone (the buffer is shared).
#[derive(Clone, Debug)]
pub struct Message {
    buf: Bytes,
    start: StartLine,
    headers: Vec<HeaderSpan>,
    head_len: u32,
    body: Span,
    content_length: Option<u32>,
    call_id: Span,
    cseq_num: u32,
    cseq_method: Method,
    max_forwards: Option<u32>,
    // What validation already worked out, kept so the hot accessors are range lookups:
    // (header index, layout inside that header's value).
    from: (u16, NameAddrLayout),
    to: (u16, NameAddrLayout),
    top_via: (u16, ViaLayout),
    /// The first Contact value; the others are parsed again on demand (several bindings in one
    /// message are a REGISTER affair, not the call path).
    first_contact: Option<(u16, ContactLayout)>,
    contact_count: u16,
}

fn leading_crlf(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c != b'\r' && c != b'\n')
}

impl Message {
    /// One message from a UDP datagram. Bytes after Content-Length are ignored (RFC 3261 §18.3);
    /// no Content-Length on UDP = body is the rest of the datagram.
    pub fn parse_datagram(buf: Bytes) -> Result<Message, ParseError> {
        if buf.len() > u32::MAX as usize / 2 {
            return Err(ParseError::new(K::TooLarge, "datagram too large"));
        }
        // RFC 3261 §7.5 tells stream receivers to skip CRLFs before the start line; datagram
        // keep-alives (RFC 5626 §4.4.1) are CRLFs too, so do the same here.
        let skip = leading_crlf(&buf).ok_or(ParseError::new(K::NotSip, "empty datagram"))?;
        let b = &buf[skip..];
        let mut m = parse_head(b)?;
        let head = m.head_len as usize;
        let end = match m.content_length {
            Some(cl) => {
                let end = head + cl as usize;
                if end > b.len() {
                    return Err(m.fail(K::BadContentLength, "Content-Length exceeds the datagram"));
                }
                end
            }
            None => b.len(),
        };
        m.body = Span(head as u32, end as u32);
        m.buf = buf.slice(skip..skip + end);
        Ok(m)
    }

    /// Stream (TCP) framing: Ok(None) = need more bytes; Ok(Some((msg, consumed))). Leading
    /// CRLFs (keep-alive) are skipped and counted in `consumed`. Missing Content-Length on a
    /// stream is an error (RFC 3261 §18.3): the connection cannot be re-synchronised.
    pub fn parse_stream(buf: &[u8]) -> Result<Option<(Message, usize)>, ParseError> {
        let Some(skip) = leading_crlf(buf) else {
            return Ok(None);
        };
        let rest = &buf[skip..];
        let Some(head_len) = find_head_end(rest) else {
            if rest.len() > MAX_HEAD_LEN {
                return Err(ParseError::new(K::TooLarge, "header section too long"));
            }
            // A start line that cannot become SIP is refused at once, not after 64 KiB.
            if let Some(nl) = memchr::memchr(b'\n', rest) {
                let line = &rest[..nl];
                let is_resp = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/");
                if !is_resp
                    && !line
                        .iter()
                        .take_while(|&&c| c != b' ')
                        .all(|&c| is_token_char(c))
                {
                    return Err(ParseError::new(K::NotSip, "not a SIP start line"));
                }
            }
            return Ok(None);
        };
        if head_len > MAX_HEAD_LEN {
            return Err(ParseError::new(K::TooLarge, "header section too long"));
        }
        let mut m = parse_head(&rest[..head_len])?;
        let Some(cl) = m.content_length else {
            return Err(m.fail(K::MissingHeader, "no Content-Length on a stream transport"));
        };
        let total = head_len + cl as usize;
        if rest.len() < total {
            return Ok(None);
        }
        m.body = Span(head_len as u32, total as u32);
        m.buf = Bytes::copy_from_slice(&rest[..total]);
        Ok(Some((m, skip + total)))
    }

    fn fail(&self, kind: K, detail: &'static str) -> ParseError {
        fail(self.is_request(), kind, detail)
    }

    #[inline]
    fn s(&self, span: Span) -> &str {
        // The header section was checked to be UTF-8 and spans fall on ASCII delimiters.
        std::str::from_utf8(&self.buf[span.range()]).unwrap_or("")
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI as written (requests only).
    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(self.s(*uri)),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI parsed (it was validated at parse time).
    pub fn request_uri_parsed(&self) -> Option<Uri<'_>> {
        self.request_uri().and_then(|u| Uri::parse(u).ok())
    }

    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { status, .. } => Some(*status),
            StartLine::Request { .. } => None,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match &self.start {
            StartLine::Response { reason, .. } => Some(self.s(*reason)),
            StartLine::Request { .. } => None,
        }
    }

    pub fn call_id(&self) -> &str {
        self.s(self.call_id)
    }

    pub fn cseq(&self) -> (u32, &Method) {
        (self.cseq_num, &self.cseq_method)
    }

    /// The value of header number `idx` (an index the parser recorded).
    #[inline]
    fn value_of(&self, idx: u16) -> &str {
        self.headers
            .get(usize::from(idx))
            .map_or("", |h| self.s(h.value))
    }

    fn name_addr(&self, (idx, layout): (u16, NameAddrLayout)) -> NameAddr<'_> {
        let v = self.value_of(idx);
        let n = layout.view(v);
        // The cache must agree with a fresh parse; debug builds (all the tests) check it.
        #[cfg(debug_assertions)]
        assert_eq!(Ok(&n), NameAddr::parse(v).as_ref(), "cached name-addr");
        n
    }

    pub fn from(&self) -> NameAddr<'_> {
        self.name_addr(self.from)
    }

    pub fn to(&self) -> NameAddr<'_> {
        self.name_addr(self.to)
    }

    /// The first Via value: where responses go (RFC 3261 §18.2.2) and the branch that names
    /// the transaction (§17.2.3).
    pub fn top_via(&self) -> Via<'_> {
        let (idx, layout) = self.top_via;
        let v = self.value_of(idx);
        let via = layout.view(v);
        #[cfg(debug_assertions)]
        assert_eq!(
            CommaSplit::new(v).next().map(Via::parse),
            Some(Ok(via.clone())),
            "cached top Via"
        );
        via
    }

    /// Every Via value in order, across headers and comma lists.
    pub fn vias(&self) -> Vec<Via<'_>> {
        self.headers("Via")
            .flat_map(CommaSplit::new)
            .filter_map(|v| Via::parse(v).ok())
            .collect()
    }

    pub fn max_forwards(&self) -> Option<u32> {
        self.max_forwards
    }

    /// Expires header (RFC 3261 §20.19); None when absent or not a 32-bit delta-seconds
    /// (RFC 4475 §3.1.2.4 lets an overlarge value count as absent).
    pub fn expires(&self) -> Option<u32> {
        let v = self.header("Expires")?;
        if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        v.parse().ok()
    }

    pub fn content_length(&self) -> Option<u32> {
        self.content_length
    }

    /// First occurrence's value, trimmed (folded values keep their line breaks).
    pub fn header(&self, name: &str) -> Option<&str> {
        let kind = HeaderKind::of(name);
        self.headers
            .iter()
            .find(|h| {
                h.kind == kind
                    && (kind != HeaderKind::Other || self.s(h.name).eq_ignore_ascii_case(name))
            })
            .map(|h| self.s(h.value))
    }

    /// Every occurrence; the name is case-insensitive and compact forms are equal to long ones.
    pub fn headers<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        let kind = HeaderKind::of(name);
        self.headers
            .iter()
            .filter(move |h| {
                h.kind == kind
                    && (kind != HeaderKind::Other || self.s(h.name).eq_ignore_ascii_case(name))
            })
            .map(move |h| self.s(h.value))
    }

    /// Comma-separated values of every occurrence, split outside quotes and `<>`; empty
    /// elements are skipped.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.headers(name)
            .flat_map(CommaSplit::new)
            .filter(|v| !v.is_empty())
    }

    /// (name as written, value) in order.
    pub fn iter_headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .iter()
            .map(move |h| (self.s(h.name), self.s(h.value)))
    }

    /// All Contact values; `Contact::Star` for `*`.
    pub fn contacts(&self) -> Result<Vec<Contact<'_>>, ParseError> {
        match (self.contact_count, self.first_contact) {
            (0, _) => Ok(Vec::new()),
            (1, Some((idx, layout))) => {
                let v = self.value_of(idx);
                let c = layout.view(v);
                #[cfg(debug_assertions)]
                assert_eq!(
                    CommaSplit::new(v).map(Contact::parse).collect::<Vec<_>>(),
                    [Ok(c.clone())],
                    "cached Contact"
                );
                Ok(vec![c])
            }
            _ => self
                .header_values("Contact")
                .map(|v| Contact::parse(v).map_err(|d| self.fail(K::BadHeader, d)))
                .collect(),
        }
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header("Content-Type")
    }

    pub fn body(&self) -> &[u8] {
        &self.buf[self.body.range()]
    }

    /// The body as a zero-copy slice of the message buffer.
    pub fn body_bytes(&self) -> Bytes {
        self.buf.slice(self.body.range())
    }

    /// The message exactly as received (without bytes after Content-Length).
    pub fn as_bytes(&self) -> &Bytes {
        &self.buf
    }

    /// The header section, start line included, up to and including the blank line.
    pub fn head_len(&self) -> usize {
        self.head_len as usize
    }

    /// The top Via value with `received`/`rport` set for a request that came from `from`
    /// (RFC 3261 §18.2.1, RFC 3581 §4).
    pub fn top_via_with_received(&self, from: SocketAddr) -> String {
        crate::builder::via_with_received(&self.top_via(), from)
    }
}

fn fail(is_request: bool, kind: K, detail: &'static str) -> ParseError {
    if is_request {
        ParseError::new(kind, detail)
    } else {
        ParseError::new(K::ResponseMalformed, detail)
    }
}

/// The next line from `i`: (end excluding CR, start of the next line). Ok(None) = no terminator
/// yet. A CR must be followed by LF; a bare LF is tolerated (RFC 3261 §7 asks for CRLF but
/// RFC 3261 §18.3 robustness and real peers favour leniency here).
#[inline]
fn next_line(b: &[u8], i: usize) -> Result<Option<(usize, usize)>, ()> {
    match memchr::memchr2(b'\r', b'\n', &b[i..]) {
        None => Ok(None),
        Some(p) => {
            let p = i + p;
            if b[p] == b'\n' {
                Ok(Some((p, p + 1)))
            } else if b.get(p + 1) == Some(&b'\n') {
                Ok(Some((p, p + 2)))
            } else if p + 1 == b.len() {
                Ok(None)
            } else {
                Err(())
            }
        }
    }
}

fn is_sip_version_like(v: &str) -> bool {
    let Some(rest) = v
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("SIP/"))
        .map(|_| &v[4..])
    else {
        return false;
    };
    match rest.split_once('.') {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// RFC 3261 §20.16: `CSeq = 1*DIGIT LWS Method`, the number below 2^31 by §8.1.1.5 but
/// accepted up to 2^32-1 (RFC 4475 §3.1.2.4: beyond that is malformed).
pub(crate) fn parse_cseq(v: &str) -> Result<(u32, &str), &'static str> {
    let v = trim_lws(v);
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == 0 {
        return Err("CSeq without a number");
    }
    let num = parse_u32_digits(&v[..i]).ok_or("CSeq number out of range")?;
    let ms = {
        let mut j = i;
        while j < b.len() && is_lws(b[j]) {
            j += 1;
        }
        j
    };
    if ms == i {
        return Err("CSeq without a method");
    }
    let method = &v[ms..];
    if !is_token(method) {
        return Err("CSeq method is not a token");
    }
    Ok((num, method))
}

fn parse_u32_digits(d: &str) -> Option<u32> {
    let d = d.trim_start_matches('0');
    if d.len() > 10 {
        return None;
    }
    if d.is_empty() {
        return Some(0);
    }
    d.parse::<u64>().ok().and_then(|n| u32::try_from(n).ok())
}

/// RFC 3261 §25.1 `callid = word [ "@" word ]`: visible ASCII without LWS.
pub(crate) fn valid_call_id(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|c| (0x21..0x7f).contains(&c))
}

fn digits_u32(v: &str) -> Option<u32> {
    if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    parse_u32_digits(v)
}

/// Scans and validates the header section at the start of `b` (CRLFs before the start line
/// already skipped). Returns a message without buffer and body; the caller frames the body.
fn parse_head(b: &[u8]) -> Result<Message, ParseError> {
    let is_request = !(b.len() >= 4 && b[..4].eq_ignore_ascii_case(b"SIP/"));
    let bad = |kind: K, detail: &'static str| fail(is_request, kind, detail);

    let (l0_end, mut i) = match next_line(b, 0) {
        Ok(Some(x)) => x,
        Ok(None) => {
            // Not even a start line: decide between a truncated request and garbage.
            let sp = b.iter().position(|&c| c == b' ').unwrap_or(b.len());
            let kind = if is_request
                && sp > 0
                && b[..sp].iter().all(|&c| is_token_char(c))
                && sp < b.len()
            {
                K::Incomplete
            } else {
                K::NotSip
            };
            return Err(bad(kind, "no complete start line"));
        }
        Err(()) => return Err(bad(K::NotSip, "bare CR in start line")),
    };

    let mut headers: Vec<HeaderSpan> = Vec::with_capacity(20);
    let head_len;
    loop {
        let (le, nx) = match next_line(b, i) {
            Ok(Some(x)) => x,
            Ok(None) => {
                return Err(bad(
                    K::Incomplete,
                    "header section not terminated by an empty line",
                ));
            }
            Err(()) => return Err(bad(K::BadHeader, "bare CR in header section")),
        };
        if le == i {
            head_len = nx;
            break;
        }
        if b[i] == b' ' || b[i] == b'\t' {
            // RFC 3261 §7.3.1 folding: the value continues on this line.
            let Some(last) = headers.last_mut() else {
                return Err(bad(
                    K::BadHeader,
                    "continuation line before the first header",
                ));
            };
            last.value.1 = le as u32;
        } else {
            let Some(c) = memchr::memchr(b':', &b[i..le]) else {
                return Err(bad(K::BadHeader, "header line without a colon"));
            };
            let colon = i + c;
            let mut ne = colon;
            while ne > i && (b[ne - 1] == b' ' || b[ne - 1] == b'\t') {
                ne -= 1;
            }
            let name = &b[i..ne];
            if name.is_empty() || !name.iter().all(|&c| is_token_char(c)) {
                return Err(bad(K::BadHeader, "header name is not a token"));
            }
            headers.push(HeaderSpan {
                name: Span(i as u32, ne as u32),
                value: Span(colon as u32 + 1, le as u32),
                kind: HeaderKind::of_bytes(name),
            });
        }
        i = nx;
    }
    if head_len > u32::MAX as usize / 2 || headers.len() > u16::MAX as usize {
        return Err(bad(K::TooLarge, "header section too large"));
    }
    let head = std::str::from_utf8(&b[..head_len]).map_err(|_| {
        if is_request && std::str::from_utf8(&b[..l0_end]).is_err() {
            bad(K::NotSip, "start line is not UTF-8")
        } else {
            bad(K::BadHeader, "header section is not UTF-8")
        }
    })?;
    for h in &mut headers {
        let hb = head.as_bytes();
        let (mut s, mut e) = (h.value.0 as usize, h.value.1 as usize);
        while s < e && is_lws(hb[s]) {
            s += 1;
        }
        while e > s && is_lws(hb[e - 1]) {
            e -= 1;
        }
        h.value = Span(s as u32, e as u32);
    }

    let start = parse_start_line(&head[..l0_end])?;
    let req_method = match &start {
        StartLine::Request { method, .. } => Some(method),
        StartLine::Response { .. } => None,
    };

    let (mut from, mut to, mut call_id, mut cseq, mut mf, mut cl, mut ct) =
        (None, None, None, None, None, None, false);
    let mut top_via = None;
    let (mut first_contact, mut contact_count) = (None, 0u16);
    for (idx, h) in headers.iter().enumerate() {
        let v = &head[h.value.range()];
        // `headers.len()` was checked to fit in u16 above.
        let idx = idx as u16;
        match h.kind {
            HeaderKind::Via => {
                for part in CommaSplit::new(v) {
                    if part.is_empty() {
                        return Err(bad(K::BadHeader, "empty Via value"));
                    }
                    let at = Span::within(v, part).0 as usize;
                    let via = ViaLayout::parse_at(part, at).map_err(|d| bad(K::BadHeader, d))?;
                    if top_via.is_none() {
                        top_via = Some((idx, via));
                    }
                }
            }
            HeaderKind::From | HeaderKind::To => {
                let slot = if h.kind == HeaderKind::From {
                    &mut from
                } else {
                    &mut to
                };
                if slot.is_some() {
                    return Err(bad(
                        K::DuplicateHeader,
                        if h.kind == HeaderKind::From {
                            "duplicate From"
                        } else {
                            "duplicate To"
                        },
                    ));
                }
                let n = NameAddrLayout::parse_at(v, 0).map_err(|d| bad(K::BadHeader, d))?;
                *slot = Some((idx, n));
            }
            HeaderKind::CallId => {
                if call_id.is_some() {
                    return Err(bad(K::DuplicateHeader, "duplicate Call-ID"));
                }
                if !valid_call_id(v) {
                    return Err(bad(K::BadHeader, "malformed Call-ID"));
                }
                call_id = Some(h.value);
            }
            HeaderKind::CSeq => {
                if cseq.is_some() {
                    return Err(bad(K::DuplicateHeader, "duplicate CSeq"));
                }
                let (n, m) = parse_cseq(v).map_err(|d| bad(K::BadHeader, d))?;
                cseq = Some((n, m));
            }
            HeaderKind::MaxForwards => {
                if mf.is_some() {
                    return Err(bad(K::DuplicateHeader, "duplicate Max-Forwards"));
                }
                // RFC 3261 §20.22: 0-255.
                let n = digits_u32(v)
                    .filter(|&n| n <= 255)
                    .ok_or_else(|| bad(K::BadHeader, "malformed Max-Forwards"))?;
                mf = Some(n);
            }
            HeaderKind::ContentLength => {
                // RFC 4475 §3.3.9: conflicting (or repeated) lengths make framing unrecoverable.
                if cl.is_some() {
                    return Err(bad(K::BadContentLength, "multiple Content-Length headers"));
                }
                let n = digits_u32(v)
                    .ok_or_else(|| bad(K::BadContentLength, "malformed Content-Length"))?;
                if n as usize > MAX_BODY_LEN {
                    return Err(bad(K::TooLarge, "Content-Length too large"));
                }
                cl = Some(n);
            }
            HeaderKind::ContentType => {
                if ct {
                    return Err(bad(K::DuplicateHeader, "duplicate Content-Type"));
                }
                if v.is_empty() {
                    return Err(bad(K::BadHeader, "empty Content-Type"));
                }
                ct = true;
            }
            HeaderKind::Contact => {
                for part in CommaSplit::new(v) {
                    if part.is_empty() {
                        return Err(bad(K::BadHeader, "empty Contact value"));
                    }
                    let at = Span::within(v, part).0 as usize;
                    let c = ContactLayout::parse_at(part, at).map_err(|d| bad(K::BadHeader, d))?;
                    if first_contact.is_none() {
                        first_contact = Some((idx, c));
                    }
                    contact_count = contact_count.saturating_add(1);
                }
            }
            _ => {}
        }
    }
    let top_via = top_via.ok_or_else(|| bad(K::MissingHeader, "no Via"))?;
    let from = from.ok_or_else(|| bad(K::MissingHeader, "no From"))?;
    let to = to.ok_or_else(|| bad(K::MissingHeader, "no To"))?;
    let call_id = call_id.ok_or_else(|| bad(K::MissingHeader, "no Call-ID"))?;
    let (cseq_num, cseq_m) = cseq.ok_or_else(|| bad(K::MissingHeader, "no CSeq"))?;
    let cseq_method = match req_method {
        Some(m) => {
            // RFC 3261 §8.1.1.5 / RFC 4475 §3.1.2.17.
            if m.as_str() != cseq_m {
                return Err(bad(
                    K::CseqMethodMismatch,
                    "CSeq method differs from the Request-Line",
                ));
            }
            m.clone()
        }
        None => Method::from_token(cseq_m),
    };
    Ok(Message {
        buf: Bytes::new(),
        start,
        headers,
        head_len: head_len as u32,
        body: Span::default(),
        content_length: cl,
        call_id,
        cseq_num,
        cseq_method,
        max_forwards: mf,
        from,
        to,
        top_via,
        first_contact,
        contact_count,
    })
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    let lb = line.as_bytes();
    if lb.len() >= 4 && lb[..4].eq_ignore_ascii_case(b"SIP/") {
        // RFC 3261 §7.2: SIP-Version SP Status-Code SP Reason-Phrase.
        let r = |d| ParseError::new(K::ResponseMalformed, d);
        let sp = find_byte(lb, b' ').ok_or(r("status line without a code"))?;
        if !line[..sp].eq_ignore_ascii_case("SIP/2.0") {
            return Err(r("unsupported SIP version in a response"));
        }
        let rest = &line[sp + 1..];
        let rb = rest.as_bytes();
        if rb.len() < 3
            || !rb[..3].iter().all(u8::is_ascii_digit)
            || (rb.len() > 3 && rb[3] != b' ')
        {
            return Err(r("status code is not 3 digits"));
        }
        let status: u16 = rest[..3].parse().map_err(|_| r("bad status code"))?;
        if !(100..=699).contains(&status) {
            return Err(r("status code out of range"));
        }
        let rs = (sp + 1 + 4).min(line.len());
        if line[rs..]
            .bytes()
            .any(|c| c < 0x20 && c != b'\t' || c == 0x7f)
        {
            return Err(r("control character in reason phrase"));
        }
        return Ok(StartLine::Response {
            status,
            reason: Span(rs as u32, line.len() as u32),
        });
    }
    // RFC 3261 §7.1: Method SP Request-URI SP SIP-Version, single spaces only.
    let bad = |d| ParseError::new(K::BadStartLine, d);
    let Some(sp1) = find_byte(lb, b' ') else {
        return Err(ParseError::new(K::NotSip, "not a SIP start line"));
    };
    let method = &line[..sp1];
    if !is_token(method) {
        return Err(ParseError::new(K::NotSip, "not a SIP start line"));
    }
    let rest = &line[sp1 + 1..];
    let sp2 = find_byte(rest.as_bytes(), b' ').ok_or(bad("Request-Line without SIP-Version"))?;
    let uri = &rest[..sp2];
    let version = &rest[sp2 + 1..];
    if uri.is_empty() || version.bytes().any(is_lws) {
        return Err(bad("extra whitespace in Request-Line"));
    }
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(if is_sip_version_like(version) {
            ParseError::new(K::UnsupportedVersion, "SIP version other than 2.0")
        } else {
            bad("malformed SIP-Version")
        });
    }
    let u = Uri::parse(uri)?;
    // RFC 3261 §19.1.5: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11).
    if u.is_sip() && u.headers.is_some() {
        return Err(ParseError::new(K::BadUri, "headers in Request-URI"));
    }
    let us = sp1 + 1;
    Ok(StartLine::Request {
        method: Method::from_token(method),
        uri: Span(us as u32, (us + uri.len()) as u32),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 5\r\n\r\nv=0\r\n";

    #[test]
    fn parses_basic_invite() {
        let m = Message::parse_datagram(Bytes::from_static(INVITE)).unwrap();
        assert!(m.is_request());
        assert_eq!(m.method(), Some(&Method::Invite));
        assert_eq!(m.request_uri(), Some("sip:bob@biloxi.example.com"));
        assert_eq!(m.call_id(), "a84b4c76e66710@pc33.atlanta.example.com");
        assert_eq!(m.cseq(), (314159, &Method::Invite));
        assert_eq!(m.from().tag(), Some("1928301774"));
        assert_eq!(m.to().tag(), None);
        assert_eq!(m.top_via().branch(), Some("z9hG4bK776asdhds"));
        assert_eq!(m.max_forwards(), Some(70));
        assert_eq!(m.body(), b"v=0\r\n");
        assert_eq!(m.content_type(), Some("application/sdp"));
        assert_eq!(m.header("v"), m.header("VIA"));
        assert_eq!(m.header(""), None);
        assert_eq!(m.header("CALL-ID"), m.header("i"));
        assert_eq!(m.header("Content-TYPE"), Some("application/sdp"));
        assert_eq!(m.header("Contacts"), None);
        assert_eq!(m.iter_headers().count(), 9);
    }

    /// The accessors read layouts cached at parse time; check them on the awkward shapes
    /// (folds, quoted-pairs, a Via list, LWS around delimiters) and on the several-Contact
    /// fallback, against values written out by hand.
    #[test]
    fn cached_layouts_read_back() {
        let m = Message::parse_datagram(Bytes::from_static(
            b"REGISTER sip:example.com SIP/2.0\r\n\
v: SIP / 2.0 / TCP  [2001:db8::1] : 5070 ;branch=z9hG4bKa ;rport, SIP/2.0/UDP b.example\r\n\
f:\r\n \"J \\\"R\\\"\"\r\n <sips:j%20r:pw@example.com:5061;lr?h=v> ; tag = 9\r\n\
t: sip:bob@example.com;tag=x\r\n\
i: c1\r\nCSeq: 2 REGISTER\r\n\
m: Bob Smith <sip:bob@192.0.2.4;transport=tcp>;expires=60, <sip:bob@[::1]>\r\n\
l: 0\r\n\r\n",
        ))
        .unwrap();
        let v = m.top_via();
        assert_eq!(
            (v.protocol, v.transport, v.host, v.port),
            ("SIP/2.0", "TCP", "[2001:db8::1]", Some(5070))
        );
        assert_eq!((v.branch(), v.has_rport()), (Some("z9hG4bKa"), true));
        assert_eq!(
            v.raw,
            "SIP / 2.0 / TCP  [2001:db8::1] : 5070 ;branch=z9hG4bKa ;rport"
        );
        let f = m.from();
        assert_eq!(f.display_name.as_deref(), Some("J \"R\""));
        assert_eq!(
            (f.uri.scheme, f.uri.user, f.uri.password),
            ("sips", Some("j%20r"), Some("pw"))
        );
        assert_eq!((f.uri.host, f.uri.port), ("example.com", Some(5061)));
        assert_eq!((f.uri.params, f.uri.headers), (";lr", Some("h=v")));
        assert_eq!((f.params, f.tag()), ("; tag = 9", Some("9")));
        let t = m.to();
        assert_eq!(
            (t.display_name.as_deref(), t.uri.raw, t.tag()),
            (None, "sip:bob@example.com", Some("x"))
        );
        let cs = m.contacts().unwrap();
        assert_eq!(cs.len(), 2);
        let a = cs[0].address().unwrap();
        assert_eq!(a.display_name.as_deref(), Some("Bob Smith"));
        assert_eq!(
            (a.uri.transport(), a.param("expires")),
            (Some("tcp"), Some(Some("60")))
        );
        assert_eq!(cs[1].address().unwrap().uri.host, "[::1]");

        let one = |contact: &str| {
            let raw = format!(
                "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKb\r\nFrom: <sip:a@h>;tag=1\r\n\
                 To: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContact: {contact}\r\n\r\n"
            );
            Message::parse_datagram(Bytes::from(raw)).unwrap()
        };
        assert_eq!(one("  *  ").contacts().unwrap(), [Contact::Star]);
        let m = one("\"\" <sip:x@192.0.2.9:5080>;q=0.5");
        let c = m.contacts().unwrap();
        let a = c[0].address().unwrap();
        assert_eq!(
            (a.display_name.as_ref(), a.uri.port, a.params),
            (None, Some(5080), ";q=0.5")
        );
        assert_eq!(m.top_via().protocol, "SIP/2.0");
        assert_eq!(m.to().tag(), None);
    }

    #[test]
    fn methods_exact() {
        assert_eq!(
            Method::from_token("INVITEX"),
            Method::Extension("INVITEX".into())
        );
        assert_eq!(
            Method::from_token("invite"),
            Method::Extension("invite".into())
        );
        assert_eq!(Method::from_token("ACK").to_string(), "ACK");
    }

    #[test]
    fn stream_framing() {
        let mut data = b"\r\n\r\n".to_vec();
        data.extend_from_slice(INVITE);
        data.extend_from_slice(INVITE);
        for cut in 0..data.len() - INVITE.len() {
            assert!(
                Message::parse_stream(&data[..cut]).unwrap().is_none(),
                "cut {cut}"
            );
        }
        let (m, n) = Message::parse_stream(&data).unwrap().unwrap();
        assert_eq!(n, 4 + INVITE.len());
        assert_eq!(m.body(), b"v=0\r\n");
        let (_, n2) = Message::parse_stream(&data[n..]).unwrap().unwrap();
        assert_eq!(n2, INVITE.len());
    }

    #[test]
    fn status_line_rules() {
        let ok = |s: &str| parse_start_line(s).is_ok();
        assert!(ok("SIP/2.0 200 OK"));
        assert!(ok("SIP/2.0 100 "));
        assert!(ok("SIP/2.0 180"));
        assert!(!ok("SIP/2.0 4294967301 Big"));
        assert!(!ok("SIP/2.0 099 Low"));
        assert!(!ok("SIP/2.0 700 High"));
        assert!(!ok("SIP/2.1 200 OK"));
        assert_eq!(
            parse_start_line("OPTIONS sip:x SIP/7.0").unwrap_err().kind,
            K::UnsupportedVersion
        );
        assert_eq!(
            parse_start_line("OPTIONS sip:x SIP/2.0 ").unwrap_err().kind,
            K::BadStartLine
        );
        assert_eq!(
            parse_start_line("OPTIONS  sip:x SIP/2.0").unwrap_err().kind,
            K::BadStartLine
        );
        assert_eq!(
            parse_start_line("hello world").unwrap_err().kind,
            K::BadStartLine
        );
        assert_eq!(parse_start_line("GET/x").unwrap_err().kind, K::NotSip);
    }
}
