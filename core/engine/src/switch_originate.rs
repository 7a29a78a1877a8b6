//! `originate`: calls the switch places itself, as FreeSWITCH's `originate` API command.
//!
//! ```text
//! originate [{var=val,...}]TARGET EXTENSION [XML [CONTEXT [CID_NAME [CID_NUMBER [TIMEOUT]]]]]
//! originate [{var=val,...}]TARGET &APP(DATA)
//! ```
//!
//! The switch sends TARGET (the bridge syntax: `user/ID`, `sofia/gateway/NAME/NUMBER`) an
//! INVITE offering what it can terminate (`[media] codecs`) on an endpoint of its own. The
//! call is an ordinary [`Call`] whose A leg is that UAC dialog (`ALeg::invite_tx` is None): it
//! shows in `show calls`, `uuid_kill` and a shutdown end it (CANCEL while it rings), a CDR is
//! written. When the target answers, its leg is terminated in the codec it chose and the call's
//! script starts as if the dialplan had answered an inbound call: the hunt of EXTENSION in
//! CONTEXT, or the one application. `&bridge(user/1001)` then rings 1001 from an answered,
//! terminated leg, which is the bridge after an IVR (`connect_late`).
//!
//! The console answers `+OK UUID` at once; FreeSWITCH waits for the outcome, but the console
//! runs on the signalling thread, which must not block. The outcome reaches the modules as
//! `call.answered`, or `originate.failed` {uuid, cause, status, variables}, then `call.ended`;
//! a module that originates through a console line names the call with `origination_uuid`.

use switchyard_dialplan::matcher::PlannedAction;
use switchyard_media::{DtmfOptions, LegCodec};
use switchyard_sdp::Codec;

use super::script::{CORE_APPLICATIONS, Target, parse_target};
use super::*;

/// FreeSWITCH's caller id number when none is given (`origination_caller_id_number`).
const DEFAULT_CALLER_ID_NUMBER: &str = "0000000000";
const USAGE: &str = "usage: originate [{var=val,...}]TARGET EXTENSION [XML [CONTEXT]] \
                     | originate [{var=val,...}]TARGET &APP(DATA)";

/// What the call does once its target answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Then {
    /// Hunts the extension in the context, as a call dialled to it.
    Extension { extension: String, context: String },
    /// Runs one application (`&park()`, `&bridge(user/1001)`).
    Application { name: String, data: String },
}

/// A parsed `originate` command line.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct OriginateRequest {
    /// The `{...}` block: channel variables of the new call.
    pub(super) variables: Vec<(String, String)>,
    /// The target as written, for the CDR's destination and `show calls`.
    pub(super) target_text: String,
    pub(super) target: Target,
    pub(super) then: Then,
    /// FreeSWITCH's positional arguments after the context.
    pub(super) caller_id_name: Option<String>,
    pub(super) caller_id_number: Option<String>,
    pub(super) timeout_secs: Option<u64>,
}

/// Our INVITE of an originated call, until the call is answered or given up.
pub(super) struct Origination {
    invite_tx: ClientTxId,
    state: ForkState,
    /// The trunk it goes out through, whose credentials answer a challenge.
    gateway: Option<String>,
    auth_answers: u8,
    /// Our SDP offer, sent again with credentials and kept as our side of the session.
    offer: Vec<u8>,
    then: Then,
}

