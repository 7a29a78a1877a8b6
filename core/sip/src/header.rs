//! Typed views of the headers transaction matching and dialogs need (Via, From/To/Contact),
//! borrowed from the message buffer, plus the lexical helpers of RFC 3261 §25.1 they share.
//!
//! Values may still hold folded line breaks (RFC 3261 §7.3.1): every helper here treats any run
//! of SP, HTAB, CR and LF as one LWS, so a folded value never needs to be copied to be read.

use std::borrow::Cow;

use crate::uri::{Uri, UriLayout};

/// RFC 3261 §25.1 `token` characters: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~".
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        c += 1;
    }
    t
};

#[inline]
pub(crate) fn is_token_char(b: u8) -> bool {
    TOKEN[b as usize]
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Linear white space inside a header value; CR and LF only ever appear there as part of a fold.
#[inline]
pub(crate) fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

pub(crate) fn trim_lws(s: &str) -> &str {
    let b = s.as_bytes();
    let mut a = 0;
    let mut e = b.len();
    while a < e && is_lws(b[a]) {
        a += 1;
    }
    while e > a && is_lws(b[e - 1]) {
        e -= 1;
    }
    // Both ends sit next to ASCII bytes, so they are char boundaries.
    &s[a..e]
}

/// A byte range `[start, end)` inside a borrowed text (a header value, or the message buffer).
/// u32 keeps the layouts a [`crate::Message`] caches small.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span(pub(crate) u32, pub(crate) u32);

impl Span {
    /// An absent optional piece (`Uri::user`, `Uri::headers`, ...).
    pub(crate) const NONE: Span = Span(u32::MAX, u32::MAX);

    #[inline]
    pub(crate) fn range(self) -> std::ops::Range<usize> {
        self.0 as usize..self.1 as usize
    }

    /// Where `sub`, a slice cut out of `base` (a comma-separated element of a header value),
    /// lies in `base`. An empty `sub` becomes the empty range; a slice from elsewhere is a bug
    /// and becomes NONE, which reads back as "".
    pub(crate) fn within(base: &str, sub: &str) -> Span {
        if sub.is_empty() {
            return Span(0, 0);
        }
        let off = (sub.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
        match off.checked_add(sub.len()) {
            Some(end) if end <= base.len() && end <= u32::MAX as usize => {
                Span(off as u32, end as u32)
            }
            _ => {
                debug_assert!(false, "slice outside its base");
                Span::NONE
            }
        }
    }

    #[inline]
    pub(crate) fn get(self, base: &str) -> &str {
        base.get(self.range()).unwrap_or("")
    }

    #[inline]
    pub(crate) fn get_opt(self, base: &str) -> Option<&str> {
        if self == Span::NONE {
            None
        } else {
            Some(self.get(base))
        }
    }
}

/// The first `needle` in `hay`. URI and header pieces are a few dozen bytes, where a plain
/// loop beats setting up memchr's vector search; long haystacks still go to memchr.
#[inline]
pub(crate) fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    if hay.len() < 64 {
        hay.iter().position(|&c| c == needle)
    } else {
        memchr::memchr(needle, hay)
    }
}

/// RFC 3261 hostname characters (plus '_', which real deployments use).
static HOST: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
        c += 1;
    }
    t
};

fn skip_lws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_lws(b[i]) {
        i += 1;
    }
    i
}

fn skip_token(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_token_char(b[i]) {
        i += 1;
    }
    i
}

