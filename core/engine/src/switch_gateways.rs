//! SIP trunks in the switch: registration traffic of [`Gateways`], calls out through a
//! gateway (with the provider's digest challenge answered), and calls in from a trunk
//! accepted by address. A child module of `switch`, so it works on the switch's own state.

use crate::gateway::Gateways;

use super::*;

/// A provider challenging our INVITE gets one answer per fork: a second challenge means the
/// credentials are wrong, and the fork fails like any other 4xx.
pub(super) const MAX_INVITE_AUTH: u8 = 1;

impl Switch {
    /// Sends the REGISTERs that are due.
    pub(super) fn poll_gateways(&mut self, now: Now) {
        let local = self.settings.local;
        let outgoing = self.gateways.poll(now.mono, |transport| match transport {
            TransportKind::Udp => local.udp,
            TransportKind::Tcp => local.tcp,
        });
        for o in outgoing {
            self.send_gateway_register(now, o);
        }
    }

    fn send_gateway_register(&mut self, now: Now, o: crate::gateway::Outgoing) {
        debug!(gateway = o.gateway, "REGISTER to the gateway");
        let tx = self.transactions.send_request(now.mono, o.message, o.peer);
        self.client_roles
            .insert(tx, ClientRole::GatewayRegister { gateway: o.gateway });
    }

    pub(super) fn on_gateway_register_response(&mut self, now: Now, gateway: &str, msg: &Message) {
        let status = msg.status().unwrap_or_default();
        if let Some(next) = self.gateways.on_response(now.mono, gateway, msg) {
            self.send_gateway_register(now, next);
        } else if (200..300).contains(&status) {
            info!(gateway, "gateway registered");
        } else if status >= 300 {
            warn!(gateway, status, "gateway registration failed");
        }
    }

    pub(super) fn on_gateway_register_timeout(&mut self, now: Now, gateway: &str) {
        warn!(gateway, "gateway registration timed out");
        self.gateways.on_timeout(now.mono, gateway);
    }

    /// At shutdown: our registrations are removed (Expires: 0).
    pub(super) fn unregister_gateways(&mut self, now: Now) {
        let local = self.settings.local;
        let outgoing = self
            .gateways
            .unregister(now.mono, |transport| match transport {
                TransportKind::Udp => local.udp,
                TransportKind::Tcp => local.tcp,
            });
        for o in outgoing {
            self.send_gateway_register(now, o);
        }
    }