pub(super) fn parse_originate(args: &str) -> Result<OriginateRequest, String> {
    let mut rest = args.trim();
    let mut variables = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let close = body
            .find('}')
            .ok_or_else(|| "originate: `{` without its `}`".to_owned())?;
        for pair in body[..close].split(',').filter(|p| !p.trim().is_empty()) {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("originate: {pair:?} is not name=value"))?;
            // FreeSWITCH quotes values holding spaces: {origination_caller_id_name='A B'}.
            let value = value.trim().trim_matches('\'');
            variables.push((name.trim().to_owned(), value.to_owned()));
        }
        rest = body[close + 1..].trim_start();
    }
    let (target_text, rest) = rest
        .split_once(char::is_whitespace)
        .ok_or_else(|| USAGE.to_owned())?;
    let target = parse_target(target_text).map_err(|e| e.replacen("bridge:", "originate:", 1))?;
    let rest = rest.trim();
    let mut request = OriginateRequest {
        variables,
        target_text: target_text.to_owned(),
        target,
        then: Then::Extension {
            extension: String::new(),
            context: String::new(),
        },
        caller_id_name: None,
        caller_id_number: None,
        timeout_secs: None,
    };
    if let Some(app) = rest.strip_prefix('&') {
        let (name, data) = match app.split_once('(') {
            Some((name, data)) => (
                name,
                data.strip_suffix(')')
                    .ok_or_else(|| "originate: &APP(DATA) without its `)`".to_owned())?,
            ),
            None => (app, ""),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("originate: {name:?} is not an application name"));
        }
        request.then = Then::Application {
            name: name.to_owned(),
            data: data.trim().to_owned(),
        };
        return Ok(request);
    }
    let words: Vec<&str> = rest.split_whitespace().collect();
    let [extension, more @ ..] = words.as_slice() else {
        return Err(USAGE.to_owned());
    };
    if more.len() > 5 {
        return Err(USAGE.to_owned());
    }
    if let Some(dialplan) = more.first()
        && !dialplan.eq_ignore_ascii_case("XML")
    {
        return Err(format!(
            "originate: dialplan {dialplan:?}: the only dialplan is XML"
        ));
    }
    request.then = Then::Extension {
        extension: (*extension).to_owned(),
        context: more.get(1).unwrap_or(&"default").to_string(),
    };
    request.caller_id_name = more.get(2).map(|s| s.to_string());
    request.caller_id_number = more.get(3).map(|s| s.to_string());
    request.timeout_secs = match more.get(4) {
        Some(secs) => Some(
            secs.parse()
                .map_err(|_| format!("originate: timeout {secs:?} is not a number of seconds"))?,
        ),
        None => None,
    };
    Ok(request)
}

