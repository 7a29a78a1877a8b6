//! RFC 4733 telephone-events: DTMF digits carried as RTP payload.
//!
//! [`EventReceiver`] turns the packets of a peer's events into one [`DtmfEvent::Start`] and
//! one [`DtmfEvent::End`] per digit; [`EventSender`] produces the packets of queued digits,
//! one per 20 ms packet slot of the leg's sender.

use crate::Error;
use crate::packet::RtpHeader;
use std::time::{Duration, Instant};

/// The four-octet telephone-event payload (RFC 4733 §2.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (RFC 4733 §3.2: 0-9, 10 = *, 11 = #, 12-15 = A-D for DTMF).
    pub event: u8,
    /// E bit: this packet ends the event.
    pub end: bool,
    /// Power level in -dBm0, 0..=63 (6 bits).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units from the event's timestamp.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Octets of one event.
    pub const LEN: usize = 4;

    /// Parses the first event of a payload. The R bit is reserved and ignored (§2.3.3).
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent, Error> {
        if payload.len() < Self::LEN {
            return Err(Error::Truncated {
                needed: Self::LEN,
                available: payload.len(),
            });
        }
        Ok(TelephoneEvent {
            event: payload[0],
            end: payload[1] & 0x80 != 0,
            volume: payload[1] & 0x3f,
            duration: u16::from_be_bytes([payload[2], payload[3]]),
        })
    }

    /// Writes the four octets and returns 4.
    ///
    /// # Panics
    /// If `out` is shorter than four octets.
    pub fn write(&self, out: &mut [u8]) -> usize {
        out[0] = self.event;
        out[1] = (u8::from(self.end) << 7) | (self.volume & 0x3f);
        out[2..4].copy_from_slice(&self.duration.to_be_bytes());
        Self::LEN
    }
}

/// The RFC 4733 §3.2 event code of a DTMF digit (`0-9`, `*`, `#`, `A-D`, letters in either
/// case).
pub fn digit_to_event(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(c as u8 - b'A' + 12),
        'a'..='d' => Some(c as u8 - b'a' + 12),
        _ => None,
    }
}

/// The DTMF digit of an RFC 4733 §3.2 event code; None for codes above 15 (flash, etc.).
pub fn event_to_digit(e: u8) -> Option<char> {
    match e {
        0..=9 => Some(char::from(b'0' + e)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + e - 12)),
        _ => None,
    }
}

/// What the receiver reports about the peer's digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtmfEvent {
    Start {
        digit: char,
    },
    /// `duration_ms` is the last duration the peer announced for the event.
    End {
        digit: char,
        duration_ms: u32,
    },
}

#[derive(Clone, Copy, Debug)]
struct ReceivedEvent {
    ssrc: u32,
    timestamp: u32,
    digit: char,
    duration: u16,
    last_update: Instant,
    ended: bool,
}

/// Receives telephone-event packets (one payload type, routed here by the leg) and reports
/// each digit once.
///
/// RFC 4733 §2.5.2: all packets of one event share its RTP timestamp, so the event is keyed by
/// (SSRC, timestamp). The first packet seen of a new key starts the digit, whether or not it
/// has the marker bit (the first packet may be lost); the first packet with the E bit ends it,
/// and its retransmissions (§2.5.1.4, three in all, with the same or new sequence numbers) are
/// ignored, as are late packets of older events. If every end packet is lost, the digit ends
/// when no update came for three packet times ([`EventReceiver::poll_timeout`]), or when the
/// next event starts.
///
/// Drain rule: one packet can produce more than one event (the end of a digit whose end packets
/// were lost, then the start of the next), so after [`EventReceiver::on_packet`] call
/// [`EventReceiver::poll_timeout`] until it returns None; arm a timer for
/// [`EventReceiver::timeout`].
#[derive(Debug)]
pub struct EventReceiver {
    clock_rate: u32,
    current: Option<ReceivedEvent>,
    /// Interval between the peer's updates, learnt from the growth of the duration field
    /// (timestamp units, immune to network jitter); RFC 4733 §2.5.1.2 suggests 50 ms.
    packet_time: Duration,
    pending: [Option<DtmfEvent>; 2],
}

/// Update interval assumed until the peer's is learnt (RFC 4733 §2.5.1.2 suggests 50 ms).
const DEFAULT_EVENT_PACKET_TIME: Duration = Duration::from_millis(50);

impl EventReceiver {
    pub fn new(clock_rate: u32) -> Self {
        EventReceiver {
            clock_rate: clock_rate.max(1),
            current: None,
            packet_time: DEFAULT_EVENT_PACKET_TIME,
            pending: [None; 2],
        }
    }

    fn duration_ms(&self, units: u16) -> u32 {
        (u64::from(units) * 1000 / u64::from(self.clock_rate)) as u32
    }

    fn push_pending(&mut self, e: DtmfEvent) {
        if let Some(slot) = self.pending.iter_mut().find(|s| s.is_none()) {
            *slot = Some(e);
        }
    }