    /// Rings `number` through gateway `name`; returns the forks started (0 or 1).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn ring_gateway(
        &mut self,
        now: Now,
        key: CallKey,
        name: &str,
        number: &str,
        caller_id: &(Option<String>, Option<String>),
        offer: &[u8],
        max_forwards: u32,
    ) -> usize {
        let Some(caller) = self.calls.get(&key).map(|c| c.caller.clone()) else {
            return 0;
        };
        let number_presented = caller_id.0.clone().unwrap_or(caller);
        let Some(target) = self.gateways.invite_target(
            name,
            number,
            Some(&number_presented),
            caller_id.1.as_deref(),
        ) else {
            warn!(
                gateway = name,
                number, "bridge: no such gateway, or it is disabled"
            );
            return 0;
        };
        let callee = format!("{name}/{number}");
        if let Some(c) = self.calls.get_mut(&key) {
            c.callee = callee.clone();
        }
        let Some(tx) = self.start_fork(
            now,
            key,
            ForkTarget {
                callee: &callee,
                from_user: &number_presented,
                display: None,
                from_uri: Some(&target.from_uri),
                to_uri: &target.to_uri,
                request_uri: &target.request_uri,
                flow: target.peer,
            },
            offer,
            max_forwards,
        ) else {
            return 0;
        };
        if let Some(ClientRole::BInvite { call, fork }) = self.client_roles.get(&tx)
            && let Some(leg) = self
                .calls
                .get_mut(call)
                .and_then(|c| c.forks.get_mut(*fork))
        {
            leg.gateway = Some(name.to_owned());
        }
        info!(gateway = name, number, "calling out through the gateway");
        1
    }

    /// A 401/407 to an INVITE we sent a gateway: the INVITE again with the provider's
    /// credentials (same dialog, next CSeq). False when the fork should fail instead.
    pub(super) fn answer_gateway_challenge(
        &mut self,
        now: Now,
        key: CallKey,
        fork: usize,
        challenge: &Message,
    ) -> bool {
        let Some(call) = self.calls.get(&key) else {
            return false;
        };
        let Some(leg) = call.forks.get(fork) else {
            return false;
        };
        let Some(gateway) = leg.gateway.clone() else {
            return false;
        };
        let current = call
            .script
            .as_ref()
            .and_then(|s| s.group_start())
            .is_some_and(|first| fork >= first);
        if !current || leg.cancel_pending || leg.state == ForkState::Cancelled {
            // The challenge crossed our CANCEL: the fork is given up, not tried again.
            return false;
        }
        if leg.auth_answers >= MAX_INVITE_AUTH {
            warn!(gateway, "the gateway refused our credentials for the call");
            return false;
        }
        let Some(offer) = call.b_offer.as_ref().map(SessionDescription::to_bytes) else {
            return false;
        };
        let max_forwards = call.max_forwards;
        let Some(authorization) =
            self.gateways
                .authorize(&gateway, challenge, "INVITE", &leg.dialog.remote_target)
        else {
            return false;
        };
        let user_agent = self.settings.user_agent.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return false;
        };
        let leg = &mut call.forks[fork];
        leg.dialog.local_cseq += 1;
        leg.auth_answers += 1;
        let request = fork_invite(
            &leg.dialog,
            max_forwards,
            &user_agent,
            Some((authorization.0, &authorization.1)),
            &offer,
        );
        let Some(request) = parse_own(request) else {
            return false;
        };
        let invite_tx = self
            .transactions
            .send_request(now.mono, request, leg.dialog.peer);
        leg.invite_tx = invite_tx;
        leg.state = ForkState::Calling;
        leg.final_status = None;
        self.client_roles
            .insert(invite_tx, ClientRole::BInvite { call: key, fork });
        debug!(gateway, "INVITE sent again with credentials");
        true
    }

    /// The gateway a new INVITE comes from, when its source is a trunk: the proxy by its
    /// address and port (phones may share its IP, in a lab or a test on loopback, and must
    /// still authenticate), or an address of the gateway's inbound ACL.
    pub(super) fn trunk_of(&self, source: SocketAddr) -> Option<String> {
        self.gateways.inbound_gateway(source).map(str::to_owned)
    }

    pub(super) fn gateways_text(&self, now: Now) -> String {
        self.gateways.status_text(now.mono)
    }
}

/// Builds the gateway table from the configuration.
pub(super) fn gateways_from(config: &Config, now: Now) -> Gateways {
    Gateways::new(config.gateways.values(), &config.sip.user_agent, now.mono)
}

/// An initial INVITE of a fork (the first, or one answering a challenge), from its dialog.
pub(super) fn fork_invite(
    dialog: &Dialog,
    max_forwards: u32,
    user_agent: &str,
    authorization: Option<(&str, &str)>,
    offer: &[u8],
) -> Bytes {
    let mut builder = MessageBuilder::request(&Method::Invite, &dialog.remote_target);
    builder.header(
        "Via",
        via_value(dialog.peer.transport, dialog.local_addr, &new_branch()),
    );
    builder.header("Max-Forwards", max_forwards);
    builder.header(
        "From",
        format!("{};tag={}", dialog.local_uri, dialog.local_tag),
    );
    builder.header("To", &dialog.remote_uri);
    builder.header("Call-ID", &dialog.call_id);
    builder.header("CSeq", format!("{} INVITE", dialog.local_cseq));
    builder.header(
        "Contact",
        contact_value(dialog.peer.transport, dialog.local_addr),
    );
    builder.header("Allow", ALLOW);
    builder.header("User-Agent", user_agent);
    if let Some((name, value)) = authorization {
        builder.header(name, value);
    }
    builder.finish(Some(SDP), offer)
}
