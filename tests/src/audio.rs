//! Test tones and their detection: a sine WAV generator and a Goertzel filter.

use std::f64::consts::PI;
use std::path::Path;

/// The frequencies the tone check discriminates between.
pub const TEST_FREQS: [f64; 4] = [440.0, 1000.0, 1500.0, 2000.0];

/// Writes `secs` seconds of a `freq` Hz sine at half full scale, S16LE mono at `rate`.
pub fn write_tone_wav(path: &Path, freq: f64, secs: f64, rate: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    let n = (secs * f64::from(rate)) as usize;
    for i in 0..n {
        let s = 0.5 * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin();
        w.write_sample((s * f64::from(i16::MAX)) as i16)
            .expect("write sample");
    }
    w.finalize().expect("finalize wav");
}

/// Relative power of `freq` in `samples` (Goertzel algorithm), normalised by length.
pub fn goertzel(samples: &[f64], rate: f64, freq: f64) -> f64 {
    let w = 2.0 * PI * freq / rate;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    power / (samples.len() as f64).powi(2)
}

/// What a recording contains.
#[derive(Debug, Clone)]
pub struct ToneReport {
    /// RMS of the analysed window, full scale = 1.0.
    pub rms: f64,
    /// The strongest of [`TEST_FREQS`].
    pub dominant: f64,
    /// (frequency, power) for each test frequency.
    pub powers: Vec<(f64, f64)>,
    pub seconds: f64,
}

impl ToneReport {
    /// Panics unless the recording is not silent (RMS ≥ 0.01) and `freq` dominates.
    pub fn assert_tone(&self, freq: f64, what: &str) {
        assert!(
            self.rms >= 0.01,
            "{what}: recording is silent (rms {:.4}): {self:?}",
            self.rms
        );
        assert_eq!(
            self.dominant, freq,
            "{what}: expected {freq} Hz dominant: {self:?}"
        );
    }
}

/// The first channel of a WAV as samples in [-1, 1], and its sample rate.
pub fn read_first_channel(path: &Path) -> (Vec<f64>, u32) {
    let mut r =
        hound::WavReader::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let spec = r.spec();
    let ch = usize::from(spec.channels.max(1));
    let all: Vec<f64> = match spec.sample_format {
        hound::SampleFormat::Int => {
            let scale = f64::from(1u32 << (spec.bits_per_sample - 1));
            r.samples::<i32>()
                .filter_map(Result::ok)
                .map(|s| f64::from(s) / scale)
                .collect()
        }
        hound::SampleFormat::Float => r
            .samples::<f32>()
            .filter_map(Result::ok)
            .map(f64::from)
            .collect(),
    };
    (all.iter().step_by(ch).copied().collect(), spec.sample_rate)
}

/// Analyses the middle of a WAV (skipping the first and last 20 %, where call setup and
/// teardown sit), over at most 2 s of samples (first channel).
pub fn analyze_wav(path: &Path) -> ToneReport {
    let (mono, rate) = read_first_channel(path);
    let rate = f64::from(rate);
    let n = mono.len();
    let (start, end) = (n / 5, n - n / 5);
    let end = end.min(start + (2.0 * rate) as usize);
    let window = if end > start {
        &mono[start..end]
    } else {
        &mono[..]
    };
    tone_report(window, rate, n as f64 / rate)
}

/// Analyses at most `secs` seconds of a WAV from `from` seconds in (first channel): the part
/// of a recording after its far end changed mid-call (a transfer). Panics when the recording
/// is shorter than `from`.
pub fn analyze_wav_window(path: &Path, from: f64, secs: f64) -> ToneReport {
    let (mono, rate) = read_first_channel(path);
    let rate = f64::from(rate);
    let n = mono.len();
    let start = (from * rate) as usize;
    assert!(
        start < n,
        "{}: {:.2} s long, no audio from {from:.2} s",
        path.display(),
        n as f64 / rate
    );
    let end = n.min(start + (secs * rate) as usize);
    tone_report(&mono[start..end], rate, n as f64 / rate)
}

/// RMS and the strongest test frequency of `window`.
fn tone_report(window: &[f64], rate: f64, seconds: f64) -> ToneReport {
    let rms = if window.is_empty() {
        0.0
    } else {
        (window.iter().map(|x| x * x).sum::<f64>() / window.len() as f64).sqrt()
    };
    let powers: Vec<(f64, f64)> = TEST_FREQS
        .iter()
        .map(|&f| (f, goertzel(window, rate, f)))
        .collect();
    let dominant = powers
        .iter()
        .copied()
        .fold(
            (0.0, f64::MIN),
            |best, p| if p.1 > best.1 { p } else { best },
        )
        .0;
    ToneReport {
        rms,
        dominant,
        powers,
        seconds,
    }
}
