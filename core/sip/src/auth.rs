//! HTTP Digest authentication for SIP (RFC 3261 §22, RFC 2617 / RFC 7616 semantics, RFC 8760
//! algorithms MD5 and SHA-256, `qop=auth`).
//!
//! The server side ([`DigestChallenger`]) keeps no per-client state: a nonce carries its own
//! issue time and an HMAC-SHA256 over (time, realm) under a 32-byte secret, so any node sharing
//! the secret can verify it and a restart does not invalidate outstanding challenges. The price
//! of statelessness is that `nc` replay is not tracked: a captured Authorization can be replayed
//! for the same method and Request-URI until the nonce expires, so keep `nonce_ttl` short
//! (30–300 s); the registrar's brute-force blocking counts [`AuthOutcome::Rejected`].
//!
//! [`authorization_for`] is the client side (tests, outbound trunk registration).

use std::fmt::Write as _;
use std::time::Duration;

use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest as _, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Bytes of HMAC-SHA256 kept in a nonce: 128 bits is far beyond guessing within a nonce's life.
const NONCE_MAC_LEN: usize = 16;
/// A nonce stamped this far in the future is still accepted (clock steps between nodes).
const CLOCK_SKEW_SECS: u64 = 60;

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
    /// Right password, expired nonce: re-challenge with stale=true (RFC 2617 §3.2.1).
    Stale {
        username: String,
    },
    /// Wrong password, unknown user, forged nonce, wrong realm: counts as a failure for
    /// brute-force blocking.
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

/// Issues stateless nonces for one realm and verifies the answers.
pub struct DigestChallenger {
    realm: String,
    secret: [u8; 32],
    nonce_ttl: Duration,
    algorithms: Vec<DigestAlgorithm>,
}

