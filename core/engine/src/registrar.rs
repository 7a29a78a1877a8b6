//! The registrar's bindings (RFC 3261 §10.3): several contacts per address-of-record, each with
//! its own expiry, Call-ID and CSeq, and the flow it arrived on so calls reach phones behind NAT.
//! Bindings live in memory for routing and are written through to the store so they survive a
//! restart.

use std::collections::HashMap;

use switchyard_sip::transaction::Peer;
use switchyard_sip::{Contact, Message};
use switchyard_store::Binding;

use crate::transport::{format_peer, parse_peer};

#[derive(Clone, Debug, PartialEq)]
pub struct ContactBinding {
    /// The Contact URI exactly as the phone sent it (RFC 4475 §3.3.14: escaped headers kept).
    pub contact: String,
    /// Where requests for this contact go: see [`delivery_peer`].
    pub flow: Peer,
    pub expires_unix: i64,
    pub call_id: String,
    pub cseq: u32,
    pub user_agent: Option<String>,
    pub q: Option<f32>,
}

/// Limits from `[auth]` in switchyard.toml.
#[derive(Clone, Copy, Debug)]
pub struct ExpiryPolicy {
    pub min: u32,
    pub max: u32,
    pub default: u32,
}

/// Why a REGISTER was refused after authentication.
#[derive(Debug, PartialEq)]
pub enum RegisterRefusal {
    /// RFC 3261 §10.3 step 6: "*" only alone and with Expires: 0.
    BadWildcard,
    /// RFC 3261 §10.3 step 7: a stale CSeq for the same Call-ID.
    OutOfOrder,
    /// RFC 3261 §10.2.8: 423 with Min-Expires.
    IntervalTooBrief {
        min: u32,
    },
    BadContact,
}

/// A store write the engine forwards to the storage thread.
#[derive(Debug, PartialEq)]
pub enum BindingChange {
    Upsert(Binding),
    Remove { user: String, contact: String },
    RemoveAll { user: String },
}

#[derive(Debug, Default)]
pub struct Registrar {
    bindings: HashMap<String, Vec<ContactBinding>>,
}

impl Registrar {
    /// Rebuilds the registrar from the store at startup, skipping what expired while we were down.
    pub fn from_stored(stored: Vec<Binding>, now_unix: i64) -> Registrar {
        let mut registrar = Registrar::default();
        for binding in stored {
            if binding.expires_unix <= now_unix {
                continue;
            }
            let Some(flow) = parse_peer(&binding.source) else {
                continue;
            };
            registrar
                .bindings
                .entry(binding.user)
                .or_default()
                .push(ContactBinding {
                    contact: binding.contact,
                    flow,
                    expires_unix: binding.expires_unix,
                    call_id: binding.call_id,
                    cseq: binding.cseq,
                    user_agent: binding.user_agent,
                    q: binding.q,
                });
        }
        registrar
    }

    /// Applies an authenticated REGISTER for `user`. On success returns the store writes to make;
    /// the current bindings are then read back with [`Registrar::contacts`] for the 200 OK.
    pub fn register(
        &mut self,
        user: &str,
        request: &Message,
        flow: Peer,
        now_unix: i64,
        policy: ExpiryPolicy,
    ) -> Result<Vec<BindingChange>, RegisterRefusal> {
        let contacts = request
            .contacts()
            .map_err(|_| RegisterRefusal::BadContact)?;
        let header_expires = request.expires();
        let call_id = request.call_id();
        let (cseq, _) = request.cseq();
        let user_agent = request.header("User-Agent").map(str::to_owned);

        if contacts.iter().any(|c| matches!(c, Contact::Star)) {
            if contacts.len() != 1 || header_expires != Some(0) {
                return Err(RegisterRefusal::BadWildcard);
            }
            let existing = self
                .bindings
                .get(user)
                .map(Vec::as_slice)
                .unwrap_or_default();
            if existing
                .iter()
                .any(|b| b.call_id == call_id && cseq <= b.cseq)
            {
                return Err(RegisterRefusal::OutOfOrder);
            }
            self.bindings.remove(user);
            return Ok(vec![BindingChange::RemoveAll {
                user: user.to_owned(),
            }]);
        }

        // Validate every contact before touching any binding: a REGISTER applies whole or not at all.
        let mut planned = Vec::with_capacity(contacts.len());
        for contact in &contacts {
            let Contact::Address(address) = contact else {
                return Err(RegisterRefusal::BadContact);
            };
            let requested = match address.param("expires") {
                Some(Some(value)) => value.trim().parse::<u32>().ok(),
                _ => None,
            }
            .or(header_expires)
            .unwrap_or(policy.default);
            if requested != 0 && requested < policy.min {
                return Err(RegisterRefusal::IntervalTooBrief { min: policy.min });
            }
            let q = match address.param("q") {
                Some(Some(value)) => value.parse::<f32>().ok(),
                _ => None,
            };
            let target = delivery_peer(&address.uri, flow);
            planned.push((
                address.uri.raw.to_owned(),
                requested.min(policy.max),
                q,
                target,
            ));
        }

        let entries = self.bindings.entry(user.to_owned()).or_default();
        for (contact, _, _, _) in &planned {
            if let Some(existing) = entries.iter().find(|b| &b.contact == contact)
                && existing.call_id == call_id
                && cseq <= existing.cseq
            {
                return Err(RegisterRefusal::OutOfOrder);
            }
        }

        let mut changes = Vec::new();
        for (contact, expires, q, target) in planned {
            entries.retain(|b| b.contact != contact);
            if expires == 0 {
                changes.push(BindingChange::Remove {
                    user: user.to_owned(),
                    contact,
                });
                continue;
            }
            let binding = ContactBinding {
                contact,
                flow: target,
                expires_unix: now_unix + i64::from(expires),
                call_id: call_id.to_owned(),
                cseq,
                user_agent: user_agent.clone(),
                q,
            };
            changes.push(BindingChange::Upsert(to_stored(user, &binding)));
            entries.push(binding);
        }
        if entries.is_empty() {
            self.bindings.remove(user);
        }
        Ok(changes)
    }