/// Our offer for an originated call: the `[media] codecs` we terminate, in that order, with
/// telephone-event, on `local`.
fn own_offer(
    local: SocketAddr,
    codecs: &[CodecOffer<'_>],
    origin: &mut OriginState,
) -> Option<SessionDescription> {
    let first = codecs.first()?;
    let pt = first.static_payload_type.unwrap_or(96);
    let ip = local.ip();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut text = format!(
        "v=0\r\no=- 0 0 IN {family} {ip}\r\ns=switchyard\r\nc=IN {family} {ip}\r\nt=0 0\r\n\
         m=audio {} RTP/AVP {pt}\r\na=rtpmap:{pt} {}/{}",
        local.port(),
        first.name,
        first.clock_rate
    );
    if let Some(channels) = first.channels {
        let _ = write!(text, "/{channels}");
    }
    text.push_str("\r\n");
    if let Some(fmtp) = first.fmtp {
        let _ = write!(text, "a=fmtp:{pt} {fmtp}\r\n");
    }
    let mut sdp = SessionDescription::parse(text.as_bytes()).ok()?;
    switchyard_sdp::add_codecs(&mut sdp, &codecs[1..]);
    origin.stamp(&mut sdp, ip);
    Some(sdp)
}

/// The codec the target's answer chose, as the leg we terminate: its numbering, with ours
/// also received (RFC 3264 §6.1: each side receives on the numbers it listed). None when the
/// answer picks nothing we offered.
fn answered_codec(offer: &SessionDescription, answer: &SessionDescription) -> Option<LegCodec> {
    let chosen = answer.chosen_codec()?;
    if !offer.offers(&chosen) {
        return None;
    }
    let te = answer.telephone_event(chosen.clock_rate);
    let mut codec = media_plan::leg_codec(&chosen, te, 16_000)?;
    let same =
        |c: &Codec| c.name.eq_ignore_ascii_case(&chosen.name) && c.clock_rate == chosen.clock_rate;
    let ours = offer
        .active_audio()
        .and_then(|m| m.codecs().into_iter().find(same))
        .map(|c| c.payload_type);
    codec.also_receives = ours.filter(|pt| *pt != codec.payload_type);
    Some(codec)
}

/// Where an originated call's INVITE goes and who it says is calling.
struct OriginateLeg {
    /// Who is rung: a user id, or `gateway/number`.
    callee: String,
    from_uri: String,
    to_uri: String,
    request_uri: String,
    flow: Peer,
    gateway: Option<String>,
}

impl Switch {
    /// `originate ...`: places the call and answers with its uuid at once.
    pub(super) fn originate_command(&mut self, now: Now, args: &str) -> Result<String, String> {
        if self.lifecycle != Lifecycle::Running {
            return Err("shutting down: no new calls".into());
        }
        if self.settings.max_calls > 0 && self.calls.len() >= self.settings.max_calls {
            return Err("max_calls reached: no new calls".into());
        }
        let request = parse_originate(args)?;
        if let Then::Application { name, .. } = &request.then
            && !CORE_APPLICATIONS.contains(&name.as_str())
            && !self.applications.contains_key(name)
        {
            return Err(format!("originate: unknown application {name}"));
        }
        // From here on a refusal is also an `originate.failed` event: a module that placed
        // the call through a console line never sees the console's answer.
        let variables = request.variables.clone();
        self.place_originate(now, request).inspect_err(|reason| {
            let cause = if reason.starts_with("USER_NOT_REGISTERED") {
                "USER_NOT_REGISTERED"
            } else {
                "NORMAL_TEMPORARY_FAILURE"
            };
            let variables: serde_json::Map<String, serde_json::Value> = variables
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            self.publish(
                now,
                "originate.failed",
                serde_json::json!({
                    "uuid": "",
                    "cause": cause,
                    "status": 0,
                    "reason": reason,
                    "variables": variables,
                }),
                &[],
            );
        })
    }

    /// The INVITE of a parsed `originate`, and the call that waits for its answer.
    fn place_originate(&mut self, now: Now, request: OriginateRequest) -> Result<String, String> {
        let var = |name: &str| {
            request
                .variables
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let number = request
            .caller_id_number
            .clone()
            .or_else(|| var("origination_caller_id_number"))
            .unwrap_or_else(|| DEFAULT_CALLER_ID_NUMBER.to_owned());
        let name = request
            .caller_id_name
            .clone()
            .or_else(|| var("origination_caller_id_name"));
        let timeout = request
            .timeout_secs
            .or_else(|| var("originate_timeout").and_then(|t| t.parse().ok()))
            .filter(|secs| *secs > 0)
            .map_or(self.settings.no_answer, Duration::from_secs);
        // FreeSWITCH's origination_uuid: the caller (a module placing a callback) names the
        // call, so it can follow it through the events without the console's answer.
        let uuid = match var("origination_uuid") {
            Some(uuid) if self.call_by_uuid(&uuid).is_some() => {
                return Err(format!("originate: a call {uuid} exists already"));
            }
            Some(uuid)
                if uuid.len() > 64
                    || !uuid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
            {
                return Err(format!(
                    "originate: origination_uuid {uuid:?}: letters, digits and `-`, 64 at most"
                ));
            }
            Some(uuid) => uuid,
            None => new_uuid(),
        };
        let leg = self.originate_leg(now, &request.target, &number, name.as_deref())?;

        let endpoint = self
            .media
            .allocate()
            .map_err(|error| format!("no media ports for the call: {error}"))?;
        let mut origin = OriginState::new(rand::random::<u32>() as u64);
        let Some(offer) = own_offer(endpoint.local, &self.settings.transcodable, &mut origin)
        else {
            self.media.release(endpoint.id);
            return Err("originate: no codec to offer ([media] codecs)".into());
        };
        let offer = offer.to_bytes();
        let local_addr = self.settings.local.for_transport(leg.flow.transport);
        let dialog = Dialog {
            call_id: format!("{}@{}", new_uuid(), local_addr.ip()),
            local_tag: new_tag(),
            remote_tag: None,
            local_uri: leg.from_uri.clone(),
            remote_uri: leg.to_uri.clone(),
            remote_target: leg.request_uri.clone(),
            route_set: Vec::new(),
            local_cseq: 1,
            peer: leg.flow,
            local_addr,
            last_ack: None,
        };
        let bytes = gateways::fork_invite(&dialog, 70, &self.settings.user_agent, None, &offer);
        let Some(invite) = parse_own(bytes) else {
            self.media.release(endpoint.id);
            return Err("originate: the INVITE could not be built".into());
        };

        let (extension, context) = match &request.then {
            Then::Extension { extension, context } => (extension.clone(), context.clone()),
            Then::Application { .. } => (leg.callee.clone(), self.settings.default_context.clone()),
        };
        let mut vars: Variables = self
            .settings
            .globals
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let facts = [
            ("uuid", uuid.as_str()),
            ("direction", "outbound"),
            ("destination_number", &extension),
            ("caller_id_number", &number),
            ("caller_id_name", name.as_deref().unwrap_or(&number)),
            ("context", &context),
            ("domain_name", &self.settings.domain),
            ("sip_call_id", &dialog.call_id),
            ("originate_target", &request.target_text),
        ];
        for (name, value) in facts {
            vars.set(name, value);
        }
        for (name, value) in &request.variables {
            vars.set(name, value.clone());
        }

        let key = self.next_call;
        self.next_call += 1;
        self.counters.calls_total += 1;
        let invite_tx = self.transactions.send_request(now.mono, invite, leg.flow);
        self.client_roles
            .insert(invite_tx, ClientRole::OriginateInvite { call: key });
        self.dialogs.insert(
            (dialog.call_id.clone(), dialog.local_tag.clone()),
            (key, Side::A),
        );
        self.endpoint_calls.insert(endpoint.id, key);
        info!(
            uuid,
            target = request.target_text,
            caller = number,
            timeout_secs = timeout.as_secs(),
            "originate"
        );
        let plan = Arc::clone(&self.plan);
        // We place the call: no server transaction to answer; our offer is the SDP we sent.
        let a_leg = ALeg {
            dialog,
            invite_tx: None,
            awaiting_ack: false,
            origin,
            last_sdp: Some(offer.clone()),
        };
        self.calls.insert(
            key,
            Call {
                caller: number,
                callee: leg.callee,
                destination: request.target_text,
                originate: Some(Origination {
                    invite_tx,
                    state: ForkState::Calling,
                    gateway: leg.gateway,
                    auth_answers: 0,
                    offer,
                    then: request.then,
                }),
                ..Call::routing(
                    uuid.clone(),
                    now,
                    a_leg,
                    endpoint,
                    Script::new(plan, Vec::new(), vars),
                )
            },
        );
        self.wait_for_origination(now, key, timeout);
        self.publish_call(now, "call.new", key, serde_json::json!({}));
        Ok(format!("{uuid}\n"))
    }

    /// Resolves the target to where the INVITE goes. A user is rung at its best contact (an
    /// originated leg does not fork); an error is the console's `-ERR`.
    fn originate_leg(
        &self,
        now: Now,
        target: &Target,
        number: &str,
        name: Option<&str>,
    ) -> Result<OriginateLeg, String> {
        let domain = &self.settings.domain;
        // From for the targets we reach ourselves (a gateway builds its own).
        let from_user = escape_user(number);
        let from_uri = match name {
            Some(name) => format!(
                "\"{}\" <sip:{from_user}@{domain}>",
                name.replace(['"', '\\'], "")
            ),
            None => format!("<sip:{from_user}@{domain}>"),
        };
        match target {
            Target::User(user) => {
                let Some(binding) = self
                    .registrar
                    .contacts(user, now.unix_secs())
                    .into_iter()
                    .next()
                else {
                    return Err(format!("USER_NOT_REGISTERED: {user}"));
                };
                Ok(OriginateLeg {
                    callee: user.clone(),
                    from_uri,
                    to_uri: format!("<sip:{user}@{domain}>"),
                    request_uri: strip_uri_headers(&binding.contact).to_owned(),
                    flow: binding.flow,
                    gateway: None,
                })
            }
            Target::Uri { user, addr } => {
                let uri = format!("sip:{user}@{addr}");
                Ok(OriginateLeg {
                    callee: user.clone(),
                    from_uri,
                    to_uri: format!("<{uri}>"),
                    request_uri: uri,
                    flow: Peer {
                        transport: TransportKind::Udp,
                        addr: *addr,
                    },
                    gateway: None,
                })
            }
            Target::Gateway {
                name: gateway,
                number: dialled,
            } => {
                let target = self
                    .gateways
                    .invite_target(gateway, dialled, Some(number), name)
                    .ok_or_else(|| format!("originate: no gateway {gateway}, or it is disabled"))?;
                Ok(OriginateLeg {
                    callee: format!("{gateway}/{dialled}"),
                    from_uri: target.from_uri,
                    to_uri: target.to_uri,
                    request_uri: target.request_uri,
                    flow: target.peer,
                    gateway: Some(gateway.clone()),
                })
            }
        }
    }

    /// A response to an originated call's INVITE.
    pub(super) fn on_originate_response(
        &mut self,
        now: Now,
        key: CallKey,
        msg: &Message,
        status: u16,
    ) {
        let Some(origination) = self.calls.get_mut(&key).and_then(|c| c.originate.as_mut()) else {
            return;
        };
        match status {
            100..=199 => {
                if origination.state == ForkState::Calling {
                    origination.state = ForkState::Proceeding;
                }
            }
            200..=299 => self.originate_answered(now, key, msg, status),
            _ => {
                origination.state = ForkState::Failed;
                if matches!(status, 401 | 407) && self.answer_originate_challenge(now, key, msg) {
                    return;
                }
                let cause = switchyard_dialplan::cause_for_status(status);
                info!(call = key, status, cause, "originate: the target refused");
                self.fail_unanswered_with_side(now, key, status, cause, "callee");
            }
        }
    }

    /// Our INVITE got no answer at all (RFC 3261 §17.1.1.2: Timer B).
    pub(super) fn on_originate_timeout(&mut self, now: Now, key: CallKey) {
        if let Some(origination) = self.calls.get_mut(&key).and_then(|c| c.originate.as_mut()) {
            origination.state = ForkState::Failed;
        }
        info!(
            call = key,
            "originate: the target never answered our INVITE"
        );
        self.fail_unanswered_with_side(now, key, 408, "RECOVERY_ON_TIMER_EXPIRE", "system");
    }

    /// `originate_timeout` ran out while the target rang: CANCEL (FreeSWITCH's NO_ANSWER).
    pub(super) fn originate_timed_out(&mut self, now: Now, key: CallKey) {
        if self
            .calls
            .get(&key)
            .is_some_and(|c| c.state == CallState::Routing)
        {
            info!(call = key, "originate: no answer within originate_timeout");
            self.fail_unanswered_with_side(now, key, 480, "NO_ANSWER", "system");
        }
    }

    /// The target answered: ACK, terminate its leg in the codec it chose, run the script.
    fn originate_answered(&mut self, now: Now, key: CallKey, msg: &Message, status: u16) {
        let user_agent = self.settings.user_agent.clone();
        let mode = self
            .calls
            .get(&key)
            .map(|c| self.dtmf_mode_of(&c.callee))
            .unwrap_or_default();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(origination) = call.originate.as_mut() else {
            return;
        };
        origination.state = ForkState::Answered;
        let offer_bytes = origination.offer.clone();
        let then = origination.then.clone();
        call.a.dialog.update_from_response(msg);
        let ack = call
            .a
            .dialog
            .acknowledge(msg.cseq().0, &new_branch(), &user_agent);
        self.transactions.send_stateless(call.a.dialog.peer, ack);
        call.state = CallState::Answered;
        call.answered_ms = Some(now.unix_ms);
        call.a_final = Some(status);
        let uuid = call.uuid.clone();
        let Some(endpoint) = call.media.endpoint(Side::A).cloned() else {
            return;
        };
        let offer = SessionDescription::parse(&offer_bytes).ok();
        let answer = SessionDescription::parse(msg.body())
            .ok()
            .filter(|a| a.audio_destination().is_some());
        let codec = match (&offer, &answer) {
            (Some(offer), Some(answer)) => answered_codec(offer, answer),
            _ => None,
        };
        let (Some(codec), Some(answer)) = (codec, answer) else {
            warn!(
                uuid,
                "originate: the target answered without a usable SDP answer"
            );
            self.publish_originate_failed(now, key, 488, "INCOMPATIBLE_DESTINATION");
            return self.hang_up(now, key, "INCOMPATIBLE_DESTINATION", "system");
        };
        if let Some(remote) = answer.audio_destination() {
            self.media.set_remote(endpoint.id, remote);
        }
        let dtmf = LegDtmf::resolve(mode, codec.telephone_event.is_some());
        call.a_plan = Some(LegPlan {
            dtmf,
            codec: codec.kind.encoding_name().to_owned(),
        });
        call.a_rate = codec.sample_rate;
        call.a_leg_codec = Some(codec.clone());
        call.a_sdp = Some(offer_bytes);
        call.a_offer = Some(answer);
        info!(uuid, codec = codec.label(), "originate: answered");
        self.media.terminate(
            endpoint.id,
            codec,
            DtmfOptions {
                detect_inband: dtmf == LegDtmf::Inband,
                mute_detected: false,
            },
        );
        self.media.solo(endpoint.id);
        self.publish_call(now, "call.answered", key, serde_json::json!({}));

        let Some(vars) = self
            .calls
            .get(&key)
            .and_then(|c| c.script.as_ref())
            .map(|s| s.vars.clone())
        else {
            return;
        };
        let location = switchyard_dialplan::ir::Location {
            file: Arc::from("(originate)"),
            line: 0,
            column: 0,
        };
        let (actions, vars) = match then {
            Then::Application { name, data } => (
                vec![PlannedAction {
                    application: name,
                    data: data.clone(),
                    template: data,
                    captures: Vec::new(),
                    location,
                }],
                vars,
            ),
            Then::Extension { context, .. } => {
                let plan = Arc::clone(&self.plan);
                match self.hunt_call(&plan, &context, &vars, now) {
                    Ok((actions, vars)) if !actions.is_empty() => (actions, vars),
                    outcome => {
                        if let Err(error) = outcome {
                            warn!(%error, "originate: no dialplan context");
                        }
                        info!(uuid, context, "originate: no route for the extension");
                        return self.hang_up(now, key, "NO_ROUTE_DESTINATION", "system");
                    }
                }
            }
        };
        self.start_originated_script(now, key, actions, vars);
    }

    /// A 401/407 from a gateway: our INVITE again with its credentials (same dialog, next
    /// CSeq), once. False when the call should fail instead.
    fn answer_originate_challenge(&mut self, now: Now, key: CallKey, challenge: &Message) -> bool {
        let Some(call) = self.calls.get(&key) else {
            return false;
        };
        let Some(origination) = &call.originate else {
            return false;
        };
        let Some(gateway) = origination.gateway.clone() else {
            return false;
        };
        if origination.auth_answers >= gateways::MAX_INVITE_AUTH {
            warn!(gateway, "originate: the gateway refused our credentials");
            return false;
        }
        let Some(authorization) =
            self.gateways
                .authorize(&gateway, challenge, "INVITE", &call.a.dialog.remote_target)
        else {
            return false;
        };
        let user_agent = self.settings.user_agent.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return false;
        };
        let Some(origination) = call.originate.as_mut() else {
            return false;
        };
        call.a.dialog.local_cseq += 1;
        origination.auth_answers += 1;
        let request = gateways::fork_invite(
            &call.a.dialog,
            70,
            &user_agent,
            Some((authorization.0, &authorization.1)),
            &origination.offer,
        );
        let Some(request) = parse_own(request) else {
            return false;
        };
        let invite_tx = self
            .transactions
            .send_request(now.mono, request, call.a.dialog.peer);
        origination.invite_tx = invite_tx;
        origination.state = ForkState::Calling;
        self.client_roles
            .insert(invite_tx, ClientRole::OriginateInvite { call: key });
        debug!(gateway, "originate: INVITE sent again with credentials");
        true
    }

    /// An originated call ends before its INVITE did: the INVITE owes a CANCEL once the
    /// target answers provisionally (RFC 3261 §9.1), and an ACK and BYE if it answers anyway.
    pub(super) fn abandon_origination(&mut self, now: Now, origination: &Origination, flow: Peer) {
        let tx = origination.invite_tx;
        if !self.client_roles.contains_key(&tx) {
            return;
        }
        let cancelled = match origination.state {
            ForkState::Calling => false,
            ForkState::Proceeding => {
                self.send_cancel(now, tx, flow);
                true
            }
            ForkState::Answered | ForkState::Cancelled | ForkState::Failed => return,
        };
        self.client_roles
            .insert(tx, ClientRole::AbandonedInvite { flow, cancelled });
    }

    /// Every originated call still ringing ends with `cause` (a shutdown).
    pub(super) fn cancel_originations(&mut self, now: Now, cause: &str) {
        let ringing: Vec<CallKey> = self
            .calls
            .iter()
            .filter(|(_, c)| c.originate.is_some() && c.state == CallState::Routing)
            .map(|(k, _)| *k)
            .collect();
        for key in ringing {
            self.fail_unanswered_with_side(now, key, 503, cause, "system");
        }
    }

    /// `originate.failed` to the modules: the call never answered (or answered unusably).
    pub(super) fn publish_originate_failed(
        &self,
        now: Now,
        key: CallKey,
        status: u16,
        cause: &str,
    ) {
        self.publish_call(
            now,
            "originate.failed",
            key,
            serde_json::json!({ "cause": cause, "status": status }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_parse_as_freeswitch_writes_them() {
        let request = parse_originate(
            "{origination_caller_id_number=555,origination_caller_id_name='A B'}user/1001 &bridge(user/1000)",
        )
        .unwrap();
        assert_eq!(
            request.variables,
            [
                ("origination_caller_id_number".to_owned(), "555".to_owned()),
                ("origination_caller_id_name".to_owned(), "A B".to_owned()),
            ]
        );
        assert_eq!(request.target, Target::User("1001".into()));
        assert_eq!(request.target_text, "user/1001");
        assert_eq!(
            request.then,
            Then::Application {
                name: "bridge".into(),
                data: "user/1000".into()
            }
        );

        let request =
            parse_originate("sofia/gateway/carrier/4412345 5000 XML sales 'Q' 4420 20").unwrap();
        assert_eq!(
            request.target,
            Target::Gateway {
                name: "carrier".into(),
                number: "4412345".into()
            }
        );
        assert_eq!(
            request.then,
            Then::Extension {
                extension: "5000".into(),
                context: "sales".into()
            }
        );
        assert_eq!(request.caller_id_name.as_deref(), Some("'Q'"));
        assert_eq!(request.caller_id_number.as_deref(), Some("4420"));
        assert_eq!(request.timeout_secs, Some(20));

        let park = parse_originate("user/1001 &park").unwrap();
        assert_eq!(
            park.then,
            Then::Application {
                name: "park".into(),
                data: String::new()
            }
        );
        let default = parse_originate("user/1001 9196").unwrap();
        assert_eq!(
            default.then,
            Then::Extension {
                extension: "9196".into(),
                context: "default".into()
            }
        );
        // Data keeps its spaces and inner parentheses up to the last `)`.
        let play = parse_originate("user/1001 &playback(/tmp/a (1).wav)").unwrap();
        assert_eq!(
            play.then,
            Then::Application {
                name: "playback".into(),
                data: "/tmp/a (1).wav".into()
            }
        );
    }

    #[test]
    fn malformed_command_lines_say_why() {
        for (line, why) in [
            ("", "usage"),
            ("user/1001", "usage"),
            ("user/1001 1 XML c n 1 2 extra", "usage"),
            ("user/1001 1 XML c n 1 soon", "not a number"),
            ("user/1001 & (x)", "not an application name"),
            ("{x}user/1001 9196", "not name=value"),
            ("gateway/only 9196", "unknown target"),
        ] {
            let error = parse_originate(line).expect_err(line);
            assert!(error.contains(why), "{line}: {error}");
        }
    }

    #[test]
    fn our_offer_lists_the_configured_codecs_in_order_on_our_endpoint() {
        let codecs =
            media_plan::transcodable_offers(&["PCMA".into(), "opus".into(), "PCMU".into()]);
        let local: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        let mut origin = OriginState::new(42);
        let offer = own_offer(local, &codecs, &mut origin).unwrap();
        let names: Vec<(String, u8)> = offer
            .audio_codecs()
            .into_iter()
            .map(|c| (c.name, c.payload_type))
            .collect();
        assert_eq!(
            names,
            [
                ("PCMA".to_owned(), 8),
                ("opus".to_owned(), 96),
                ("PCMU".to_owned(), 0),
                ("telephone-event".to_owned(), 97),
                ("telephone-event".to_owned(), 98),
            ]
        );
        assert_eq!(offer.audio_destination(), Some(local));
        assert_eq!(offer.origin.session_id, "42");
        assert!(own_offer(local, &[], &mut origin).is_none());

        // The target answers opus with its own number: it is received on ours too.
        let answer = SessionDescription::parse(
            b"v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n\
m=audio 5000 RTP/AVP 111 101\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:101 telephone-event/48000\r\n",
        )
        .unwrap();
        let codec = answered_codec(&offer, &answer).unwrap();
        assert_eq!(codec.payload_type, 111);
        assert_eq!(codec.also_receives, Some(96));
        assert_eq!(codec.telephone_event, Some(101));
        let gsm = SessionDescription::parse(
            b"v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n\
m=audio 5000 RTP/AVP 3\r\na=rtpmap:3 GSM/8000\r\n",
        )
        .unwrap();
        assert!(answered_codec(&offer, &gsm).is_none());
    }
}
