//! What a peer heard from the switch's own media (prompts, tones, music, conferences):
//! reading recordings as samples, measuring loudness over time, tone powers in dB, and
//! following a WAV while baresip is still writing it.

use crate::{Daemon, goertzel, wait_until};
use std::path::Path;
use std::time::Duration;

/// Frames quieter than this RMS (full scale = 1.0, about -46 dBFS) count as silence: far
/// above G.711's idle noise, far below a prompt, a tone or music.
pub const SILENCE_RMS: f64 = 0.005;

/// The first channel of a WAV as samples in -1.0..1.0, with its sample rate.
#[derive(Debug, Clone)]
pub struct Heard {
    pub samples: Vec<f64>,
    pub rate: u32,
}

impl Heard {
    /// Reads a complete WAV (one baresip closed: the header holds the data length).
    pub fn read(path: &Path) -> Heard {
        let (samples, rate) = crate::audio::read_first_channel(path);
        Heard { samples, rate }
    }

    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.rate)
    }

    /// Several WAVs of one rate played one after another (a prompt sequence).
    pub fn concat(paths: &[&Path]) -> Heard {
        let parts: Vec<Heard> = paths.iter().map(|p| Heard::read(p)).collect();
        let rate = parts.first().map_or(8000, |h| h.rate);
        assert!(parts.iter().all(|h| h.rate == rate), "one rate: {paths:?}");
        Heard {
            samples: parts.into_iter().flat_map(|h| h.samples).collect(),
            rate,
        }
    }

    /// The samples from `from` to `to` seconds (clamped to the recording).
    pub fn window(&self, from: f64, to: f64) -> &[f64] {
        let at = |t: f64| ((t.max(0.0) * f64::from(self.rate)) as usize).min(self.samples.len());
        let (a, b) = (at(from), at(to));
        &self.samples[a..b.max(a)]
    }

    /// RMS level of each consecutive `frame` seconds (the last partial frame dropped).
    pub fn frame_rms(&self, frame: f64) -> Vec<f64> {
        let n = ((frame * f64::from(self.rate)) as usize).max(1);
        self.samples.chunks_exact(n).map(rms).collect()
    }

    /// From the start of the first loud 20 ms frame to the end of the last one, in seconds:
    /// `None` when the whole recording is silent.
    pub fn loud_span(&self) -> Option<(f64, f64)> {
        let frames = self.frame_rms(0.02);
        let first = frames.iter().position(|&r| r >= SILENCE_RMS)?;
        let last = frames.iter().rposition(|&r| r >= SILENCE_RMS)?;
        Some((first as f64 * 0.02, (last + 1) as f64 * 0.02))
    }

    /// Runs of loud (`true`) and silent (`false`) 100 ms frames as (loud, start s, length s),
    /// ignoring dips shorter than one frame: the cadence of a call-progress tone.
    pub fn cadence(&self) -> Vec<(bool, f64, f64)> {
        let mut runs: Vec<(bool, f64, f64)> = Vec::new();
        for (i, r) in self.frame_rms(0.1).into_iter().enumerate() {
            let loud = r >= SILENCE_RMS;
            match runs.last_mut() {
                Some(last) if last.0 == loud => last.2 += 0.1,
                _ => runs.push((loud, i as f64 * 0.1, 0.1)),
            }
        }
        runs
    }
}

/// The normalised cross-correlation of `heard` with `reference` at the best lag within
/// ±`max_lag` samples (`heard[i]` against `reference[i + lag]`): 1.0 for the same audio,
/// near 0 for unrelated audio. Codec noise (G.711) keeps a faithful copy above 0.9.
pub fn best_correlation(heard: &[f64], reference: &[f64], max_lag: usize) -> f64 {
    let max_lag = max_lag as isize;
    let mut best = 0.0f64;
    for lag in -max_lag..=max_lag {
        let (mut dot, mut eh, mut er) = (0.0, 0.0, 0.0);
        let from = (-lag).max(0) as usize;
        let to = (reference.len() as isize - lag).clamp(0, heard.len() as isize) as usize;
        for i in from..to {
            let (h, r) = (heard[i], reference[(i as isize + lag) as usize]);
            dot += h * r;
            eh += h * h;
            er += r * r;
        }
        if eh > 0.0 && er > 0.0 {
            best = best.max(dot / (eh * er).sqrt());
        }
    }
    best
}

/// RMS of samples in -1.0..1.0 (0 for none).
pub fn rms(samples: &[f64]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|x| x * x).sum::<f64>() / samples.len() as f64).sqrt()
}

/// The power of `freq` in `samples`, in dB relative to a full-scale sine (a sine of
/// amplitude A reads 20·log10(A)); -200 for nothing at all.
pub fn tone_db(samples: &[f64], rate: u32, freq: f64) -> f64 {
    // Goertzel's normalised power of a sine of amplitude A over whole periods is A²/4.
    let p = goertzel(samples, f64::from(rate), freq) * 4.0;
    if p <= 0.0 { -200.0 } else { 10.0 * p.log10() }
}

/// Duration of a WAV file in seconds, from its header.
pub fn wav_seconds(path: &Path) -> f64 {
    let r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f64::from(r.duration()) / f64::from(r.spec().sample_rate)
}

