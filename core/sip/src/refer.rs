//! Call transfer: the REFER method (RFC 3515), the Replaces header (RFC 3891), Referred-By
//! (RFC 3892), and the NOTIFYs of the implicit refer subscription, as used by the transfer
//! flows of RFC 5589.
//!
//! The switch is a B2BUA: it anchors both dialogs of every call, so a REFER from a phone is
//! acted on by the switch itself (it re-routes the other leg) and reported back to the
//! transferor with `message/sipfrag` NOTIFYs. Everything here is sans-IO: values in, values or
//! bytes out. Parsers take hostile input: they fail with a [`ParseError`], never panic, and
//! refuse values longer than [`MAX_VALUE_LEN`] or with more than [`MAX_EMBEDDED_HEADERS`]
//! embedded headers.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

use crate::builder::{MessageBuilder, default_reason};
use crate::error::{ParseError, ParseErrorKind};
use crate::header::{Params, find_byte, is_lws, is_token, skip_quoted, trim_lws, unquote};
use crate::message::{Method, valid_call_id};
use crate::uri::{Uri, percent_decode};

/// Longest Refer-To / Replaces / Referred-By value accepted. Real ones stay under 512 bytes
/// (a URI, a Call-ID and two tags); the bound keeps a hostile peer from making us decode
/// megabytes.
pub const MAX_VALUE_LEN: usize = 4096;
/// Most `?name=value` headers accepted inside a Refer-To URI (RFC 3261 §19.1.1).
pub const MAX_EMBEDDED_HEADERS: usize = 16;

fn bad(detail: &'static str) -> ParseError {
    ParseError::new(ParseErrorKind::BadHeader, detail)
}

fn check_len(value: &str) -> Result<&str, ParseError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(ParseError::new(
            ParseErrorKind::TooLarge,
            "header value too long",
        ));
    }
    let v = trim_lws(value);
    if v.is_empty() {
        return Err(bad("empty header value"));
    }
    Ok(v)
}

/// A name-addr or addr-spec split into its display name, the text of the address (inside
/// `<>` when bracketed) and the header parameters after it.
struct AddressParts<'a> {
    display_name: Option<String>,
    addr: &'a str,
    params: &'a str,
}

/// RFC 3261 §20.10 / §25.1 `name-addr / addr-spec` followed by `*(SEMI generic-param)`.
/// The URI itself is checked by the caller, so that Refer-To can be lenient about its
/// embedded headers (phones do send a bare `@` inside `?Replaces=`).
fn split_address(v: &str) -> Result<AddressParts<'_>, ParseError> {
    let b = v.as_bytes();
    let (display_name, open) = if b[0] == b'"' {
        let end = skip_quoted(b, 0).ok_or_else(|| bad("unterminated quoted display name"))?;
        let inner = &v[1..end - 1];
        let mut i = end;
        while i < b.len() && is_lws(b[i]) {
            i += 1;
        }
        if b.get(i) != Some(&b'<') {
            return Err(bad("display name not followed by <"));
        }
        (Some(unquote(inner).into_owned()), Some(i))
    } else {
        match find_byte(b, b'<') {
            Some(lt) => {
                let name = trim_lws(&v[..lt]);
                // RFC 3261 §25.1: an unquoted display name is `*(token LWS)`.
                let words: Vec<&str> = name
                    .split([' ', '\t', '\r', '\n'])
                    .filter(|w| !w.is_empty())
                    .collect();
                if !words.iter().all(|w| is_token(w)) {
                    return Err(bad("display name is not a token sequence"));
                }
                let name = words.join(" ");
                ((!name.is_empty()).then_some(name), Some(lt))
            }
            None => (None, None),
        }
    };
    let (addr, params) = match open {
        Some(lt) => {
            let gt = find_byte(&b[lt..], b'>').ok_or_else(|| bad("missing >"))? + lt;
            (&v[lt + 1..gt], &v[gt + 1..])
        }
        None => {
            // addr-spec form: RFC 3261 §20.10, a URI holding ',', '?' or ';' must be in <>,
            // so the URI ends at the first ';' or LWS.
            let end = b
                .iter()
                .position(|&c| c == b';' || is_lws(c))
                .unwrap_or(b.len());
            let addr = &v[..end];
            if addr.bytes().any(|c| matches!(c, b',' | b'?' | b'>' | b'"')) {
                return Err(bad("addr-spec with reserved characters outside <>"));
            }
            (addr, &v[end..])
        }
    };
    if Params::new(params).any(|p| p.is_err()) {
        return Err(bad("bad header parameter"));
    }
    let display_name = display_name.filter(|d| !d.is_empty());
    Ok(AddressParts {
        display_name,
        addr,
        params: trim_lws(params),
    })
}

