//! One media thread: a mio reactor that owns its endpoints' sockets and relays packets.
//!
//! Tokens: endpoint key `k` has RTP on token `2k` and RTCP on `2k + 1`; the waker has the
//! last token. The table of endpoints is a Vec indexed by key, so a packet finds its endpoint
//! and its bridge peer by index, without hashing or locking.
//!
//! Fairness: mio is edge-triggered, so a readable socket must be read until it would block or
//! it is never reported again. Reading a busy socket to the end could take forever (a flood, or
//! a relay loop), starving every other endpoint, the commands and the RTP timeouts of this
//! thread. So one visit reads at most [`READ_BUDGET`] datagrams; a socket left with data goes
//! on the backlog, and the next poll does not wait, then the backlog is visited again.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime};

use mio::net::UdpSocket;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use switchyard_dsp::play::Player;
use switchyard_recording::RecordingSink;
use switchyard_rtp::rtcp::{self as rtcp_codec, RtcpPacket, RttEstimator};
use switchyard_rtp::stats::ReceiveStats;
use timerfd::{ClockId, SetTimeFlags, TimerFd, TimerState};

use crate::graph::{BridgeNode, ConferenceNode, Member, Node, RateBridge, RecorderTap, SoloNode};
use crate::leg::{DtmfOptions, LegCodec, LegMedia, LegNotice};
use crate::rtp::{RtpHeader, is_rtcp};
use crate::tap::{FrameTap, TapProducer};
use crate::{ConferenceId, Counters, EndpointId, LegQuality, MediaEvent, RelayGuard};

pub(crate) const WAKER: Token = Token(usize::MAX);
/// The 20 ms media clock (a timerfd): terminated legs send, mix and record on it.
const TICK: Token = Token(usize::MAX - 1);

/// The packet time of everything we generate (RFC 3551 §4.5: 20 ms is the default for the
/// voice codecs we speak).
const FRAME: Duration = Duration::from_millis(20);

/// The largest 20 ms frame we handle: 48 kHz.
const MAX_FRAME: usize = 960;

/// Larger than any RTP packet on an Ethernet path; longer datagrams are truncated and then
/// relayed truncated, which is what a 1500-byte MTU would have done to them anyway.
const BUFFER_SIZE: usize = 2048;

/// Datagrams read from one socket per visit: enough to amortise the poll (a 20 ms frame of a
/// busy endpoint is one or two), few enough that one flooded socket delays the others by
/// well under a millisecond.
const READ_BUDGET: usize = 64;

pub(crate) enum Command {
    Add {
        id: EndpointId,
        rtp: UdpSocket,
        rtcp: UdpSocket,
        counters: Arc<Counters>,
    },
    SetRemote(EndpointId, SocketAddr),
    Bridge(EndpointId, EndpointId),
    Echo(EndpointId),
    Hold(EndpointId, bool),
    Release(EndpointId),
    /// Decode (and be ready to encode) this leg's media: needed for any node.
    Terminate {
        id: EndpointId,
        codec: LegCodec,
        dtmf: DtmfOptions,
        seed: u64,
    },
    /// The codec's RTP clock of a relayed leg, for its jitter statistic, and its name.
    DescribeRelay {
        id: EndpointId,
        clock_rate: u32,
        payload_type: u8,
        label: String,
    },
    /// A terminated bridge: frames cross, resampled and re-encoded.
    Connect(EndpointId, EndpointId),
    /// A terminated leg on its own (playback, tones).
    Solo(EndpointId),
    Play(EndpointId, Box<Player>),
    StopPlayback(EndpointId),
    SendDtmf {
        id: EndpointId,
        digits: String,
        duration_ms: u32,
        inband: bool,
    },
    /// Records the node of `caller` (a bridge, relayed or terminated, or a solo leg).
    Record {
        caller: EndpointId,
        sink: Box<RecordingSink>,
        rate: u32,
    },
    PauseRecording(EndpointId, bool),
    StopRecording(EndpointId),
    Tap {
        caller: EndpointId,
        tap: Box<TapProducer>,
    },
    Untap(EndpointId),
    ConferenceCreate {
        conference: ConferenceId,
        rate: u32,
    },
    ConferenceJoin {
        conference: ConferenceId,
        id: EndpointId,
        muted: bool,
        deaf: bool,
        tone: Option<Box<Player>>,
    },
    ConferenceMember {
        conference: ConferenceId,
        id: EndpointId,
        muted: bool,
        deaf: bool,
    },
    ConferenceLeave {
        conference: ConferenceId,
        id: EndpointId,
        tone: Option<Box<Player>>,
    },
    ConferenceClose(ConferenceId),
    Shutdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Allocated, not yet connected: packets are counted and dropped, and latch nothing.
    Idle,
    Echo,
    /// Relayed to the slot with this key.
    Bridged(usize),
    /// Terminated: packets go to the leg's jitter buffer, and its node decides what is sent.
    Terminated,
}

/// What a relayed leg tells us about its quality: our own receive statistics of its RTP, and
/// the round trip from its RTCP (an SR from the other side passed towards it, and its RR about
/// that SR came back: RFC 3550 §6.4.1 through the relay).
struct RelayQuality {
    stats: ReceiveStats,
    /// SRs relayed out of this slot towards its far end.
    rtt: RttEstimator,
    rtt_ms: Option<f64>,
    label: Option<String>,
    packets: bool,
    /// The voice codec's payload type: other packets (RFC 4733 events, comfort noise) count
    /// for loss but not for jitter.
    voice_payload_type: Option<u8>,
}

impl RelayQuality {
    fn new(clock_rate: u32) -> RelayQuality {
        RelayQuality {
            stats: ReceiveStats::new(clock_rate),
            rtt: RttEstimator::new(),
            rtt_ms: None,
            label: None,
            packets: false,
            voice_payload_type: None,
        }
    }

    /// Writes the relayed leg's quality over `quality` (the published one), keeping its codec
    /// label: the housekeeping tick that publishes it must not allocate.
    fn snapshot(&self, quality: &mut LegQuality) {
        let s = self.stats.snapshot();
        let codec = match &self.label {
            Some(label) => crate::reuse_label(quality.codec.take(), label),
            None => None,
        };
        *quality = LegQuality {
            codec,
            packets_received: s.packets,
            packets_lost: s.lost,
            loss_percent: s.loss_fraction_total * 100.0,
            jitter_ms: s.jitter_ms,
            rtt_ms: self.rtt_ms,
            jitter_buffer_ms: None,
            terminated: false,
        };
    }
}

