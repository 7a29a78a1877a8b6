//! An adaptive jitter buffer for legs whose media we terminate.
//!
//! # Contract
//!
//! The leg [`JitterBuffer::insert`]s every RTP packet of the stream as it arrives and, once
//! per 20 ms output frame, calls [`JitterBuffer::pop`] until it returns [`Playout::NotYet`].
//! Every item before `NotYet` covers a span of the stream's timeline, in RTP timestamp units:
//! a [`Playout::Packet`] to decode, a [`Playout::Lost`] packet to conceal (with the next
//! packet's payload when it is there, for codecs with in-band FEC such as Opus), or a
//! [`Playout::Gap`] where nothing arrived (conceal or play silence). The consumer decodes or
//! conceals each item into a PCM FIFO and then takes one frame out of it.
//!
//! Packets are handed out whole, whatever their duration (10, 20, 30, 40, 60 ms), so the
//! buffer keeps count of what it has handed out and not yet consumed, mirroring the
//! consumer's FIFO: `pop` returns `NotYet` (and counts one frame consumed) as soon as that
//! level holds a whole frame. With 30 ms packets and 20 ms frames a packet comes out on two
//! frames of three.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use switchyard_rtp::jitter::{JitterBuffer, JitterConfig, Playout};
//! use switchyard_rtp::packet::RtpHeader;
//!
//! let mut jb = JitterBuffer::new(8000, JitterConfig::default());
//! # #[allow(clippy::disallowed_methods)]
//! let start = Instant::now(); // a reactor's clock; tests use a virtual one
//! let mut fifo: std::collections::VecDeque<i16> = Default::default();
//! let mut played = Vec::new();
//! let mut next = 0u32;
//! for tick in 0..100u32 {
//!     let now = start + Duration::from_millis(20 * u64::from(tick));
//!     // The peer sends 30 ms G.711 packets (240 samples) on its own schedule.
//!     while 30 * next <= 20 * tick {
//!         let header = RtpHeader {
//!             sequence: next as u16,
//!             timestamp: 240 * next,
//!             ssrc: 7,
//!             ..RtpHeader::default()
//!         };
//!         let arrival = start + Duration::from_millis(30 * u64::from(next));
//!         jb.insert(arrival, &header, &[0xd5; 240]);
//!         next += 1;
//!     }
//!     // Every 20 ms: fill the FIFO until the frame is covered, then take 160 samples.
//!     loop {
//!         match jb.pop(now, 160) {
//!             Playout::Packet { payload, .. } => {
//!                 fifo.extend(payload.iter().map(|_| 0i16)); // decode G.711 here
//!             }
//!             Playout::Lost { units, next_payload } => {
//!                 // Conceal `units` samples (Opus: decode FEC from `next_payload`).
//!                 let _ = next_payload;
//!                 fifo.extend(std::iter::repeat_n(0i16, units as usize));
//!             }
//!             Playout::Gap { units } => fifo.extend(std::iter::repeat_n(0i16, units as usize)),
//!             Playout::NotYet => break,
//!         }
//!     }
//!     let frame: Vec<i16> = fifo.drain(..160.min(fifo.len())).collect();
//!     played.push(frame.len());
//!     assert!(fifo.len() < 240, "the FIFO never holds a whole packet after a frame");
//! }
//! assert!(played.iter().all(|&n| n == 160), "every frame is full");
//! ```
//!
//! # Adaptation
//!
//! The target delay is `clamp(4 × J + packet time, min_delay, max_delay)` where J is the
//! RFC 3550 A.8 interarrival jitter measured on the packets inserted. J is the mean absolute
//! difference of consecutive transit times, and a packet is late when its transit exceeds the
//! mean by more than the delay. For Gaussian network delay J ≈ 1.13 σ, so 3 J would already
//! be 3.4 σ; but queueing delay has an exponential tail, for which J equals the mean excess μ
//! and P(late) ≈ e^−(1+k): k = 3 leaves about 2 % of packets late, k = 4 about 0.7 %. We pick
//! 4, trading 20 ms or so of delay at typical jitter for a third of the late packets. The
//! packet time covers the quantisation of arrivals to the output clock. The J behind the
//! target follows rises within about 32 packets and falls within about 512, so the target
//! does not chase the estimator's noise.
//!
//! The delay actually applied is measured per packet from its arrival to the moment its first
//! sample plays (its age when handed out, plus what the consumer's FIFO still holds ahead of
//! it), averaged over about 32 packets ([`JitterStats::current_delay_ms`]). It is steered
//! toward the target in two ways:
//! - at a talkspurt start (marker bit after a timestamp gap), the silence is shortened or
//!   lengthened so that the first packet plays on the first frame after it has waited the
//!   target delay; the very first packet also waits for the second one, which tells the packet
//!   time;
//! - within a talkspurt (G.711 phones rarely stop sending), by gradual skew: when the average
//!   delay is above the target by more than a packet and a half frame, one packet is dropped;
//!   when it is more than a quarter frame below, a frame of concealment is inserted. At most one
//!   adjustment per 200 ms, except that above `max_delay` packets are dropped at once. This
//!   also absorbs clock drift between sender and receiver: at 0.5 % it costs one drop or insert
//!   every 4 s.
//!
//! Packets whose span the playout has already passed are [`Insert::TooLate`]. If the stream
//! comes back behind the playout point for good (a sender that restarted its timestamps,
//! a new talkspurt marked but not advanced), the playout re-anchors on it.