    /// Feeds one telephone-event packet; returns the first event it produces (see the drain
    /// rule). Payloads that are too short or carry a non-DTMF event are ignored.
    pub fn on_packet(
        &mut self,
        now: Instant,
        header: &RtpHeader,
        payload: &[u8],
    ) -> Option<DtmfEvent> {
        let ev = TelephoneEvent::parse(payload).ok()?;
        let digit = event_to_digit(ev.event)?;
        let mut out: [Option<DtmfEvent>; 3] = [None; 3];
        if let Some(cur) = self.current.as_mut() {
            if cur.ssrc == header.ssrc && cur.timestamp == header.timestamp {
                if cur.ended {
                    return None; // a retransmitted end packet, or a late update
                }
                if ev.duration > cur.duration {
                    let step = u64::from(ev.duration - cur.duration) * 1_000_000
                        / u64::from(self.clock_rate);
                    self.packet_time = Duration::from_micros(step.clamp(10_000, 100_000));
                    cur.duration = ev.duration;
                }
                cur.last_update = now;
                if ev.end {
                    cur.ended = true;
                    let (digit, units) = (cur.digit, cur.duration);
                    return Some(DtmfEvent::End {
                        digit,
                        duration_ms: self.duration_ms(units),
                    });
                }
                return None;
            }
            if cur.ssrc == header.ssrc && (header.timestamp.wrapping_sub(cur.timestamp) as i32) < 0
            {
                return None; // a late packet of an event before the current one
            }
            if !cur.ended {
                let (digit, units) = (cur.digit, cur.duration);
                out[0] = Some(DtmfEvent::End {
                    digit,
                    duration_ms: self.duration_ms(units),
                });
            }
        }
        self.current = Some(ReceivedEvent {
            ssrc: header.ssrc,
            timestamp: header.timestamp,
            digit,
            duration: ev.duration,
            last_update: now,
            ended: ev.end,
        });
        out[1] = Some(DtmfEvent::Start { digit });
        if ev.end {
            out[2] = Some(DtmfEvent::End {
                digit,
                duration_ms: self.duration_ms(ev.duration),
            });
        }
        let mut produced = out.into_iter().flatten();
        let first = produced.next();
        for e in produced {
            self.push_pending(e);
        }
        first
    }

    /// When [`EventReceiver::poll_timeout`] should next be called, if a digit is in progress.
    pub fn timeout(&self) -> Option<Instant> {
        self.current
            .filter(|c| !c.ended)
            .map(|c| c.last_update + 3 * self.packet_time)
    }

    /// Returns events still pending from the last packet, then ends a digit that got no update
    /// for three packet times (its end packets were all lost). The reported duration is the
    /// last one the peer announced.
    pub fn poll_timeout(&mut self, now: Instant) -> Option<DtmfEvent> {
        if let Some(e) = self.pending[0].take() {
            self.pending[0] = self.pending[1].take();
            return Some(e);
        }
        let deadline = self.timeout()?;
        if now < deadline {
            return None;
        }
        let cur = self.current.as_mut()?;
        cur.ended = true;
        let (digit, units) = (cur.digit, cur.duration);
        Some(DtmfEvent::End {
            digit,
            duration_ms: self.duration_ms(units),
        })
    }
}

/// One telephone-event packet to send, as returned by [`EventSender::next_packet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventPacket {
    /// RFC 4733 §2.5.1.2: set on the first packet of an event only.
    pub marker: bool,
    /// The telephone-event payload type given to [`EventSender::new`].
    pub payload_type: u8,
    /// How far this slot is past the slot the event started in, in timestamp units: the RTP
    /// timestamp is the current slot's audio timestamp minus this (see
    /// [`EventPacket::timestamp`]).
    pub timestamp_offset: u32,
    /// This packet carries the E bit (one of the three end packets).
    pub end: bool,
    /// Payload octets written.
    pub len: usize,
}

impl EventPacket {
    /// The RTP timestamp for this packet, given the timestamp the leg's audio packet for this
    /// slot would have had: every packet of one event carries the timestamp of the slot the
    /// event started in (RFC 4733 §2.5.1.2).
    pub fn timestamp(&self, slot_timestamp: u32) -> u32 {
        slot_timestamp.wrapping_sub(self.timestamp_offset)
    }
}

#[derive(Clone, Copy, Debug)]
struct SendingEvent {
    event: u8,
    total: u16,
    /// Slots used so far, end retransmissions included.
    slots: u32,
    ends_sent: u8,
}

const SEND_QUEUE: usize = 32;
/// Packet slot the sender is driven at.
const SLOT: Duration = Duration::from_millis(20);
/// Silence between queued digits: two slots, 40 ms.
const GAP_SLOTS: u32 = 2;
/// Volume field of sent events: -10 dBm0, a common DTMF level.
const SEND_VOLUME: u8 = 10;

