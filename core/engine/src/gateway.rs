//! SIP trunks (FreeSWITCH's sofia gateways): per gateway, the registration state machine
//! (RFC 3261 §10.2) and what a call out through it looks like.
//!
//! Sans-IO: the switch hands in `now`, sends the REGISTERs [`Gateways::poll`] returns through
//! its transaction layer, and feeds back the final response ([`Gateways::on_response`]) or
//! the transaction timeout ([`Gateways::on_timeout`]). [`Gateways::next_deadline`] is when
//! `poll` has work again.
//!
//! ```text
//!             poll               2xx                    refresh due (poll)
//!   (start) ───────▶ TRYING ─────────▶ REGED ───────────────────▶ TRYING ...
//!                     │ 401/407: answered once (again only if stale=true)
//!                     │ 423: again with Min-Expires
//!                     │ other final / timeout / second challenge
//!                     ▼
//!                 FAIL_WAIT ── retry_secs · 2^(failures-1), at most max_retry_secs ──▶ TRYING
//! ```
//! `unregister` sends Expires: 0 (RFC 3261 §10.2.2) and ends in UNREGED.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use switchyard_config::{GatewayConfig, GatewayTransport};
use switchyard_sip::auth::authorization_for;
use switchyard_sip::transaction::{Peer, TransportKind};
use switchyard_sip::{Message, MessageBuilder, Method};

/// A stale nonce may be re-answered, but a registrar that calls every answer stale would
/// otherwise keep us in a loop.
const MAX_AUTH_ANSWERS: u8 = 3;
/// RFC 3261 §10.2.8: a 423's Min-Expires is honoured up to this; beyond it we give up.
const MAX_MIN_EXPIRES: u32 = 86_400;
/// Refresh this long before the granted expiry (or at half of it, if shorter): a REGISTER
/// that is lost and retransmitted until Timer F (64·T1 = 32 s) still lands in time.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// A REGISTER for the switch to send with `TransactionLayer::send_request`.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub gateway: String,
    pub message: Message,
    pub peer: Peer,
}

/// Where and how a call out through a gateway goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteTarget {
    /// `sip:NUMBER@proxy-host[:port][;transport=tcp]`.
    pub request_uri: String,
    /// The From value without tag: `"Name" <sip:USER@from_domain>`.
    pub from_uri: String,
    /// The To value: `<request_uri>`.
    pub to_uri: String,
    /// The proxy: every request of the call goes there.
    pub peer: Peer,
}

/// Registration state of one gateway, as `show gateways` names it.
#[derive(Clone, Debug, PartialEq)]
enum RegState {
    /// `enabled = false`.
    Disabled,
    /// `register = false`: calls only.
    NoReg,
    /// A REGISTER is due at this time (start, or a refresh of a live registration).
    Due { at: Instant },
    /// A REGISTER is in flight.
    Trying(Attempt),
    /// Failed; the next attempt is at `retry_at`.
    FailWait { retry_at: Instant },
    /// Expires: 0 in flight.
    Unregistering(Attempt),
    /// Unregistered at shutdown.
    Unreged,
}

/// One REGISTER exchange, its challenge answers included.
#[derive(Clone, Debug, PartialEq)]
struct Attempt {
    /// CSeq of the request in flight: responses to older ones are ignored.
    cseq: u32,
    /// What we ask for; 0 removes the binding.
    expires: u32,
    /// The listener address in Via and Contact.
    local: SocketAddr,
    /// Challenges answered in this exchange.
    auth_answers: u8,
}

#[derive(Debug)]
struct Gateway {
    config: GatewayConfig,
    peer: Peer,
    state: RegState,
    /// RFC 3261 §10.2: every REGISTER of a UA to a registrar uses one Call-ID, with CSeq
    /// incrementing.
    call_id: String,
    from_tag: String,
    cseq: u32,
    /// The expiry asked for next: `expires`, raised by a 423's Min-Expires.
    expires: u32,
    /// When the current registration runs out, if we hold one.
    registered_until: Option<Instant>,
    /// Failures since the last success; sets the backoff.
    failures: u32,
    last_error: Option<String>,
}

/// The gateways of `gateways.toml`, by name.
#[derive(Debug)]
pub struct Gateways {
    /// Sorted by name (the config map's order): `inbound_gateway` picks the first match.
    entries: Vec<Gateway>,
    user_agent: String,
}

fn transport_kind(t: GatewayTransport) -> TransportKind {
    match t {
        GatewayTransport::Udp => TransportKind::Udp,
        GatewayTransport::Tcp => TransportKind::Tcp,
    }
}

