//! Sans-IO RTP and RTCP for the media reactors (RFC 3550, RFC 4733, RFC 5761).
//!
//! Nothing here owns a socket or reads a clock: every function that needs the time takes
//! `now: Instant` (the reactor's monotonic clock, virtual in tests) and, where an NTP
//! timestamp must be written, `wall: SystemTime`. Per-packet and per-frame functions do not
//! allocate once their object is built.
//!
//! - [`packet`]: the RTP fixed header (RFC 3550 §5.1) and RTP/RTCP demultiplexing.
//! - [`event`]: RFC 4733 telephone-events (DTMF), receiver and sender.
//! - [`stats`]: receiver statistics of RFC 3550 Appendix A (sequence validation, loss, jitter).
//! - [`rtcp`]: SR/RR/SDES/BYE parsing and writing, RTT from LSR/DLSR, the report schedule.
//! - [`jitter`]: an adaptive jitter buffer for legs whose media we terminate.
//! - [`quality`]: the ITU-T G.107 E-model (R factor and MOS).
#![forbid(unsafe_code)]

pub mod event;
pub mod jitter;
pub mod packet;
pub mod quality;
pub mod rtcp;
pub mod stats;

/// Everything that can go wrong in this crate. Malformed input from the peer is kept apart
/// from misuse by the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer's packet is shorter than its headers say (or than a fixed header).
    #[error("packet truncated: {needed} bytes needed, {available} available")]
    Truncated { needed: usize, available: usize },
    /// RFC 3550 §5.1 / §6.4: only version 2 exists.
    #[error("unsupported RTP/RTCP version {0}")]
    BadVersion(u8),
    /// RFC 3550 §5.1: the last octet counts padding octets, itself included.
    #[error("invalid padding count {0}")]
    BadPadding(u8),
    /// RFC 3550 §6.1 / Appendix A.2: a compound RTCP packet failed a validity check.
    #[error("invalid compound RTCP packet: {0}")]
    InvalidRtcp(&'static str),
    /// A character that is not a DTMF digit (0-9, *, #, A-D).
    #[error("not a DTMF digit: {0:?}")]
    NotADigit(char),
    /// A telephone-event duration that does not fit the 16-bit duration field (RFC 4733 §2.3.5)
    /// or is zero.
    #[error("event duration {0} ms out of range")]
    DurationOutOfRange(u32),
    /// The event sender's queue is full.
    #[error("telephone-event queue full")]
    QueueFull,
}
