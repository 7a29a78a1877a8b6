//! The RFC 3261 §17 transaction layer, with the RFC 6026 corrections, as one sans-IO state
//! machine for all transactions of an endpoint.
//!
//! Four machines live here: INVITE client (§17.1.1), non-INVITE client (§17.1.2), INVITE
//! server (§17.2.1) and non-INVITE server (§17.2.2). RFC 6026 adds the `Accepted` state to both
//! INVITE machines: a 2xx no longer destroys the transaction, so retransmitted 2xx responses
//! (client) and retransmitted INVITEs (server) still match something, with Timer M / Timer L
//! bounding the state.
//!
//! # Driving it
//!
//! Nothing here reads the clock or owns a socket. The reactor feeds parsed messages with
//! [`TransactionLayer::handle_receive`], starts transactions with
//! [`TransactionLayer::send_request`] / [`TransactionLayer::send_response`], calls
//! [`TransactionLayer::handle_timeout`] when [`TransactionLayer::poll_timeout`] is due, and after
//! every one of those calls drains [`TransactionLayer::poll_transmit`] and
//! [`TransactionLayer::poll_event`] until both return `None` (the str0m drain rule).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use switchyard_sip::Message;
//! use switchyard_sip::transaction::*;
//!
//! # #[allow(clippy::disallowed_methods)]
//! let start = Instant::now(); // only a reactor reads the clock
//! let mut layer = TransactionLayer::new(TimerConfig::default());
//! let peer = Peer { transport: TransportKind::Udp, addr: "192.0.2.7:5060".parse().unwrap() };
//! let options = Message::parse_datagram(
//!     "OPTIONS sip:192.0.2.7 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
//!      From: <sip:a@192.0.2.1>;tag=1\r\nTo: <sip:192.0.2.7>\r\nCall-ID: x\r\n\
//!      CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n".into(),
//! ).unwrap();
//! layer.send_request(start, options, peer);
//! let mut sent = 0;
//! // The reactor loop: drain transmits and events, sleep until poll_timeout, fire timers.
//! while let Some(wake_at) = layer.poll_timeout() {
//!     while let Some(t) = layer.poll_transmit() { sent += 1; let _ = (t.peer, t.bytes); }
//!     while let Some(ev) = layer.poll_event() {
//!         assert!(matches!(ev, TxEvent::ClientTimeout { .. })); // nobody answered
//!     }
//!     layer.handle_timeout(wake_at);
//! }
//! assert_eq!(sent, 11); // the request and 10 Timer E retransmissions before Timer F
//! assert_eq!(layer.len(), (0, 0));
//! ```
//!
//! # Choices beyond the RFC text
//!
//! - The INVITE server does not send `100 Trying` by itself (§17.2.1 lets the TU do it); a
//!   retransmitted INVITE re-sends the last provisional response if there is one.
//! - The 2xx retransmission that §13.3.1.4 gives the UAS core is done here, in the INVITE server
//!   transaction's `Accepted` state, until [`TransactionLayer::confirm_2xx`] or 64·T1 (Timer L).
//! - An ACK never gets a server transaction. An ACK that matches an INVITE server transaction
//!   in `Completed` is absorbed there (it acknowledges our non-2xx); every other ACK is passed up
//!   as [`TxEvent::Request`] with `tx: None` — including one that matches a transaction in
//!   `Accepted` (RFC 6026 §8.7). [`TransactionLayer::match_ack`] finds the INVITE server
//!   transaction an ACK for a 2xx belongs to, so the TU can call `confirm_2xx`.
//! - A 2xx to an INVITE that matches no client transaction (Timer M already fired, or a UAC
//!   restart) comes up as [`TxEvent::StrayResponse`] so the TU can ACK and BYE it
//!   (RFC 3261 §13.2.2.4); other unmatched responses are dropped (§17.1.3).
//! - RFC 3261 §9.1: if an INVITE client transaction has been CANCELled (a CANCEL client
//!   transaction with its branch was started) and no final response arrives within 64·T1, the
//!   INVITE transaction is destroyed with [`TxEvent::ClientTimeout`]. Without this a UAS that
//!   vanishes after 180 would leave the transaction in `Proceeding` for ever.

use std::collections::{BTreeSet, HashMap, VecDeque};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::builder::MessageBuilder;
use crate::message::{Message, Method};

/// RFC 3261 §8.1.1.7: branches of RFC 3261 implementations start with this.
const MAGIC_COOKIE: &str = "z9hG4bK";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportKind {
    Udp,
    /// Reliable: no retransmit timers, D/I/J/K = 0.
    Tcp,
}

