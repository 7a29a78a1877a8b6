//! switchyard-media: the anchored RTP relay.
//!
//! A B2BUA with anchored media gives each call leg an [`Endpoint`] (an even RTP port and the
//! RTCP port above it) and relays packets between the two legs' endpoints. The relay runs on
//! `threads` media reactors (mio), each owning its sockets; a call's two endpoints live on the
//! same reactor. Callers talk to the reactors through [`MediaEngine`]: each method sends a
//! command over a channel and wakes the reactor with its [`mio::Waker`].
//!
//! Media never waits: the packet path does no blocking I/O, takes no lock and allocates
//! nothing. It reads into one fixed buffer per reactor, finds the endpoint by its mio token
//! (an index), checks the RTP header and sends the packet on. Statistics are per-endpoint
//! atomics that [`MediaEngine::stats`] reads from any thread.
#![forbid(unsafe_code)]

mod graph;
mod leg;
mod reactor;
pub mod rtp;
mod tap;

pub use leg::{DtmfOptions, LegCodec};
pub use switchyard_codec::{CodecKind, OpusFmtp};
pub use switchyard_dsp::play::{PlayItem, Player};
pub use switchyard_recording::RecordingSink;
pub use tap::{TapFrame, TapReceiver};

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use reactor::{Command, MediaReactor};

/// Errors of the media engine.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Every even/odd port pair of the configured range is taken.
    #[error("no free RTP port pair in the configured range")]
    PortsExhausted,
    #[error("invalid media configuration: {0}")]
    Config(&'static str),
    /// The media threads have stopped (after [`MediaEngine::shutdown`] or a crash).
    #[error("the media threads have stopped")]
    Stopped,
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("codec: {0}")]
    Codec(switchyard_codec::Error),
    #[error("audio processing: {0}")]
    Dsp(switchyard_dsp::Error),
}

/// Where and how the relay runs.
#[derive(Clone, Debug)]
pub struct MediaConfig {
    /// The address RTP binds to and that the SDP we send advertises.
    pub ip: IpAddr,
    /// The port range, inclusive. RTP takes the even ports (RFC 3550 §11), RTCP the odd ones.
    pub port_min: u16,
    pub port_max: u16,
    /// How long an active endpoint may go without receiving RTP before [`MediaEvent::RtpTimeout`].
    pub rtp_timeout: Duration,
    /// Media reactor threads (at least 1).
    pub threads: usize,
    /// Run the media threads at this SCHED_FIFO priority (1–99), like FreeSWITCH's `-rp`:
    /// generated streams then leave on time even when other work competes for the cores.
    /// Needs CAP_SYS_NICE (or an RLIMIT_RTPRIO); without it the threads run normally and a
    /// warning says why.
    pub realtime_priority: Option<u8>,
}

/// A handle to one endpoint: which media thread, its slot there, and a generation so a stale
/// handle never reaches an endpoint that reused the slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EndpointId {
    thread: u16,
    key: u32,
    generation: u32,
}

impl EndpointId {
    /// The media thread the endpoint lives on: legs bridge, connect or join a conference only
    /// on their own thread.
    pub fn thread(&self) -> u16 {
        self.thread
    }
}

/// An allocated endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub id: EndpointId,
    /// The RTP address; RTCP is on `local.port() + 1`.
    pub local: SocketAddr,
}

/// What the media threads report. More will come (DTMF, media quality), hence non-exhaustive.
#[non_exhaustive]
#[derive(Debug)]
pub enum MediaEvent {
    /// No RTP received on this endpoint for `rtp_timeout` while it was active (bridged or
    /// echoing and not on hold). Reported once; it re-arms when RTP flows again.
    RtpTimeout { endpoint: EndpointId },
    /// A DTMF digit ended on a terminated (or tapped) leg.
    Dtmf {
        endpoint: EndpointId,
        digit: char,
        duration_ms: u32,
        source: DtmfSource,
    },
    /// What [`MediaEngine::play`] started has played to its end.
    PlaybackDone { endpoint: EndpointId },
}