/// How many seconds of audio a WAV that is still being written holds so far: the bytes
/// after its `data` chunk header, at the format of its `fmt ` chunk. `None` until both
/// chunks are on disk. (The header's own lengths are only filled in when the file closes.)
pub fn wav_seconds_so_far(path: &Path) -> Option<f64> {
    let bytes = std::fs::read(path).ok()?;
    let mut at = 12; // "RIFF" size "WAVE"
    let mut byte_rate = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().ok()?) as usize;
        if id == b"fmt " && at + 20 <= bytes.len() {
            byte_rate = Some(u32::from_le_bytes(bytes[at + 16..at + 20].try_into().ok()?));
        }
        if id == b"data" {
            let data = (bytes.len() - (at + 8)) as f64;
            return Some(data / f64::from(byte_rate?));
        }
        at += 8 + len + (len & 1);
    }
    None
}

/// Waits until the WAV at `path` (being written) holds at least `secs` seconds, and returns
/// how many it holds.
pub fn wait_wav_seconds(path: &Path, secs: f64, timeout: Duration) -> f64 {
    wait_until(
        timeout,
        &format!("{secs} s of audio in {}", path.display()),
        || wav_seconds_so_far(path).filter(|&s| s >= secs),
        || format!("now {:?} s", wav_seconds_so_far(path)),
    )
}

/// `(room, members)` of each room in `show conferences` ("N conferences" then
/// "<room> <members> members" lines).
pub fn conferences(d: &Daemon) -> Vec<(String, usize)> {
    d.ctl_ok("show conferences")
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let room = w.next()?.to_owned();
            let members = w.next()?.parse().ok()?;
            (w.next() == Some("members")).then_some((room, members))
        })
        .collect()
}

/// Waits until `show conferences` lists `room` with `members` members, or (for 0) no longer
/// lists it at all (a room closes with its last member).
pub fn wait_conference(d: &Daemon, room: &str, members: usize, timeout: Duration) {
    wait_until(
        timeout,
        &format!("conference {room} with {members} members"),
        || {
            let rooms = conferences(d);
            let now = rooms.iter().find(|(r, _)| r == room).map(|(_, n)| *n);
            (now.unwrap_or(0) == members && (members > 0 || now.is_none())).then_some(())
        },
        || {
            format!(
                "show conferences:\n{}\n{}",
                d.ctl("show conferences").unwrap_or_else(|e| e),
                d.log_tail()
            )
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, amp: f64, secs: f64, rate: u32) -> Vec<f64> {
        (0..(secs * f64::from(rate)) as usize)
            .map(|i| amp * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin())
            .collect()
    }

    #[test]
    fn tone_db_reads_a_sine_amplitude_and_rejects_other_frequencies() {
        let s = sine(440.0, 0.5, 1.0, 8000);
        let db = tone_db(&s, 8000, 440.0);
        assert!((db - 20.0 * 0.5f64.log10()).abs() < 0.2, "{db}");
        assert!(tone_db(&s, 8000, 1000.0) < db - 40.0);
    }

    #[test]
    fn correlation_finds_a_shifted_copy_and_rejects_another_signal() {
        // White noise from a 64-bit LCG (Knuth's MMIX constants), top bits as the sample.
        let mut x: u64 = 1;
        let reference: Vec<f64> = (0..4000)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 40) as f64 / f64::from(1u32 << 24) - 0.5
            })
            .collect();
        let shifted: Vec<f64> = reference[37..].iter().map(|x| x * 0.3).collect();
        let c = best_correlation(&shifted, &reference, 100);
        assert!(c > 0.999, "{c}");
        assert!(best_correlation(&shifted, &reference, 10) < 0.5);
        let other = sine(440.0, 0.5, 0.5, 8000);
        assert!(best_correlation(&other, &reference, 100) < 0.2);
        assert_eq!(best_correlation(&[], &reference, 5), 0.0);
    }

    #[test]
    fn loud_span_and_cadence_follow_the_signal() {
        let rate = 8000;
        let mut samples = vec![0.0; 4000]; // 0.5 s silence
        samples.extend(sine(440.0, 0.3, 2.0, rate));
        samples.extend(vec![0.0; 32000]); // 4 s silence
        samples.extend(sine(440.0, 0.3, 1.0, rate));
        let heard = Heard { samples, rate };
        let (a, b) = heard.loud_span().expect("loud");
        assert!((a - 0.5).abs() < 0.03 && (b - 7.5).abs() < 0.03, "{a} {b}");
        let runs = heard.cadence();
        let kinds: Vec<bool> = runs.iter().map(|r| r.0).collect();
        assert_eq!(kinds, [false, true, false, true], "{runs:?}");
        assert!(
            (runs[1].2 - 2.0).abs() < 0.15 && (runs[2].2 - 4.0).abs() < 0.15,
            "{runs:?}"
        );
        assert!(
            Heard {
                samples: vec![0.0; 800],
                rate
            }
            .loud_span()
            .is_none()
        );
    }

    #[test]
    fn a_growing_wav_is_measured_from_its_data_chunk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.wav");
        crate::write_tone_wav(&path, 440.0, 1.5, 8000);
        let secs = wav_seconds_so_far(&path).expect("chunks present");
        assert!((secs - 1.5).abs() < 1e-3, "{secs}");
        assert!((wav_seconds(&path) - 1.5).abs() < 1e-3);
        // Cut mid-data: as a writer that has not closed the file yet leaves it.
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..44 + 8000]).expect("write");
        let secs = wav_seconds_so_far(&path).expect("chunks present");
        assert!((secs - 0.5).abs() < 1e-3, "{secs}");
        std::fs::write(&path, &bytes[..20]).expect("write");
        assert_eq!(wav_seconds_so_far(&path), None);
    }
}
