//! SIP dialogs (RFC 3261 §12) as the B2BUA holds them: one per call leg, enough state to build
//! in-dialog requests (BYE, re-INVITE, ACK) and to match incoming ones.

use std::fmt::Write as _;
use std::net::SocketAddr;

use bytes::Bytes;
use switchyard_sip::transaction::{Peer, TransportKind};
use switchyard_sip::{Message, MessageBuilder, Method};

#[derive(Clone, Debug)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: Option<String>,
    /// Our side's name-addr without the tag (From on requests we send).
    pub local_uri: String,
    /// The far side's name-addr without the tag (To on requests we send).
    pub remote_uri: String,
    /// Request-URI of in-dialog requests: the far side's Contact (RFC 3261 §12.1.1).
    pub remote_target: String,
    /// Route headers for in-dialog requests, already in sending order (§12.1.1 / §12.1.2).
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    /// The flow the far side speaks to us on; in-dialog requests go there, which keeps phones
    /// behind NAT reachable (the rport idea applied to requests, like RFC 5626 flows).
    pub peer: Peer,
    /// The address our Via and Contact carry on this leg.
    pub local_addr: SocketAddr,
    /// Our latest ACK for a 2xx on this leg (CSeq number, bytes): a retransmitted 2xx means
    /// it was lost and gets it again (RFC 3261 §13.2.2.4).
    pub last_ack: Option<(u32, Bytes)>,
}

impl Dialog {
    /// Builds an in-dialog request. ACK and CANCEL reuse a CSeq number; everything else takes
    /// the next one (RFC 3261 §12.2.1.1).
    pub fn request(
        &mut self,
        method: Method,
        cseq: Option<u32>,
        branch: &str,
        user_agent: &str,
        body: Option<(&str, &[u8])>,
    ) -> Bytes {
        let cseq = cseq.unwrap_or_else(|| {
            self.local_cseq += 1;
            self.local_cseq
        });
        let mut builder = MessageBuilder::request(&method, &self.remote_target);
        builder.header(
            "Via",
            via_value(self.peer.transport, self.local_addr, branch),
        );
        builder.header("Max-Forwards", 70);
        for route in &self.route_set {
            builder.header("Route", route);
        }
        builder.header("From", format!("{};tag={}", self.local_uri, self.local_tag));
        let mut to = self.remote_uri.clone();
        if let Some(tag) = &self.remote_tag {
            let _ = write!(to, ";tag={tag}");
        }
        builder.header("To", to);
        builder.header("Call-ID", &self.call_id);
        builder.header("CSeq", format!("{cseq} {method}"));
        if method == Method::Invite {
            builder.header(
                "Contact",
                contact_value(self.peer.transport, self.local_addr),
            );
            builder.header("Allow", crate::switch::ALLOW);
        }
        builder.header("User-Agent", user_agent);
        match body {
            Some((content_type, bytes)) => builder.finish(Some(content_type), bytes),
            None => builder.finish(None, &[]),
        }
    }

    /// ACKs the 2xx to our INVITE with CSeq `cseq` and remembers the ACK for retransmissions.
    pub fn acknowledge(&mut self, cseq: u32, branch: &str, user_agent: &str) -> Bytes {
        let ack = self.request(Method::Ack, Some(cseq), branch, user_agent, None);
        self.last_ack = Some((cseq, ack.clone()));
        ack
    }

    /// The ACK to send again for a retransmitted 2xx with this CSeq, if we sent one.
    pub fn ack_for(&self, cseq: u32) -> Option<Bytes> {
        self.last_ack
            .as_ref()
            .filter(|(sent, _)| *sent == cseq)
            .map(|(_, ack)| ack.clone())
    }

    /// A target refresh (RFC 3261 §12.2): a re-INVITE or UPDATE, or its 2xx, may move the far
    /// side's Contact.
    pub fn refresh_target(&mut self, message: &Message) {
        if let Ok(contacts) = message.contacts()
            && let Some(switchyard_sip::Contact::Address(address)) = contacts.first()
        {
            self.remote_target = address.uri.raw.to_owned();
        }
    }