impl Gateways {
    /// Every enabled gateway with `register = true` wants a REGISTER at `now`.
    pub fn new<'a>(
        configs: impl IntoIterator<Item = &'a GatewayConfig>,
        user_agent: &str,
        now: Instant,
    ) -> Gateways {
        let entries = configs
            .into_iter()
            .map(|config| Gateway {
                peer: Peer {
                    transport: transport_kind(config.transport),
                    addr: config.proxy,
                },
                state: if !config.enabled {
                    RegState::Disabled
                } else if !config.register {
                    RegState::NoReg
                } else {
                    RegState::Due { at: now }
                },
                call_id: format!(
                    "{:016x}{:08x}@switchyard",
                    rand::random::<u64>(),
                    rand::random::<u32>()
                ),
                from_tag: format!("{:016x}", rand::random::<u64>()),
                cseq: 0,
                expires: config.expires_secs,
                registered_until: None,
                failures: 0,
                last_error: None,
                config: config.clone(),
            })
            .collect();
        Gateways {
            entries,
            user_agent: user_agent.to_owned(),
        }
    }

    /// Every gateway's name, in order (for `dialplan check`).
    pub fn names(&self) -> Vec<&str> {
        self.entries
            .iter()
            .map(|g| g.config.name.as_str())
            .collect()
    }

    /// The configuration of gateway `name`.
    pub fn config(&self, name: &str) -> Option<&GatewayConfig> {
        self.get(name).map(|g| &g.config)
    }

    fn get(&self, name: &str) -> Option<&Gateway> {
        self.entries.iter().find(|g| g.config.name == name)
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut Gateway> {
        self.entries.iter_mut().find(|g| g.config.name == name)
    }

    /// The REGISTERs due at `now`. `local(transport)` is our listener address for a
    /// transport (Via and Contact); a gateway whose transport has none fails and retries.
    pub fn poll(
        &mut self,
        now: Instant,
        local: impl Fn(TransportKind) -> Option<SocketAddr>,
    ) -> Vec<Outgoing> {
        let mut out = Vec::new();
        for g in &mut self.entries {
            let due = match g.state {
                RegState::Due { at } | RegState::FailWait { retry_at: at } => at <= now,
                _ => false,
            };
            if !due {
                continue;
            }
            let Some(local_addr) = local(g.peer.transport) else {
                g.fail(
                    now,
                    format!("no {:?} listener", g.peer.transport).to_lowercase(),
                );
                continue;
            };
            let attempt = Attempt {
                cseq: 0,
                expires: g.expires,
                local: local_addr,
                auth_answers: 0,
            };
            if let Some(o) = g.send_register(attempt, None, &self.user_agent) {
                out.push(o);
            }
        }
        out
    }

    /// A final response to the REGISTER last sent for `gateway` (provisional ones are
    /// ignored). Returns the next REGISTER when the exchange goes on (challenge, 423).
    pub fn on_response(
        &mut self,
        now: Instant,
        gateway: &str,
        response: &Message,
    ) -> Option<Outgoing> {
        let user_agent = self.user_agent.as_str();
        let g = self.entries.iter_mut().find(|g| g.config.name == gateway)?;
        let status = response.status()?;
        if status < 200 {
            return None;
        }
        let (attempt, unregistering) = match &g.state {
            RegState::Trying(a) => (a.clone(), false),
            RegState::Unregistering(a) => (a.clone(), true),
            _ => return None,
        };
        let (cseq, method) = response.cseq();
        if cseq != attempt.cseq || *method != Method::Register {
            return None;
        }
        let reason = || format!("{status} {}", response.reason().unwrap_or(""));
        match status {
            200..=299 if unregistering => {
                g.state = RegState::Unreged;
                g.registered_until = None;
                None
            }
            200..=299 => {
                let granted = g.granted_expiry(response, &attempt);
                if granted == 0 {
                    // The registrar kept no binding of ours: nothing to refresh.
                    g.fail(now, format!("{} without our binding", reason()));
                    return None;
                }
                let granted = Duration::from_secs(u64::from(granted));
                let margin = REFRESH_MARGIN.min(granted / 2);
                g.registered_until = Some(now + granted);
                g.state = RegState::Due {
                    at: now + granted - margin,
                };
                g.failures = 0;
                g.last_error = None;
                None
            }
            401 | 407 => {
                let header = if status == 401 {
                    "WWW-Authenticate"
                } else {
                    "Proxy-Authenticate"
                };
                // RFC 3261 §22.2: answer a challenge once; another one for the same exchange
                // means the credentials were refused, unless the registrar says our nonce
                // merely went stale (RFC 2617 §3.2.1).
                let stale = response.headers(header).any(is_stale);
                if attempt.auth_answers >= MAX_AUTH_ANSWERS || (attempt.auth_answers > 0 && !stale)
                {
                    if unregistering {
                        g.state = RegState::Unreged;
                    } else {
                        g.fail(now, format!("{} (credentials refused)", reason()));
                    }
                    return None;
                }
                let uri = g.register_uri();
                let Some(authorization) = answer_challenge(&g.config, response, "REGISTER", &uri)
                else {
                    if unregistering {
                        g.state = RegState::Unreged;
                    } else {
                        g.fail(now, format!("{}: no challenge we can answer", reason()));
                    }
                    return None;
                };
                let next = Attempt {
                    auth_answers: attempt.auth_answers + 1,
                    ..attempt
                };
                g.send_register(next, Some(authorization), user_agent)
            }
            423 => {
                // RFC 3261 §10.2.8: ask again for at least Min-Expires.
                let min = response
                    .header("Min-Expires")
                    .and_then(|v| v.trim().parse::<u32>().ok())
                    .filter(|&m| m > attempt.expires && m <= MAX_MIN_EXPIRES);
                match min {
                    Some(min) if !unregistering => {
                        g.expires = min;
                        let next = Attempt {
                            expires: min,
                            ..attempt
                        };
                        g.send_register(next, None, user_agent)
                    }
                    _ if unregistering => {
                        g.state = RegState::Unreged;
                        None
                    }
                    _ => {
                        g.fail(now, reason());
                        None
                    }
                }
            }
            _ if unregistering => {
                g.state = RegState::Unreged;
                None
            }
            _ => {
                // RFC 3261 §21.5.4 / §20.33: a 503 may say when to come back.
                let retry_after = response
                    .header("Retry-After")
                    .and_then(|v| {
                        v.split(|c: char| !c.is_ascii_digit())
                            .next()?
                            .parse::<u64>()
                            .ok()
                    })
                    .map(Duration::from_secs);
                g.fail(now, reason());
                if let (Some(after), RegState::FailWait { retry_at }) = (retry_after, &mut g.state)
                {
                    let cap = now + Duration::from_secs(g.config.max_retry_secs);
                    *retry_at = (*retry_at).max(now + after).min(cap);
                }
                None
            }
        }
    }

    /// The REGISTER transaction of `gateway` timed out (Timer F) or its transport failed.
    pub fn on_timeout(&mut self, now: Instant, gateway: &str) {
        let Some(g) = self.get_mut(gateway) else {
            return;
        };
        match g.state {
            RegState::Trying(_) => g.fail(now, "timeout".into()),
            RegState::Unregistering(_) => g.state = RegState::Unreged,
            _ => {}
        }
    }

    /// At shutdown: Expires: 0 for every gateway holding (or seeking) a registration. Those
    /// with none stop trying.
    pub fn unregister(
        &mut self,
        now: Instant,
        local: impl Fn(TransportKind) -> Option<SocketAddr>,
    ) -> Vec<Outgoing> {
        let mut out = Vec::new();
        for g in &mut self.entries {
            let live = g.registered_until.is_some_and(|until| until > now);
            let local_addr = match &g.state {
                RegState::Trying(a) => Some(a.local),
                RegState::Due { .. } | RegState::FailWait { .. } if live => local(g.peer.transport),
                RegState::Due { .. } | RegState::FailWait { .. } => {
                    g.state = RegState::Unreged;
                    None
                }
                _ => None,
            };
            let Some(local_addr) = local_addr else {
                continue;
            };
            let attempt = Attempt {
                cseq: 0,
                expires: 0,
                local: local_addr,
                auth_answers: 0,
            };
            if let Some(o) = g.send_register(attempt, None, &self.user_agent) {
                out.push(o);
            }
        }
        out
    }

    /// When `poll` next has a REGISTER to send.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .iter()
            .filter_map(|g| match g.state {
                RegState::Due { at } | RegState::FailWait { retry_at: at } => Some(at),
                _ => None,
            })
            .min()
    }

    /// `show gateways`: one line per gateway.
    pub fn status_text(&self, now: Instant) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<16} {:<28} {:<16} {:>8} {:>8}  Last error",
            "Name", "Proxy", "State", "Expires", "Failures"
        );
        for g in &self.entries {
            let secs_until = |t: Instant| t.saturating_duration_since(now).as_secs();
            let expires = match g.registered_until {
                Some(until) if until > now => format!("{}s", secs_until(until)),
                _ => "-".into(),
            };
            let state = match &g.state {
                RegState::Disabled => "DISABLED".to_string(),
                RegState::NoReg => "NOREG".to_string(),
                RegState::Due { .. } if g.registered_until.is_some_and(|u| u > now) => {
                    "REGED".to_string()
                }
                RegState::Due { .. } => "UNREGED".to_string(),
                RegState::Trying(_) => "TRYING".to_string(),
                RegState::FailWait { retry_at } => {
                    format!("FAIL_WAIT ({}s)", secs_until(*retry_at))
                }
                RegState::Unregistering(_) => "UNREGISTER".to_string(),
                RegState::Unreged => "UNREGED".to_string(),
            };
            let proxy = format!(
                "{}:{}",
                match g.peer.transport {
                    TransportKind::Udp => "udp",
                    TransportKind::Tcp => "tcp",
                },
                g.peer.addr
            );
            let _ = writeln!(
                out,
                "{:<16} {:<28} {:<16} {:>8} {:>8}  {}",
                g.config.name,
                proxy,
                state,
                expires,
                g.failures,
                g.last_error.as_deref().unwrap_or("-")
            );
        }
        out
    }

    /// The gateway a request from `source` comes from. The proxy is recognised by address and
    /// port, so a phone on the proxy's host still authenticates and two gateways on one host
    /// (two SIPp providers on loopback) are told apart: the first enabled gateway (by name)
    /// whose proxy is exactly `source`, else the first whose `inbound_acl` holds its address.
    pub fn inbound_gateway(&self, source: SocketAddr) -> Option<&str> {
        let ip = source.ip().to_canonical();
        let enabled = || self.entries.iter().filter(|g| g.config.enabled);
        enabled()
            .find(|g| {
                g.config.proxy.ip().to_canonical() == ip && g.config.proxy.port() == source.port()
            })
            .or_else(|| enabled().find(|g| g.config.inbound_acl.iter().any(|c| c.contains(ip))))
            .map(|g| g.config.name.as_str())
    }

    /// A call to `number` through `gateway`. The gateway's fixed `caller_id_number` /
    /// `caller_id_name` win over the call's; the number goes in the From user part when
    /// `caller_id_in_from`, else From carries `from_user`. None for an unknown or disabled
    /// gateway or an empty number.
    pub fn invite_target(
        &self,
        gateway: &str,
        number: &str,
        caller_id_number: Option<&str>,
        caller_id_name: Option<&str>,
    ) -> Option<InviteTarget> {
        let g = self.get(gateway).filter(|g| g.config.enabled)?;
        if number.is_empty() {
            return None;
        }
        let c = &g.config;
        let host = uri_host(&c.proxy_host);
        let port = if c.proxy.port() == 5060 {
            String::new()
        } else {
            format!(":{}", c.proxy.port())
        };
        let transport = match g.peer.transport {
            TransportKind::Udp => "",
            TransportKind::Tcp => ";transport=tcp",
        };
        let request_uri = format!("sip:{}@{host}{port}{transport}", escape_user(number));
        let cid_number = c
            .caller_id_number
            .as_deref()
            .or(caller_id_number)
            .filter(|n| !n.is_empty());
        let cid_name = c
            .caller_id_name
            .as_deref()
            .or(caller_id_name)
            .filter(|n| !n.is_empty());
        let from_user = match cid_number {
            Some(n) if c.caller_id_in_from => escape_user(n),
            _ => escape_user(&c.from_user),
        };
        let mut from_uri = String::new();
        if let Some(name) = cid_name {
            from_uri.push_str(&quote_display(name));
            from_uri.push(' ');
        }
        let _ = write!(from_uri, "<sip:{from_user}@{}>", uri_host(&c.from_domain));
        Some(InviteTarget {
            to_uri: format!("<{request_uri}>"),
            request_uri,
            from_uri,
            peer: g.peer,
        })
    }

    /// The credentials header answering a 401 / 407 the provider sent to a `method` request
    /// for `request_uri` (an INVITE out): `("Authorization" | "Proxy-Authorization", value)`.
    /// The caller answers each request's challenge once (RFC 3261 §22.2).
    pub fn authorize(
        &self,
        gateway: &str,
        challenge_response: &Message,
        method: &str,
        request_uri: &str,
    ) -> Option<(&'static str, String)> {
        let g = self.get(gateway)?;
        answer_challenge(&g.config, challenge_response, method, request_uri)
    }
}

