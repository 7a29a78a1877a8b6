//! Packet-loss concealment for the waveform codecs (G.711, G.722), after
//! ITU-T G.711 Appendix I.
//!
//! On the first lost frame we find the pitch period of the last 20 ms of output
//! and repeat it. As the erasure goes on, more pitch periods are cycled (1 for the
//! first 10 ms, 2 up to 20 ms, 3 after) so the result sounds less buzzy, and the
//! output fades by 20 % per 10 ms from 10 ms on, reaching silence at 60 ms
//! (Appendix I §I.2.2–I.2.4). The joint where a cycle wraps is smoothed with a
//! quarter-period overlap-add, and the first good frame is cross-faded with the
//! continued synthetic signal over 4 ms plus 4 ms per further 10 ms of erasure, at
//! most 10 ms (§I.2.5).
//!
//! Unlike Appendix I we add no 3.75 ms algorithmic delay, so the very first
//! synthetic sample follows the last real one without an overlap-add; the loop
//! starts exactly one pitch period back, which keeps the joint close for voiced
//! speech. Works at 8 kHz (G.711) and 16 kHz (G.722): every length scales with
//! the rate. All state is inline; nothing allocates after construction.

/// 8 kHz lengths, multiplied by `scale` (1 or 2).
const HISTORY_8K: usize = 390; // 48.75 ms: 3 maximal pitch periods + a quarter of one
const PITCH_MIN_8K: usize = 40; // 5 ms, 200 Hz
const PITCH_MAX_8K: usize = 120; // 15 ms, 66.7 Hz
const CORRELATION_8K: usize = 160; // 20 ms analysis window
const HISTORY_MAX: usize = HISTORY_8K * 2;

#[derive(Clone, Debug)]
pub(crate) struct Plc {
    /// 1 at 8 kHz, 2 at 16 kHz.
    scale: usize,
    /// The last `HISTORY_8K * scale` output samples, most recent last.
    history: [i16; HISTORY_MAX],
    /// `history` as it was when the current erasure began: the synthesis source.
    frozen: [i16; HISTORY_MAX],
    /// Pitch period found at the start of the erasure, in samples.
    pitch: usize,
    /// Pitch periods in the repeated cycle (1..=3).
    periods: usize,
    /// Read position inside the cycle.
    position: usize,
    /// Samples concealed so far in the current erasure; 0 outside one.
    erased: usize,
}

impl Plc {
    pub(crate) fn new(sample_rate: u32) -> Plc {
        let scale = if sample_rate >= 16_000 { 2 } else { 1 };
        Plc {
            scale,
            history: [0; HISTORY_MAX],
            frozen: [0; HISTORY_MAX],
            pitch: PITCH_MIN_8K * scale,
            periods: 1,
            position: 0,
            erased: 0,
        }
    }

    fn history_len(&self) -> usize {
        HISTORY_8K * self.scale
    }

    /// Samples in `ms` milliseconds at this rate.
    fn ms(&self, ms: usize) -> usize {
        ms * 8 * self.scale
    }

    /// Appends output to the history window.
    fn remember(&mut self, pcm: &[i16]) {
        let len = self.history_len();
        let history = &mut self.history[..len];
        if pcm.len() >= len {
            history.copy_from_slice(&pcm[pcm.len() - len..]);
        } else {
            history.copy_within(pcm.len().., 0);
            history[len - pcm.len()..].copy_from_slice(pcm);
        }
    }

    /// Called with every decoded good frame: cross-fades out of an erasure if one
    /// just ended, then records the frame.
    pub(crate) fn good_frame(&mut self, pcm: &mut [i16]) {
        if self.erased > 0 {
            // §I.2.5: 4 ms after a 10 ms erasure, 4 ms more per further 10 ms, max 10 ms.
            let extra = (self.erased - 1) / self.ms(10);
            let overlap = self.ms((4 + 4 * extra).min(10)).min(pcm.len());
            let steps = overlap as i32 + 1;
            for (i, sample) in pcm[..overlap].iter_mut().enumerate() {
                let synthetic = i32::from(self.next_synthetic());
                let w = i as i32 + 1;
                *sample = ((synthetic * (steps - w) + i32::from(*sample) * w) / steps) as i16;
            }
            self.erased = 0;
        }
        self.remember(pcm);
    }

    /// Fills `pcm` with concealment for a lost frame and returns its length.
    pub(crate) fn conceal(&mut self, pcm: &mut [i16]) -> usize {
        if self.erased == 0 {
            self.start_erasure();
        }
        for sample in pcm.iter_mut() {
            *sample = self.next_synthetic();
        }
        self.remember(pcm);
        pcm.len()
    }

    fn start_erasure(&mut self) {
        let len = self.history_len();
        self.frozen[..len].copy_from_slice(&self.history[..len]);
        self.pitch = self.find_pitch();
        self.periods = 1;
        self.position = 0;
    }

    /// The lag in [5 ms, 15 ms] whose normalised cross-correlation with the last
    /// 20 ms is highest (§I.2.1; a full search, not the decimated one: this runs
    /// once per erasure).
    fn find_pitch(&self) -> usize {
        let h = &self.frozen[..self.history_len()];
        let window = CORRELATION_8K * self.scale;
        let start = h.len() - window;
        let recent = &h[start..];
        let mut best = PITCH_MIN_8K * self.scale;
        let mut best_score = 0.0f64;
        for lag in PITCH_MIN_8K * self.scale..=PITCH_MAX_8K * self.scale {
            let past = &h[start - lag..start - lag + window];
            let mut correlation = 0i64;
            let mut energy = 0i64;
            for (&x, &y) in recent.iter().zip(past) {
                correlation += i64::from(x) * i64::from(y);
                energy += i64::from(y) * i64::from(y);
            }
            if correlation > 0 && energy > 0 {
                let score = correlation as f64 / (energy as f64).sqrt();
                if score > best_score {
                    best_score = score;
                    best = lag;
                }
            }
        }
        best
    }

    fn next_synthetic(&mut self) -> i16 {
        let t = self.erased;
        self.erased += 1;
        if t >= self.ms(60) {
            return 0;
        }
        // §I.2.3: widen the cycle to 2 then 3 periods at 10 and 20 ms. The current
        // sample stays where it is: only the cycle start moves back.
        let periods = if t < self.ms(10) {
            1
        } else if t < self.ms(20) {
            2
        } else {
            3
        };
        if periods != self.periods {
            self.position += (periods - self.periods) * self.pitch;
            self.periods = periods;
        }
        let cycle = self.periods * self.pitch;
        let overlap = self.pitch / 4;
        let end = self.history_len();
        let base = end - cycle;
        let mut value = i32::from(self.frozen[base + self.position]);
        if self.position >= cycle - overlap {
            // Blend the cycle's tail towards the samples just before its start, so
            // the wrap to the start is smooth.
            let w = (self.position - (cycle - overlap) + 1) as i32;
            let steps = overlap as i32 + 1;
            let before = i32::from(self.frozen[base + self.position - cycle]);
            value = (value * (steps - w) + before * w) / steps;
        }
        self.position = (self.position + 1) % cycle;

        // §I.2.4: full level for 10 ms, then down 20 % per 10 ms.
        let fade_start = self.ms(10);
        if t >= fade_start {
            let span = self.ms(50) as i64;
            let left = span - (t - fade_start) as i64;
            value = (i64::from(value) * left / span) as i32;
        }
        value as i16
    }
}
