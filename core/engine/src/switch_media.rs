//! The switch's media decisions: answering calls with our own media (playback, tones, music,
//! conferences), choosing relay or termination when a callee answers, recordings, and DTMF
//! across a bridge. A child module of `switch`, so it works on the switch's own state.

use switchyard_media::{DtmfOptions, DtmfSource, Endpoint, LegCodec};
use switchyard_recording::{Layout, RecordingSpec};
use switchyard_sdp::SessionDescription;
use tracing::info;

use super::*;

impl Switch {
    /// The conference room of this name, created on first use.
    pub(super) fn room(
        &mut self,
        name: &str,
        beside: switchyard_media::EndpointId,
    ) -> ConferenceId {
        if let Some(room) = self.rooms.get(name) {
            return room.id;
        }
        let id = self
            .media
            .create_conference_beside(beside, self.settings.conference_rate);
        info!(room = name, "conference room created");
        self.rooms.insert(name.to_owned(), Room { id, members: 0 });
        id
    }

    /// A re-INVITE or UPDATE on a leg whose media we terminate: the other leg need not know
    /// (its codec and our address stay), so we answer it here in the leg's codec, following
    /// its new address and hold state.
    pub(super) fn answer_offer_locally(
        &mut self,
        now: Now,
        key: CallKey,
        side: Side,
        tx: ServerTxId,
        msg: &Message,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let plan = match side {
            Side::A => call.a_plan.clone(),
            Side::B(_) => call.b_plan.clone(),
        };
        let Some(endpoint) = call.media.endpoint(side).cloned() else {
            return self.respond(now, tx, 488, &[], None, None);
        };
        let dialog = match side {
            Side::A => &call.a.dialog,
            Side::B(fork) => &call.forks[fork].dialog,
        };
        let contact = contact_value(dialog.peer.transport, dialog.local_addr);
        let Ok(offer) = SessionDescription::parse(msg.body()) else {
            // A session refresh without an offer (RFC 4028): an UPDATE gets a bare 200, a
            // re-INVITE from the caller our last SDP to it.
            return match (msg.method(), call.a.last_sdp.clone()) {
                (Some(&Method::Update), _) => {
                    self.respond(now, tx, 200, &[("Contact", contact)], None, None)
                }
                (Some(&Method::Invite), Some(sdp)) if side == Side::A => self.respond(
                    now,
                    tx,
                    200,
                    &[("Contact", contact)],
                    None,
                    Some((SDP, &sdp)),
                ),
                _ => self.respond(now, tx, 488, &[], None, None),
            };
        };
        let codec = plan.map_or_else(|| "PCMU".to_owned(), |p| p.codec);
        let origin = match side {
            Side::A => &mut call.a.origin,
            Side::B(_) => &mut call.b_origin,
        };
        let Ok(answer) = switchyard_sdp::answer(
            &offer,
            endpoint.local,
            origin,
            &[codec.as_str(), "telephone-event"],
        ) else {
            return self.respond(now, tx, 488, &[], None, None);
        };
        // RFC 3264 §8.4: a sendonly or inactive offer puts us on hold (we stop sending); a
        // recvonly one only stops what we receive.
        let held = matches!(
            offer.audio_direction(),
            Direction::SendOnly | Direction::Inactive
        ) || offer.audio_destination().is_none();
        if let Some(remote) = offer.audio_destination() {
            self.media.set_remote(endpoint.id, remote);
        }
        self.media.set_hold(endpoint.id, held);
        let bytes = answer.to_bytes();
        if side == Side::A {
            call.a.last_sdp = Some(bytes.clone());
        }
        info!(
            uuid = call.uuid,
            held, "re-INVITE answered locally (terminated media)"
        );
        self.respond(
            now,
            tx,
            200,
            &[("Contact", contact)],
            None,
            Some((SDP, &bytes)),
        );
    }

    pub(super) fn dtmf_mode_of(&self, user: &str) -> switchyard_config::DtmfMode {
        self.directory.get(user).map(|u| u.dtmf).unwrap_or_default()
    }

