//! Call transfer: REFER from a phone (RFC 3515), blind or attended with Replaces (RFC 3891,
//! flows of RFC 5589), and the console's third-party `transfer UUID TARGET`. A child module of
//! `switch`, so it works on the switch's own state.
//!
//! The switch anchors every leg, so a REFER is carried out here rather than passed on: the
//! transferee's leg stays where it is and is connected to its new party, and the transferor
//! gets the outcome in `message/sipfrag` NOTIFYs, then our BYE.
//!
//! Supported: the callee of a bridged call transferring its caller (the usual agent transfer),
//! blind or attended, where the consultation call is one the transferor placed. A REFER from
//! the caller's side is declined (603): its other party is a leg we placed, which the
//! executor cannot yet run a plan for.

use switchyard_media::DtmfOptions;
use switchyard_sip::refer::{InDialog, ReferTo, Replaces, refer_notify, refer_sub_wanted};

use super::*;

/// How long the implicit subscription lives, in the NOTIFYs' Subscription-State.
const REFER_SUBSCRIPTION_SECS: u32 = 60;

impl Switch {
    /// A REFER inside the dialog of leg `side` of call `key`.
    pub(super) fn on_refer(
        &mut self,
        now: Now,
        tx: ServerTxId,
        msg: &Message,
        key: CallKey,
        side: Side,
    ) {
        let refer_to = match msg
            .header("Refer-To")
            .or_else(|| msg.header("r"))
            .map(ReferTo::parse)
        {
            Some(Ok(refer_to)) => refer_to,
            Some(Err(error)) => {
                info!(%error, "REFER with a bad Refer-To");
                return self.respond(now, tx, 400, &[], None, None);
            }
            None => return self.respond(now, tx, 400, &[], None, None),
        };
        let Some(call) = self.calls.get(&key) else {
            return self.respond(now, tx, 481, &[], None, None);
        };
        let Side::B(fork) = side else {
            info!(uuid = call.uuid, "REFER from the caller side declined");
            return self.respond(now, tx, 603, &[], None, None);
        };
        if call.state != CallState::Answered || call.winner != Some(fork) {
            return self.respond(now, tx, 403, &[], None, None);
        }
        let notify = refer_sub_wanted(msg.header("Refer-Sub"));
        let event_id = Some(msg.cseq().0);
        match refer_to.replaces() {
            None if !call.caller_adoptable() => {
                // SRTP or a codec we do not decode: the caller's leg cannot be taken over.
                info!(
                    uuid = call.uuid,
                    "blind transfer refused: the caller's media is not ours to take"
                );
                self.respond(now, tx, 488, &[], None, None);
            }
            None => {
                let Some(target) = refer_to.user().map(|u| u.into_owned()) else {
                    return self.respond(now, tx, 400, &[], None, None);
                };
                // The transferor's own context: the transfer is its doing.
                let context = self.context_of(&call.callee.clone());
                let Some(call) = self.calls.get(&key) else {
                    return;
                };
                info!(uuid = call.uuid, target, context, "blind transfer (REFER)");
                self.accept_refer(now, tx, key, side, notify, event_id);
                match self.transfer_caller(now, key, &target, &context, "BLIND_TRANSFER") {
                    Ok(()) => self.report_refer(now, key, side, notify, event_id, 200),
                    Err(status) => self.report_refer(now, key, side, notify, event_id, status),
                }
                self.send_in_dialog(now, key, side, Method::Bye, None);
                self.detach_fork(key, fork);
                self.run_script(now, key);
            }
            Some(Err(error)) => {
                info!(%error, "REFER with a bad Replaces");
                self.respond(now, tx, 400, &[], None, None);
            }
            Some(Ok(replaces)) => {
                self.attended_transfer(now, tx, key, fork, &replaces, notify, event_id)
            }
        }
        self.drain_transaction_events(now);
    }

    fn context_of(&self, user: &str) -> String {
        self.directory.get(user).map_or_else(
            || self.settings.default_context.clone(),
            |u| u.context.clone(),
        )
    }