impl Gateway {
    /// Counts a failure and waits retry_secs · 2^(failures-1), at most max_retry_secs.
    fn fail(&mut self, now: Instant, error: String) {
        self.failures = self.failures.saturating_add(1);
        let shift = (self.failures - 1).min(32);
        let delay = self
            .config
            .retry_secs
            .saturating_mul(1u64 << shift)
            .min(self.config.max_retry_secs);
        self.state = RegState::FailWait {
            retry_at: now + Duration::from_secs(delay),
        };
        self.last_error = Some(error);
        if self.registered_until.is_some_and(|until| until <= now) {
            self.registered_until = None;
        }
    }

    /// RFC 3261 §10.2: the Request-URI names the registrar's domain.
    fn register_uri(&self) -> String {
        let c = &self.config;
        let mut uri = format!("sip:{}", uri_host(&c.from_domain));
        if c.from_domain == c.proxy_host && c.proxy.port() != 5060 {
            let _ = write!(uri, ":{}", c.proxy.port());
        }
        if self.peer.transport == TransportKind::Tcp {
            uri.push_str(";transport=tcp");
        }
        uri
    }

    fn contact(&self, local: SocketAddr) -> String {
        let user = escape_user(&self.config.from_user);
        match self.peer.transport {
            TransportKind::Udp => format!("<sip:{user}@{local}>"),
            TransportKind::Tcp => format!("<sip:{user}@{local};transport=tcp>"),
        }
    }