    /// The callee answered with `b_answer`: relay when it chose a codec the caller offered and
    /// DTMF needs no conversion, else terminate both legs (transcoding, DTMF conversion).
    /// Returns the SDP for the caller. B's endpoint is pointed at the callee either way.
    pub(super) fn connect_answered(
        &mut self,
        key: CallKey,
        fork: usize,
        b_answer: &SessionDescription,
    ) -> Option<Vec<u8>> {
        let caller_mode = self.dtmf_mode_of(&self.calls.get(&key)?.caller);
        let callee_mode = self.dtmf_mode_of(&self.calls.get(&key)?.callee);
        let codecs: Vec<String> = self.settings.codecs.clone();
        let call = self.calls.get_mut(&key)?;
        let Media::Bridge { a, b } = &call.media else {
            return None;
        };
        let (a, b) = (a.clone(), b.clone());
        let offer = call.a_offer.clone()?;
        let b_codec = b_answer.chosen_codec()?;
        let b_te = b_answer.telephone_event(b_codec.clock_rate);
        if offer.offers(&b_codec) {
            // Both legs speak b_codec: the SDP the caller gets is the callee's, anchored.
            let a_sdp = call.reanchor(&self.media, Side::B(fork), Side::A, b_answer)?;
            let a_dtmf = LegDtmf::resolve(caller_mode, b_te.is_some());
            let b_dtmf = LegDtmf::resolve(callee_mode, b_te.is_some());
            call.a_plan = Some(LegPlan {
                dtmf: a_dtmf,
                codec: b_codec.name.clone(),
            });
            call.b_plan = Some(LegPlan {
                dtmf: b_dtmf,
                codec: b_codec.name.clone(),
            });
            let rate = media_plan::natural_rate(&b_codec);
            // SRTP passes through untouched: never decoded here.
            let codec = media_plan::leg_codec(&b_codec, b_te, rate)
                .filter(|_| media_plan::plain_rtp(&offer) && media_plan::plain_rtp(b_answer));
            call.relay_codec = codec.clone();
            call.a_leg_codec = codec.clone();
            call.b_leg_codec = codec.clone();
            if a_dtmf != b_dtmf
                && let Some(codec) = codec
            {
                // Same codec, different DTMF: terminate to convert.
                terminate_pair(&self.media, &a, &b, codec.clone(), codec, a_dtmf, b_dtmf);
                call.terminated = true;
                self.media.connect(a.id, b.id);
                info!(
                    uuid = call.uuid,
                    ?a_dtmf,
                    ?b_dtmf,
                    "terminating media to convert DTMF"
                );
            } else {
                self.media.bridge(a.id, b.id);
                let label = codec.as_ref().map_or(b_codec.name.clone(), LegCodec::label);
                for ep in [&a, &b] {
                    self.media.describe_relay(
                        ep.id,
                        b_codec.clock_rate,
                        b_codec.payload_type,
                        &label,
                    );
                }
            }
            return Some(a_sdp);
        }
        // The callee chose a codec we added: we answer the caller in one of its own codecs and
        // transcode between them.
        if let Some(remote) = b_answer.audio_destination() {
            self.media.set_remote(b.id, remote);
        }
        let names: Vec<&str> = codecs
            .iter()
            .map(String::as_str)
            .chain(["telephone-event"])
            .collect();
        let a_answer = switchyard_sdp::answer(&offer, a.local, &mut call.a.origin, &names).ok()?;
        let a_codec = a_answer.chosen_codec()?;
        let a_te = a_answer.telephone_event(a_codec.clock_rate);
        // Each Opus leg works at the other leg's rate, so G.711 <-> Opus needs no resampler.
        let a_rate = media_plan::natural_rate(&a_codec);
        let b_rate = media_plan::natural_rate(&b_codec);
        let a_leg = media_plan::leg_codec(&a_codec, a_te, b_rate)?;
        let mut b_leg = media_plan::leg_codec(&b_codec, b_te, a_rate.min(a_leg.sample_rate))?;
        // A callee that numbered the codec its own way still sends it with our number.
        let ours = call
            .b_offer
            .as_ref()
            .and_then(SessionDescription::active_audio)
            .and_then(|m| {
                m.codecs().into_iter().find(|c| {
                    c.name.eq_ignore_ascii_case(&b_codec.name) && c.clock_rate == b_codec.clock_rate
                })
            })
            .map(|c| c.payload_type);
        b_leg.also_receives = ours.filter(|pt| *pt != b_leg.payload_type);
        let a_dtmf = LegDtmf::resolve(caller_mode, a_te.is_some());
        let b_dtmf = LegDtmf::resolve(callee_mode, b_te.is_some());
        call.a_plan = Some(LegPlan {
            dtmf: a_dtmf,
            codec: a_codec.name.clone(),
        });
        call.b_plan = Some(LegPlan {
            dtmf: b_dtmf,
            codec: b_codec.name.clone(),
        });
        info!(
            uuid = call.uuid,
            caller_codec = a_leg.label(),
            callee_codec = b_leg.label(),
            "transcoding"
        );
        call.a_leg_codec = Some(a_leg.clone());
        call.b_leg_codec = Some(b_leg.clone());
        terminate_pair(&self.media, &a, &b, a_leg, b_leg, a_dtmf, b_dtmf);
        call.terminated = true;
        call.transcoded = true;
        self.media.connect(a.id, b.id);
        let bytes = a_answer.to_bytes();
        call.a.last_sdp = Some(bytes.clone());
        Some(bytes)
    }

