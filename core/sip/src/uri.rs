//! URIs of any scheme (RFC 3261 §19.1 for sip/sips), borrowed from the message buffer.
//!
//! Every scheme must parse, so the application can answer 416 Unsupported URI Scheme
//! (RFC 4475 §3.3.2) instead of 400: non-SIP URIs keep everything after `scheme:` in `host`.

use std::borrow::Cow;

use crate::error::{ParseError, ParseErrorKind};
use crate::header::{Span, find_byte, parse_hostport};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uri<'a> {
    pub scheme: &'a str,
    /// Still percent-escaped; see [`Uri::user_unescaped`].
    pub user: Option<&'a str>,
    pub password: Option<&'a str>,
    /// IPv6 references keep their brackets. For non-SIP schemes: everything after `scheme:`.
    pub host: &'a str,
    pub port: Option<u16>,
    /// `;name[=value]...` including the leading `;`, or "".
    pub params: &'a str,
    /// After `?`, still escaped.
    pub headers: Option<&'a str>,
    pub raw: &'a str,
}

/// Where the pieces of a validated URI lie inside the header value that holds it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UriLayout {
    scheme: Span,
    user: Span,
    password: Span,
    host: Span,
    params: Span,
    headers: Span,
    raw: Span,
    port: Option<u16>,
}

impl UriLayout {
    /// Validates `s` as a URI and records where its pieces lie, as offsets into the text
    /// in which `s` starts at `off` (the header value, so nothing needs rebasing later).
    pub(crate) fn parse_at(s: &str, off: usize) -> Result<UriLayout, ParseError> {
        let b = s.as_bytes();
        let colon = find_byte(b, b':').ok_or_else(|| err("URI without scheme"))?;
        let sb = &b[..colon];
        if sb.is_empty()
            || !sb[0].is_ascii_alphabetic()
            || !sb
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        {
            return Err(err("bad URI scheme"));
        }
        let r = colon + 1;
        let rest = &b[r..];
        if rest.is_empty() {
            return Err(err("empty URI"));
        }
        let span = |a: usize, e: usize| Span((off + a) as u32, (off + e) as u32);
        let mut l = UriLayout {
            scheme: span(0, colon),
            user: Span::NONE,
            password: Span::NONE,
            host: span(r, b.len()),
            params: Span(0, 0),
            headers: Span::NONE,
            raw: span(0, b.len()),
            port: None,
        };
        if !(sb.eq_ignore_ascii_case(b"sip") || sb.eq_ignore_ascii_case(b"sips")) {
            // RFC 3986 leaves the rest to the scheme; only refuse what cannot sit in a header.
            if rest
                .iter()
                .any(|&c| c <= b' ' || c == 0x7f || matches!(c, b'<' | b'>' | b'"'))
            {
                return Err(err("bad character in URI"));
            }
            return Ok(l);
        }
        // userinfo cannot hold an unescaped '@', and nothing after it can either.
        let h = match find_byte(rest, b'@') {
            Some(at) => {
                let ui = &rest[..at];
                let (ue, pw) = match find_byte(ui, b':') {
                    Some(c) => (c, Some(&ui[c + 1..])),
                    None => (at, None),
                };
                if ue == 0 || !check_chars(&ui[..ue], &USER) {
                    return Err(err("bad URI user part"));
                }
                l.user = span(r, r + ue);
                if let Some(p) = pw {
                    if !check_chars(p, &PASSWORD) {
                        return Err(err("bad URI password"));
                    }
                    l.password = span(r + ue + 1, r + at);
                }
                r + at + 1
            }
            None => r,
        };
        let (host, port, i) =
            parse_hostport(&s[h..], 0, false).ok_or_else(|| err("bad URI host or port"))?;
        l.host = span(h, h + host.len());
        l.port = port;
        let t = h + i;
        let tail = &b[t..];
        let (params, headers) = match find_byte(tail, b'?') {
            Some(q) => {
                l.headers = span(t + q + 1, b.len());
                (&tail[..q], Some(&tail[q + 1..]))
            }
            None => (tail, None),
        };
        l.params = span(t, t + params.len());
        if !params.is_empty() {
            if params[0] != b';' {
                return Err(err("junk after URI host"));
            }
            for p in params[1..].split(|&c| c == b';') {
                let (n, v) = match find_byte(p, b'=') {
                    Some(e) => (&p[..e], Some(&p[e + 1..])),
                    None => (p, None),
                };
                if n.is_empty() || !check_chars(n, &PARAM) {
                    return Err(err("bad URI parameter"));
                }
                if let Some(v) = v
                    && (v.is_empty() || !check_chars(v, &PARAM))
                {
                    return Err(err("bad URI parameter value"));
                }
            }
        }
        if let Some(h) = headers {
            for hv in h.split(|&c| c == b'&') {
                let e = find_byte(hv, b'=').ok_or_else(|| err("bad URI header"))?;
                let (n, v) = (&hv[..e], &hv[e + 1..]);
                if n.is_empty() || !check_chars(n, &HNV) || !check_chars(v, &HNV) {
                    return Err(err("bad URI header"));
                }
            }
        }
        Ok(l)
    }