/// Header parameters as owned (name, value) pairs, quotes stripped.
fn owned_params(params: &str) -> Vec<(String, Option<String>)> {
    Params::new(params)
        .map_while(Result::ok)
        .map(|(n, v)| (n.to_owned(), v.map(str::to_owned)))
        .collect()
}

/// A parsed Refer-To header (RFC 3515 §2.1): where the transferee is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferTo {
    pub display_name: Option<String>,
    /// The target URI without its `?headers` part: the Request-URI of the request the referral
    /// asks for (RFC 3261 §19.1.5: the headers go into that request, not its URI).
    pub uri: String,
    /// Embedded URI headers (`?Replaces=...&Accept-Contact=...`), percent-decoded, in order.
    pub headers: Vec<(String, String)>,
    /// Header parameters after the address (`;foo=bar`), quotes stripped.
    pub params: Vec<(String, Option<String>)>,
}

impl ReferTo {
    /// Parses a Refer-To value: `<sip:bob@example.com?Replaces=...>` or a bare addr-spec.
    pub fn parse(value: &str) -> Result<ReferTo, ParseError> {
        let v = check_len(value)?;
        let parts = split_address(v)?;
        let (uri, raw_headers) = split_uri_headers(parts.addr)?;
        let mut headers = Vec::new();
        if let Some(h) = raw_headers {
            for field in h.split('&').filter(|f| !f.is_empty()) {
                if headers.len() == MAX_EMBEDDED_HEADERS {
                    return Err(ParseError::new(
                        ParseErrorKind::TooLarge,
                        "too many embedded URI headers",
                    ));
                }
                // A field without '=' cannot be applied to any request; RFC 3515 §2.1's own
                // example has one (`&Call-ID%3D...`), so it is skipped rather than refused.
                let Some((n, val)) = field.split_once('=') else {
                    continue;
                };
                let name = percent_decode(n);
                if !is_token(&name) {
                    return Err(bad("bad embedded URI header name"));
                }
                let val = percent_decode(val);
                // A decoded CR or LF would let the value inject a header into the request
                // built from it; NUL has no place in a header either.
                if val.bytes().any(|c| c < b' ' && c != b'\t') {
                    return Err(bad("control character in embedded URI header"));
                }
                headers.push((name.into_owned(), val.into_owned()));
            }
        }
        Ok(ReferTo {
            display_name: parts.display_name,
            uri: uri.to_owned(),
            headers,
            params: owned_params(parts.params),
        })
    }

    /// The target URI, parsed (fails only for a ReferTo built by hand with a bad `uri`).
    pub fn target(&self) -> Result<Uri<'_>, ParseError> {
        Uri::parse(&self.uri)
    }

    /// The target's user part, unescaped: the number or extension to route on.
    pub fn user(&self) -> Option<Cow<'_, str>> {
        self.target().ok()?.user_unescaped()
    }

    /// The method the referral asks for: the URI's `method=` parameter (RFC 3261 §19.1.1,
    /// RFC 3515 §2.4.2), INVITE when absent.
    pub fn method(&self) -> Method {
        match self.target().ok().and_then(|u| u.param("method").flatten()) {
            // RFC 3261 §7.1: method names are case-sensitive, so `method=invite` is not INVITE.
            Some(m) => Method::from_token(m),
            None => Method::Invite,
        }
    }

    /// An embedded header by name (case-insensitive), decoded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The embedded Replaces header of an attended transfer (RFC 3891 §3, RFC 5589 §7), parsed.
    /// None for a blind transfer.
    pub fn replaces(&self) -> Option<Result<Replaces, ParseError>> {
        self.header("Replaces").map(Replaces::parse)
    }
}

/// Splits `sip:user@host;params?headers` at the `?` that starts the headers. A strictly valid
/// URI is split where the URI grammar says; failing that, at the first `?` after the host, so
/// that `?Replaces=abc@host;to-tag=...` with unescaped reserved characters still reads.
fn split_uri_headers(addr: &str) -> Result<(&str, Option<&str>), ParseError> {
    if let Ok(u) = Uri::parse(addr) {
        // `sip:host?Replaces=a@b` parses with user "host?Replaces=a": not what was meant.
        if !u.user.is_some_and(|user| user.contains('?')) {
            return Ok(match u.headers {
                Some(h) => (&addr[..addr.len() - h.len() - 1], Some(h)),
                None => (addr, None),
            });
        }
    }
    let q = addr.find('?').ok_or_else(|| bad("bad Refer-To URI"))?;
    let uri = &addr[..q];
    Uri::parse(uri).map_err(|_| bad("bad Refer-To URI"))?;
    let h = &addr[q + 1..];
    if h.bytes()
        .any(|c| c <= b' ' || c == 0x7f || matches!(c, b'<' | b'>' | b'"'))
    {
        return Err(bad("bad character in embedded URI headers"));
    }
    Ok((uri, Some(h)))
}