    /// Starts recording an answered call, if a layout is asked for (or configured). A relayed
    /// call has its legs tapped first (decoded copies; the packets still pass untouched).
    pub(super) fn start_recording(
        &mut self,
        key: CallKey,
        layout: Option<Layout>,
    ) -> Result<String, String> {
        let Some(layout) = layout else {
            return Err("no layout (mono or stereo) asked for".into());
        };
        let Some(recorder) = &self.recorder else {
            return Err("no recorder: see [recording] in switchyard.toml".into());
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return Err("no such call".into());
        };
        if call.state != CallState::Answered {
            return Err("the call is not answered yet".into());
        }
        if call.recording_active {
            return Err("already recording".into());
        }
        let caller = match (&call.media, &call.app) {
            (_, Some(App::Conference(_))) => {
                return Err("conference members are not recorded one by one".into());
            }
            (_, Some(App::Echo)) => return Err("the echo test is not recorded".into()),
            (Media::Bridge { a, b }, _) => {
                if !call.terminated && !call.tapped {
                    let Some(codec) = call.relay_codec.clone() else {
                        return Err("the call's codec is not one we decode, or it is SRTP".into());
                    };
                    let dtmf =
                        |plan: &Option<LegPlan>| plan.as_ref().map_or(LegDtmf::Rfc4733, |p| p.dtmf);
                    let (a_dtmf, b_dtmf) = (dtmf(&call.a_plan), dtmf(&call.b_plan));
                    terminate_pair(&self.media, a, b, codec.clone(), codec, a_dtmf, b_dtmf);
                    call.tapped = true;
                }
                a.id
            }
            (Media::Single { a }, _) => a.id,
        };
        let policy = &self.settings.recording;
        let extension = if policy.encrypt { "wav.enc" } else { "wav" };
        // A second recording of the same call (after `record stop`) gets its own file.
        let name = match call.recordings_made {
            0 => format!("{}.{extension}", call.uuid),
            n => format!("{}-{}.{extension}", call.uuid, n + 1),
        };
        let path = policy.dir.join(name);
        let spec = RecordingSpec {
            call_uuid: call.uuid.clone(),
            layout,
            sample_rate: policy.sample_rate,
            path: path.clone(),
            encrypt: policy.encrypt,
        };
        let sink = recorder.open(spec).map_err(|e| e.to_string())?;
        self.media.record(caller, sink, policy.sample_rate);
        let shown = path.display().to_string();
        info!(uuid = call.uuid, path = shown, "recording");
        call.recording = Some(shown.clone());
        call.recording_active = true;
        call.recordings_made += 1;
        Ok(shown)
    }

    /// A digit from one leg: kept for the CDR, and carried to the other leg in its own way
    /// when we terminate the media (a relay carries it by itself).
    pub(super) fn deliver_dtmf(
        &mut self,
        now: Now,
        key: CallKey,
        from: Side,
        digit: char,
        duration_ms: u32,
        source: DtmfSource,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.keep_digit(digit);
        info!(
            uuid = call.uuid,
            leg = if from == Side::A { "caller" } else { "callee" },
            %digit,
            duration_ms,
            via = source.as_str(),
            "DTMF"
        );
        let leg = if from == Side::A { "caller" } else { "callee" };
        let terminated = call.terminated;
        self.publish_call(
            now,
            "dtmf",
            key,
            serde_json::json!({ "digit": digit.to_string(), "leg": leg, "via": source.as_str() }),
        );
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if !terminated {
            return;
        }
        let Some(to) = call.other(from) else { return };
        let plan = match to {
            Side::A => call.a_plan.clone(),
            Side::B(_) => call.b_plan.clone(),
        };
        let Some(plan) = plan else { return };
        let endpoint = call.media.endpoint(to).map(|e| e.id);
        match (plan.dtmf, endpoint) {
            (LegDtmf::Rfc4733, Some(ep)) => {
                self.media
                    .send_dtmf(ep, &digit.to_string(), duration_ms, false)
            }
            // Tones already in the audio cross a terminated bridge as they are.
            (LegDtmf::Inband, Some(ep)) if source != DtmfSource::Inband => {
                self.media
                    .send_dtmf(ep, &digit.to_string(), duration_ms.max(100), true)
            }
            (LegDtmf::Info, _) => {
                let body = media_plan::dtmf_info_body(digit, duration_ms);
                self.send_in_dialog(
                    now,
                    key,
                    to,
                    Method::Info,
                    Some(("application/dtmf-relay", body.as_bytes())),
                );
            }
            _ => {}
        }
    }
}

/// Terminates both legs of a bridge, each with its codec and its DTMF detection.
pub(super) fn terminate_pair(
    media: &switchyard_media::MediaEngine,
    a: &Endpoint,
    b: &Endpoint,
    a_codec: LegCodec,
    b_codec: LegCodec,
    a_dtmf: LegDtmf,
    b_dtmf: LegDtmf,
) {
    for (ep, codec, dtmf, other) in [(a, a_codec, a_dtmf, b_dtmf), (b, b_codec, b_dtmf, a_dtmf)] {
        media.terminate(
            ep.id,
            codec,
            DtmfOptions {
                detect_inband: dtmf == LegDtmf::Inband,
                // Tones converted to events or INFO for the other leg must not reach it twice.
                mute_detected: dtmf == LegDtmf::Inband && other != LegDtmf::Inband,
            },
        );
    }
}
