//! Media taps: a call's audio as raw 20 ms frames for another thread (speech analytics, a
//! module's `on_frame`), beside the recorder and independent of it.
//!
//! The media thread must never block or allocate per frame, so a tap is a bounded channel of
//! fixed-size frames: `std::sync::mpsc::sync_channel` with a capacity allocates its ring of
//! slots once, when the tap is made, and `try_send` moves a frame into a free slot (or fails
//! at once when the reader is behind: the frame is dropped and counted).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::time::Duration;

use crate::graph::RateBridge;

/// Samples per channel of the largest tapped frame: 20 ms at 16 kHz.
const MAX_PER_CHANNEL: usize = 320;
/// Frames the ring holds: one second of audio before the reader's lag costs frames.
pub(crate) const TAP_CAPACITY: usize = 50;

/// One 20 ms frame of a call, interleaved stereo: the caller on the left, the callee (or what
/// was played to a solo caller) on the right.
#[derive(Clone, Debug)]
pub struct TapFrame {
    samples: [i16; 2 * MAX_PER_CHANNEL],
    per_channel: usize,
    rate: u32,
}

impl TapFrame {
    /// Interleaved samples, left (caller) first.
    pub fn stereo(&self) -> &[i16] {
        &self.samples[..2 * self.per_channel]
    }

    /// Samples per channel (160 at 8 kHz, 320 at 16 kHz).
    pub fn samples_per_channel(&self) -> usize {
        self.per_channel
    }

    /// The tap's sample rate in Hz.
    pub fn rate(&self) -> u32 {
        self.rate
    }
}

/// The media thread's end of a tap, on a bridge or solo node.
pub(crate) struct FrameTap {
    sender: SyncSender<TapFrame>,
    dropped: Arc<AtomicU64>,
    pub(crate) caller: RateBridge,
    pub(crate) callee: RateBridge,
    rate: u32,
}

impl FrameTap {
    /// Converts both sides to the tap's rate and queues the frame; never blocks. A full ring or
    /// a reader gone drops the frame (counted).
    pub(crate) fn push(&mut self, caller: &[i16], callee: &[i16]) {
        let mut frame = TapFrame {
            samples: [0; 2 * MAX_PER_CHANNEL],
            per_channel: (self.rate as usize / 50).min(MAX_PER_CHANNEL),
            rate: self.rate,
        };
        let n = frame.per_channel;
        let a = self.caller.convert(caller);
        for (out, s) in frame.samples[..2 * n].iter_mut().step_by(2).zip(a) {
            *out = *s;
        }
        let b = self.callee.convert(callee);
        for (out, s) in frame.samples[1..2 * n].iter_mut().step_by(2).zip(b) {
            *out = *s;
        }
        match self.sender.try_send(frame) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The reader's end of a tap (see [`crate::MediaEngine::tap`]). Frames stop coming (and
/// receiving reports `Disconnected`) once the tap is removed: `untap`, the call's release, or
/// the leg leaving its bridge or solo node for a conference or echo.
pub struct TapReceiver {
    frames: Receiver<TapFrame>,
    dropped: Arc<AtomicU64>,
}

impl TapReceiver {
    /// The next frame, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<TapFrame, RecvTimeoutError> {
        self.frames.recv_timeout(timeout)
    }

    /// The next frame, waiting for it; `Err` once the tap is removed and its frames taken.
    pub fn recv(&self) -> Result<TapFrame, std::sync::mpsc::RecvError> {
        self.frames.recv()
    }

    /// The next frame if one is queued; never waits, never allocates.
    pub fn try_recv(&self) -> Result<TapFrame, TryRecvError> {
        self.frames.try_recv()
    }

    /// Frames the media thread dropped because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A tap's two ends; the media thread builds its converters when it attaches the producer.
pub(crate) fn channel(rate: u32) -> (TapProducer, TapReceiver) {
    let (sender, frames) = std::sync::mpsc::sync_channel(TAP_CAPACITY);
    let dropped = Arc::new(AtomicU64::new(0));
    (
        TapProducer {
            sender,
            dropped: Arc::clone(&dropped),
            rate,
        },
        TapReceiver { frames, dropped },
    )
}

/// A tap on its way to the media thread.
pub(crate) struct TapProducer {
    sender: SyncSender<TapFrame>,
    dropped: Arc<AtomicU64>,
    pub(crate) rate: u32,
}

impl TapProducer {
    pub(crate) fn attach(self, caller: RateBridge, callee: RateBridge) -> FrameTap {
        FrameTap {
            sender: self.sender,
            dropped: self.dropped,
            caller,
            callee,
            rate: self.rate,
        }
    }
}