use crate::packet::RtpHeader;
use std::time::{Duration, Instant};

/// Largest payload a slot holds (an Ethernet MTU; RTP over UDP never carries more).
pub const MAX_PAYLOAD: usize = 1500;

/// Tuning of a [`JitterBuffer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitterConfig {
    /// Lowest target delay.
    pub min_delay: Duration,
    /// Highest target delay; an average delay above it is cut at once.
    pub max_delay: Duration,
    /// Packets held at most (each slot preallocates [`MAX_PAYLOAD`] octets).
    pub capacity: usize,
}

impl Default for JitterConfig {
    /// 20 ms to 200 ms, 64 packets (1.28 s of 20 ms packets, 640 ms of 10 ms ones).
    fn default() -> Self {
        JitterConfig {
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            capacity: 64,
        }
    }
}

/// What [`JitterBuffer::insert`] did with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Insert {
    Stored,
    /// Already received; dropped.
    Duplicate,
    /// Its span was already played out or concealed; dropped.
    TooLate,
    /// Stored, but the buffer was full: older packets were dropped to make room.
    Overflow,
    /// Payload larger than [`MAX_PAYLOAD`]; dropped.
    TooLarge,
}

/// One item of output, see the module's contract.
#[derive(Debug, PartialEq, Eq)]
pub enum Playout<'a> {
    /// A packet to decode. `units` is the span it covers in timestamp units as far as the
    /// buffer knows (the distance to the next packet, else the usual packet time); decoders
    /// that know better (Opus TOC) may trust their own count.
    Packet {
        timestamp: u32,
        sequence: u16,
        marker: bool,
        units: u32,
        payload: &'a [u8],
    },
    /// A packet that never came; conceal `units`. `next_payload` is the payload of the packet
    /// right after it when that one is already here (Opus in-band FEC decodes the lost frame
    /// from it).
    Lost {
        units: u32,
        next_payload: Option<&'a [u8]>,
    },
    /// Nothing arrived for this span (silence, an outage, playout not started yet, or a
    /// frame inserted to grow the delay): conceal or play silence.
    Gap { units: u32 },
    /// This frame is covered: take it out of the FIFO and call again at the next frame.
    NotYet,
}

