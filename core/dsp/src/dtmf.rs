//! In-band DTMF (ITU-T Q.23 signals) generation and detection.
//!
//! # Detector
//!
//! Works in sub-blocks of 3.25 ms (26 samples at 8 kHz, scaled with the rate). After each
//! sub-block it analyses the last four (a 13 ms block: 104 samples at 8 kHz, the classic
//! ~102-106 sample Goertzel block whose 77 Hz resolution separates adjacent DTMF rows) with
//! Goertzel filters at the eight exact DTMF frequencies. A block names a digit when all of
//! these hold (ITU-T Q.24 / Telcordia GR-506 receiver figures):
//!
//! - each of the two tones is at least [`MIN_LEVEL_DBM0`];
//! - twist: the low-group tone is at most [`NORMAL_TWIST_DB`] above the high-group tone
//!   (normal twist, the line loses more of the high group) and the high-group tone at most
//!   [`REVERSE_TWIST_DB`] above the low-group one (reverse twist). One block's reading
//!   swings by a dB or two as the strong tone's sidelobes leak into the weak tone's filter,
//!   so a block is allowed 2 dB more and the strict limits apply to the power averaged over
//!   the blocks that confirm the digit;
//! - each tone stands [`RELATIVE_PEAK_DB`] above every other tone of its group;
//! - the two tones carry at least [`TONE_ENERGY_FRACTION`] of the block's energy (speech,
//!   music and noise spread theirs);
//! - second harmonics are weak: below the fundamental for the low group, and
//!   [`COL_HARMONIC_DB`] below it for the high group (the row harmonics 1394-1882 Hz sit
//!   next to high-group tones, whose leakage limits how strict that check can be);
//! - each tone is within [`MAX_FREQ_DEVIATION`] of its nominal frequency, measured from the
//!   phase advance of Hann-windowed Goertzel filters over two windows one sub-block apart;
//!   levels and twist use amplitudes corrected for the filter's roll-off at that offset;
//! - the frequencies hold steady (within [`MAX_DRIFT_HZ`]) across the confirming blocks: a
//!   DTMF oscillator is steady, a voice harmonic gliding through a DTMF pair is not.
//!
//! Duration is measured at sub-block resolution, not block resolution: each sub-block keeps
//! its own amplitudes at the eight frequencies, and once a block names a digit the detector
//! counts back how many consecutive sub-blocks carry both of its tones at 0.3 of the block's
//! amplitudes or more. A digit starts when that run reaches [`MIN_DURATION_MS`] minus
//! about a sub-block and at least five blocks in a row have named it with steady
//! frequencies and in-limit average twist. Tests check that 30 ms tones are never reported
//! and 40 ms tones always are, at every alignment to the sub-block grid (Q.24: accept
//! 40 ms). A digit ends after [`MIN_GAP_MS`] without its tones, which bridges the ≤ 10 ms
//! interruptions Q.24 says must not split a digit; at once when a block names another
//! digit; or when no block has named it for 26 ms (its frequencies linger in something
//! that is not DTMF).
//!
//! `Start` comes about 36 ms after the tone begins, `End` about 16 ms after it stops.

use std::collections::VecDeque;

use crate::{Error, Oscillator, dbm0_to_amplitude};

/// Low-group (row) frequencies, Hz (ITU-T Q.23).
pub const ROW_FREQS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// High-group (column) frequencies, Hz.
pub const COL_FREQS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Weakest tone (each of the pair) the detector accepts.
pub const MIN_LEVEL_DBM0: f32 = -30.0;
/// Largest accepted excess of the low-group tone over the high-group tone.
pub const NORMAL_TWIST_DB: f32 = 8.0;
/// Largest accepted excess of the high-group tone over the low-group tone.
pub const REVERSE_TWIST_DB: f32 = 4.0;
/// How far each tone must stand above the other tones of its group. At the 8 dB twist
/// limit the leakage of both tones into a neighbouring filter of the weak group reaches
/// 8 dB below the weak tone, so the usual 8 dB would reject legitimate digits.
pub const RELATIVE_PEAK_DB: f32 = 6.0;
/// Share of the block energy the two tones must carry.
pub const TONE_ENERGY_FRACTION: f32 = 0.7;
/// How far a high-group second harmonic must stay below its fundamental.
pub const COL_HARMONIC_DB: f32 = 12.0;
/// Largest frequency error accepted, as a fraction: Q.24 asks to accept ±1.5% and reject
/// beyond ±3.5%; we cut in between.
pub const MAX_FREQ_DEVIATION: f32 = 0.025;
/// Largest wander of either frequency across the blocks that confirm a digit.
pub const MAX_DRIFT_HZ: f32 = 8.0;
/// Shortest tone reported.
pub const MIN_DURATION_MS: u32 = 40;
/// Silence that ends a digit; shorter interruptions are bridged.
pub const MIN_GAP_MS: u32 = 16;

/// A sub-block carries a digit's tone when its amplitude there reaches this share of the
/// block's. A 26-sample filter is broad: at 8 dB twist the strong tone leaks up to half the
/// weak tone's amplitude into its filter, so the share must sit well below 0.5. Partially
/// covered sub-blocks count from about this coverage on, which keeps a 30 ms tone at 10
/// sub-blocks at most and a 40 ms tone at 11 or more.
const PRESENCE_RATIO: f32 = 0.3;
/// Allowance on the twist limits for a single block (see `classify_block`).
const TWIST_SLACK_DB: f32 = 2.0;
/// Sub-blocks per analysis block.
const SUBS_PER_BLOCK: usize = 4;
/// Sub-blocks (3.25 ms each) a tone must fill to start: 11 = 35.75 ms, between the 30 ms that
/// must fail and the 40 ms that must pass, with a sub-block of margin for partial coverage.
const START_SUBS: u32 = 11;
/// Absent sub-blocks that end a digit: 5 = 16.25 ms; a 10 ms break spans at most 4.
const END_SUBS: u32 = 5;
/// Consecutive blocks (one per sub-block hop) that must name the digit before it starts:
/// 5 blocks span 8 sub-blocks, 26 ms of uninterrupted valid signal. A 40 ms tone holds 8 or
/// more fully covered blocks; speech rarely passes every check for that long.
const START_BLOCKS: u32 = 5;
/// Blocks in a row that may fail to name a digit in progress before it is ended even though
/// its frequencies are still present (speech that carries on where a tone stopped): 26 ms.
const END_BLOCKS: u32 = 8;
/// Sub-block history kept for counting back.
const RING: usize = 32;