/// The Replaces header (RFC 3891 §6.1): `callid *(SEMI (to-tag / from-tag / early-only))`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replaces {
    pub call_id: String,
    /// The tag of the side that RECEIVES the Replaces (its local tag), RFC 3891 §3.
    pub to_tag: String,
    /// The tag of the side that SENDS it (the remote tag at the receiver).
    pub from_tag: String,
    /// `early-only`: replace the dialog only while it is early (RFC 3891 §3).
    pub early_only: bool,
}

impl Replaces {
    /// Parses a Replaces value, as sent in an INVITE or decoded from a Refer-To URI.
    pub fn parse(value: &str) -> Result<Replaces, ParseError> {
        let v = check_len(value)?;
        let (call_id, params) = match v.find(';') {
            Some(i) => (trim_lws(&v[..i]), &v[i..]),
            None => (v, ""),
        };
        if !valid_call_id(call_id) {
            return Err(bad("bad Replaces call-id"));
        }
        let (mut to_tag, mut from_tag, mut early_only) = (None, None, false);
        for p in Params::new(params) {
            let (name, val) = p.map_err(|()| bad("bad Replaces parameter"))?;
            let slot = if name.eq_ignore_ascii_case("to-tag") {
                &mut to_tag
            } else if name.eq_ignore_ascii_case("from-tag") {
                &mut from_tag
            } else {
                if name.eq_ignore_ascii_case("early-only") {
                    early_only = true;
                }
                continue;
            };
            let val = val
                .filter(|t| is_token(t))
                .ok_or_else(|| bad("Replaces tag is not a token"))?;
            // RFC 3891 §3: exactly one to-tag and exactly one from-tag.
            if slot.replace(val.to_owned()).is_some() {
                return Err(ParseError::new(
                    ParseErrorKind::DuplicateHeader,
                    "Replaces tag given twice",
                ));
            }
        }
        match (to_tag, from_tag) {
            (Some(to_tag), Some(from_tag)) => Ok(Replaces {
                call_id: call_id.to_owned(),
                to_tag,
                from_tag,
                early_only,
            }),
            _ => Err(bad("Replaces without to-tag and from-tag")),
        }
    }

    /// Does this Replaces name the dialog `(call_id, local_tag, remote_tag)` as seen by the UA
    /// that received it? RFC 3891 §3: to-tag is compared with the local tag and from-tag with
    /// the remote tag; Call-ID and tags compare case-sensitively (RFC 3261 §19.3).
    ///
    /// In the switch: the transferor builds the Replaces of its consultation call so that the
    /// target of that call can match it, and the switch IS that target; so pass the switch's
    /// own tag on the consultation leg as `local_tag` and the transferor's as `remote_tag`.
    pub fn matches(&self, call_id: &str, local_tag: &str, remote_tag: &str) -> bool {
        self.call_id == call_id && self.to_tag == local_tag && self.from_tag == remote_tag
    }

    /// The value escaped for embedding in a URI header (`?Replaces=` of a Refer-To): every
    /// character outside RFC 3261 `hnv-unreserved / unreserved` becomes `%HH`.
    pub fn uri_escaped(&self) -> String {
        let plain = self.to_string();
        let mut out = String::with_capacity(plain.len() + 16);
        for c in plain.bytes() {
            if c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    b'-' | b'_'
                        | b'.'
                        | b'!'
                        | b'~'
                        | b'*'
                        | b'\''
                        | b'('
                        | b')'
                        | b'['
                        | b']'
                        | b'/'
                        | b':'
                        | b'+'
                        | b'$'
                )
            {
                out.push(c as char);
            } else {
                out.push_str(&format!("%{c:02X}"));
            }
        }
        out
    }
}

/// The header value: `call-id;to-tag=T;from-tag=F[;early-only]`.
impl fmt::Display for Replaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{};to-tag={};from-tag={}",
            self.call_id, self.to_tag, self.from_tag
        )?;
        if self.early_only {
            f.write_str(";early-only")?;
        }
        Ok(())
    }
}

/// A Refer-To value for an attended transfer: `<target?Replaces=escaped>` (RFC 5589 §7.1).
/// `target` must be a URI without headers.
pub fn refer_to_with_replaces(target: &str, replaces: &Replaces) -> String {
    format!("<{target}?Replaces={}>", replaces.uri_escaped())
}

/// The Referred-By header (RFC 3892 §3): who asked for the transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferredBy {
    pub display_name: Option<String>,
    pub uri: String,
    /// `cid`: the Content-ID of an attached S/MIME Referred-By token, if any.
    pub cid: Option<String>,
    /// Every header parameter (cid included), quotes stripped.
    pub params: Vec<(String, Option<String>)>,
}