impl TransportKind {
    pub fn is_reliable(self) -> bool {
        matches!(self, TransportKind::Tcp)
    }
}

/// Where a message goes to (or came from): transport and address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: TransportKind,
    pub addr: SocketAddr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientTxId(u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxId(u64);

/// RFC 3261 §17.1.1.1 / Table 4 timer bases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate, 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network, 5 s.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// Timers B, F, H, J, L, M: 64·T1.
    fn t1x64(&self) -> Duration {
        self.t1 * 64
    }
}

/// A datagram / stream write the reactor must perform.
#[derive(Clone, Debug)]
pub struct Transmit {
    pub peer: Peer,
    pub bytes: Bytes,
}

#[derive(Debug)]
pub enum TxEvent {
    /// A request that starts a new server transaction (any method but ACK), or an ACK that
    /// matched no INVITE server transaction in `Completed` (= ACK for a 2xx, for the dialog
    /// layer: `tx` is None then). A CANCEL gets its own server transaction; `cancels` names the
    /// INVITE server transaction it matches (RFC 3261 §9.2: same branch, same sent-by, method
    /// INVITE) if any.
    Request {
        tx: Option<ServerTxId>,
        msg: Message,
        peer: Peer,
        cancels: Option<ServerTxId>,
    },
    /// A response for a client transaction: provisional and final; retransmissions of a final
    /// non-2xx are absorbed, but every 2xx to an INVITE (including retransmissions, RFC 6026
    /// Accepted state) is passed up so the TU re-ACKs.
    Response { tx: ClientTxId, msg: Message },
    /// Timer B or F fired (no final response), or a CANCELled INVITE got no final response
    /// within 64·T1 (§9.1): the TU treats it as 408.
    ClientTimeout { tx: ClientTxId },
    /// Timer H fired (INVITE server sent a non-2xx final and no ACK came), or the 2xx
    /// retransmission window (64·T1, Timer L) ended without the TU calling `confirm_2xx`: the
    /// TU should tear the dialog down (send BYE).
    ServerAckTimeout { tx: ServerTxId },
    /// A 2xx to an INVITE that matched no client transaction (RFC 3261 §13.2.2.4: the UAC core
    /// must still ACK it, then may BYE).
    StrayResponse { msg: Message },
}

/// Every timer of every machine (RFC 3261 Table 4, RFC 6026 Table 1), plus two this layer
/// runs on behalf of the TU core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Timer {
    /// INVITE request retransmit, UDP only; T1 doubling, no cap (§17.1.1.2).
    A,
    /// INVITE client transaction timeout in Calling, 64·T1.
    B,
    /// INVITE client: wait for response retransmits in Completed, ≥ 32 s on UDP.
    D,
    /// Non-INVITE request retransmit, UDP only; T1 doubling capped at T2 (§17.1.2.2).
    E,
    /// Non-INVITE client transaction timeout, 64·T1.
    F,
    /// Non-INVITE client: wait for response retransmits in Completed, T4 on UDP.
    K,
    /// INVITE server: non-2xx final retransmit, UDP only; T1 doubling capped at T2.
    G,
    /// INVITE server: wait for ACK in Completed, 64·T1.
    H,
    /// INVITE server: absorb ACK retransmits in Confirmed, T4 on UDP.
    I,
    /// Non-INVITE server: absorb request retransmits in Completed, 64·T1 on UDP.
    J,
    /// RFC 6026: INVITE server Accepted state lifetime, 64·T1.
    L,
    /// RFC 6026: INVITE client Accepted state lifetime, 64·T1.
    M,
    /// RFC 3261 §13.3.1.4: 2xx retransmit by the UAS core, T1 doubling capped at T2.
    Retransmit2xx,
    /// RFC 3261 §9.1: 64·T1 after the CANCEL, give up on the INVITE.
    CancelGuard,
}

impl Timer {
    const ALL: [Timer; 14] = [
        Timer::A,
        Timer::B,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::K,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::L,
        Timer::M,
        Timer::Retransmit2xx,
        Timer::CancelGuard,
    ];
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum TxRef {
    Client(ClientTxId),
    Server(ServerTxId),
}

/// Armed timers ordered by deadline: `next` is the first entry, not a scan, and `stop` removes
/// the exact entry, so the earliest deadline is always a live one.
#[derive(Default)]
struct TimerQueue {
    armed: FastMap<(TxRef, Timer), Instant>,
    queue: BTreeSet<(Instant, TxRef, Timer)>,
}

impl TimerQueue {
    fn set(&mut self, who: TxRef, timer: Timer, at: Instant) {
        if let Some(old) = self.armed.insert((who, timer), at) {
            self.queue.remove(&(old, who, timer));
        }
        self.queue.insert((at, who, timer));
    }