    /// Live contacts of a user, highest q first (RFC 3261 §16.6 would fork in q order).
    pub fn contacts(&self, user: &str, now_unix: i64) -> Vec<&ContactBinding> {
        let mut live: Vec<&ContactBinding> = self
            .bindings
            .get(user)
            .map(|list| list.iter().filter(|b| b.expires_unix > now_unix).collect())
            .unwrap_or_default();
        live.sort_by(|a, b| b.q.unwrap_or(1.0).total_cmp(&a.q.unwrap_or(1.0)));
        live
    }

    /// Drops expired bindings; the store is told separately with one bulk delete.
    pub fn purge_expired(&mut self, now_unix: i64) -> usize {
        let mut removed = 0;
        self.bindings.retain(|_, list| {
            let before = list.len();
            list.retain(|b| b.expires_unix > now_unix);
            removed += before - list.len();
            !list.is_empty()
        });
        removed
    }

    pub fn all(&self) -> impl Iterator<Item = (&str, &ContactBinding)> {
        self.bindings
            .iter()
            .flat_map(|(user, list)| list.iter().map(move |b| (user.as_str(), b)))
    }

    pub fn len(&self) -> usize {
        self.bindings.values().map(Vec::len).sum()
    }
}

/// Where to send requests for a contact registered from `source`.
///
/// Over TCP the phone's own connection is the only sure way back through NAT, so we use it. Over
/// UDP a Contact naming the very address the REGISTER came from (or only its port changed, as a
/// softphone with a separate listening socket does) is trusted; a Contact naming another IP,
/// typically a private address behind NAT, or a host name we would have to resolve, is replaced
/// by the source address, as FreeSWITCH's NAT detection and Asterisk's `force_rport` do.
pub fn delivery_peer(contact: &switchyard_sip::Uri<'_>, source: Peer) -> Peer {
    if source.transport == switchyard_sip::transaction::TransportKind::Tcp {
        return source;
    }
    let host = contact.host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) if ip == source.addr.ip() => {
            let port = contact.port.unwrap_or(5060);
            Peer {
                transport: source.transport,
                addr: std::net::SocketAddr::new(ip, port),
            }
        }
        _ => source,
    }
}

