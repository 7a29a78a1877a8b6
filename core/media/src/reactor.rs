//! One media thread: a mio reactor that owns its endpoints' sockets and relays packets.
//!
//! Tokens: endpoint key `k` has RTP on token `2k` and RTCP on `2k + 1`; the waker has the
//! last token. The table of endpoints is a Vec indexed by key, so a packet finds its endpoint
//! and its bridge peer by index, without hashing or locking.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use crate::rtp::{RtpHeader, is_rtcp};
use crate::{Counters, EndpointId, MediaEvent};

pub(crate) const WAKER: Token = Token(usize::MAX);

/// Larger than any RTP packet on an Ethernet path; longer datagrams are truncated and then
/// relayed truncated, which is what a 1500-byte MTU would have done to them anyway.
const BUFFER_SIZE: usize = 2048;

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
    Shutdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Allocated, not yet connected: packets are counted and dropped.
    Idle,
    Echo,
    Bridged(usize),
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
    /// RTP has arrived since the remote was last set, so the remote is its source.
    latched: bool,
    rtcp_latched: bool,
    mode: Mode,
    held: bool,
    /// RTP arrived since the last timeout tick: a flag, so the packet path reads no clock.
    heard: bool,
    last_heard: Instant,
    timed_out: bool,
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
    notify: Arc<dyn Fn(MediaEvent) + Send + Sync>,
}

impl MediaReactor {
    pub(crate) fn new(
        thread: u16,
        poll: Poll,
        commands: mpsc::Receiver<Command>,
        wake_pending: Arc<AtomicBool>,
        rtp_timeout: Duration,
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
            notify,
        }
    }

    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        #[allow(clippy::disallowed_methods)] // the reactor owns the clock
        let mut next_tick = Instant::now() + self.tick;
        loop {
            #[allow(clippy::disallowed_methods)]
            let now = Instant::now();
            if now >= next_tick {
                self.check_timeouts(now);
                next_tick = now + self.tick;
            }
            match self.poll.poll(&mut events, Some(next_tick - now)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::error!(thread = self.thread, error = %e, "media poll failed; media thread stops");
                    return;
                }
            }
            // Commands first: a bridge requested before a packet was sent applies to it.
            if !self.drain_commands() {
                return;
            }
            for event in &events {
                if event.token() != WAKER {
                    self.receive(event.token().0);
                }
            }
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
                self.slots[key] = Some(Slot {
                    generation: id.generation,
                    rtp,
                    rtcp,
                    counters,
                    remote: None,
                    rtcp_remote: None,
                    latched: false,
                    rtcp_latched: false,
                    mode: Mode::Idle,
                    held: false,
                    heard: false,
                    last_heard: now,
                    timed_out: false,
                });
            }
            Command::SetRemote(id, remote) => {
                if let Some(slot) = self.slot_mut(id) {
                    slot.remote = Some(remote);
                    slot.rtcp_remote =
                        Some(SocketAddr::new(remote.ip(), remote.port().wrapping_add(1)));
                    slot.latched = false;
                    slot.rtcp_latched = false;
                    slot.counters.set_remote(Some(remote), false);
                }
            }
            Command::Bridge(a, b) => {
                if a == b || self.slot_mut(a).is_none() || self.slot_mut(b).is_none() {
                    return;
                }
                self.unlink(a.key as usize);
                self.unlink(b.key as usize);
                for (this, peer) in [(a, b), (b, a)] {
                    if let Some(slot) = self.slot_mut(this) {
                        slot.mode = Mode::Bridged(peer.key as usize);
                        slot.arm_timeout(now);
                    }
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
                self.unlink(id.key as usize);
                if let Some(mut slot) = self.slots[id.key as usize].take() {
                    let registry = self.poll.registry();
                    let _ = registry.deregister(&mut slot.rtp);
                    let _ = registry.deregister(&mut slot.rtcp);
                    // Dropping the slot closes both sockets: the ports are free again.
                }
            }
            Command::Shutdown => {}
        }
    }

    fn slot_mut(&mut self, id: EndpointId) -> Option<&mut Slot> {
        self.slots
            .get_mut(id.key as usize)?
            .as_mut()
            .filter(|s| s.generation == id.generation)
    }

    /// Takes the endpoint out of any bridge or echo; its former peer goes idle.
    fn unlink(&mut self, key: usize) {
        let Some(Some(slot)) = self.slots.get_mut(key) else {
            return;
        };
        let old = std::mem::replace(&mut slot.mode, Mode::Idle);
        if let Mode::Bridged(peer) = old
            && let Some(Some(peer)) = self.slots.get_mut(peer)
        {
            peer.mode = Mode::Idle;
        }
    }

    /// Reads the socket behind `token` until it would block (mio is edge-triggered).
    fn receive(&mut self, token: usize) {
        let key = token / 2;
        let is_rtcp_port = token % 2 == 1;
        let mut errors = 0;
        loop {
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
            );
        }
    }

    /// The coarse RTP timeout check: one pass over this thread's endpoints per tick.
    fn check_timeouts(&mut self, now: Instant) {
        for (key, slot) in self.slots.iter_mut().enumerate() {
            let Some(slot) = slot else { continue };
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

/// The packet path: validate, latch, forward. No allocation, no lock, no clock.
fn relay(
    slots: &mut [Option<Slot>],
    key: usize,
    is_rtcp_port: bool,
    packet: &[u8],
    source: SocketAddr,
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
    if !valid {
        slot.counters.dropped();
        return;
    }
    if is_rtcp_port {
        if !slot.rtcp_latched {
            slot.rtcp_latched = true;
            slot.rtcp_remote = Some(source);
        }
    } else {
        slot.heard = true;
        if !slot.latched {
            // Symmetric RTP (RFC 4961): the first RTP packet tells where the phone really is.
            slot.latched = true;
            if slot.remote != Some(source) {
                tracing::info!(from = ?slot.remote, to = %source, local = ?slot.rtp.local_addr().ok(), "RTP latched");
                slot.remote = Some(source);
                if !slot.rtcp_latched {
                    slot.rtcp_remote =
                        Some(SocketAddr::new(source.ip(), source.port().wrapping_add(1)));
                }
            }
            slot.counters.set_remote(Some(source), true);
        }
    }
    match slot.mode {
        Mode::Idle => slot.counters.dropped(),
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

fn send(socket: &UdpSocket, packet: &[u8], destination: SocketAddr, counters: &Counters) {
    match socket.send_to(packet, destination) {
        Ok(sent) => counters.sent(sent),
        // A full send buffer or an unreachable peer: RTP is loss-tolerant, drop the packet
        // rather than wait (media never waits).
        Err(_) => counters.dropped(),
    }
}