/// `i` points at an opening quote; returns the index just past the closing quote.
/// RFC 3261 §25.1: quoted-pair is "\" followed by any octet but CR and LF.
pub(crate) fn skip_quoted(b: &[u8], mut i: usize) -> Option<usize> {
    debug_assert_eq!(b.get(i), Some(&b'"'));
    i += 1;
    while i < b.len() {
        match b[i] {
            b'"' => return Some(i + 1),
            b'\\' => {
                if i + 1 >= b.len() || matches!(b[i + 1], b'\r' | b'\n') {
                    return None;
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    None
}

/// Characters accepted in a generic-param value besides quoted strings: token plus what an
/// IPv6 address needs (RFC 3261 `gen-value = token / host / quoted-string`; RFC 5118 §4.5 asks
/// parsers to accept `received=[2001:db8::9:255]` too).
#[inline]
fn is_param_value_char(b: u8) -> bool {
    is_token_char(b) || matches!(b, b':' | b'[' | b']')
}

/// Iterator over `;name[=value]` parameters (header params: Via, From/To, Contact).
/// Yields `Err(())` once and stops at the first syntax error.
pub(crate) struct Params<'a> {
    s: &'a str,
    i: usize,
    failed: bool,
}

impl<'a> Params<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Params {
            s,
            i: 0,
            failed: false,
        }
    }
}

/// One parameter: name, value (quotes stripped, escapes kept), and the exact text it came from.
pub(crate) type Param<'a> = (&'a str, Option<&'a str>);

impl<'a> Iterator for Params<'a> {
    type Item = Result<Param<'a>, ()>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let b = self.s.as_bytes();
        let mut i = skip_lws(b, self.i);
        if i >= b.len() {
            return None;
        }
        let r = (|| {
            if b[i] != b';' {
                return Err(());
            }
            i = skip_lws(b, i + 1);
            let ns = i;
            i = skip_token(b, i);
            if i == ns {
                return Err(());
            }
            let name = &self.s[ns..i];
            let after_name = i;
            i = skip_lws(b, i);
            if i < b.len() && b[i] == b'=' {
                i = skip_lws(b, i + 1);
                if i < b.len() && b[i] == b'"' {
                    let end = skip_quoted(b, i).ok_or(())?;
                    let v = &self.s[i + 1..end - 1];
                    i = end;
                    Ok((name, Some(v)))
                } else {
                    let vs = i;
                    while i < b.len() && is_param_value_char(b[i]) {
                        i += 1;
                    }
                    if i == vs {
                        return Err(());
                    }
                    Ok((name, Some(&self.s[vs..i])))
                }
            } else {
                i = after_name;
                Ok((name, None))
            }
        })();
        match r {
            Ok(p) => {
                self.i = i;
                Some(Ok(p))
            }
            Err(()) => {
                self.failed = true;
                Some(Err(()))
            }
        }
    }
}

/// Checks `*( SEMI generic-param )` with LWS allowed around the delimiters: the grammar
/// [`Params`] walks, without building the pairs (this runs on every Via, From, To and Contact).
pub(crate) fn validate_params(s: &str) -> Result<(), &'static str> {
    const BAD: &str = "malformed parameter";
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        i = skip_lws(b, i);
        if i >= b.len() {
            return Ok(());
        }
        if b[i] != b';' {
            return Err(BAD);
        }
        i = skip_lws(b, i + 1);
        let ns = i;
        i = skip_token(b, i);
        if i == ns {
            return Err(BAD);
        }
        let after_name = i;
        i = skip_lws(b, i);
        if b.get(i) != Some(&b'=') {
            i = after_name;
            continue;
        }
        i = skip_lws(b, i + 1);
        if b.get(i) == Some(&b'"') {
            i = skip_quoted(b, i).ok_or(BAD)?;
        } else {
            let vs = i;
            while i < b.len() && is_param_value_char(b[i]) {
                i += 1;
            }
            if i == vs {
                return Err(BAD);
            }
        }
    }
}

/// Parameter names are case-insensitive (RFC 3261 §7.3.1).
pub(crate) fn find_param<'a>(s: &'a str, name: &str) -> Option<Option<&'a str>> {
    Params::new(s)
        .map_while(Result::ok)
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Splits a header value at commas outside quoted strings and `<...>` (RFC 3261 §7.3.1).
/// Yields trimmed pieces, empty ones included (callers decide whether `,,` is an error).
pub(crate) struct CommaSplit<'a> {
    s: &'a str,
    i: usize,
    done: bool,
}