/// How a DTMF digit travelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtmfSource {
    /// RFC 4733 telephone-event packets.
    Rfc4733,
    /// Tones in the audio, found by the Goertzel detector.
    Inband,
    /// SIP INFO with application/dtmf-relay (signalling; the engine's, never the media's).
    Info,
}

impl DtmfSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DtmfSource::Rfc4733 => "rfc4733",
            DtmfSource::Inband => "inband",
            DtmfSource::Info => "info",
        }
    }
}

/// Media quality of one leg as we receive it: our statistics of its RTP (RFC 3550 A.3 loss,
/// A.8 jitter), the round trip from RTCP, the jitter buffer's delay when we terminate it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LegQuality {
    /// "PCMA", "opus/48000"... when known.
    pub codec: Option<String>,
    pub packets_received: u64,
    pub packets_lost: i64,
    pub loss_percent: f64,
    pub jitter_ms: f64,
    pub rtt_ms: Option<f64>,
    pub jitter_buffer_ms: Option<f64>,
    /// The leg's media is decoded and re-encoded here (not a pure relay).
    pub terminated: bool,
}

/// A conference room on one media thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConferenceId {
    thread: u16,
    key: u32,
    generation: u32,
}

impl ConferenceId {
    /// Endpoints joining must live on this media thread: see [`MediaEngine::allocate_for`].
    pub fn thread(&self) -> u16 {
        self.thread
    }
}

/// Counters of one endpoint. `packets_in`/`bytes_in` count every datagram received on its RTP
/// and RTCP ports; `packets_out`/`bytes_out` what it sent; `packets_dropped` what it received
/// and did not relay (not RTP/RTCP, not bridged yet, no destination known, or from a source
/// that latching refuses: see [`MediaEngine::set_remote`]).
#[derive(Clone, Debug, Default)]
pub struct EndpointStats {
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub packets_dropped: u64,
    /// Where RTP goes: from the SDP, or the source of received RTP once latched.
    pub remote: Option<SocketAddr>,
    /// The remote was learned from received RTP (symmetric RTP, RFC 4961).
    pub latched: bool,
    /// Published by the media thread a few times a second.
    pub quality: LegQuality,
}

/// Per-endpoint counters, written by its media thread only (Relaxed is enough: each is a
/// monotonic counter read for reporting).
#[derive(Default)]
pub(crate) struct Counters {
    packets_in: AtomicU64,
    packets_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    packets_dropped: AtomicU64,
    latched: AtomicBool,
    /// Written on set_remote and latching only, never per packet.
    remote: Mutex<Option<SocketAddr>>,
    /// Written by the media thread's housekeeping tick, never per packet.
    quality: Mutex<LegQuality>,
}

