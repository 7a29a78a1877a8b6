//! SIP over UDP and TCP for the signalling reactor: naming flows, and framing a TCP byte stream
//! (RFC 3261 §18.3: Content-Length frames messages on streams).

use std::io::{self, Read, Write};
use std::net::SocketAddr;

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

/// One TCP connection, accepted or opened by us towards a registered TCP contact.
pub struct TcpConnection {
    pub stream: TcpStream,
    pub remote: SocketAddr,
    input: Vec<u8>,
    output: Vec<u8>,
    /// False while a connect we started is still in progress.
    pub connected: bool,
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
        }
    }

    pub fn read_messages(&mut self) -> ReadOutcome {
        let mut chunk = [0u8; 16 * 1024];
        let mut closed = false;
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => {
                    self.input.extend_from_slice(&chunk[..n]);
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
        let mut messages = Vec::new();
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
        if closed {
            ReadOutcome::Closed { messages }
        } else {
            ReadOutcome::Messages(messages)
        }
    }

    pub fn queue(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
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

    #[test]
    fn peers_round_trip_through_their_stored_form() {
        for text in ["udp:192.0.2.1:5060", "tcp:[2001:db8::1]:5061"] {
            assert_eq!(format_peer(&parse_peer(text).unwrap()), text);
        }
        assert!(parse_peer("sctp:192.0.2.1:5060").is_none());
        assert!(parse_peer("udp:nonsense").is_none());
    }
}