impl<'a> CommaSplit<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        CommaSplit {
            s,
            i: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for CommaSplit<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        let b = self.s.as_bytes();
        let start = self.i;
        let mut i = start;
        while let Some(p) = memchr::memchr3(b'"', b'<', b',', &b[i..]) {
            i += p;
            match b[i] {
                b'"' => match skip_quoted(b, i) {
                    Some(e) => i = e,
                    None => break,
                },
                b'<' => match memchr::memchr(b'>', &b[i..]) {
                    Some(q) => i += q + 1,
                    None => break,
                },
                _ => {
                    self.i = i + 1;
                    return Some(trim_lws(&self.s[start..i]));
                }
            }
        }
        self.done = true;
        Some(trim_lws(&self.s[start..]))
    }
}

/// One Via value (RFC 3261 §20.42): `sent-protocol LWS sent-by *( SEMI via-params )`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via<'a> {
    /// "SIP/2.0" for every SIP/2.0 Via, whatever LWS surrounded the slashes.
    pub protocol: &'a str,
    pub transport: &'a str,
    /// Host as written; IPv6 references keep their brackets.
    pub host: &'a str,
    pub port: Option<u16>,
    /// Everything after sent-by, starting at the first `;` (may hold LWS; use [`Via::param`]).
    pub params: &'a str,
    /// The whole Via value.
    pub raw: &'a str,
}

impl<'a> Via<'a> {
    pub fn branch(&self) -> Option<&'a str> {
        self.param("branch").flatten()
    }
    /// `Some(None)` for a flag parameter such as `;rport`. Values are returned as written:
    /// percent escapes are NOT decoded (an echoed branch must match byte for byte).
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        find_param(self.params, name)
    }
    pub fn received(&self) -> Option<&'a str> {
        self.param("received").flatten()
    }
    /// RFC 3581: the client asks for the source port with a bare `;rport`.
    pub fn has_rport(&self) -> bool {
        self.param("rport").is_some()
    }
    pub fn rport(&self) -> Option<u16> {
        self.param("rport").flatten().and_then(|v| v.parse().ok())
    }
    /// The sent-by host without IPv6 brackets.
    pub fn host_unbracketed(&self) -> &'a str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    /// Parses one via-parm (already separated from its comma neighbours).
    pub(crate) fn parse(raw: &'a str) -> Result<Via<'a>, &'static str> {
        ViaLayout::parse_at(raw, 0).map(|l| l.view(raw))
    }
}

/// Where the pieces of a validated Via value lie inside it, so the message can hand out the
/// top Via without parsing it again.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ViaLayout {
    /// NONE for the canonical "SIP/2.0" (written with or without LWS around the slashes).
    protocol: Span,
    transport: Span,
    host: Span,
    params: Span,
    raw: Span,
    port: Option<u16>,
}

impl ViaLayout {
    /// Validates one via-parm and records where its pieces lie, as offsets into the text in
    /// which `raw` starts at `off`.
    pub(crate) fn parse_at(raw: &str, off: usize) -> Result<ViaLayout, &'static str> {
        let b = raw.as_bytes();
        let span = |a: usize, e: usize| Span((off + a) as u32, (off + e) as u32);
        let mut i = skip_lws(b, 0);
        let ps = i;
        i = skip_token(b, i);
        let name = &b[ps..i];
        if name.is_empty() {
            return Err("Via: missing protocol name");
        }
        i = skip_lws(b, i);
        if b.get(i) != Some(&b'/') {
            return Err("Via: malformed sent-protocol");
        }
        i = skip_lws(b, i + 1);
        let vs = i;
        i = skip_token(b, i);
        let version = &b[vs..i];
        if version.is_empty() {
            return Err("Via: missing protocol version");
        }
        i = skip_lws(b, i);
        if b.get(i) != Some(&b'/') {
            return Err("Via: malformed sent-protocol");
        }
        i = skip_lws(b, i + 1);
        let ts = i;
        i = skip_token(b, i);
        if i == ts {
            return Err("Via: missing transport");
        }
        let transport = span(ts, i);
        let protocol = if name.eq_ignore_ascii_case(b"SIP") && version == b"2.0" {
            Span::NONE
        } else {
            span(ps, vs + version.len())
        };
        let j = skip_lws(b, i);
        if j == i {
            return Err("Via: no LWS before sent-by");
        }
        let (host, port, k) = parse_hostport(raw, j, true).ok_or("Via: malformed sent-by")?;
        let host = span(j, j + host.len());
        validate_params(&raw[k..]).map_err(|_| "Via: malformed parameter")?;
        let mut e = b.len();
        while e > ps && is_lws(b[e - 1]) {
            e -= 1;
        }
        let pstart = skip_lws(b, k);
        Ok(ViaLayout {
            protocol,
            transport,
            host,
            params: span(pstart, b.len()),
            raw: span(ps, e),
            port,
        })
    }

    pub(crate) fn view<'a>(&self, base: &'a str) -> Via<'a> {
        Via {
            protocol: self.protocol.get_opt(base).unwrap_or("SIP/2.0"),
            transport: self.transport.get(base),
            host: self.host.get(base),
            port: self.port,
            params: self.params.get(base),
            raw: self.raw.get(base),
        }
    }
}

