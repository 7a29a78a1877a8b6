//! The signalling reactor: the one thread that owns the SIP sockets and reads the clock. It
//! feeds the [`Switch`] and carries out what the switch asks for (mio, as in STYLE.md: one
//! `Poll`, const tokens for listeners, a slab for connections, one `Waker` for other threads).

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mio::net::{TcpListener, TcpStream, UdpSocket, UnixStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use switchyard_media::MediaEvent;
use switchyard_sip::Message;
use switchyard_sip::transaction::{Peer, Transmit, TransportKind};
use tracing::{debug, info, warn};

use crate::switch::{Now, Switch};
use crate::transport::{ReadOutcome, TcpConnection};

const WAKER: Token = Token(0);
const SIGNALS: Token = Token(1);
const UDP_BASE: usize = 16;
const TCP_LISTENER_BASE: usize = 256;
const CONNECTION_BASE: usize = 1024;
/// How long a TCP connection may hold an unfinished message: 64·T1, as long as a transaction
/// would wait for the rest of it.
const PARTIAL_MESSAGE_TIMEOUT: Duration = Duration::from_secs(32);
const CONNECTION_SWEEP: Duration = Duration::from_secs(1);
const MAX_CONNECTIONS: usize = 8192;
/// Datagrams read from one UDP socket before the reactor looks at its other work (timers, TCP,
/// media events); the rest waits for the next turn of the loop, which does not sleep.
const UDP_BURST: usize = 256;
/// How long the SIP sockets must stay backlogged before new calls are shed: well inside what
/// the 4 MiB receive buffer holds at thousands of calls per second.
const OVERLOAD_AFTER: Duration = Duration::from_millis(250);
/// How long a stopped switch lingers for the answers to its last BYEs.
const STOP_LINGER: Duration = Duration::from_secs(4);

/// What other threads hand the reactor.
pub enum Input {
    Media(MediaEvent),
    /// A message a module sent the host (`SyHost.send`), from any thread.
    Module {
        module: String,
        name: String,
        body: Vec<u8>,
    },
    Command {
        line: String,
        reply: SyncSender<Result<String, String>>,
    },
    Shutdown,
}

/// A handle other threads use to reach the reactor.
#[derive(Clone)]
pub struct ReactorHandle {
    inbox: mpsc::Sender<Input>,
    waker: Arc<Waker>,
}

impl ReactorHandle {
    pub fn send(&self, input: Input) {
        if self.inbox.send(input).is_ok() {
            // A failed wake means the reactor is gone; the input is moot then.
            let _ = self.waker.wake();
        }
    }

    /// Runs a console command on the reactor thread and waits for its answer.
    pub fn execute(&self, line: &str) -> Result<String, String> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Input::Command {
            line: line.to_owned(),
            reply,
        });
        answer
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the daemon did not answer (stopping?)".to_owned())?
    }
}

pub struct Reactor {
    poll: Poll,
    inbox: Receiver<Input>,
    handle: ReactorHandle,
    udp: Vec<UdpSocket>,
    /// The local address of each socket in `udp`, read once at bind time rather than by a
    /// system call per datagram sent.
    udp_local: Vec<SocketAddr>,
    tcp_listeners: Vec<TcpListener>,
    connections: Slab<TcpConnection>,
    connection_by_addr: HashMap<SocketAddr, usize>,
    signals: Option<UnixStream>,
}

pub struct Bound {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
}