    fn accept_refer(
        &mut self,
        now: Now,
        tx: ServerTxId,
        key: CallKey,
        side: Side,
        notify: bool,
        event_id: Option<u32>,
    ) {
        let contact = self
            .calls
            .get(&key)
            .and_then(|c| match side {
                Side::A => Some(&c.a.dialog),
                Side::B(fork) => c.forks.get(fork).map(|f| &f.dialog),
            })
            .map(|d| contact_value(d.peer.transport, d.local_addr))
            .unwrap_or_default();
        self.respond(now, tx, 202, &[("Contact", contact)], None, None);
        self.report_refer(now, key, side, notify, event_id, 100);
    }

    /// A NOTIFY of the refer subscription to the transferor (RFC 3515 §2.4.4).
    fn report_refer(
        &mut self,
        now: Now,
        key: CallKey,
        side: Side,
        notify: bool,
        event_id: Option<u32>,
        status: u16,
    ) {
        if !notify {
            return;
        }
        let user_agent = self.settings.user_agent.clone();
        let Some(dialog) = self.calls.get_mut(&key).and_then(|c| c.dialog_mut(side)) else {
            return;
        };
        dialog.local_cseq += 1;
        let via = via_value(dialog.peer.transport, dialog.local_addr, &new_branch());
        let contact = contact_value(dialog.peer.transport, dialog.local_addr);
        let bytes = refer_notify(
            &InDialog {
                call_id: &dialog.call_id,
                local_uri: &dialog.local_uri,
                local_tag: &dialog.local_tag,
                remote_uri: &dialog.remote_uri,
                remote_tag: dialog.remote_tag.as_deref(),
                remote_target: &dialog.remote_target,
                route_set: &dialog.route_set,
                via: &via,
                contact: &contact,
                cseq: dialog.local_cseq,
                user_agent: &user_agent,
            },
            event_id,
            status,
            "",
            REFER_SUBSCRIPTION_SECS,
        );
        let peer = dialog.peer;
        if let Some(request) = parse_own(bytes) {
            let tx = self.transactions.send_request(now.mono, request, peer);
            self.client_roles.insert(tx, ClientRole::FireAndForget);
        }
    }

    /// The fork is no longer the call's other party (it has been or will be sent our BYE);
    /// its BYE or its answer to ours ends only itself.
    pub(super) fn detach_fork(&mut self, key: CallKey, fork: usize) {
        if let Some(call) = self.calls.get_mut(&key) {
            if call.winner == Some(fork) {
                call.winner = None;
            }
            if let Some(leg) = call.forks.get_mut(fork) {
                leg.state = ForkState::Failed;
            }
        }
    }

    /// The caller's leg is handed its own media (terminated, alone, our SDP as its answer), so
    /// that a plan can play to it and bridge it anew. Fails when its codec is not one we
    /// decode (SRTP, an unknown codec).
    pub(super) fn adopt_caller(&mut self, key: CallKey) -> Result<(), u16> {
        let Some(call) = self.calls.get_mut(&key) else {
            return Err(481);
        };
        let Some(a) = call.media.endpoint(Side::A).cloned() else {
            return Err(500);
        };
        if call.a_sdp.is_none() {
            let codec = call.a_leg_codec.clone().ok_or(488u16)?;
            // (checked by callers with caller_adoptable before anything is sent)
            let dtmf = call.a_plan.as_ref().map_or(LegDtmf::Rfc4733, |p| p.dtmf);
            call.a_rate = codec.sample_rate;
            call.a_sdp = call.a.last_sdp.clone();
            self.media.terminate(
                a.id,
                codec,
                DtmfOptions {
                    detect_inband: dtmf == LegDtmf::Inband,
                    mute_detected: false,
                },
            );
        }
        if let Media::Bridge { b, .. } = &call.media {
            let b = b.id;
            self.media.release(b);
            self.endpoint_calls.remove(&b);
        }
        // Out of a conference or the echo: the leg is the plan's again.
        match call.app.take() {
            Some(App::Conference(room)) => self.leave_room(&room, a.id),
            Some(App::Echo) | None => {}
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return Err(481);
        };
        call.media = Media::Single { a: a.clone() };
        call.b_offer = None;
        call.b_plan = None;
        call.b_leg_codec = None;
        call.relay_codec = None;
        call.tapped = false;
        call.terminated = false;
        self.media.solo(a.id);
        Ok(())
    }