/// Counters since the buffer was created.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct JitterStats {
    /// Packets handed out as [`Playout::Packet`].
    pub played: u64,
    /// Packets that arrived after their span was played or concealed.
    pub late: u64,
    /// Packets that never arrived in time and were concealed or skipped; a packet counted
    /// here that arrives later moves to `late`.
    pub lost: u64,
    pub duplicates: u64,
    /// Packets dropped because the buffer was full.
    pub overflows: u64,
    /// Packets dropped to shrink the delay.
    pub dropped: u64,
    /// Timestamp units handed out as `Lost` or `Gap` once playout started.
    pub concealed_units: u64,
    /// Average delay of the packets handed out, from arrival to their first sample played,
    /// in ms.
    pub current_delay_ms: f64,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    /// Extended sequence number; meaningful when `arrival` is Some.
    seq: i64,
    ts: i64,
    arrival: Option<Instant>,
    len: u16,
    marker: bool,
    /// Arrived too late to play, but after playout concealed its span without skipping its
    /// number: kept (without payload) so that playout passes it without counting it lost.
    late: bool,
}

const EMPTY: Slot = Slot {
    seq: 0,
    ts: 0,
    arrival: None,
    len: 0,
    marker: false,
    late: false,
};

/// Extended numbers start here so they never go negative.
const EXTENDED_BASE: i64 = 1 << 40;
/// A.1-style: a sequence jump larger than this restarts the stream.
const MAX_DROPOUT: i64 = 3000;
/// Sequence numbers remembered for duplicate detection.
const SEEN_WINDOW: i64 = 128;
/// Smoothing of the measured delay: about 32 packets.
const AGE_SMOOTHING: f64 = 1.0 / 32.0;
/// Least time between two skew adjustments.
const ADJUST_COOLDOWN: Duration = Duration::from_millis(200);
/// A timestamp jump this large without a marker is a discontinuity: jump with it.
const RESYNC_SPAN: Duration = Duration::from_secs(1);
/// Consecutive late packets, with nothing newer stored, that make the playout re-anchor.
const LATE_RESYNC: u32 = 3;
/// Multiplier of the jitter estimate in the target delay (see the module docs).
const JITTER_FACTOR: f64 = 4.0;
/// Smoothing of the jitter behind the target, per packet, rising and falling.
const TARGET_RISE: f64 = 1.0 / 32.0;
const TARGET_FALL: f64 = 1.0 / 512.0;

/// What `pop` decided, as indices, so the payload can be borrowed after the decision.
enum Decision {
    Packet { idx: usize, units: u32 },
    Lost { units: u32, next_idx: Option<usize> },
    Gap(u32),
    NotYet,
}

/// The jitter buffer of one received stream; see the module docs.
#[derive(Debug)]
pub struct JitterBuffer {
    clock_rate: u32,
    config: JitterConfig,
    slots: Vec<Slot>,
    payloads: Vec<u8>,
    stored: usize,
    ssrc: Option<u32>,
    highest_seq: Option<i64>,
    highest_ts: i64,
    /// Bit i: sequence `highest_seq - i` was received.
    seen: u128,
    playing: bool,
    next_seq: i64,
    /// Playout position: timestamp of the next media to hand out.
    play_ts: i64,
    /// Where the last packet handed out ended: a marker packet after it starts a talkspurt.
    played_end: i64,
    /// Lost counts cover sequence numbers from here on (see late arrivals).
    counted_from: i64,
    /// Units handed out and not yet consumed: the consumer's FIFO.
    level: i64,
    epoch: Option<Instant>,
    last_transit: Option<i64>,
    /// A.8 jitter, timestamp units.
    jitter: f64,
    /// The jitter the target is built on: follows rises of `jitter` within about 32 packets
    /// and falls within about 512, so the target does not chase the estimator's noise.
    target_jitter: f64,
    /// Packet time in timestamp units, from consecutive packets.
    ptime_units: i64,
    /// Average delay of handed-out packets (arrival to first sample played), seconds; None
    /// restarts the average.
    age: Option<f64>,
    last_adjust: Option<Instant>,
    consecutive_late: u32,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer for a stream with this RTP clock rate. Every slot is allocated here.
    pub fn new(clock_rate: u32, config: JitterConfig) -> Self {
        let capacity = config.capacity.max(2);
        let clock_rate = clock_rate.max(1);
        JitterBuffer {
            clock_rate,
            config: JitterConfig { capacity, ..config },
            slots: vec![EMPTY; capacity],
            payloads: vec![0; capacity * MAX_PAYLOAD],
            stored: 0,
            ssrc: None,
            highest_seq: None,
            highest_ts: 0,
            seen: 0,
            playing: false,
            next_seq: 0,
            play_ts: 0,
            played_end: 0,
            counted_from: 0,
            level: 0,
            epoch: None,
            last_transit: None,
            jitter: 0.0,
            target_jitter: 0.0,
            ptime_units: i64::from(clock_rate / 50),
            age: None,
            last_adjust: None,
            consecutive_late: 0,
            stats: JitterStats::default(),
        }
    }