    /// Builds and records the next REGISTER of `attempt` (a new CSeq and branch).
    fn send_register(
        &mut self,
        mut attempt: Attempt,
        authorization: Option<(&'static str, String)>,
        user_agent: &str,
    ) -> Option<Outgoing> {
        self.cseq = self.cseq.wrapping_add(1).max(1);
        attempt.cseq = self.cseq;
        let c = &self.config;
        let aor = format!(
            "<sip:{}@{}>",
            escape_user(&c.from_user),
            uri_host(&c.from_domain)
        );
        let branch = format!(
            "z9hG4bK{:016x}{:08x}",
            rand::random::<u64>(),
            rand::random::<u32>()
        );
        let transport = match self.peer.transport {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
        };
        let mut b = MessageBuilder::request(&Method::Register, &self.register_uri());
        b.header(
            "Via",
            format_args!(
                "SIP/2.0/{transport} {};branch={branch};rport",
                attempt.local
            ),
        )
        .header("Max-Forwards", 70)
        .header("From", format_args!("{aor};tag={}", self.from_tag))
        .header("To", &aor)
        .header("Call-ID", &self.call_id)
        .header("CSeq", format_args!("{} REGISTER", attempt.cseq))
        .header("Contact", self.contact(attempt.local))
        .header("Expires", attempt.expires)
        .header("User-Agent", user_agent);
        if let Some((name, value)) = &authorization {
            b.header(name, value);
        }
        let bytes = b.finish(None, &[]);
        let message = match Message::parse_datagram(bytes) {
            Ok(m) => m,
            Err(error) => {
                tracing::error!(%error, gateway = %c.name, "built an unparseable REGISTER");
                self.state = RegState::Disabled;
                return None;
            }
        };
        let unregistering = attempt.expires == 0;
        self.state = if unregistering {
            RegState::Unregistering(attempt)
        } else {
            RegState::Trying(attempt)
        };
        Some(Outgoing {
            gateway: c.name.clone(),
            message,
            peer: self.peer,
        })
    }

    /// RFC 3261 §10.2.4: the 2xx lists every binding of the AOR; ours is the Contact with our
    /// address, its `expires` parameter the time granted, else the Expires header, else what
    /// we asked for.
    fn granted_expiry(&self, response: &Message, attempt: &Attempt) -> u32 {
        let contacts = response.contacts().unwrap_or_default();
        let ours = contacts.iter().filter_map(|c| c.address()).find(|a| {
            let port = a.uri.port.unwrap_or(5060);
            let host_matches = a
                .uri
                .host_unbracketed()
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.to_canonical() == attempt.local.ip().to_canonical());
            host_matches && port == attempt.local.port()
        });
        ours.and_then(|a| a.param("expires").flatten())
            .and_then(|v| v.trim().parse::<u32>().ok())
            .or_else(|| response.expires())
            .unwrap_or(attempt.expires)
    }
}

/// The answer to the first challenge of `response` we can answer for `config` (Digest, an
/// algorithm we know, the configured realm if one is set), with the header it goes in
/// (RFC 3261 §22.2 for 401, §22.3 for 407).
fn answer_challenge(
    config: &GatewayConfig,
    response: &Message,
    method: &str,
    uri: &str,
) -> Option<(&'static str, String)> {
    let (header, answer) = match response.status()? {
        401 => ("WWW-Authenticate", "Authorization"),
        407 => ("Proxy-Authenticate", "Proxy-Authorization"),
        _ => return None,
    };
    if config.password.is_empty() {
        return None;
    }
    let cnonce = format!("{:016x}", rand::random::<u64>());
    response
        .headers(header)
        .filter(|challenge| match &config.realm {
            Some(realm) => digest_param(challenge, "realm").as_deref() == Some(realm.as_str()),
            None => true,
        })
        .find_map(|challenge| {
            authorization_for(
                challenge,
                method,
                uri,
                &config.username,
                &config.password,
                &cnonce,
                1,
            )
            .ok()
        })
        .map(|value| (answer, value))
}

fn is_stale(challenge: &str) -> bool {
    digest_param(challenge, "stale").is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// One parameter of a Digest challenge, unquoted (RFC 7616 §3.3). Only for reading `realm`
/// and `stale`; `authorization_for` parses the challenge fully.
fn digest_param(challenge: &str, name: &str) -> Option<String> {
    let mut rest = challenge.trim_start();
    // Skip the scheme.
    rest = rest.split_once(char::is_whitespace).map_or("", |(_, r)| r);
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if rest.is_empty() {
            return None;
        }
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, ch)) = chars.next() {
                match ch {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            v.push(e);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => v.push(ch),
                }
            }
            value = v;
            rest = &q[end.min(q.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        if key.eq_ignore_ascii_case(name) {
            return Some(value);
        }
    }
}