fn digit_index(digit: char) -> Result<(usize, usize), Error> {
    let d = digit.to_ascii_uppercase();
    for (r, row) in KEYPAD.iter().enumerate() {
        for (c, &k) in row.iter().enumerate() {
            if k == d {
                return Ok((r, c));
            }
        }
    }
    Err(Error::InvalidDigit { digit })
}

/// A detected digit's edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfEvent {
    Start { digit: char },
    End { digit: char, duration_ms: u32 },
}

/// Eight Goertzel filters run in one pass; returns |X(f)|² per frequency.
fn goertzel8(x: &[f32], coeff: &[f32; 8]) -> [f32; 8] {
    let mut s1 = [0.0f32; 8];
    let mut s2 = [0.0f32; 8];
    for &v in x {
        for k in 0..8 {
            let s0 = v + coeff[k] * s1[k] - s2[k];
            s2[k] = s1[k];
            s1[k] = s0;
        }
    }
    let mut p = [0.0f32; 8];
    for k in 0..8 {
        p[k] = (s1[k] * s1[k] + s2[k] * s2[k] - coeff[k] * s1[k] * s2[k]).max(0.0);
    }
    p
}

fn goertzel1(x: &[f32], coeff: f32) -> f32 {
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &v in x {
        let s0 = v + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0)
}

fn db_to_power_ratio(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

/// Q.24 twist: the high group relative to the low group within [-normal, +reverse], each
/// limit widened by `slack_db`.
fn twist_ok(power_row: f32, power_col: f32, slack_db: f32) -> bool {
    power_col <= power_row * db_to_power_ratio(REVERSE_TWIST_DB + slack_db)
        && power_row <= power_col * db_to_power_ratio(NORMAL_TWIST_DB + slack_db)
}

/// The check a block failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reject {
    Level,
    Twist,
    RelativePeak,
    EnergyFraction,
    Harmonic,
    Frequency,
}

/// What one analysis block found.
#[derive(Debug, Clone, Copy)]
struct BlockDigit {
    row: usize,
    col: usize,
    /// Sine amplitudes of the two tones.
    amp_row: f32,
    amp_col: f32,
    /// Frequency offsets from nominal, Hz.
    off_row: f32,
    off_col: f32,
}

/// Blocks in a row naming one digit, with the spread of their frequency estimates.
#[derive(Debug, Clone, Copy)]
struct Streak {
    row: usize,
    col: usize,
    blocks: u32,
    /// (min, max) offset seen, row then column.
    row_range: (f32, f32),
    col_range: (f32, f32),
    /// Sums of squared amplitudes, for the twist over the whole streak.
    power_row: f32,
    power_col: f32,
}

impl Streak {
    fn new(b: &BlockDigit) -> Streak {
        Streak {
            row: b.row,
            col: b.col,
            blocks: 1,
            // The first block of a run usually straddles the tone's onset, which skews its
            // frequency reading: it does not count towards the drift.
            row_range: (f32::INFINITY, f32::NEG_INFINITY),
            col_range: (f32::INFINITY, f32::NEG_INFINITY),
            power_row: b.amp_row * b.amp_row,
            power_col: b.amp_col * b.amp_col,
        }
    }

    /// Twist averaged over the streak is within the limits.
    fn twist_ok(&self) -> bool {
        twist_ok(self.power_row, self.power_col, 0.0)
    }