    fn units_to_secs(&self, units: i64) -> f64 {
        units as f64 / f64::from(self.clock_rate)
    }

    fn secs_to_units(&self, secs: f64) -> i64 {
        (secs * f64::from(self.clock_rate)).round() as i64
    }

    /// The delay the buffer aims at: `clamp(4 × J + packet time, min_delay, max_delay)`.
    pub fn target_delay(&self) -> Duration {
        let secs = JITTER_FACTOR * self.target_jitter / f64::from(self.clock_rate)
            + self.units_to_secs(self.ptime_units);
        Duration::from_secs_f64(secs.max(0.0)).clamp(self.config.min_delay, self.config.max_delay)
    }

    pub fn stats(&self) -> JitterStats {
        JitterStats {
            current_delay_ms: self.age.unwrap_or(0.0) * 1000.0,
            ..self.stats
        }
    }

    fn index(&self, seq: i64) -> usize {
        seq.rem_euclid(self.slots.len() as i64) as usize
    }

    fn slot_of(&self, seq: i64) -> Option<usize> {
        let idx = self.index(seq);
        let s = &self.slots[idx];
        (s.arrival.is_some() && s.seq == seq).then_some(idx)
    }

    fn free(&mut self, idx: usize) {
        if self.slots[idx].arrival.take().is_some() && !self.slots[idx].late {
            self.stored -= 1;
        }
    }

    fn clear_slots(&mut self) {
        for s in &mut self.slots {
            s.arrival = None;
            s.late = false;
        }
        self.stored = 0;
    }

    /// Forgets the stream (a new source, a restart), keeping counters and the consumer level.
    fn restart(&mut self) {
        self.clear_slots();
        self.highest_seq = None;
        self.seen = 0;
        self.playing = false;
        self.last_transit = None;
        self.age = None;
        self.consecutive_late = 0;
    }