/// An IPv6 literal in a URI needs brackets (RFC 3261 §25.1 `IPv6reference`).
fn uri_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// RFC 3261 §25.1: the user part takes unreserved and user-unreserved characters; the rest
/// (notably `#` of a DTMF-ish number) is %-escaped.
fn escape_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for b in user.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_'
                    | b'.'
                    | b'!'
                    | b'~'
                    | b'*'
                    | b'\''
                    | b'('
                    | b')'
                    | b'&'
                    | b'='
                    | b'+'
                    | b'$'
                    | b','
                    | b';'
                    | b'?'
                    | b'/'
            )
        {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A quoted-string display name (RFC 3261 §25.1): `"` and `\` escaped, line breaks dropped.
fn quote_display(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for ch in name.chars().filter(|c| !c.is_control()) {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use switchyard_config::Cidr;
    use switchyard_sip::auth::{AuthOutcome, DigestAlgorithm, DigestChallenger};
    use switchyard_sip::response_to;

    const LOCAL: &str = "192.0.2.1:5060";

    fn local(_: TransportKind) -> Option<SocketAddr> {
        Some(LOCAL.parse().unwrap())
    }

    fn config(name: &str) -> GatewayConfig {
        GatewayConfig {
            name: name.into(),
            proxy: "198.51.100.10:5060".parse().unwrap(),
            proxy_host: "198.51.100.10".into(),
            transport: GatewayTransport::Udp,
            username: "4420".into(),
            password: "secret".into(),
            realm: None,
            register: true,
            expires_secs: 600,
            retry_secs: 30,
            max_retry_secs: 600,
            from_user: "4420".into(),
            from_domain: "198.51.100.10".into(),
            caller_id_number: None,
            caller_id_name: None,
            caller_id_in_from: true,
            inbound_acl: Vec::new(),
            inbound_context: "public".into(),
            enabled: true,
            line: None,
        }
    }

    /// A virtual clock: an origin read once, then moved by hand.
    #[allow(clippy::disallowed_methods)]
    fn origin() -> Instant {
        Instant::now()
    }

    /// The provider's registrar, answering with core/sip's own challenger.
    struct Registrar {
        challenger: DigestChallenger,
        password: String,
        /// Expiry granted (in the Contact), None = echo the request's Expires.
        grant: Option<u32>,
        registered: Vec<String>,
    }

    impl Registrar {
        fn new(password: &str) -> Registrar {
            Registrar {
                challenger: DigestChallenger::new(
                    "provider.test",
                    [7; 32],
                    Duration::from_secs(300),
                )
                .with_algorithms(vec![DigestAlgorithm::Md5]),
                password: password.into(),
                grant: None,
                registered: Vec::new(),
            }
        }

        fn answer(&mut self, req: &Message) -> Message {
            let Some(auth) = req.header("Authorization") else {
                return self.challenge(req);
            };
            let password = self.password.clone();
            let outcome = self.challenger.verify(
                1_000,
                "REGISTER",
                req.request_uri().unwrap(),
                auth,
                |user| (user == "4420").then_some(password),
            );
            match outcome {
                AuthOutcome::Authorized { username } => {
                    self.registered.push(username);
                    let expires = self.grant.or(req.expires()).unwrap();
                    let mut b = response_to(req, 200, "OK", Some("reg"), None);
                    b.header(
                        "Contact",
                        format_args!(
                            "<sip:other@203.0.113.5>;expires=3600, {};expires={expires}",
                            req.header("Contact").unwrap()
                        ),
                    );
                    parse(b.finish(None, &[]))
                }
                _ => self.challenge(req),
            }
        }

        fn challenge(&self, req: &Message) -> Message {
            let mut b = response_to(req, 401, "Unauthorized", Some("reg"), None);
            for c in self.challenger.challenges(1_000, false) {
                b.header("WWW-Authenticate", c);
            }
            parse(b.finish(None, &[]))
        }
    }

    fn parse(bytes: Bytes) -> Message {
        Message::parse_datagram(bytes).unwrap()
    }

    fn respond(req: &Message, status: u16, extra: &[(&str, &str)]) -> Message {
        let mut b = response_to(req, status, "Whatever", Some("x"), None);
        for (n, v) in extra {
            b.header(n, v);
        }
        parse(b.finish(None, &[]))
    }

    fn state<'a>(gw: &'a Gateways, name: &str) -> &'a RegState {
        &gw.get(name).unwrap().state
    }

    /// Polls once and runs the exchange with `registrar` to its end; the REGISTERs sent.
    fn register(gw: &mut Gateways, now: Instant, registrar: &mut Registrar) -> Vec<Message> {
        let mut sent = Vec::new();
        let mut next = gw.poll(now, local);
        assert!(next.len() <= 1);
        while let Some(o) = next.pop() {
            assert_eq!(o.peer.addr, "198.51.100.10:5060".parse().unwrap());
            assert_eq!(o.gateway, "p1");
            let response = registrar.answer(&o.message);
            sent.push(o.message);
            next.extend(gw.on_response(now, "p1", &response));
            assert!(sent.len() < 10, "REGISTER loop");
        }
        sent
    }

    #[test]
    fn registers_by_answering_the_challenge_once() {
        let t0 = origin();
        let mut gw = Gateways::new([&config("p1")], "Switchyard/test", t0);
        assert_eq!(gw.next_deadline(), Some(t0));
        let mut registrar = Registrar::new("secret");
        let sent = register(&mut gw, t0, &mut registrar);
        assert_eq!(
            sent.len(),
            2,
            "REGISTER, 401, REGISTER with credentials, 200"
        );
        assert_eq!(registrar.registered, ["4420"]);
        let (first, second) = (&sent[0], &sent[1]);
        assert_eq!(first.request_uri(), Some("sip:198.51.100.10"));
        assert_eq!(first.header("To"), Some("<sip:4420@198.51.100.10>"));
        assert_eq!(first.from().tag(), second.from().tag());
        assert_eq!(first.call_id(), second.call_id());
        assert_eq!(
            second.cseq().0,
            first.cseq().0 + 1,
            "RFC 3261 §10.2: CSeq grows"
        );
        assert_ne!(first.top_via().branch(), second.top_via().branch());
        assert_eq!(first.header("Contact"), Some("<sip:4420@192.0.2.1:5060>"));
        assert_eq!(first.expires(), Some(600));
        assert_eq!(first.header("User-Agent"), Some("Switchyard/test"));
        assert!(first.header("Authorization").is_none());
        assert_eq!(
            gw.next_deadline(),
            Some(t0 + Duration::from_secs(540)),
            "refresh 60 s before the 600 s granted"
        );
        let status = gw.status_text(t0 + Duration::from_secs(100));
        assert!(
            status.contains("p1") && status.contains("REGED") && status.contains("500s"),
            "{status}"
        );

        // Nothing to do before the refresh; at it, the next exchange keeps the Call-ID.
        assert!(gw.poll(t0 + Duration::from_secs(539), local).is_empty());
        let t1 = t0 + Duration::from_secs(540);
        let refresh = register(&mut gw, t1, &mut registrar);
        assert_eq!(refresh[0].call_id(), first.call_id());
        assert!(refresh[0].cseq().0 > second.cseq().0);
        assert_eq!(registrar.registered.len(), 2);
    }

    #[test]
    fn refresh_follows_the_expiry_granted() {
        let t0 = origin();
        let mut gw = Gateways::new([&config("p1")], "ua", t0);
        let mut registrar = Registrar::new("secret");
        registrar.grant = Some(90);
        register(&mut gw, t0, &mut registrar);
        assert_eq!(
            gw.next_deadline(),
            Some(t0 + Duration::from_secs(45)),
            "half of a short grant"
        );

        // Without a Contact expires, the Expires header rules.
        let mut gw = Gateways::new([&config("p1")], "ua", t0);
        let o = gw.poll(t0, local).remove(0);
        let ok = respond(&o.message, 200, &[("Expires", "300")]);
        assert!(gw.on_response(t0, "p1", &ok).is_none());
        assert_eq!(gw.next_deadline(), Some(t0 + Duration::from_secs(240)));
    }

    #[test]
    fn a_wrong_password_fails_after_one_answer_and_backs_off() {
        let t0 = origin();
        let mut c = config("p1");
        c.password = "wrong".into();
        let mut gw = Gateways::new([&c], "ua", t0);
        let mut registrar = Registrar::new("secret");
        let sent = register(&mut gw, t0, &mut registrar);
        assert_eq!(
            sent.len(),
            2,
            "the fresh nonce of the second 401 is not answered"
        );
        assert!(registrar.registered.is_empty());
        assert_eq!(gw.next_deadline(), Some(t0 + Duration::from_secs(30)));
        let status = gw.status_text(t0);
        assert!(
            status.contains("FAIL_WAIT (30s)") && status.contains("credentials refused"),
            "{status}"
        );
    }

    #[test]
    fn a_stale_challenge_is_answered_again() {
        let t0 = origin();
        let mut gw = Gateways::new([&config("p1")], "ua", t0);
        let challenger = DigestChallenger::new("r", [1; 32], Duration::from_secs(60));
        let o = gw.poll(t0, local).remove(0);
        let first = challenger.challenges(0, false).remove(0);
        let o = gw
            .on_response(
                t0,
                "p1",
                &respond(&o.message, 401, &[("WWW-Authenticate", &first)]),
            )
            .unwrap();
        let stale = challenger.challenges(0, true).remove(0);
        let o = gw
            .on_response(
                t0,
                "p1",
                &respond(&o.message, 401, &[("WWW-Authenticate", &stale)]),
            )
            .expect("stale=true gets a new answer");
        assert!(
            o.message
                .header("Authorization")
                .unwrap()
                .contains("nc=00000001")
        );
        // The same nonce again without stale: refused.
        assert!(
            gw.on_response(
                t0,
                "p1",
                &respond(&o.message, 401, &[("WWW-Authenticate", &first)])
            )
            .is_none()
        );
        assert!(matches!(state(&gw, "p1"), RegState::FailWait { .. }));
    }

    #[test]
    fn a_proxy_challenge_gets_proxy_authorization() {
        let t0 = origin();
        let mut gw = Gateways::new([&config("p1")], "ua", t0);
        let mut challenger = DigestChallenger::new("r", [1; 32], Duration::from_secs(60));
        let o = gw.poll(t0, local).remove(0);
        let challenge = challenger.challenges(0, false).remove(0);
        let o = gw
            .on_response(
                t0,
                "p1",
                &respond(&o.message, 407, &[("Proxy-Authenticate", &challenge)]),
            )
            .unwrap();
        let answer = o.message.header("Proxy-Authorization").unwrap();
        let outcome = challenger.verify(
            0,
            "REGISTER",
            o.message.request_uri().unwrap(),
            answer,
            |_| Some("secret".into()),
        );
        assert_eq!(
            outcome,
            AuthOutcome::Authorized {
                username: "4420".into()
            }
        );
    }

    #[test]
    fn a_realm_mismatch_is_not_answered() {
        let t0 = origin();
        let mut c = config("p1");
        c.realm = Some("provider.test".into());
        let mut gw = Gateways::new([&c], "ua", t0);
        let o = gw.poll(t0, local).remove(0);
        let other = DigestChallenger::new("evil.test", [1; 32], Duration::from_secs(60))
            .challenges(0, false)
            .remove(0);
        assert!(
            gw.on_response(
                t0,
                "p1",
                &respond(&o.message, 401, &[("WWW-Authenticate", &other)])
            )
            .is_none()
        );
        assert!(gw.status_text(t0).contains("no challenge we can answer"));
        // The configured realm is answered, even when listed second.
        let t1 = t0 + Duration::from_secs(30);
        let o = gw.poll(t1, local).remove(0);
        let good = DigestChallenger::new("provider.test", [1; 32], Duration::from_secs(60))
            .challenges(0, false)
            .remove(0);
        let r = respond(
            &o.message,
            401,
            &[("WWW-Authenticate", &other), ("WWW-Authenticate", &good)],
        );
        let o = gw.on_response(t1, "p1", &r).unwrap();
        assert!(
            o.message
                .header("Authorization")
                .unwrap()
                .contains("realm=\"provider.test\"")
        );
    }

    #[test]
    fn failures_back_off_doubling_up_to_the_cap() {
        let t0 = origin();
        let mut c = config("p1");
        c.retry_secs = 30;
        c.max_retry_secs = 200;
        let mut gw = Gateways::new([&c], "ua", t0);
        let mut now = t0;
        let mut waits = Vec::new();
        for round in 0..6 {
            let o = gw.poll(now, local);
            assert_eq!(o.len(), 1, "round {round}");
            if round % 2 == 0 {
                assert!(
                    gw.on_response(now, "p1", &respond(&o[0].message, 403, &[]))
                        .is_none()
                );
            } else {
                gw.on_timeout(now, "p1");
            }
            let next = gw.next_deadline().unwrap();
            waits.push((next - now).as_secs());
            // Nothing is sent before the retry is due.
            assert!(gw.poll(next - Duration::from_millis(1), local).is_empty());
            now = next;
        }
        assert_eq!(waits, [30, 60, 120, 200, 200, 200]);
        assert!(gw.status_text(now).contains("timeout"));

        // A success resets the count.
        let o = gw.poll(now, local).remove(0);
        gw.on_response(now, "p1", &respond(&o.message, 200, &[]));
        let o = gw.poll(now + Duration::from_secs(540), local).remove(0);
        gw.on_timeout(now + Duration::from_secs(540), "p1");
        assert_eq!(gw.next_deadline(), Some(now + Duration::from_secs(570)));
        drop(o);
    }

    #[test]
    fn retry_after_and_interval_too_brief_are_honoured() {
        let t0 = origin();
        let mut gw = Gateways::new([&config("p1")], "ua", t0);
        let o = gw.poll(t0, local).remove(0);
        gw.on_response(
            t0,
            "p1",
            &respond(&o.message, 503, &[("Retry-After", "120 (maintenance)")]),
        );
        assert_eq!(gw.next_deadline(), Some(t0 + Duration::from_secs(120)));

        let t1 = t0 + Duration::from_secs(120);
        let o = gw.poll(t1, local).remove(0);
        let again = gw
            .on_response(
                t1,
                "p1",
                &respond(&o.message, 423, &[("Min-Expires", "1800")]),
            )
            .expect("RFC 3261 §10.2.8: ask again at Min-Expires");
        assert_eq!(again.message.expires(), Some(1800));
        assert!(
            gw.on_response(t1, "p1", &respond(&again.message, 200, &[]))
                .is_none()
        );
        assert_eq!(gw.next_deadline(), Some(t1 + Duration::from_secs(1740)));
    }

    #[test]
    fn disabled_and_noreg_gateways_never_register() {
        let t0 = origin();
        let mut off = config("off");
        off.enabled = false;
        let mut noreg = config("noreg");
        noreg.register = false;
        let mut gw = Gateways::new([&noreg, &off], "ua", t0);
        assert_eq!(gw.next_deadline(), None);
        for secs in [0, 1, 600, 86_400] {
            assert!(gw.poll(t0 + Duration::from_secs(secs), local).is_empty());
        }
        assert!(gw.unregister(t0, local).is_empty());
        let status = gw.status_text(t0);
        assert!(
            status.contains("DISABLED") && status.contains("NOREG"),
            "{status}"
        );
        // A disabled gateway carries no calls; a register=false one does.
        assert!(gw.invite_target("off", "100", None, None).is_none());
        assert!(gw.invite_target("noreg", "100", None, None).is_some());
    }

    #[test]
    fn a_missing_listener_is_a_failure() {
        let t0 = origin();
        let mut c = config("p1");
        c.transport = GatewayTransport::Tcp;
        let mut gw = Gateways::new([&c], "ua", t0);
        assert!(gw.poll(t0, |_| None).is_empty());
        assert!(gw.status_text(t0).contains("no tcp listener"));
        let o = gw.poll(t0 + Duration::from_secs(30), local).remove(0);
        assert_eq!(o.peer.transport, TransportKind::Tcp);
        assert_eq!(
            o.message.request_uri(),
            Some("sip:198.51.100.10;transport=tcp")
        );
        assert!(o.message.top_via().transport.eq_ignore_ascii_case("TCP"));
        assert_eq!(
            o.message.header("Contact"),
            Some("<sip:4420@192.0.2.1:5060;transport=tcp>")
        );
    }

    #[test]
    fn unregister_sends_expires_zero_with_credentials() {
        let t0 = origin();
        let mut gw = Gateways::new([&config("p1")], "ua", t0);
        let mut registrar = Registrar::new("secret");
        register(&mut gw, t0, &mut registrar);
        let t1 = t0 + Duration::from_secs(10);
        let o = gw.unregister(t1, local).remove(0);
        assert_eq!(o.message.expires(), Some(0));
        let challenge = registrar.answer(&o.message);
        let o = gw
            .on_response(t1, "p1", &challenge)
            .expect("answers the challenge");
        assert_eq!(o.message.expires(), Some(0));
        assert!(o.message.header("Authorization").is_some());
        assert!(
            gw.on_response(t1, "p1", &respond(&o.message, 200, &[]))
                .is_none()
        );
        assert_eq!(gw.next_deadline(), None);
        assert!(gw.status_text(t1).contains("UNREGED"));
        assert!(gw.poll(t1 + Duration::from_secs(3600), local).is_empty());
    }

    #[test]
    fn a_refused_or_lost_unregister_is_not_retried() {
        let t0 = origin();
        for (status, extra) in [
            (423, ("Min-Expires", "60")),
            (403, ("X", "y")),
            (0, ("X", "y")),
        ] {
            let mut gw = Gateways::new([&config("p1")], "ua", t0);
            let o = gw.poll(t0, local).remove(0);
            gw.on_response(t0, "p1", &respond(&o.message, 200, &[]));
            let o = gw.unregister(t0, local).remove(0);
            if status == 0 {
                gw.on_timeout(t0, "p1");
            } else {
                assert!(
                    gw.on_response(t0, "p1", &respond(&o.message, status, &[extra]))
                        .is_none()
                );
            }
            assert_eq!(gw.next_deadline(), None, "{status}");
            assert!(gw.poll(t0 + Duration::from_secs(3600), local).is_empty());
        }
        // A gateway that never registered has nothing to remove and stops trying.
        let mut gw = Gateways::new([&config("p1")], "ua", t0);
        assert!(gw.unregister(t0, local).is_empty());
        assert_eq!(gw.next_deadline(), None);
    }

    #[test]
    fn stale_responses_are_ignored() {
        let t0 = origin();
        let mut gw = Gateways::new([&config("p1")], "ua", t0);
        let o = gw.poll(t0, local).remove(0);
        assert!(
            gw.on_response(t0, "p1", &respond(&o.message, 100, &[]))
                .is_none()
        );
        assert!(matches!(state(&gw, "p1"), RegState::Trying(_)));
        let challenge = DigestChallenger::new("r", [1; 32], Duration::from_secs(60))
            .challenges(0, false)
            .remove(0);
        let second = gw
            .on_response(
                t0,
                "p1",
                &respond(&o.message, 401, &[("WWW-Authenticate", &challenge)]),
            )
            .unwrap();
        // A late 403 to the first REGISTER (older CSeq) changes nothing.
        assert!(
            gw.on_response(t0, "p1", &respond(&o.message, 403, &[]))
                .is_none()
        );
        assert!(matches!(state(&gw, "p1"), RegState::Trying(_)));
        assert!(
            gw.on_response(t0, "p1", &respond(&second.message, 200, &[]))
                .is_none()
        );
        assert!(gw.status_text(t0).contains("REGED"));
        assert!(
            gw.on_response(t0, "nope", &respond(&second.message, 200, &[]))
                .is_none()
        );
    }

    #[test]
    fn inbound_is_accepted_from_the_proxy_and_the_acl() {
        let t0 = origin();
        let mut a = config("a");
        a.inbound_acl = vec![
            "203.0.113.0/24".parse::<Cidr>().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ];
        let mut b = config("b");
        b.proxy = "192.0.2.50:5080".parse().unwrap();
        let mut off = config("c");
        off.proxy = "192.0.2.60:5060".parse().unwrap();
        off.enabled = false;
        let gw = Gateways::new([&a, &b, &off], "ua", t0);
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            gw.inbound_gateway(addr("198.51.100.10:5060")),
            Some("a"),
            "a's proxy (c has the same address but is disabled)"
        );
        assert_eq!(gw.inbound_gateway(addr("203.0.113.77:5999")), Some("a"));
        assert_eq!(
            gw.inbound_gateway(addr("[::ffff:203.0.113.77]:5999")),
            Some("a")
        );
        assert_eq!(gw.inbound_gateway(addr("[2001:db8:5::1]:5060")), Some("a"));
        assert_eq!(gw.inbound_gateway(addr("192.0.2.50:5080")), Some("b"));
        assert_eq!(
            gw.inbound_gateway(addr("192.0.2.60:5060")),
            None,
            "disabled"
        );
        assert_eq!(gw.inbound_gateway(addr("203.0.114.1:5060")), None);
        assert_eq!(gw.config("b").unwrap().inbound_context, "public");
    }

    #[test]
    fn inbound_gateways_are_told_apart_by_port() {
        let t0 = origin();
        let mut a = config("a");
        a.proxy = "127.0.0.1:15060".parse().unwrap();
        let mut b = config("b");
        b.proxy = "127.0.0.1:15062".parse().unwrap();
        let mut c = config("c");
        c.proxy = "192.0.2.1:5060".parse().unwrap();
        c.inbound_acl = vec!["127.0.0.0/8".parse().unwrap()];
        let gw = Gateways::new([&a, &b, &c], "ua", t0);
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(gw.inbound_gateway(addr("127.0.0.1:15060")), Some("a"));
        assert_eq!(gw.inbound_gateway(addr("127.0.0.1:15062")), Some("b"));
        assert_eq!(
            gw.inbound_gateway(addr("[::ffff:127.0.0.1]:15062")),
            Some("b")
        );
        assert_eq!(
            gw.inbound_gateway(addr("127.0.0.1:5062")),
            Some("c"),
            "a phone on the proxies' host: only an ACL admits it"
        );
        let gw = Gateways::new([&a, &b], "ua", t0);
        assert_eq!(gw.inbound_gateway(addr("127.0.0.1:5062")), None);
        assert_eq!(gw.inbound_gateway(addr("192.0.2.1:5060")), None);
    }

    #[test]
    fn invite_targets_present_the_caller_id() {
        let t0 = origin();
        let mut fixed = config("fixed");
        fixed.caller_id_number = Some("+442071234567".into());
        fixed.caller_id_name = Some("Acme \"HQ\"".into());
        fixed.proxy = "198.51.100.10:5080".parse().unwrap();
        let mut hidden = config("hidden");
        hidden.caller_id_in_from = false;
        hidden.transport = GatewayTransport::Tcp;
        let gw = Gateways::new([&config("p1"), &fixed, &hidden], "ua", t0);

        let t = gw
            .invite_target("p1", "0044#1", Some("1001"), Some("Ann"))
            .unwrap();
        assert_eq!(t.request_uri, "sip:0044%231@198.51.100.10");
        assert_eq!(t.to_uri, "<sip:0044%231@198.51.100.10>");
        assert_eq!(t.from_uri, "\"Ann\" <sip:1001@198.51.100.10>");
        assert_eq!(t.peer.addr, "198.51.100.10:5060".parse().unwrap());
        let t = gw.invite_target("p1", "5551234", None, None).unwrap();
        assert_eq!(
            t.from_uri, "<sip:4420@198.51.100.10>",
            "no caller id: the account"
        );

        let t = gw
            .invite_target("fixed", "5551234", Some("1001"), Some("Ann"))
            .unwrap();
        assert_eq!(t.request_uri, "sip:5551234@198.51.100.10:5080");
        assert_eq!(
            t.from_uri,
            "\"Acme \\\"HQ\\\"\" <sip:+442071234567@198.51.100.10>"
        );

        let t = gw
            .invite_target("hidden", "5551234", Some("1001"), Some("Ann"))
            .unwrap();
        assert_eq!(t.request_uri, "sip:5551234@198.51.100.10;transport=tcp");
        assert_eq!(t.from_uri, "\"Ann\" <sip:4420@198.51.100.10>");
        assert_eq!(t.peer.transport, TransportKind::Tcp);

        assert!(gw.invite_target("nope", "1", None, None).is_none());
        assert!(gw.invite_target("p1", "", None, None).is_none());
        // Every target parses as SIP.
        let t = gw.invite_target("fixed", "1", None, None).unwrap();
        let raw = format!(
            "INVITE {} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa\r\nFrom: {};tag=1\r\nTo: {}\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
            t.request_uri, t.from_uri, t.to_uri
        );
        let m = parse(Bytes::from(raw));
        assert_eq!(m.from().display_name.as_deref(), Some("Acme \"HQ\""));
    }

    #[test]
    fn an_invite_challenge_is_answered_for_its_request_uri() {
        let t0 = origin();
        let gw = Gateways::new([&config("p1")], "ua", t0);
        let target = gw.invite_target("p1", "5551234", None, None).unwrap();
        let invite = parse(Bytes::from(format!(
            "INVITE {} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa\r\nFrom: {};tag=1\r\nTo: {}\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
            target.request_uri, target.from_uri, target.to_uri
        )));
        let mut challenger =
            DigestChallenger::new("provider.test", [3; 32], Duration::from_secs(60));
        for (status, header, answer_name) in [
            (407, "Proxy-Authenticate", "Proxy-Authorization"),
            (401, "WWW-Authenticate", "Authorization"),
        ] {
            let challenge = challenger.challenges(0, false).remove(0);
            let r = respond(&invite, status, &[(header, &challenge)]);
            let (name, value) = gw
                .authorize("p1", &r, "INVITE", &target.request_uri)
                .unwrap();
            assert_eq!(name, answer_name);
            let outcome = challenger.verify(0, "INVITE", &target.request_uri, &value, |u| {
                (u == "4420").then(|| "secret".into())
            });
            assert_eq!(
                outcome,
                AuthOutcome::Authorized {
                    username: "4420".into()
                }
            );
        }
        assert!(
            gw.authorize("p1", &respond(&invite, 403, &[]), "INVITE", "sip:x@y")
                .is_none()
        );
        assert!(
            gw.authorize("zz", &respond(&invite, 401, &[]), "INVITE", "sip:x@y")
                .is_none()
        );
    }

    #[test]
    fn digest_params_are_read_quoted_or_not() {
        let c = r#"Digest realm="a \"b\", c", nonce="n", stale=TRUE, algorithm=MD5"#;
        assert_eq!(digest_param(c, "realm").as_deref(), Some("a \"b\", c"));
        assert_eq!(digest_param(c, "algorithm").as_deref(), Some("MD5"));
        assert!(is_stale(c));
        assert!(!is_stale("Digest realm=\"x\", nonce=\"y\""));
        assert_eq!(digest_param("Digest", "realm"), None);
    }
}
