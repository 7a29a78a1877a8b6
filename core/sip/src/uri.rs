//! URIs of any scheme (RFC 3261 §19.1 for sip/sips), borrowed from the message buffer.
//!
//! Every scheme must parse, so the application can answer 416 Unsupported URI Scheme
//! (RFC 4475 §3.3.2) instead of 400: non-SIP URIs keep everything after `scheme:` in `host`.

use std::borrow::Cow;

use crate::error::{ParseError, ParseErrorKind};
use crate::header::parse_hostport;

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
fn check_chars(s: &str, class: &[bool; 256]) -> bool {
    let b = s.as_bytes();
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
    pub(crate) fn empty() -> Uri<'static> {
        Uri {
            scheme: "",
            user: None,
            password: None,
            host: "",
            port: None,
            params: "",
            headers: None,
            raw: "",
        }
    }

    pub fn parse(s: &'a str) -> Result<Uri<'a>, ParseError> {
        let colon = memchr::memchr(b':', s.as_bytes()).ok_or_else(|| err("URI without scheme"))?;
        let scheme = &s[..colon];
        let sb = scheme.as_bytes();
        if sb.is_empty()
            || !sb[0].is_ascii_alphabetic()
            || !sb
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        {
            return Err(err("bad URI scheme"));
        }
        let rest = &s[colon + 1..];
        if rest.is_empty() {
            return Err(err("empty URI"));
        }
        if !(scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")) {
            // RFC 3986 leaves the rest to the scheme; only refuse what cannot sit in a header.
            if rest
                .bytes()
                .any(|c| c <= b' ' || c == 0x7f || matches!(c, b'<' | b'>' | b'"'))
            {
                return Err(err("bad character in URI"));
            }
            return Ok(Uri {
                scheme,
                user: None,
                password: None,
                host: rest,
                port: None,
                params: "",
                headers: None,
                raw: s,
            });
        }
        // userinfo cannot hold an unescaped '@', and nothing after it can either.
        let (user, password, hp) = match memchr::memchr(b'@', rest.as_bytes()) {
            Some(at) => {
                let ui = &rest[..at];
                let (u, p) = match memchr::memchr(b':', ui.as_bytes()) {
                    Some(c) => (&ui[..c], Some(&ui[c + 1..])),
                    None => (ui, None),
                };
                if u.is_empty() || !check_chars(u, &USER) {
                    return Err(err("bad URI user part"));
                }
                if let Some(p) = p
                    && !check_chars(p, &PASSWORD)
                {
                    return Err(err("bad URI password"));
                }
                (Some(u), p, &rest[at + 1..])
            }
            None => (None, None, rest),
        };
        let (host, port, i) =
            parse_hostport(hp, 0, false).ok_or_else(|| err("bad URI host or port"))?;
        let tail = &hp[i..];
        let (params, headers) = match memchr::memchr(b'?', tail.as_bytes()) {
            Some(q) => (&tail[..q], Some(&tail[q + 1..])),
            None => (tail, None),
        };
        if !params.is_empty() {
            if !params.starts_with(';') {
                return Err(err("junk after URI host"));
            }
            for p in params[1..].split(';') {
                let (n, v) = match p.find('=') {
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
            for hv in h.split('&') {
                let (n, v) = hv.split_once('=').ok_or_else(|| err("bad URI header"))?;
                if n.is_empty() || !check_chars(n, &HNV) || !check_chars(v, &HNV) {
                    return Err(err("bad URI header"));
                }
            }
        }
        Ok(Uri {
            scheme,
            user,
            password,
            host,
            port,
            params,
            headers,
            raw: s,
        })
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
