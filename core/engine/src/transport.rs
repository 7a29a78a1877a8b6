//! SIP over UDP and TCP for the signalling reactor: naming flows, and framing a TCP byte stream
//! (RFC 3261 §18.3: Content-Length frames messages on streams).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use switchyard_sip::transaction::{Peer, TransportKind};
use switchyard_sip::{Message, ParseError};

/// "udp:192.0.2.1:5060", the form bindings keep in the store.
pub fn format_peer(peer: &Peer) -> String {
    let transport = match peer.transport {
        TransportKind::Udp => "udp",
        TransportKind::Tcp => "tcp",
    };
    format!("{transport}:{}", peer.addr)
}

pub fn parse_peer(text: &str) -> Option<Peer> {
    let (transport, addr) = text.split_once(':')?;
    let transport = match transport {
        "udp" => TransportKind::Udp,
        "tcp" => TransportKind::Tcp,
        _ => return None,
    };
    Some(Peer {
        transport,
        addr: addr.parse().ok()?,
    })
}

/// Larger than any sane SIP message; a peer that sends more without a complete message is cut off.
const MAX_PENDING_INPUT: usize = 256 * 1024;
/// What we buffer for a peer that does not read: about a thousand large messages.
const MAX_PENDING_OUTPUT: usize = 4 * 1024 * 1024;

/// One TCP connection, accepted or opened by us towards a registered TCP contact.
pub struct TcpConnection {
    pub stream: TcpStream,
    pub remote: SocketAddr,
    input: Vec<u8>,
    output: Vec<u8>,
    /// False while a connect we started is still in progress.
    pub connected: bool,
    /// When the unfinished message in `input` began, if there is one.
    partial_since: Option<Instant>,
}

/// What reading a connection produced.
pub enum ReadOutcome {
    Messages(Vec<Message>),
    /// A framing error: answer if possible, then close (RFC 4475 §3.1.2.3: the stream cannot be
    /// resynchronised after a bad Content-Length).
    Unframeable {
        error: ParseError,
        raw: Vec<u8>,
        messages: Vec<Message>,
    },
    Closed {
        messages: Vec<Message>,
    },
}

impl TcpConnection {
    pub fn new(stream: TcpStream, remote: SocketAddr, connected: bool) -> TcpConnection {
        TcpConnection {
            stream,
            remote,
            input: Vec::new(),
            output: Vec::new(),
            connected,
            partial_since: None,
        }
    }

    /// RFC 4475 §3.1.2.2: on a stream, a message shorter than its Content-Length waits for
    /// more bytes, but not forever; the reactor closes connections whose message has been
    /// unfinished for too long (a lost peer, or a slowloris).
    pub fn partial_for(&self, now: Instant) -> Option<Duration> {
        self.partial_since
            .map(|since| now.saturating_duration_since(since))
    }

    pub fn read_messages(&mut self, now: Instant) -> ReadOutcome {
        let mut chunk = [0u8; 16 * 1024];
        let mut closed = false;
        let mut messages = Vec::new();
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => {
                    self.input.extend_from_slice(&chunk[..n]);
                    // Frame as we go: a busy trunk connection may hold many complete messages,
                    // and only an unfinished remainder counts against the limit.
                    loop {
                        match Message::parse_stream(&self.input) {
                            Ok(Some((message, consumed))) => {
                                self.input.drain(..consumed);
                                messages.push(message);
                            }
                            Ok(None) => break,
                            Err(error) => {
                                let raw = std::mem::take(&mut self.input);
                                return ReadOutcome::Unframeable {
                                    error,
                                    raw,
                                    messages,
                                };
                            }
                        }
                    }
                    if self.input.len() > MAX_PENDING_INPUT {
                        closed = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        // Whitespace between messages (CRLF keep-alives) is not an unfinished message.
        if self.input.iter().all(u8::is_ascii_whitespace) {
            self.partial_since = None;
        } else if self.partial_since.is_none() || !messages.is_empty() {
            self.partial_since = Some(now);
        }
        if closed {
            ReadOutcome::Closed { messages }
        } else {
            ReadOutcome::Messages(messages)
        }
    }

    /// Queues bytes to send; false when the peer has stopped reading and the backlog is over
    /// the limit, so the caller closes the connection instead of buffering without end.
    pub fn queue(&mut self, bytes: &[u8]) -> bool {
        if self.output.len() + bytes.len() > MAX_PENDING_OUTPUT {
            return false;
        }
        self.output.extend_from_slice(bytes);
        true
    }

    pub fn wants_write(&self) -> bool {
        !self.output.is_empty() || !self.connected
    }

    /// Writes what the socket takes now; the rest waits for the next writable event.
    pub fn flush(&mut self) -> io::Result<()> {
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.output.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads until the connection has taken in everything written so far.
    #[allow(clippy::disallowed_methods)] // a real socket: the deadline is real time
    fn read_all(
        connection: &mut TcpConnection,
        now: Instant,
        expected_total: usize,
        seen: &mut usize,
    ) -> Vec<Message> {
        let mut messages = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match connection.read_messages(now) {
                ReadOutcome::Messages(batch) => messages.extend(batch),
                _ => panic!("connection closed or unframeable"),
            }
            *seen =
                connection.input.len() + messages.iter().map(|m| m.as_bytes().len()).sum::<usize>();
            if *seen >= expected_total || std::time::Instant::now() > deadline {
                return messages;
            }
        }
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // the test's own clock origin and deadline
    fn an_unfinished_stream_message_is_timed_from_its_first_bytes() {
        use std::io::Write as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, remote) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let mut connection = TcpConnection::new(TcpStream::from_std(server), remote, true);
        let message = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nMax-Forwards: 70\r\n\
                       From: <sip:c@d>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\
                       Content-Length: 0\r\n\r\n";
        let t0 = Instant::now();
        let (head, tail) = message.split_at(40);
        client.write_all(head.as_bytes()).unwrap();
        let mut seen = 0;
        assert!(read_all(&mut connection, t0, head.len(), &mut seen).is_empty());
        let later = t0 + Duration::from_secs(5);
        assert_eq!(connection.partial_for(later), Some(Duration::from_secs(5)));
        client.write_all(tail.as_bytes()).unwrap();
        client.write_all(b"\r\n\r\n").unwrap();
        let messages = read_all(&mut connection, later, message.len() + 4, &mut seen);
        assert_eq!(messages.len(), 1);
        assert_eq!(
            connection.partial_for(later + Duration::from_secs(60)),
            None,
            "keep-alive CRLFs are not a message"
        );
    }

    #[test]
    fn peers_round_trip_through_their_stored_form() {
        for text in ["udp:192.0.2.1:5060", "tcp:[2001:db8::1]:5061"] {
            assert_eq!(format_peer(&parse_peer(text).unwrap()), text);
        }
        assert!(parse_peer("sctp:192.0.2.1:5060").is_none());
        assert!(parse_peer("udp:nonsense").is_none());
    }
}