    /// Extends the streak with `b`, or starts a new one if `b` is another digit or its
    /// frequencies have wandered: a DTMF oscillator is steady, a voice harmonic glides.
    fn extend(self, b: &BlockDigit) -> Streak {
        let widen = |(lo, hi): (f32, f32), x: f32| (lo.min(x), hi.max(x));
        let row_range = widen(self.row_range, b.off_row);
        let col_range = widen(self.col_range, b.off_col);
        if (self.row, self.col) != (b.row, b.col)
            || row_range.1 - row_range.0 > MAX_DRIFT_HZ
            || col_range.1 - col_range.0 > MAX_DRIFT_HZ
        {
            return Streak::new(b);
        }
        Streak {
            blocks: self.blocks + 1,
            row_range,
            col_range,
            power_row: self.power_row + b.amp_row * b.amp_row,
            power_col: self.power_col + b.amp_col * b.amp_col,
            ..self
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Idle,
    Tone {
        digit: BlockDigit,
        first: u64,
        last_present: u64,
        absent: u32,
        /// Blocks since the last one that named this digit.
        unconfirmed: u32,
    },
}

/// Streaming DTMF detector; feed it any chunk sizes.
#[derive(Debug, Clone)]
pub struct DtmfDetector {
    sample_rate: u32,
    sub_len: usize,
    /// The last block of samples, oldest first; the sub-block being filled is its tail.
    history: Vec<f32>,
    fill: usize,
    /// Goertzel coefficients 2cos(ω): rows then columns.
    coeff: [f32; 8],
    /// e^{-jω} per frequency, for complex Goertzel outputs.
    rot: [(f32, f32); 8],
    /// ω·S per frequency: the phase a nominal tone advances in one sub-block.
    advance: [f32; 8],
    /// Hann window over a block less one sub-block, for the frequency check.
    hann: Vec<f32>,
    /// Per sub-block sine amplitudes at the eight frequencies, by sub-block index % RING.
    sub_amps: [[f32; 8]; RING],
    /// Sub-blocks completed so far.
    subs: u64,
    /// Sub-blocks before this index belong to an earlier digit and do not count for a new one.
    floor: u64,
    min_amp: f32,
    /// The digit the latest blocks named, and how steadily.
    streak: Option<Streak>,
    state: State,
}

impl DtmfDetector {
    /// A detector for `sample_rate`: 8000 and 16000 are the usual, any rate from 8000 up
    /// works (the block scales with the rate); lower rates are treated as 8000.
    pub fn new(sample_rate: u32) -> DtmfDetector {
        let sample_rate = sample_rate.max(8000);
        let sub_len = ((26 * u64::from(sample_rate) + 4000) / 8000) as usize;
        let mut coeff = [0.0f32; 8];
        let mut rot = [(0.0f32, 0.0f32); 8];
        let mut advance = [0.0f32; 8];
        for (k, &f) in ROW_FREQS.iter().chain(&COL_FREQS).enumerate() {
            let w = std::f64::consts::TAU * f64::from(f) / f64::from(sample_rate);
            coeff[k] = (2.0 * w.cos()) as f32;
            rot[k] = (w.cos() as f32, -w.sin() as f32);
            advance[k] = (w * sub_len as f64).rem_euclid(std::f64::consts::TAU) as f32;
        }
        let wlen = sub_len * (SUBS_PER_BLOCK - 1);
        let hann = (0..wlen)
            .map(|i| {
                let x = std::f64::consts::TAU * (i as f64 + 0.5) / wlen as f64;
                (0.5 - 0.5 * x.cos()) as f32
            })
            .collect();
        DtmfDetector {
            sample_rate,
            sub_len,
            history: vec![0.0; sub_len * SUBS_PER_BLOCK],
            fill: 0,
            coeff,
            rot,
            advance,
            hann,
            sub_amps: [[0.0; 8]; RING],
            subs: 0,
            floor: 0,
            min_amp: dbm0_to_amplitude(MIN_LEVEL_DBM0),
            streak: None,
            state: State::Idle,
        }
    }

    /// Analysis block length in samples (104 at 8 kHz).
    pub fn block_samples(&self) -> usize {
        self.history.len()
    }

    /// Forgets everything heard so far (no `End` is emitted for a digit in progress).
    pub fn reset(&mut self) {
        self.history.fill(0.0);
        self.fill = 0;
        self.sub_amps = [[0.0; 8]; RING];
        self.subs = 0;
        self.floor = 0;
        self.streak = None;
        self.state = State::Idle;
    }

    /// Feeds samples; `events` is called for each digit start and end found.
    pub fn process(&mut self, pcm: &[i16], events: &mut impl FnMut(DtmfEvent)) {
        let n = self.history.len();
        let base = n - self.sub_len;
        let mut rest = pcm;
        while !rest.is_empty() {
            let take = (self.sub_len - self.fill).min(rest.len());
            for (d, &s) in self.history[base + self.fill..base + self.fill + take]
                .iter_mut()
                .zip(&rest[..take])
            {
                *d = f32::from(s);
            }
            self.fill += take;
            rest = &rest[take..];
            if self.fill == self.sub_len {
                self.sub_block_done(events);
                self.history.copy_within(self.sub_len.., 0);
                self.fill = 0;
            }
        }
    }

    fn sub_block_done(&mut self, events: &mut impl FnMut(DtmfEvent)) {
        let n = self.history.len();
        let s = self.sub_len;
        let k = self.subs;
        let p = goertzel8(&self.history[n - s..], &self.coeff);
        let amps = &mut self.sub_amps[(k % RING as u64) as usize];
        for (a, &pw) in amps.iter_mut().zip(&p) {
            *a = 2.0 * pw.sqrt() / s as f32;
        }
        self.subs += 1;
        let block = if k + 1 >= SUBS_PER_BLOCK as u64 {
            self.analyse_block()
        } else {
            None
        };
        self.streak = match (block, self.streak) {
            (None, _) => None,
            (Some(b), Some(st)) => Some(st.extend(&b)),
            (Some(b), None) => Some(Streak::new(&b)),
        };

        if let State::Tone {
            digit,
            first,
            last_present,
            absent,
            unconfirmed,
        } = &mut self.state
        {
            let other = block.filter(|b| (b.row, b.col) != (digit.row, digit.col));
            if let Some(b) = block
                && other.is_none()
            {
                // Follow slow level changes of the same digit.
                *digit = b;
                *unconfirmed = 0;
            } else {
                *unconfirmed += 1;
            }
            if other.is_none() && Self::present(&self.sub_amps, k, digit) {
                *last_present = k;
                *absent = 0;
            } else {
                *absent += 1;
            }
            if *absent >= END_SUBS || *unconfirmed >= END_BLOCKS || other.is_some() {
                let last = if other.is_some() || *unconfirmed >= END_BLOCKS {
                    // The tone is not in the block just analysed.
                    (*last_present).min(k.saturating_sub(SUBS_PER_BLOCK as u64))
                } else {
                    *last_present
                };
                let subs = (last + 1).saturating_sub(*first);
                let duration_ms = (subs * s as u64 * 1000 + u64::from(self.sample_rate) / 2)
                    / u64::from(self.sample_rate);
                events(DtmfEvent::End {
                    digit: KEYPAD[digit.row][digit.col],
                    duration_ms: duration_ms as u32,
                });
                self.floor = last + 1;
                self.state = State::Idle;
            }
        }

        if let (State::Idle, Some(b), Some(streak)) = (self.state, block, self.streak)
            && streak.blocks >= START_BLOCKS
            && streak.twist_ok()
        {
            // Count back the sub-blocks that carry this digit.
            let mut run = 0u32;
            let mut j = k;
            loop {
                if j < self.floor
                    || run as usize >= RING - 1
                    || !Self::present(&self.sub_amps, j, &b)
                {
                    break;
                }
                run += 1;
                if j == 0 {
                    break;
                }
                j -= 1;
            }
            if run >= START_SUBS {
                events(DtmfEvent::Start {
                    digit: KEYPAD[b.row][b.col],
                });
                self.state = State::Tone {
                    digit: b,
                    first: k + 1 - u64::from(run),
                    last_present: k,
                    absent: 0,
                    unconfirmed: 0,
                };
            }
        }
    }

    /// Does sub-block `j` carry both tones of `d` at [`PRESENCE_RATIO`] of the block's
    /// amplitudes or more?
    fn present(sub_amps: &[[f32; 8]; RING], j: u64, d: &BlockDigit) -> bool {
        let a = &sub_amps[(j % RING as u64) as usize];
        a[d.row] >= PRESENCE_RATIO * d.amp_row && a[4 + d.col] >= PRESENCE_RATIO * d.amp_col
    }

    fn analyse_block(&self) -> Option<BlockDigit> {
        self.classify_block().ok()
    }

    /// The digit the current block holds, or the first check it fails.
    fn classify_block(&self) -> Result<BlockDigit, Reject> {
        let x = &self.history[..];
        let n = x.len() as f32;
        let p = goertzel8(x, &self.coeff);
        let best = |g: &[f32]| {
            let mut b = 0;
            for i in 1..4 {
                if g[i] > g[b] {
                    b = i;
                }
            }
            b
        };
        let row = best(&p[..4]);
        let col = best(&p[4..]);
        let (pr, pc) = (p[row], p[4 + col]);
        let amp = |pw: f32| 2.0 * pw.sqrt() / n;
        // A tone off its nominal frequency reads low (by 1.5 dB at 1.5%); the cheap gate
        // here allows for that, the real level check follows the correction below.
        if amp(pr) < 0.5 * self.min_amp || amp(pc) < 0.5 * self.min_amp {
            return Err(Reject::Level);
        }
        let off_row = self.frequency_offset(row);
        let off_col = self.frequency_offset(4 + col);
        if off_row.abs() > MAX_FREQ_DEVIATION * ROW_FREQS[row]
            || off_col.abs() > MAX_FREQ_DEVIATION * COL_FREQS[col]
        {
            return Err(Reject::Frequency);
        }
        let amp_row = amp(pr) / self.block_response(off_row);
        let amp_col = amp(pc) / self.block_response(off_col);
        if amp_row < self.min_amp || amp_col < self.min_amp {
            return Err(Reject::Level);
        }
        if !twist_ok(amp_row * amp_row, amp_col * amp_col, TWIST_SLACK_DB) {
            return Err(Reject::Twist);
        }
        let peak = db_to_power_ratio(RELATIVE_PEAK_DB);
        for i in 0..4 {
            if (i != row && p[i] * peak > pr) || (i != col && p[4 + i] * peak > pc) {
                return Err(Reject::RelativePeak);
            }
        }
        // A sine of amplitude A over n samples has energy n·A²/2 = 2|X|²/n.
        let energy: f32 = x.iter().map(|v| v * v).sum();
        if 2.0 * (pr + pc) / n < TONE_ENERGY_FRACTION * energy {
            return Err(Reject::EnergyFraction);
        }
        // Harmonics of the frequencies actually measured: at +1.5% the 1356 Hz of a '2' would
        // sit 38 Hz from a filter at twice the nominal 697 Hz and read as its harmonic.
        let harmonic_coeff =
            |f: f32| 2.0 * (2.0 * std::f32::consts::TAU * f / self.sample_rate as f32).cos();
        let hr = goertzel1(x, harmonic_coeff(ROW_FREQS[row] + off_row));
        let hc = goertzel1(x, harmonic_coeff(COL_FREQS[col] + off_col));
        if hr >= pr || hc * db_to_power_ratio(COL_HARMONIC_DB) > pc {
            return Err(Reject::Harmonic);
        }
        Ok(BlockDigit {
            row,
            col,
            amp_row,
            amp_col,
            off_row,
            off_col,
        })
    }

    /// Gain of the block's Goertzel filter for a tone `offset_hz` from its centre (the
    /// Dirichlet kernel of a rectangular window).
    fn block_response(&self, offset_hz: f32) -> f32 {
        let n = self.history.len() as f32;
        let x = std::f32::consts::PI * offset_hz / self.sample_rate as f32;
        if x.abs() < 1e-6 {
            return 1.0;
        }
        ((n * x).sin() / (n * x.sin())).abs().max(0.1)
    }
}

impl DtmfDetector {
    /// Windowed complex Goertzel of `x` at frequency index `k` (up to a constant phase).
    fn goertzel_complex(&self, x: &[f32], k: usize) -> (f32, f32) {
        let c = self.coeff[k];
        let (mut s1, mut s2) = (0.0f32, 0.0f32);
        for (&v, &w) in x.iter().zip(&self.hann) {
            let s0 = v * w + c * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        // y = s1 - e^{-jω}·s2
        let (cr, ci) = self.rot[k];
        (s1 - cr * s2, -ci * s2)
    }

    /// Offset in Hz of the tone near frequency index `k` from its nominal frequency: the
    /// phase it advances between two windows one sub-block apart, less the nominal advance.
    fn frequency_offset(&self, k: usize) -> f32 {
        let w = self.hann.len();
        let s = self.sub_len;
        let (ar, ai) = self.goertzel_complex(&self.history[..w], k);
        let (br, bi) = self.goertzel_complex(&self.history[s..s + w], k);
        // b · conj(a)
        let (pr, pi) = (br * ar + bi * ai, bi * ar - br * ai);
        let mut d = pi.atan2(pr) - self.advance[k];
        if d > std::f32::consts::PI {
            d -= std::f32::consts::TAU;
        } else if d < -std::f32::consts::PI {
            d += std::f32::consts::TAU;
        }
        d * self.sample_rate as f32 / (std::f32::consts::TAU * s as f32)
    }
}

/// Default low-group level, dBm0. The high group is sent 2 dB louder, as push-button sets do
/// to make up for the line's high-frequency loss (ITU-T Q.23).
pub const DEFAULT_LOW_DBM0: f32 = -10.0;
pub const DEFAULT_HIGH_DBM0: f32 = -8.0;
/// Longest tone or gap one step may last.
pub const MAX_STEP_MS: u32 = 60_000;

#[derive(Debug, Clone, Copy)]
struct Step {
    /// `None` = silence.
    tone: Option<(usize, usize)>,
    samples: u64,
}

/// DTMF tone source: single digits or queued strings, in 20 ms frames or any buffer size.
#[derive(Debug, Clone)]
pub struct DtmfGenerator {
    sample_rate: u32,
    queue: VecDeque<Step>,
    current: Option<Step>,
    low: Oscillator,
    high: Oscillator,
    amp_low: f64,
    amp_high: f64,
}

impl DtmfGenerator {
    pub fn new(sample_rate: u32) -> DtmfGenerator {
        DtmfGenerator {
            sample_rate,
            queue: VecDeque::with_capacity(64),
            current: None,
            low: Oscillator::new(0.0, sample_rate),
            high: Oscillator::new(0.0, sample_rate),
            amp_low: f64::from(dbm0_to_amplitude(DEFAULT_LOW_DBM0)),
            amp_high: f64::from(dbm0_to_amplitude(DEFAULT_HIGH_DBM0)),
        }
    }

    /// Sets the level of each group, dBm0 (applies from the next digit).
    pub fn set_levels(&mut self, low_dbm0: f32, high_dbm0: f32) {
        self.amp_low = f64::from(dbm0_to_amplitude(low_dbm0));
        self.amp_high = f64::from(dbm0_to_amplitude(high_dbm0));
    }

    fn samples(&self, ms: u32) -> u64 {
        u64::from(ms) * u64::from(self.sample_rate) / 1000
    }

    fn check(what: &'static str, ms: u32, min: u32) -> Result<(), Error> {
        if (min..=MAX_STEP_MS).contains(&ms) {
            Ok(())
        } else {
            Err(Error::Duration {
                what,
                ms,
                min,
                max: MAX_STEP_MS,
            })
        }
    }

    /// Drops whatever is playing or queued and starts `digit` now, for `duration_ms`.
    pub fn start(&mut self, digit: char, duration_ms: u32) -> Result<(), Error> {
        let rc = digit_index(digit)?;
        Self::check("DTMF tone", duration_ms, 1)?;
        self.queue.clear();
        self.begin(Step {
            tone: Some(rc),
            samples: self.samples(duration_ms),
        });
        Ok(())
    }

    /// Appends each digit of `digits` for `duration_ms`, each followed by `gap_ms` of silence.
    /// Nothing is queued if any character is not a digit.
    pub fn queue_digits(
        &mut self,
        digits: &str,
        duration_ms: u32,
        gap_ms: u32,
    ) -> Result<(), Error> {
        for d in digits.chars() {
            digit_index(d)?;
        }
        Self::check("DTMF tone", duration_ms, 1)?;
        Self::check("DTMF gap", gap_ms, 0)?;
        for d in digits.chars() {
            let rc = digit_index(d)?;
            self.queue.push_back(Step {
                tone: Some(rc),
                samples: self.samples(duration_ms),
            });
            if gap_ms > 0 {
                self.queue.push_back(Step {
                    tone: None,
                    samples: self.samples(gap_ms),
                });
            }
        }
        Ok(())
    }

    fn begin(&mut self, step: Step) {
        if let Some((r, c)) = step.tone {
            // Each digit starts both sines at phase 0: no click at the onset.
            self.low = Oscillator::new(f64::from(ROW_FREQS[r]), self.sample_rate);
            self.high = Oscillator::new(f64::from(COL_FREQS[c]), self.sample_rate);
        }
        self.current = Some(step);
    }

    /// True when nothing is playing or queued.
    pub fn is_idle(&self) -> bool {
        self.current.is_none() && self.queue.is_empty()
    }

    /// Writes `out` (silence once idle). Returns true if any tone or gap sample was written.
    pub fn fill(&mut self, out: &mut [i16]) -> bool {
        let mut i = 0;
        let mut wrote = false;
        while i < out.len() {
            let step = match self.current {
                Some(s) if s.samples > 0 => s,
                _ => match self.queue.pop_front() {
                    Some(s) => {
                        self.begin(s);
                        continue;
                    }
                    None => {
                        self.current = None;
                        out[i..].fill(0);
                        break;
                    }
                },
            };
            let n = (step.samples.min((out.len() - i) as u64)) as usize;
            if step.tone.is_some() {
                for s in &mut out[i..i + n] {
                    let v = self.low.next() * self.amp_low + self.high.next() * self.amp_high;
                    *s = crate::to_i16(v as f32);
                }
            } else {
                out[i..i + n].fill(0);
            }
            wrote |= n > 0;
            i += n;
            self.current = Some(Step {
                samples: step.samples - n as u64,
                ..step
            });
        }
        if matches!(self.current, Some(s) if s.samples == 0) && self.queue.is_empty() {
            self.current = None;
        }
        self.low.renormalize();
        self.high.renormalize();
        wrote
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{goertzel_amplitude, sine};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const ALL: &str = "123A456B789C*0#D";

    fn generate(rate: u32, f: impl FnOnce(&mut DtmfGenerator)) -> Vec<i16> {
        let mut g = DtmfGenerator::new(rate);
        f(&mut g);
        let mut out = Vec::new();
        let mut frame = vec![0i16; crate::frame_samples(rate)];
        while g.fill(&mut frame) {
            out.extend_from_slice(&frame);
        }
        // Trailing silence so the last digit's end is seen.
        out.extend(std::iter::repeat_n(0, rate as usize / 10));
        out
    }

    fn detect(rate: u32, pcm: &[i16], chunk: usize) -> Vec<DtmfEvent> {
        let mut d = DtmfDetector::new(rate);
        let mut ev = Vec::new();
        for c in pcm.chunks(chunk) {
            d.process(c, &mut |e| ev.push(e));
        }
        ev
    }

    /// Digits from a well-formed Start/End sequence (panics on a malformed one).
    fn digits(ev: &[DtmfEvent]) -> (String, Vec<u32>) {
        let mut s = String::new();
        let mut durs = Vec::new();
        let mut open = None;
        for e in ev {
            match *e {
                DtmfEvent::Start { digit } => {
                    assert!(open.is_none(), "start inside a digit: {ev:?}");
                    open = Some(digit);
                }
                DtmfEvent::End { digit, duration_ms } => {
                    assert_eq!(open.take(), Some(digit), "{ev:?}");
                    s.push(digit);
                    durs.push(duration_ms);
                }
            }
        }
        assert!(open.is_none(), "unterminated digit: {ev:?}");
        (s, durs)
    }

    /// Mean power of a default-level DTMF pair.
    fn dtmf_power() -> f64 {
        let l = f64::from(dbm0_to_amplitude(DEFAULT_LOW_DBM0));
        let h = f64::from(dbm0_to_amplitude(DEFAULT_HIGH_DBM0));
        (l * l + h * h) / 2.0
    }

    /// Adds Gaussian white noise `snr_db` below `signal_power`.
    fn add_noise(pcm: &mut [i16], signal_power: f64, snr_db: f64, seed: u64) {
        let sigma = (signal_power / 10f64.powf(snr_db / 10.0)).sqrt();
        let mut rng = StdRng::seed_from_u64(seed);
        for x in pcm.iter_mut() {
            // Box-Muller: Gaussian white noise.
            let u1: f64 = rng.random::<f64>().max(1e-12);
            let u2: f64 = rng.random();
            let g = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            *x = (f64::from(*x) + sigma * g).round().clamp(-32768.0, 32767.0) as i16;
        }
    }

    #[test]
    fn all_digits_round_trip_at_8k_and_16k() {
        for rate in [8000u32, 16000] {
            let pcm = generate(rate, |g| g.queue_digits(ALL, 100, 100).unwrap());
            for chunk in [1usize, 37, 160, 4096] {
                let (s, durs) = digits(&detect(rate, &pcm, chunk));
                assert_eq!(s, ALL, "{rate} chunk {chunk}");
                for d in durs {
                    assert!((95..=107).contains(&d), "{rate}: duration {d}");
                }
            }
            // Lower-case a-d are the same digits.
            let pcm = generate(rate, |g| g.queue_digits("abcd", 60, 60).unwrap());
            assert_eq!(digits(&detect(rate, &pcm, 160)).0, "ABCD");
        }
    }

    #[test]
    fn all_digits_survive_20db_white_noise() {
        for rate in [8000u32, 16000] {
            for seed in 0..3 {
                let mut pcm = generate(rate, |g| g.queue_digits(ALL, 80, 80).unwrap());
                add_noise(&mut pcm, dtmf_power(), 20.0, seed);
                assert_eq!(
                    digits(&detect(rate, &pcm, 160)).0,
                    ALL,
                    "{rate} seed {seed}"
                );
            }
        }
    }

    #[test]
    fn twist_within_limits_is_accepted_and_beyond_is_rejected() {
        for rate in [8000u32, 16000] {
            // (low, high) levels in dBm0.
            for (low, high, ok) in [
                (-6.0, -13.0, true),  // normal twist 7 dB
                (-12.0, -9.0, true),  // reverse twist 3 dB
                (-4.0, -14.0, false), // normal twist 10 dB
                (-13.0, -7.0, false), // reverse twist 6 dB
            ] {
                let pcm = generate(rate, |g| {
                    g.set_levels(low, high);
                    g.queue_digits(ALL, 80, 80).unwrap();
                });
                let (s, _) = digits(&detect(rate, &pcm, 160));
                if ok {
                    assert_eq!(s, ALL, "{rate}: low {low} high {high}");
                } else {
                    assert_eq!(s, "", "{rate}: low {low} high {high}");
                }
            }
        }
    }

    #[test]
    fn duration_limits_hold_at_every_alignment() {
        for rate in [8000u32, 16000] {
            let sub = DtmfDetector::new(rate).sub_len;
            for offset in 0..sub {
                let lead = vec![0i16; 1000 + offset];
                for (ms, want) in [(30u32, ""), (40, "5")] {
                    let mut pcm = lead.clone();
                    pcm.extend(generate(rate, |g| g.queue_digits("5", ms, 0).unwrap()));
                    let (s, durs) = digits(&detect(rate, &pcm, 160));
                    assert_eq!(s, want, "{rate} offset {offset} {ms} ms");
                    if let Some(&d) = durs.first() {
                        assert!((36..=46).contains(&d), "{d}");
                    }
                }
            }
        }
    }

    #[test]
    fn sequence_with_50ms_gaps_detects_each_digit_once() {
        for rate in [8000u32, 16000] {
            for tone_ms in [45u32, 60, 200] {
                let mut pcm = generate(rate, |g| g.queue_digits("159#*0", tone_ms, 50).unwrap());
                assert_eq!(
                    digits(&detect(rate, &pcm, 160)).0,
                    "159#*0",
                    "{rate} {tone_ms}"
                );
                add_noise(&mut pcm, dtmf_power(), 20.0, 7);
                assert_eq!(
                    digits(&detect(rate, &pcm, 160)).0,
                    "159#*0",
                    "{rate} {tone_ms} noisy"
                );
            }
            // Repeated digits separated by 50 ms stay separate.
            let pcm = generate(rate, |g| g.queue_digits("55500", 60, 50).unwrap());
            assert_eq!(digits(&detect(rate, &pcm, 160)).0, "55500");
        }
    }

    #[test]
    fn reset_forgets_a_tone_in_progress() {
        let rate = 8000;
        let tone = generate(rate, |g| g.queue_digits("5", 60, 0).unwrap());
        let (first, rest) = tone.split_at(240); // 30 ms, then the remaining 30 ms + silence
        let mut d = DtmfDetector::new(rate);
        let mut ev = Vec::new();
        d.process(first, &mut |e| ev.push(e));
        d.reset();
        d.process(rest, &mut |e| ev.push(e));
        assert!(
            ev.is_empty(),
            "two 30 ms halves are not one 60 ms tone: {ev:?}"
        );
        // Without the reset the same samples are one digit.
        assert_eq!(digits(&detect(rate, &tone, 160)).0, "5");
    }

    #[test]
    fn short_interruptions_are_bridged() {
        let rate = 8000;
        let mut pcm = generate(rate, |g| g.queue_digits("7", 80, 0).unwrap());
        pcm.truncate(640);
        let mut second = pcm.clone();
        pcm.extend(std::iter::repeat_n(0, 64)); // 8 ms break
        pcm.append(&mut second);
        pcm.extend(std::iter::repeat_n(0, 800));
        let (s, durs) = digits(&detect(rate, &pcm, 160));
        assert_eq!(s, "7");
        assert!(durs[0] >= 160, "{durs:?}");
    }

    /// 100 ms of a pair at `dev` relative frequency error and the given levels, then silence.
    fn pair(rate: u32, r: usize, c: usize, dev: f64, low_dbm0: f32, high_dbm0: f32) -> Vec<i16> {
        let n = rate as usize / 10;
        let lo = sine(
            f64::from(ROW_FREQS[r]) * (1.0 + dev),
            f64::from(dbm0_to_amplitude(low_dbm0)),
            rate,
            n,
            0.0,
        );
        let hi = sine(
            f64::from(COL_FREQS[c]) * (1.0 + dev),
            f64::from(dbm0_to_amplitude(high_dbm0)),
            rate,
            n,
            0.3,
        );
        let mut pcm: Vec<i16> = lo
            .iter()
            .zip(&hi)
            .map(|(a, b)| a.saturating_add(*b))
            .collect();
        pcm.extend(std::iter::repeat_n(0, n));
        pcm
    }

    #[test]
    fn frequency_tolerance_accepts_1_5_and_rejects_3_5_percent() {
        for rate in [8000u32, 16000] {
            for (r, keys) in KEYPAD.iter().enumerate() {
                for (c, key) in keys.iter().enumerate() {
                    let want = key.to_string();
                    for dev in [-0.015, 0.015] {
                        // With the default 2 dB pre-emphasis and with 7 dB of normal twist.
                        for (lo, hi) in [(DEFAULT_LOW_DBM0, DEFAULT_HIGH_DBM0), (-4.0, -11.0)] {
                            let pcm = pair(rate, r, c, dev, lo, hi);
                            assert_eq!(
                                digits(&detect(rate, &pcm, 160)).0,
                                want,
                                "{rate} {dev} {want} {lo}/{hi}"
                            );
                        }
                    }
                    for dev in [-0.035, 0.035] {
                        let pcm = pair(rate, r, c, dev, DEFAULT_LOW_DBM0, DEFAULT_HIGH_DBM0);
                        assert_silent(rate, &pcm, &format!("{want} off by {dev}"));
                    }
                }
            }
        }
    }

    /// Loads one block of `pcm` (ending at `end`) and classifies it.
    fn classify(rate: u32, pcm: &[i16], end: usize) -> Result<char, Reject> {
        let mut d = DtmfDetector::new(rate);
        let n = d.block_samples();
        for (h, &x) in d.history.iter_mut().zip(&pcm[end - n..end]) {
            *h = f32::from(x);
        }
        d.classify_block().map(|b| KEYPAD[b.row][b.col])
    }

    #[test]
    fn each_check_rejects_what_it_is_for() {
        let rate = 8000;
        let amp_l = f64::from(dbm0_to_amplitude(DEFAULT_LOW_DBM0));
        let amp_h = f64::from(dbm0_to_amplitude(DEFAULT_HIGH_DBM0));
        let mix = |parts: &[(f64, f64)]| -> Vec<i16> {
            (0..800)
                .map(|i| {
                    let t = i as f64 / f64::from(rate);
                    // Each part starts at its own phase (f radians) so no two line up.
                    let v: f64 = parts
                        .iter()
                        .map(|&(f, a)| a * (std::f64::consts::TAU * f * t + f).sin())
                        .sum();
                    v.round() as i16
                })
                .collect()
        };
        let five = [(770.0, amp_l), (1336.0, amp_h)];
        assert_eq!(classify(rate, &mix(&five), 400), Ok('5'));
        assert_eq!(
            classify(rate, &mix(&[(770.0, 200.0), (1336.0, 250.0)]), 400),
            Err(Reject::Level)
        );
        assert_eq!(
            classify(rate, &mix(&[(770.0, amp_l), (1336.0, amp_l * 0.3)]), 400),
            Err(Reject::Twist)
        );
        assert_eq!(
            classify(
                rate,
                &mix(&[(770.0, amp_l), (697.0, amp_l * 0.7), (1336.0, amp_h)]),
                400
            ),
            Err(Reject::RelativePeak)
        );
        assert_eq!(
            classify(
                rate,
                &mix(&[(770.0, amp_l), (1336.0, amp_h), (500.0, amp_h)]),
                400
            ),
            Err(Reject::EnergyFraction)
        );
        assert_eq!(
            classify(
                rate,
                &mix(&[(770.0, amp_l), (1336.0, amp_h), (2672.0, amp_h * 0.5)]),
                400
            ),
            Err(Reject::Harmonic)
        );
        assert_eq!(
            classify(rate, &mix(&[(770.0 * 1.04, amp_l), (1336.0, amp_h)]), 400),
            Err(Reject::Frequency)
        );
    }

    /// Three seconds of a synthetic vowel: harmonics of a pitch gliding ±30% around `f0`
    /// at 0.7 Hz, shaped by formants at `f1`, `f2` and 2600 Hz.
    fn vowel(rate: u32, f0: f64, f1: f64, f2: f64) -> Vec<i16> {
        let fs = f64::from(rate);
        let mut phase = 0.0f64;
        (0..3 * rate as usize)
            .map(|i| {
                let t = i as f64 / fs;
                let pitch = f0 + 0.3 * f0 * (std::f64::consts::TAU * 0.7 * t).sin();
                phase += std::f64::consts::TAU * pitch / fs;
                let mut v = 0.0;
                for h in 1..=40 {
                    let fh = pitch * f64::from(h);
                    if fh > 3800.0 {
                        break;
                    }
                    let formant = |fc: f64, bw: f64| 1.0 / (1.0 + ((fh - fc) / bw).powi(2));
                    let g =
                        formant(f1, 80.0) + 0.8 * formant(f2, 100.0) + 0.2 * formant(2600.0, 160.0);
                    v += g * (phase * f64::from(h)).sin();
                }
                (v * 5000.0).clamp(-32000.0, 32000.0) as i16
            })
            .collect()
    }

    fn assert_silent(rate: u32, pcm: &[i16], what: &str) {
        let ev = detect(rate, pcm, 160);
        assert!(ev.is_empty(), "{what} at {rate}: {ev:?}");
    }

    #[test]
    fn rejects_single_tones_and_a_1khz_tone() {
        for rate in [8000u32, 16000] {
            let n = rate as usize;
            for f in [697.0, 941.0, 1209.0, 1633.0, 1000.0] {
                assert_silent(rate, &sine(f, 15000.0, rate, n, 0.0), &format!("{f} Hz"));
            }
            // Two tones, neither a DTMF pair.
            let a = sine(697.0, 8000.0, rate, n, 0.0);
            let b = sine(1000.0, 8000.0, rate, n, 0.0);
            let pcm: Vec<i16> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
            assert_silent(rate, &pcm, "697 + 1000 Hz");
        }
    }

    #[test]
    fn rejects_below_threshold_and_accepts_just_above() {
        for rate in [8000u32, 16000] {
            let pcm = generate(rate, |g| {
                g.set_levels(-40.0, -38.0);
                g.queue_digits(ALL, 100, 100).unwrap();
            });
            assert_silent(rate, &pcm, "-40 dBm0");
            let pcm = generate(rate, |g| {
                g.set_levels(-27.0, -26.0);
                g.queue_digits(ALL, 100, 100).unwrap();
            });
            assert_eq!(digits(&detect(rate, &pcm, 160)).0, ALL);
        }
    }

    #[test]
    fn rejects_chirp_noise_and_speech_like_signals() {
        for rate in [8000u32, 16000] {
            let fs = f64::from(rate);
            // Linear chirp 300 -> 3400 Hz over 2 s, and back down two sines at once.
            let n = 2 * rate as usize;
            let chirp: Vec<i16> = (0..n)
                .map(|i| {
                    let t = i as f64 / fs;
                    let ph = |f0: f64, f1: f64| {
                        std::f64::consts::TAU * (f0 * t + (f1 - f0) * t * t / 4.0)
                    };
                    (8000.0 * ph(300.0, 3400.0).sin() + 8000.0 * ph(3400.0, 300.0).sin()) as i16
                })
                .collect();
            assert_silent(rate, &chirp, "chirp");

            // Voice-band noise: white noise through a 300-3400 Hz band-pass made of a
            // first-order high-pass and a two-pole low-pass.
            let mut noise = vec![0i16; n];
            let mut rng = StdRng::seed_from_u64(3);
            let white: Vec<f64> = (0..n).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect();
            let (mut hp_prev_x, mut hp_y, mut lp1, mut lp2) = (0.0, 0.0, 0.0, 0.0);
            let a_hp = 1.0 / (1.0 + std::f64::consts::TAU * 300.0 / fs);
            let a_lp = 1.0 - (-std::f64::consts::TAU * 3400.0 / fs).exp();
            for (o, &x) in noise.iter_mut().zip(&white) {
                hp_y = a_hp * (hp_y + x - hp_prev_x);
                hp_prev_x = x;
                lp1 += a_lp * (hp_y - lp1);
                lp2 += a_lp * (lp1 - lp2);
                *o = (lp2 * 30000.0) as i16;
            }
            assert_silent(rate, &noise, "voice-band noise");

            // Speech-like: vowels with a gliding pitch whose formants sit right on DTMF
            // pairs; as the pitch glides, two harmonics pass through a pair together.
            for (f0, f1, f2) in [
                (110.0, 700.0, 1220.0),
                (200.0, 700.0, 1220.0),
                (160.0, 770.0, 1340.0),
                (200.0, 850.0, 1480.0),
                (90.0, 940.0, 1630.0),
                (110.0, 940.0, 1630.0),
            ] {
                assert_silent(
                    rate,
                    &vowel(rate, f0, f1, f2),
                    &format!("vowel f0 {f0} formants {f1}/{f2}"),
                );
            }

            // Music-like: a chord of a 697 Hz note with its harmonics plus a 1209 Hz note
            // with its harmonics is a DTMF pair plus overtones: the harmonic check refuses it.
            let base = generate(rate, |g| g.queue_digits("1", 200, 0).unwrap());
            let h1 = sine(
                2.0 * 1209.0,
                0.7 * f64::from(dbm0_to_amplitude(DEFAULT_HIGH_DBM0)),
                rate,
                base.len(),
                0.0,
            );
            let pcm: Vec<i16> = base
                .iter()
                .zip(&h1)
                .map(|(a, b)| a.saturating_add(*b))
                .collect();
            assert_silent(rate, &pcm, "DTMF 1 with a strong 2nd harmonic");
        }
    }

    #[test]
    fn interferer_breaks_the_energy_fraction() {
        // A valid pair under a louder 500 Hz tone: both DTMF tones pass level, twist and
        // relative-peak checks; only the energy share catches it.
        let rate = 8000;
        let base = generate(rate, |g| g.queue_digits("8", 200, 0).unwrap());
        let hum = sine(500.0, 12000.0, rate, base.len(), 0.0);
        let pcm: Vec<i16> = base
            .iter()
            .zip(&hum)
            .map(|(a, b)| a.saturating_add(*b))
            .collect();
        assert_silent(rate, &pcm, "DTMF 8 under 500 Hz");
        // The same pair alone is found.
        assert_eq!(digits(&detect(rate, &base, 160)).0, "8");
    }

    #[test]
    fn back_to_back_digits_without_a_gap_switch_digit() {
        let rate = 8000;
        let pcm = generate(rate, |g| g.queue_digits("19", 100, 0).unwrap());
        assert_eq!(digits(&detect(rate, &pcm, 160)).0, "19");
    }

    #[test]
    fn generator_levels_frequencies_and_lengths() {
        let rate = 8000;
        let mut g = DtmfGenerator::new(rate);
        assert!(g.is_idle());
        g.queue_digits("0#", 100, 50).unwrap();
        assert!(!g.is_idle());
        let mut out = Vec::new();
        let mut frame = [0i16; 160];
        while g.fill(&mut frame) {
            out.extend_from_slice(&frame);
        }
        assert!(g.is_idle());
        // 2 x (100 + 50) ms = 300 ms = 2400 samples = 15 frames exactly.
        assert_eq!(out.len(), 2400);
        let zero = &out[..800];
        let amp_l = f64::from(dbm0_to_amplitude(DEFAULT_LOW_DBM0));
        let amp_h = f64::from(dbm0_to_amplitude(DEFAULT_HIGH_DBM0));
        assert!((goertzel_amplitude(zero, 941.0, rate) / amp_l - 1.0).abs() < 0.02);
        assert!((goertzel_amplitude(zero, 1336.0, rate) / amp_h - 1.0).abs() < 0.02);
        assert!(out[800..1200].iter().all(|&x| x == 0));
        let hash = &out[1200..2000];
        assert!((goertzel_amplitude(hash, 1477.0, rate) / amp_h - 1.0).abs() < 0.02);
        assert!(out[2000..].iter().all(|&x| x == 0));

        // start() cuts in, replacing the queue.
        g.queue_digits("123", 100, 100).unwrap();
        g.start('5', 40).unwrap();
        let mut big = [0i16; 800];
        assert!(g.fill(&mut big));
        assert!(big[..320].iter().any(|&x| x != 0));
        assert!(big[320..].iter().all(|&x| x == 0));
        assert!(g.is_idle());
        assert!(!g.fill(&mut big));
    }

    #[test]
    fn generator_rejects_bad_input_atomically() {
        let mut g = DtmfGenerator::new(8000);
        assert!(matches!(
            g.start('x', 100),
            Err(Error::InvalidDigit { digit: 'x' })
        ));
        assert!(matches!(
            g.queue_digits("12E3", 100, 50),
            Err(Error::InvalidDigit { digit: 'E' })
        ));
        assert!(g.is_idle());
        assert!(matches!(g.start('1', 0), Err(Error::Duration { .. })));
        assert!(matches!(
            g.queue_digits("1", 100, 70_000),
            Err(Error::Duration { .. })
        ));
        assert!(g.is_idle());
    }
}
