//! Signal helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::f64::consts::PI;

/// `samples` of a sine of `freq` Hz at `rate`, peak `amplitude`, starting at
/// sample `start` (so consecutive frames join up).
pub fn sine(freq: f64, rate: u32, amplitude: f64, start: usize, samples: usize) -> Vec<i16> {
    (start..start + samples)
        .map(|n| (amplitude * (2.0 * PI * freq * n as f64 / f64::from(rate)).sin()).round() as i16)
        .collect()
}

/// A voiced-speech stand-in: a 125 Hz fundamental with decaying harmonics up
/// to 3.5 kHz and a slow vibrato, so codecs see a pitch and a spectral shape.
pub fn voiced(rate: u32, amplitude: f64, start: usize, samples: usize) -> Vec<i16> {
    (start..start + samples)
        .map(|n| {
            let t = n as f64 / f64::from(rate);
            // Phase of a 125 Hz fundamental whose frequency swings ±2 % at 3 Hz.
            let phase =
                2.0 * PI * 125.0 * (t - 0.02 / (2.0 * PI * 3.0) * (2.0 * PI * 3.0 * t).cos());
            let mut v = 0.0;
            let mut k = 1.0;
            while k * 125.0 < 3_500.0 {
                v += (phase * k).sin() / k;
                k += 1.0;
            }
            (amplitude * 0.5 * v).clamp(-32_768.0, 32_767.0) as i16
        })
        .collect()
}

pub fn rms(x: &[i16]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len() as f64).sqrt()
}

/// Power at `freq` (Goertzel) over total power: near 1 for a clean tone.
pub fn tone_ratio(x: &[i16], freq: f64, rate: u32) -> f64 {
    let w = 2.0 * PI * freq / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let tone_power = (s1 * s1 + s2 * s2 - coeff * s1 * s2) * 2.0 / (x.len() as f64).powi(2);
    let total_power = rms(x).powi(2);
    tone_power / total_power
}

/// The best normalised cross-correlation of `x` against `reference` shifted by
/// 0..=`max_lag` samples (`reference` must be `max_lag` longer than `x`).
pub fn best_correlation(x: &[i16], reference: &[i16], max_lag: usize) -> f64 {
    (0..=max_lag)
        .map(|lag| {
            let r = &reference[lag..lag + x.len()];
            let dot: f64 = x
                .iter()
                .zip(r)
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum();
            dot / (rms(x) * rms(r) * x.len() as f64)
        })
        .fold(f64::MIN, f64::max)
}

pub fn db(ratio: f64) -> f64 {
    20.0 * ratio.log10()
}

/// A speech stand-in with syllables: every 160 ms a new pitch (110–180 Hz)
/// and spectral tilt under a rise-and-fall envelope. Non-stationary enough for
/// the Opus/SILK voice activity detector to call it speech, and for a
/// concealment that only repeats the past to fall short.
pub fn syllables(rate: u32, samples: usize) -> Vec<i16> {
    const PITCH: [f64; 7] = [110.0, 150.0, 128.0, 180.0, 135.0, 160.0, 120.0];
    const TILT: [f64; 7] = [1.0, 0.6, 1.4, 0.8, 1.2, 0.7, 1.0];
    let mut phase = 0.0f64;
    (0..samples)
        .map(|n| {
            let t = n as f64 / f64::from(rate);
            let syllable = (t / 0.16) as usize % PITCH.len();
            let f0 = PITCH[syllable];
            phase += 2.0 * PI * f0 / f64::from(rate);
            let envelope = 0.1 + 0.9 * (PI * (t / 0.16).fract()).sin();
            let mut v = 0.0;
            let mut k = 1.0;
            while k * f0 < 3_500.0 {
                v += (phase * k).sin() / k.powf(TILT[syllable]);
                k += 1.0;
            }
            (4_000.0 * envelope * v).clamp(-32_768.0, 32_767.0) as i16
        })
        .collect()
}