    pub(crate) fn view<'a>(&self, base: &'a str) -> Uri<'a> {
        Uri {
            scheme: self.scheme.get(base),
            user: self.user.get_opt(base),
            password: self.password.get_opt(base),
            host: self.host.get(base),
            port: self.port,
            params: self.params.get(base),
            headers: self.headers.get_opt(base),
            raw: self.raw.get(base),
        }
    }
}

fn err(detail: &'static str) -> ParseError {
    ParseError::new(ParseErrorKind::BadUri, detail)
}

/// RFC 3261 §25.1 `unreserved`.
#[inline]
const fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

const fn class(extra: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = unreserved(c as u8);
        c += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
}

static USER: [bool; 256] = class(USER_UNRESERVED);
static PASSWORD: [bool; 256] = class(PASSWORD_EXTRA);
static PARAM: [bool; 256] = class(PARAM_UNRESERVED);
static HNV: [bool; 256] = class(HNV_UNRESERVED);

/// Checks `s` against a character class plus well-formed `%HEX HEX` escapes.
fn check_chars(b: &[u8], class: &[bool; 256]) -> bool {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if class[c as usize] {
            i += 1;
        } else if c == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
        } else {
            return false;
        }
    }
    true
}

const USER_UNRESERVED: &[u8] = b"&=+$,;?/";
const PASSWORD_EXTRA: &[u8] = b"&=+$,";
const PARAM_UNRESERVED: &[u8] = b"[]/:&+$";
const HNV_UNRESERVED: &[u8] = b"[]/?:+$";

impl<'a> Uri<'a> {
    pub fn parse(s: &'a str) -> Result<Uri<'a>, ParseError> {
        UriLayout::parse_at(s, 0).map(|l| l.view(s))
    }

    /// URI parameters are case-insensitive by name (RFC 3261 §19.1.4). `Some(None)` = flag (`;lr`).
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        let p = self.params.strip_prefix(';')?;
        p.split(';').find_map(|kv| {
            let (n, v) = match kv.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (kv, None),
            };
            n.eq_ignore_ascii_case(name).then_some(v)
        })
    }

    pub fn is_sip(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("sip") || self.scheme.eq_ignore_ascii_case("sips")
    }

    pub fn is_sips(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("sips")
    }

    pub fn transport(&self) -> Option<&'a str> {
        self.param("transport").flatten()
    }

    /// Host without IPv6 brackets.
    pub fn host_unbracketed(&self) -> &'a str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    /// The user part with `%HH` escapes decoded (RFC 3261 §19.1.4: escaped and unescaped forms
    /// are equivalent). NUL and invalid UTF-8 survive lossily rather than truncating (RFC 4475 §3.1.1.4).
    pub fn user_unescaped(&self) -> Option<Cow<'a, str>> {
        self.user.map(percent_decode)
    }
}

pub(crate) fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                b.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

impl std::fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uris() {
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user, Some("user;par=u%40example.net"));
        assert_eq!(u.host, "example.com");
        assert_eq!(
            u.user_unescaped().as_deref(),
            Some("user;par=u@example.net")
        );
        let u = Uri::parse("sips:[2001:db8::10]:5070;transport=TCP;lr").unwrap();
        assert_eq!((u.host, u.port), ("[2001:db8::10]", Some(5070)));
        assert_eq!(u.transport(), Some("TCP"));
        assert_eq!(u.param("LR"), Some(None));
        assert!(u.is_sip());
        let u = Uri::parse("sip:[2001:db8::10:5070]").unwrap();
        assert_eq!(u.port, None);
        assert!(Uri::parse("sip:2001:db8::10").is_err());
        assert!(Uri::parse("sip:user@[2001:db8:::192.0.2.1]").is_err());
        assert!(Uri::parse("sip:a%zz@host").is_err());
        assert!(Uri::parse("sip:a@host:99999").is_err());
        let u = Uri::parse("sip:null-%00-null@example.com").unwrap();
        assert_eq!(u.user_unescaped().as_deref(), Some("null-\0-null"));
        let u = Uri::parse("sip:user@example.com?Route=%3Csip:example.com%3E").unwrap();
        assert_eq!(u.headers, Some("Route=%3Csip:example.com%3E"));
    }

    #[test]
    fn other_schemes() {
        let u = Uri::parse("tel:+1-201-555-0123;phone-context=x").unwrap();
        assert_eq!(
            (u.scheme, u.host, u.user),
            ("tel", "+1-201-555-0123;phone-context=x", None)
        );
        assert!(!u.is_sip());
        assert!(Uri::parse("soap.beep://192.0.2.103:3002").is_ok());
        assert!(Uri::parse("nobodyKnowsThisScheme:totallyopaquecontent").is_ok());
        assert!(Uri::parse("<sip:user@example.com>").is_err());
        assert!(Uri::parse("1sip:x").is_err());
    }
}
