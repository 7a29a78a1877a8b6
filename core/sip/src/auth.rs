//! HTTP Digest authentication for SIP (RFC 3261 §22, RFC 2617 / RFC 7616 semantics, RFC 8760
//! algorithms MD5 and SHA-256, `qop=auth`).
//!
//! The server side ([`DigestChallenger`]) mints nonces that verify without state: a nonce
//! carries its issue time, 8 random bytes (so two challenges in the same second differ) and an
//! HMAC-SHA256 over both and the realm under a 32-byte secret. Any node sharing the secret can
//! check a nonce, and a restart does not invalidate outstanding challenges.
//!
//! Replay protection is the one piece of state: per nonce, the highest `nc` accepted
//! (RFC 7616 §3.4.5), kept until the nonce expires, at most [`MAX_TRACKED_NONCES`] entries.
//! Together with `qop=auth` being required (an RFC 2069 answer has no `nc`) and the digest
//! `uri` being checked against the Request-URI, a captured `Proxy-Authorization` can neither
//! be resent nor pointed at another number. The table is per process: nodes sharing a secret
//! do not share it, so a replay to a sibling node within the nonce TTL is not caught — keep
//! `nonce_ttl` short (30–300 s) there.
//!
//! [`authorization_for`] is the client side (tests, outbound trunk registration).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest as _, Sha256};

use crate::uri::Uri;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of HMAC-SHA256 kept in a nonce: 128 bits is far beyond guessing within a nonce's life.
const NONCE_MAC_LEN: usize = 16;
/// Random bytes in a nonce: makes every challenge unique, also within one second.
const NONCE_SALT_LEN: usize = 8;
/// Decoded nonce: issue time (8 bytes, big-endian) ‖ salt ‖ truncated MAC.
const NONCE_LEN: usize = 8 + NONCE_SALT_LEN + NONCE_MAC_LEN;
/// A nonce stamped this far in the future is still accepted (clock steps between nodes).
const CLOCK_SKEW_SECS: u64 = 60;
/// Default bound of the nonce-count table. An entry is only made for an answer with the right
/// password, so only authenticated users can fill it; 200k entries take a few MB.
pub const MAX_TRACKED_NONCES: usize = 200_000;
/// An Authorization header longer than this is not one we would have answered for: refuse it
/// before doing any work on it.
const MAX_HEADER_LEN: usize = 8 * 1024;
/// A digest answer has about a dozen parameters (RFC 7616 §3.4); more is junk, and the
/// duplicate check below is quadratic in their number.
const MAX_PARAMS: usize = 32;

/// RFC 8760 §2 digest algorithms this crate issues and answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlgorithm {
    Md5,
    Sha256,
}

impl DigestAlgorithm {
    /// The token used in the `algorithm=` parameter.
    pub fn token(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Sha256 => "SHA-256",
        }
    }

    /// Parses an `algorithm=` value; the `-sess` flag is returned separately (RFC 7616 §3.4.2).
    fn parse(token: &str) -> Option<(DigestAlgorithm, bool)> {
        let (base, sess) = match token.len().checked_sub(5) {
            Some(i) if token.is_char_boundary(i) && token[i..].eq_ignore_ascii_case("-sess") => {
                (&token[..i], true)
            }
            _ => (token, false),
        };
        let alg = if base.eq_ignore_ascii_case("MD5") {
            DigestAlgorithm::Md5
        } else if base.eq_ignore_ascii_case("SHA-256") {
            DigestAlgorithm::Sha256
        } else {
            return None;
        };
        Some((alg, sess))
    }

    /// H(data) as lowercase hex (RFC 7616 §3.4.1).
    fn hash_hex(self, parts: &[&str]) -> String {
        fn run<D: sha2::Digest>(mut d: D, parts: &[&str]) -> String {
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p.as_bytes());
            }
            hex::encode(d.finalize())
        }
        match self {
            DigestAlgorithm::Md5 => run(Md5::new(), parts),
            DigestAlgorithm::Sha256 => run(Sha256::new(), parts),
        }
    }
}

/// The result of checking an `Authorization` / `Proxy-Authorization` header value.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    Authorized {
        username: String,
    },
    /// Right password, but the nonce expired or can no longer be tracked for replay:
    /// re-challenge with stale=true (RFC 2617 §3.2.1).
    Stale {
        username: String,
    },
    /// Wrong password, unknown user, forged nonce, wrong realm, replayed `nc`, digest `uri`
    /// for another target: counts as a failure for brute-force blocking.
    Rejected {
        username: Option<String>,
        reason: &'static str,
    },
    /// Not a Digest header (e.g. scheme NoOneKnowsThisScheme, RFC 4475 regaut01): just challenge.
    UnsupportedScheme,
    Malformed,
}

/// Errors of the client side ([`authorization_for`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("challenge scheme is not Digest")]
    UnsupportedScheme,
    #[error("malformed digest challenge: {0}")]
    Malformed(&'static str),
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("challenge offers only qop values other than \"auth\": {0:?}")]
    UnsupportedQop(String),
}

/// What identifies a nonce once its MAC has been checked: (issue time, salt). Ordered by issue
/// time first, so the oldest entries of the count table are dropped first.
type NonceId = (u64, [u8; NONCE_SALT_LEN]);

/// RFC 7616 §3.4.5: the highest `nc` accepted per nonce, so a resent answer is refused.
///
/// Invariant: a nonce that is not in `highest` and sorts after `dropped_up_to` has never been
/// accepted. One at or before it may have been, so it is refused as stale (the client then
/// gets a fresh nonce) rather than accepted from a clean slate.
#[derive(Debug)]
struct NonceCounts {
    highest: BTreeMap<NonceId, u32>,
    dropped_up_to: Option<NonceId>,
    cap: usize,
}

enum NcVerdict {
    Accepted,
    Replayed,
    Untracked,
}

impl NonceCounts {
    fn new(cap: usize) -> Self {
        NonceCounts {
            highest: BTreeMap::new(),
            dropped_up_to: None,
            cap: cap.max(1),
        }
    }

    fn drop_oldest(&mut self) {
        if let Some((id, _)) = self.highest.pop_first() {
            self.dropped_up_to = Some(self.dropped_up_to.map_or(id, |d| d.max(id)));
        }
    }