impl ReferredBy {
    pub fn parse(value: &str) -> Result<ReferredBy, ParseError> {
        let v = check_len(value)?;
        let parts = split_address(v)?;
        Uri::parse(parts.addr).map_err(|_| bad("bad Referred-By URI"))?;
        let params = owned_params(parts.params);
        let cid = params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("cid"))
            .and_then(|(_, v)| v.clone());
        Ok(ReferredBy {
            display_name: parts.display_name,
            uri: parts.addr.to_owned(),
            cid,
            params,
        })
    }
}

/// RFC 4488 §4: `Refer-Sub: false` asks the recipient not to create the implicit subscription
/// (no NOTIFYs). Absent or anything but `false` means the subscription is wanted.
pub fn refer_sub_wanted(refer_sub: Option<&str>) -> bool {
    !refer_sub.is_some_and(|v| {
        let v = trim_lws(v);
        let token = v.split(';').next().map(trim_lws).unwrap_or(v);
        token.eq_ignore_ascii_case("false")
    })
}

/// The Subscription-State of a refer NOTIFY (RFC 6665 §8.2.3 / RFC 3515 §2.4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriptionState {
    /// `active;expires=N`: the referral is still in progress.
    Active { expires: u32 },
    /// `terminated;reason=noresource`: the final NOTIFY, once the referred request got a final
    /// response (RFC 3515 §2.4.7).
    Terminated,
}

impl SubscriptionState {
    /// The state that goes with a sipfrag status: provisional keeps the subscription active,
    /// final terminates it (RFC 3515 §2.4.5).
    pub fn for_status(status: u16, expires: u32) -> SubscriptionState {
        if status < 200 {
            SubscriptionState::Active { expires }
        } else {
            SubscriptionState::Terminated
        }
    }
}

impl fmt::Display for SubscriptionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscriptionState::Active { expires } => write!(f, "active;expires={expires}"),
            SubscriptionState::Terminated => f.write_str("terminated;reason=noresource"),
        }
    }
}

/// The pieces of a dialog an in-dialog request is built from (RFC 3261 §12.2.1.1), borrowed
/// from wherever the engine keeps its dialog.
#[derive(Clone, Copy, Debug)]
pub struct InDialog<'a> {
    pub call_id: &'a str,
    /// Our name-addr without tag (From), and our tag.
    pub local_uri: &'a str,
    pub local_tag: &'a str,
    /// The far side's name-addr without tag (To), and its tag.
    pub remote_uri: &'a str,
    pub remote_tag: Option<&'a str>,
    /// Request-URI: the far side's Contact.
    pub remote_target: &'a str,
    /// Route values in sending order.
    pub route_set: &'a [String],
    /// The whole Via value, branch included (`SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK..;rport`).
    pub via: &'a str,
    /// Our Contact value (RFC 6665 §4.1.2.2: NOTIFY carries one).
    pub contact: &'a str,
    pub cseq: u32,
    pub user_agent: &'a str,
}

/// The sipfrag body reporting `status` (RFC 3420; RFC 3515 §2.4.5 needs only the status line).
/// An empty `reason` takes the standard phrase.
pub fn sipfrag(status: u16, reason: &str) -> String {
    let status = status.clamp(100, 699);
    let reason = if reason.is_empty() {
        default_reason(status)
    } else {
        reason
    };
    // A reason from a peer's response must not break the one-line body.
    let reason: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("SIP/2.0 {status:03} {reason}\r\n")
}

/// A NOTIFY of the implicit refer subscription (RFC 3515 §2.4.4-2.4.7), reporting the referred
/// request's progress as `status reason`. `event_id` is the CSeq of the REFER when it was not
/// the first in its dialog (RFC 3515 §2.4.6: `Event: refer;id=N`); the subscription state
/// follows the status (provisional: active for `expires` s, final: terminated).
pub fn refer_notify(
    dialog: &InDialog<'_>,
    event_id: Option<u32>,
    status: u16,
    reason: &str,
    expires: u32,
) -> Bytes {
    let mut b = MessageBuilder::request(&Method::Notify, dialog.remote_target);
    b.header("Via", dialog.via);
    b.header("Max-Forwards", 70);
    for route in dialog.route_set {
        b.header("Route", route);
    }
    b.header(
        "From",
        format_args!("{};tag={}", dialog.local_uri, dialog.local_tag),
    );
    match dialog.remote_tag {
        Some(tag) => b.header("To", format_args!("{};tag={tag}", dialog.remote_uri)),
        None => b.header("To", dialog.remote_uri),
    };
    b.header("Call-ID", dialog.call_id);
    b.header("CSeq", format_args!("{} NOTIFY", dialog.cseq));
    b.header("Contact", dialog.contact);
    match event_id {
        Some(id) => b.header("Event", format_args!("refer;id={id}")),
        None => b.header("Event", "refer"),
    };
    b.header(
        "Subscription-State",
        SubscriptionState::for_status(status, expires),
    );
    b.header("User-Agent", dialog.user_agent);
    b.finish(
        Some("message/sipfrag;version=2.0"),
        sipfrag(status, reason).as_bytes(),
    )
}