struct Slot {
    generation: u32,
    rtp: UdpSocket,
    rtcp: UdpSocket,
    counters: Arc<Counters>,
    /// Where RTP for the far end goes.
    remote: Option<SocketAddr>,
    /// Where RTCP goes: remote port + 1 (RFC 3550 §11) until RTCP arrives from elsewhere.
    rtcp_remote: Option<SocketAddr>,
    /// The addresses of the last set_remote (the SDP): packets from them are always accepted.
    sdp_remote: Option<SocketAddr>,
    sdp_rtcp_remote: Option<SocketAddr>,
    /// RTP has been accepted since the remote was last set, so the remote is its source and
    /// other sources are refused.
    latched: bool,
    rtcp_latched: bool,
    /// The RTP [0] / RTCP [1] socket is on the reactor's backlog: read to its budget with data
    /// possibly left. Keeps a token on the backlog at most once.
    backlog: [bool; 2],
    mode: Mode,
    held: bool,
    /// RTP arrived since the last timeout tick: a flag, so the packet path reads no clock.
    heard: bool,
    last_heard: Instant,
    timed_out: bool,
    /// The decoding/encoding side, once the leg is terminated or tapped.
    leg: Option<Box<LegMedia>>,
    /// The graph node this leg belongs to (index in `MediaReactor::nodes`).
    node: Option<usize>,
    quality: RelayQuality,
}

impl Slot {
    fn is_timing(&self) -> bool {
        self.mode != Mode::Idle && !self.held
    }

    fn arm_timeout(&mut self, now: Instant) {
        self.last_heard = now;
        self.heard = false;
        self.timed_out = false;
    }

    /// Latching of RTP (see `MediaEngine::set_remote`): whether RTP from `source` is accepted.
    fn accept_rtp(&mut self, source: SocketAddr, guard: &RelayGuard) -> bool {
        if self.latched && self.remote == Some(source) {
            return true;
        }
        // The SDP address always wins; another source only while nothing has latched since
        // the SDP (a phone behind NAT, RFC 4961). Later strangers are impostors ("RTP bleed").
        if self.latched && self.sdp_remote != Some(source) {
            return false;
        }
        self.latched = true;
        if self.remote != Some(source) {
            tracing::info!(from = ?self.remote, to = %source, local = ?self.rtp.local_addr().ok(), "RTP latched");
            self.remote = Some(source);
            if !self.rtcp_latched {
                self.rtcp_remote = source
                    .port()
                    .checked_add(1)
                    .map(|port| SocketAddr::new(source.ip(), port))
                    .filter(|rtcp| !guard.refuses(*rtcp));
            }
        }
        self.counters.set_remote(Some(source), true);
        true
    }

    /// The same latching for RTCP, on its own: RTCP may come from another port than port + 1.
    fn accept_rtcp(&mut self, source: SocketAddr) -> bool {
        if self.rtcp_latched && self.rtcp_remote == Some(source) {
            return true;
        }
        if self.rtcp_latched && self.sdp_rtcp_remote != Some(source) {
            return false;
        }
        self.rtcp_latched = true;
        self.rtcp_remote = Some(source);
        true
    }
}

pub(crate) struct MediaReactor {
    thread: u16,
    poll: Poll,
    commands: mpsc::Receiver<Command>,
    /// Set by senders that have woken us and not yet been drained; see `MediaEngine::send`.
    wake_pending: Arc<AtomicBool>,
    slots: Vec<Option<Slot>>,
    buffer: Box<[u8; BUFFER_SIZE]>,
    rtp_timeout: Duration,
    tick: Duration,
    guard: RelayGuard,
    notify: Arc<dyn Fn(MediaEvent) + Send + Sync>,
    /// Tokens read to their budget with data possibly left, to visit after the next poll
    /// (which then does not wait). Each token at most once (`Slot::backlog`).
    backlog: Vec<usize>,
    /// The backlog being visited; swapped with `backlog` each round so neither allocates.
    revisit: Vec<usize>,
    nodes: Vec<Option<Node>>,
    /// Conference id key -> node index.
    conferences: std::collections::HashMap<u32, usize>,
    ticker: TimerFd,
    ticking: bool,
    frames: TickFrames,
    /// What legs noticed during a round, reported after it.
    notices: Vec<(EndpointId, LegNotice)>,
}

/// Scratch buffers of the tick, allocated once.
struct TickFrames {
    a: Box<[i16; MAX_FRAME]>,
    b: Box<[i16; MAX_FRAME]>,
    out: Box<[i16; MAX_FRAME]>,
    packet: Box<[u8; BUFFER_SIZE]>,
    leg_notices: Vec<LegNotice>,
}