impl Reactor {
    pub fn new() -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (inbox_tx, inbox) = mpsc::channel();
        Ok(Reactor {
            poll,
            inbox,
            handle: ReactorHandle {
                inbox: inbox_tx,
                waker,
            },
            udp: Vec::new(),
            udp_local: Vec::new(),
            tcp_listeners: Vec::new(),
            connections: Slab::new(),
            connection_by_addr: HashMap::new(),
            signals: None,
        })
    }

    pub fn handle(&self) -> ReactorHandle {
        self.handle.clone()
    }

    /// Binds the SIP listeners; an address in use is an error the operator must see at once.
    pub fn bind(&mut self, udp: &[SocketAddr], tcp: &[SocketAddr]) -> io::Result<Bound> {
        let mut bound = Bound {
            udp: Vec::new(),
            tcp: Vec::new(),
        };
        for addr in udp {
            let mut socket = bind_udp(*addr)
                .map_err(|e| io::Error::new(e.kind(), format!("SIP UDP {addr}: {e}")))?;
            let token = Token(UDP_BASE + self.udp.len());
            self.poll
                .registry()
                .register(&mut socket, token, Interest::READABLE)?;
            let local = socket.local_addr()?;
            bound.udp.push(local);
            self.udp_local.push(local);
            self.udp.push(socket);
        }
        for addr in tcp {
            let mut listener = TcpListener::bind(*addr)
                .map_err(|e| io::Error::new(e.kind(), format!("SIP TCP {addr}: {e}")))?;
            let token = Token(TCP_LISTENER_BASE + self.tcp_listeners.len());
            self.poll
                .registry()
                .register(&mut listener, token, Interest::READABLE)?;
            bound.tcp.push(listener.local_addr()?);
            self.tcp_listeners.push(listener);
        }
        Ok(bound)
    }

    /// SIGTERM and SIGINT arrive through a self-pipe so the handler does nothing unsafe.
    pub fn watch_signals(&mut self) -> io::Result<()> {
        let (reader, writer) = std::os::unix::net::UnixStream::pair()?;
        reader.set_nonblocking(true)?;
        // signal-hook writes from the handler; a full pipe must not block it.
        writer.set_nonblocking(true)?;
        for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::low_level::pipe::register(signal, writer.try_clone()?)?;
        }
        let mut reader = UnixStream::from_std(reader);
        self.poll
            .registry()
            .register(&mut reader, SIGNALS, Interest::READABLE)?;
        self.signals = Some(reader);
        Ok(())
    }

    pub fn run(&mut self, switch: &mut Switch) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut datagram = vec![0u8; 65_535];
        let mut next_sweep = now().mono + CONNECTION_SWEEP;
        // UDP sockets left with datagrams after a burst; they are read again without waiting.
        let mut udp_backlog: Vec<usize> = Vec::new();
        let mut stopped_at: Option<Instant> = None;
        let mut backlog_since: Option<Instant> = None;
        loop {
            let deadline = switch
                .poll_timeout()
                .map_or(next_sweep, |when| when.min(next_sweep));
            let timeout = if udp_backlog.is_empty() {
                Some(deadline.saturating_duration_since(now().mono))
            } else {
                Some(Duration::ZERO)
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for index in std::mem::take(&mut udp_backlog) {
                if self.read_udp(switch, index, &mut datagram) {
                    udp_backlog.push(index);
                }
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => self.drain_inbox(switch),
                    SIGNALS => self.on_signal(switch),
                    Token(t) if (UDP_BASE..TCP_LISTENER_BASE).contains(&t) => {
                        let index = t - UDP_BASE;
                        if self.read_udp(switch, index, &mut datagram)
                            && !udp_backlog.contains(&index)
                        {
                            udp_backlog.push(index);
                        }
                    }
                    Token(t) if (TCP_LISTENER_BASE..CONNECTION_BASE).contains(&t) => {
                        self.accept(t - TCP_LISTENER_BASE)
                    }
                    Token(t) => {
                        let key = t - CONNECTION_BASE;
                        if event.is_writable() {
                            self.on_writable(key);
                        }
                        if event.is_readable() || event.is_read_closed() {
                            self.read_tcp(switch, key);
                        }
                    }
                }
            }
            let at = now();
            // A burst larger than one read budget is normal; a backlog that persists means
            // datagrams arrive faster than we handle them.
            backlog_since = if udp_backlog.is_empty() {
                None
            } else {
                backlog_since.or(Some(at.mono))
            };
            switch.set_overloaded(
                backlog_since.is_some_and(|since| at.mono - since >= OVERLOAD_AFTER),
            );
            switch.handle_timeout(at);
            if at.mono >= next_sweep {
                self.close_stalled_connections(at.mono);
                next_sweep = at.mono + CONNECTION_SWEEP;
            }
            self.flush(switch);
            if switch.is_stopped() {
                // Linger briefly so the last BYEs are retransmitted if lost and their answers
                // absorbed, then leave.
                let since = *stopped_at.get_or_insert(at.mono);
                if !switch.awaiting_answers() || at.mono >= since + STOP_LINGER {
                    info!("signalling reactor stopped");
                    return Ok(());
                }
            }
        }
    }

    fn drain_inbox(&mut self, switch: &mut Switch) {
        while let Ok(input) = self.inbox.try_recv() {
            match input {
                Input::Media(event) => switch.handle_media_event(now(), event),
                Input::Module { module, name, body } => {
                    switch.handle_module_message(now(), &module, &name, &body)
                }
                Input::Command { line, reply } => {
                    let _ = reply.send(switch.execute(now(), &line));
                }
                Input::Shutdown => switch.begin_shutdown(now()),
            }
        }
    }

    fn on_signal(&mut self, switch: &mut Switch) {
        let mut buf = [0u8; 16];
        if let Some(reader) = self.signals.as_mut() {
            while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
        }
        info!("signal received: graceful shutdown");
        switch.begin_shutdown(now());
    }

    /// Reads up to [`UDP_BURST`] datagrams; true if the socket may hold more (mio is
    /// edge-triggered: no new event will say so).
    fn read_udp(&mut self, switch: &mut Switch, index: usize, buf: &mut [u8]) -> bool {
        for _ in 0..UDP_BURST {
            let (len, from) = match self.udp[index].recv_from(buf) {
                Ok(received) => received,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) => {
                    // ICMP errors surface here on Linux; they say nothing about our other peers.
                    debug!(error = %e, "UDP receive error");
                    continue;
                }
            };
            let data = &buf[..len];
            // RFC 5626 §3.5.1 keep-alives and stray whitespace are not messages.
            if data.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let peer = Peer {
                transport: TransportKind::Udp,
                addr: from,
            };
            let now = now();
            match Message::parse_datagram(Bytes::copy_from_slice(data)) {
                Ok(message) => contain(peer, || switch.handle_message(now, message, peer)),
                Err(error) => contain(peer, || switch.handle_malformed(now, &error, data, peer)),
            }
            self.flush(switch);
        }
        true
    }

    fn close_stalled_connections(&mut self, now: Instant) {
        let stalled: Vec<usize> = self
            .connections
            .iter()
            .filter(|(_, c)| {
                c.partial_for(now)
                    .is_some_and(|d| d >= PARTIAL_MESSAGE_TIMEOUT)
            })
            .map(|(key, _)| key)
            .collect();
        for key in stalled {
            if let Some(c) = self.connections.get(key) {
                info!(remote = %c.remote, "closing a TCP connection whose message never completed");
            }
            self.close(key);
        }
    }

    fn accept(&mut self, index: usize) {
        loop {
            match self.tcp_listeners[index].accept() {
                Ok((stream, remote)) => {
                    if self.connections.len() >= MAX_CONNECTIONS {
                        // Dropping the stream closes it: file descriptors are also what RTP
                        // ports are made of, so a flood of idle connections must not take them.
                        warn!(%remote, limit = MAX_CONNECTIONS, "TCP connection refused: limit reached");
                        continue;
                    }
                    if let Err(e) = self.add_connection(stream, remote, true) {
                        warn!(error = %e, %remote, "cannot register a TCP connection");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    warn!(error = %e, "TCP accept failed");
                    return;
                }
            }
        }
    }

    fn add_connection(
        &mut self,
        mut stream: TcpStream,
        remote: SocketAddr,
        connected: bool,
    ) -> io::Result<usize> {
        let entry = self.connections.vacant_entry();
        let key = entry.key();
        let interest = if connected {
            Interest::READABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        };
        self.poll
            .registry()
            .register(&mut stream, Token(CONNECTION_BASE + key), interest)?;
        entry.insert(TcpConnection::new(stream, remote, connected));
        self.connection_by_addr.insert(remote, key);
        Ok(key)
    }

    fn read_tcp(&mut self, switch: &mut Switch, key: usize) {
        let Some(connection) = self.connections.get_mut(key) else {
            return;
        };
        let peer = Peer {
            transport: TransportKind::Tcp,
            addr: connection.remote,
        };
        let now = now();
        let outcome = connection.read_messages(now.mono);
        let (messages, close) = match outcome {
            ReadOutcome::Messages(messages) => (messages, false),
            ReadOutcome::Closed { messages } => (messages, true),
            ReadOutcome::Unframeable {
                error,
                raw,
                messages,
            } => {
                for message in messages {
                    contain(peer, || switch.handle_message(now, message, peer));
                }
                contain(peer, || switch.handle_malformed(now, &error, &raw, peer));
                self.flush(switch);
                self.close(key);
                return;
            }
        };
        for message in messages {
            contain(peer, || switch.handle_message(now, message, peer));
        }
        self.flush(switch);
        if close {
            self.close(key);
        }
    }

    fn on_writable(&mut self, key: usize) {
        let Some(connection) = self.connections.get_mut(key) else {
            return;
        };
        if !connection.connected {
            match connection.stream.peer_addr() {
                Ok(_) => connection.connected = true,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(_) => return self.close(key),
            }
        }
        if connection.flush().is_err() {
            return self.close(key);
        }
        self.update_interest(key);
    }

    fn update_interest(&mut self, key: usize) {
        let Some(connection) = self.connections.get_mut(key) else {
            return;
        };
        let interest = if connection.wants_write() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let _ = self.poll.registry().reregister(
            &mut connection.stream,
            Token(CONNECTION_BASE + key),
            interest,
        );
    }

    fn close(&mut self, key: usize) {
        if self.connections.contains(key) {
            let mut connection = self.connections.remove(key);
            let _ = connection.flush();
            let _ = self.poll.registry().deregister(&mut connection.stream);
            if self.connection_by_addr.get(&connection.remote) == Some(&key) {
                self.connection_by_addr.remove(&connection.remote);
            }
        }
    }

    fn flush(&mut self, switch: &mut Switch) {
        while let Some(transmit) = switch.poll_transmit() {
            self.send(transmit);
        }
    }

    fn send(&mut self, transmit: Transmit) {
        let Transmit { peer, bytes } = transmit;
        match peer.transport {
            TransportKind::Udp => {
                let index = self
                    .udp_local
                    .iter()
                    .position(|local| local.is_ipv4() == peer.addr.is_ipv4())
                    .unwrap_or(0);
                let socket = self.udp.get(index);
                if let Some(socket) = socket {
                    // A full send buffer drops the datagram; the transaction layer retransmits.
                    if let Err(e) = socket.send_to(&bytes, peer.addr) {
                        debug!(error = %e, to = %peer.addr, "UDP send failed");
                    }
                }
            }
            TransportKind::Tcp => {
                let key = match self.connection_by_addr.get(&peer.addr) {
                    Some(&key) => key,
                    None => match TcpStream::connect(peer.addr)
                        .and_then(|s| self.add_connection(s, peer.addr, false))
                    {
                        Ok(key) => key,
                        Err(e) => {
                            warn!(error = %e, to = %peer.addr, "cannot open a TCP connection");
                            return;
                        }
                    },
                };
                let Some(connection) = self.connections.get_mut(key) else {
                    return;
                };
                if !connection.queue(&bytes) {
                    warn!(to = %peer.addr, "TCP peer is not reading: closing the connection");
                    return self.close(key);
                }
                if connection.connected && connection.flush().is_err() {
                    return self.close(key);
                }
                self.update_interest(key);
            }
        }
    }

    /// After the switch has stopped: push out what it still queued (final BYEs).
    pub fn flush_remaining(&mut self, switch: &mut Switch) {
        self.flush(switch);
        let keys: Vec<usize> = self.connections.iter().map(|(k, _)| k).collect();
        for key in keys {
            if let Some(c) = self.connections.get_mut(key) {
                let _ = c.flush();
            }
        }
    }
}