/// Parses `host [":" port]` at `i`; with `lws`, SWS is allowed around the colon (Via sent-by).
/// Returns host, port and the index after them.
pub(crate) fn parse_hostport(
    s: &str,
    mut i: usize,
    lws: bool,
) -> Option<(&str, Option<u16>, usize)> {
    let b = s.as_bytes();
    let hs = i;
    if b.get(i) == Some(&b'[') {
        let close = memchr::memchr(b']', &b[i..])? + i;
        s[i + 1..close].parse::<std::net::Ipv6Addr>().ok()?;
        i = close + 1;
    } else {
        while i < b.len() && HOST[b[i] as usize] {
            i += 1;
        }
        if i == hs {
            return None;
        }
    }
    let host = &s[hs..i];
    let mut k = if lws { skip_lws(b, i) } else { i };
    if b.get(k) == Some(&b':') {
        k += 1;
        if lws {
            k = skip_lws(b, k);
        }
        let ds = k;
        while k < b.len() && b[k].is_ascii_digit() {
            k += 1;
        }
        if k == ds || k - ds > 5 {
            return None;
        }
        let port: u32 = s[ds..k].parse().ok()?;
        let port = u16::try_from(port).ok()?;
        Some((host, Some(port), k))
    } else {
        Some((host, None, i))
    }
}

/// From, To, Contact, Route and friends (RFC 3261 §20.10 name-addr / addr-spec with params).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Unquoted and unescaped; `None` when absent or empty.
    pub display_name: Option<Cow<'a, str>>,
    pub uri: Uri<'a>,
    /// Header parameters after the address (`;tag=...`, `;expires=`, `;q=`), may hold LWS.
    pub params: &'a str,
    pub raw: &'a str,
}

impl<'a> NameAddr<'a> {
    pub fn tag(&self) -> Option<&'a str> {
        self.param("tag").flatten()
    }
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        find_param(self.params, name)
    }

    pub(crate) fn parse(raw: &'a str) -> Result<NameAddr<'a>, &'static str> {
        NameAddrLayout::parse_at(raw, 0).map(|l| l.view(raw))
    }
}

/// How a name-addr's display name was written; the text is decoded again on each read (a
/// short scan) so the layout never owns an unescaped copy.
#[derive(Clone, Copy, Debug)]
enum DisplaySource {
    Absent,
    /// The inside of the quotes.
    Quoted(Span),
    /// `*(token LWS)`, trimmed.
    Tokens(Span),
}

/// Where the pieces of a validated name-addr (From, To, one Contact) lie inside its value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NameAddrLayout {
    display: DisplaySource,
    uri: UriLayout,
    params: Span,
    raw: Span,
}