impl MediaReactor {
    pub(crate) fn new(
        thread: u16,
        poll: Poll,
        commands: mpsc::Receiver<Command>,
        wake_pending: Arc<AtomicBool>,
        rtp_timeout: Duration,
        guard: RelayGuard,
        notify: Arc<dyn Fn(MediaEvent) + Send + Sync>,
    ) -> MediaReactor {
        // Check silence every second, or more often for short test timeouts: the event fires
        // between rtp_timeout and rtp_timeout + tick after the last packet.
        let tick = (rtp_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        MediaReactor {
            thread,
            poll,
            commands,
            wake_pending,
            slots: Vec::new(),
            buffer: Box::new([0; BUFFER_SIZE]),
            rtp_timeout,
            tick,
            guard,
            notify,
            backlog: Vec::new(),
            revisit: Vec::new(),
            nodes: Vec::new(),
            conferences: std::collections::HashMap::new(),
            ticker: TimerFd::new_custom(ClockId::Monotonic, true, true)
                .expect("a timerfd for the media clock"),
            ticking: false,
            frames: TickFrames {
                a: Box::new([0; MAX_FRAME]),
                b: Box::new([0; MAX_FRAME]),
                out: Box::new([0; MAX_FRAME]),
                packet: Box::new([0; BUFFER_SIZE]),
                leg_notices: Vec::with_capacity(16),
            },
            notices: Vec::with_capacity(16),
        }
    }

    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let fd = self.ticker.as_raw_fd();
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut SourceFd(&fd), TICK, Interest::READABLE)
        {
            tracing::error!(error = %e, "cannot register the media clock; terminated media will not run");
        }
        #[allow(clippy::disallowed_methods)] // the reactor owns the clock
        let mut next_tick = Instant::now() + self.tick;
        while self.turn(&mut events, &mut next_tick) {}
    }

    /// One round: the timeout tick when due, one poll, the commands, the sockets reported
    /// ready, then the backlog. False when the thread must stop.
    fn turn(&mut self, events: &mut Events, next_tick: &mut Instant) -> bool {
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        if now >= *next_tick {
            self.check_timeouts(now);
            *next_tick = now + self.tick;
        }
        // A backlog gets no new readiness event: look for others without waiting, then visit
        // it again.
        let timeout = if self.backlog.is_empty() {
            *next_tick - now
        } else {
            Duration::ZERO
        };
        match self.poll.poll(events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => return true,
            Err(e) => {
                tracing::error!(thread = self.thread, error = %e, "media poll failed; media thread stops");
                return false;
            }
        }
        // Commands first: a bridge requested before a packet was sent applies to it.
        if !self.drain_commands() {
            return false;
        }
        // One clock read per round: the arrival time of every packet read in it.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        std::mem::swap(&mut self.backlog, &mut self.revisit);
        let mut ticks = 0;
        for event in events.iter() {
            match event.token() {
                WAKER => {}
                TICK => ticks = self.ticker.read(),
                token => self.receive(token.0, false, now),
            }
        }
        for index in 0..self.revisit.len() {
            let token = self.revisit[index];
            self.receive(token, true, now);
        }
        self.revisit.clear();
        if ticks > 0 {
            // Late by whole frames (a stall): catch up a few so streams keep their rate, and
            // give up on the rest rather than burst.
            #[allow(clippy::disallowed_methods)]
            let wall = SystemTime::now();
            for _ in 0..ticks.min(3) {
                self.tick(now, wall);
            }
        }
        self.report_notices();
        true
    }

    fn report_notices(&mut self) {
        for (endpoint, notice) in self.notices.drain(..) {
            let event = match notice {
                LegNotice::Dtmf {
                    digit,
                    duration_ms,
                    source,
                } => MediaEvent::Dtmf {
                    endpoint,
                    digit,
                    duration_ms,
                    source,
                },
                LegNotice::PlaybackDone => MediaEvent::PlaybackDone { endpoint },
            };
            (self.notify)(event);
        }
    }

    fn endpoint_of(&self, key: usize) -> Option<EndpointId> {
        let slot = self.slots.get(key)?.as_ref()?;
        Some(EndpointId {
            thread: self.thread,
            key: key as u32,
            generation: slot.generation,
        })
    }

    /// Starts or stops the 20 ms clock: it runs while any node exists.
    fn update_ticker(&mut self) {
        let wanted = self.nodes.iter().any(Option::is_some);
        if wanted == self.ticking {
            return;
        }
        let state = if wanted {
            TimerState::Periodic {
                current: FRAME,
                interval: FRAME,
            }
        } else {
            TimerState::Disarmed
        };
        self.ticker.set_state(state, SetTimeFlags::Default);
        self.ticking = wanted;
    }

    /// One 20 ms step of every node, then RTCP for terminated legs.
    fn tick(&mut self, now: Instant, wall: SystemTime) {
        for index in 0..self.nodes.len() {
            let Some(mut node) = self.nodes[index].take() else {
                continue;
            };
            match &mut node {
                Node::Bridge(bridge) => self.tick_bridge(bridge, now),
                Node::Solo(solo) => self.tick_solo(solo, now),
                Node::Conference(conference) => self.tick_conference(conference, now),
            }
            self.nodes[index] = Some(node);
        }
        for key in 0..self.slots.len() {
            let Some(Some(slot)) = self.slots.get_mut(key) else {
                continue;
            };
            if slot.mode != Mode::Terminated {
                continue;
            }
            let (Some(leg), Some(destination)) = (&mut slot.leg, slot.rtcp_remote) else {
                continue;
            };
            if let Some(len) = leg.poll_rtcp(now, wall, &mut self.frames.packet[..]) {
                send(
                    &slot.rtcp,
                    &self.frames.packet[..len],
                    destination,
                    &slot.counters,
                );
            }
        }
    }

    /// Reads the next frame of leg `key` into `out`; returns its length (0 without a leg).
    fn read_leg(
        slots: &mut [Option<Slot>],
        key: usize,
        now: Instant,
        out: &mut [i16],
        notices: &mut Vec<LegNotice>,
    ) -> usize {
        let Some(Some(slot)) = slots.get_mut(key) else {
            return 0;
        };
        let Some(leg) = &mut slot.leg else { return 0 };
        leg.read_frame(now, out, notices);
        leg.frame_samples()
    }

    /// Encodes `pcm` for leg `key` and sends it to the far end.
    fn write_leg(
        slots: &mut [Option<Slot>],
        key: usize,
        pcm: &mut [i16],
        packet: &mut [u8],
        notices: &mut Vec<LegNotice>,
    ) {
        let Some(Some(slot)) = slots.get_mut(key) else {
            return;
        };
        let Some(leg) = &mut slot.leg else { return };
        // Held: the stream's clock, prompts and queued digits go on, nothing is sent.
        let Some(len) = leg.write_frame(pcm, packet, notices) else {
            return;
        };
        if slot.held {
            leg.mark_talkspurt();
            return;
        }
        if let Some(destination) = slot.remote {
            send(&slot.rtp, &packet[..len], destination, &slot.counters);
        }
    }

    fn collect_notices(&mut self, key: usize) {
        if self.frames.leg_notices.is_empty() {
            return;
        }
        if let Some(endpoint) = self.endpoint_of(key) {
            for notice in self.frames.leg_notices.drain(..) {
                self.notices.push((endpoint, notice));
            }
        }
        self.frames.leg_notices.clear();
    }

    fn tick_bridge(&mut self, bridge: &mut BridgeNode, now: Instant) {
        let f = &mut self.frames;
        let la = Self::read_leg(
            &mut self.slots,
            bridge.a,
            now,
            &mut f.a[..],
            &mut f.leg_notices,
        );
        self.collect_notices(bridge.a);
        let f = &mut self.frames;
        let lb = Self::read_leg(
            &mut self.slots,
            bridge.b,
            now,
            &mut f.b[..],
            &mut f.leg_notices,
        );
        self.collect_notices(bridge.b);
        if la == 0 || lb == 0 {
            return;
        }
        let f = &mut self.frames;
        if let Some(recorder) = &mut bridge.recorder {
            recorder.push(&f.a[..la], &f.b[..lb]);
        }
        if let Some(tap) = &mut bridge.frame_tap {
            tap.push(&f.a[..la], &f.b[..lb]);
        }
        if !bridge.terminated {
            return;
        }
        let to_b = bridge.a_to_b.convert(&f.a[..la]);
        let n = to_b.len();
        f.out[..n].copy_from_slice(to_b);
        Self::write_leg(
            &mut self.slots,
            bridge.b,
            &mut f.out[..n],
            &mut f.packet[..],
            &mut f.leg_notices,
        );
        self.collect_notices(bridge.b);
        let f = &mut self.frames;
        let to_a = bridge.b_to_a.convert(&f.b[..lb]);
        let n = to_a.len();
        f.out[..n].copy_from_slice(to_a);
        Self::write_leg(
            &mut self.slots,
            bridge.a,
            &mut f.out[..n],
            &mut f.packet[..],
            &mut f.leg_notices,
        );
        self.collect_notices(bridge.a);
    }

    fn tick_solo(&mut self, solo: &mut SoloNode, now: Instant) {
        let f = &mut self.frames;
        let len = Self::read_leg(
            &mut self.slots,
            solo.leg,
            now,
            &mut f.a[..],
            &mut f.leg_notices,
        );
        self.collect_notices(solo.leg);
        if len == 0 {
            return;
        }
        let f = &mut self.frames;
        f.out[..len].fill(0);
        Self::write_leg(
            &mut self.slots,
            solo.leg,
            &mut f.out[..len],
            &mut f.packet[..],
            &mut f.leg_notices,
        );
        if let Some(recorder) = &mut solo.recorder {
            // The caller's words on the left, what we played on the right.
            recorder.push(&f.a[..len], &f.out[..len]);
        }
        if let Some(tap) = &mut solo.frame_tap {
            tap.push(&f.a[..len], &f.out[..len]);
        }
        self.collect_notices(solo.leg);
    }

    fn tick_conference(&mut self, conference: &mut ConferenceNode, now: Instant) {
        let frame = conference.frame();
        for index in 0..conference.members.len() {
            let member = &mut conference.members[index];
            let f = &mut self.frames;
            let len = Self::read_leg(
                &mut self.slots,
                member.leg,
                now,
                &mut f.a[..],
                &mut f.leg_notices,
            );
            let input = &mut conference.inputs[index * frame..(index + 1) * frame];
            if len == 0 {
                input.fill(0);
            } else {
                let converted = member.into_mix.convert(&f.a[..len]);
                let n = converted.len().min(frame);
                input[..n].copy_from_slice(&converted[..n]);
            }
            let leg = member.leg;
            self.collect_notices(leg);
        }
        conference.mix();
        for index in 0..conference.members.len() {
            let f = &mut self.frames;
            conference.mix_minus(index, &mut f.b[..frame]);
            let member = &mut conference.members[index];
            if member.deaf {
                f.b[..frame].fill(0);
            }
            let converted = member.out_of_mix.convert(&f.b[..frame]);
            let n = converted.len();
            f.out[..n].copy_from_slice(converted);
            let leg = member.leg;
            Self::write_leg(
                &mut self.slots,
                leg,
                &mut f.out[..n],
                &mut f.packet[..],
                &mut f.leg_notices,
            );
            self.collect_notices(leg);
        }
    }

    /// Applies queued commands; false on Shutdown (or when every handle is gone).
    fn drain_commands(&mut self) -> bool {
        // Cleared before draining: a command queued after this point either is seen by the
        // loop below or finds the flag clear and wakes us again.
        self.wake_pending.store(false, Ordering::SeqCst);
        loop {
            match self.commands.try_recv() {
                Ok(Command::Shutdown) | Err(mpsc::TryRecvError::Disconnected) => return false,
                Ok(command) => self.apply(command),
                Err(mpsc::TryRecvError::Empty) => return true,
            }
        }
    }

    fn apply(&mut self, command: Command) {
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        match command {
            Command::Add {
                id,
                mut rtp,
                mut rtcp,
                counters,
            } => {
                let key = id.key as usize;
                let registry = self.poll.registry();
                if let Err(e) = registry
                    .register(&mut rtp, Token(2 * key), Interest::READABLE)
                    .and_then(|()| {
                        registry.register(&mut rtcp, Token(2 * key + 1), Interest::READABLE)
                    })
                {
                    tracing::error!(thread = self.thread, error = %e, "cannot register media sockets");
                    return;
                }
                if self.slots.len() <= key {
                    self.slots.resize_with(key + 1, || None);
                }
                // Room for every token on the backlog, so the packet path never grows it.
                let tokens = 2 * self.slots.len();
                for list in [&mut self.backlog, &mut self.revisit] {
                    list.reserve(tokens.saturating_sub(list.len()));
                }
                self.slots[key] = Some(Slot {
                    generation: id.generation,
                    rtp,
                    rtcp,
                    counters,
                    remote: None,
                    rtcp_remote: None,
                    sdp_remote: None,
                    sdp_rtcp_remote: None,
                    latched: false,
                    rtcp_latched: false,
                    backlog: [false; 2],
                    mode: Mode::Idle,
                    held: false,
                    heard: false,
                    last_heard: now,
                    timed_out: false,
                    leg: None,
                    node: None,
                    quality: RelayQuality::new(8000),
                });
            }
            Command::SetRemote(id, remote) => {
                // MediaEngine::set_remote has refused our own ports and non-unicast addresses.
                if let Some(slot) = self.slot_mut(id) {
                    let rtcp = remote
                        .port()
                        .checked_add(1)
                        .map(|port| SocketAddr::new(remote.ip(), port));
                    slot.remote = Some(remote);
                    slot.rtcp_remote = rtcp;
                    slot.sdp_remote = Some(remote);
                    slot.sdp_rtcp_remote = rtcp;
                    slot.latched = false;
                    slot.rtcp_latched = false;
                    slot.counters.set_remote(Some(remote), false);
                }
            }
            Command::Bridge(a, b) => {
                if a == b || self.slot_mut(a).is_none() || self.slot_mut(b).is_none() {
                    return;
                }
                // Re-bridging the same pair (early media, then the answer) keeps its node and
                // with it a recording.
                let same = self.slot_mut(a).map(|s| s.mode) == Some(Mode::Bridged(b.key as usize));
                if !same {
                    self.unlink(a.key as usize);
                    self.unlink(b.key as usize);
                }
                for (this, peer) in [(a, b), (b, a)] {
                    if let Some(slot) = self.slot_mut(this) {
                        slot.mode = Mode::Bridged(peer.key as usize);
                        slot.arm_timeout(now);
                    }
                }
            }
            Command::Terminate {
                id,
                codec,
                dtmf,
                seed,
            } => {
                let label = codec.label();
                match LegMedia::new(codec, dtmf, now, seed) {
                    Ok(leg) => {
                        // A node's converters were built for the old leg's rate: a new codec
                        // takes the leg out of its node (the caller connects it again).
                        if self
                            .slot_mut(id)
                            .is_some_and(|s| s.leg.is_some() && s.node.is_some())
                        {
                            tracing::warn!(endpoint = ?id, "leg re-terminated: taken out of its node");
                            drop(self.take_recorder(id.key as usize));
                            drop(self.take_frame_tap(id.key as usize));
                            self.unlink(id.key as usize);
                        }
                        if let Some(slot) = self.slot_mut(id) {
                            slot.leg = Some(Box::new(leg));
                            slot.quality.label = Some(label);
                        }
                    }
                    Err(e) => {
                        tracing::error!(endpoint = ?id, error = %e, "cannot terminate the leg's media")
                    }
                }
            }
            Command::DescribeRelay {
                id,
                clock_rate,
                payload_type,
                label,
            } => {
                if let Some(slot) = self.slot_mut(id) {
                    if !slot.quality.packets {
                        slot.quality.stats = ReceiveStats::new(clock_rate);
                    }
                    slot.quality.voice_payload_type = Some(payload_type);
                    slot.quality.label = Some(label);
                }
            }
            Command::Connect(a, b) => {
                let rates = match (self.leg_rate(a), self.leg_rate(b)) {
                    (Some(ra), Some(rb)) if a != b => (ra, rb),
                    _ => {
                        tracing::error!(?a, ?b, "connect needs two distinct terminated legs");
                        return;
                    }
                };
                let recorder = self.take_recorder(a.key as usize);
                let frame_tap = self.take_frame_tap(a.key as usize);
                self.unlink(a.key as usize);
                self.unlink(b.key as usize);
                let node = match (
                    RateBridge::new(rates.0, rates.1),
                    RateBridge::new(rates.1, rates.0),
                ) {
                    (Ok(a_to_b), Ok(b_to_a)) => Node::Bridge(BridgeNode {
                        a: a.key as usize,
                        b: b.key as usize,
                        terminated: true,
                        a_to_b,
                        b_to_a,
                        recorder,
                        frame_tap,
                    }),
                    (Err(e), _) | (_, Err(e)) => {
                        tracing::error!(error = %e, "cannot resample between the legs");
                        return;
                    }
                };
                let index = self.add_node(node);
                for id in [a, b] {
                    if let Some(slot) = self.slot_mut(id) {
                        slot.mode = Mode::Terminated;
                        slot.node = Some(index);
                        slot.arm_timeout(now);
                    }
                }
            }
            Command::Solo(id) => {
                if self.leg_rate(id).is_none() {
                    tracing::error!(endpoint = ?id, "solo needs a terminated leg");
                    return;
                }
                let recorder = self.take_recorder(id.key as usize);
                let frame_tap = self.take_frame_tap(id.key as usize);
                self.unlink(id.key as usize);
                let index = self.add_node(Node::Solo(SoloNode {
                    leg: id.key as usize,
                    recorder,
                    frame_tap,
                }));
                if let Some(slot) = self.slot_mut(id) {
                    slot.mode = Mode::Terminated;
                    slot.node = Some(index);
                    slot.arm_timeout(now);
                }
            }
            Command::Play(id, player) => {
                if let Some(leg) = self.slot_mut(id).and_then(|s| s.leg.as_mut()) {
                    leg.play(*player);
                }
            }
            Command::StopPlayback(id) => {
                if let Some(leg) = self.slot_mut(id).and_then(|s| s.leg.as_mut()) {
                    leg.stop_playback();
                }
            }
            Command::SendDtmf {
                id,
                digits,
                duration_ms,
                inband,
            } => {
                if let Some(leg) = self.slot_mut(id).and_then(|s| s.leg.as_mut()) {
                    leg.send_dtmf(&digits, duration_ms, inband);
                } else {
                    tracing::warn!(endpoint = ?id, "DTMF for a leg whose media is relayed, not terminated");
                }
            }
            Command::Record { caller, sink, rate } => self.record(caller, *sink, rate),
            Command::PauseRecording(id, paused) => {
                if let Some(tap) = self.recorder_of(id) {
                    tap.sink.set_paused(paused);
                }
            }
            Command::StopRecording(id) => {
                let key = id.key as usize;
                if self.slot_mut(id).is_some() {
                    // Dropping the sink finishes the file.
                    drop(self.take_recorder(key));
                    self.drop_empty_relay_node(key);
                }
            }
            Command::Tap { caller, tap } => self.tap(caller, *tap),
            Command::Untap(id) => {
                let key = id.key as usize;
                if self.slot_mut(id).is_some() {
                    // Dropping the sender ends the reader's stream.
                    drop(self.take_frame_tap(key));
                    self.drop_empty_relay_node(key);
                }
            }
            Command::ConferenceCreate { conference, rate } => {
                let index = self.add_node(Node::Conference(ConferenceNode::new(
                    conference.generation,
                    rate,
                )));
                self.conferences.insert(conference.key, index);
            }
            Command::ConferenceJoin {
                conference,
                id,
                muted,
                deaf,
                tone,
            } => {
                let Some(rate) = self.leg_rate(id) else {
                    tracing::error!(endpoint = ?id, "a conference member needs a terminated leg");
                    return;
                };
                let Some(index) = self.conference_node(conference) else {
                    return;
                };
                self.unlink(id.key as usize);
                let Some(Some(Node::Conference(node))) = self.nodes.get_mut(index) else {
                    return;
                };
                let (into_mix, out_of_mix) = match (
                    RateBridge::new(rate, node.rate),
                    RateBridge::new(node.rate, rate),
                ) {
                    (Ok(i), Ok(o)) => (i, o),
                    (Err(e), _) | (_, Err(e)) => {
                        tracing::error!(error = %e, "cannot resample into the conference");
                        return;
                    }
                };
                node.members.push(Member {
                    leg: id.key as usize,
                    muted,
                    deaf,
                    into_mix,
                    out_of_mix,
                });
                let frame = node.frame();
                node.inputs.resize(node.members.len() * frame, 0);
                if let Some(tone) = tone {
                    node.announcement = Some(*tone);
                }
                if let Some(slot) = self.slot_mut(id) {
                    slot.mode = Mode::Terminated;
                    slot.node = Some(index);
                    slot.arm_timeout(now);
                }
            }
            Command::ConferenceMember {
                conference,
                id,
                muted,
                deaf,
            } => {
                let Some(index) = self.conference_node(conference) else {
                    return;
                };
                if self.slot_mut(id).and_then(|s| s.node) != Some(index) {
                    return;
                }
                if let Some(Some(Node::Conference(node))) = self.nodes.get_mut(index)
                    && let Some(member) = node.members.iter_mut().find(|m| m.leg == id.key as usize)
                {
                    member.muted = muted;
                    member.deaf = deaf;
                }
            }
            Command::ConferenceLeave {
                conference,
                id,
                tone,
            } => {
                if self.conference_node(conference).is_some()
                    && self.slot_mut(id).and_then(|s| s.node) == self.conference_node(conference)
                {
                    self.unlink(id.key as usize);
                    if let Some(index) = self.conference_node(conference)
                        && let Some(Some(Node::Conference(node))) = self.nodes.get_mut(index)
                        && let Some(tone) = tone
                    {
                        node.announcement = Some(*tone);
                    }
                }
            }
            Command::ConferenceClose(conference) => {
                if let Some(index) = self.conference_node(conference) {
                    let members: Vec<usize> = self.nodes[index]
                        .as_ref()
                        .map(|n| n.legs().collect())
                        .unwrap_or_default();
                    for key in members {
                        self.unlink(key);
                    }
                    self.nodes[index] = None;
                    self.conferences.remove(&conference.key);
                }
            }
            Command::Echo(id) => {
                if self.slot_mut(id).is_none() {
                    return;
                }
                self.unlink(id.key as usize);
                if let Some(slot) = self.slot_mut(id) {
                    slot.mode = Mode::Echo;
                    slot.arm_timeout(now);
                }
            }
            Command::Hold(id, held) => {
                if let Some(slot) = self.slot_mut(id) {
                    if slot.held && !held {
                        slot.arm_timeout(now);
                    }
                    slot.held = held;
                }
            }
            Command::Release(id) => {
                if self.slot_mut(id).is_none() {
                    return;
                }
                let key = id.key as usize;
                drop(self.take_recorder(key));
                drop(self.take_frame_tap(key));
                self.unlink(key);
                // Commands run between rounds, when `revisit` is empty.
                self.backlog.retain(|token| token / 2 != key);
                if let Some(mut slot) = self.slots[key].take() {
                    let registry = self.poll.registry();
                    let _ = registry.deregister(&mut slot.rtp);
                    let _ = registry.deregister(&mut slot.rtcp);
                    // Dropping the slot closes both sockets: the ports are free again.
                }
            }
            Command::Shutdown => {}
        }
        self.update_ticker();
    }

    fn leg_rate(&mut self, id: EndpointId) -> Option<u32> {
        self.slot_mut(id)?.leg.as_ref().map(|leg| leg.sample_rate())
    }

    fn add_node(&mut self, node: Node) -> usize {
        match self.nodes.iter().position(Option::is_none) {
            Some(index) => {
                self.nodes[index] = Some(node);
                index
            }
            None => {
                self.nodes.push(Some(node));
                self.nodes.len() - 1
            }
        }
    }

    fn conference_node(&self, conference: ConferenceId) -> Option<usize> {
        let index = *self.conferences.get(&conference.key)?;
        match self.nodes.get(index)? {
            Some(Node::Conference(node)) if node.generation == conference.generation => Some(index),
            _ => None,
        }
    }

    fn recorder_of(&mut self, id: EndpointId) -> Option<&mut RecorderTap> {
        let index = self.slot_mut(id)?.node?;
        match self.nodes.get_mut(index)?.as_mut()? {
            Node::Bridge(bridge) => bridge.recorder.as_mut(),
            Node::Solo(solo) => solo.recorder.as_mut(),
            Node::Conference(_) => None,
        }
    }

    fn take_recorder(&mut self, key: usize) -> Option<RecorderTap> {
        let index = self.slots.get(key)?.as_ref()?.node?;
        match self.nodes.get_mut(index)?.as_mut()? {
            Node::Bridge(bridge) => bridge.recorder.take(),
            Node::Solo(solo) => solo.recorder.take(),
            Node::Conference(_) => None,
        }
    }

    fn take_frame_tap(&mut self, key: usize) -> Option<FrameTap> {
        let index = self.slots.get(key)?.as_ref()?.node?;
        match self.nodes.get_mut(index)?.as_mut()? {
            Node::Bridge(bridge) => bridge.frame_tap.take(),
            Node::Solo(solo) => solo.frame_tap.take(),
            Node::Conference(_) => None,
        }
    }

    /// A relayed bridge's node exists only to feed its recorder and tap: without them it goes.
    fn drop_empty_relay_node(&mut self, key: usize) {
        let Some(index) = self
            .slots
            .get(key)
            .and_then(|s| s.as_ref())
            .and_then(|s| s.node)
        else {
            return;
        };
        if let Some(Some(Node::Bridge(bridge))) = self.nodes.get(index)
            && !bridge.terminated
            && bridge.recorder.is_none()
            && bridge.frame_tap.is_none()
        {
            let (a, b) = (bridge.a, bridge.b);
            self.nodes[index] = None;
            for key in [a, b] {
                if let Some(Some(slot)) = self.slots.get_mut(key) {
                    slot.node = None;
                }
            }
        }
    }

    /// The node a recorder or tap of `caller` attaches to, with the caller's and the callee's
    /// rates: its terminated bridge or solo node, or a relayed bridge (then both legs must have
    /// been terminated for decoding: the relay goes on forwarding packets untouched and the
    /// node, made here, decodes copies).
    fn tap_node(&mut self, caller: EndpointId, default_rate: u32) -> Option<(usize, u32, u32)> {
        let key = caller.key as usize;
        let slot = self.slot_mut(caller)?;
        let (mode, node) = (slot.mode, slot.node);
        let (node, callee_key) = match (node, mode) {
            (Some(index), _) => (index, None),
            (None, Mode::Bridged(peer)) => (usize::MAX, Some(peer)),
            _ => {
                tracing::warn!(endpoint = ?caller, "nothing to tap: the leg is not connected");
                return None;
            }
        };
        let rate_of = |slots: &[Option<Slot>], key: usize| {
            slots
                .get(key)
                .and_then(|s| s.as_ref())
                .and_then(|s| s.leg.as_ref())
                .map(|l| l.sample_rate())
        };
        let index = if let Some(peer) = callee_key {
            let (Some(ra), Some(rb)) = (rate_of(&self.slots, key), rate_of(&self.slots, peer))
            else {
                tracing::warn!(endpoint = ?caller, "tapping a relayed call needs both legs decoded");
                return None;
            };
            let (Ok(a_to_b), Ok(b_to_a)) = (RateBridge::new(ra, rb), RateBridge::new(rb, ra))
            else {
                return None;
            };
            let index = self.add_node(Node::Bridge(BridgeNode {
                a: key,
                b: peer,
                terminated: false,
                a_to_b,
                b_to_a,
                recorder: None,
                frame_tap: None,
            }));
            for k in [key, peer] {
                if let Some(Some(slot)) = self.slots.get_mut(k) {
                    slot.node = Some(index);
                }
            }
            index
        } else {
            node
        };
        let (caller_key, callee_key) = match self.nodes.get(index).and_then(|n| n.as_ref()) {
            Some(Node::Bridge(b)) => (b.a, Some(b.b)),
            Some(Node::Solo(s)) => (s.leg, None),
            _ => {
                tracing::warn!(endpoint = ?caller, "conferences are not tapped per call");
                return None;
            }
        };
        let caller_rate = rate_of(&self.slots, caller_key).unwrap_or(default_rate);
        let callee_rate = callee_key
            .and_then(|k| rate_of(&self.slots, k))
            .unwrap_or(caller_rate);
        Some((index, caller_rate, callee_rate))
    }

    /// Attaches a recorder to the node of `caller` (see `tap_node`).
    fn record(&mut self, caller: EndpointId, sink: RecordingSink, rate: u32) {
        let Some((index, caller_rate, callee_rate)) = self.tap_node(caller, rate) else {
            return;
        };
        let (Ok(a), Ok(b)) = (
            RateBridge::new(caller_rate, rate),
            RateBridge::new(callee_rate, rate),
        ) else {
            tracing::warn!(rate, "cannot resample to the recording rate");
            self.drop_empty_relay_node(caller.key as usize);
            return;
        };
        let tap = RecorderTap {
            sink,
            caller: a,
            callee: b,
        };
        match self.nodes.get_mut(index).and_then(|n| n.as_mut()) {
            Some(Node::Bridge(b)) => b.recorder = Some(tap),
            Some(Node::Solo(s)) => s.recorder = Some(tap),
            _ => {}
        }
    }

    /// Attaches a media tap to the node of `caller` (see `tap_node`); dropping the producer
    /// when there is none tells the reader at once.
    fn tap(&mut self, caller: EndpointId, producer: TapProducer) {
        let rate = producer.rate;
        let Some((index, caller_rate, callee_rate)) = self.tap_node(caller, rate) else {
            return;
        };
        let (Ok(a), Ok(b)) = (
            RateBridge::new(caller_rate, rate),
            RateBridge::new(callee_rate, rate),
        ) else {
            tracing::warn!(rate, "cannot resample to the tap's rate");
            self.drop_empty_relay_node(caller.key as usize);
            return;
        };
        let tap = producer.attach(a, b);
        match self.nodes.get_mut(index).and_then(|n| n.as_mut()) {
            Some(Node::Bridge(b)) => b.frame_tap = Some(tap),
            Some(Node::Solo(s)) => s.frame_tap = Some(tap),
            _ => {}
        }
    }

    fn slot_mut(&mut self, id: EndpointId) -> Option<&mut Slot> {
        self.slots
            .get_mut(id.key as usize)?
            .as_mut()
            .filter(|s| s.generation == id.generation)
    }

    /// Takes the endpoint out of any bridge, echo or node; a former bridge peer goes idle, a
    /// conference goes on without it.
    fn unlink(&mut self, key: usize) {
        let Some(Some(slot)) = self.slots.get_mut(key) else {
            return;
        };
        let old = std::mem::replace(&mut slot.mode, Mode::Idle);
        let node = slot.node.take();
        if let Mode::Bridged(peer) = old
            && let Some(Some(peer)) = self.slots.get_mut(peer)
        {
            peer.mode = Mode::Idle;
        }
        let Some(index) = node else { return };
        let remove = match self.nodes.get_mut(index).and_then(|n| n.as_mut()) {
            Some(Node::Conference(conference)) => {
                if let Some(position) = conference.members.iter().position(|m| m.leg == key) {
                    conference.members.remove(position);
                    let frame = conference.frame();
                    // Keep each remaining member's input where its index says.
                    conference.inputs.truncate(conference.members.len() * frame);
                }
                false
            }
            Some(_) => true,
            None => false,
        };
        if remove && let Some(Some(node)) = self.nodes.get_mut(index).map(Option::take) {
            for other in node.legs() {
                if let Some(Some(slot)) = self.slots.get_mut(other) {
                    slot.node = None;
                    if slot.mode == Mode::Terminated {
                        slot.mode = Mode::Idle;
                    }
                }
            }
        }
    }

    /// Reads the socket behind `token` until it would block (mio is edge-triggered), or up to
    /// its budget, when it goes on the backlog. `revisit`: the token comes off the backlog.
    fn receive(&mut self, token: usize, revisit: bool, now: Instant) {
        let key = token / 2;
        let port = token % 2;
        let is_rtcp_port = port == 1;
        if revisit && let Some(Some(slot)) = self.slots.get_mut(key) {
            slot.backlog[port] = false;
        }
        let mut errors = 0;
        for _ in 0..READ_BUDGET {
            let Some(Some(slot)) = self.slots.get(key) else {
                return;
            };
            let socket = if is_rtcp_port { &slot.rtcp } else { &slot.rtp };
            let (len, source) = match socket.recv_from(&mut self.buffer[..]) {
                Ok(received) => received,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // An ICMP error queued on the socket (e.g. the far end's port unreachable) is
                // reported once by recv, then the socket reads on; bounded in case it persists.
                Err(_) if errors < 8 => {
                    errors += 1;
                    continue;
                }
                Err(_) => return,
            };
            relay(
                &mut self.slots,
                key,
                is_rtcp_port,
                &self.buffer[..len],
                source,
                &self.guard,
                now,
                &mut self.frames.leg_notices,
            );
            if !self.frames.leg_notices.is_empty() {
                self.collect_notices(key);
            }
        }
        if let Some(Some(slot)) = self.slots.get_mut(key)
            && !slot.backlog[port]
        {
            slot.backlog[port] = true;
            self.backlog.push(token);
        }
    }

    /// The coarse RTP timeout check: one pass over this thread's endpoints per tick.
    fn check_timeouts(&mut self, now: Instant) {
        for (key, slot) in self.slots.iter_mut().enumerate() {
            let Some(slot) = slot else { continue };
            // Publish quality for `show channels` and the CDR (a lock per slot per tick, never
            // per packet).
            if slot.mode != Mode::Idle {
                slot.counters
                    .update_quality(|quality| match (&slot.leg, slot.mode) {
                        (Some(leg), Mode::Terminated) => leg.quality(quality),
                        _ => slot.quality.snapshot(quality),
                    });
            }
            if slot.heard {
                slot.arm_timeout(now);
                continue;
            }
            if slot.is_timing()
                && !slot.timed_out
                && now.duration_since(slot.last_heard) >= self.rtp_timeout
            {
                slot.timed_out = true;
                let endpoint = EndpointId {
                    thread: self.thread,
                    key: key as u32,
                    generation: slot.generation,
                };
                tracing::info!(?endpoint, timeout = ?self.rtp_timeout, "RTP timeout");
                (self.notify)(MediaEvent::RtpTimeout { endpoint });
            }
        }
    }
}