fn to_stored(user: &str, binding: &ContactBinding) -> Binding {
    Binding {
        user: user.to_owned(),
        contact: binding.contact.clone(),
        source: format_peer(&binding.flow),
        expires_unix: binding.expires_unix,
        call_id: binding.call_id.clone(),
        cseq: binding.cseq,
        user_agent: binding.user_agent.clone(),
        q: binding.q,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sip::Uri;
    use switchyard_sip::transaction::TransportKind;

    const POLICY: ExpiryPolicy = ExpiryPolicy {
        min: 60,
        max: 3600,
        default: 3600,
    };

    fn flow() -> Peer {
        Peer {
            transport: TransportKind::Udp,
            addr: "192.0.2.1:5062".parse().unwrap(),
        }
    }

    fn register(call_id: &str, cseq: u32, contacts: &[&str], expires: Option<u32>) -> Message {
        let mut text = format!(
            "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK{cseq}{call_id}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:1000@example.com>;tag=a1\r\nTo: <sip:1000@example.com>\r\n\
             Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
        );
        for contact in contacts {
            text.push_str(&format!("Contact: {contact}\r\n"));
        }
        if let Some(expires) = expires {
            text.push_str(&format!("Expires: {expires}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        Message::parse_datagram(text.into_bytes().into()).unwrap()
    }

    #[test]
    fn several_contacts_expire_and_unregister_one_by_one() {
        let mut registrar = Registrar::default();
        let changes = registrar
            .register(
                "1000",
                &register("c1", 1, &["<sip:1000@192.0.2.1:5062>"], None),
                flow(),
                0,
                POLICY,
            )
            .unwrap();
        assert_eq!(changes.len(), 1);
        registrar
            .register(
                "1000",
                &register("c2", 1, &["<sip:1000@192.0.2.9:5060>;expires=120"], None),
                flow(),
                0,
                POLICY,
            )
            .unwrap();
        assert_eq!(registrar.contacts("1000", 0).len(), 2);
        assert_eq!(registrar.contacts("1000", 119).len(), 2);
        assert_eq!(
            registrar.contacts("1000", 120).len(),
            1,
            "the 120 s binding lapsed"
        );

        registrar
            .register(
                "1000",
                &register("c1", 2, &["<sip:1000@192.0.2.1:5062>"], Some(0)),
                flow(),
                10,
                POLICY,
            )
            .unwrap();
        let left: Vec<_> = registrar
            .contacts("1000", 10)
            .iter()
            .map(|b| b.contact.clone())
            .collect();
        assert_eq!(left, vec!["sip:1000@192.0.2.9:5060".to_owned()]);
    }

    #[test]
    fn wildcard_removes_all_but_only_alone_with_expires_zero() {
        let mut registrar = Registrar::default();
        registrar
            .register(
                "1000",
                &register("c1", 1, &["<sip:a@192.0.2.1>"], None),
                flow(),
                0,
                POLICY,
            )
            .unwrap();
        assert_eq!(
            registrar.register("1000", &register("c9", 1, &["*"], None), flow(), 0, POLICY),
            Err(RegisterRefusal::BadWildcard)
        );
        let changes = registrar
            .register(
                "1000",
                &register("c9", 1, &["*"], Some(0)),
                flow(),
                0,
                POLICY,
            )
            .unwrap();
        assert_eq!(
            changes,
            vec![BindingChange::RemoveAll {
                user: "1000".into()
            }]
        );
        assert!(registrar.contacts("1000", 0).is_empty());
    }

    #[test]
    fn stale_cseq_and_short_intervals_are_refused() {
        let mut registrar = Registrar::default();
        registrar
            .register(
                "1000",
                &register("c1", 5, &["<sip:a@192.0.2.1>"], None),
                flow(),
                0,
                POLICY,
            )
            .unwrap();
        assert_eq!(
            registrar.register(
                "1000",
                &register("c1", 5, &["<sip:a@192.0.2.1>"], None),
                flow(),
                0,
                POLICY
            ),
            Err(RegisterRefusal::OutOfOrder)
        );
        assert_eq!(
            registrar.register(
                "1000",
                &register("c1", 6, &["<sip:a@192.0.2.1>"], Some(10)),
                flow(),
                0,
                POLICY
            ),
            Err(RegisterRefusal::IntervalTooBrief { min: 60 })
        );
        // Longer than allowed is shortened, not refused (RFC 3261 §10.3 step 7).
        registrar
            .register(
                "1000",
                &register("c1", 7, &["<sip:a@192.0.2.1>"], Some(99999)),
                flow(),
                0,
                POLICY,
            )
            .unwrap();
        assert_eq!(registrar.contacts("1000", 0)[0].expires_unix, 3600);
    }

    #[test]
    fn contacts_behind_nat_are_reached_at_the_registering_source() {
        let source = flow();
        let same_ip = Uri::parse("sip:1000@192.0.2.1:7000").unwrap();
        assert_eq!(
            delivery_peer(&same_ip, source).addr,
            "192.0.2.1:7000".parse().unwrap()
        );
        let private = Uri::parse("sip:1000@10.0.0.5:5060").unwrap();
        assert_eq!(delivery_peer(&private, source), source);
        let named = Uri::parse("sip:1000@phone.example.com").unwrap();
        assert_eq!(delivery_peer(&named, source), source);
        let tcp = Peer {
            transport: TransportKind::Tcp,
            ..source
        };
        assert_eq!(delivery_peer(&same_ip, tcp), tcp);
    }

    #[test]
    fn stored_bindings_come_back_without_the_expired_ones() {
        let mut registrar = Registrar::default();
        let changes = registrar
            .register(
                "1000",
                &register("c1", 1, &["<sip:a@192.0.2.1>;expires=100"], None),
                flow(),
                0,
                POLICY,
            )
            .unwrap();
        let BindingChange::Upsert(stored) = &changes[0] else {
            panic!("expected an upsert")
        };
        let restored = Registrar::from_stored(vec![stored.clone()], 50);
        // The Contact names the source's IP without a port: 5060 there (RFC 3263 default).
        let expected = Peer {
            transport: TransportKind::Udp,
            addr: "192.0.2.1:5060".parse().unwrap(),
        };
        assert_eq!(restored.contacts("1000", 50)[0].flow, expected);
        assert_eq!(Registrar::from_stored(vec![stored.clone()], 100).len(), 0);
    }
}