impl NameAddrLayout {
    /// Validates a name-addr or addr-spec with its parameters and records where its pieces
    /// lie, as offsets into the text in which `raw` starts at `off`.
    pub(crate) fn parse_at(raw: &str, off: usize) -> Result<NameAddrLayout, &'static str> {
        let rb = raw.as_bytes();
        // Work on the value without surrounding LWS; `so` maps back into `raw`.
        let so = skip_lws(rb, 0);
        let base = off + so;
        let mut se = rb.len();
        while se > so && is_lws(rb[se - 1]) {
            se -= 1;
        }
        let s = &raw[so..se];
        let b = s.as_bytes();
        if b.is_empty() {
            return Err("empty address");
        }
        let span = |a: usize, e: usize| Span((base + a) as u32, (base + e) as u32);
        // The params are trimmed like the value (both ends); `from` is inside `s`.
        let params_span = |from: usize| {
            let a = skip_lws(b, from);
            span(a, b.len())
        };
        let mut display = DisplaySource::Absent;
        let mut i = 0;
        if b[0] == b'"' {
            let end = skip_quoted(b, 0).ok_or("unterminated quoted display name")?;
            if end > 2 {
                display = DisplaySource::Quoted(span(1, end - 1));
            }
            i = skip_lws(b, end);
            if b.get(i) != Some(&b'<') {
                return Err("display name not followed by <");
            }
        } else if b[0] != b'<' {
            let te = skip_token(b, 0);
            if te > 0 && b.get(te) == Some(&b':') {
                // addr-spec form: RFC 3261 §20.10, a URI holding ',', '?' or ';' needs <>,
                // so the URI ends at the first ';' and anything else belongs to the params.
                let mut e = te;
                while e < b.len() && !is_lws(b[e]) && b[e] != b';' {
                    e += 1;
                }
                let us = &b[..e];
                if us
                    .iter()
                    .any(|c| matches!(c, b',' | b'?' | b'<' | b'>' | b'"'))
                {
                    return Err("addr-spec with reserved characters outside <>");
                }
                let uri = UriLayout::parse_at(&s[..e], base).map_err(|e| e.detail)?;
                validate_params(&s[e..])?;
                return Ok(NameAddrLayout {
                    display,
                    uri,
                    params: params_span(e),
                    raw: span(0, b.len()),
                });
            }
            // *(token LWS): RFC 4475 §3.1.1.6 accepts no LWS before '<'.
            let mut j = 0;
            loop {
                let t = skip_token(b, j);
                if t == j {
                    return Err("display name is not a token sequence");
                }
                j = skip_lws(b, t);
                if b.get(j) == Some(&b'<') {
                    display = DisplaySource::Tokens(span(0, t));
                    i = j;
                    break;
                }
            }
        }
        // b[i] == '<'
        let close = memchr::memchr(b'>', &b[i..]).ok_or("missing >")? + i;
        // No URI that parses holds LWS (no character class in uri.rs admits it), so the scan
        // for it only runs to name the error.
        let uri = UriLayout::parse_at(&s[i + 1..close], base + i + 1).map_err(|e| {
            if b[i + 1..close].iter().any(|&c| is_lws(c)) {
                "LWS inside <addr-spec>"
            } else {
                e.detail
            }
        })?;
        validate_params(&s[close + 1..])?;
        Ok(NameAddrLayout {
            display,
            uri,
            params: params_span(close + 1),
            raw: span(0, b.len()),
        })
    }

    pub(crate) fn view<'a>(&self, base: &'a str) -> NameAddr<'a> {
        let display_name = match self.display {
            DisplaySource::Absent => None,
            DisplaySource::Quoted(s) => Some(unquote(s.get(base))),
            DisplaySource::Tokens(s) => Some(collapse_lws(s.get(base))),
        }
        .filter(|d| !d.is_empty());
        NameAddr {
            display_name,
            uri: self.uri.view(base),
            params: self.params.get(base),
            raw: self.raw.get(base),
        }
    }
}

/// A validated Contact value's layout: `*` or a name-addr.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ContactLayout {
    Star,
    Address(NameAddrLayout),
}

impl ContactLayout {
    pub(crate) fn parse_at(raw: &str, off: usize) -> Result<ContactLayout, &'static str> {
        if trim_lws(raw) == "*" {
            Ok(ContactLayout::Star)
        } else {
            NameAddrLayout::parse_at(raw, off).map(ContactLayout::Address)
        }
    }

    pub(crate) fn view<'a>(&self, base: &'a str) -> Contact<'a> {
        match self {
            ContactLayout::Star => Contact::Star,
            ContactLayout::Address(a) => Contact::Address(a.view(base)),
        }
    }
}