/// The packet path: validate, latch, then forward (relay, echo) or hand to the terminated
/// leg. No allocation, no lock, no clock read (`now` is the round's; latching takes the stats
/// lock, once per change of source).
#[allow(clippy::too_many_arguments)]
fn relay(
    slots: &mut [Option<Slot>],
    key: usize,
    is_rtcp_port: bool,
    packet: &[u8],
    source: SocketAddr,
    guard: &RelayGuard,
    now: Instant,
    notices: &mut Vec<LegNotice>,
) {
    let Some(Some(slot)) = slots.get_mut(key) else {
        return;
    };
    slot.counters.received(packet.len());
    let valid = if is_rtcp_port {
        is_rtcp(packet)
    } else {
        RtpHeader::parse(packet).is_some()
    };
    // Nothing latches while idle (before the bridge or echo), and a packet from one of our own
    // relay ports can only be a loop or a spoof.
    if !valid || slot.mode == Mode::Idle || guard.refuses(source) {
        slot.counters.dropped();
        return;
    }
    let accepted = if is_rtcp_port {
        slot.accept_rtcp(source)
    } else {
        slot.accept_rtp(source, guard)
    };
    if !accepted {
        slot.counters.dropped();
        return;
    }
    if is_rtcp_port {
        observe_rtcp(slots, key, packet, now);
    } else {
        let Some(Some(slot)) = slots.get_mut(key) else {
            return;
        };
        slot.heard = true;
        if let Some(header) = RtpHeader::parse(packet) {
            slot.quality.packets = true;
            let full = header.to_full(packet.len());
            match slot.quality.voice_payload_type {
                Some(pt) if pt != header.payload_type => {
                    slot.quality.stats.on_packet_untimed(now, &full)
                }
                _ => slot.quality.stats.on_packet(now, &full),
            }
        }
        // A relayed leg feeds its decoder only while a node (a recorder) reads it.
        if (slot.mode == Mode::Terminated || slot.node.is_some())
            && let Some(leg) = &mut slot.leg
        {
            leg.on_rtp(now, packet, notices);
        }
    }
    let Some(Some(slot)) = slots.get_mut(key) else {
        return;
    };
    match slot.mode {
        Mode::Idle => {}       // dropped above
        Mode::Terminated => {} // the node sends on the tick
        Mode::Echo => {
            let socket = if is_rtcp_port { &slot.rtcp } else { &slot.rtp };
            send(socket, packet, source, &slot.counters);
        }
        Mode::Bridged(peer) => {
            let Some(Some(peer)) = slots.get(peer) else {
                return;
            };
            let (socket, destination) = if is_rtcp_port {
                (&peer.rtcp, peer.rtcp_remote)
            } else {
                (&peer.rtp, peer.remote)
            };
            match destination {
                Some(destination) => send(socket, packet, destination, &peer.counters),
                None => {
                    if let Some(Some(slot)) = slots.get(key) {
                        slot.counters.dropped();
                    }
                }
            }
        }
    }
}