    /// Oldest stored packet: (seq, index).
    fn oldest(&self) -> Option<(i64, usize)> {
        if self.stored == 0 {
            return None;
        }
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.arrival.is_some() && !s.late)
            .min_by_key(|(_, s)| s.seq)
            .map(|(i, s)| (s.seq, i))
    }

    /// First stored packet (or late marker) after `seq`.
    fn stored_after(&self, seq: i64) -> Option<(i64, usize)> {
        (1..self.slots.len() as i64).find_map(|d| self.slot_of(seq + d).map(|i| (seq + d, i)))
    }

    /// Stores a received packet. `payload` is the RTP payload (padding removed).
    pub fn insert(&mut self, now: Instant, header: &RtpHeader, payload: &[u8]) -> Insert {
        if payload.len() > MAX_PAYLOAD {
            return Insert::TooLarge;
        }
        if self.ssrc != Some(header.ssrc) {
            // A new source: its numbering has nothing to do with the old one's.
            self.restart();
            self.ssrc = Some(header.ssrc);
        }
        let (seq, ts) = match self.highest_seq {
            None => (
                EXTENDED_BASE + i64::from(header.sequence),
                EXTENDED_BASE + i64::from(header.timestamp),
            ),
            Some(h) => (
                h + i64::from(header.sequence.wrapping_sub(h as u16) as i16),
                self.highest_ts
                    + i64::from(header.timestamp.wrapping_sub(self.highest_ts as u32) as i32),
            ),
        };
        let (seq, ts) = match self.highest_seq {
            Some(h) if (seq - h).abs() > MAX_DROPOUT => {
                // The sender restarted its numbering.
                self.restart();
                (
                    EXTENDED_BASE + i64::from(header.sequence),
                    EXTENDED_BASE + i64::from(header.timestamp),
                )
            }
            _ => (seq, ts),
        };

        if let Some(h) = self.highest_seq {
            if seq <= h {
                let back = h - seq;
                if back >= SEEN_WINDOW {
                    self.stats.late += 1;
                    return Insert::TooLate;
                }
                if self.seen & (1u128 << back) != 0 {
                    self.stats.duplicates += 1;
                    return Insert::Duplicate;
                }
                self.seen |= 1u128 << back;
            } else {
                let ahead = seq - h;
                self.seen = if ahead >= SEEN_WINDOW {
                    1
                } else {
                    (self.seen << ahead) | 1
                };
                // Packet time from consecutive packets of a talkspurt: 5 to 120 ms (a larger
                // step is silence suppression without a marker).
                let step = ts - self.highest_ts;
                let (lo, hi) = (
                    i64::from(self.clock_rate / 200).max(1),
                    i64::from(self.clock_rate) * 3 / 25,
                );
                if ahead == 1 && !header.marker && (lo..=hi).contains(&step) {
                    self.ptime_units = step;
                }
                self.highest_seq = Some(seq);
                self.highest_ts = ts;
            }
        } else {
            self.seen = 1;
            self.highest_seq = Some(seq);
            self.highest_ts = ts;
        }

        // RFC 3550 A.8 jitter on every packet that is not a duplicate.
        let epoch = *self.epoch.get_or_insert(now);
        let arrival = self.secs_to_units(now.saturating_duration_since(epoch).as_secs_f64());
        let transit = arrival - ts;
        if let Some(prev) = self.last_transit {
            let d = (transit - prev).abs() as f64;
            self.jitter += (d - self.jitter) / 16.0;
        }
        let gain = if self.jitter > self.target_jitter {
            TARGET_RISE
        } else {
            TARGET_FALL
        };
        self.target_jitter += (self.jitter - self.target_jitter) * gain;
        self.last_transit = Some(transit);

        if self.playing && (seq < self.next_seq || ts < self.play_ts) {
            self.stats.late += 1;
            if seq >= self.counted_from && seq < self.next_seq && self.stats.lost > 0 {
                // It was counted lost when playout skipped it.
                self.stats.lost -= 1;
            }
            self.consecutive_late += 1;
            if self.stored == 0 && (header.marker || self.consecutive_late >= LATE_RESYNC) {
                // The stream is behind the playout point for good: start over on it.
                self.playing = false;
                self.age = None;
                self.stats.late -= 1;
            } else {
                if seq >= self.next_seq && seq < self.next_seq + self.slots.len() as i64 {
                    let idx = self.index(seq);
                    if self.slots[idx].arrival.is_none() || self.slots[idx].late {
                        self.slots[idx] = Slot {
                            seq,
                            ts,
                            arrival: Some(now),
                            late: true,
                            ..EMPTY
                        };
                    }
                }
                return Insert::TooLate;
            }
        }
        self.consecutive_late = 0;

        let mut result = Insert::Stored;
        let cap = self.slots.len() as i64;
        if self.playing {
            // Room for `seq`: everything before `seq - cap + 1` goes.
            while seq >= self.next_seq + cap {
                match self.slot_of(self.next_seq) {
                    Some(idx) if self.slots[idx].late => self.free(idx),
                    Some(idx) => {
                        self.stats.overflows += 1;
                        let end = self.slots[idx].ts + self.ptime_units;
                        self.play_ts = self.play_ts.max(end);
                        self.free(idx);
                        result = Insert::Overflow;
                    }
                    // Never came (an outage longer than the buffer): skipped now.
                    None => self.stats.lost += 1,
                }
                self.next_seq += 1;
            }
            if let Some(i) = self.slot_of(self.next_seq) {
                self.play_ts = self.play_ts.max(self.slots[i].ts);
            }
        }
        let idx = self.index(seq);
        let slot = self.slots[idx];
        if slot.arrival.is_some() && slot.late {
            self.free(idx); // a late marker left behind by a restart
        } else if slot.arrival.is_some() && slot.seq != seq {
            if slot.seq > seq {
                // Only when idle: a newer packet holds the slot.
                self.stats.late += 1;
                return Insert::TooLate;
            }
            self.stats.overflows += 1;
            self.free(idx);
            result = Insert::Overflow;
        }
        let at = idx * MAX_PAYLOAD;
        self.payloads[at..at + payload.len()].copy_from_slice(payload);
        self.slots[idx] = Slot {
            seq,
            ts,
            arrival: Some(now),
            len: payload.len() as u16,
            marker: header.marker,
            late: false,
        };
        self.stored += 1;
        result
    }

    fn age_of(&self, idx: usize, now: Instant) -> f64 {
        self.slots[idx]
            .arrival
            .map_or(0.0, |a| now.saturating_duration_since(a).as_secs_f64())
    }

    fn record_age(&mut self, age: f64) {
        self.age = Some(match self.age {
            Some(avg) => avg + (age - avg) * AGE_SMOOTHING,
            None => age,
        });
    }

    /// Span of the packet at `idx`: up to the next packet if that one is here and within a
    /// plausible packet time (a larger step is silence or a discontinuity, not audio).
    fn span_of(&self, idx: usize) -> i64 {
        let s = self.slots[idx];
        let longest = i64::from(self.clock_rate) * 3 / 25; // 120 ms
        match self.slot_of(s.seq + 1) {
            Some(n) if (1..=longest).contains(&(self.slots[n].ts - s.ts)) => {
                self.slots[n].ts - s.ts
            }
            _ => self.ptime_units,
        }
    }

    fn decide(&mut self, now: Instant, frame: i64) -> Decision {
        if self.level >= frame {
            self.level -= frame;
            return Decision::NotYet;
        }
        let need = frame - self.level;
        let target = self.target_delay().as_secs_f64();
        if !self.playing {
            let Some((seq, idx)) = self.oldest() else {
                return self.gap(need);
            };
            // Start once the oldest packet has waited the target delay and the packet after it
            // is here too, which tells the packet time (or once waiting longer is pointless).
            let age = self.age_of(idx, now);
            let paired = self.slot_of(seq + 1).is_some();
            let max = self.config.max_delay.as_secs_f64();
            if age + 1e-9 < target || (!paired && age < max) {
                return self.gap(need);
            }
            self.playing = true;
            self.next_seq = seq;
            self.counted_from = seq;
            self.play_ts = self.slots[idx].ts;
            self.played_end = self.play_ts;
            self.age = None;
        }
        let frame_secs = self.units_to_secs(frame);
        loop {
            let Some(idx) = self.slot_of(self.next_seq) else {
                match self.missing(need) {
                    Some(d) => return d,
                    None => continue,
                }
            };
            let slot = self.slots[idx];
            if slot.late {
                // Counted late on arrival; its span was concealed.
                self.free(idx);
                self.next_seq += 1;
                continue;
            }
            if slot.marker && slot.ts > self.played_end && slot.ts >= self.play_ts {
                // Talkspurt start: stretch or cut the silence to play at the target delay.
                if self.age_of(idx, now) + 1e-9 < target {
                    self.play_ts = (self.play_ts + need).min(slot.ts);
                    self.stats.concealed_units += need as u64;
                    return self.gap(need);
                }
                self.play_ts = slot.ts;
                self.age = None;
            } else if slot.ts > self.play_ts {
                let gap = slot.ts - self.play_ts;
                if gap > self.secs_to_units(RESYNC_SPAN.as_secs_f64()) {
                    self.play_ts = slot.ts;
                    self.age = None;
                } else {
                    let units = gap.min(need);
                    self.play_ts += units;
                    self.stats.concealed_units += units as u64;
                    return self.gap(units);
                }
            } else if let Some(avg) = self.age {
                // Skew control, at packet boundaries within a talkspurt.
                let ptime = self.units_to_secs(self.ptime_units);
                let max = self.config.max_delay.as_secs_f64();
                let cooled = self
                    .last_adjust
                    .is_none_or(|t| now.saturating_duration_since(t) >= ADJUST_COOLDOWN);
                let too_long = avg > target + ptime.max(frame_secs) + frame_secs / 2.0;
                let next = self.slot_of(self.next_seq + 1);
                if next.is_some() && ((too_long && cooled) || avg > max + frame_secs) {
                    let span = self.span_of(idx);
                    self.stats.dropped += 1;
                    self.free(idx);
                    self.next_seq += 1;
                    self.play_ts += span;
                    self.age = Some(avg - self.units_to_secs(span));
                    self.last_adjust = Some(now);
                    continue;
                }
                if avg < target - frame_secs / 4.0 && cooled {
                    self.age = Some(avg + self.units_to_secs(need));
                    self.last_adjust = Some(now);
                    self.stats.concealed_units += need as u64;
                    return self.gap(need);
                }
            }
            let units = self.span_of(idx);
            // The delay of this packet is until its first sample plays: its age now plus
            // what the consumer's FIFO still holds ahead of it. (Age alone would swing with
            // the phase of packets longer than a frame.)
            let delay = self.age_of(idx, now) + self.units_to_secs(self.level);
            self.record_age(delay);
            self.stats.played += 1;
            self.free(idx);
            self.next_seq += 1;
            self.play_ts = self.play_ts.max(slot.ts + units);
            self.played_end = slot.ts + units;
            self.level += units;
            return Decision::Packet {
                idx,
                units: units as u32,
            };
        }
    }

    fn gap(&mut self, units: i64) -> Decision {
        self.level += units;
        Decision::Gap(units as u32)
    }

    /// The packet at `next_seq` is not here. None: packets were skipped, look again.
    fn missing(&mut self, need: i64) -> Option<Decision> {
        {
            let Some((seq, idx)) = self.stored_after(self.next_seq) else {
                // Nothing newer either: an outage, silence, or the packet is late.
                self.play_ts += need;
                self.stats.concealed_units += need as u64;
                return Some(self.gap(need));
            };
            let missing = seq - self.next_seq;
            let span = self.slots[idx].ts - self.play_ts;
            let per = self.ptime_units.max(1);
            // Missing packets whose span playout already passed (concealed as gaps while
            // nothing was here) are just counted.
            let uncovered = if span <= 0 { 0 } else { (span + per - 1) / per };
            let covered = (missing - uncovered).max(0);
            if covered > 0 {
                self.stats.lost += covered as u64;
                self.next_seq += covered;
                return None;
            }
            let units = (span / missing).clamp(1, per);
            self.stats.lost += 1;
            self.stats.concealed_units += units as u64;
            self.next_seq += 1;
            self.play_ts += units;
            self.level += units;
            Some(Decision::Lost {
                units: units as u32,
                next_idx: (missing == 1).then_some(idx),
            })
        }
    }

    /// The next item of output for a frame of `frame_ts_units` (20 ms in RTP clock units);
    /// call until [`Playout::NotYet`], once per frame. See the module docs.
    pub fn pop(&mut self, now: Instant, frame_ts_units: u32) -> Playout<'_> {
        let frame = i64::from(frame_ts_units.max(1));
        match self.decide(now, frame) {
            Decision::NotYet => Playout::NotYet,
            Decision::Gap(units) => Playout::Gap { units },
            Decision::Lost { units, next_idx } => Playout::Lost {
                units,
                next_payload: next_idx.map(|i| self.payload(i)),
            },
            Decision::Packet { idx, units } => {
                let s = self.slots[idx];
                Playout::Packet {
                    timestamp: s.ts as u32,
                    sequence: s.seq as u16,
                    marker: s.marker,
                    units,
                    payload: self.payload(idx),
                }
            }
        }
    }

    fn payload(&self, idx: usize) -> &[u8] {
        let at = idx * MAX_PAYLOAD;
        &self.payloads[at..at + usize::from(self.slots[idx].len)]
    }
}