/// The inside of a quoted-string with quoted-pairs resolved and folds collapsed.
pub(crate) fn unquote(inner: &str) -> Cow<'_, str> {
    if !inner.bytes().any(|c| matches!(c, b'\\' | b'\r' | b'\n')) {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '\r' | '\n' => {
                if !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            '\t' if out.ends_with(' ') => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A folded value (RFC 3261 §7.3.1) with each line break and the WSP after it turned into
/// one space; borrowed when there was no fold.
pub(crate) fn unfold(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|c| c == b'\r' || c == b'\n') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut pending = false;
    for ch in s.chars() {
        match ch {
            '\r' | '\n' => pending = true,
            ' ' | '\t' if pending => {}
            c => {
                if pending && !out.is_empty() && !out.ends_with(' ') {
                    out.push(' ');
                }
                pending = false;
                out.push(c);
            }
        }
    }
    Cow::Owned(out)
}

fn collapse_lws(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    let needs = b.windows(2).any(|w| is_lws(w[0]) && is_lws(w[1]))
        || b.iter().any(|&c| matches!(c, b'\t' | b'\r' | b'\n'));
    if !needs {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.split(|c: char| c.is_ascii() && is_lws(c as u8))
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// One Contact value (RFC 3261 §20.10): `*` or an address with `expires`/`q` params.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contact<'a> {
    Star,
    Address(NameAddr<'a>),
}

impl<'a> Contact<'a> {
    pub(crate) fn parse(raw: &'a str) -> Result<Contact<'a>, &'static str> {
        ContactLayout::parse_at(raw, 0).map(|l| l.view(raw))
    }
    pub fn address(&self) -> Option<&NameAddr<'a>> {
        match self {
            Contact::Star => None,
            Contact::Address(a) => Some(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_via() {
        let v = Via::parse("SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.protocol, "SIP/2.0");
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "192.0.2.2");
        assert_eq!(v.branch(), Some("390skdjuw"));
        let v = Via::parse(" SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239")
            .unwrap();
        assert_eq!(v.branch(), Some("z9hG4bK30239"));
        let v = Via::parse("SIP/2.0/UDP [::1] : 5062 ;rport;BRANCH=z9hG4bK%41").unwrap();
        assert_eq!((v.host, v.port), ("[::1]", Some(5062)));
        assert!(v.has_rport());
        assert_eq!(v.rport(), None);
        assert_eq!(
            v.branch(),
            Some("z9hG4bK%41"),
            "escapes are not decoded in Via params"
        );
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(Via::parse("SIP/2.0/UDP host:70000").is_err());
        assert!(Via::parse("SIP/2.0/UDP").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com>  ;  tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(n.display_name.as_deref(), Some(r#"J Rosenberg \""#));
        assert_eq!(n.tag(), Some("98asjd8"));
        let n = NameAddr::parse("sip:caller@example.net;tag=134161461246").unwrap();
        assert_eq!(n.uri.host, "example.net");
        assert_eq!(n.tag(), Some("134161461246"));
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display_name.as_deref(), Some("caller"));
        assert!(NameAddr::parse("Bell, Alexander <sip:a.g.bell@example.com>;tag=43").is_err());
        assert!(NameAddr::parse("\"Mr. J. User <sip:j.user@example.com>").is_err());
        assert!(NameAddr::parse("\"Watson\" < sip:t.watson@example.org >").is_err());
        assert!(NameAddr::parse("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_err());
        assert!(NameAddr::parse("\"Joe\" <sip:joe@example.org>;;;;").is_err());
    }

    #[test]
    fn comma_split_respects_quotes_and_angles() {
        let v: Vec<_> = CommaSplit::new(r#""a,b" <sip:x@y;p=1,2>, <sip:z@w> ,*"#).collect();
        assert_eq!(v, [r#""a,b" <sip:x@y;p=1,2>"#, "<sip:z@w>", "*"]);
    }
}