    fn stop(&mut self, who: TxRef, timer: Timer) {
        if let Some(old) = self.armed.remove(&(who, timer)) {
            self.queue.remove(&(old, who, timer));
        }
    }

    fn stop_all(&mut self, who: TxRef) {
        for t in Timer::ALL {
            self.stop(who, t);
        }
    }

    fn next(&self) -> Option<Instant> {
        self.queue.first().map(|&(at, _, _)| at)
    }

    fn pop_expired(&mut self, now: Instant) -> Option<(TxRef, Timer)> {
        let &(at, who, timer) = self.queue.first()?;
        if at > now {
            return None;
        }
        self.queue.pop_first();
        self.armed.remove(&(who, timer));
        Some((who, timer))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientState {
    /// INVITE sent, nothing heard (§17.1.1.2).
    Calling,
    /// Non-INVITE sent, nothing heard (§17.1.2.2).
    Trying,
    Proceeding,
    Completed,
    /// RFC 6026 §7.2: 2xx received, absorbing nothing, passing 2xx retransmits up.
    Accepted,
}

/// §17.1.3: a response matches by top Via branch and CSeq method.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ClientKey {
    branch: Box<str>,
    method: Method,
}

struct ClientTransaction {
    invite: bool,
    state: ClientState,
    request: Message,
    peer: Peer,
    key: ClientKey,
    retransmit_interval: Duration,
    /// The ACK this layer generated for a non-2xx final (§17.1.1.3), re-sent on retransmits.
    ack: Option<Bytes>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerState {
    /// Non-INVITE received, no response yet.
    Trying,
    Proceeding,
    Completed,
    /// INVITE: ACK for the non-2xx received.
    Confirmed,
    /// RFC 6026 §7.1: INVITE answered with a 2xx.
    Accepted,
}

/// How a request finds its server transaction (§17.2.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum ServerKey {
    /// RFC 3261 peers: branch (with the magic cookie), sent-by, and method (ACK → INVITE).
    Branch {
        branch: Box<str>,
        host: Box<str>,
        port: u16,
        method: Method,
    },
    /// RFC 2543 peers (§17.2.3 last paragraph): Request-URI, From tag, Call-ID, CSeq number,
    /// top Via, method (ACK → INVITE). The To tag is checked after the lookup because an ACK
    /// carries the tag of our response, not of the INVITE.
    Legacy {
        request_uri: Box<str>,
        from_tag: Option<Box<str>>,
        call_id: Box<str>,
        cseq: u32,
        top_via: Box<str>,
        method: Method,
    },
}

/// An ACK for a 2xx belongs to the INVITE with the same Call-ID and CSeq number (§13.2.2.4).
type AckKey = (Box<str>, u32);

struct ServerTransaction {
    invite: bool,
    state: ServerState,
    request: Message,
    peer: Peer,
    key: ServerKey,
    last_response: Option<Bytes>,
    /// To tag of the final response, for RFC 2543 ACK matching.
    response_to_tag: Option<Box<str>>,
    retransmit_interval: Duration,
    /// The TU saw the ACK for our 2xx.
    confirmed: bool,
    ack_key: Option<AckKey>,
}

/// All client and server transactions of one endpoint.
pub struct TransactionLayer {
    config: TimerConfig,
    next_id: u64,
    // Transactions are boxed and hashed with foldhash: these maps hold every transaction of
    // the last 32 s (Timer D / J), and a std SipHash map of inline 500-byte values stalled the
    // reactor for tens of ms on each resize at 2,000 calls/s, long enough to overflow the
    // socket's receive buffer. foldhash is seeded per process, so branches chosen by a peer
    // cannot be aimed at one bucket.
    clients: FastMap<ClientTxId, Box<ClientTransaction>>,
    client_index: FastMap<ClientKey, ClientTxId>,
    servers: FastMap<ServerTxId, Box<ServerTransaction>>,
    server_index: FastMap<ServerKey, ServerTxId>,
    /// INVITE server transactions in Accepted, for [`TransactionLayer::match_ack`].
    accepted: FastMap<AckKey, ServerTxId>,
    timers: TimerQueue,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TxEvent>,
}

impl TransactionLayer {
    pub fn new(config: TimerConfig) -> Self {
        TransactionLayer {
            config,
            next_id: 1,
            clients: FastMap::default(),
            client_index: FastMap::default(),
            servers: FastMap::default(),
            server_index: FastMap::default(),
            accepted: FastMap::default(),
            timers: TimerQueue::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &TimerConfig {
        &self.config
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn transmit(&mut self, peer: Peer, bytes: Bytes) {
        self.transmits.push_back(Transmit { peer, bytes });
    }

    /// Feed a parsed message received from `peer` (for requests: where responses go, rport /
    /// received already applied).
    ///
    /// Requests match server transactions by RFC 3261 §17.2.3 (magic-cookie branch + sent-by +
    /// method, ACK matching the INVITE), with the RFC 2543 fallback for branches without the
    /// cookie; retransmitted requests are absorbed and the last response re-sent. Responses
    /// match client transactions by top Via branch + CSeq method (§17.1.3); unmatched ones are
    /// dropped, except a 2xx to INVITE, which comes up as [`TxEvent::StrayResponse`].
    pub fn handle_receive(&mut self, now: Instant, msg: Message, peer: Peer) {
        if msg.is_request() {
            self.receive_request(now, msg, peer);
        } else {
            self.receive_response(now, msg);
        }
    }

    fn receive_request(&mut self, now: Instant, msg: Message, peer: Peer) {
        let Some(method) = msg.method().cloned() else {
            return;
        };
        if method == Method::Ack {
            self.receive_ack(now, msg, peer);
            return;
        }
        let key = server_key(&msg, &method);
        if let Some(id) = self.lookup_server(&key, &msg, false) {
            // §17.2.1 / §17.2.2: a retransmission; re-send the last response, if any.
            let st = &self.servers[&id];
            if matches!(st.state, ServerState::Proceeding | ServerState::Completed)
                && let Some(r) = st.last_response.clone()
            {
                self.transmit(st.peer, r);
            }
            return;
        }
        let cancels = if method == Method::Cancel {
            // §9.2: the INVITE this CANCEL targets (same key with method INVITE).
            let invite_key = server_key(&msg, &Method::Invite);
            self.lookup_server(&invite_key, &msg, false)
                .filter(|id| self.servers[id].invite)
        } else {
            None
        };
        let id = ServerTxId(self.next_id());
        let invite = method == Method::Invite;
        self.server_index.insert(key.clone(), id);
        self.servers.insert(
            id,
            Box::new(ServerTransaction {
                invite,
                state: if invite {
                    ServerState::Proceeding
                } else {
                    ServerState::Trying
                },
                request: msg.clone(),
                peer,
                key,
                last_response: None,
                response_to_tag: None,
                retransmit_interval: self.config.t1,
                confirmed: false,
                ack_key: None,
            }),
        );
        self.events.push_back(TxEvent::Request {
            tx: Some(id),
            msg,
            peer,
            cancels,
        });
    }

    fn receive_ack(&mut self, now: Instant, msg: Message, peer: Peer) {
        let key = server_key(&msg, &Method::Invite);
        if let Some(id) = self.lookup_server(&key, &msg, true) {
            let st = self
                .servers
                .get_mut(&id)
                .expect("indexed transaction exists");
            match st.state {
                ServerState::Completed => {
                    // §17.2.1: the ACK for our non-2xx; stop G and H, absorb ACK
                    // retransmits for Timer I.
                    st.state = ServerState::Confirmed;
                    let reliable = st.peer.transport.is_reliable();
                    let who = TxRef::Server(id);
                    self.timers.stop(who, Timer::G);
                    self.timers.stop(who, Timer::H);
                    let wait = if reliable {
                        Duration::ZERO
                    } else {
                        self.config.t4
                    };
                    self.set_or_terminate(who, Timer::I, now, wait);
                    return;
                }
                // RFC 6026 §8.7: an ACK matching an Accepted transaction goes to the TU.
                ServerState::Accepted => {}
                _ => return,
            }
        }
        self.events.push_back(TxEvent::Request {
            tx: None,
            msg,
            peer,
            cancels: None,
        });
    }

    /// Index lookup plus, for RFC 2543 keys, the To tag check of §17.2.3.
    fn lookup_server(&self, key: &ServerKey, msg: &Message, is_ack: bool) -> Option<ServerTxId> {
        let id = *self.server_index.get(key)?;
        let st = &self.servers[&id];
        if let ServerKey::Legacy { .. } = key {
            let to_tag = msg.to().tag().map(str::to_owned);
            let want = if is_ack && st.response_to_tag.is_some() {
                st.response_to_tag.as_deref().map(str::to_owned)
            } else {
                st.request.to().tag().map(str::to_owned)
            };
            if to_tag != want {
                return None;
            }
        }
        Some(id)
    }

    fn receive_response(&mut self, now: Instant, msg: Message) {
        let Some(status) = msg.status() else {
            return;
        };
        let branch: Box<str> = msg.top_via().branch().unwrap_or("").into();
        let method = msg.cseq().1.clone();
        let key = ClientKey { branch, method };
        let Some(&id) = self.client_index.get(&key) else {
            if key.method == Method::Invite && (200..300).contains(&status) {
                self.events.push_back(TxEvent::StrayResponse { msg });
            }
            return;
        };
        let who = TxRef::Client(id);
        let t1x64 = self.config.t1x64();
        let ct = self
            .clients
            .get_mut(&id)
            .expect("indexed transaction exists");
        let reliable = ct.peer.transport.is_reliable();
        if ct.invite {
            match (ct.state, status) {
                (ClientState::Calling | ClientState::Proceeding, 100..=199) => {
                    // §17.1.1.2: stop retransmitting; Timer B only acts in Calling.
                    ct.state = ClientState::Proceeding;
                    self.timers.stop(who, Timer::A);
                    self.timers.stop(who, Timer::B);
                    self.events.push_back(TxEvent::Response { tx: id, msg });
                }
                (ClientState::Calling | ClientState::Proceeding, 200..=299) => {
                    // RFC 6026 §7.2: Accepted, Timer M; the TU builds the ACK (§13.2.2.4).
                    ct.state = ClientState::Accepted;
                    for t in [Timer::A, Timer::B, Timer::CancelGuard] {
                        self.timers.stop(who, t);
                    }
                    self.timers.set(who, Timer::M, now + t1x64);
                    self.events.push_back(TxEvent::Response { tx: id, msg });
                }
                (ClientState::Calling | ClientState::Proceeding, 300..=699) => {
                    // §17.1.1.2: ACK it ourselves, keep absorbing retransmits for Timer D.
                    ct.state = ClientState::Completed;
                    let ack = build_ack(&ct.request, &msg);
                    ct.ack = Some(ack.clone());
                    let peer = ct.peer;
                    for t in [Timer::A, Timer::B, Timer::CancelGuard] {
                        self.timers.stop(who, t);
                    }
                    self.transmit(peer, ack);
                    self.events.push_back(TxEvent::Response { tx: id, msg });
                    let wait = if reliable {
                        Duration::ZERO
                    } else {
                        t1x64.max(Duration::from_secs(32))
                    };
                    self.set_or_terminate(who, Timer::D, now, wait);
                }
                (ClientState::Completed, 300..=699) => {
                    if let Some(ack) = ct.ack.clone() {
                        let peer = ct.peer;
                        self.transmit(peer, ack);
                    }
                }
                (ClientState::Accepted, 200..=299) => {
                    // RFC 6026 §8.4: retransmitted (or forked) 2xx go up for re-ACK.
                    self.events.push_back(TxEvent::Response { tx: id, msg });
                }
                _ => {}
            }
        } else {
            match (ct.state, status) {
                (ClientState::Trying | ClientState::Proceeding, 100..=199) => {
                    ct.state = ClientState::Proceeding;
                    self.events.push_back(TxEvent::Response { tx: id, msg });
                }
                (ClientState::Trying | ClientState::Proceeding, 200..=699) => {
                    // §17.1.2.2: Completed; Timer K absorbs response retransmits.
                    ct.state = ClientState::Completed;
                    self.timers.stop(who, Timer::E);
                    self.timers.stop(who, Timer::F);
                    self.events.push_back(TxEvent::Response { tx: id, msg });
                    let wait = if reliable {
                        Duration::ZERO
                    } else {
                        self.config.t4
                    };
                    self.set_or_terminate(who, Timer::K, now, wait);
                }
                _ => {}
            }
        }
    }

    /// Start a client transaction and send `request` (the parsed form; its bytes are sent).
    ///
    /// INVITE → INVITE client transaction (Timer A retransmits on UDP, B times out; on a
    /// non-2xx final it sends the ACK itself, §17.1.1.3). Other methods → Timers E/F/K.
    /// An ACK must not be sent through this (use [`TransactionLayer::send_stateless`]); if one
    /// is, it is sent statelessly and the returned id never produces events.
    pub fn send_request(&mut self, now: Instant, request: Message, peer: Peer) -> ClientTxId {
        let id = ClientTxId(self.next_id());
        let method = request.method().cloned();
        debug_assert!(
            matches!(&method, Some(m) if *m != Method::Ack),
            "send_request takes requests other than ACK"
        );
        let Some(method) = method.filter(|m| *m != Method::Ack) else {
            self.transmit(peer, request.as_bytes().clone());
            return id;
        };
        self.transmit(peer, request.as_bytes().clone());
        let branch: Box<str> = request.top_via().branch().unwrap_or("").into();
        let invite = method == Method::Invite;
        let who = TxRef::Client(id);
        let reliable = peer.transport.is_reliable();
        let t1x64 = self.config.t1x64();
        if invite {
            if !reliable {
                self.timers.set(who, Timer::A, now + self.config.t1);
            }
            self.timers.set(who, Timer::B, now + t1x64);
        } else {
            if !reliable {
                self.timers.set(who, Timer::E, now + self.config.t1);
            }
            self.timers.set(who, Timer::F, now + t1x64);
        }
        if method == Method::Cancel {
            // §9.1: a CANCEL carries the INVITE's branch.
            let invite_key = ClientKey {
                branch: branch.clone(),
                method: Method::Invite,
            };
            if let Some(&inv) = self.client_index.get(&invite_key)
                && matches!(
                    self.clients[&inv].state,
                    ClientState::Calling | ClientState::Proceeding
                )
            {
                self.timers
                    .set(TxRef::Client(inv), Timer::CancelGuard, now + t1x64);
            }
        }
        let key = ClientKey { branch, method };
        self.client_index.insert(key.clone(), id);
        self.clients.insert(
            id,
            Box::new(ClientTransaction {
                invite,
                state: if invite {
                    ClientState::Calling
                } else {
                    ClientState::Trying
                },
                request,
                peer,
                key,
                retransmit_interval: self.config.t1,
                ack: None,
            }),
        );
        id
    }

    /// Send a response on a server transaction (provisional or final). A 2xx to INVITE moves
    /// to Accepted (RFC 6026) and is retransmitted on UDP with T1 doubling capped at T2
    /// (§13.3.1.4) until [`TransactionLayer::confirm_2xx`] or 64·T1. Responses the state does
    /// not allow (a second final, anything on an unknown transaction) are ignored.
    pub fn send_response(&mut self, now: Instant, tx: ServerTxId, response: Message) {
        let Some(status) = response.status() else {
            return;
        };
        let t1 = self.config.t1;
        let t1x64 = self.config.t1x64();
        let who = TxRef::Server(tx);
        let Some(st) = self.servers.get_mut(&tx) else {
            return;
        };
        let reliable = st.peer.transport.is_reliable();
        let peer = st.peer;
        let bytes = response.as_bytes().clone();
        match (st.invite, st.state, status) {
            (true, ServerState::Proceeding, 100..=199)
            | (false, ServerState::Trying | ServerState::Proceeding, 100..=199) => {
                st.state = ServerState::Proceeding;
                st.last_response = Some(bytes.clone());
            }
            (true, ServerState::Proceeding, 200..=299) => {
                st.state = ServerState::Accepted;
                st.last_response = Some(bytes.clone());
                st.response_to_tag = response.to().tag().map(Into::into);
                let ack_key: AckKey = (st.request.call_id().into(), st.request.cseq().0);
                st.ack_key = Some(ack_key.clone());
                st.retransmit_interval = t1;
                self.accepted.insert(ack_key, tx);
                self.timers.set(who, Timer::L, now + t1x64);
                if !reliable {
                    self.timers.set(who, Timer::Retransmit2xx, now + t1);
                }
            }
            (true, ServerState::Proceeding, 300..=699) => {
                st.state = ServerState::Completed;
                st.last_response = Some(bytes.clone());
                st.response_to_tag = response.to().tag().map(Into::into);
                st.retransmit_interval = t1;
                if !reliable {
                    self.timers.set(who, Timer::G, now + t1);
                }
                self.timers.set(who, Timer::H, now + t1x64);
            }
            (true, ServerState::Accepted, 200..=299) => {
                // RFC 6026 §8.5: further 2xx from the TU are sent; retransmit the latest.
                st.last_response = Some(bytes.clone());
            }
            (false, ServerState::Trying | ServerState::Proceeding, 200..=699) => {
                st.state = ServerState::Completed;
                st.last_response = Some(bytes.clone());
                self.transmit(peer, bytes);
                let wait = if reliable { Duration::ZERO } else { t1x64 };
                self.set_or_terminate(who, Timer::J, now, wait);
                return;
            }
            _ => return,
        }
        self.transmit(peer, bytes);
    }

    /// The TU saw the ACK for the 2xx of this INVITE server transaction: stop retransmitting
    /// it. The transaction stays in Accepted until Timer L to absorb INVITE retransmits.
    pub fn confirm_2xx(&mut self, tx: ServerTxId) {
        if let Some(st) = self.servers.get_mut(&tx)
            && st.state == ServerState::Accepted
        {
            st.confirmed = true;
            self.timers.stop(TxRef::Server(tx), Timer::Retransmit2xx);
        }
    }

    /// The INVITE server transaction in Accepted that an ACK (for a 2xx) belongs to: same
    /// Call-ID, CSeq number and From tag, and the To tag of our 2xx (§13.2.2.4, §12.2.2).
    pub fn match_ack(&self, ack: &Message) -> Option<ServerTxId> {
        let key: AckKey = (ack.call_id().into(), ack.cseq().0);
        let id = *self.accepted.get(&key)?;
        let st = &self.servers[&id];
        let from_ok = ack.from().tag() == st.request.from().tag();
        let to_ok = st.response_to_tag.is_none() || ack.to().tag() == st.response_to_tag.as_deref();
        (from_ok && to_ok).then_some(id)
    }

    /// Send without a transaction (ACK for 2xx, stateless replies).
    pub fn send_stateless(&mut self, peer: Peer, bytes: Bytes) {
        self.transmit(peer, bytes);
    }

    /// Fire every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((who, timer)) = self.timers.pop_expired(now) {
            match who {
                TxRef::Client(id) => self.client_timer(now, id, timer),
                TxRef::Server(id) => self.server_timer(now, id, timer),
            }
        }
    }

    fn client_timer(&mut self, now: Instant, id: ClientTxId, timer: Timer) {
        let t2 = self.config.t2;
        let who = TxRef::Client(id);
        let Some(ct) = self.clients.get_mut(&id) else {
            return;
        };
        match (timer, ct.state) {
            (Timer::A, ClientState::Calling) => {
                // §17.1.1.2: retransmit, double the interval (no cap for INVITE).
                let (peer, bytes) = (ct.peer, ct.request.as_bytes().clone());
                ct.retransmit_interval *= 2;
                let next = now + ct.retransmit_interval;
                self.transmit(peer, bytes);
                self.timers.set(who, Timer::A, next);
            }
            (Timer::E, ClientState::Trying | ClientState::Proceeding) => {
                // §17.1.2.2: doubling capped at T2 in Trying, every T2 in Proceeding.
                ct.retransmit_interval = if ct.state == ClientState::Trying {
                    (ct.retransmit_interval * 2).min(t2)
                } else {
                    t2
                };
                let (peer, bytes) = (ct.peer, ct.request.as_bytes().clone());
                let next = now + ct.retransmit_interval;
                self.transmit(peer, bytes);
                self.timers.set(who, Timer::E, next);
            }
            (Timer::B, ClientState::Calling)
            | (Timer::F, ClientState::Trying | ClientState::Proceeding)
            | (Timer::CancelGuard, ClientState::Calling | ClientState::Proceeding) => {
                self.events.push_back(TxEvent::ClientTimeout { tx: id });
                self.terminate(who);
            }
            (Timer::D | Timer::K | Timer::M, _) => self.terminate(who),
            _ => {}
        }
    }

    fn server_timer(&mut self, now: Instant, id: ServerTxId, timer: Timer) {
        let t2 = self.config.t2;
        let who = TxRef::Server(id);
        let Some(st) = self.servers.get_mut(&id) else {
            return;
        };
        match (timer, st.state) {
            (Timer::G, ServerState::Completed) | (Timer::Retransmit2xx, ServerState::Accepted) => {
                // §17.2.1 (G) and §13.3.1.4 (2xx): T1 doubling capped at T2.
                if timer == Timer::Retransmit2xx && st.confirmed {
                    return;
                }
                let Some(bytes) = st.last_response.clone() else {
                    return;
                };
                let peer = st.peer;
                st.retransmit_interval = (st.retransmit_interval * 2).min(t2);
                let next = now + st.retransmit_interval;
                self.transmit(peer, bytes);
                self.timers.set(who, timer, next);
            }
            (Timer::H, ServerState::Completed) => {
                self.events.push_back(TxEvent::ServerAckTimeout { tx: id });
                self.terminate(who);
            }
            (Timer::L, ServerState::Accepted) => {
                if !st.confirmed {
                    self.events.push_back(TxEvent::ServerAckTimeout { tx: id });
                }
                self.terminate(who);
            }
            (Timer::I | Timer::J, _) => self.terminate(who),
            _ => {}
        }
    }

    /// Arm `timer` after `wait`, or end the transaction now when `wait` is zero (reliable
    /// transports: D, I, J, K = 0).
    fn set_or_terminate(&mut self, who: TxRef, timer: Timer, now: Instant, wait: Duration) {
        if wait.is_zero() {
            self.terminate(who);
        } else {
            self.timers.set(who, timer, now + wait);
        }
    }

    fn terminate(&mut self, who: TxRef) {
        self.timers.stop_all(who);
        match who {
            TxRef::Client(id) => {
                if let Some(ct) = self.clients.remove(&id)
                    && self.client_index.get(&ct.key) == Some(&id)
                {
                    self.client_index.remove(&ct.key);
                }
            }
            TxRef::Server(id) => {
                if let Some(st) = self.servers.remove(&id) {
                    if self.server_index.get(&st.key) == Some(&id) {
                        self.server_index.remove(&st.key);
                    }
                    if let Some(k) = st.ack_key
                        && self.accepted.get(&k) == Some(&id)
                    {
                        self.accepted.remove(&k);
                    }
                }
            }
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    /// The earliest armed timer (the first entry of an ordered set, not a scan).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Live transactions: (client, server).
    pub fn len(&self) -> (usize, usize) {
        (self.clients.len(), self.servers.len())
    }

    /// The request that created a server transaction (to build responses from).
    pub fn server_request(&self, tx: ServerTxId) -> Option<&Message> {
        self.servers.get(&tx).map(|s| &s.request)
    }

    /// The request a client transaction sent.
    pub fn client_request(&self, tx: ClientTxId) -> Option<&Message> {
        self.clients.get(&tx).map(|c| &c.request)
    }

    /// The peer a server transaction answers to.
    pub fn server_peer(&self, tx: ServerTxId) -> Option<Peer> {
        self.servers.get(&tx).map(|s| s.peer)
    }
}

fn server_key(msg: &Message, method: &Method) -> ServerKey {
    let via = msg.top_via();
    match via.branch() {
        // RFC 4475 §3.2.1 (badbranch): a bare cookie is no unique branch; fall back.
        Some(b) if b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE) => {
            let default_port = if via.transport.eq_ignore_ascii_case("TLS") {
                5061
            } else {
                5060
            };
            ServerKey::Branch {
                branch: b.into(),
                host: via.host.to_ascii_lowercase().into(),
                port: via.port.unwrap_or(default_port),
                method: method.clone(),
            }
        }
        _ => ServerKey::Legacy {
            request_uri: msg.request_uri().unwrap_or("").into(),
            from_tag: msg.from().tag().map(Into::into),
            call_id: msg.call_id().into(),
            cseq: msg.cseq().0,
            top_via: via.raw.trim().into(),
            method: method.clone(),
        },
    }
}

/// RFC 3261 §17.1.1.3: the ACK for a non-2xx final. Request-URI, Call-ID, From and the single
/// Via come from the INVITE (same branch: it belongs to this transaction), To from the
/// response (it carries the UAS's tag), CSeq number from the INVITE with method ACK, and the
/// INVITE's Route headers.
fn build_ack(invite: &Message, response: &Message) -> Bytes {
    let uri = invite.request_uri().unwrap_or("");
    let via = invite.top_via();
    let mut b = MessageBuilder::request(&Method::Ack, uri);
    b.header("Via", via.raw.trim());
    b.header("Max-Forwards", 70);
    if let Some(from) = invite.header("From") {
        b.header("From", from);
    }
    if let Some(to) = response.header("To") {
        b.header("To", to);
    }
    b.header("Call-ID", invite.call_id());
    b.header("CSeq", format_args!("{} ACK", invite.cseq().0));
    for route in invite.headers("Route") {
        b.header("Route", route);
    }
    b.finish(None, &[])
}