    /// Records `nc` for `id` if it is above the last one accepted. Expired entries go first
    /// (an expired nonce is answered Stale before it gets here), then the oldest beyond the cap.
    fn accept(&mut self, id: NonceId, nc: u32, now_unix: u64, ttl_secs: u64) -> NcVerdict {
        while let Some((&(issued, _), _)) = self.highest.first_key_value() {
            if now_unix.saturating_sub(issued) < ttl_secs {
                break;
            }
            self.drop_oldest();
        }
        if let Some(last) = self.highest.get_mut(&id) {
            if nc <= *last {
                return NcVerdict::Replayed;
            }
            *last = nc;
            return NcVerdict::Accepted;
        }
        if self.dropped_up_to.is_some_and(|d| id <= d) {
            return NcVerdict::Untracked;
        }
        while self.highest.len() >= self.cap {
            self.drop_oldest();
        }
        self.highest.insert(id, nc);
        NcVerdict::Accepted
    }
}

/// Issues stateless nonces for one realm and verifies the answers, refusing replays.
pub struct DigestChallenger {
    realm: String,
    secret: [u8; 32],
    nonce_ttl: Duration,
    algorithms: Vec<DigestAlgorithm>,
    nonce_counts: NonceCounts,
}

impl std::fmt::Debug for DigestChallenger {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestChallenger")
            .field("realm", &self.realm)
            .field("nonce_ttl", &self.nonce_ttl)
            .field("algorithms", &self.algorithms)
            .field("tracked_nonces", &self.nonce_counts.highest.len())
            .finish_non_exhaustive()
    }
}

impl DigestChallenger {
    pub fn new(realm: impl Into<String>, secret: [u8; 32], nonce_ttl: Duration) -> Self {
        DigestChallenger {
            realm: realm.into(),
            secret,
            nonce_ttl,
            algorithms: vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
            nonce_counts: NonceCounts::new(MAX_TRACKED_NONCES),
        }
    }

    /// Offer these algorithms, in this order of preference, instead of SHA-256 then MD5.
    /// Verification accepts only these.
    pub fn with_algorithms(mut self, algorithms: Vec<DigestAlgorithm>) -> Self {
        if !algorithms.is_empty() {
            self.algorithms = algorithms;
        }
        self
    }

    /// Bound the nonce-count table to `max` entries (default [`MAX_TRACKED_NONCES`], minimum 1).
    /// Beyond it the nonces issued longest ago are forgotten, and answers to them get Stale.
    pub fn with_max_tracked_nonces(mut self, max: usize) -> Self {
        self.nonce_counts = NonceCounts::new(max);
        self
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Nonces whose `nc` is being remembered (for metrics).
    pub fn tracked_nonces(&self) -> usize {
        self.nonce_counts.highest.len()
    }

    /// Challenge header VALUES (for WWW-Authenticate on 401 or Proxy-Authenticate on 407): one
    /// per algorithm, SHA-256 first then MD5 (RFC 8760 §2.4: the server lists them in order of
    /// preference; old UAs skip the SHA-256 one they do not understand). They share one fresh
    /// nonce.
    pub fn challenges(&self, now_unix: u64, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now_unix);
        self.algorithms
            .iter()
            .map(|alg| {
                let mut v = String::with_capacity(176);
                v.push_str("Digest realm=");
                push_quoted(&mut v, &self.realm);
                v.push_str(", nonce=\"");
                v.push_str(&nonce);
                v.push_str("\", qop=\"auth\", algorithm=");
                v.push_str(alg.token());
                if stale {
                    v.push_str(", stale=true");
                }
                v
            })
            .collect()
    }

    fn nonce(&self, issued_unix: u64) -> String {
        self.nonce_with_salt(issued_unix, rand::random())
    }

    /// nonce = hex(issue time, 8 bytes big-endian ‖ salt ‖ HMAC-SHA256(secret, time ‖ salt ‖
    /// realm)[..16]). The realm in the MAC ties a nonce to this realm: one secret can serve
    /// several realms.
    fn nonce_with_salt(&self, issued_unix: u64, salt: [u8; NONCE_SALT_LEN]) -> String {
        let mut raw = [0u8; NONCE_LEN];
        raw[..8].copy_from_slice(&issued_unix.to_be_bytes());
        raw[8..16].copy_from_slice(&salt);
        raw[16..].copy_from_slice(&self.nonce_mac(issued_unix, &salt)[..NONCE_MAC_LEN]);
        hex::encode(raw)
    }

