//! Typed views of the headers transaction matching and dialogs need (Via, From/To/Contact),
//! borrowed from the message buffer, plus the lexical helpers of RFC 3261 §25.1 they share.
//!
//! Values may still hold folded line breaks (RFC 3261 §7.3.1): every helper here treats any run
//! of SP, HTAB, CR and LF as one LWS, so a folded value never needs to be copied to be read.

use std::borrow::Cow;

use crate::uri::Uri;

/// RFC 3261 §25.1 `token` characters: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~".
const TOKEN: [bool; 256] = {
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

/// RFC 3261 hostname characters (plus '_', which real deployments use).
const HOST: [bool; 256] = {
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

pub(crate) fn validate_params(s: &str) -> Result<(), &'static str> {
    for p in Params::new(s) {
        p.map_err(|()| "malformed parameter")?;
    }
    Ok(())
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
        let b = raw.as_bytes();
        let mut i = skip_lws(b, 0);
        let ps = i;
        i = skip_token(b, i);
        let name = &raw[ps..i];
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
        let version = &raw[vs..i];
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
        let transport = &raw[ts..i];
        if transport.is_empty() {
            return Err("Via: missing transport");
        }
        let protocol = if name.eq_ignore_ascii_case("SIP") && version == "2.0" {
            "SIP/2.0"
        } else {
            &raw[ps..vs + version.len()]
        };
        let j = skip_lws(b, i);
        if j == i {
            return Err("Via: no LWS before sent-by");
        }
        let (host, port, k) = parse_hostport(raw, j, true).ok_or("Via: malformed sent-by")?;
        let params = &raw[k..];
        validate_params(params).map_err(|_| "Via: malformed parameter")?;
        Ok(Via {
            protocol,
            transport,
            host,
            port,
            params: params.trim_start_matches(|c: char| c.is_ascii() && is_lws(c as u8)),
            raw: trim_lws(raw),
        })
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

    /// A placeholder returned by accessors whose header was validated at parse time; only
    /// reachable if that invariant were ever broken, so callers never have to unwrap.
    pub(crate) fn empty() -> NameAddr<'static> {
        NameAddr {
            display_name: None,
            uri: Uri::empty(),
            params: "",
            raw: "",
        }
    }

    pub(crate) fn parse(raw: &'a str) -> Result<NameAddr<'a>, &'static str> {
        let s = trim_lws(raw);
        let b = s.as_bytes();
        if b.is_empty() {
            return Err("empty address");
        }
        let mut display_name: Option<Cow<'a, str>> = None;
        let mut i = 0;
        if b[0] == b'"' {
            let end = skip_quoted(b, 0).ok_or("unterminated quoted display name")?;
            display_name = Some(unquote(&s[1..end - 1]));
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
                let us = &s[..e];
                if us.contains([',', '?', '<', '>', '"']) {
                    return Err("addr-spec with reserved characters outside <>");
                }
                let uri = Uri::parse(us).map_err(|e| e.detail)?;
                let params = &s[e..];
                validate_params(params)?;
                return Ok(NameAddr {
                    display_name: None,
                    uri,
                    params: trim_lws(params),
                    raw: s,
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
                    display_name = Some(collapse_lws(trim_lws(&s[..t])));
                    i = j;
                    break;
                }
            }
        }
        // b[i] == '<'
        let close = memchr::memchr(b'>', &b[i..]).ok_or("missing >")? + i;
        let us = &s[i + 1..close];
        if us.bytes().any(is_lws) {
            return Err("LWS inside <addr-spec>");
        }
        let uri = Uri::parse(us).map_err(|e| e.detail)?;
        let params = &s[close + 1..];
        validate_params(params)?;
        if display_name.as_deref() == Some("") {
            display_name = None;
        }
        Ok(NameAddr {
            display_name,
            uri,
            params: trim_lws(params),
            raw: s,
        })
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
        if trim_lws(raw) == "*" {
            Ok(Contact::Star)
        } else {
            NameAddr::parse(raw).map(Contact::Address)
        }
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
