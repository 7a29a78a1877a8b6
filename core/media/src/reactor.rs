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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use crate::rtp::{RtpHeader, is_rtcp};
use crate::{Counters, EndpointId, MediaEvent, RelayGuard};

pub(crate) const WAKER: Token = Token(usize::MAX);

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
    Shutdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Allocated, not yet connected: packets are counted and dropped, and latch nothing.
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
        }
    }

    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
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
        std::mem::swap(&mut self.backlog, &mut self.revisit);
        for event in events.iter() {
            if event.token() != WAKER {
                self.receive(event.token().0, false);
            }
        }
        for index in 0..self.revisit.len() {
            let token = self.revisit[index];
            self.receive(token, true);
        }
        self.revisit.clear();
        true
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
                let key = id.key as usize;
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

    /// Reads the socket behind `token` until it would block (mio is edge-triggered), or up to
    /// its budget, when it goes on the backlog. `revisit`: the token comes off the backlog.
    fn receive(&mut self, token: usize, revisit: bool) {
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
            );
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

/// The packet path: validate, latch, forward. No allocation, no lock, no clock (latching
/// takes the stats lock, once per change of source).
fn relay(
    slots: &mut [Option<Slot>],
    key: usize,
    is_rtcp_port: bool,
    packet: &[u8],
    source: SocketAddr,
    guard: &RelayGuard,
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
    if !is_rtcp_port {
        slot.heard = true;
    }
    match slot.mode {
        Mode::Idle => {} // dropped above
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
