//! Sample processing for the media reactors: resampling, call-progress tones, in-band DTMF,
//! conference mixing, WAV prompts and the playlist player that feeds a leg.
//!
//! All PCM is mono, signed 16-bit linear, in 20 ms frames (`rate / 50` samples) unless a
//! function says otherwise. Hot-path calls (`process`, `fill`, `next_frame`, `mix_minus`)
//! work in buffers allocated by the constructors and never allocate.
//!
//! Levels are in dBm0 where telephony specifies them: 0 dBm0 is the digital milliwatt, a sine
//! 3.14 dB below the overload point of the G.711 μ-law coder (ITU-T G.711 §2, table 2a), so
//! a full-scale 16-bit sine is about +3.14 dBm0.
#![forbid(unsafe_code)]

pub mod dtmf;
pub mod mix;
pub mod play;
pub mod resample;
pub mod say;
pub mod tone;
pub mod wav;

use std::path::PathBuf;

/// Sample rates every module here accepts, in Hz.
pub const SUPPORTED_RATES: [u32; 7] = [8000, 12000, 16000, 24000, 32000, 44100, 48000];

/// Samples in one 20 ms frame at `sample_rate`.
pub const fn frame_samples(sample_rate: u32) -> usize {
    (sample_rate / 50) as usize
}

/// The errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A sample rate outside [`SUPPORTED_RATES`].
    #[error(
        "unsupported sample rate {rate} Hz (supported: 8000, 12000, 16000, 24000, 32000, 44100, 48000)"
    )]
    UnsupportedRate { rate: u32 },
    /// A buffer of the wrong length was passed to a frame-based call.
    #[error("{what}: expected {expected} samples, got {got}")]
    FrameLength {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// The resampling library refused a set-up or a call.
    #[error("resampler: {reason}")]
    Resampler { reason: String },
    /// A tone-language string that does not parse.
    #[error("tone spec {spec:?}: at byte {offset}: expected {expected}")]
    ToneSyntax {
        spec: String,
        offset: usize,
        expected: &'static str,
    },
    /// A character that is not a DTMF digit (0-9, *, #, A-D).
    #[error("{digit:?} is not a DTMF digit (0-9, *, #, A-D)")]
    InvalidDigit { digit: char },
    /// A zero or absurd duration.
    #[error("{what}: duration {ms} ms out of range ({min}..={max} ms)")]
    Duration {
        what: &'static str,
        ms: u32,
        min: u32,
        max: u32,
    },
    /// The WAV file could not be opened or read.
    #[error("{path}: {source}")]
    WavRead {
        path: PathBuf,
        #[source]
        source: hound::Error,
    },
    /// The WAV file is readable but not in a format we play.
    #[error(
        "{path}: {problem}; prompts must be 16-bit PCM mono at 8000, 12000, 16000, 24000, 32000, 44100 or 48000 Hz"
    )]
    WavFormat { path: PathBuf, problem: String },
}

/// Peak amplitude (16-bit scale) of a sine at `dbm0`. ITU-T G.711: the digital milliwatt sits
/// 3.14 dB below the μ-law overload point, which maps to 16-bit full scale.
pub(crate) fn dbm0_to_amplitude(dbm0: f32) -> f32 {
    32767.0 * 10f32.powf((dbm0 - OVERLOAD_DBM0) / 20.0)
}

/// Level of a full-scale sine in dBm0: the μ-law coder's overload point (ITU-T G.711).
#[allow(clippy::approx_constant)] // 3.14 dB, a coincidence with π
const OVERLOAD_DBM0: f32 = 3.14;

/// Rounds and clamps to i16.
#[inline]
pub(crate) fn to_i16(x: f32) -> i16 {
    // `as` saturates on float-to-int casts; rounding keeps quantisation error symmetric.
    x.round() as i16
}

/// A complex rotator for sine generation: one multiply-add per sample instead of `sin()`.
/// Renormalised at every call boundary so rounding cannot grow the amplitude.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Oscillator {
    re: f64,
    im: f64,
    step_re: f64,
    step_im: f64,
}

impl Oscillator {
    /// Starts at phase 0 (a sine starts at zero, so a tone burst begins without a click).
    pub(crate) fn new(freq_hz: f64, sample_rate: u32) -> Oscillator {
        let mut o = Oscillator {
            re: 1.0,
            im: 0.0,
            step_re: 1.0,
            step_im: 0.0,
        };
        o.retune(freq_hz, sample_rate);
        o
    }

    /// Changes the frequency keeping the phase (phase-continuous).
    pub(crate) fn retune(&mut self, freq_hz: f64, sample_rate: u32) {
        let w = std::f64::consts::TAU * freq_hz / f64::from(sample_rate);
        self.step_re = w.cos();
        self.step_im = w.sin();
    }

    /// Current value, sin(phase), then advances one sample.
    #[inline]
    pub(crate) fn next(&mut self) -> f64 {
        let v = self.im;
        let re = self.re * self.step_re - self.im * self.step_im;
        let im = self.re * self.step_im + self.im * self.step_re;
        self.re = re;
        self.im = im;
        v
    }

    pub(crate) fn renormalize(&mut self) {
        let m = (self.re * self.re + self.im * self.im).sqrt();
        if m > 0.0 {
            self.re /= m;
            self.im /= m;
        }
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    /// Goertzel power at an exact frequency, normalised to the amplitude of a sine: a sine of
    /// amplitude A at `freq` reads about A.
    pub fn goertzel_amplitude(pcm: &[i16], freq: f64, rate: u32) -> f64 {
        let w = std::f64::consts::TAU * freq / f64::from(rate);
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &x in pcm {
            let s0 = f64::from(x) + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let p = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        2.0 * p.max(0.0).sqrt() / pcm.len() as f64
    }

    pub fn sine(freq: f64, amp: f64, rate: u32, n: usize, phase0: f64) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                (amp * (std::f64::consts::TAU * freq * t + phase0).sin()).round() as i16
            })
            .collect()
    }

    /// Zero crossings counted upward, over a whole number of samples: frequency estimate.
    pub fn freq_by_crossings(pcm: &[i16], rate: u32) -> f64 {
        let mut first = None;
        let mut last = 0usize;
        let mut count = 0usize;
        for i in 1..pcm.len() {
            if pcm[i - 1] < 0 && pcm[i] >= 0 {
                if first.is_none() {
                    first = Some(i);
                } else {
                    count += 1;
                }
                last = i;
            }
        }
        let first = first.expect("signal has upward zero crossings");
        count as f64 * f64::from(rate) / (last - first) as f64
    }
}
