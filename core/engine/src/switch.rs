//! The switch: registrar, authentication and the B2BUA, driven by the signalling reactor.
//!
//! Like the protocol cores below it, the switch owns no socket and reads no clock: the reactor
//! hands it `(now, message, peer)`, media events, console commands and timeouts, and drains
//! [`Switch::poll_transmit`] and [`Switch::poll_timeout`]. The media engine and the store are
//! handles to other threads; calling them never blocks on a packet.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchyard_config::{Config, Directory};
use switchyard_dialplan::vars::Variables;
use switchyard_media::{
    ConferenceId, DtmfSource, Endpoint, EndpointId, MediaEngine, MediaEvent, Player,
};
use switchyard_recording::Recorder;
use switchyard_sdp::{CodecOffer, Direction, OriginState, SessionDescription};
use switchyard_sip::auth::{AuthOutcome, DigestAlgorithm, DigestChallenger};
use switchyard_sip::transaction::{
    ClientTxId, Peer, ServerTxId, TimerConfig, TransactionLayer, Transmit, TransportKind, TxEvent,
};
use switchyard_sip::{Message, MessageBuilder, Method, Uri, builder::default_reason, response_to};
use switchyard_store::{Cdr, Store};
use tracing::{debug, info, warn};

use crate::dialog::{Dialog, contact_value, via_value, without_tag};
use crate::guard::{AuthGuard, FailureVerdict};
use crate::media_plan::{self, LegDtmf, Sounds};

#[path = "switch_gateways.rs"]
mod gateways;
#[path = "switch_media.rs"]
mod media_setup;
#[path = "switch_modules.rs"]
mod modules_side;
#[path = "switch_originate.rs"]
mod originate;
#[path = "switch_script.rs"]
mod script;
#[path = "switch_transfer.rs"]
mod transfer;
use crate::registrar::{BindingChange, ExpiryPolicy, RegisterRefusal, Registrar};
use script::Script;
pub(crate) use script::load_routing_plan;
pub use script::{CallView, ModuleApplication, RoutingPlan};

pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REGISTER, REFER, NOTIFY";
const SDP: &str = "application/sdp";
/// Codecs the 9196 echo test answers with: it returns packets untouched, so any codec the
/// caller offers first among these works.
const ECHO_CODECS: &[&str] = &["PCMU", "PCMA", "G722", "opus", "telephone-event"];
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// The `tick` event to modules: a queue's timers (wrap-up, ring timeouts, periodic prompts)
/// run on it, on the switch's clock.
const TICK_EVERY: Duration = Duration::from_secs(1);
/// Digits kept per call in the CDR's dtmf_digits.
const MAX_CDR_DIGITS: usize = 128;
/// How long a phone may hold our last packets in its jitter buffer before playing them.
const PLAYOUT_DRAIN: Duration = Duration::from_millis(300);

/// The clock as the reactor read it: monotonic for timers, wall time for CDRs and nonces.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub mono: Instant,
    pub unix_ms: i64,
}

impl Now {
    fn unix_secs(&self) -> i64 {
        self.unix_ms / 1000
    }
}

/// Where our own Via and Contact point, per transport.
#[derive(Clone, Copy, Debug)]
pub struct LocalAddrs {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
}

impl LocalAddrs {
    fn for_transport(&self, transport: TransportKind) -> SocketAddr {
        let (first, second) = match transport {
            TransportKind::Udp => (self.udp, self.tcp),
            TransportKind::Tcp => (self.tcp, self.udp),
        };
        first
            .or(second)
            .expect("the reactor binds at least one listener")
    }
}

struct Settings {
    domain: String,
    user_agent: String,
    local: LocalAddrs,
    no_answer: Duration,
    max_calls: usize,
    shutdown_grace: Duration,
    expiry: ExpiryPolicy,
    /// `[media] codecs`: what we terminate, answer with, and offer callees to transcode to.
    codecs: Vec<String>,
    transcodable: Vec<CodecOffer<'static>>,
    conference_rate: u32,
    recording: RecordingPolicy,
    /// Where `reload dialplan` reads the plan, and the holiday calendar.
    dialplan_dir: std::path::PathBuf,
    holidays: Option<std::path::PathBuf>,
    /// The context of callers whose directory entry names none.
    default_context: String,
    /// `[dialplan.globals]`: every call starts with these variables.
    globals: Vec<(String, String)>,
}

/// `[recording]`: where and how recordings are written. Which calls are recorded is
/// mod_recorder's policy; it asks through the console's `record` command.
struct RecordingPolicy {
    dir: std::path::PathBuf,
    sample_rate: u32,
    encrypt: bool,
}

/// What a leg speaks, for DTMF conversion and `show channels`.
#[derive(Clone, Debug)]
struct LegPlan {
    dtmf: LegDtmf,
    /// The encoding name the leg speaks, to answer its re-INVITEs with the same.
    codec: String,
}

/// A media application that changes how the call's leg is handled (re-INVITEs, recording).
#[derive(Clone, Debug, PartialEq, Eq)]
enum App {
    Echo,
    Conference(String),
}

/// A conference room: its media node and how many calls are in it.
struct Room {
    id: ConferenceId,
    members: usize,
}