    fn nonce_mac(&self, issued_unix: u64, salt: &[u8; NONCE_SALT_LEN]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(&issued_unix.to_be_bytes());
        mac.update(salt);
        mac.update(self.realm.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Returns the identity of a nonce minted by us for this realm, or None if forged. The
    /// nonce is peer data: it is checked as bytes (ASCII hex of the exact length) before any
    /// decoding, so no multi-byte character can land on a slice boundary.
    fn check_nonce(&self, nonce: &str) -> Option<NonceId> {
        let hex_digits = nonce.as_bytes();
        if hex_digits.len() != 2 * NONCE_LEN || !hex_digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let mut raw = [0u8; NONCE_LEN];
        hex::decode_to_slice(hex_digits, &mut raw).ok()?;
        let (time, rest) = raw.split_at(8);
        let (salt, mac) = rest.split_at(NONCE_SALT_LEN);
        let time = u64::from_be_bytes(time.try_into().ok()?);
        let salt: [u8; NONCE_SALT_LEN] = salt.try_into().ok()?;
        ct_eq(mac, &self.nonce_mac(time, &salt)[..NONCE_MAC_LEN]).then_some((time, salt))
    }

    /// Verify an Authorization / Proxy-Authorization header value of a `method` request sent
    /// to `request_uri`. `lookup(username)` returns the password.
    ///
    /// Call once per request, not per retransmission (the transaction layer absorbs those): an
    /// accepted answer's `nc` is remembered, and the same `nc` on the same nonce is then
    /// Rejected as a replay.
    pub fn verify(
        &mut self,
        now_unix: u64,
        method: &str,
        request_uri: &str,
        header_value: &str,
        lookup: impl FnOnce(&str) -> Option<String>,
    ) -> AuthOutcome {
        if header_value.len() > MAX_HEADER_LEN {
            return AuthOutcome::Malformed;
        }
        let (scheme, rest) = split_scheme(header_value);
        if scheme.is_empty() {
            return AuthOutcome::Malformed;
        }
        if !scheme.eq_ignore_ascii_case("Digest") {
            return AuthOutcome::UnsupportedScheme;
        }
        let Some(params) = parse_params(rest) else {
            return AuthOutcome::Malformed;
        };
        let (Some(username), Some(realm), Some(nonce), Some(uri), Some(response)) = (
            params.get("username"),
            params.get("realm"),
            params.get("nonce"),
            params.get("uri"),
            params.get("response"),
        ) else {
            return AuthOutcome::Malformed;
        };
        let username = username.to_owned();
        let reject = |reason| AuthOutcome::Rejected {
            username: Some(username.clone()),
            reason,
        };

        // RFC 7616 §3.4: no algorithm= means MD5. An algorithm we did not offer (e.g. MD5 when
        // only SHA-256 is configured) would let a client pick the weaker hash.
        let (alg, sess) = match params.get("algorithm") {
            None => (DigestAlgorithm::Md5, false),
            Some(a) => match DigestAlgorithm::parse(a) {
                Some(x) => x,
                None => return reject("unsupported algorithm"),
            },
        };
        // We never offer -sess either.
        if sess || !self.algorithms.contains(&alg) {
            return reject("algorithm not offered");
        }
        // Our challenges always say qop="auth". An RFC 2069 answer (no qop) carries no nc, so
        // it could not be told apart from a replay.
        let (nc_hex, cnonce) = match params.get("qop") {
            None => return reject("qop missing"),
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                match (params.get("nc"), params.get("cnonce")) {
                    (Some(nc), Some(cn)) if is_nc(nc) => (nc, cn),
                    _ => return AuthOutcome::Malformed,
                }
            }
            Some(_) => return reject("qop not offered"),
        };
        // nc counts the requests made with this nonce, this one included (RFC 7616 §3.4.5).
        let Ok(nc @ 1..) = u32::from_str_radix(nc_hex, 16) else {
            return AuthOutcome::Malformed;
        };
        if realm != self.realm {
            return reject("realm mismatch");
        }
        let Some(nonce_id) = self.check_nonce(nonce) else {
            return reject("nonce not issued by us");
        };
        if !digest_uri_matches(uri, request_uri) {
            return reject("digest uri does not match the Request-URI");
        }
        // Compute the digest even for an unknown user so the reply time does not tell
        // which usernames exist.
        let password = lookup(&username);
        let ha1 = alg.hash_hex(&[&username, realm, password.as_deref().unwrap_or("")]);
        let ha2 = alg.hash_hex(&[method, uri]);
        let expected = alg.hash_hex(&[&ha1, nonce, nc_hex, cnonce, "auth", &ha2]);
        // Compare the decoded bytes: a client may send the hex in upper case.
        let matches = hex::decode(response)
            .map(|got| ct_eq(&got, &hex::decode(&expected).expect("our own hex")))
            .unwrap_or(false);
        if password.is_none() {
            return reject("unknown user");
        }
        if !matches {
            return reject("response mismatch");
        }

        let ttl_secs = self.nonce_ttl.as_secs().max(1);
        let issued = nonce_id.0;
        let fresh = issued <= now_unix.saturating_add(CLOCK_SKEW_SECS)
            && now_unix.saturating_sub(issued) < ttl_secs;
        if !fresh {
            return AuthOutcome::Stale { username };
        }
        match self.nonce_counts.accept(nonce_id, nc, now_unix, ttl_secs) {
            NcVerdict::Accepted => AuthOutcome::Authorized { username },
            NcVerdict::Replayed => reject("replayed nonce count"),
            NcVerdict::Untracked => AuthOutcome::Stale { username },
        }
    }
}

/// RFC 7616 §3.4.6 lets the server check that the digest `uri` names the request's target;
/// without it an answer captured for one call authorizes a call to any number. A whole-URI
/// match passes. Otherwise only the user part (the number) is compared, and only when the
/// digest `uri` has one: SIPp's `[authentication]` sends `uri="sip:HOST:PORT"` on INVITEs.
/// A digest `uri` we cannot parse and that is not the Request-URI fails.
fn digest_uri_matches(digest_uri: &str, request_uri: &str) -> bool {
    if digest_uri == request_uri {
        return true;
    }
    let Ok(claimed) = Uri::parse(digest_uri) else {
        return false;
    };
    let Some(claimed_target) = uri_target(&claimed) else {
        return true;
    };
    Uri::parse(request_uri)
        .ok()
        .and_then(|r| uri_target(&r).map(|t| t == claimed_target))
        .unwrap_or(false)
}

/// The number or user a URI addresses: the unescaped user part of a sip/sips URI (RFC 3261
/// §19.1.4: escaped and unescaped forms are equal), the global or local number of a tel URI
/// (RFC 3966 §3). None when there is no user part.
fn uri_target<'a>(uri: &Uri<'a>) -> Option<Cow<'a, str>> {
    if uri.is_sip() {
        uri.user_unescaped().filter(|u| !u.is_empty())
    } else if uri.scheme.eq_ignore_ascii_case("tel") {
        let number = uri.host.split(';').next().unwrap_or("");
        (!number.is_empty()).then_some(Cow::Borrowed(number))
    } else {
        None
    }
}

/// UAC side: parse a challenge header value and compute the Authorization header value
/// (qop=auth with cnonce and nc, or RFC 2069 style when the challenge has no qop).
/// Supports MD5, SHA-256 and their `-sess` variants (RFC 7616 §3.4.2).
pub fn authorization_for(
    challenge: &str,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> Result<String, AuthError> {
    let (scheme, rest) = split_scheme(challenge);
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(AuthError::UnsupportedScheme);
    }
    let params = parse_params(rest).ok_or(AuthError::Malformed("parameter syntax"))?;
    let realm = params
        .get("realm")
        .ok_or(AuthError::Malformed("no realm"))?;
    let nonce = params
        .get("nonce")
        .ok_or(AuthError::Malformed("no nonce"))?;
    let alg_token = params.get("algorithm").unwrap_or("MD5");
    let (alg, sess) = DigestAlgorithm::parse(alg_token)
        .ok_or_else(|| AuthError::UnsupportedAlgorithm(alg_token.to_owned()))?;
    // qop in a challenge is a quoted, comma-separated list (RFC 7616 §3.3).
    let use_qop = match params.get("qop") {
        None => false,
        Some(list) => {
            if list
                .split(',')
                .any(|q| q.trim().eq_ignore_ascii_case("auth"))
            {
                true
            } else {
                return Err(AuthError::UnsupportedQop(list.to_owned()));
            }
        }
    };

    let nc_hex = format!("{nc:08x}");
    let mut ha1 = alg.hash_hex(&[username, realm, password]);
    if sess {
        ha1 = alg.hash_hex(&[&ha1, nonce, cnonce]);
    }
    let ha2 = alg.hash_hex(&[method, uri]);
    let response = if use_qop {
        alg.hash_hex(&[&ha1, nonce, &nc_hex, cnonce, "auth", &ha2])
    } else {
        alg.hash_hex(&[&ha1, nonce, &ha2])
    };

    let mut v = String::with_capacity(256);
    v.push_str("Digest username=");
    push_quoted(&mut v, username);
    v.push_str(", realm=");
    push_quoted(&mut v, realm);
    v.push_str(", nonce=");
    push_quoted(&mut v, nonce);
    v.push_str(", uri=");
    push_quoted(&mut v, uri);
    let _ = write!(v, ", response=\"{response}\", algorithm={alg_token}");
    if use_qop || sess {
        v.push_str(", cnonce=");
        push_quoted(&mut v, cnonce);
    }
    if let Some(opaque) = params.get("opaque") {
        v.push_str(", opaque=");
        push_quoted(&mut v, opaque);
    }
    if use_qop {
        let _ = write!(v, ", qop=auth, nc={nc_hex}");
    }
    Ok(v)
}