impl Counters {
    fn received(&self, bytes: usize) {
        self.packets_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn sent(&self, bytes: usize) {
        self.packets_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn dropped(&self) {
        self.packets_dropped.fetch_add(1, Ordering::Relaxed);
    }

    fn set_remote(&self, remote: Option<SocketAddr>, latched: bool) {
        *self.remote.lock().unwrap_or_else(|e| e.into_inner()) = remote;
        self.latched.store(latched, Ordering::Relaxed);
    }

    /// Updates the published quality in place, so its codec label is reused rather than
    /// allocated anew on every housekeeping tick.
    fn update_quality(&self, update: impl FnOnce(&mut LegQuality)) {
        update(&mut self.quality.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn snapshot(&self) -> EndpointStats {
        EndpointStats {
            packets_in: self.packets_in.load(Ordering::Relaxed),
            packets_out: self.packets_out.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            packets_dropped: self.packets_dropped.load(Ordering::Relaxed),
            remote: *self.remote.lock().unwrap_or_else(|e| e.into_inner()),
            latched: self.latched.load(Ordering::Relaxed),
            quality: self
                .quality
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// The addresses the relay never sends to nor accepts packets from: its own relay ports (a
/// leg whose remote is one of them would relay a packet to itself forever, and a packet from
/// one of them can only be such a loop or a spoof), and addresses no phone sends from or
/// listens on (unspecified, multicast, the limited broadcast, port 0). A subnet-directed
/// broadcast is not recognised: that would take the interface's netmask.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RelayGuard {
    ip: IpAddr,
    port_min: u16,
    port_max: u16,
}

impl RelayGuard {
    fn new(config: &MediaConfig) -> RelayGuard {
        RelayGuard {
            ip: config.ip.to_canonical(),
            port_min: config.port_min,
            port_max: config.port_max,
        }
    }

    /// Cheap enough for the packet path: a few comparisons, no allocation.
    pub(crate) fn refuses(&self, addr: SocketAddr) -> bool {
        let ip = addr.ip().to_canonical();
        let broadcast = match ip {
            IpAddr::V4(v4) => v4.is_broadcast(),
            IpAddr::V6(_) => false,
        };
        addr.port() == 0
            || ip.is_unspecified()
            || ip.is_multicast()
            || broadcast
            || (ip == self.ip && (self.port_min..=self.port_max).contains(&addr.port()))
    }
}

/// The caller's side of one media thread.
struct MediaThread {
    commands: mpsc::Sender<Command>,
    waker: mio::Waker,
    /// True while a wake is on its way: the commands of one call setup (allocate, set_remote,
    /// bridge) then cost one eventfd write instead of one each.
    wake_pending: Arc<AtomicBool>,
    /// Endpoints living on this thread: slot key -> (generation, counters). The media thread
    /// uses the same keys for its own table, so handles resolve without a round trip. Locked on
    /// allocate, release and stats; never by the media thread.
    endpoints: Mutex<BTreeMap<u32, (u32, Arc<Counters>)>>,
}

struct Shared {
    config: MediaConfig,
    threads: Vec<MediaThread>,
    joins: Mutex<Vec<JoinHandle<()>>>,
    next_thread: AtomicUsize,
    next_generation: AtomicU32,
    /// Conference keys per thread, so each thread's table stays dense.
    next_conference: AtomicU32,
    /// Index of the next port pair to try, so allocation walks the range instead of hammering
    /// the same recently released ports.
    next_pair: Mutex<usize>,
}

/// The media engine: a cheap, cloneable handle to the media threads.
#[derive(Clone)]
pub struct MediaEngine {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MediaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaEngine")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl MediaEngine {
    /// Starts the media threads (named `media-0`, `media-1`...). `notify` is called from a
    /// media thread for each event; it must not block (send on a channel and wake a reactor).
    pub fn start(
        config: MediaConfig,
        notify: Box<dyn Fn(MediaEvent) + Send + Sync>,
    ) -> Result<MediaEngine, Error> {
        if config.threads == 0 || config.threads > usize::from(u16::MAX) {
            return Err(Error::Config("threads must be between 1 and 65535"));
        }
        if config.port_max < config.port_min {
            return Err(Error::Config("port_max is below port_min"));
        }
        if config.rtp_timeout.is_zero() {
            return Err(Error::Config("rtp_timeout must be positive"));
        }
        // The guard against relay loops compares destinations with this address: it must be the
        // one address our sockets receive on, not a wildcard.
        if config.ip.is_unspecified() || config.ip.is_multicast() {
            return Err(Error::Config(
                "ip must be a unicast address peers can reach",
            ));
        }
        let guard = RelayGuard::new(&config);
        let realtime_priority = config.realtime_priority;
        let notify: Arc<dyn Fn(MediaEvent) + Send + Sync> = Arc::from(notify);
        let mut threads = Vec::with_capacity(config.threads);
        let mut joins = Vec::with_capacity(config.threads);
        for index in 0..config.threads {
            let poll = mio::Poll::new()?;
            let waker = mio::Waker::new(poll.registry(), reactor::WAKER)?;
            let (commands, receiver) = mpsc::channel();
            let wake_pending = Arc::new(AtomicBool::new(false));
            let reactor = MediaReactor::new(
                index as u16,
                poll,
                receiver,
                wake_pending.clone(),
                config.rtp_timeout,
                guard,
                notify.clone(),
            );
            let join = std::thread::Builder::new()
                .name(format!("media-{index}"))
                .spawn(move || {
                    if let Some(priority) = realtime_priority {
                        raise_priority(priority);
                    }
                    reactor.run()
                })?;
            threads.push(MediaThread {
                commands,
                waker,
                wake_pending,
                endpoints: Mutex::new(BTreeMap::new()),
            });
            joins.push(join);
        }
        Ok(MediaEngine {
            shared: Arc::new(Shared {
                config,
                threads,
                joins: Mutex::new(joins),
                next_thread: AtomicUsize::new(0),
                next_generation: AtomicU32::new(1),
                next_conference: AtomicU32::new(0),
                next_pair: Mutex::new(0),
            }),
        })
    }

    /// Two endpoints on the same media thread (a call's media lives on one thread), bound
    /// here, on the caller's thread, from the configured range; threads taken round-robin.
    pub fn allocate_pair(&self) -> Result<(Endpoint, Endpoint), Error> {
        let thread = self.pick_thread();
        let a = self.allocate_on(thread)?;
        match self.allocate_on(thread) {
            Ok(b) => Ok((a, b)),
            Err(e) => {
                self.release(a.id);
                Err(e)
            }
        }
    }

    /// One endpoint (an echo test, an IVR leg).
    pub fn allocate(&self) -> Result<Endpoint, Error> {
        self.allocate_on(self.pick_thread())
    }

    /// One endpoint on the media thread of `beside`, so the two can be bridged or connected
    /// (a callee leg added to a call answered earlier).
    pub fn allocate_beside(&self, beside: EndpointId) -> Result<Endpoint, Error> {
        self.allocate_on(usize::from(beside.thread))
    }

    /// One endpoint on the media thread of a conference, so it can join it.
    pub fn allocate_for(&self, conference: ConferenceId) -> Result<Endpoint, Error> {
        self.allocate_on(usize::from(conference.thread))
    }

    /// Decodes this leg's media from now on (and encodes what its node sends it). On a relayed
    /// bridge this only taps it (for a recording); [`connect`](Self::connect),
    /// [`solo`](Self::solo) and conferences need it first.
    pub fn terminate(&self, ep: EndpointId, codec: LegCodec, dtmf: DtmfOptions) {
        let seed = rand_seed(ep);
        self.send(
            ep,
            Command::Terminate {
                id: ep,
                codec,
                dtmf,
                seed,
            },
        );
    }

    /// For a relayed leg: the RTP clock of its codec (for the jitter statistic) and its name.
    pub fn describe_relay(&self, ep: EndpointId, clock_rate: u32, payload_type: u8, label: &str) {
        self.send(
            ep,
            Command::DescribeRelay {
                id: ep,
                clock_rate,
                payload_type,
                label: label.to_owned(),
            },
        );
    }

    /// A terminated bridge of two terminated legs of one media thread: each hears the other,
    /// decoded, resampled when the rates differ and re-encoded (transcoding, DTMF conversion).
    pub fn connect(&self, a: EndpointId, b: EndpointId) {
        if a.thread != b.thread {
            tracing::error!(
                ?a,
                ?b,
                "cannot connect endpoints of different media threads"
            );
            return;
        }
        self.send(a, Command::Connect(a, b));
    }

    /// A terminated leg on its own: it hears what is played to it (prompts, tones, music).
    pub fn solo(&self, ep: EndpointId) {
        self.send(ep, Command::Solo(ep));
    }

    /// Plays to a terminated leg, replacing what it would otherwise hear until the player
    /// ends ([`MediaEvent::PlaybackDone`]).
    pub fn play(&self, ep: EndpointId, player: Player) {
        self.send(ep, Command::Play(ep, Box::new(player)));
    }

    pub fn stop_playback(&self, ep: EndpointId) {
        self.send(ep, Command::StopPlayback(ep));
    }

    /// Sends DTMF on a terminated leg: RFC 4733 events if it negotiated telephone-event and
    /// `inband` is false, else tones in the audio.
    pub fn send_dtmf(&self, ep: EndpointId, digits: &str, duration_ms: u32, inband: bool) {
        self.send(
            ep,
            Command::SendDtmf {
                id: ep,
                digits: digits.to_owned(),
                duration_ms,
                inband,
            },
        );
    }

    /// Records the call `caller` is in (its bridge or its solo node) into `sink`, at `rate`.
    /// A relayed bridge needs both legs [`terminate`](Self::terminate)d first: the packets go
    /// on untouched and copies are decoded for the file.
    pub fn record(&self, caller: EndpointId, sink: RecordingSink, rate: u32) {
        self.send(
            caller,
            Command::Record {
                caller,
                sink: Box::new(sink),
                rate,
            },
        );
    }

    /// Pause / resume (silence is written while paused, so the timeline keeps its length).
    pub fn pause_recording(&self, caller: EndpointId, paused: bool) {
        self.send(caller, Command::PauseRecording(caller, paused));
    }

    /// Finishes the recording of the call `caller` is in.
    pub fn stop_recording(&self, caller: EndpointId) {
        self.send(caller, Command::StopRecording(caller));
    }

    /// Taps the call `caller` is in (its bridge or its solo node, like [`record`](Self::record),
    /// and independently of it): 20 ms frames at `rate` (8000 or 16000), caller on the left,
    /// arrive on the returned receiver. The media thread never waits for the reader: when its
    /// ring of one second is full, frames are dropped and counted. A call that cannot be tapped
    /// (not connected, or a relayed leg not terminated for decoding) closes the receiver.
    pub fn tap(&self, caller: EndpointId, rate: u32) -> Result<TapReceiver, Error> {
        if rate != 8000 && rate != 16000 {
            return Err(Error::Config("a media tap runs at 8000 or 16000 Hz"));
        }
        let (producer, receiver) = tap::channel(rate);
        if !self.send(
            caller,
            Command::Tap {
                caller,
                tap: Box::new(producer),
            },
        ) {
            return Err(Error::Stopped);
        }
        Ok(receiver)
    }

    /// Removes the tap of the call `caller` is in; its receiver sees the end.
    pub fn untap(&self, caller: EndpointId) {
        self.send(caller, Command::Untap(caller));
    }

    /// A new conference room mixing at `rate` (8000, 16000 or 48000), on the next thread.
    pub fn create_conference(&self, rate: u32) -> ConferenceId {
        self.create_conference_on(self.pick_thread(), rate)
    }

    /// A conference on the media thread of `beside`, so that leg can join it.
    pub fn create_conference_beside(&self, beside: EndpointId, rate: u32) -> ConferenceId {
        self.create_conference_on(usize::from(beside.thread), rate)
    }

    fn create_conference_on(&self, thread: usize, rate: u32) -> ConferenceId {
        let conference = ConferenceId {
            thread: thread as u16,
            // Never reused within a daemon's life (u32): a stale id cannot reach a newer room.
            key: self.shared.next_conference.fetch_add(1, Ordering::Relaxed),
            generation: self.shared.next_generation.fetch_add(1, Ordering::Relaxed),
        };
        self.send_to(thread, Command::ConferenceCreate { conference, rate });
        conference
    }

    /// A terminated leg joins; `tone` (the join tone) is mixed into everyone's audio.
    pub fn join_conference(
        &self,
        conference: ConferenceId,
        ep: EndpointId,
        muted: bool,
        deaf: bool,
        tone: Option<Player>,
    ) {
        self.send(
            ep,
            Command::ConferenceJoin {
                conference,
                id: ep,
                muted,
                deaf,
                tone: tone.map(Box::new),
            },
        );
    }

    pub fn set_conference_member(
        &self,
        conference: ConferenceId,
        ep: EndpointId,
        muted: bool,
        deaf: bool,
    ) {
        self.send(
            ep,
            Command::ConferenceMember {
                conference,
                id: ep,
                muted,
                deaf,
            },
        );
    }

    pub fn leave_conference(&self, conference: ConferenceId, ep: EndpointId, tone: Option<Player>) {
        self.send(
            ep,
            Command::ConferenceLeave {
                conference,
                id: ep,
                tone: tone.map(Box::new),
            },
        );
    }

    pub fn close_conference(&self, conference: ConferenceId) {
        self.send_to(
            usize::from(conference.thread),
            Command::ConferenceClose(conference),
        );
    }

    fn pick_thread(&self) -> usize {
        self.shared.next_thread.fetch_add(1, Ordering::Relaxed) % self.shared.threads.len()
    }

    fn allocate_on(&self, thread: usize) -> Result<Endpoint, Error> {
        let (rtp, rtcp) = self.bind_pair()?;
        let local = rtp.local_addr()?;
        rtp.set_nonblocking(true)?;
        rtcp.set_nonblocking(true)?;
        let generation = self.shared.next_generation.fetch_add(1, Ordering::Relaxed);
        let counters = Arc::new(Counters::default());
        let media = &self.shared.threads[thread];
        let key = {
            let mut endpoints = lock(&media.endpoints);
            // The lowest free key keeps the media thread's table dense.
            let key = (0u32..)
                .find(|k| !endpoints.contains_key(k))
                .unwrap_or(u32::MAX);
            endpoints.insert(key, (generation, counters.clone()));
            key
        };
        let id = EndpointId {
            thread: thread as u16,
            key,
            generation,
        };
        let add = Command::Add {
            id,
            rtp: mio::net::UdpSocket::from_std(rtp),
            rtcp: mio::net::UdpSocket::from_std(rtcp),
            counters,
        };
        if !self.send(id, add) {
            lock(&media.endpoints).remove(&key);
            return Err(Error::Stopped);
        }
        Ok(Endpoint { id, local })
    }

    /// Binds an even RTP port and the odd RTCP port above it, skipping pairs in use.
    fn bind_pair(&self) -> Result<(UdpSocket, UdpSocket), Error> {
        let config = &self.shared.config;
        let first = u32::from(config.port_min).next_multiple_of(2);
        let max = u32::from(config.port_max);
        if first + 1 > max {
            return Err(Error::PortsExhausted);
        }
        let pairs = ((max - 1 - first) / 2 + 1) as usize;
        let mut next = lock(&self.shared.next_pair);
        for attempt in 0..pairs {
            let index = (*next + attempt) % pairs;
            let port = (first + 2 * index as u32) as u16;
            let rtp = match UdpSocket::bind(SocketAddr::new(config.ip, port)) {
                Ok(socket) => socket,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(e.into()),
            };
            match UdpSocket::bind(SocketAddr::new(config.ip, port + 1)) {
                Ok(rtcp) => {
                    *next = (index + 1) % pairs;
                    return Ok((rtp, rtcp));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::PortsExhausted)
    }

    /// Where to send to this endpoint's far end, from its SDP. RTCP goes to the port above.
    ///
    /// Latching (symmetric RTP, RFC 4961: phones behind NAT send from the address they receive
    /// on), once the endpoint is bridged or echoing: RTP from exactly this address is always
    /// accepted and (re)latches to it; RTP from another address is accepted and latched only if
    /// nothing has latched since this call, and dropped afterwards, so a third party cannot
    /// hijack or inject into the stream ("RTP bleed"). The same holds for RTCP. Calling this
    /// again (a re-INVITE) re-arms latching.
    ///
    /// Ignored, with a warning, when `remote` (or its RTCP port) is one of our own relay ports,
    /// or an unspecified, multicast or broadcast address: a leg pointed at our own port would
    /// relay a packet to itself forever.
    pub fn set_remote(&self, ep: EndpointId, remote: SocketAddr) {
        let guard = RelayGuard::new(&self.shared.config);
        let rtcp = remote
            .port()
            .checked_add(1)
            .map(|port| SocketAddr::new(remote.ip(), port));
        if guard.refuses(remote) || rtcp.is_some_and(|rtcp| guard.refuses(rtcp)) {
            tracing::warn!(endpoint = ?ep, %remote, "ignoring a media destination on our own relay ports or not unicast");
            return;
        }
        self.send(ep, Command::SetRemote(ep, remote));
    }

    /// Relays RTP and RTCP between two endpoints of the same media thread: packets in on `a`
    /// leave from `b` to b's remote, and the other way round. Payloads pass untouched.
    pub fn bridge(&self, a: EndpointId, b: EndpointId) {
        if a.thread != b.thread {
            tracing::error!(?a, ?b, "cannot bridge endpoints of different media threads");
            return;
        }
        self.send(a, Command::Bridge(a, b));
    }

    /// Sends every packet received on `ep` back to its source (the echo test).
    pub fn echo(&self, ep: EndpointId) {
        self.send(ep, Command::Echo(ep));
    }

    /// While held, the RTP timeout of this endpoint is suspended (a held phone may be silent).
    pub fn set_hold(&self, ep: EndpointId, held: bool) {
        self.send(ep, Command::Hold(ep, held));
    }

    /// Unbridges and closes the endpoint. The media thread closes the sockets right after; the
    /// ports are free for [`allocate`](Self::allocate) once it has.
    pub fn release(&self, ep: EndpointId) {
        let Some(media) = self.shared.threads.get(usize::from(ep.thread)) else {
            return;
        };
        // The Release is queued before the key can be handed out again, so the media thread
        // never sees the new endpoint's Add ahead of the old one's Release.
        let mut endpoints = lock(&media.endpoints);
        match endpoints.get(&ep.key) {
            Some((generation, _)) if *generation == ep.generation => {
                endpoints.remove(&ep.key);
            }
            _ => return,
        }
        self.send(ep, Command::Release(ep));
        drop(endpoints);
    }

    /// The endpoint's counters, None if it was released.
    pub fn stats(&self, ep: EndpointId) -> Option<EndpointStats> {
        let media = self.shared.threads.get(usize::from(ep.thread))?;
        let endpoints = lock(&media.endpoints);
        let (generation, counters) = endpoints.get(&ep.key)?;
        (*generation == ep.generation).then(|| counters.snapshot())
    }

    /// Endpoints allocated and not released.
    pub fn active_endpoints(&self) -> usize {
        self.shared
            .threads
            .iter()
            .map(|t| lock(&t.endpoints).len())
            .sum()
    }

    /// Stops the media threads and waits for them. Other clones of the handle become inert.
    pub fn shutdown(self) {
        for media in &self.shared.threads {
            if media.commands.send(Command::Shutdown).is_ok() {
                let _ = media.waker.wake();
            }
        }
        let joins = std::mem::take(&mut *lock(&self.shared.joins));
        for join in joins {
            if join.join().is_err() {
                tracing::error!("a media thread panicked");
            }
        }
    }

    /// Queues a command for the endpoint's thread and wakes it. False if the thread is gone.
    fn send(&self, ep: EndpointId, command: Command) -> bool {
        self.send_to(usize::from(ep.thread), command)
    }

    fn send_to(&self, thread: usize, command: Command) -> bool {
        let Some(media) = self.shared.threads.get(thread) else {
            return false;
        };
        if media.commands.send(command).is_err() {
            return false;
        }
        if !media.wake_pending.swap(true, Ordering::SeqCst)
            && let Err(e) = media.waker.wake()
        {
            tracing::error!(error = %e, "cannot wake media thread");
        }
        true
    }
}

impl Drop for Shared {
    /// The last handle gone without shutdown(): stop the threads anyway, without waiting.
    fn drop(&mut self) {
        for media in &self.threads {
            if media.commands.send(Command::Shutdown).is_ok() {
                let _ = media.waker.wake();
            }
        }
    }
}

/// Puts the calling media thread under SCHED_FIFO at `priority`.
fn raise_priority(priority: u8) {
    use thread_priority::{
        RealtimeThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let value = priority
        .clamp(1, 99)
        .try_into()
        .expect("1-99 is a valid priority");
    let outcome = set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Crossplatform(value),
        ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
    );
    match outcome {
        Ok(()) => tracing::info!(priority, "media thread at realtime priority (SCHED_FIFO)"),
        Err(error) => tracing::warn!(
            priority,
            ?error,
            "cannot raise the media thread to realtime priority (needs CAP_SYS_NICE or LimitRTPRIO); running at normal priority"
        ),
    }
}

/// A seed for a leg's SSRC, first sequence number and timestamp (RFC 3550 §5.1: random) and its
/// RTCP timing.
fn rand_seed(ep: EndpointId) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(ep.key);
    hasher.write_u32(ep.generation);
    hasher.finish()
}

/// `previous` when it already says `label` (no allocation), else `label` copied.
pub(crate) fn reuse_label(previous: Option<String>, label: &str) -> Option<String> {
    match previous {
        Some(previous) if previous == label => Some(previous),
        _ => Some(label.to_owned()),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