/// Sends queued DTMF digits as telephone-events, driven once per 20 ms packet slot.
///
/// The leg keeps its own sequence number and audio timestamp, advancing the timestamp by one
/// slot (20 ms of its clock) every slot whether it sends audio or an event. In each slot it
/// calls [`EventSender::next_packet`]: None means send audio as usual; `Some(p)` means send
/// this event packet instead, with payload type `p.payload_type`, marker `p.marker`, the next
/// sequence number and timestamp `p.timestamp(slot_timestamp)`. So the first audio packet after
/// the event carries the right timestamp without further bookkeeping.
///
/// Per event (RFC 4733 §2.5.1): the first packet has the marker bit, every packet carries the
/// event's start timestamp and a duration growing by one slot, the last duration is sent with
/// the E bit three times (§2.5.1.4; each copy takes its own slot and sequence number). Queued
/// digits are separated by 40 ms without events.
///
/// ```
/// use switchyard_rtp::event::EventSender;
/// let mut tx = EventSender::new(101, 8000);
/// tx.queue('5', 60).unwrap();
/// let mut payload = [0u8; 4];
/// let mut slot_ts = 1000u32;
/// let mut sent = Vec::new();
/// for _ in 0..8 {
///     match tx.next_packet(&mut payload) {
///         Some(p) => sent.push((p.marker, p.timestamp(slot_ts), p.end, payload)),
///         None => { /* send 20 ms of audio with timestamp slot_ts */ }
///     }
///     slot_ts += 160;
/// }
/// assert_eq!(sent.len(), 5); // 20, 40, 60 ms, then two more copies of the end
/// assert!(sent.iter().all(|s| s.1 == 1000));
/// assert_eq!(sent[0].0, true);
/// assert_eq!(sent[2], (false, 1000, true, [5, 0x80 | 10, 0x01, 0xe0]));
/// ```
#[derive(Debug)]
pub struct EventSender {
    payload_type: u8,
    units_per_slot: u32,
    clock_rate: u32,
    queue: [(u8, u16); SEND_QUEUE],
    head: usize,
    len: usize,
    current: Option<SendingEvent>,
    gap_left: u32,
}

impl EventSender {
    pub fn new(payload_type: u8, clock_rate: u32) -> Self {
        let clock_rate = clock_rate.max(1);
        EventSender {
            payload_type,
            units_per_slot: (u64::from(clock_rate) * SLOT.as_micros() as u64 / 1_000_000).max(1)
                as u32,
            clock_rate,
            queue: [(0, 0); SEND_QUEUE],
            head: 0,
            len: 0,
            current: None,
            gap_left: 0,
        }
    }

    /// Queues one digit to be sent for `duration_ms`. The duration must be at least 1 ms and
    /// fit the 16-bit duration field (8191 ms at 8000 Hz; RFC 4733 §2.5.1.3 segmentation of
    /// longer events is not done).
    pub fn queue(&mut self, digit: char, duration_ms: u32) -> Result<(), Error> {
        let event = digit_to_event(digit).ok_or(Error::NotADigit(digit))?;
        let units = u64::from(duration_ms) * u64::from(self.clock_rate) / 1000;
        if duration_ms == 0 || units == 0 || units > u64::from(u16::MAX) {
            return Err(Error::DurationOutOfRange(duration_ms));
        }
        if self.len == SEND_QUEUE {
            return Err(Error::QueueFull);
        }
        self.queue[(self.head + self.len) % SEND_QUEUE] = (event, units as u16);
        self.len += 1;
        Ok(())
    }

    /// Whether an event is being sent or waits in the queue.
    pub fn is_active(&self) -> bool {
        self.current.is_some() || self.len > 0
    }

    /// Called once per 20 ms packet slot. Writes a telephone-event payload into `payload`
    /// (at least four octets) and returns how to send it, or returns None when the slot is
    /// audio's.
    pub fn next_packet(&mut self, payload: &mut [u8]) -> Option<EventPacket> {
        if self.current.is_none() {
            if self.gap_left > 0 {
                self.gap_left -= 1;
                return None;
            }
            if self.len == 0 {
                return None;
            }
            let (event, total) = self.queue[self.head];
            self.head = (self.head + 1) % SEND_QUEUE;
            self.len -= 1;
            self.current = Some(SendingEvent {
                event,
                total,
                slots: 0,
                ends_sent: 0,
            });
        }
        let s = self.current.as_mut()?;
        let timestamp_offset = s.slots * self.units_per_slot;
        s.slots += 1;
        let duration = if s.ends_sent > 0 {
            s.total
        } else {
            let grown = u64::from(s.slots) * u64::from(self.units_per_slot);
            grown.min(u64::from(s.total)) as u16
        };
        let end = duration == s.total;
        if end {
            s.ends_sent += 1;
        }
        let marker = s.slots == 1;
        let len = TelephoneEvent {
            event: s.event,
            end,
            volume: SEND_VOLUME,
            duration,
        }
        .write(payload);
        if s.ends_sent == 3 {
            self.current = None;
            self.gap_left = GAP_SLOTS;
        }
        Some(EventPacket {
            marker,
            payload_type: self.payload_type,
            timestamp_offset,
            end,
            len,
        })
    }
}