type CallKey = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    A,
    B(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CallState {
    /// B legs are being tried; A has had at most provisional responses.
    Routing,
    Answered,
}

struct ALeg {
    dialog: Dialog,
    /// The caller's INVITE; None when the switch placed the call itself (`originate`): the
    /// leg is then our own UAC dialog, answered before the script starts.
    invite_tx: Option<ServerTxId>,
    /// Until the caller's ACK for our 2xx arrives.
    awaiting_ack: bool,
    origin: OriginState,
    /// The last SDP we sent this leg, re-sent when a session refresh carries no offer.
    last_sdp: Option<Vec<u8>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ForkState {
    Calling,
    Proceeding,
    Answered,
    /// Our CANCEL is out; the 487 (or a racing 2xx) is still to come.
    Cancelled,
    /// A final non-2xx came, or the fork was given up.
    Failed,
}

struct BLeg {
    dialog: Dialog,
    invite_tx: ClientTxId,
    state: ForkState,
    /// RFC 3261 §9.1: a CANCEL waits for a provisional response.
    cancel_pending: bool,
    final_status: Option<u16>,
    /// The trunk this fork goes out through, whose credentials answer a challenge.
    gateway: Option<String>,
    auth_answers: u8,
    /// Who this fork rings (a user id, or `gateway/number`): the call's callee if it wins.
    callee: String,
}

impl BLeg {
    /// No answer can come from this fork any more (it failed, or we cancelled it).
    fn is_over(&self) -> bool {
        matches!(self.state, ForkState::Failed | ForkState::Cancelled)
    }
}

enum Media {
    Bridge {
        a: Endpoint,
        b: Endpoint,
    },
    /// One leg we answer ourselves: echo, playback, tones, music, a conference.
    Single {
        a: Endpoint,
    },
}

impl Media {
    fn endpoint(&self, side: Side) -> Option<&Endpoint> {
        match (self, side) {
            (Media::Bridge { a, .. } | Media::Single { a }, Side::A) => Some(a),
            (Media::Bridge { b, .. }, Side::B(_)) => Some(b),
            (Media::Single { .. }, Side::B(_)) => None,
        }
    }
}

struct Call {
    uuid: String,
    caller: String,
    callee: String,
    destination: String,
    start: Now,
    answered_ms: Option<i64>,
    state: CallState,
    a: ALeg,
    forks: Vec<BLeg>,
    winner: Option<usize>,
    media: Media,
    b_origin: OriginState,
    /// The final status the callee side gave us, for the CDR.
    b_final: Option<u16>,
    a_final: Option<u16>,
    /// A relayed re-INVITE or UPDATE whose answer is still to come: one offer at a time
    /// (RFC 3261 §14.1, RFC 3311 §5.2). Other in-dialog requests (INFO, MESSAGE...) relay freely.
    pending_offer: Option<ServerTxId>,
    /// The caller's offer, kept to answer it ourselves when we transcode.
    a_offer: Option<SessionDescription>,
    /// The offer we sent the callee: its payload numbers are what the callee sends us.
    b_offer: Option<SessionDescription>,
    a_plan: Option<LegPlan>,
    b_plan: Option<LegPlan>,
    /// Both legs' media are terminated here (transcoding or DTMF conversion): re-INVITEs are
    /// answered locally and DTMF is regenerated on the other leg.
    terminated: bool,
    transcoded: bool,
    app: Option<App>,
    recording: Option<String>,
    dtmf_digits: String,
    /// In a conference: (muted, deaf).
    member: (bool, bool),
    /// A relayed call's codec, to tap its legs when a recording starts.
    relay_codec: Option<switchyard_media::LegCodec>,
    /// Both legs of a relayed call are decoded for a recorder.
    tapped: bool,
    recording_active: bool,
    recordings_made: u32,
    /// The dialplan actions this call runs.
    script: Option<Script>,
    /// Our own answer to the caller when we terminate its leg (answer, pre_answer, IVR):
    /// sent in the 183 and again in the 200.
    a_sdp: Option<Vec<u8>>,
    /// The caller leg's sample rate once terminated here.
    a_rate: u32,
    /// A 183 with our SDP went out.
    early: bool,
    /// For the INVITEs to callees.
    max_forwards: u32,
    /// What each leg speaks, when we can decode it: a transfer re-terminates the legs it
    /// keeps with these.
    a_leg_codec: Option<switchyard_media::LegCodec>,
    b_leg_codec: Option<switchyard_media::LegCodec>,
    /// Module applications this call ran, each the instance it first used.
    pinned_apps: HashMap<String, Arc<dyn ModuleApplication>>,
    /// A module's media tap on the call (`tap start UUID MODULE`).
    module_tap: Option<modules_side::ModuleTap>,
    /// The INVITE we sent, when the switch placed this call itself (`originate`).
    originate: Option<originate::Origination>,
}

/// Where a fork goes and who it says is calling.
struct ForkTarget<'a> {
    /// Who is rung: a user id, or `gateway/number`.
    callee: &'a str,
    from_user: &'a str,
    display: Option<&'a str>,
    /// A whole From value (without tag) instead of one built from the user and display.
    from_uri: Option<&'a str>,
    to_uri: &'a str,
    request_uri: &'a str,
    flow: Peer,
}

impl Call {
    /// A new call being routed: its caller-side leg, one media endpoint of our own and the
    /// script it runs; nothing yet of callees, recordings or modules. Who calls whom, and
    /// the caller's offer, are the creator's to fill in.
    fn routing(uuid: String, start: Now, a: ALeg, endpoint: Endpoint, script: Script) -> Call {
        Call {
            uuid,
            caller: String::new(),
            callee: String::new(),
            destination: String::new(),
            start,
            answered_ms: None,
            state: CallState::Routing,
            a,
            forks: Vec::new(),
            winner: None,
            media: Media::Single { a: endpoint },
            b_origin: OriginState::new(rand::random::<u32>() as u64),
            b_final: None,
            a_final: None,
            pending_offer: None,
            a_offer: None,
            b_offer: None,
            a_plan: None,
            b_plan: None,
            terminated: false,
            transcoded: false,
            app: None,
            recording: None,
            dtmf_digits: String::new(),
            member: (false, false),
            relay_codec: None,
            tapped: false,
            recording_active: false,
            recordings_made: 0,
            script: Some(script),
            a_sdp: None,
            a_rate: 8000,
            early: false,
            max_forwards: 70,
            a_leg_codec: None,
            b_leg_codec: None,
            pinned_apps: HashMap::new(),
            module_tap: None,
            originate: None,
        }
    }

    fn dialog_mut(&mut self, side: Side) -> Option<&mut Dialog> {
        match side {
            Side::A => Some(&mut self.a.dialog),
            Side::B(i) => self.forks.get_mut(i).map(|f| &mut f.dialog),
        }
    }

    /// Anchoring across the bridge: an SDP that leg `source` sent us points `source`'s
    /// endpoint at the media address it names, and comes back rewritten onto the endpoint
    /// facing `dest`, under `dest`'s origin, ready to send there. None when either leg has no
    /// endpoint or no audio survives the rewrite.
    fn reanchor(
        &mut self,
        media: &MediaEngine,
        source: Side,
        dest: Side,
        sdp: &SessionDescription,
    ) -> Option<Vec<u8>> {
        let source_endpoint = self.media.endpoint(source)?.id;
        let dest_address = self.media.endpoint(dest)?.local;
        if let Some(remote) = sdp.audio_destination() {
            media.set_remote(source_endpoint, remote);
        }
        let origin = match dest {
            Side::A => &mut self.a.origin,
            Side::B(_) => &mut self.b_origin,
        };
        // RFC 3264 §6: what the caller gets may list only formats it offered; a callee's
        // answer can also hold the codecs we added to its offer for transcoding.
        let caller_formats: Option<Vec<String>> = match (dest, &self.a_offer) {
            (Side::A, Some(offer)) => offer
                .active_audio()
                .map(|m| m.codecs().into_iter().map(|c| c.name).collect()),
            _ => None,
        };
        let allowed: Option<Vec<&str>> = caller_formats
            .as_ref()
            .map(|names| names.iter().map(String::as_str).collect());
        let bytes = switchyard_sdp::anchor(sdp, dest_address, origin, allowed.as_deref())
            .ok()?
            .to_bytes();
        if dest == Side::A {
            self.a.last_sdp = Some(bytes.clone());
        }
        Some(bytes)
    }

    /// Whether the caller's leg can be taken over by the switch (transfers, the plan going on
    /// after a bridge): we answered it ourselves, or we know and decode its codec.
    fn caller_adoptable(&self) -> bool {
        self.a_sdp.is_some() || self.a_leg_codec.is_some()
    }

    /// Keeps a digit for the CDR, up to a bound: a peer flooding DTMF cannot grow the row.
    fn keep_digit(&mut self, digit: char) {
        if self.dtmf_digits.len() < MAX_CDR_DIGITS {
            self.dtmf_digits.push(digit);
        }
    }

    fn other(&self, side: Side) -> Option<Side> {
        match side {
            Side::A => self.winner.map(Side::B),
            Side::B(_) => Some(Side::A),
        }
    }
}

/// Server transactions the switch must find again: the caller's INVITE (for CANCEL and the
/// ACK timeout). Relayed in-dialog requests are found through `ClientRole::Relay`.
enum ServerRole {
    ACallInvite(CallKey),
}

enum ClientRole {
    BInvite {
        call: CallKey,
        fork: usize,
    },
    /// The INVITE of a fork whose call has ended before the fork did: it still owes a CANCEL
    /// once the callee sends a provisional response (RFC 3261 §9.1), and an ACK and BYE if it
    /// answers anyway. `flow` is where the fork's requests go.
    AbandonedInvite {
        flow: Peer,
        cancelled: bool,
    },
    /// An in-dialog request from `from`, relayed to `to`; `server` is `from`'s transaction.
    Relay {
        call: CallKey,
        server: ServerTxId,
        from: Side,
        to: Side,
    },
    /// BYE and CANCEL we send: the answer changes nothing.
    FireAndForget,
    /// A REGISTER to a trunk.
    GatewayRegister {
        gateway: String,
    },
    /// Our own re-INVITE to the caller (its leg moved to another endpoint).
    Reoffer {
        call: CallKey,
    },
    /// The INVITE of a call we place ourselves (`originate`): its A leg.
    OriginateInvite {
        call: CallKey,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// A timer of the call's dialplan script (sleep, digit timeouts, a bridge's
    /// call_timeout), for the script's wait of this epoch.
    Script(CallKey, u64),
    Sweep,
    /// `tick` to the modules subscribed to it.
    Tick,
    ShutdownDeadline,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lifecycle {
    Running,
    Draining { deadline: Instant },
    Stopped,
}

/// Counters for `status`.
#[derive(Default)]
struct Counters {
    calls_total: u64,
    calls_failed: u64,
    registrations: u64,
    auth_failures: u64,
    malformed: u64,
    /// New calls refused with 503 because the signalling thread was behind.
    shed: u64,
}

pub struct Switch {
    settings: Settings,
    directory: Directory,
    /// The dialplan new calls hunt in; a reload swaps it.
    plan: Arc<RoutingPlan>,
    /// Applications modules registered, by name.
    applications: HashMap<String, Arc<dyn ModuleApplication>>,
    /// SIP trunks: their registrations, calls out and in.
    gateways: crate::gateway::Gateways,
    /// Dynamic modules and what they registered.
    modules: crate::modules::Modules,
    transactions: TransactionLayer,
    challenger: DigestChallenger,
    guard: AuthGuard,
    registrar: Registrar,
    media: MediaEngine,
    store: Store,
    calls: HashMap<CallKey, Call>,
    next_call: CallKey,
    dialogs: HashMap<(String, String), (CallKey, Side)>,
    server_roles: HashMap<ServerTxId, ServerRole>,
    server_peers: HashMap<ServerTxId, Peer>,
    client_roles: HashMap<ClientTxId, ClientRole>,
    /// BYEs to callers who have not yet ACKed our 2xx, by that INVITE's transaction: they leave
    /// on the ACK or when it times out, never before the 2xx (RFC 3261 §15).
    deferred_byes: HashMap<ServerTxId, (Peer, Message)>,
    endpoint_calls: HashMap<EndpointId, CallKey>,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    lifecycle: Lifecycle,
    /// Set by the reactor while datagrams queue up faster than it reads them.
    overloaded: bool,
    started: Now,
    counters: Counters,
    sounds: Sounds,
    recorder: Option<Recorder>,
    rooms: HashMap<String, Room>,
    /// Every event published, with its body (the tests load no modules; they look here).
    #[cfg(test)]
    pub(crate) published: std::cell::RefCell<Vec<serde_json::Value>>,
}

/// Everything the switch needs from the outside world, built by the reactor.
pub struct SwitchParts {
    pub config: Config,
    pub plan: RoutingPlan,
    /// The plan's directory, read again by `reload dialplan`.
    pub dialplan_dir: std::path::PathBuf,
    pub holidays: Option<std::path::PathBuf>,
    /// The modules loaded at start (their applications join the registry).
    pub modules: crate::modules::Modules,
    pub local: LocalAddrs,
    pub media: MediaEngine,
    pub store: Store,
    pub registrar: Registrar,
    pub nonce_secret: [u8; 32],
    /// The recording writer thread, when recordings are possible.
    pub recorder: Option<Recorder>,
    /// Where recordings go (the data directory's `recording.dir`).
    pub recordings_dir: std::path::PathBuf,
}

impl Switch {
    pub fn new(parts: SwitchParts, now: Now) -> Switch {
        let SwitchParts {
            config,
            plan,
            dialplan_dir,
            holidays,
            modules,
            local,
            media,
            store,
            registrar,
            nonce_secret,
            recorder,
            recordings_dir,
        } = parts;
        let auth = &config.auth;
        let sounds = Sounds::new(&config.media.sounds_dir, &config.media.tone_country);
        let settings = Settings {
            domain: config.sip.domain.clone(),
            user_agent: config.sip.user_agent.clone(),
            local,
            no_answer: Duration::from_secs(config.calls.no_answer_timeout_secs),
            max_calls: config.calls.max_calls,
            shutdown_grace: Duration::from_secs(config.calls.shutdown_grace_secs),
            expiry: ExpiryPolicy {
                min: auth.min_register_expires,
                max: auth.max_register_expires,
                default: auth.default_register_expires,
            },
            codecs: config.media.codecs.clone(),
            transcodable: media_plan::transcodable_offers(&config.media.codecs),
            conference_rate: config.media.conference_rate,
            recording: RecordingPolicy {
                dir: recordings_dir,
                sample_rate: config.recording.sample_rate,
                encrypt: config.recording.encrypt,
            },
            dialplan_dir,
            holidays,
            default_context: config.dialplan.default_context.clone(),
            globals: config
                .dialplan
                .globals
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        let gateways = gateways::gateways_from(&config, now);
        let transactions = TransactionLayer::new(TimerConfig {
            t1: Duration::from_millis(config.sip.t1_ms),
            t2: Duration::from_millis(config.sip.t2_ms),
            t4: Duration::from_millis(config.sip.t4_ms),
        });
        let mut switch = Switch {
            challenger: DigestChallenger::new(
                config.sip.domain.clone(),
                nonce_secret,
                Duration::from_secs(auth.nonce_ttl_secs),
            )
            .with_algorithms(
                auth.digest_algorithms
                    .iter()
                    .map(|name| {
                        if name == "SHA-256" {
                            DigestAlgorithm::Sha256
                        } else {
                            DigestAlgorithm::Md5
                        }
                    })
                    .collect(),
            ),
            guard: AuthGuard::new(
                auth.max_failures,
                Duration::from_secs(auth.failure_window_secs),
                Duration::from_secs(auth.block_secs),
            ),
            directory: config.directory,
            settings,
            plan: Arc::new(plan),
            applications: HashMap::new(),
            gateways,
            modules,
            transactions,
            registrar,
            media,
            store,
            calls: HashMap::new(),
            next_call: 1,
            dialogs: HashMap::new(),
            server_roles: HashMap::new(),
            server_peers: HashMap::new(),
            client_roles: HashMap::new(),
            deferred_byes: HashMap::new(),
            endpoint_calls: HashMap::new(),
            timers: BinaryHeap::new(),
            lifecycle: Lifecycle::Running,
            overloaded: false,
            started: now,
            counters: Counters::default(),
            sounds,
            recorder,
            rooms: HashMap::new(),
            #[cfg(test)]
            published: std::cell::RefCell::new(Vec::new()),
        };
        switch
            .timers
            .push(Reverse((now.mono + SWEEP_EVERY, Timer::Sweep)));
        switch
            .timers
            .push(Reverse((now.mono + TICK_EVERY, Timer::Tick)));
        let loaded: Vec<String> = switch.modules.iter().map(|(n, _)| n.clone()).collect();
        for name in loaded {
            switch.sync_module_apps(&name);
        }
        switch
    }

    // ----- inputs -------------------------------------------------------------------------

    /// A message the reactor parsed from `peer` (rport applied: `peer` is the real source).
    pub fn handle_message(&mut self, now: Now, message: Message, peer: Peer) {
        // A blocked source may not try passwords (REGISTER, new INVITE), but its calls in
        // progress go on: one mistyped password behind an office NAT must not cut the
        // signalling of every other phone behind it.
        let tries_credentials = message.is_request()
            && matches!(message.method(), Some(Method::Register | Method::Invite))
            && message.to().tag().is_none();
        if tries_credentials && self.guard.is_blocked(now.mono, peer.addr.ip()) {
            return;
        }
        self.transactions.handle_receive(now.mono, message, peer);
        self.drain_transaction_events(now);
    }

    /// A malformed message: answered statelessly when the RFC asks for an answer.
    pub fn handle_malformed(
        &mut self,
        now: Now,
        error: &switchyard_sip::ParseError,
        raw: &[u8],
        peer: Peer,
    ) {
        self.counters.malformed += 1;
        debug!(%peer.addr, %error, "malformed SIP message");
        if self.guard.is_blocked(now.mono, peer.addr.ip()) {
            return;
        }
        if let Some(response) = error.stateless_response(raw) {
            self.transactions.send_stateless(peer, response);
        }
    }

    pub fn handle_media_event(&mut self, now: Now, event: MediaEvent) {
        match event {
            MediaEvent::Dtmf {
                endpoint,
                digit,
                duration_ms,
                source,
            } => {
                let Some(&key) = self.endpoint_calls.get(&endpoint) else {
                    return;
                };
                let Some(call) = self.calls.get(&key) else {
                    return;
                };
                let side = if call.media.endpoint(Side::A).map(|e| e.id) == Some(endpoint) {
                    Side::A
                } else {
                    Side::B(call.winner.unwrap_or(0))
                };
                self.deliver_dtmf(now, key, side, digit, duration_ms, source);
                if side == Side::A {
                    self.script_digit(now, key, digit);
                }
                self.drain_transaction_events(now);
                return;
            }
            MediaEvent::PlaybackDone { endpoint } => {
                let Some(&key) = self.endpoint_calls.get(&endpoint) else {
                    return;
                };
                self.script_playback_done(now, key);
                self.drain_transaction_events(now);
                return;
            }
            _ => {}
        }
        if let MediaEvent::RtpTimeout { endpoint } = event {
            let Some(&key) = self.endpoint_calls.get(&endpoint) else {
                return;
            };
            let answered = self
                .calls
                .get(&key)
                .is_some_and(|c| c.state == CallState::Answered);
            if answered {
                info!(call = key, "no RTP within the timeout: hanging up");
                self.hang_up(now, key, "MEDIA_TIMEOUT", "system");
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Now) {
        self.transactions.handle_timeout(now.mono);
        self.drain_transaction_events(now);
        if self.lifecycle == Lifecycle::Running {
            self.poll_gateways(now);
        }
        while let Some(Reverse((when, timer))) = self.timers.peek().copied() {
            if when > now.mono {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::Script(key, epoch) => self.script_timer(now, key, epoch),
                Timer::Sweep => {
                    let removed = self.registrar.purge_expired(now.unix_secs());
                    if removed > 0 {
                        self.store.remove_expired_bindings(now.unix_secs());
                    }
                    self.guard.sweep(now.mono);
                    self.timers
                        .push(Reverse((now.mono + SWEEP_EVERY, Timer::Sweep)));
                }
                Timer::Tick => {
                    self.publish(now, "tick", serde_json::json!({}), &[]);
                    // On the tick's own grid, so that late wake-ups do not drift; one tick
                    // per wake-up, however late (the seconds missed are not owed).
                    let behind = now.mono.saturating_duration_since(when).as_millis();
                    let tick = TICK_EVERY.as_millis();
                    let steps = u32::try_from(behind / tick + 1).unwrap_or(u32::MAX);
                    self.timers
                        .push(Reverse((when + TICK_EVERY * steps, Timer::Tick)));
                }
                Timer::ShutdownDeadline => {
                    if matches!(self.lifecycle, Lifecycle::Draining { .. }) {
                        warn!(
                            calls = self.calls.len(),
                            "shutdown grace time over: hanging up the remaining calls"
                        );
                        self.hang_up_all(now, "MANAGER_REQUEST");
                        self.lifecycle = Lifecycle::Stopped;
                    }
                }
            }
        }
        self.drain_transaction_events(now);
        self.check_drained();
    }

    // ----- outputs ------------------------------------------------------------------------

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transactions.poll_transmit()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let timers = self.timers.peek().map(|Reverse((when, _))| *when);
        let ours = match (timers, self.gateways.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (ours, self.transactions.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The reactor's view of its own backlog. While overloaded, new calls are refused with 503
    /// before any authentication or routing work, so the calls already admitted keep their
    /// signalling instead of every call timing out together (congestion collapse).
    pub fn set_overloaded(&mut self, overloaded: bool) {
        if overloaded && !self.overloaded {
            warn!("signalling overloaded: refusing new calls with 503 until the backlog clears");
        }
        self.overloaded = overloaded;
    }

    /// True once a graceful shutdown has finished with every call.
    pub fn is_stopped(&self) -> bool {
        self.lifecycle == Lifecycle::Stopped
    }

    /// Begins a graceful shutdown (console `shutdown`, SIGTERM): new calls get 503, the daemon
    /// stops when the last call ends or the grace time runs out.
    pub fn begin_shutdown(&mut self, now: Now) {
        if self.lifecycle == Lifecycle::Running {
            let deadline = now.mono + self.settings.shutdown_grace;
            info!(
                calls = self.calls.len(),
                grace_secs = self.settings.shutdown_grace.as_secs(),
                "shutting down: refusing new calls"
            );
            self.lifecycle = Lifecycle::Draining { deadline };
            self.timers
                .push(Reverse((deadline, Timer::ShutdownDeadline)));
            self.unregister_gateways(now);
            // Nobody talks on a call we are still ringing: it ends now, not at the grace.
            self.cancel_originations(now, "SYSTEM_SHUTDOWN");
        }
        self.check_drained();
    }

    fn check_drained(&mut self) {
        if matches!(self.lifecycle, Lifecycle::Draining { .. }) && self.calls.is_empty() {
            self.lifecycle = Lifecycle::Stopped;
        }
    }

    // ----- transaction events -------------------------------------------------------------

    fn drain_transaction_events(&mut self, now: Now) {
        while let Some(event) = self.transactions.poll_event() {
            match event {
                TxEvent::Request {
                    tx,
                    msg,
                    peer,
                    cancels,
                } => match tx {
                    Some(tx) => {
                        self.server_peers.insert(tx, peer);
                        self.on_request(now, tx, msg, peer, cancels);
                    }
                    None => self.on_ack(now, &msg),
                },
                TxEvent::Response { tx, msg } => self.on_response(now, tx, msg),
                TxEvent::ClientTimeout { tx } => self.on_client_timeout(now, tx),
                TxEvent::ServerAckTimeout { tx } => self.on_ack_timeout(now, tx),
                // A 2xx outliving its transaction: our ACK was lost, send it again.
                TxEvent::StrayResponse { msg } => self.resend_ack(&msg),
            }
        }
    }

    fn on_request(
        &mut self,
        now: Now,
        tx: ServerTxId,
        msg: Message,
        peer: Peer,
        cancels: Option<ServerTxId>,
    ) {
        let method = msg
            .method()
            .cloned()
            .unwrap_or(Method::Extension("".into()));
        // RFC 3261 §8.2.1: method inspection.
        if let Method::Extension(_) = method {
            return self.respond(now, tx, 501, &[("Allow", ALLOW.to_owned())], None, None);
        }
        // §8.2.2.1: the Request-URI scheme.
        let uri_is_sip = msg
            .request_uri()
            .and_then(|raw| Uri::parse(raw).ok())
            .map(|uri| uri.is_sip());
        match uri_is_sip {
            None => return self.respond(now, tx, 400, &[], None, None),
            Some(false) => return self.respond(now, tx, 416, &[], None, None),
            Some(true) => {}
        }
        // §8.2.2.3: we support no extension that a peer could Require.
        if method != Method::Cancel {
            let required: Vec<&str> = msg
                .header_values("Require")
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect();
            if !required.is_empty() {
                let unsupported = required.join(", ");
                return self.respond(now, tx, 420, &[("Unsupported", unsupported)], None, None);
            }
        }
        // §8.2.3: content processing, for the methods whose body we read.
        if matches!(method, Method::Invite | Method::Update) && !msg.body().is_empty() {
            let content_type = msg
                .content_type()
                .unwrap_or("")
                .split(';')
                .next()
                .unwrap_or("")
                .trim();
            if !content_type.eq_ignore_ascii_case(SDP) {
                return self.respond(now, tx, 415, &[("Accept", SDP.to_owned())], None, None);
            }
        }

        if msg.to().tag().is_some() && method != Method::Cancel {
            return self.on_in_dialog_request(now, tx, &msg, method);
        }
        match method {
            Method::Register => self.on_register(now, tx, &msg, peer),
            Method::Invite => self.on_initial_invite(now, tx, &msg, peer),
            Method::Options => {
                let headers = [
                    ("Allow", ALLOW.to_owned()),
                    ("Accept", SDP.to_owned()),
                    ("User-Agent", self.settings.user_agent.clone()),
                ];
                self.respond(now, tx, 200, &headers, Some(&new_tag()), None);
            }
            Method::Cancel => self.on_cancel(now, tx, cancels),
            Method::Bye | Method::Info | Method::Update | Method::Prack => {
                self.respond(now, tx, 481, &[], Some(&new_tag()), None)
            }
            _ => self.respond(
                now,
                tx,
                405,
                &[("Allow", ALLOW.to_owned())],
                Some(&new_tag()),
                None,
            ),
        }
    }

    // ----- authentication -----------------------------------------------------------------

    /// Digest authentication for REGISTER (401) and INVITE (407). Returns the user on success;
    /// otherwise it has already answered the request.
    fn authenticate(
        &mut self,
        now: Now,
        tx: ServerTxId,
        msg: &Message,
        peer: Peer,
        proxy: bool,
    ) -> Option<String> {
        let (request_header, challenge_header, challenge_status) = if proxy {
            ("Proxy-Authorization", "Proxy-Authenticate", 407)
        } else {
            ("Authorization", "WWW-Authenticate", 401)
        };
        let method = msg.method().map(Method::as_str).unwrap_or("");
        let request_uri = msg.request_uri().unwrap_or("");
        let mut outcome = AuthOutcome::UnsupportedScheme;
        // A phone may send credentials for several realms: ours is the one that counts.
        for value in msg.headers(request_header) {
            let directory = &self.directory;
            outcome = self.challenger.verify(
                now.unix_secs() as u64,
                method,
                request_uri,
                value,
                |user| {
                    directory
                        .users
                        .get(user)
                        .filter(|u| u.enabled)
                        .map(|u| u.password.clone())
                },
            );
            if !matches!(outcome, AuthOutcome::UnsupportedScheme) {
                break;
            }
        }
        let stale = match outcome {
            AuthOutcome::Authorized { username } => {
                self.guard.record_success(peer.addr.ip());
                return Some(username);
            }
            AuthOutcome::Stale { .. } => true,
            AuthOutcome::Rejected { username, reason } => {
                self.counters.auth_failures += 1;
                let user = username.as_deref().unwrap_or("-");
                warn!(source = %peer.addr, user, reason, method, "authentication failed");
                if let FailureVerdict::Blocked { failures, for_secs } =
                    self.guard.record_failure(now.mono, peer.addr.ip())
                {
                    warn!(source = %peer.addr.ip(), failures, for_secs, "source blocked after repeated authentication failures");
                }
                self.respond(now, tx, 403, &[], Some(&new_tag()), None);
                return None;
            }
            _ => false,
        };
        let headers: Vec<(&str, String)> = self
            .challenger
            .challenges(now.unix_secs() as u64, stale)
            .into_iter()
            .map(|value| (challenge_header, value))
            .collect();
        self.respond(now, tx, challenge_status, &headers, Some(&new_tag()), None);
        None
    }

    // ----- registrar ----------------------------------------------------------------------

    fn on_register(&mut self, now: Now, tx: ServerTxId, msg: &Message, peer: Peer) {
        // RFC 3261 §10.3 step 5: the To header names the address-of-record, which must be SIP.
        let to = msg.to();
        let Some(aor_user) = to
            .uri
            .is_sip()
            .then(|| to.uri.user_unescaped())
            .flatten()
            .map(|u| u.into_owned())
        else {
            return self.respond(now, tx, 400, &[], Some(&new_tag()), None);
        };
        let Some(user) = self.authenticate(now, tx, msg, peer, false) else {
            return;
        };
        if user != aor_user {
            warn!(source = %peer.addr, user, aor = aor_user, "REGISTER for another user's address refused");
            return self.respond(now, tx, 403, &[], Some(&new_tag()), None);
        }
        match self
            .registrar
            .register(&user, msg, peer, now.unix_secs(), self.settings.expiry)
        {
            Ok(changes) => {
                self.counters.registrations += 1;
                for change in changes {
                    match change {
                        BindingChange::Upsert(binding) => {
                            info!(
                                user,
                                contact = binding.contact,
                                source = binding.source,
                                "registered"
                            );
                            self.store.upsert_binding(binding);
                        }
                        BindingChange::Remove { user, contact } => {
                            info!(user, contact, "unregistered");
                            self.store.remove_binding(&user, &contact);
                        }
                        BindingChange::RemoveAll { user } => {
                            info!(user, "unregistered every contact");
                            self.store.remove_all_bindings(&user);
                        }
                    }
                }
                let now_secs = now.unix_secs();
                let headers: Vec<(&str, String)> = self
                    .registrar
                    .contacts(&user, now_secs)
                    .into_iter()
                    .map(|b| {
                        (
                            "Contact",
                            format!("<{}>;expires={}", b.contact, b.expires_unix - now_secs),
                        )
                    })
                    .collect();
                self.respond(now, tx, 200, &headers, Some(&new_tag()), None);
            }
            Err(RegisterRefusal::IntervalTooBrief { min }) => self.respond(
                now,
                tx,
                423,
                &[("Min-Expires", min.to_string())],
                Some(&new_tag()),
                None,
            ),
            Err(RegisterRefusal::OutOfOrder) => {
                self.respond(now, tx, 500, &[], Some(&new_tag()), None)
            }
            Err(RegisterRefusal::BadWildcard | RegisterRefusal::BadContact) => {
                self.respond(now, tx, 400, &[], Some(&new_tag()), None)
            }
        }
    }

    // ----- new calls ----------------------------------------------------------------------

    fn on_initial_invite(&mut self, now: Now, tx: ServerTxId, msg: &Message, peer: Peer) {
        if self.overloaded {
            self.counters.shed += 1;
        }
        if self.lifecycle != Lifecycle::Running
            || self.overloaded
            || (self.settings.max_calls > 0 && self.calls.len() >= self.settings.max_calls)
        {
            return self.respond(
                now,
                tx,
                503,
                &[("Retry-After", "30".to_owned())],
                Some(&new_tag()),
                None,
            );
        }
        // A call from a trunk is accepted by the trunk's address (a provider does not answer
        // our challenges); the caller is whoever its From names.
        let trunk = self.trunk_of(peer.addr);
        let caller = match &trunk {
            Some(gateway) => {
                let from = Uri::parse(msg.from().uri.raw)
                    .ok()
                    .and_then(|uri| uri.user_unescaped().map(|u| u.into_owned()))
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| "anonymous".into());
                info!(gateway, caller = from, "call from a trunk");
                from
            }
            None => {
                let Some(caller) = self.authenticate(now, tx, msg, peer, true) else {
                    return;
                };
                caller
            }
        };
        self.respond(now, tx, 100, &[], None, None);

        let destination = msg
            .request_uri()
            .and_then(|raw| Uri::parse(raw).ok())
            .and_then(|uri| uri.user_unescaped().map(|u| u.into_owned()))
            .unwrap_or_default();
        // Late offers (an INVITE without SDP) would need the ACK to carry the answer across
        // both legs; phones and trunks send early offers, so we ask for one.
        let offer = match SessionDescription::parse(msg.body()) {
            Ok(offer) if offer.audio_destination().is_some() => offer,
            _ => {
                info!(caller, destination, "INVITE without a usable SDP offer");
                return self.respond(now, tx, 488, &[], Some(&new_tag()), None);
            }
        };

        let a_dialog = Dialog {
            call_id: msg.call_id().to_owned(),
            local_tag: new_tag(),
            remote_tag: msg.from().tag().map(str::to_owned),
            local_uri: without_tag(msg.to().raw),
            remote_uri: without_tag(msg.from().raw),
            remote_target: first_contact_uri(msg).unwrap_or_else(|| msg.from().uri.raw.to_owned()),
            route_set: msg
                .header_values("Record-Route")
                .map(str::to_owned)
                .collect(),
            local_cseq: 0,
            peer,
            local_addr: self.settings.local.for_transport(peer.transport),
            last_ack: None,
        };
        let call_uuid = new_uuid();
        self.counters.calls_total += 1;
        let context = match &trunk {
            Some(gateway) => self
                .gateways
                .config(gateway)
                .map(|g| g.inbound_context.clone())
                .unwrap_or_else(|| "public".into()),
            None => self
                .directory
                .get(&caller)
                .map(|u| u.context.clone())
                .unwrap_or_else(|| self.settings.default_context.clone()),
        };
        let mut vars = self.call_variables(msg, &caller, &destination, peer, &call_uuid, &context);
        match &trunk {
            Some(gateway) => vars.set("sip_gateway", gateway.clone()),
            None => vars.set("user_name", caller.clone()),
        }
        let plan = Arc::clone(&self.plan);
        let (actions, vars) = match self.hunt_call(&plan, &context, &vars, now) {
            Ok((actions, vars)) if !actions.is_empty() => (actions, vars),
            outcome => {
                if let Err(error) = outcome {
                    warn!(%error, "no dialplan context for the call");
                }
                info!(uuid = call_uuid, caller, destination, context, "no route");
                self.respond(now, tx, 404, &[], Some(&a_dialog.local_tag), None);
                self.write_unconnected_cdr(
                    now,
                    &call_uuid,
                    &caller,
                    &destination,
                    msg.call_id(),
                    404,
                    "NO_ROUTE_DESTINATION",
                );
                return;
            }
        };
        info!(
            uuid = call_uuid,
            caller,
            destination,
            context,
            actions = actions.len(),
            "new call"
        );

        // A room lives on one media thread: a call headed for one that exists gets its leg
        // there (the first `conference` the plan runs decides).
        let room_thread = actions
            .iter()
            .find(|a| a.application == "conference")
            .and_then(|a| {
                self.rooms
                    .get(a.data.split('@').next().unwrap_or_default().trim())
            })
            .map(|room| room.id);
        // A caller already in a call gets its new call's media on the same thread, so that
        // an attended transfer can connect the two calls' far ends.
        let beside = self
            .calls
            .values()
            .find(|c| c.caller == caller || c.callee == caller)
            .and_then(|c| c.media.endpoint(Side::A))
            .map(|e| e.id);
        let allocated = match (room_thread, beside) {
            (Some(room), _) => self.media.allocate_for(room),
            (None, Some(beside)) => self.media.allocate_beside(beside),
            (None, None) => self.media.allocate(),
        };
        let a_endpoint = match allocated {
            Ok(endpoint) => endpoint,
            Err(error) => {
                warn!(%error, "no media ports for a new call");
                self.respond(now, tx, 503, &[], Some(&a_dialog.local_tag), None);
                self.write_unconnected_cdr(
                    now,
                    &call_uuid,
                    &caller,
                    &destination,
                    msg.call_id(),
                    503,
                    "NORMAL_CIRCUIT_CONGESTION",
                );
                return;
            }
        };
        if let Some(remote) = offer.audio_destination() {
            self.media.set_remote(a_endpoint.id, remote);
        }

        let key = self.next_call;
        self.next_call += 1;
        self.dialogs.insert(
            (a_dialog.call_id.clone(), a_dialog.local_tag.clone()),
            (key, Side::A),
        );
        self.server_roles.insert(tx, ServerRole::ACallInvite(key));
        self.endpoint_calls.insert(a_endpoint.id, key);
        let a = ALeg {
            dialog: a_dialog,
            invite_tx: Some(tx),
            awaiting_ack: false,
            origin: OriginState::new(rand::random::<u32>() as u64),
            last_sdp: None,
        };
        let call = Call {
            caller: caller.clone(),
            callee: destination.clone(),
            destination: destination.clone(),
            a_offer: Some(offer),
            max_forwards: msg.max_forwards().unwrap_or(70).saturating_sub(1).min(70),
            ..Call::routing(
                call_uuid,
                now,
                a,
                a_endpoint,
                Script::new(plan, actions, vars),
            )
        };
        self.calls.insert(key, call);
        self.publish_call(now, "call.new", key, serde_json::json!({}));
        if self.calls[&key].max_forwards == 0 {
            return self.fail_unanswered(now, key, 483, "EXCHANGE_ROUTING_ERROR");
        }
        self.run_script(now, key);
    }

    /// The channel variables a new call starts with (FreeSWITCH's names), globals first so
    /// the call's own facts win.
    fn call_variables(
        &self,
        msg: &Message,
        caller: &str,
        destination: &str,
        peer: Peer,
        uuid: &str,
        context: &str,
    ) -> Variables {
        let mut vars: Variables = self
            .settings
            .globals
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Only an authenticated caller is a directory user; a trunk's caller is only a number.
        let user = self
            .directory
            .get(caller)
            .filter(|_| self.trunk_of(peer.addr).is_none());
        let from = msg.from();
        let from_uri = Uri::parse(from.uri.raw).ok();
        let req_uri = msg.request_uri().unwrap_or_default();
        let display = from
            .display_name
            .as_deref()
            .map(str::to_owned)
            .or_else(|| user.and_then(|u| u.display_name.clone()))
            .unwrap_or_else(|| caller.to_owned());
        let set = |vars: &mut Variables, name: &str, value: &str| vars.set(name, value);
        set(&mut vars, "destination_number", destination);
        set(&mut vars, "caller_id_number", caller);
        set(&mut vars, "caller_id_name", &display);
        set(&mut vars, "network_addr", &peer.addr.ip().to_string());
        set(&mut vars, "network_port", &peer.addr.port().to_string());
        if let Some(uri) = &from_uri {
            set(
                &mut vars,
                "sip_from_user",
                &uri.user_unescaped().unwrap_or_default(),
            );
            set(&mut vars, "sip_from_host", uri.host);
        }
        if let Ok(uri) = Uri::parse(msg.to().uri.raw) {
            set(
                &mut vars,
                "sip_to_user",
                &uri.user_unescaped().unwrap_or_default(),
            );
            set(&mut vars, "sip_to_host", uri.host);
        }
        set(&mut vars, "sip_req_uri", req_uri);
        set(&mut vars, "sip_req_user", destination);
        if let Some(agent) = msg.header("User-Agent") {
            set(&mut vars, "sip_user_agent", agent);
        }
        set(&mut vars, "sip_call_id", msg.call_id());
        set(&mut vars, "context", context);
        set(&mut vars, "uuid", uuid);
        set(&mut vars, "domain_name", &self.settings.domain);
        set(&mut vars, "direction", "inbound");
        if let Some(user) = user {
            // The caller id this user presents when calling out (a DID), as FreeSWITCH's
            // effective_caller_id_*; the plan can still override it.
            if let Some(number) = &user.caller_id_number {
                set(&mut vars, "effective_caller_id_number", number);
            }
            if let Some(name) = &user.caller_id_name {
                set(&mut vars, "effective_caller_id_name", name);
            }
        }
        vars
    }

    fn start_fork(
        &mut self,
        now: Now,
        key: CallKey,
        target: ForkTarget<'_>,
        offer: &[u8],
        max_forwards: u32,
    ) -> Option<ClientTxId> {
        let ForkTarget {
            callee,
            from_user,
            display,
            from_uri,
            to_uri,
            request_uri,
            flow,
        } = target;
        let local_addr = self.settings.local.for_transport(flow.transport);
        let domain = &self.settings.domain;
        let from_user = escape_user(from_user);
        let local_uri = match (from_uri, display) {
            (Some(uri), _) => uri.to_owned(),
            (None, Some(name)) => format!(
                "\"{}\" <sip:{from_user}@{domain}>",
                name.replace(['"', '\\'], "")
            ),
            (None, None) => format!("<sip:{from_user}@{domain}>"),
        };
        let mut dialog = Dialog {
            call_id: format!("{}@{}", new_uuid(), local_addr.ip()),
            local_tag: new_tag(),
            remote_tag: None,
            local_uri,
            remote_uri: to_uri.to_owned(),
            remote_target: request_uri.to_owned(),
            route_set: Vec::new(),
            local_cseq: 1,
            peer: flow,
            local_addr,
            last_ack: None,
        };
        let bytes = gateways::fork_invite(
            &dialog,
            max_forwards,
            &self.settings.user_agent,
            None,
            offer,
        );
        let request = parse_own(bytes)?;
        let invite_tx = self.transactions.send_request(now.mono, request, flow);
        dialog.local_cseq = 1;
        let call = self.calls.get_mut(&key)?;
        let fork = call.forks.len();
        self.dialogs.insert(
            (dialog.call_id.clone(), dialog.local_tag.clone()),
            (key, Side::B(fork)),
        );
        call.forks.push(BLeg {
            dialog,
            invite_tx,
            state: ForkState::Calling,
            cancel_pending: false,
            final_status: None,
            gateway: None,
            auth_answers: 0,
            callee: callee.to_owned(),
        });
        self.client_roles
            .insert(invite_tx, ClientRole::BInvite { call: key, fork });
        Some(invite_tx)
    }

    /// Sends the caller our 200 OK with `sdp` and marks the call answered.
    fn answer_a(&mut self, now: Now, key: CallKey, sdp: Vec<u8>) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.state = CallState::Answered;
        call.answered_ms = Some(now.unix_ms);
        call.a.awaiting_ack = true;
        call.a_final = Some(200);
        call.a.last_sdp = Some(sdp.clone());
        let tx = call.a.invite_tx;
        let tag = call.a.dialog.local_tag.clone();
        let contact = contact_value(call.a.dialog.peer.transport, call.a.dialog.local_addr);
        info!(uuid = call.uuid, "answered");
        if let Some(tx) = tx {
            self.respond(
                now,
                tx,
                200,
                &[("Contact", contact), ("Allow", ALLOW.to_owned())],
                Some(&tag),
                Some((SDP, &sdp)),
            );
        }
        // A bridged call is announced once connected (script_bridged).
        if self.calls.get(&key).is_some_and(|c| c.winner.is_none()) {
            self.publish_call(now, "call.answered", key, serde_json::json!({}));
        }
    }

    // ----- responses from B legs and relays -----------------------------------------------

    fn on_response(&mut self, now: Now, tx: ClientTxId, msg: Message) {
        let Some(status) = msg.status() else { return };
        match self.client_roles.get(&tx) {
            Some(ClientRole::BInvite { call, fork }) => {
                let (key, fork) = (*call, *fork);
                if status >= 200 {
                    self.client_roles.remove(&tx);
                }
                self.on_fork_response(now, key, fork, &msg, status);
            }
            Some(&ClientRole::AbandonedInvite { flow, cancelled }) => match status {
                100..=199 if !cancelled => {
                    self.send_cancel(now, tx, flow);
                    self.client_roles.insert(
                        tx,
                        ClientRole::AbandonedInvite {
                            flow,
                            cancelled: true,
                        },
                    );
                }
                200..=299 => {
                    self.client_roles.remove(&tx);
                    self.ack_and_bye_stray(now, tx, &msg, flow);
                }
                300.. => {
                    self.client_roles.remove(&tx);
                }
                _ => {}
            },
            Some(&ClientRole::Relay {
                call,
                server,
                from,
                to,
            }) => {
                if status >= 200 {
                    self.client_roles.remove(&tx);
                }
                self.on_relay_response(now, call, server, from, to, &msg, status);
            }
            Some(ClientRole::FireAndForget) => {
                if status >= 200 {
                    self.client_roles.remove(&tx);
                }
            }
            Some(ClientRole::GatewayRegister { gateway }) => {
                if status >= 200 {
                    let gateway = gateway.clone();
                    self.client_roles.remove(&tx);
                    self.on_gateway_register_response(now, &gateway, &msg);
                }
            }
            Some(ClientRole::Reoffer { call }) => {
                let call = *call;
                if status >= 200 {
                    self.client_roles.remove(&tx);
                    self.on_reoffer_response(now, call, &msg);
                }
            }
            Some(&ClientRole::OriginateInvite { call }) => {
                if status >= 200 {
                    self.client_roles.remove(&tx);
                }
                self.on_originate_response(now, call, &msg, status);
            }
            None => {
                // A 2xx retransmitted after its transaction ended: re-ACK it from the fork.
                if (200..300).contains(&status) {
                    self.resend_ack(&msg);
                }
            }
        }
    }

    fn on_fork_response(
        &mut self,
        now: Now,
        key: CallKey,
        fork: usize,
        msg: &Message,
        status: u16,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if status < 200 {
            let current = call
                .script
                .as_ref()
                .and_then(|s| s.group_start())
                .is_some_and(|first| fork >= first);
            // Any provisional, 100 Trying included, lets a waiting CANCEL go (RFC 3261 §9.1).
            let leg = &mut call.forks[fork];
            if leg.state == ForkState::Calling {
                leg.state = ForkState::Proceeding;
            }
            if leg.cancel_pending {
                leg.cancel_pending = false;
                self.cancel_fork(now, key, fork);
                return;
            }
            if status == 100
                || call.state == CallState::Answered
                || call.a_sdp.is_some()
                || !current
                || matches!(
                    call.forks[fork].state,
                    ForkState::Cancelled | ForkState::Failed
                )
            {
                // Our own media faces the caller (ringback, early media), or the fork belongs
                // to an attempt given up: nothing to pass on.
                return;
            }
            let leg = &mut call.forks[fork];
            leg.dialog.update_from_response(msg);
            // Ringing and early media reach the caller, with the SDP anchored on our relay.
            let mut body = None;
            if let (Ok(early), Media::Bridge { a, b }) =
                (SessionDescription::parse(msg.body()), &call.media)
                && early.audio_destination().is_some()
                // Early media in a codec the caller did not offer would need transcoding
                // before the answer: the caller gets the ringing without it.
                && early
                    .chosen_codec()
                    .is_some_and(|c| call.a_offer.as_ref().is_some_and(|o| o.offers(&c)))
            {
                let (a, b) = (a.id, b.id);
                body = call.reanchor(&self.media, Side::B(fork), Side::A, &early);
                self.media.bridge(a, b);
            }
            // An originated call's leg is answered before any fork rings (a_sdp is set).
            let Some(tx) = call.a.invite_tx else { return };
            let tag = call.a.dialog.local_tag.clone();
            let contact = contact_value(call.a.dialog.peer.transport, call.a.dialog.local_addr);
            let reason = msg.reason().unwrap_or("").to_owned();
            let reason = if reason.is_empty() {
                default_reason(status).to_owned()
            } else {
                reason
            };
            // A 183 whose media we cannot pass on would leave the caller in silence: most
            // phones play their own ringback on a 180.
            let (status, reason) = if status == 183 && body.is_none() {
                (180, default_reason(180).to_owned())
            } else {
                (status, reason)
            };
            let body_ref = body.as_deref().map(|b| (SDP, b));
            self.respond_with_reason(
                now,
                tx,
                status,
                &reason,
                &[("Contact", contact)],
                Some(&tag),
                body_ref,
            );
            return;
        }

        if (200..300).contains(&status) {
            call.forks[fork].dialog.update_from_response(msg);
            let leg = &mut call.forks[fork];
            leg.state = ForkState::Answered;
            leg.final_status = Some(status);
            let ack =
                leg.dialog
                    .acknowledge(msg.cseq().0, &new_branch(), &self.settings.user_agent);
            self.transactions.send_stateless(leg.dialog.peer, ack);
            let current = call
                .script
                .as_ref()
                .and_then(|s| s.group_start())
                .is_some_and(|first| fork >= first);
            if call.winner.is_some() || !current {
                // Another fork won the race (RFC 3261 §13.2.2.4), or this one answered after
                // its bridge attempt was given up: it is hung up at once.
                self.send_in_dialog(now, key, Side::B(fork), Method::Bye, None);
                return;
            }
            call.winner = Some(fork);
            call.callee = call.forks[fork].callee.clone();
            call.b_final = Some(status);
            let uuid = call.uuid.clone();
            let ours = call.a_sdp.clone();
            let answered_before = call.state == CallState::Answered;
            let answer = SessionDescription::parse(msg.body()).ok();
            let a_sdp = match (&ours, answer) {
                (Some(sdp), Some(answer)) => {
                    self.connect_late(key, fork, &answer).then(|| sdp.clone())
                }
                (None, Some(answer)) => self.connect_answered(key, fork, &answer),
                (_, None) => None,
            };
            let Some(a_sdp) = a_sdp else {
                warn!(uuid, "callee answered without a usable SDP answer");
                self.send_in_dialog(now, key, Side::B(fork), Method::Bye, None);
                if let Some(c) = self.calls.get_mut(&key) {
                    c.winner = None;
                    c.forks[fork].state = ForkState::Failed;
                    c.forks[fork].final_status = Some(488);
                }
                // Only this fork is out: the others of its group may still answer.
                return self.check_group_over(now, key, fork);
            };
            self.cancel_other_forks(now, key, fork);
            if !answered_before {
                self.answer_a(now, key, a_sdp);
            }
            info!(uuid, fork, "bridged");
            self.script_bridged(now, key);
            return;
        }

        // A trunk asking for our credentials.
        if matches!(status, 401 | 407) && self.answer_gateway_challenge(now, key, fork, msg) {
            return;
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        // A final failure from this fork.
        let leg = &mut call.forks[fork];
        leg.state = ForkState::Failed;
        leg.final_status = Some(status);
        self.check_group_over(now, key, fork);
    }

    /// After a fork of the bridge attempt in progress ended: when all of its group have,
    /// the group failed with the most telling status (RFC 3261 §16.7: 6xx, then busy...).
    fn check_group_over(&mut self, now: Now, key: CallKey, fork: usize) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(first) = call.script.as_ref().and_then(|s| s.group_start()) else {
            return;
        };
        if fork < first || call.winner.is_some() || !call.forks[first..].iter().all(BLeg::is_over) {
            return;
        }
        let best = best_failure(call.forks[first..].iter().filter_map(|f| f.final_status));
        self.bridge_group_failed(now, key, best, switchyard_dialplan::cause_for_status(best));
    }

    fn on_client_timeout(&mut self, now: Now, tx: ClientTxId) {
        match self.client_roles.remove(&tx) {
            Some(ClientRole::BInvite { call, fork }) => {
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                let leg = &mut c.forks[fork];
                leg.state = ForkState::Failed;
                leg.final_status = Some(408);
                self.check_group_over(now, call, fork);
            }
            Some(ClientRole::Relay { call, server, .. }) => {
                if let Some(c) = self.calls.get_mut(&call)
                    && c.pending_offer == Some(server)
                {
                    c.pending_offer = None;
                }
                self.respond(now, server, 408, &[], None, None);
            }
            Some(ClientRole::GatewayRegister { gateway }) => {
                self.on_gateway_register_timeout(now, &gateway)
            }
            Some(ClientRole::Reoffer { call }) => {
                warn!(call, "the caller never answered our re-INVITE");
                self.hang_up(now, call, "RECOVERY_ON_TIMER_EXPIRE", "system");
            }
            Some(ClientRole::OriginateInvite { call }) => self.on_originate_timeout(now, call),
            Some(ClientRole::AbandonedInvite { .. }) => {}
            _ => {}
        }
    }

    fn on_ack_timeout(&mut self, now: Now, tx: ServerTxId) {
        if let Some(ServerRole::ACallInvite(key)) = self.server_roles.get(&tx) {
            let key = *key;
            if self
                .calls
                .get(&key)
                .is_some_and(|c| c.a.awaiting_ack && c.state == CallState::Answered)
            {
                warn!(call = key, "caller never ACKed our 200 OK: hanging up");
                self.hang_up(now, key, "RECOVERY_ON_TIMER_EXPIRE", "system");
            }
        }
        self.server_roles.remove(&tx);
        self.server_peers.remove(&tx);
        self.release_deferred_bye(now, tx);
    }

    // ----- ACK, CANCEL, in-dialog requests ------------------------------------------------

    fn on_ack(&mut self, now: Now, msg: &Message) {
        // The ACK for any 2xx we sent, the first answer or one to a relayed re-INVITE, ends
        // that transaction's 2xx retransmissions (RFC 3261 §13.3.1.4).
        if let Some(tx) = self.transactions.match_ack(msg) {
            self.transactions.confirm_2xx(tx);
            self.release_deferred_bye(now, tx);
        }
        let Some(tag) = msg.to().tag() else { return };
        let Some(&(key, side)) = self
            .dialogs
            .get(&(msg.call_id().to_owned(), tag.to_owned()))
        else {
            return;
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if side == Side::A {
            call.a.awaiting_ack = false;
        }
    }

    fn on_cancel(&mut self, now: Now, tx: ServerTxId, cancels: Option<ServerTxId>) {
        let key = match cancels.and_then(|invite| self.server_roles.get(&invite)) {
            Some(ServerRole::ACallInvite(key)) => *key,
            _ => return self.respond(now, tx, 481, &[], Some(&new_tag()), None),
        };
        let tag = self.calls.get(&key).map(|c| c.a.dialog.local_tag.clone());
        self.respond(now, tx, 200, &[], tag.as_deref(), None);
        if self
            .calls
            .get(&key)
            .is_some_and(|c| c.state == CallState::Routing)
        {
            info!(call = key, "caller cancelled");
            self.fail_unanswered_with_side(now, key, 487, "ORIGINATOR_CANCEL", "caller");
        }
    }

    fn on_in_dialog_request(&mut self, now: Now, tx: ServerTxId, msg: &Message, method: Method) {
        let tag = msg.to().tag().unwrap_or_default().to_owned();
        let Some(&(key, side)) = self.dialogs.get(&(msg.call_id().to_owned(), tag)) else {
            return self.respond(now, tx, 481, &[], None, None);
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return self.respond(now, tx, 481, &[], None, None);
        };
        // We do not track the peer's CSeq (RFC 3261 §12.2.2 lets a UAS reject a lower one
        // with 500): the transaction layer absorbs retransmissions, and a reordered request is
        // relayed as it is.
        match method {
            Method::Bye => {
                self.respond(now, tx, 200, &[], None, None);
                let side_name = if side == Side::A { "caller" } else { "callee" };
                let call = self.calls.get_mut(&key).expect("looked up above");
                if let Side::B(fork) = side
                    && call.winner != Some(fork)
                {
                    // A fork that lost the race (and got or will get our BYE), or a BYE on
                    // an early dialog: only that fork ends.
                    let leg = &mut call.forks[fork];
                    leg.state = ForkState::Failed;
                    leg.final_status.get_or_insert(480);
                    return self.check_group_over(now, key, fork);
                }
                let plan_goes_on = call
                    .script
                    .as_ref()
                    .is_some_and(|s| !s.hangup_after_bridge());
                if let Side::B(fork) = side
                    && plan_goes_on
                    && self.continue_after_bridge(now, key, fork)
                {
                    return;
                }
                let answered = self
                    .calls
                    .get(&key)
                    .is_some_and(|c| c.state == CallState::Answered);
                if answered || side == Side::A {
                    self.hang_up_from(now, key, side, "NORMAL_CLEARING", side_name);
                }
            }
            Method::Invite
            | Method::Update
            | Method::Info
            | Method::Message
            | Method::Notify
            | Method::Options => {
                if call.state != CallState::Answered {
                    return self.respond(now, tx, 491, &[], None, None);
                }
                if method == Method::Info
                    && let Some((digit, duration)) = msg
                        .content_type()
                        .and_then(|t| media_plan::parse_dtmf_info(t, msg.body()))
                {
                    // Relayed when both legs speak INFO; else we convert it.
                    let relayed = !call.terminated && call.app.is_none() && call.a_sdp.is_none();
                    if !relayed {
                        self.respond(now, tx, 200, &[], None, None);
                        self.deliver_dtmf(now, key, side, digit, duration, DtmfSource::Info);
                        if side == Side::A {
                            self.script_digit(now, key, digit);
                        }
                        return;
                    }
                    let call = self.calls.get_mut(&key).expect("looked up above");
                    call.keep_digit(digit);
                    info!(
                        uuid = call.uuid,
                        leg = if side == Side::A { "caller" } else { "callee" },
                        %digit,
                        duration_ms = duration,
                        via = "info",
                        "DTMF (relayed)"
                    );
                }
                let Some(call) = self.calls.get_mut(&key) else {
                    return;
                };
                let carries_offer = matches!(method, Method::Invite | Method::Update);
                if carries_offer && (call.terminated || call.app.is_some() || call.a_sdp.is_some())
                {
                    if let Some(dialog) = call.dialog_mut(side) {
                        dialog.refresh_target(msg);
                    }
                    return self.answer_offer_locally(now, key, side, tx, msg);
                }
                if matches!(call.media, Media::Single { .. }) || call.winner.is_none() {
                    // Nobody to relay to: we are the other end.
                    let status = match method {
                        Method::Options | Method::Info => 200,
                        _ => 501,
                    };
                    return self.respond(now, tx, status, &[], None, None);
                }
                if carries_offer && call.pending_offer.is_some() {
                    // RFC 3261 §14.2 glare: one offer at a time.
                    return self.respond(now, tx, 491, &[], None, None);
                }
                if carries_offer && let Some(dialog) = call.dialog_mut(side) {
                    dialog.refresh_target(msg);
                }
                if method == Method::Invite {
                    self.respond(now, tx, 100, &[], None, None);
                }
                self.relay_request(now, key, side, tx, msg, method);
            }
            Method::Refer => self.on_refer(now, tx, msg, key, side),
            Method::Cancel | Method::Ack => {}
            _ => self.respond(now, tx, 501, &[("Allow", ALLOW.to_owned())], None, None),
        }
    }

    /// Relays an in-dialog request to the other leg, rewriting SDP onto our relay (hold and
    /// unhold re-INVITEs among them).
    fn relay_request(
        &mut self,
        now: Now,
        key: CallKey,
        from: Side,
        tx: ServerTxId,
        msg: &Message,
        method: Method,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(to) = call.other(from) else {
            return self.respond(now, tx, 481, &[], None, None);
        };
        let mut body: Option<(String, Vec<u8>)> = None;
        if !msg.body().is_empty() {
            let content_type = msg
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_owned();
            if content_type.to_ascii_lowercase().starts_with(SDP) {
                let Ok(offer) = SessionDescription::parse(msg.body()) else {
                    return self.respond(now, tx, 400, &[], None, None);
                };
                // Hold or unhold: a held leg may send nothing, so neither side's RTP
                // silence means the call is dead.
                let held = offer.audio_direction() != Direction::SendRecv
                    || offer.audio_destination().is_none();
                for side in [from, to] {
                    if let Some(endpoint) = call.media.endpoint(side) {
                        self.media.set_hold(endpoint.id, held);
                    }
                }
                match call.reanchor(&self.media, from, to, &offer) {
                    Some(anchored) => body = Some((SDP.to_owned(), anchored)),
                    None => return self.respond(now, tx, 488, &[], None, None),
                }
            } else {
                body = Some((content_type, msg.body().to_vec()));
            }
        } else if method == Method::Invite {
            // A session refresh without an offer: answer it ourselves with the SDP we last
            // sent this leg rather than start a late-offer exchange across the bridge.
            if from == Side::A
                && let Some(sdp) = call.a.last_sdp.clone()
            {
                let tag = call.a.dialog.local_tag.clone();
                let contact = contact_value(call.a.dialog.peer.transport, call.a.dialog.local_addr);
                return self.respond(
                    now,
                    tx,
                    200,
                    &[("Contact", contact)],
                    Some(&tag),
                    Some((SDP, &sdp)),
                );
            }
            return self.respond(now, tx, 488, &[], None, None);
        }
        let user_agent = self.settings.user_agent.clone();
        let carries_offer = matches!(method, Method::Invite | Method::Update);
        let Some(dialog) = call.dialog_mut(to) else {
            return;
        };
        let bytes = dialog.request(
            method,
            None,
            &new_branch(),
            &user_agent,
            body.as_ref().map(|(t, b)| (t.as_str(), b.as_slice())),
        );
        let peer = dialog.peer;
        let Some(request) = parse_own(bytes) else {
            return;
        };
        if carries_offer {
            call.pending_offer = Some(tx);
        }
        let client = self.transactions.send_request(now.mono, request, peer);
        self.client_roles.insert(
            client,
            ClientRole::Relay {
                call: key,
                server: tx,
                from,
                to,
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn on_relay_response(
        &mut self,
        now: Now,
        key: CallKey,
        server: ServerTxId,
        from: Side,
        to: Side,
        msg: &Message,
        status: u16,
    ) {
        if status == 100 {
            return;
        }
        let Some(call) = self.calls.get_mut(&key) else {
            // The call ended while this was under way: a final answer still closes the
            // requester's transaction; a provisional one has nowhere to go.
            if status >= 200 {
                self.respond(now, server, status, &[], None, None);
            }
            return;
        };
        if status >= 200 && call.pending_offer == Some(server) {
            call.pending_offer = None;
        }
        let refreshes_target = matches!(msg.cseq().1, Method::Invite | Method::Update);
        let is_invite = msg.cseq().1 == &Method::Invite;
        if refreshes_target
            && (200..300).contains(&status)
            && let Some(dialog) = call.dialog_mut(to)
        {
            dialog.refresh_target(msg);
        }
        if is_invite && (200..300).contains(&status) {
            // Each leg is its own dialog: ACK the answering side now; the requester's ACK is
            // absorbed by its own transaction.
            let user_agent = self.settings.user_agent.clone();
            if let Some(dialog) = call.dialog_mut(to) {
                let ack = dialog.acknowledge(msg.cseq().0, &new_branch(), &user_agent);
                self.transactions.send_stateless(dialog.peer, ack);
            }
        }
        let mut body: Option<Vec<u8>> = None;
        let mut content_type = None;
        if !msg.body().is_empty() {
            let ct = msg
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_owned();
            if ct.to_ascii_lowercase().starts_with(SDP) {
                if let Some(anchored) = SessionDescription::parse(msg.body())
                    .ok()
                    .and_then(|answer| call.reanchor(&self.media, to, from, &answer))
                {
                    body = Some(anchored);
                    content_type = Some(SDP.to_owned());
                }
            } else {
                body = Some(msg.body().to_vec());
                content_type = Some(ct);
            }
        }
        let (tag, contact) = match call.dialog_mut(from) {
            Some(d) => (
                d.local_tag.clone(),
                contact_value(d.peer.transport, d.local_addr),
            ),
            None => return,
        };
        let reason = msg
            .reason()
            .filter(|r| !r.is_empty())
            .unwrap_or(default_reason(status))
            .to_owned();
        let body_ref = match (&content_type, &body) {
            (Some(ct), Some(b)) => Some((ct.as_str(), b.as_slice())),
            _ => None,
        };
        let headers: Vec<(&str, String)> = if is_invite {
            vec![("Contact", contact)]
        } else {
            Vec::new()
        };
        self.respond_with_reason(now, server, status, &reason, &headers, Some(&tag), body_ref);
    }

    // ----- ending calls -------------------------------------------------------------------

    fn cancel_fork(&mut self, now: Now, key: CallKey, fork: usize) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let leg = &mut call.forks[fork];
        match leg.state {
            ForkState::Calling => leg.cancel_pending = true,
            ForkState::Proceeding => {
                leg.state = ForkState::Cancelled;
                let (invite_tx, flow) = (leg.invite_tx, leg.dialog.peer);
                self.send_cancel(now, invite_tx, flow);
            }
            ForkState::Answered | ForkState::Cancelled | ForkState::Failed => {}
        }
    }

    /// RFC 3261 §9.1: a CANCEL copies the INVITE's Request-URI, Call-ID, From, To (no tag),
    /// CSeq number and top Via, and goes where the INVITE went.
    fn send_cancel(&mut self, now: Now, invite_tx: ClientTxId, flow: Peer) {
        let Some(invite) = self.transactions.client_request(invite_tx) else {
            return;
        };
        let mut builder =
            MessageBuilder::request(&Method::Cancel, invite.request_uri().unwrap_or(""));
        builder.header("Via", invite.top_via().raw);
        builder.header("Max-Forwards", 70);
        builder.header("From", invite.from().raw);
        builder.header("To", invite.to().raw);
        builder.header("Call-ID", invite.call_id());
        builder.header("CSeq", format!("{} CANCEL", invite.cseq().0));
        builder.header("User-Agent", &self.settings.user_agent);
        if let Some(cancel) = parse_own(builder.finish(None, &[])) {
            let tx = self.transactions.send_request(now.mono, cancel, flow);
            self.client_roles.insert(tx, ClientRole::FireAndForget);
        }
    }

    fn cancel_other_forks(&mut self, now: Now, key: CallKey, winner: usize) {
        let count = self.calls.get(&key).map_or(0, |c| c.forks.len());
        for fork in (0..count).filter(|&f| f != winner) {
            self.cancel_fork(now, key, fork);
        }
    }

    fn fail_unanswered(&mut self, now: Now, key: CallKey, status: u16, cause: &str) {
        self.fail_unanswered_with_side(now, key, status, cause, "callee");
    }

    /// Ends a call that was never answered: CANCEL every fork, a final error to the caller.
    fn fail_unanswered_with_side(
        &mut self,
        now: Now,
        key: CallKey,
        status: u16,
        cause: &str,
        side: &str,
    ) {
        let count = self.calls.get(&key).map_or(0, |c| c.forks.len());
        for fork in 0..count {
            self.cancel_fork(now, key, fork);
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.a_final = Some(status);
        let tag = call.a.dialog.local_tag.clone();
        match call.a.invite_tx {
            Some(tx) => self.respond(now, tx, status, &[], Some(&tag), None),
            // Our own INVITE is cancelled as end_call abandons it.
            None => self.publish_originate_failed(now, key, status, cause),
        }
        self.counters.calls_failed += 1;
        self.end_call(now, key, cause, side);
    }

    /// Hangs an answered call up from the switch's side: BYE to both legs.
    fn hang_up(&mut self, now: Now, key: CallKey, cause: &str, side: &str) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if call.state != CallState::Answered {
            return self.fail_unanswered_with_side(now, key, 480, cause, side);
        }
        let winner = call.winner;
        self.send_in_dialog(now, key, Side::A, Method::Bye, None);
        if let Some(fork) = winner {
            self.send_in_dialog(now, key, Side::B(fork), Method::Bye, None);
        }
        self.end_call(now, key, cause, side);
    }

    /// One side sent BYE: the other side gets ours.
    fn hang_up_from(&mut self, now: Now, key: CallKey, from: Side, cause: &str, side: &str) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if call.state != CallState::Answered {
            // The caller's BYE before our 2xx (an early dialog): treat as a cancel.
            return self.fail_unanswered_with_side(now, key, 487, "ORIGINATOR_CANCEL", side);
        }
        if let Some(other) = call.other(from) {
            self.send_in_dialog(now, key, other, Method::Bye, None);
        }
        self.end_call(now, key, cause, side);
    }

    fn hang_up_all(&mut self, now: Now, cause: &str) -> usize {
        let keys: Vec<CallKey> = self.calls.keys().copied().collect();
        for key in &keys {
            self.hang_up(now, *key, cause, "system");
        }
        keys.len()
    }

    fn send_in_dialog(
        &mut self,
        now: Now,
        key: CallKey,
        side: Side,
        method: Method,
        body: Option<(&str, &[u8])>,
    ) {
        let user_agent = self.settings.user_agent.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(dialog) = call.dialog_mut(side) else {
            return;
        };
        let is_bye = method == Method::Bye;
        let bytes = dialog.request(method, None, &new_branch(), &user_agent, body);
        let peer = dialog.peer;
        let Some(request) = parse_own(bytes) else {
            return;
        };
        if is_bye
            && side == Side::A
            && call.a.awaiting_ack
            && let Some(invite_tx) = call.a.invite_tx
        {
            self.deferred_byes.insert(invite_tx, (peer, request));
            return;
        }
        let tx = self.transactions.send_request(now.mono, request, peer);
        self.client_roles.insert(tx, ClientRole::FireAndForget);
    }

    fn release_deferred_bye(&mut self, now: Now, invite_tx: ServerTxId) {
        if let Some((peer, bye)) = self.deferred_byes.remove(&invite_tx) {
            let tx = self.transactions.send_request(now.mono, bye, peer);
            self.client_roles.insert(tx, ClientRole::FireAndForget);
        }
    }

    /// True while requests we sent (BYE, CANCEL, INVITE) still wait for their final answer:
    /// a stopping daemon lingers briefly for them so its last BYEs are retransmitted if lost.
    pub fn awaiting_answers(&self) -> bool {
        !self.client_roles.is_empty() || !self.deferred_byes.is_empty()
    }

    /// A 2xx for a call that is already gone (it raced our CANCEL): ACK it and hang it up
    /// (RFC 3261 §15: a B2BUA must not leave a confirmed dialog behind).
    fn ack_and_bye_stray(&mut self, now: Now, tx: ClientTxId, response: &Message, flow: Peer) {
        let Some(invite) = self.transactions.client_request(tx) else {
            return;
        };
        let mut dialog = Dialog {
            call_id: invite.call_id().to_owned(),
            local_tag: invite.from().tag().unwrap_or_default().to_owned(),
            remote_tag: None,
            local_uri: without_tag(invite.from().raw),
            remote_uri: without_tag(invite.to().raw),
            remote_target: invite.request_uri().unwrap_or_default().to_owned(),
            route_set: Vec::new(),
            local_cseq: invite.cseq().0,
            peer: flow,
            local_addr: self.settings.local.for_transport(flow.transport),
            last_ack: None,
        };
        dialog.update_from_response(response);
        let ua = self.settings.user_agent.clone();
        let ack = dialog.acknowledge(response.cseq().0, &new_branch(), &ua);
        self.transactions.send_stateless(flow, ack);
        if let Some(bye) = parse_own(dialog.request(Method::Bye, None, &new_branch(), &ua, None)) {
            let tx = self.transactions.send_request(now.mono, bye, flow);
            self.client_roles.insert(tx, ClientRole::FireAndForget);
        }
    }

    /// A retransmitted 2xx to one of our INVITEs (the first or a re-INVITE): our ACK was lost.
    fn resend_ack(&mut self, response: &Message) {
        let Some(tag) = response.from().tag() else {
            return;
        };
        let Some(&(key, side)) = self
            .dialogs
            .get(&(response.call_id().to_owned(), tag.to_owned()))
        else {
            return;
        };
        if let Some(dialog) = self.calls.get_mut(&key).and_then(|c| c.dialog_mut(side))
            && let Some(ack) = dialog.ack_for(response.cseq().0)
        {
            self.transactions.send_stateless(dialog.peer, ack);
        }
    }

    /// Releases everything a call holds and writes its CDR.
    fn end_call(&mut self, now: Now, key: CallKey, cause: &str, side: &str) {
        self.publish_call(
            now,
            "call.ended",
            key,
            serde_json::json!({ "cause": cause, "side": side }),
        );
        let Some(mut call) = self.calls.remove(&key) else {
            return;
        };
        self.end_module_tap(call.module_tap.take());
        let (a_stats, b_stats) = match &call.media {
            Media::Bridge { a, b } => (self.media.stats(a.id), self.media.stats(b.id)),
            Media::Single { a } => (self.media.stats(a.id), None),
        };
        match &call.media {
            Media::Bridge { a, b } => {
                self.media.release(a.id);
                self.media.release(b.id);
                self.endpoint_calls.remove(&a.id);
                self.endpoint_calls.remove(&b.id);
            }
            Media::Single { a } => {
                if let Some(App::Conference(room)) = &call.app {
                    self.leave_room(room, a.id);
                }
                self.media.release(a.id);
                self.endpoint_calls.remove(&a.id);
            }
        }
        if let Some(tx) = call.a.invite_tx {
            self.server_roles.remove(&tx);
        }
        if let Some(origination) = &call.originate {
            self.abandon_origination(now, origination, call.a.dialog.peer);
        }
        self.dialogs.remove(&(
            call.a.dialog.call_id.clone(),
            call.a.dialog.local_tag.clone(),
        ));
        for leg in &call.forks {
            self.dialogs
                .remove(&(leg.dialog.call_id.clone(), leg.dialog.local_tag.clone()));
            // A fork still in flight outlives its call: it owes a CANCEL when the callee
            // first answers provisionally, or an ACK and BYE if it picks up after all.
            let abandoned = match leg.state {
                ForkState::Calling | ForkState::Proceeding => Some(false),
                ForkState::Cancelled => Some(true),
                ForkState::Answered | ForkState::Failed => None,
            };
            if let Some(cancelled) = abandoned
                && self.client_roles.contains_key(&leg.invite_tx)
            {
                let flow = leg.dialog.peer;
                if !cancelled && leg.state == ForkState::Proceeding {
                    self.send_cancel(now, leg.invite_tx, flow);
                }
                let cancelled = cancelled || leg.state == ForkState::Proceeding;
                self.client_roles.insert(
                    leg.invite_tx,
                    ClientRole::AbandonedInvite { flow, cancelled },
                );
            }
        }
        let start_ms = call.start.unix_ms;
        let a_stats = a_stats.unwrap_or_default();
        let b_stats = b_stats.unwrap_or_default();
        let cdr = Cdr {
            uuid: call.uuid.clone(),
            caller: call.caller.clone(),
            callee: call.callee.clone(),
            destination: call.destination.clone(),
            start_ms,
            answer_ms: call.answered_ms,
            end_ms: now.unix_ms,
            duration_s: (now.unix_ms - start_ms).max(0) / 1000,
            billsec_s: call
                .answered_ms
                .map_or(0, |answered| (now.unix_ms - answered).max(0) / 1000),
            hangup_cause: cause.to_owned(),
            a_sip_code: call.a_final,
            b_sip_code: call.b_final,
            a_call_id: call.a.dialog.call_id.clone(),
            b_call_id: call
                .winner
                .or(call.forks.first().map(|_| 0))
                .map(|f| call.forks[f].dialog.call_id.clone()),
            hangup_side: side.to_owned(),
            rtp_a_in: a_stats.packets_in as i64,
            rtp_a_out: a_stats.packets_out as i64,
            rtp_b_in: b_stats.packets_in as i64,
            rtp_b_out: b_stats.packets_out as i64,
            codec_a: a_stats.quality.codec.clone(),
            codec_b: b_stats.quality.codec.clone(),
            mos_a: media_plan::mos(&a_stats.quality),
            mos_b: media_plan::mos(&b_stats.quality),
            loss_a_pct: received(&a_stats).then_some(a_stats.quality.loss_percent),
            loss_b_pct: received(&b_stats).then_some(b_stats.quality.loss_percent),
            jitter_a_ms: received(&a_stats).then_some(a_stats.quality.jitter_ms),
            jitter_b_ms: received(&b_stats).then_some(b_stats.quality.jitter_ms),
            rtt_a_ms: a_stats.quality.rtt_ms,
            rtt_b_ms: b_stats.quality.rtt_ms,
            transcoded: call.transcoded,
            recording_path: call.recording.clone(),
            dtmf_digits: (!call.dtmf_digits.is_empty()).then(|| call.dtmf_digits.clone()),
        };
        info!(
            uuid = call.uuid,
            cause,
            side,
            billsec = cdr.billsec_s,
            "call ended"
        );
        self.store.insert_cdr(cdr);
        self.check_drained();
    }

    /// A member leaves a room (with the leave tone); the last one out closes it.
    fn leave_room(&mut self, room: &str, endpoint: switchyard_media::EndpointId) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let tone = Player::new(
            vec![switchyard_media::PlayItem::Tone(Sounds::conference_tone(
                false,
            ))],
            self.settings.conference_rate,
            false,
        )
        .ok();
        self.media.leave_conference(r.id, endpoint, tone);
        r.members = r.members.saturating_sub(1);
        if r.members == 0 {
            self.media.close_conference(r.id);
            self.rooms.remove(room);
            info!(room, "conference room closed");
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write_unconnected_cdr(
        &mut self,
        now: Now,
        uuid: &str,
        caller: &str,
        destination: &str,
        call_id: &str,
        status: u16,
        cause: &str,
    ) {
        self.counters.calls_failed += 1;
        self.store.insert_cdr(Cdr {
            uuid: uuid.to_owned(),
            caller: caller.to_owned(),
            callee: String::new(),
            destination: destination.to_owned(),
            start_ms: now.unix_ms,
            answer_ms: None,
            end_ms: now.unix_ms,
            duration_s: 0,
            billsec_s: 0,
            hangup_cause: cause.to_owned(),
            a_sip_code: Some(status),
            b_sip_code: None,
            a_call_id: call_id.to_owned(),
            b_call_id: None,
            hangup_side: "system".to_owned(),
            rtp_a_in: 0,
            rtp_a_out: 0,
            rtp_b_in: 0,
            rtp_b_out: 0,
            ..Cdr::default()
        });
    }

    // ----- responding ---------------------------------------------------------------------

    fn respond(
        &mut self,
        now: Now,
        tx: ServerTxId,
        status: u16,
        headers: &[(&str, String)],
        to_tag: Option<&str>,
        body: Option<(&str, &[u8])>,
    ) {
        self.respond_with_reason(
            now,
            tx,
            status,
            default_reason(status),
            headers,
            to_tag,
            body,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn respond_with_reason(
        &mut self,
        now: Now,
        tx: ServerTxId,
        status: u16,
        reason: &str,
        headers: &[(&str, String)],
        to_tag: Option<&str>,
        body: Option<(&str, &[u8])>,
    ) {
        let Some(request) = self.transactions.server_request(tx) else {
            return;
        };
        let received = self.server_peers.get(&tx).map(|p| p.addr);
        // RFC 3261 §8.2.6.2: every response but 100 carries a To tag on a dialog-creating
        // request; 100 Trying never does.
        let to_tag = if status == 100 { None } else { to_tag };
        let mut builder = response_to(request, status, reason, to_tag, received);
        // RFC 3261 §12.1.1: dialog-creating responses copy the Record-Route set, so the caller
        // routes its ACK, BYE and re-INVITEs through the proxies in front of us.
        if request.method() == Some(&Method::Invite) && (101..300).contains(&status) {
            for route in request.headers("Record-Route") {
                builder.header("Record-Route", route);
            }
        }
        for (name, value) in headers {
            builder.header(name, value);
        }
        if status != 100 {
            builder.header("Server", &self.settings.user_agent);
        }
        let bytes = match body {
            Some((content_type, body)) => builder.finish(Some(content_type), body),
            None => builder.finish(None, &[]),
        };
        if let Some(response) = parse_own(bytes) {
            self.transactions.send_response(now.mono, tx, response);
        }
        if status >= 200 {
            self.server_peers.remove(&tx);
            if !matches!(self.server_roles.get(&tx), Some(ServerRole::ACallInvite(_)))
                || status >= 300
            {
                self.server_roles.remove(&tx);
            }
        }
    }

    /// Sizes of every per-call table, for leak tests: all zero once calls and their
    /// transactions are over.
    #[cfg(test)]
    pub(crate) fn table_sizes(&self) -> [usize; 7] {
        let (client_tx, server_tx) = self.transactions.len();
        [
            self.calls.len(),
            self.dialogs.len(),
            self.server_roles.len(),
            self.server_peers.len(),
            self.client_roles.len() + self.deferred_byes.len(),
            self.endpoint_calls.len(),
            client_tx + server_tx,
        ]
    }

    // ----- console ------------------------------------------------------------------------

    /// Runs one console / API command. The same dispatcher will serve REST.
    pub fn execute(&mut self, now: Now, line: &str) -> Result<String, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let result = match words.as_slice() {
            ["status"] => Ok(self.status_text(now)),
            ["show", "calls"] => Ok(self.calls_text(now)),
            ["show", "channels"] => Ok(self.channels_text(now)),
            ["show", "registrations"] => Ok(self.registrations_text(now)),
            ["show", "gateways"] | ["sofia", "status"] => Ok(self.gateways_text(now)),
            ["hupall"] => {
                let count = self.hang_up_all(now, "MANAGER_REQUEST");
                Ok(format!("hung up {count} calls\n"))
            }
            ["kill", uuid] | ["uuid_kill", uuid] => match self.call_by_uuid(uuid) {
                Some(key) => {
                    self.hang_up(now, key, "MANAGER_REQUEST", "system");
                    Ok(format!("killed {uuid}\n"))
                }
                None => Err(format!("no such call: {uuid}")),
            },
            ["tap", action, uuid, module] => self.tap_command(action, uuid, module),
            ["uuid_exec", uuid, application, ..] => {
                let data = after_words(line, 3);
                self.uuid_exec(now, uuid, application, data)
            }
            ["uuid_exec", ..] => Err("usage: uuid_exec <uuid> <application> [data]".into()),
            ["uuid_break", uuid] => self.uuid_break(now, uuid),
            ["uuid_bridge_cancel", uuid] => self.uuid_bridge_cancel(now, uuid),
            ["uuid_bridge_add", uuid, target] => self.uuid_bridge_add(now, uuid, target),
            ["uuid_bridge_remove", uuid, target] => self.uuid_bridge_remove(now, uuid, target),
            ["show", "queue_log"] => self.queue_log_text(20),
            ["show", "queue_log", count] => match count.parse::<usize>() {
                Ok(count) => self.queue_log_text(count.min(10_000)),
                Err(_) => Err("usage: show queue_log [count]".into()),
            },
            ["originate", ..] => {
                let args = line.trim_start()["originate".len()..].trim();
                self.originate_command(now, args)
            }
            ["record", action, uuid] => {
                let Some(key) = self.call_by_uuid(uuid) else {
                    return Err(format!("no such call: {uuid}"));
                };
                let caller = self
                    .calls
                    .get(&key)
                    .and_then(|c| c.media.endpoint(Side::A))
                    .map(|e| e.id);
                match (*action, caller) {
                    ("start" | "stereo", _) => self
                        .start_recording(key, Some(switchyard_recording::Layout::Stereo))
                        .map(|path| format!("recording {uuid} to {path}\n")),
                    ("mono", _) => self
                        .start_recording(key, Some(switchyard_recording::Layout::Mono))
                        .map(|path| format!("recording {uuid} to {path}\n")),
                    ("pause" | "resume" | "stop", _)
                        if !self.calls.get(&key).is_some_and(|c| c.recording_active) =>
                    {
                        Err(format!("{uuid} is not being recorded"))
                    }
                    ("pause" | "resume", Some(ep)) => {
                        self.media.pause_recording(ep, *action == "pause");
                        Ok(format!("recording of {uuid}: {action}d\n"))
                    }
                    ("stop", Some(ep)) => {
                        self.media.stop_recording(ep);
                        if let Some(c) = self.calls.get_mut(&key) {
                            // The file stays in the CDR: it exists.
                            c.recording_active = false;
                        }
                        Ok(format!("recording of {uuid} stopped\n"))
                    }
                    _ => Err("usage: record start|mono|pause|resume|stop <uuid>".into()),
                }
            }
            ["dtmf", uuid, digits] => {
                let Some(key) = self.call_by_uuid(uuid) else {
                    return Err(format!("no such call: {uuid}"));
                };
                let endpoint = self
                    .calls
                    .get(&key)
                    .and_then(|c| c.media.endpoint(Side::A))
                    .map(|e| e.id);
                let Some(call) = self.calls.get(&key) else {
                    return Err(format!("no such call: {uuid}"));
                };
                if !digits
                    .chars()
                    .all(|c| matches!(c, '0'..='9' | '*' | '#' | 'A'..='D'))
                {
                    return Err("usage: dtmf <uuid> <digits 0-9*#A-D>".into());
                }
                let own_media = call.terminated || call.a_sdp.is_some();
                if call.state != CallState::Answered || !own_media {
                    return Err(format!(
                        "{uuid}: its media is relayed, not terminated here; DTMF goes only into terminated calls"
                    ));
                }
                let mode = call.a_plan.as_ref().map_or(LegDtmf::Rfc4733, |p| p.dtmf);
                match (mode, endpoint) {
                    (LegDtmf::Info, _) => {
                        for digit in digits.chars() {
                            let body = media_plan::dtmf_info_body(digit, 100);
                            self.send_in_dialog(
                                now,
                                key,
                                Side::A,
                                Method::Info,
                                Some(("application/dtmf-relay", body.as_bytes())),
                            );
                        }
                    }
                    (mode, Some(ep)) => {
                        self.media
                            .send_dtmf(ep, digits, 100, mode == LegDtmf::Inband)
                    }
                    (_, None) => return Err(format!("{uuid} has no media")),
                }
                Ok(format!("sending {digits} to the caller of {uuid}\n"))
            }
            ["conference", room, action, uuid] => self.conference_command(room, action, uuid),
            ["show", "conferences"] => {
                let mut out = format!("{} conferences\n", self.rooms.len());
                for (name, room) in &self.rooms {
                    let _ = writeln!(out, "{name} {} members", room.members);
                    for call in self.calls.values() {
                        if call.app.as_ref() == Some(&App::Conference(name.clone())) {
                            let (muted, deaf) = call.member;
                            let _ = writeln!(
                                out,
                                "  {} {}{}{}",
                                call.uuid,
                                call.caller,
                                if muted { " muted" } else { "" },
                                if deaf { " deaf" } else { "" }
                            );
                        }
                    }
                }
                Ok(out)
            }
            ["reload", "dialplan"] | ["reloadxml"] => self.reload_dialplan(),
            ["transfer", uuid, target] | ["uuid_transfer", uuid, target] => {
                self.console_transfer(now, uuid, target, None)
            }
            ["transfer", uuid, target, context] | ["uuid_transfer", uuid, target, context] => {
                self.console_transfer(now, uuid, target, Some(context))
            }
            ["shutdown"] => {
                let calls = self.calls.len();
                self.begin_shutdown(now);
                Ok(format!(
                    "shutting down: refusing new calls, waiting for {calls} calls\n"
                ))
            }
            ["help"] | [] => {
                let mut out = format!("commands: {}\n", COMMANDS.join(", "));
                for (module, command, help) in self.modules.commands() {
                    let _ = writeln!(out, "{command} ({module}): {help}");
                }
                Ok(out)
            }
            _ => self
                .module_command(now, &words, line)
                .unwrap_or_else(|| Err(format!("unknown command: {line} (try `help`)"))),
        };
        self.drain_transaction_events(now);
        result
    }

    /// `conference ROOM mute|unmute|deaf|undeaf UUID`.
    fn conference_command(
        &mut self,
        room: &str,
        action: &str,
        uuid: &str,
    ) -> Result<String, String> {
        let Some(id) = self.rooms.get(room).map(|r| r.id) else {
            return Err(format!("no such conference: {room}"));
        };
        let key = self
            .call_by_uuid(uuid)
            .ok_or_else(|| format!("no such call: {uuid}"))?;
        let call = self.calls.get_mut(&key).expect("found above");
        if call.app != Some(App::Conference(room.to_owned())) {
            return Err(format!("{uuid} is not in conference {room}"));
        }
        let (muted, deaf) = &mut call.member;
        match action {
            "mute" => *muted = true,
            "unmute" => *muted = false,
            "deaf" => *deaf = true,
            "undeaf" => *deaf = false,
            _ => return Err("usage: conference ROOM mute|unmute|deaf|undeaf UUID".into()),
        }
        let (muted, deaf) = call.member;
        if let Some(a) = call.media.endpoint(Side::A) {
            self.media.set_conference_member(id, a.id, muted, deaf);
        }
        Ok(format!("{uuid} in {room}: muted {muted}, deaf {deaf}\n"))
    }

    /// Milliseconds on the monotonic clock since the switch started: the time modules see.
    pub(super) fn now_ms(&self, now: Now) -> u64 {
        u64::try_from(
            now.mono
                .saturating_duration_since(self.started.mono)
                .as_millis(),
        )
        .unwrap_or(u64::MAX)
    }

    /// `show queue_log [N]`: the latest N rows, oldest first (as a log reads).
    fn queue_log_text(&self, count: usize) -> Result<String, String> {
        let mut rows = self
            .store
            .recent_queue_log(count)
            .map_err(|e| e.to_string())?;
        rows.reverse();
        let mut out = format!("{} queue log rows\n", rows.len());
        let or_dash = |s: &str| {
            if s.is_empty() {
                "-".to_owned()
            } else {
                s.to_owned()
            }
        };
        for row in rows {
            let _ = writeln!(
                out,
                "{} {} {} {} {} {}",
                row.at_unix_ms,
                or_dash(&row.queue),
                or_dash(&row.call_uuid),
                or_dash(&row.agent),
                row.event,
                row.data
            );
        }
        Ok(out)
    }

    fn call_by_uuid(&self, uuid: &str) -> Option<CallKey> {
        self.calls
            .iter()
            .find(|(_, c)| c.uuid == uuid)
            .map(|(k, _)| *k)
    }

    fn status_text(&self, now: Now) -> String {
        let uptime = now
            .mono
            .saturating_duration_since(self.started.mono)
            .as_secs();
        let (client_tx, server_tx) = self.transactions.len();
        let state = match self.lifecycle {
            Lifecycle::Running => "running",
            Lifecycle::Draining { .. } => "shutting down",
            Lifecycle::Stopped => "stopped",
        };
        format!(
            "Switchyard {} {state}, up {}d {:02}:{:02}:{:02}\n\
             calls: {} active, {} since start, {} failed\n\
             channels: {}\n\
             registrations: {} bindings, {} REGISTERs accepted\n\
             transactions: {client_tx} client, {server_tx} server\n\
             auth: {} failures, {} sources blocked\n\
             malformed messages: {}\n\
             calls refused while overloaded: {}\n",
            env!("CARGO_PKG_VERSION"),
            uptime / 86400,
            uptime % 86400 / 3600,
            uptime % 3600 / 60,
            uptime % 60,
            self.calls.len(),
            self.counters.calls_total,
            self.counters.calls_failed,
            self.media.active_endpoints(),
            self.registrar.len(),
            self.counters.registrations,
            self.counters.auth_failures,
            self.guard.blocked_sources(now.mono),
            self.counters.malformed,
            self.counters.shed,
        )
    }

    fn calls_text(&self, now: Now) -> String {
        let mut calls: Vec<&Call> = self.calls.values().collect();
        calls.sort_by_key(|c| c.start.unix_ms);
        let mut out = format!("{} calls\n", calls.len());
        for call in calls {
            let state = match call.state {
                CallState::Routing => "ringing",
                CallState::Answered => "answered",
            };
            let age = (now.unix_ms - call.start.unix_ms).max(0) / 1000;
            let script = call.script.as_ref().map_or("", |s| s.current());
            let _ = writeln!(
                out,
                "{} {} -> {} ({}) {state} {script} {age}s a:{}",
                call.uuid, call.caller, call.destination, call.callee, call.a.dialog.call_id
            );
        }
        out
    }

    fn channels_text(&self, _now: Now) -> String {
        let mut out = String::new();
        let mut lines = 0;
        for call in self.calls.values() {
            let a_direction = if call.originate.is_some() {
                "outbound"
            } else {
                "inbound"
            };
            let mut legs: Vec<(Side, &Dialog, &'static str)> =
                vec![(Side::A, &call.a.dialog, a_direction)];
            for (i, fork) in call.forks.iter().enumerate() {
                if fork.state != ForkState::Failed {
                    legs.push((Side::B(i), &fork.dialog, "outbound"));
                }
            }
            for (side, dialog, direction) in legs {
                let stats = call
                    .media
                    .endpoint(side)
                    .and_then(|ep| self.media.stats(ep.id).map(|s| (ep.local, s)));
                let media = match stats {
                    Some((local, s)) => {
                        let q = &s.quality;
                        let mut text = format!(
                            "rtp {local} <-> {} in {} out {} codec {} {}",
                            s.remote.map_or("-".to_owned(), |r| r.to_string()),
                            s.packets_in,
                            s.packets_out,
                            q.codec.as_deref().unwrap_or("-"),
                            if q.terminated {
                                "terminated"
                            } else {
                                "relayed"
                            },
                        );
                        if q.packets_received > 0 {
                            let _ = write!(
                                text,
                                " loss {:.1}% jitter {:.1}ms",
                                q.loss_percent, q.jitter_ms
                            );
                            if let Some(rtt) = q.rtt_ms {
                                let _ = write!(text, " rtt {rtt:.1}ms");
                            }
                            if let Some(buffer) = q.jitter_buffer_ms {
                                let _ = write!(text, " jb {buffer:.0}ms");
                            }
                            if let Some(mos) = media_plan::mos(q) {
                                let _ = write!(text, " mos {mos:.2}");
                            }
                        }
                        text
                    }
                    None => "no media".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "{} {direction} {} {} {}",
                    call.uuid,
                    dialog.call_id,
                    crate::transport::format_peer(&dialog.peer),
                    media
                );
                lines += 1;
            }
        }
        format!("{lines} channels\n{out}")
    }

    fn registrations_text(&self, now: Now) -> String {
        let mut rows: Vec<(&str, &crate::registrar::ContactBinding)> =
            self.registrar.all().collect();
        rows.sort_by(|a, b| a.0.cmp(b.0).then(a.1.contact.cmp(&b.1.contact)));
        let mut out = String::new();
        let mut count = 0;
        for (user, binding) in rows {
            let left = binding.expires_unix - now.unix_secs();
            if left <= 0 {
                continue;
            }
            count += 1;
            let _ = writeln!(
                out,
                "{user} {} via {} expires {left}s {}",
                binding.contact,
                crate::transport::format_peer(&binding.flow),
                binding.user_agent.as_deref().unwrap_or("")
            );
        }
        format!("{count} registrations\n{out}")
    }
}

/// Console commands, for `help` and tab completion.
pub const COMMANDS: &[&str] = &[
    "status",
    "show calls",
    "show channels",
    "show registrations",
    "show gateways",
    "hupall",
    "kill",
    "record",
    "tap",
    "uuid_exec",
    "uuid_break",
    "uuid_bridge_cancel",
    "uuid_bridge_add",
    "uuid_bridge_remove",
    "dtmf",
    "show conferences",
    "conference",
    "reload dialplan",
    "reloadxml",
    "show modules",
    "show queue_log",
    "load",
    "unload",
    "reload",
    "transfer",
    "originate",
    "shutdown",
    "help",
];

/// Whether the leg received any RTP: loss and jitter of a silent leg mean nothing.
fn received(stats: &switchyard_media::EndpointStats) -> bool {
    stats.quality.packets_received > 0
}

/// 6xx beats everything, then the most specific 4xx (RFC 3261 §16.7 step 6, simplified).
fn best_failure(statuses: impl Iterator<Item = u16>) -> u16 {
    let statuses: Vec<u16> = statuses.collect();
    if let Some(&global) = statuses.iter().find(|s| (600..700).contains(*s)) {
        return global;
    }
    for preferred in [486, 603, 404, 488] {
        if statuses.contains(&preferred) {
            return preferred;
        }
    }
    statuses.into_iter().min().unwrap_or(480)
}

fn first_contact_uri(msg: &Message) -> Option<String> {
    match msg.contacts().ok()?.first()? {
        switchyard_sip::Contact::Address(address) => Some(address.uri.raw.to_owned()),
        switchyard_sip::Contact::Star => None,
    }
}

/// RFC 3261 §19.1.5: headers in a Contact URI are not part of a Request-URI.
/// RFC 3261 §25.1: a caller id (from config or a variable) made safe for a URI's user part.
fn escape_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for byte in user.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// What follows the first `n` words of a console line, untouched (an application's data
/// keeps its own spacing).
fn after_words(line: &str, n: usize) -> &str {
    let mut rest = line.trim_start();
    for _ in 0..n {
        rest = rest
            .find(char::is_whitespace)
            .map_or("", |end| rest[end..].trim_start());
    }
    rest.trim_end()
}

fn strip_uri_headers(uri: &str) -> &str {
    uri.split('?').next().unwrap_or(uri)
}

/// Our own messages always parse; if one ever does not, that is a bug worth a loud log rather
/// than a panic in the middle of every other call.
fn parse_own(bytes: Bytes) -> Option<Message> {
    match Message::parse_datagram(bytes.clone()) {
        Ok(message) => Some(message),
        Err(error) => {
            tracing::error!(%error, message = %String::from_utf8_lossy(&bytes), "built an unparseable SIP message");
            None
        }
    }
}

fn new_tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn new_branch() -> String {
    format!(
        "z9hG4bK{:016x}{:08x}",
        rand::random::<u64>(),
        rand::random::<u32>()
    )
}

fn new_uuid() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_wins_over_unavailable_and_global_failures_win_over_all() {
        assert_eq!(best_failure([480, 486].into_iter()), 486);
        assert_eq!(best_failure([486, 603].into_iter()), 603);
        assert_eq!(best_failure([408, 503].into_iter()), 408);
        assert_eq!(best_failure(std::iter::empty()), 480);
    }

    #[test]
    fn console_data_keeps_its_spacing() {
        assert_eq!(
            after_words("  uuid_exec abc playback  a!b  c ", 3),
            "a!b  c"
        );
        assert_eq!(after_words("uuid_exec abc park", 3), "");
        assert_eq!(after_words("uuid_exec", 3), "");
    }

    #[test]
    fn uuids_look_like_uuids() {
        let uuid = new_uuid();
        assert_eq!(uuid.len(), 36);
        assert_eq!(uuid.matches('-').count(), 4);
        assert_ne!(uuid, new_uuid());
    }
}