/// What we ask of the kernel for the SIP UDP socket. The default (~208 KiB) holds only a few
/// milliseconds of traffic at thousands of calls per second, so any pause of the reactor would
/// drop datagrams and turn into retransmissions and failed calls. Linux caps the request at
/// `net.core.rmem_max`; the granted size is logged.
const UDP_SOCKET_BUFFER: usize = 4 << 20;

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a smaller buffer still works, just with less slack.
    let _ = socket.set_recv_buffer_size(UDP_SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(UDP_SOCKET_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    info!(
        %addr,
        receive_buffer = socket.recv_buffer_size().unwrap_or(0),
        send_buffer = socket.send_buffer_size().unwrap_or(0),
        "SIP UDP socket bound"
    );
    Ok(UdpSocket::from_std(socket.into()))
}

/// Runs the handling of one message from the network so that a bug reachable by some message
/// costs that message, not the daemon and every other call: the panic is logged (with the
/// message's source) and the reactor goes on. The parser and the protocol cores are fuzzed
/// so that this should never fire; it is the last line, not the plan.
fn contain(peer: Peer, handle: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(handle)).is_err() {
        tracing::error!(source = %peer.addr, "BUG: handling a SIP message panicked; message dropped, daemon continues");
    }
}

/// The only place the signalling thread reads the clocks.
#[allow(clippy::disallowed_methods)]
pub fn now() -> Now {
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Now {
        mono: Instant::now(),
        unix_ms,
    }
}