/// RTCP arriving on slot `key`: a terminated leg reads it; for a relayed one we learn the
/// round trip to its far end through the relay, and note SRs passing to the other side.
fn observe_rtcp(slots: &mut [Option<Slot>], key: usize, packet: &[u8], now: Instant) {
    let Some(Some(slot)) = slots.get_mut(key) else {
        return;
    };
    if slot.mode == Mode::Terminated {
        if let Some(leg) = &mut slot.leg {
            leg.on_rtcp(now, packet);
        }
        return;
    }
    let Mode::Bridged(peer) = slot.mode else {
        return;
    };
    let mut sr_passed = None;
    let mut rtt = None;
    let estimator = &mut slot.quality.rtt;
    let _ = rtcp_codec::parse_compound(packet, |p| {
        let reports = match &p {
            RtcpPacket::SenderReport {
                ssrc,
                info,
                reports,
            } => {
                sr_passed = Some((*ssrc, rtcp_codec::ntp_middle(info.ntp)));
                reports
            }
            RtcpPacket::ReceiverReport { reports, .. } => reports,
            _ => return,
        };
        for block in reports.clone() {
            if let Some(r) = estimator.rtt_from_block(&block, now) {
                rtt = Some(r);
            }
        }
    });
    if let Some(rtt) = rtt {
        slot.quality.rtt_ms = Some(rtt.as_secs_f64() * 1000.0);
    }
    if let Some((ssrc, ntp_middle)) = sr_passed
        && let Some(Some(peer)) = slots.get_mut(peer)
    {
        peer.quality.rtt.sr_passed(ssrc, ntp_middle, now);
    }
}