/// The status code of a sipfrag body (`SIP/2.0 200 OK`), for a UA reading refer NOTIFYs.
pub fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let line = body.split(|&c| c == b'\n').next()?;
    let rest = line.strip_prefix(b"SIP/2.0 ")?;
    let code = rest.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|c| !is_lws(*c)) {
        return None;
    }
    let n = code
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    (100..=699).contains(&n).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;

    #[test]
    fn refer_to_examples_of_rfc_3515() {
        // RFC 3515 §2.1.
        let r = ReferTo::parse("sip:alice@atlanta.example.com").unwrap();
        assert_eq!(r.uri, "sip:alice@atlanta.example.com");
        assert_eq!(r.user().as_deref(), Some("alice"));
        assert_eq!(r.method(), Method::Invite);
        assert!(r.headers.is_empty() && r.replaces().is_none());

        let r = ReferTo::parse(
            "<sip:bob@biloxi.example.net?Accept-Contact=sip:bobsdesk.biloxi.example.net&Call-ID%3D55432%40alicepc.atlanta.example.com>",
        )
        .unwrap();
        assert_eq!(r.uri, "sip:bob@biloxi.example.net");
        assert_eq!(
            r.header("accept-contact"),
            Some("sip:bobsdesk.biloxi.example.net")
        );
        assert_eq!(r.headers.len(), 1);

        let r = ReferTo::parse(
            "<sip:dave@denver.example.org?Replaces=12345%40192.168.118.3%3Bto-tag%3D12345%3Bfrom-tag%3D5FFE-3994>",
        )
        .unwrap();
        assert_eq!(r.uri, "sip:dave@denver.example.org");
        assert_eq!(
            r.header("Replaces"),
            Some("12345@192.168.118.3;to-tag=12345;from-tag=5FFE-3994")
        );
        let rep = r.replaces().unwrap().unwrap();
        assert_eq!(
            rep,
            Replaces {
                call_id: "12345@192.168.118.3".into(),
                to_tag: "12345".into(),
                from_tag: "5FFE-3994".into(),
                early_only: false,
            }
        );

        let r = ReferTo::parse("<sip:carol@cleveland.example.org;method=SUBSCRIBE>").unwrap();
        assert_eq!(r.method(), Method::Subscribe);
        assert_eq!(r.target().unwrap().host, "cleveland.example.org");
        let r = ReferTo::parse("<sip:carol@cleveland.example.org;method=invite>").unwrap();
        assert_eq!(r.method(), Method::Extension("invite".into()));

        let r = ReferTo::parse("http://www.ietf.org").unwrap();
        assert_eq!(r.target().unwrap().scheme, "http");
        assert!(!r.target().unwrap().is_sip());
    }

    #[test]
    fn refer_to_of_rfc_5589_flows_with_names_and_params() {
        // RFC 5589 §6.1 (blind) and §7.1 (attended).
        let r = ReferTo::parse("<sips:transfertarget@target.example>").unwrap();
        assert_eq!(r.uri, "sips:transfertarget@target.example");
        let r = ReferTo::parse(
            "<sips:Transfer-Target@target.example?Replaces=090459243588173445%3Bto-tag%3D7553452%3Bfrom-tag%3D31431>",
        )
        .unwrap();
        let rep = r.replaces().unwrap().unwrap();
        assert_eq!(rep.call_id, "090459243588173445");
        assert_eq!(
            (rep.to_tag.as_str(), rep.from_tag.as_str()),
            ("7553452", "31431")
        );

        let r = ReferTo::parse(
            " \"Bob \\\"B\\\"\" <sip:1002@pbx.example;user=phone>;x-note=\"a b\"; flag ",
        )
        .unwrap();
        assert_eq!(r.display_name.as_deref(), Some("Bob \"B\""));
        assert_eq!(r.uri, "sip:1002@pbx.example;user=phone");
        assert_eq!(
            r.params,
            vec![
                ("x-note".to_owned(), Some("a b".to_owned())),
                ("flag".to_owned(), None)
            ]
        );
        let r = ReferTo::parse("Bob  Smith <sip:%31002@pbx.example>").unwrap();
        assert_eq!(r.display_name.as_deref(), Some("Bob Smith"));
        assert_eq!(r.user().as_deref(), Some("1002"));
        let r = ReferTo::parse("sip:1002@pbx.example;foo=bar").unwrap();
        assert_eq!(
            (r.uri.as_str(), r.params.len()),
            ("sip:1002@pbx.example", 1)
        );
    }

    #[test]
    fn refer_to_as_sent_by_the_sipp_attended_scenario() {
        // tests/sipp/xfer_attended.xml, as traced: the Call-ID holds '/' (hnv-unreserved).
        let r = ReferTo::parse(
            "<sip:1002@127.0.0.1?Replaces=consult///1-4940%40127.0.0.1%3Bto-tag%3Dsw2%3Bfrom-tag%3D4940SIPpTag09c1>",
        )
        .unwrap();
        assert_eq!(r.user().as_deref(), Some("1002"));
        let rep = r.replaces().unwrap().unwrap();
        assert!(rep.matches("consult///1-4940@127.0.0.1", "sw2", "4940SIPpTag09c1"));
    }

    #[test]
    fn refer_to_tolerates_unescaped_reserved_characters_in_replaces() {
        // Phones in the field send `@` and `;` unescaped inside ?Replaces=.
        let r =
            ReferTo::parse("<sip:1003@10.0.0.1:5060?Replaces=abc@10.0.0.9;to-tag=t1;from-tag=f1>")
                .unwrap();
        assert_eq!(r.uri, "sip:1003@10.0.0.1:5060");
        let rep = r.replaces().unwrap().unwrap();
        assert_eq!(
            (rep.call_id.as_str(), rep.to_tag.as_str()),
            ("abc@10.0.0.9", "t1")
        );
        // Without a user part, the strict grammar would read "10.0.0.1?Replaces=abc" as a user.
        let r = ReferTo::parse("<sip:10.0.0.1?Replaces=abc@h;to-tag=t;from-tag=f>").unwrap();
        assert_eq!(r.uri, "sip:10.0.0.1");
        assert_eq!(r.replaces().unwrap().unwrap().call_id, "abc@h");
    }

    #[test]
    fn refer_to_refuses_malformed_and_hostile_values() {
        for v in [
            "",
            "   ",
            "<sip:bob@example.com",
            "\"unterminated <sip:bob@example.com>",
            "\"Bob\" sip:bob@example.com",
            "Bob@x <sip:bob@example.com>",
            "sip:bob@example.com?Replaces=x",
            "<sip:bob@example.com>;=x",
            "<sip:bob@@>",
            "<no-scheme>",
            "<sip:bob@example.com?Subject=a%0D%0AInjected:%20yes>",
            "<sip:bob@example.com?Repl%20aces=x>",
            "<sip:bob@example.com?Replaces=a b>",
        ] {
            assert!(ReferTo::parse(v).is_err(), "{v:?} should be refused");
        }
        let long = format!("<sip:{}@example.com>", "a".repeat(MAX_VALUE_LEN));
        assert_eq!(
            ReferTo::parse(&long).unwrap_err().kind,
            ParseErrorKind::TooLarge
        );
        let many = format!(
            "<sip:b@example.com?{}>",
            vec!["X=1"; MAX_EMBEDDED_HEADERS + 1].join("&")
        );
        assert_eq!(
            ReferTo::parse(&many).unwrap_err().kind,
            ParseErrorKind::TooLarge
        );
        // A Replaces that is present but broken is reported, not taken for a blind transfer.
        let r = ReferTo::parse("<sip:b@example.com?Replaces=abc%3Bto-tag%3Dx>").unwrap();
        assert!(r.replaces().unwrap().is_err());
    }

    #[test]
    fn parsers_never_panic_on_mangled_input() {
        let seeds = [
            "\"A\\\" b\" <sips:Transfer-Target@target.example?Replaces=0904%3Bto-tag%3D75%3Bfrom-tag%3D31>;p=\"q\"",
            "98732@sip.example.com;from-tag=r33th4x0r;to-tag=ff87ff;early-only",
            "<sip:referrer@referrer.example>;cid=\"20398823.2UWQFN309shb3@referrer.example\"",
        ];
        let alphabet = b"<>\"\\;?&=%@: \t\r\nx\xc3\xa9";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for seed in seeds {
            for end in 0..=seed.len() {
                let s = &seed[..end];
                let _ = (ReferTo::parse(s), Replaces::parse(s), ReferredBy::parse(s));
            }
            for _ in 0..3000 {
                let mut b = seed.as_bytes().to_vec();
                for _ in 0..(next() % 4 + 1) {
                    let at = (next() as usize) % (b.len() + 1);
                    let c = alphabet[(next() as usize) % alphabet.len()];
                    match next() % 3 {
                        0 if at < b.len() => b[at] = c,
                        1 if at < b.len() => {
                            b.remove(at);
                        }
                        _ => b.insert(at, c),
                    }
                }
                let s = String::from_utf8_lossy(&b);
                if let Ok(r) = ReferTo::parse(&s) {
                    let _ = (r.target(), r.user(), r.method(), r.replaces());
                }
                let _ = (Replaces::parse(&s), ReferredBy::parse(&s));
            }
        }
    }

    #[test]
    fn replaces_examples_of_rfc_3891() {
        // RFC 3891 §6.1.
        let r = Replaces::parse("98732@sip.example.com;from-tag=r33th4x0r;to-tag=ff87ff").unwrap();
        assert_eq!(r.call_id, "98732@sip.example.com");
        assert_eq!(
            (r.to_tag.as_str(), r.from_tag.as_str()),
            ("ff87ff", "r33th4x0r")
        );
        assert!(!r.early_only);
        let r = Replaces::parse("12adf2f34456gs5;to-tag=12345;from-tag=54321;early-only").unwrap();
        assert!(r.early_only);
        assert_eq!(
            r.to_string(),
            "12adf2f34456gs5;to-tag=12345;from-tag=54321;early-only"
        );
        let r = Replaces::parse("87134@192.0.2.23;to-tag=24796;from-tag=0").unwrap();
        assert_eq!(r.from_tag, "0");
        let r = Replaces::parse(" a@b ; To-Tag = x ; FROM-TAG=y ; other=1").unwrap();
        assert_eq!(
            (r.call_id.as_str(), r.to_tag.as_str(), r.from_tag.as_str()),
            ("a@b", "x", "y")
        );

        for v in [
            "abc",
            "abc;to-tag=x",
            "abc;from-tag=y",
            ";to-tag=x;from-tag=y",
            "abc;to-tag=x;to-tag=z;from-tag=y",
            "abc;to-tag;from-tag=y",
            "abc;to-tag=\"x y\";from-tag=y",
            "ab\u{e9};to-tag=x;from-tag=y",
            "abc;to-tag=x;from-tag=y;;",
        ] {
            assert!(Replaces::parse(v).is_err(), "{v:?} should be refused");
        }
        assert_eq!(
            Replaces::parse("abc;to-tag=x;to-tag=z;from-tag=y")
                .unwrap_err()
                .kind,
            ParseErrorKind::DuplicateHeader
        );
    }

    #[test]
    fn replaces_matches_the_receivers_view_of_the_dialog() {
        let r = Replaces::parse("c1@h;to-tag=sw-tag;from-tag=phone-tag").unwrap();
        assert!(r.matches("c1@h", "sw-tag", "phone-tag"));
        assert!(!r.matches("c1@h", "phone-tag", "sw-tag"));
        assert!(!r.matches("C1@h", "sw-tag", "phone-tag"));
        assert!(!r.matches("c1@h", "SW-TAG", "phone-tag"));
    }

    #[test]
    fn replaces_round_trips_through_a_refer_to() {
        let rep = Replaces {
            call_id: "a1b2@192.0.2.4".into(),
            to_tag: "t-1".into(),
            from_tag: "f.2".into(),
            early_only: true,
        };
        assert_eq!(
            rep.uri_escaped(),
            "a1b2%40192.0.2.4%3Bto-tag%3Dt-1%3Bfrom-tag%3Df.2%3Bearly-only"
        );
        let v = refer_to_with_replaces("sip:1003@pbx.example", &rep);
        // The strict URI grammar accepts what we write.
        assert!(Uri::parse(&v[1..v.len() - 1]).is_ok());
        let r = ReferTo::parse(&v).unwrap();
        assert_eq!(r.uri, "sip:1003@pbx.example");
        assert_eq!(r.replaces().unwrap().unwrap(), rep);
    }

    #[test]
    fn referred_by_of_rfc_3892_and_5589() {
        // RFC 3892 §3 and RFC 5589 §7.1.
        let r = ReferredBy::parse(
            "<sip:referrer@referrer.example>;cid=\"20398823.2UWQFN309shb3@referrer.example\"",
        )
        .unwrap();
        assert_eq!(r.uri, "sip:referrer@referrer.example");
        assert_eq!(
            r.cid.as_deref(),
            Some("20398823.2UWQFN309shb3@referrer.example")
        );
        let r = ReferredBy::parse("\"Transferor\" <sips:transferor@atlanta.example>").unwrap();
        assert_eq!(r.display_name.as_deref(), Some("Transferor"));
        assert_eq!(
            (r.uri.as_str(), r.cid.as_deref()),
            ("sips:transferor@atlanta.example", None)
        );
        let r = ReferredBy::parse("sip:1001@127.0.0.1").unwrap();
        assert_eq!(r.uri, "sip:1001@127.0.0.1");
        assert!(ReferredBy::parse("<sip:>").is_err());
        assert!(ReferredBy::parse("<sip:a@b>;cid=\"x").is_err());
    }

    #[test]
    fn refer_sub_false_suppresses_notifies() {
        // RFC 4488 §4.
        assert!(refer_sub_wanted(None));
        assert!(refer_sub_wanted(Some("true")));
        assert!(!refer_sub_wanted(Some("false")));
        assert!(!refer_sub_wanted(Some(" FALSE ;x=1")));
    }

    fn dialog<'a>(routes: &'a [String]) -> InDialog<'a> {
        InDialog {
            call_id: "c-77@192.0.2.1",
            local_uri: "<sip:1002@192.0.2.1>",
            local_tag: "sw1",
            remote_uri: "\"Alice\" <sip:1001@192.0.2.1>",
            remote_tag: Some("ph9"),
            remote_target: "sip:1001@198.51.100.7:5062",
            route_set: routes,
            via: "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-n1;rport",
            contact: "<sip:switchyard@192.0.2.1:5060>",
            cseq: 3,
            user_agent: "Switchyard",
        }
    }

    #[test]
    fn notify_reports_progress_then_terminates() {
        let routes = vec!["<sip:proxy.example;lr>".to_owned()];
        let d = dialog(&routes);
        let m = Message::parse_datagram(refer_notify(&d, None, 100, "", 60)).unwrap();
        assert_eq!(m.method(), Some(&Method::Notify));
        assert_eq!(m.request_uri(), Some("sip:1001@198.51.100.7:5062"));
        assert_eq!(m.call_id(), "c-77@192.0.2.1");
        assert_eq!(m.cseq(), (3, &Method::Notify));
        assert_eq!(m.from().tag(), Some("sw1"));
        assert_eq!(m.to().tag(), Some("ph9"));
        assert_eq!(m.to().display_name.as_deref(), Some("Alice"));
        assert_eq!(m.top_via().branch(), Some("z9hG4bK-n1"));
        assert_eq!(m.header("Route"), Some("<sip:proxy.example;lr>"));
        assert_eq!(m.header("Event"), Some("refer"));
        assert_eq!(m.header("Subscription-State"), Some("active;expires=60"));
        assert_eq!(m.header("Contact"), Some("<sip:switchyard@192.0.2.1:5060>"));
        assert_eq!(m.content_type(), Some("message/sipfrag;version=2.0"));
        assert_eq!(m.body(), b"SIP/2.0 100 Trying\r\n");
        assert_eq!(sipfrag_status(m.body()), Some(100));

        let m = Message::parse_datagram(refer_notify(&d, Some(7), 200, "OK", 60)).unwrap();
        assert_eq!(m.header("Event"), Some("refer;id=7"));
        assert_eq!(
            m.header("Subscription-State"),
            Some("terminated;reason=noresource")
        );
        assert_eq!(m.body(), b"SIP/2.0 200 OK\r\n");

        let m = Message::parse_datagram(refer_notify(&d, None, 503, "", 60)).unwrap();
        assert_eq!(m.body(), b"SIP/2.0 503 Service Unavailable\r\n");
        assert_eq!(sipfrag_status(m.body()), Some(503));
    }

    #[test]
    fn notify_without_remote_tag_and_with_a_hostile_reason() {
        let mut d = dialog(&[]);
        d.remote_tag = None;
        let m =
            Message::parse_datagram(refer_notify(&d, None, 486, "Busy\r\nX-Evil: 1", 30)).unwrap();
        assert_eq!(m.to().tag(), None);
        assert_eq!(m.header("Route"), None);
        assert_eq!(m.header("X-Evil"), None);
        assert_eq!(m.body(), b"SIP/2.0 486 Busy  X-Evil: 1\r\n");
    }

    #[test]
    fn sipfrag_status_lines() {
        assert_eq!(sipfrag(180, ""), "SIP/2.0 180 Ringing\r\n");
        assert_eq!(sipfrag(42, ""), "SIP/2.0 100 Trying\r\n");
        assert_eq!(
            sipfrag_status(b"SIP/2.0 180 Ringing\r\nContact: <sip:x>\r\n"),
            Some(180)
        );
        assert_eq!(sipfrag_status(b"SIP/2.0 200\r\n"), Some(200));
        for body in [
            &b""[..],
            b"SIP/2.0 2000 OK",
            b"SIP/2.0 099 x",
            b"SIP/1.0 200 OK",
            b"SIP/2.0 2a0 OK",
        ] {
            assert_eq!(
                sipfrag_status(body),
                None,
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            SubscriptionState::for_status(183, 90),
            SubscriptionState::Active { expires: 90 }
        );
        assert_eq!(
            SubscriptionState::for_status(200, 90),
            SubscriptionState::Terminated
        );
    }
}