impl std::fmt::Debug for DigestChallenger {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestChallenger")
            .field("realm", &self.realm)
            .field("nonce_ttl", &self.nonce_ttl)
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
        }
    }

    /// Offer these algorithms, in this order of preference, instead of SHA-256 then MD5.
    /// Verification accepts any of them.
    pub fn with_algorithms(mut self, algorithms: Vec<DigestAlgorithm>) -> Self {
        if !algorithms.is_empty() {
            self.algorithms = algorithms;
        }
        self
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Challenge header VALUES (for WWW-Authenticate on 401 or Proxy-Authenticate on 407): one
    /// per algorithm, SHA-256 first then MD5 (RFC 8760 §2.4: the server lists them in order of
    /// preference; old UAs skip the SHA-256 one they do not understand).
    pub fn challenges(&self, now_unix: u64, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now_unix);
        self.algorithms
            .iter()
            .map(|alg| {
                let mut v = String::with_capacity(160);
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

    /// nonce = hex(issue time, 8 bytes big-endian) ‖ hex(HMAC-SHA256(secret, time ‖ realm)[..16]).
    /// The realm in the MAC ties a nonce to this realm: one secret can serve several realms.
    fn nonce(&self, issued_unix: u64) -> String {
        let mut s = hex::encode(issued_unix.to_be_bytes());
        s.push_str(&hex::encode(&self.nonce_mac(issued_unix)[..NONCE_MAC_LEN]));
        s
    }

    fn nonce_mac(&self, issued_unix: u64) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(&issued_unix.to_be_bytes());
        mac.update(self.realm.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Returns the issue time of a nonce minted by us for this realm, or None if forged.
    fn check_nonce(&self, nonce: &str) -> Option<u64> {
        if nonce.len() != 16 + 2 * NONCE_MAC_LEN {
            return None;
        }
        let time = u64::from_be_bytes(hex::decode(&nonce[..16]).ok()?.try_into().ok()?);
        let mac = hex::decode(&nonce[16..]).ok()?;
        ct_eq(&mac, &self.nonce_mac(time)[..NONCE_MAC_LEN]).then_some(time)
    }

    /// Verify an Authorization / Proxy-Authorization header value for `method`.
    /// `lookup(username)` returns the password.
    ///
    /// The `uri` parameter is not compared with the Request-URI here (the caller has it:
    /// RFC 7616 §3.4.6 lets a server check it), but it is part of the digest, so it cannot be
    /// altered in transit.
    pub fn verify(
        &self,
        now_unix: u64,
        method: &str,
        header_value: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> AuthOutcome {
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

        let (alg, sess) = match params.get("algorithm") {
            None => (DigestAlgorithm::Md5, false),
            Some(a) => match DigestAlgorithm::parse(a) {
                Some(x) => x,
                None => return reject("unsupported algorithm"),
            },
        };
        if sess {
            // We never offer -sess; an answer using it does not answer our challenge.
            return reject("algorithm not offered");
        }
        let qop = params.get("qop");
        let (nc, cnonce) = match qop {
            None => (None, None),
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                match (params.get("nc"), params.get("cnonce")) {
                    (Some(nc), Some(cn)) if is_nc(nc) => (Some(nc), Some(cn)),
                    _ => return AuthOutcome::Malformed,
                }
            }
            Some(_) => return reject("qop not offered"),
        };
        if realm != self.realm {
            return reject("realm mismatch");
        }
        let Some(issued) = self.check_nonce(nonce) else {
            return reject("nonce not issued by us");
        };
        // Compute the digest even for an unknown user so the reply time does not tell
        // which usernames exist.
        let password = lookup(&username);
        let ha1 = alg.hash_hex(&[&username, realm, password.as_deref().unwrap_or("")]);
        let ha2 = alg.hash_hex(&[method, uri]);
        let expected = match (nc, cnonce) {
            (Some(nc), Some(cnonce)) => alg.hash_hex(&[&ha1, nonce, nc, cnonce, "auth", &ha2]),
            _ => alg.hash_hex(&[&ha1, nonce, &ha2]),
        };
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

        let fresh = issued <= now_unix.saturating_add(CLOCK_SKEW_SECS)
            && now_unix.saturating_sub(issued) < self.nonce_ttl.as_secs().max(1);
        if fresh {
            AuthOutcome::Authorized { username }
        } else {
            AuthOutcome::Stale { username }
        }
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
/// (RFC 7616 §3.4: each parameter MUST NOT appear more than once).
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
        if out.iter().any(|(n, _)| *n == name) {
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
        let s = challenger().challenges(T0, true);
        assert!(s.iter().all(|v| v.contains("stale=true")));
    }

    #[test]
    fn round_trip_both_algorithms() {
        let ch = challenger();
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
            assert_eq!(
                ch.verify(T0 + 10, "REGISTER", &auth, pw),
                AuthOutcome::Authorized {
                    username: "1000".into()
                }
            );
            // The method is part of HA2: the same answer does not authorize an INVITE.
            assert_eq!(
                ch.verify(T0 + 10, "INVITE", &auth, pw),
                AuthOutcome::Rejected {
                    username: Some("1000".into()),
                    reason: "response mismatch"
                }
            );
        }
    }

    #[test]
    fn rfc2069_style_answer_without_qop() {
        let ch = challenger();
        // A challenge without qop makes the UAC answer in RFC 2069 style.
        let nonce = ch.nonce(T0);
        let challenge = format!(r#"Digest realm="switchyard.test", nonce="{nonce}""#);
        let auth = authorization_for(
            &challenge,
            "INVITE",
            "sip:2000@x",
            "1000",
            "pass1000",
            "c",
            1,
        )
        .unwrap();
        assert!(!auth.contains("qop") && !auth.contains("cnonce"), "{auth}");
        assert_eq!(
            ch.verify(T0, "INVITE", &auth, pw),
            AuthOutcome::Authorized {
                username: "1000".into()
            }
        );
    }

    fn answer(ch: &DigestChallenger, at: u64, password: &str) -> String {
        let challenge = &ch.challenges(at, false)[0];
        authorization_for(
            challenge, "REGISTER", "sip:x", "1000", password, "0a4f113b", 7,
        )
        .unwrap()
    }

    #[test]
    fn stale_after_ttl_only_when_digest_right() {
        let ch = challenger();
        let auth = answer(&ch, T0, "pass1000");
        assert!(matches!(
            ch.verify(T0 + 299, "REGISTER", &auth, pw),
            AuthOutcome::Authorized { .. }
        ));
        assert_eq!(
            ch.verify(T0 + 300, "REGISTER", &auth, pw),
            AuthOutcome::Stale {
                username: "1000".into()
            }
        );
        let wrong = answer(&ch, T0, "guess");
        assert!(matches!(
            ch.verify(T0 + 300, "REGISTER", &wrong, pw),
            AuthOutcome::Rejected {
                reason: "response mismatch",
                ..
            }
        ));
        // A nonce stamped far in the future is not fresh either.
        let future = answer(&ch, T0 + 3600, "pass1000");
        assert!(matches!(
            ch.verify(T0, "REGISTER", &future, pw),
            AuthOutcome::Stale { .. }
        ));
    }

    #[test]
    fn forged_nonce_rejected() {
        let ch = challenger();
        let auth = answer(&ch, T0, "pass1000");
        // Move the issue time forward (to dodge expiry) keeping the MAC: must be rejected.
        let nonce = ch.nonce(T0);
        let forged_nonce = format!("{}{}", hex::encode((T0 + 1000).to_be_bytes()), &nonce[16..]);
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
        assert!(auth.contains(&nonce));
        assert_eq!(
            ch.verify(T0 + 1000, "REGISTER", &forged, pw),
            AuthOutcome::Rejected {
                username: Some("1000".into()),
                reason: "nonce not issued by us"
            }
        );
        // Another secret's nonce is not ours.
        let other = DigestChallenger::new("switchyard.test", [8u8; 32], Duration::from_secs(300));
        let foreign = answer(&other, T0, "pass1000");
        assert!(matches!(
            ch.verify(T0, "REGISTER", &foreign, pw),
            AuthOutcome::Rejected {
                reason: "nonce not issued by us",
                ..
            }
        ));
    }

    #[test]
    fn nonce_is_tied_to_realm() {
        let a = DigestChallenger::new("a.test", [1u8; 32], Duration::from_secs(300));
        let b = DigestChallenger::new("b.test", [1u8; 32], Duration::from_secs(300));
        assert_ne!(a.nonce(T0), b.nonce(T0));
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
            b.verify(T0, "REGISTER", &for_a, pw),
            AuthOutcome::Rejected {
                username: Some("1000".into()),
                reason: "realm mismatch"
            }
        );
        // a's nonce relabelled with realm b.test (same secret): the MAC does not verify.
        let a_nonce = a.nonce(T0);
        let relabelled = format!(r#"Digest realm="b.test", nonce="{a_nonce}", qop="auth""#);
        let auth = authorization_for(&relabelled, "REGISTER", "sip:x", "1000", "pass1000", "c", 1)
            .unwrap();
        assert_eq!(
            b.verify(T0, "REGISTER", &auth, pw),
            AuthOutcome::Rejected {
                username: Some("1000".into()),
                reason: "nonce not issued by us"
            }
        );
    }

    #[test]
    fn wrong_password_and_unknown_user_rejected() {
        let ch = challenger();
        let wrong = answer(&ch, T0, "pass1001");
        assert_eq!(
            ch.verify(T0, "REGISTER", &wrong, pw),
            AuthOutcome::Rejected {
                username: Some("1000".into()),
                reason: "response mismatch"
            }
        );
        let right = answer(&ch, T0, "pass1000");
        assert_eq!(
            ch.verify(T0, "REGISTER", &right, |_| None),
            AuthOutcome::Rejected {
                username: Some("1000".into()),
                reason: "unknown user"
            }
        );
    }

    #[test]
    fn unknown_scheme_from_rfc4475_regaut01() {
        let ch = challenger();
        assert_eq!(
            ch.verify(T0, "REGISTER", "NoOneKnowsThisScheme opaque-data=here", pw),
            AuthOutcome::UnsupportedScheme
        );
        assert_eq!(
            ch.verify(T0, "REGISTER", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", pw),
            AuthOutcome::UnsupportedScheme
        );
        assert_eq!(
            authorization_for("Basic realm=\"x\"", "REGISTER", "sip:x", "u", "p", "c", 1),
            Err(AuthError::UnsupportedScheme)
        );
    }

    #[test]
    fn malformed_headers() {
        let ch = challenger();
        let nonce = ch.nonce(T0);
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
            format!(
                r#"Digest username="1000", realm="switchyard.test", nonce="{nonce}", uri="sip:x", response="00", qop=auth"#
            ),
            // Bad nc.
            format!(
                r#"Digest username="1000", realm="switchyard.test", nonce="{nonce}", uri="sip:x", response="00", qop=auth, nc=1, cnonce="x""#
            ),
            // Duplicate parameter.
            format!(
                r#"Digest username="1000", username="1001", realm="switchyard.test", nonce="{nonce}", uri="sip:x", response="00""#
            ),
        ];
        for c in &cases {
            assert_eq!(
                ch.verify(T0, "REGISTER", c, pw),
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
        let ch = challenger();
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
            ch.verify(T0, "INVITE", &header, lookup),
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
            ch.verify(T0, "INVITE", &auth, lookup),
            AuthOutcome::Authorized { .. }
        ));
    }

    #[test]
    fn sess_variant_client_side_and_refused_server_side() {
        let ch = challenger();
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
            ch.verify(T0, "REGISTER", &auth, pw),
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