fn send(socket: &UdpSocket, packet: &[u8], destination: SocketAddr, counters: &Counters) {
    match socket.send_to(packet, destination) {
        Ok(sent) => counters.sent(sent),
        // A full send buffer or an unreachable peer: RTP is loss-tolerant, drop the packet
        // rather than wait (media never waits).
        Err(_) => counters.dropped(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)] // real sockets, real time

    use super::*;
    use crate::Counters;

    fn endpoint(key: u32) -> EndpointId {
        EndpointId {
            thread: 0,
            key,
            generation: key + 1,
        }
    }

    fn bound() -> (std::net::UdpSocket, SocketAddr) {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let local = socket.local_addr().unwrap();
        (socket, local)
    }

    /// A packet already queued on a socket that stays busy waits for one budget of the busy
    /// socket, not for it to run dry, and the busy socket is finished on later rounds. The
    /// kernel queue stands in for a flood that outpaces the relay: deterministic where a real
    /// flood depends on the scheduler.
    #[test]
    fn a_busy_socket_is_read_one_budget_per_round() {
        let poll = Poll::new().unwrap();
        let (_commands, receiver) = mpsc::channel();
        let guard = RelayGuard {
            ip: "127.0.0.1".parse().unwrap(),
            port_min: 1,
            port_max: 1,
        };
        let mut reactor = MediaReactor::new(
            0,
            poll,
            receiver,
            Arc::new(AtomicBool::new(false)),
            Duration::from_secs(60),
            guard,
            Arc::new(|_| {}),
        );
        let mut counters = Vec::new();
        let mut locals = Vec::new();
        for key in 0..4 {
            let (rtp, local) = bound();
            let (rtcp, _) = bound();
            let c = Arc::new(Counters::default());
            reactor.apply(Command::Add {
                id: endpoint(key),
                rtp: UdpSocket::from_std(rtp),
                rtcp: UdpSocket::from_std(rtcp),
                counters: c.clone(),
            });
            counters.push(c);
            locals.push(local);
        }
        let phones: Vec<_> = (0..4)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for key in 0..4 {
            reactor.apply(Command::SetRemote(
                endpoint(key),
                phones[key as usize].local_addr().unwrap(),
            ));
        }
        reactor.apply(Command::Bridge(endpoint(0), endpoint(1)));
        reactor.apply(Command::Bridge(endpoint(2), endpoint(3)));

        let busy = READ_BUDGET + READ_BUDGET / 2;
        let mut packet = [0u8; 172];
        packet[0] = 0x80;
        for _ in 0..busy {
            phones[0].send_to(&packet, locals[0]).unwrap();
        }
        phones[2].send_to(&packet, locals[2]).unwrap();

        let mut events = Events::with_capacity(16);
        let mut next_tick = Instant::now() + Duration::from_secs(3600);
        assert!(reactor.turn(&mut events, &mut next_tick));
        let snapshot = |key: usize| counters[key].snapshot();
        assert_eq!(
            snapshot(0).packets_in,
            READ_BUDGET as u64,
            "one budget of the busy socket per round"
        );
        assert_eq!(
            snapshot(3).packets_out,
            1,
            "the other call's packet went through in the same round"
        );
        assert_eq!(
            reactor.backlog,
            [0],
            "the busy RTP socket (token 0) waits its turn"
        );

        // No new readiness event comes for the busy socket (edge-triggered): the backlog
        // alone brings the reactor back to it, without waiting.
        let started = Instant::now();
        assert!(reactor.turn(&mut events, &mut next_tick));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(snapshot(0).packets_in, busy as u64);
        assert_eq!(snapshot(1).packets_out, busy as u64);
        assert!(
            reactor.backlog.is_empty(),
            "read until it would block: off the backlog"
        );
    }
}