/// Splits `Scheme rest` at the first whitespace. The scheme is empty for an empty value.
fn split_scheme(value: &str) -> (&str, &str) {
    let value = value.trim_start_matches(is_lws);
    let end = value.find(is_lws).unwrap_or(value.len());
    (&value[..end], &value[end..])
}

fn is_lws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// `nc` is exactly 8 hex digits (RFC 7616 §3.4).
fn is_nc(s: &str) -> bool {
    s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Digest parameters, names lowercased, values unquoted and unescaped.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `name = value` pairs separated by commas (RFC 7616 §3.4: auth-param with LWS around
/// `=`, values as token or quoted-string with `\` escapes). Duplicate names are malformed
/// (RFC 7616 §3.4: each parameter MUST NOT appear more than once), and so are more than
/// [`MAX_PARAMS`].
fn parse_params(s: &str) -> Option<Params> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut chars = s.char_indices().peekable();
    let skip_lws = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while chars.next_if(|&(_, c)| is_lws(c)).is_some() {}
    };
    loop {
        // Separators: any run of whitespace and commas (empty list elements are allowed).
        while chars.next_if(|&(_, c)| is_lws(c) || c == ',').is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        while chars.next_if(|&(_, c)| is_token_char(c)).is_some() {}
        let end = chars.peek().map_or(s.len(), |&(i, _)| i);
        if end == start {
            return None;
        }
        let name = s[start..end].to_ascii_lowercase();
        skip_lws(&mut chars);
        chars.next_if(|&(_, c)| c == '=')?;
        skip_lws(&mut chars);
        let value = if chars.next_if(|&(_, c)| c == '"').is_some() {
            let mut v = String::new();
            loop {
                match chars.next()? {
                    (_, '"') => break,
                    (_, '\\') => v.push(chars.next()?.1),
                    (_, c) => v.push(c),
                }
            }
            v
        } else {
            let vstart = chars.peek()?.0;
            while chars.next_if(|&(_, c)| is_token_char(c)).is_some() {}
            let vend = chars.peek().map_or(s.len(), |&(i, _)| i);
            if vend == vstart {
                return None;
            }
            s[vstart..vend].to_owned()
        };
        skip_lws(&mut chars);
        match chars.peek() {
            None | Some((_, ',')) => {}
            Some(_) => return None,
        }
        if out.len() == MAX_PARAMS || out.iter().any(|(n, _)| *n == name) {
            return None;
        }
        out.push((name, value));
    }
    Some(Params(out))
}

/// RFC 3261 §25.1 token characters (plus '/' which appears unquoted in some nonces and URIs
/// sent by lenient UAs).
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~/:@".contains(c)
}

fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Constant-time equality: the time taken depends only on the lengths.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenger() -> DigestChallenger {
        DigestChallenger::new("switchyard.test", [7u8; 32], Duration::from_secs(300))
    }

    fn pw(user: &str) -> Option<String> {
        (user == "1000").then(|| "pass1000".to_owned())
    }

    const T0: u64 = 1_700_000_000;
    const RURI: &str = "sip:2000@switchyard.test";

    fn authorized() -> AuthOutcome {
        AuthOutcome::Authorized {
            username: "1000".into(),
        }
    }

    fn rejected(reason: &'static str) -> AuthOutcome {
        AuthOutcome::Rejected {
            username: Some("1000".into()),
            reason,
        }
    }

    /// An answer for user 1000 to `ch`'s first (SHA-256) challenge issued at `at`.
    fn answer_with(
        ch: &DigestChallenger,
        at: u64,
        method: &str,
        uri: &str,
        password: &str,
        nc: u32,
    ) -> String {
        let challenge = &ch.challenges(at, false)[0];
        authorization_for(challenge, method, uri, "1000", password, "0a4f113b", nc).unwrap()
    }

    fn answer(ch: &DigestChallenger, at: u64, password: &str) -> String {
        answer_with(ch, at, "REGISTER", "sip:x", password, 7)
    }

    /// The same answer re-signed for another `nc` on the same nonce, as a UA reusing a nonce does.
    fn with_nc(ch: &DigestChallenger, auth: &str, method: &str, uri: &str, nc: u32) -> String {
        let nonce = nonce_of(auth);
        let challenge = format!(
            r#"Digest realm="{}", nonce="{nonce}", qop="auth", algorithm=SHA-256"#,
            ch.realm()
        );
        authorization_for(&challenge, method, uri, "1000", "pass1000", "0a4f113b", nc).unwrap()
    }

    fn nonce_of(header: &str) -> String {
        let start = header.find("nonce=\"").unwrap() + 7;
        let len = header[start..].find('"').unwrap();
        header[start..start + len].to_owned()
    }

    #[test]
    fn rfc2617_section_3_5_vector() {
        let challenge = r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let v = authorization_for(
            challenge,
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle Of Life",
            "0a4f113b",
            1,
        )
        .unwrap();
        assert!(
            v.contains(r#"response="6629fae49393a05397450978507c4ef1""#),
            "{v}"
        );
        assert!(v.contains("nc=00000001"), "{v}");
        assert!(
            v.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#),
            "{v}"
        );
        assert!(v.contains("qop=auth,") || v.contains("qop=auth"), "{v}");
    }

    #[test]
    fn rfc7616_section_3_9_1_vectors() {
        let base = r#"Digest realm="http-auth@example.org", qop="auth, auth-int", nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let sha = authorization_for(
            &format!("{base}, algorithm=SHA-256"),
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle of Life",
            cnonce,
            1,
        )
        .unwrap();
        assert!(
            sha.contains(
                r#"response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1""#
            ),
            "{sha}"
        );
        let md5 = authorization_for(
            &format!("{base}, algorithm=MD5"),
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle of Life",
            cnonce,
            1,
        )
        .unwrap();
        assert!(
            md5.contains(r#"response="8ca523f5e9506fed4657c9700eebdbec""#),
            "{md5}"
        );
    }

    #[test]
    fn challenges_list_sha256_first_then_md5() {
        let c = challenger().challenges(T0, false);
        assert_eq!(c.len(), 2);
        assert!(
            c[0].starts_with("Digest realm=\"switchyard.test\""),
            "{}",
            c[0]
        );
        assert!(c[0].ends_with("algorithm=SHA-256"), "{}", c[0]);
        assert!(c[1].ends_with("algorithm=MD5"), "{}", c[1]);
        assert!(
            c.iter()
                .all(|v| v.contains("qop=\"auth\"") && !v.contains("stale"))
        );
        // Both algorithms answer the same nonce: time ‖ salt ‖ MAC, 64 hex digits.
        assert_eq!(nonce_of(&c[0]), nonce_of(&c[1]));
        assert_eq!(nonce_of(&c[0]).len(), 64);
        let s = challenger().challenges(T0, true);
        assert!(s.iter().all(|v| v.contains("stale=true")));
    }

    #[test]
    fn two_challenges_in_the_same_second_differ() {
        let ch = challenger();
        let nonces: std::collections::HashSet<String> = (0..100)
            .map(|_| nonce_of(&ch.challenges(T0, false)[0]))
            .collect();
        assert_eq!(nonces.len(), 100);
        // Each still verifies (stateless) and carries its issue time.
        for n in &nonces {
            assert_eq!(ch.check_nonce(n).map(|id| id.0), Some(T0), "{n}");
        }
    }

    #[test]
    fn round_trip_both_algorithms() {
        let mut ch = challenger();
        for (i, challenge) in ch.challenges(T0, false).iter().enumerate() {
            let auth = authorization_for(
                challenge,
                "REGISTER",
                "sip:switchyard.test",
                "1000",
                "pass1000",
                "abcdef",
                1,
            )
            .unwrap();
            let alg = if i == 0 { "SHA-256" } else { "MD5" };
            assert!(auth.contains(&format!("algorithm={alg}")), "{auth}");
            // The method is part of HA2: the answer does not authorize an INVITE (and a failed
            // attempt does not use up the nc).
            assert_eq!(
                ch.verify(T0 + 10, "INVITE", "sip:switchyard.test", &auth, pw),
                rejected("response mismatch")
            );
            let outcome = ch.verify(T0 + 10, "REGISTER", "sip:switchyard.test", &auth, pw);
            if i == 0 {
                assert_eq!(outcome, authorized());
            } else {
                // Same nonce as the SHA-256 challenge, nc 1 already used.
                assert_eq!(outcome, rejected("replayed nonce count"));
            }
        }
    }

    #[test]
    fn md5_round_trip_on_its_own_nonce() {
        let mut ch = challenger();
        let challenge = &ch.challenges(T0, false)[1];
        let auth =
            authorization_for(challenge, "INVITE", RURI, "1000", "pass1000", "c", 1).unwrap();
        assert!(auth.contains("algorithm=MD5"), "{auth}");
        assert_eq!(ch.verify(T0, "INVITE", RURI, &auth, pw), authorized());
    }

    #[test]
    fn answer_without_qop_rejected() {
        let mut ch = challenger();
        // Answering as if the challenge had no qop gives the RFC 2069 form: no nc, no cnonce.
        let nonce = ch.nonce(T0);
        let challenge = format!(r#"Digest realm="switchyard.test", nonce="{nonce}""#);
        let auth =
            authorization_for(&challenge, "INVITE", RURI, "1000", "pass1000", "c", 1).unwrap();
        assert!(!auth.contains("qop") && !auth.contains("cnonce"), "{auth}");
        assert_eq!(
            ch.verify(T0, "INVITE", RURI, &auth, pw),
            rejected("qop missing")
        );
        assert_eq!(ch.tracked_nonces(), 0);
    }

    #[test]
    fn replayed_nc_rejected_increasing_nc_accepted() {
        let mut ch = challenger();
        let first = answer_with(&ch, T0, "INVITE", RURI, "pass1000", 1);
        assert_eq!(ch.verify(T0 + 1, "INVITE", RURI, &first, pw), authorized());
        // The captured header, resent within the TTL.
        assert_eq!(
            ch.verify(T0 + 2, "INVITE", RURI, &first, pw),
            rejected("replayed nonce count")
        );
        // The UA reusing its nonce with the next nc: fine, any step upward too.
        let n2 = with_nc(&ch, &first, "INVITE", RURI, 2);
        assert_eq!(ch.verify(T0 + 3, "INVITE", RURI, &n2, pw), authorized());
        let n9 = with_nc(&ch, &first, "INVITE", RURI, 9);
        assert_eq!(ch.verify(T0 + 4, "INVITE", RURI, &n9, pw), authorized());
        // Going back, or repeating the highest, is a replay.
        for nc in [1, 2, 8, 9] {
            let old = with_nc(&ch, &first, "INVITE", RURI, nc);
            assert_eq!(
                ch.verify(T0 + 5, "INVITE", RURI, &old, pw),
                rejected("replayed nonce count"),
                "nc {nc}"
            );
        }
        // Counts are per nonce: nc 1 on a new nonce is fine.
        let other = answer_with(&ch, T0, "INVITE", RURI, "pass1000", 1);
        assert_ne!(nonce_of(&other), nonce_of(&first));
        assert_eq!(ch.verify(T0 + 6, "INVITE", RURI, &other, pw), authorized());
        assert_eq!(ch.tracked_nonces(), 2);
    }

    #[test]
    fn wrong_and_stale_answers_do_not_use_up_the_nc() {
        let mut ch = challenger();
        let wrong = answer_with(&ch, T0, "INVITE", RURI, "guess", 1);
        assert_eq!(
            ch.verify(T0, "INVITE", RURI, &wrong, pw),
            rejected("response mismatch")
        );
        let right = with_nc(&ch, &wrong, "INVITE", RURI, 1);
        assert_eq!(ch.verify(T0, "INVITE", RURI, &right, pw), authorized());

        let late = answer_with(&ch, T0, "INVITE", RURI, "pass1000", 1);
        assert_eq!(
            ch.verify(T0 + 300, "INVITE", RURI, &late, pw),
            AuthOutcome::Stale {
                username: "1000".into()
            }
        );
        assert_eq!(ch.tracked_nonces(), 1);
    }

    #[test]
    fn stale_after_ttl_only_when_digest_right() {
        let mut ch = challenger();
        let auth = answer(&ch, T0, "pass1000");
        assert_eq!(
            ch.verify(T0 + 299, "REGISTER", "sip:x", &auth, pw),
            authorized()
        );
        assert_eq!(
            ch.verify(T0 + 300, "REGISTER", "sip:x", &auth, pw),
            AuthOutcome::Stale {
                username: "1000".into()
            }
        );
        let wrong = answer(&ch, T0, "guess");
        assert_eq!(
            ch.verify(T0 + 300, "REGISTER", "sip:x", &wrong, pw),
            rejected("response mismatch")
        );
        // A nonce stamped far in the future is not fresh either.
        let future = answer(&ch, T0 + 3600, "pass1000");
        assert!(matches!(
            ch.verify(T0, "REGISTER", "sip:x", &future, pw),
            AuthOutcome::Stale { .. }
        ));
    }

    #[test]
    fn forged_nonce_rejected() {
        let mut ch = challenger();
        let nonce = ch.nonce(T0);
        // Move the issue time forward (to dodge expiry), or change the salt (to get a fresh nc
        // slate), keeping the MAC: both must be rejected.
        let later = format!("{}{}", hex::encode((T0 + 1000).to_be_bytes()), &nonce[16..]);
        let resalted = format!("{}{}{}", &nonce[..16], "00".repeat(8), &nonce[32..]);
        assert_ne!(resalted, nonce);
        for forged_nonce in [later, resalted] {
            let forged_challenge =
                format!(r#"Digest realm="switchyard.test", nonce="{forged_nonce}", qop="auth""#);
            let forged = authorization_for(
                &forged_challenge,
                "REGISTER",
                "sip:x",
                "1000",
                "pass1000",
                "c",
                1,
            )
            .unwrap();
            assert_eq!(
                ch.verify(T0 + 10, "REGISTER", "sip:x", &forged, pw),
                rejected("nonce not issued by us")
            );
        }
        // Another secret's nonce is not ours.
        let other = DigestChallenger::new("switchyard.test", [8u8; 32], Duration::from_secs(300));
        let foreign = answer(&other, T0, "pass1000");
        assert_eq!(
            ch.verify(T0, "REGISTER", "sip:x", &foreign, pw),
            rejected("nonce not issued by us")
        );
    }

    #[test]
    fn nonce_is_checked_as_ascii_hex_before_slicing() {
        let ch = challenger();
        let good = ch.nonce(T0);
        // Upper-case hex is the same nonce.
        assert_eq!(
            ch.check_nonce(&good.to_ascii_uppercase()),
            ch.check_nonce(&good)
        );
        assert!(ch.check_nonce(&good).is_some());
        // Right byte length, but a two-byte character straddles each slice boundary (the old
        // 48-byte layout split at byte 16, the new one decodes 8/8/16 bytes).
        for at in [15, 16, 31, 32, 62] {
            let mut s = String::from(&good[..at]);
            s.push('é');
            s.push_str(&good[at + 2..]);
            assert_eq!(s.len(), good.len());
            assert_eq!(ch.check_nonce(&s), None, "{s}");
        }
        let mut old_layout = "0".repeat(15);
        old_layout.push('é');
        old_layout.push_str(&"0".repeat(31));
        assert_eq!(old_layout.len(), 48);
        assert_eq!(ch.check_nonce(&old_layout), None);
        for junk in ["", "é", &"g".repeat(64), &"€".repeat(21), &good[..63]] {
            assert_eq!(ch.check_nonce(junk), None, "{junk}");
        }
    }

    #[test]
    fn nonce_is_tied_to_realm() {
        let a = DigestChallenger::new("a.test", [1u8; 32], Duration::from_secs(300));
        let mut b = DigestChallenger::new("b.test", [1u8; 32], Duration::from_secs(300));
        assert_ne!(a.nonce_with_salt(T0, [5; 8]), b.nonce_with_salt(T0, [5; 8]));
        // An answer to realm a.test presented to b.test: wrong realm.
        let for_a = authorization_for(
            &a.challenges(T0, false)[1],
            "REGISTER",
            "sip:x",
            "1000",
            "pass1000",
            "c",
            1,
        )
        .unwrap();
        assert_eq!(
            b.verify(T0, "REGISTER", "sip:x", &for_a, pw),
            rejected("realm mismatch")
        );
        // a's nonce relabelled with realm b.test (same secret): the MAC does not verify.
        let a_nonce = a.nonce(T0);
        let relabelled = format!(r#"Digest realm="b.test", nonce="{a_nonce}", qop="auth""#);
        let auth = authorization_for(&relabelled, "REGISTER", "sip:x", "1000", "pass1000", "c", 1)
            .unwrap();
        assert_eq!(
            b.verify(T0, "REGISTER", "sip:x", &auth, pw),
            rejected("nonce not issued by us")
        );
    }

    #[test]
    fn digest_uri_user_must_match_the_request_uri() {
        let mut ch = challenger();
        let to_2000 = answer_with(&ch, T0, "INVITE", "sip:2000@switchyard.test", "pass1000", 1);
        // Replayed to call a premium number: refused before the nc is even looked at.
        assert_eq!(
            ch.verify(T0, "INVITE", "sip:09001234@switchyard.test", &to_2000, pw),
            rejected("digest uri does not match the Request-URI")
        );
        assert_eq!(
            ch.verify(T0, "INVITE", "sip:switchyard.test", &to_2000, pw),
            rejected("digest uri does not match the Request-URI")
        );
        assert_eq!(
            ch.verify(T0, "INVITE", "not a uri", &to_2000, pw),
            rejected("digest uri does not match the Request-URI")
        );
        // Same user, other host, port or parameters: only the number is compared.
        assert_eq!(
            ch.verify(
                T0,
                "INVITE",
                "sip:2000@10.0.0.5:5060;user=phone",
                &to_2000,
                pw
            ),
            authorized()
        );
        // Escaped and unescaped user parts are equal (RFC 3261 §19.1.4).
        let escaped = answer_with(&ch, T0, "INVITE", "sip:%32000@x", "pass1000", 1);
        assert_eq!(
            ch.verify(T0, "INVITE", "sip:2000@switchyard.test", &escaped, pw),
            authorized()
        );
        // tel: targets compare by number.
        let tel = answer_with(
            &ch,
            T0,
            "INVITE",
            "tel:+15551234;phone-context=x",
            "pass1000",
            1,
        );
        assert_eq!(
            ch.verify(T0, "INVITE", "sip:+15559999@switchyard.test", &tel, pw),
            rejected("digest uri does not match the Request-URI")
        );
        assert_eq!(
            ch.verify(T0, "INVITE", "sip:+15551234@switchyard.test", &tel, pw),
            authorized()
        );
    }

    #[test]
    fn sipp_style_digest_uri_without_user_accepted() {
        let mut ch = challenger();
        // SIPp's [authentication] keyword answers an INVITE with uri="sip:HOST:PORT".
        let sipp = answer_with(&ch, T0, "INVITE", "sip:192.0.2.10:5060", "pass1000", 1);
        assert_eq!(
            ch.verify(T0, "INVITE", "sip:2000@192.0.2.10:5060", &sipp, pw),
            authorized()
        );
        // A whole-URI match passes even when we cannot parse it.
        let odd = answer_with(&ch, T0, "INVITE", "/dir/index.html", "pass1000", 1);
        assert_eq!(
            ch.verify(T0, "INVITE", "/dir/index.html", &odd, pw),
            authorized()
        );
        let odd = answer_with(&ch, T0, "INVITE", "/dir/index.html", "pass1000", 1);
        assert_eq!(
            ch.verify(T0, "INVITE", RURI, &odd, pw),
            rejected("digest uri does not match the Request-URI")
        );
    }

    #[test]
    fn algorithm_not_offered_rejected() {
        let mut ch = challenger().with_algorithms(vec![DigestAlgorithm::Sha256]);
        assert_eq!(ch.challenges(T0, false).len(), 1);
        let nonce = ch.nonce(T0);
        let md5 = format!(
            r#"Digest realm="switchyard.test", nonce="{nonce}", qop="auth", algorithm=MD5"#
        );
        let explicit = authorization_for(&md5, "INVITE", RURI, "1000", "pass1000", "c", 1).unwrap();
        assert_eq!(
            ch.verify(T0, "INVITE", RURI, &explicit, pw),
            rejected("algorithm not offered")
        );
        // No algorithm= means MD5 (RFC 7616 §3.4): not offered either.
        let implicit = explicit.replace(", algorithm=MD5", "");
        assert!(!implicit.contains("algorithm"), "{implicit}");
        assert_eq!(
            ch.verify(T0, "INVITE", RURI, &implicit, pw),
            rejected("algorithm not offered")
        );
        // With MD5 offered, the implicit form is accepted.
        let mut both = challenger();
        assert_eq!(both.verify(T0, "INVITE", RURI, &implicit, pw), authorized());
        // SHA-256 stays fine on the SHA-256-only challenger.
        let sha = answer_with(&ch, T0, "INVITE", RURI, "pass1000", 1);
        assert_eq!(ch.verify(T0, "INVITE", RURI, &sha, pw), authorized());
    }

    #[test]
    fn nonce_table_honours_its_cap_oldest_first() {
        let mut ch = challenger().with_max_tracked_nonces(3);
        let answers: Vec<String> = (0..5)
            .map(|i| answer_with(&ch, T0 + i, "INVITE", RURI, "pass1000", 1))
            .collect();
        for a in &answers {
            assert_eq!(ch.verify(T0 + 10, "INVITE", RURI, a, pw), authorized());
            assert!(ch.tracked_nonces() <= 3);
        }
        assert_eq!(ch.tracked_nonces(), 3);
        // The two oldest were forgotten: a later nc on them cannot be told from a replay, so
        // the UA is sent for a fresh nonce instead of being let in.
        for a in &answers[..2] {
            let next = with_nc(&ch, a, "INVITE", RURI, 2);
            assert_eq!(
                ch.verify(T0 + 11, "INVITE", RURI, &next, pw),
                AuthOutcome::Stale {
                    username: "1000".into()
                }
            );
        }
        // The newest are still tracked.
        for a in &answers[2..] {
            assert_eq!(
                ch.verify(T0 + 11, "INVITE", RURI, a, pw),
                rejected("replayed nonce count")
            );
        }
        // An unused nonce issued before the forgotten ones is untrackable too.
        let mut older = challenger().with_max_tracked_nonces(1);
        let early = answer_with(&older, T0, "INVITE", RURI, "pass1000", 1);
        let a = answer_with(&older, T0 + 1, "INVITE", RURI, "pass1000", 1);
        let b = answer_with(&older, T0 + 2, "INVITE", RURI, "pass1000", 1);
        assert_eq!(older.verify(T0 + 3, "INVITE", RURI, &a, pw), authorized());
        assert_eq!(older.verify(T0 + 3, "INVITE", RURI, &b, pw), authorized());
        assert!(matches!(
            older.verify(T0 + 3, "INVITE", RURI, &early, pw),
            AuthOutcome::Stale { .. }
        ));
        assert_eq!(older.tracked_nonces(), 1);
    }

    #[test]
    fn default_cap_is_200k() {
        let mut ch = challenger();
        assert_eq!(ch.nonce_counts.cap, MAX_TRACKED_NONCES);
        // Fill the table directly (200k SHA-256 digests would make a slow test), then one
        // real answer: the count stays at the cap and the oldest went.
        for i in 0..MAX_TRACKED_NONCES as u64 {
            let salt = i.to_be_bytes();
            assert!(matches!(
                ch.nonce_counts.accept((T0, salt), 1, T0, 300),
                NcVerdict::Accepted
            ));
        }
        assert_eq!(ch.tracked_nonces(), MAX_TRACKED_NONCES);
        let a = answer_with(&ch, T0 + 1, "INVITE", RURI, "pass1000", 1);
        assert_eq!(ch.verify(T0 + 1, "INVITE", RURI, &a, pw), authorized());
        assert_eq!(ch.tracked_nonces(), MAX_TRACKED_NONCES);
        assert!(
            !ch.nonce_counts
                .highest
                .contains_key(&(T0, 0u64.to_be_bytes()))
        );
    }

    #[test]
    fn expired_entries_pruned_and_not_revived_by_a_clock_step_back() {
        let mut ch = challenger();
        let a = answer_with(&ch, T0, "INVITE", RURI, "pass1000", 1);
        assert_eq!(ch.verify(T0, "INVITE", RURI, &a, pw), authorized());
        let b = answer_with(&ch, T0 + 400, "INVITE", RURI, "pass1000", 1);
        assert_eq!(ch.verify(T0 + 400, "INVITE", RURI, &b, pw), authorized());
        // a's entry expired with its nonce and was pruned on the insert of b.
        assert_eq!(ch.tracked_nonces(), 1);
        // If the clock steps back into a's lifetime, a's replay is still not accepted.
        assert!(matches!(
            ch.verify(T0 + 10, "INVITE", RURI, &a, pw),
            AuthOutcome::Stale { .. }
        ));
    }

    #[test]
    fn wrong_password_and_unknown_user_rejected() {
        let mut ch = challenger();
        let wrong = answer(&ch, T0, "pass1001");
        assert_eq!(
            ch.verify(T0, "REGISTER", "sip:x", &wrong, pw),
            rejected("response mismatch")
        );
        let right = answer(&ch, T0, "pass1000");
        assert_eq!(
            ch.verify(T0, "REGISTER", "sip:x", &right, |_| None),
            rejected("unknown user")
        );
    }

    #[test]
    fn unknown_scheme_from_rfc4475_regaut01() {
        let mut ch = challenger();
        assert_eq!(
            ch.verify(
                T0,
                "REGISTER",
                "sip:x",
                "NoOneKnowsThisScheme opaque-data=here",
                pw
            ),
            AuthOutcome::UnsupportedScheme
        );
        assert_eq!(
            ch.verify(
                T0,
                "REGISTER",
                "sip:x",
                "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
                pw
            ),
            AuthOutcome::UnsupportedScheme
        );
        assert_eq!(
            authorization_for("Basic realm=\"x\"", "REGISTER", "sip:x", "u", "p", "c", 1),
            Err(AuthError::UnsupportedScheme)
        );
    }

    #[test]
    fn malformed_headers() {
        let mut ch = challenger();
        let nonce = ch.nonce(T0);
        let base = format!(
            r#"Digest username="1000", realm="switchyard.test", nonce="{nonce}", uri="sip:x", response="00""#
        );
        let many: String = (0..MAX_PARAMS).map(|i| format!(", p{i}=1")).collect();
        let cases = [
            String::new(),
            "Digest".to_owned(),
            // Missing response.
            format!(
                r#"Digest username="1000", realm="switchyard.test", nonce="{nonce}", uri="sip:x""#
            ),
            // Unterminated quoted string.
            format!(r#"Digest username="1000, realm="switchyard.test", nonce="{nonce}""#),
            // Junk after a value.
            r#"Digest username="1000" realm="x""#.to_owned(),
            // No '='.
            "Digest username".to_owned(),
            // qop=auth without nc / cnonce.
            format!("{base}, qop=auth"),
            // Bad nc.
            format!(r#"{base}, qop=auth, nc=1, cnonce="x""#),
            // nc counts from 1.
            format!(r#"{base}, qop=auth, nc=00000000, cnonce="x""#),
            // Duplicate parameter.
            format!(r#"{base}, username="1001""#),
            // More parameters than any digest answer has.
            format!(r#"{base}, qop=auth, nc=00000001, cnonce="x"{many}"#),
            // Far longer than any real header.
            format!(
                r#"{base}, qop=auth, nc=00000001, cnonce="{}""#,
                "x".repeat(MAX_HEADER_LEN)
            ),
        ];
        for c in &cases {
            assert_eq!(
                ch.verify(T0, "REGISTER", "sip:x", c, pw),
                AuthOutcome::Malformed,
                "{c}"
            );
        }
        assert!(matches!(
            authorization_for("Digest nonce=\"x\"", "REGISTER", "sip:x", "u", "p", "c", 1),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            authorization_for(
                "Digest realm=\"x\", nonce=\"y\", algorithm=SHA-512-256",
                "REGISTER",
                "sip:x",
                "u",
                "p",
                "c",
                1
            ),
            Err(AuthError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            authorization_for(
                "Digest realm=\"x\", nonce=\"y\", qop=\"auth-int\"",
                "REGISTER",
                "sip:x",
                "u",
                "p",
                "c",
                1
            ),
            Err(AuthError::UnsupportedQop(_))
        ));
    }

    #[test]
    fn lenient_parameter_syntax() {
        let mut ch = challenger();
        let nonce = ch.nonce(T0);
        let ha1 = DigestAlgorithm::Md5.hash_hex(&["we\"ird", "switchyard.test", "pw"]);
        let ha2 = DigestAlgorithm::Md5.hash_hex(&["INVITE", "sip:2000@x"]);
        let resp = DigestAlgorithm::Md5
            .hash_hex(&[&ha1, &nonce, "0000000a", "xyz", "auth", &ha2])
            .to_ascii_uppercase();
        // Spaces around '=', upper-case names, escaped quote, unquoted algorithm, upper-case hex.
        let header = format!(
            "digest  USERNAME = \"we\\\"ird\" ,Realm= \"switchyard.test\",NONCE=\"{nonce}\",\r\n uri =\"sip:2000@x\", Response=\"{resp}\", QOP=auth, NC=0000000a, CNonce=\"xyz\", Algorithm=md5"
        );
        let lookup = |u: &str| (u == "we\"ird").then(|| "pw".to_owned());
        assert_eq!(
            ch.verify(T0, "INVITE", "sip:2000@x", &header, lookup),
            AuthOutcome::Authorized {
                username: "we\"ird".into()
            }
        );
        // The client side escapes quotes too, and the result verifies.
        let auth = authorization_for(
            &ch.challenges(T0, false)[0],
            "INVITE",
            "sip:2000@x",
            "we\"ird",
            "pw",
            "c",
            2,
        )
        .unwrap();
        assert!(auth.contains(r#"username="we\"ird""#), "{auth}");
        assert!(matches!(
            ch.verify(T0, "INVITE", "sip:2000@x", &auth, lookup),
            AuthOutcome::Authorized { .. }
        ));
    }

    #[test]
    fn sess_variant_client_side_and_refused_server_side() {
        let mut ch = challenger();
        let nonce = ch.nonce(T0);
        let challenge = format!(
            r#"Digest realm="switchyard.test", nonce="{nonce}", qop="auth", algorithm=SHA-256-sess"#
        );
        let auth = authorization_for(&challenge, "REGISTER", "sip:x", "1000", "pass1000", "cn", 1)
            .unwrap();
        let ha1 = DigestAlgorithm::Sha256.hash_hex(&["1000", "switchyard.test", "pass1000"]);
        let ha1 = DigestAlgorithm::Sha256.hash_hex(&[&ha1, &nonce, "cn"]);
        let ha2 = DigestAlgorithm::Sha256.hash_hex(&["REGISTER", "sip:x"]);
        let want =
            DigestAlgorithm::Sha256.hash_hex(&[&ha1, &nonce, "00000001", "cn", "auth", &ha2]);
        assert!(auth.contains(&want), "{auth}");
        assert!(matches!(
            ch.verify(T0, "REGISTER", "sip:x", &auth, pw),
            AuthOutcome::Rejected {
                reason: "algorithm not offered",
                ..
            }
        ));
    }

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