    /// Learns the far side's tag, target and route set from a 2xx or early response to our
    /// INVITE (RFC 3261 §12.1.2: the route set is the Record-Route list reversed).
    pub fn update_from_response(&mut self, response: &Message) {
        if let Some(tag) = response.to().tag() {
            self.remote_tag = Some(tag.to_owned());
        }
        if let Ok(contacts) = response.contacts()
            && let Some(switchyard_sip::Contact::Address(address)) = contacts.first()
        {
            self.remote_target = address.uri.raw.to_owned();
        }
        let mut routes: Vec<String> = response
            .header_values("Record-Route")
            .map(str::to_owned)
            .collect();
        if !routes.is_empty() {
            routes.reverse();
            self.route_set = routes;
        }
    }
}

pub fn via_value(transport: TransportKind, local: SocketAddr, branch: &str) -> String {
    let name = match transport {
        TransportKind::Udp => "UDP",
        TransportKind::Tcp => "TCP",
    };
    format!("SIP/2.0/{name} {local};branch={branch};rport")
}

pub fn contact_value(transport: TransportKind, local: SocketAddr) -> String {
    match transport {
        TransportKind::Udp => format!("<sip:switchyard@{local}>"),
        TransportKind::Tcp => format!("<sip:switchyard@{local};transport=tcp>"),
    }
}

/// A name-addr without its tag parameter, as From / To are stored in a dialog.
pub fn without_tag(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    // Parameters after the closing '>' (or after the URI when there are no brackets) are header
    // parameters; drop only `tag` and keep the rest.
    let split_at = raw
        .rfind('>')
        .map(|i| i + 1)
        .unwrap_or_else(|| raw.find(';').unwrap_or(raw.len()));
    out.push_str(&raw[..split_at]);
    for param in raw[split_at..].split(';').filter(|p| !p.trim().is_empty()) {
        if !param.trim().to_ascii_lowercase().starts_with("tag=") {
            out.push(';');
            out.push_str(param.trim());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_stripped_and_other_parameters_kept() {
        assert_eq!(without_tag("<sip:a@b>;tag=123;x=y"), "<sip:a@b>;x=y");
        assert_eq!(
            without_tag("\"A\" <sip:a@b;lr>;TAG=9"),
            "\"A\" <sip:a@b;lr>"
        );
        assert_eq!(without_tag("sip:a@b;tag=1"), "sip:a@b");
    }

    #[test]
    fn in_dialog_requests_carry_dialog_identity_and_count_cseq() {
        let mut dialog = Dialog {
            call_id: "abc@h".into(),
            local_tag: "L".into(),
            remote_tag: Some("R".into()),
            local_uri: "<sip:1000@example.com>".into(),
            remote_uri: "<sip:1001@example.com>".into(),
            remote_target: "sip:1001@192.0.2.5:5062".into(),
            route_set: vec!["<sip:proxy.example.com;lr>".into()],
            local_cseq: 1,
            peer: Peer {
                transport: TransportKind::Udp,
                addr: "192.0.2.5:5062".parse().unwrap(),
            },
            local_addr: "127.0.0.1:5060".parse().unwrap(),
            last_ack: None,
        };
        let bye =
            Message::parse_datagram(dialog.request(Method::Bye, None, "z9hG4bKx", "test", None))
                .unwrap();
        assert_eq!(bye.request_uri(), Some("sip:1001@192.0.2.5:5062"));
        assert_eq!(bye.cseq().0, 2);
        assert_eq!(bye.from().tag(), Some("L"));
        assert_eq!(bye.to().tag(), Some("R"));
        assert_eq!(bye.header("Route"), Some("<sip:proxy.example.com;lr>"));
        let ack =
            Message::parse_datagram(dialog.request(Method::Ack, Some(1), "z9hG4bKy", "test", None))
                .unwrap();
        assert_eq!(ack.cseq().0, 1);
        assert_eq!(dialog.local_cseq, 2);
    }
}