    /// Sends the caller to `target` in `context`: its leg is adopted and its script hunts
    /// again (the caller of a blind transfer, or the console's `transfer`). The script is
    /// left ready to run.
    fn transfer_caller(
        &mut self,
        _now: Now,
        key: CallKey,
        target: &str,
        context: &str,
        reason: &str,
    ) -> Result<(), u16> {
        self.adopt_caller(key)?;
        let Some(call) = self.calls.get_mut(&key) else {
            return Err(481);
        };
        if call.recording_active
            && let Some(a) = call.media.endpoint(Side::A)
        {
            self.media.stop_recording(a.id);
            call.recording_active = false;
        }
        let Some(script) = call.script.as_mut() else {
            return Err(500);
        };
        script.vars.set("transfer_source", reason);
        script.reset_for_transfer(target, context);
        Ok(())
    }

    /// REFER with Replaces: the caller of this call (the transferee) is connected to the
    /// other party of the transferor's consultation call, which ends.
    #[allow(clippy::too_many_arguments)]
    fn attended_transfer(
        &mut self,
        now: Now,
        tx: ServerTxId,
        key: CallKey,
        fork: usize,
        replaces: &Replaces,
        notify: bool,
        event_id: Option<u32>,
    ) {
        // The consultation call: one whose caller leg is the dialog Replaces names.
        let consult = self.calls.iter().find_map(|(k, c)| {
            let d = &c.a.dialog;
            let remote = d.remote_tag.as_deref().unwrap_or_default();
            let named = replaces.matches(&d.call_id, &d.local_tag, remote)
                || replaces.matches(&d.call_id, remote, &d.local_tag);
            (named && *k != key).then_some(*k)
        });
        // Only the consultation call's own caller may hand it over: a callee that merely knows
        // a Call-ID and tags cannot take someone else's call.
        let transferor = self.calls.get(&key).map(|c| c.callee.clone());
        let consult = consult.filter(|k| {
            self.calls
                .get(k)
                .is_some_and(|c| Some(&c.caller) == transferor.as_ref())
        });
        let Some(consult) = consult else {
            info!(
                call_id = replaces.call_id,
                "attended transfer: no such consultation dialog"
            );
            return self.respond(now, tx, 481, &[], None, None);
        };
        let (a, target_fork, target_ep) = {
            let (Some(call), Some(other)) = (self.calls.get(&key), self.calls.get(&consult)) else {
                return self.respond(now, tx, 481, &[], None, None);
            };
            let (Some(a), Some(winner), Media::Bridge { b, .. }) = (
                call.media.endpoint(Side::A).cloned(),
                other.winner,
                &other.media,
            ) else {
                // The consultation call is not connected to anyone yet.
                return self.respond(now, tx, 603, &[], None, None);
            };
            if a.id.thread() != b.id.thread() || call.a_leg_codec.is_none() {
                info!("attended transfer: the legs cannot be connected here");
                return self.respond(now, tx, 488, &[], None, None);
            }
            (a, winner, b.clone())
        };
        let Some(target_codec) = self.calls.get(&consult).and_then(|c| c.b_leg_codec.clone())
        else {
            return self.respond(now, tx, 488, &[], None, None);
        };
        self.accept_refer(now, tx, key, Side::B(fork), notify, event_id);
        // The transferor leaves both calls.
        self.send_in_dialog(now, consult, Side::A, Method::Bye, None);
        // The target's leg moves over to this call.
        let Some(other) = self.calls.get_mut(&consult) else {
            return;
        };
        let moved_dialog = other.forks[target_fork].dialog.clone();
        let placeholder = Dialog {
            // Emptied so that ending the consultation call leaves the moved dialog's entry.
            call_id: String::new(),
            ..moved_dialog.clone()
        };
        let invite_tx = other.forks[target_fork].invite_tx;
        let moved = std::mem::replace(
            &mut other.forks[target_fork],
            BLeg {
                dialog: placeholder,
                invite_tx,
                state: ForkState::Failed,
                cancel_pending: false,
                final_status: Some(200),
                gateway: None,
                auth_answers: 0,
                callee: String::new(),
            },
        );
        other.winner = None;
        let target_plan = other.b_plan.clone();
        let target_user = other.callee.clone();
        if let Media::Bridge { a: consult_a, .. } = &other.media {
            other.media = Media::Single {
                a: consult_a.clone(),
            };
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let old_b = call.media.endpoint(Side::B(0)).map(|e| e.id);
        let new_fork = call.forks.len();
        call.forks.push(moved);
        call.winner = Some(new_fork);
        call.forks[fork].state = ForkState::Failed;
        call.media = Media::Bridge {
            a: a.clone(),
            b: target_ep.clone(),
        };
        call.callee = target_user;
        call.b_plan = target_plan;
        call.b_leg_codec = Some(target_codec.clone());
        call.relay_codec = None;
        call.tapped = false;
        call.terminated = true;
        let a_codec = call.a_leg_codec.clone().expect("checked above");
        let a_dtmf = call.a_plan.as_ref().map_or(LegDtmf::Rfc4733, |p| p.dtmf);
        let b_dtmf = call.b_plan.as_ref().map_or(LegDtmf::Rfc4733, |p| p.dtmf);
        call.transcoded = a_codec.label() != target_codec.label();
        let uuid = call.uuid.clone();
        self.dialogs.insert(
            (moved_dialog.call_id.clone(), moved_dialog.local_tag.clone()),
            (key, Side::B(new_fork)),
        );
        self.endpoint_calls.insert(target_ep.id, key);
        if let Some(old_b) = old_b {
            self.media.release(old_b);
            self.endpoint_calls.remove(&old_b);
        }
        for (ep, codec, dtmf, other) in [
            (a.id, a_codec, a_dtmf, b_dtmf),
            (target_ep.id, target_codec, b_dtmf, a_dtmf),
        ] {
            self.media.terminate(
                ep,
                codec,
                DtmfOptions {
                    detect_inband: dtmf == LegDtmf::Inband,
                    mute_detected: dtmf == LegDtmf::Inband && other != LegDtmf::Inband,
                },
            );
        }
        self.media.connect(a.id, target_ep.id);
        info!(
            uuid,
            "attended transfer: caller connected to the consultation party"
        );
        self.report_refer(now, key, Side::B(fork), notify, event_id, 200);
        self.send_in_dialog(now, key, Side::B(fork), Method::Bye, None);
        self.end_call(now, consult, "ATTENDED_TRANSFER", "caller");
    }

    /// The console's `transfer UUID TARGET [CONTEXT]`: the caller leg of a call goes to
    /// `target`, whatever the call is doing (FreeSWITCH's uuid_transfer).
    pub(super) fn console_transfer(
        &mut self,
        now: Now,
        uuid: &str,
        target: &str,
        context: Option<&str>,
    ) -> Result<String, String> {
        let key = self
            .call_by_uuid(uuid)
            .ok_or_else(|| format!("no such call: {uuid}"))?;
        let call = self.calls.get(&key).ok_or("no such call")?;
        let context = context.map(str::to_owned).unwrap_or_else(|| {
            call.script
                .as_ref()
                .and_then(|s| s.vars.get("context"))
                .map_or_else(|| self.settings.default_context.clone(), str::to_owned)
        });
        let winner = call.winner;
        let answered = call.state == CallState::Answered;
        if answered && !call.caller_adoptable() {
            return Err(format!(
                "{uuid}: the caller's media (SRTP or an undecoded codec) cannot be taken over"
            ));
        }
        let ringing: Vec<usize> = call
            .forks
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.is_over() && f.state != ForkState::Answered)
            .map(|(i, _)| i)
            .collect();
        for fork in ringing {
            self.cancel_fork(now, key, fork);
        }
        if let Some(fork) = winner {
            self.send_in_dialog(now, key, Side::B(fork), Method::Bye, None);
            self.detach_fork(key, fork);
        }
        if answered {
            self.transfer_caller(now, key, target, &context, "CONSOLE_TRANSFER")
                .map_err(|status| format!("{uuid} cannot be transferred ({status})"))?;
        } else if let Some(script) = self.calls.get_mut(&key).and_then(|c| c.script.as_mut()) {
            // Not answered yet: its leg is untouched; only the plan changes.
            script.reset_for_transfer(target, &context);
        }
        info!(uuid, target, context, "transferred from the console");
        self.run_script(now, key);
        self.drain_transaction_events(now);
        Ok(format!("transferred {uuid} to {target} in {context}\n"))
    }
}
