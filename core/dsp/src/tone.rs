//! Call-progress tones in FreeSWITCH's tone language (a TGML subset).
//!
//! Grammar (whitespace between tokens is ignored):
//!
//! ```text
//! spec      = item (";" item)* [";"]
//! item      = "v=" dbm0 | "L=" count | segment
//! segment   = "%(" on_ms "," off_ms "," freq (("+" | ",") freq)* ")"
//! ```
//!
//! - `on_ms`/`off_ms`: cadence of the segment. `off_ms = 0` runs the tone without a gap;
//!   `%(0,0,f)` is a continuous tone that never ends (dial tone). `on_ms = 0` is a pause.
//! - `freq`: 1 to 4 frequencies in Hz (decimals allowed), each below 4000 Hz so the tone is
//!   representable at 8 kHz. FreeSWITCH separates them with commas (`440,480`); `440+480` is
//!   accepted as well.
//! - `v=` sets the level of each frequency of the segments that follow, in dBm0
//!   (default [`DEFAULT_LEVEL_DBM0`]); `L=` plays the whole sequence that many times
//!   (default: forever).
//!
//! Examples: `%(1000,4000,450)` (cn ringback), `%(2000,4000,440+480)` (us ringback),
//! `v=-10;%(500,500,480+620)` (us busy, louder).

use crate::{Error, Oscillator, dbm0_to_amplitude};

/// Level of each frequency when the spec has no `v=`: the level of North American precise
/// dial tone (Telcordia GR-506: 350 + 440 Hz at -13 dBm0 each), loud enough to hear without
/// clipping when up to four frequencies add up.
pub const DEFAULT_LEVEL_DBM0: f32 = -13.0;
/// Most frequencies one segment may mix.
pub const MAX_FREQS: usize = 4;

/// One cadence step: `on_ms` of the frequencies, then `off_ms` of silence.
#[derive(Debug, Clone, PartialEq)]
pub struct ToneSegment {
    pub on_ms: u32,
    pub off_ms: u32,
    pub freqs: Vec<f32>,
    /// Level of each frequency, dBm0.
    pub level_dbm0: f32,
}

/// A parsed tone-language string.
#[derive(Debug, Clone, PartialEq)]
pub struct ToneSpec {
    pub segments: Vec<ToneSegment>,
    /// How many times the sequence plays; `None` = forever.
    pub loops: Option<u32>,
}

struct Parser<'a> {
    spec: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, expected: &'static str) -> Error {
        Error::ToneSyntax {
            spec: self.spec.to_owned(),
            offset: self.pos,
            expected,
        }
    }

    fn skip_ws(&mut self) {
        while self.pos < self.bytes.len() && self.bytes[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8, expected: &'static str) -> Result<(), Error> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.err(expected))
        }
    }

    /// A number: optional '-', digits, optional '.' digits.
    fn number(
        &mut self,
        allow_sign: bool,
        allow_frac: bool,
        expected: &'static str,
    ) -> Result<f64, Error> {
        self.skip_ws();
        let start = self.pos;
        let mut end = self.pos;
        if allow_sign && matches!(self.bytes.get(end), Some(b'-' | b'+')) {
            end += 1;
        }
        let digits_start = end;
        while self.bytes.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        let mut had_digits = end > digits_start;
        if allow_frac && self.bytes.get(end) == Some(&b'.') {
            end += 1;
            let frac_start = end;
            while self.bytes.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
            had_digits |= end > frac_start;
        }
        if !had_digits {
            return Err(self.err(expected));
        }
        let v: f64 = self.spec[start..end]
            .parse()
            .map_err(|_| self.err(expected))?;
        self.pos = end;
        Ok(v)
    }

    fn millis(&mut self, expected: &'static str) -> Result<u32, Error> {
        let at = self.pos;
        let v = self.number(false, false, expected)?;
        if v > f64::from(MAX_SEGMENT_MS) {
            self.pos = at;
            self.skip_ws();
            return Err(self.err("a duration of at most 3600000 ms"));
        }
        Ok(v as u32)
    }

    fn segment(&mut self, level_dbm0: f32) -> Result<ToneSegment, Error> {
        self.expect(b'%', "'%(', 'v=' or 'L='")?;
        self.expect(b'(', "'(' after '%'")?;
        let on_ms = self.millis("the on time in ms")?;
        self.expect(b',', "',' after the on time")?;
        let off_ms = self.millis("the off time in ms")?;
        self.expect(b',', "',' after the off time")?;
        let mut freqs = Vec::with_capacity(MAX_FREQS);
        loop {
            self.skip_ws();
            let at = self.pos;
            let f = self.number(false, true, "a frequency in Hz")?;
            if !(f > 0.0 && f < 4000.0) {
                self.pos = at;
                return Err(self.err("a frequency above 0 and below 4000 Hz"));
            }
            if freqs.len() == MAX_FREQS {
                self.pos = at;
                return Err(self.err("')': at most 4 frequencies per segment"));
            }
            freqs.push(f as f32);
            if self.eat(b'+') || self.eat(b',') {
                continue;
            }
            self.expect(b')', "'+', ',' or ')' after a frequency")?;
            break;
        }
        Ok(ToneSegment {
            on_ms,
            off_ms,
            freqs,
            level_dbm0,
        })
    }
}

/// Longest on or off time we accept: an hour.
const MAX_SEGMENT_MS: u32 = 3_600_000;

impl ToneSpec {
    /// Parses a tone-language string; errors name the byte offset and what was expected.
    pub fn parse(s: &str) -> Result<ToneSpec, Error> {
        let mut p = Parser {
            spec: s,
            bytes: s.as_bytes(),
            pos: 0,
        };
        let mut level = DEFAULT_LEVEL_DBM0;
        let mut loops = None;
        let mut segments = Vec::new();
        loop {
            match p.peek() {
                None => break,
                Some(b'v' | b'V') => {
                    p.pos += 1;
                    p.expect(b'=', "'=' after 'v'")?;
                    let at = p.pos;
                    let v = p.number(true, true, "a level in dBm0")?;
                    if !(-60.0..=3.0).contains(&v) {
                        p.pos = at;
                        p.skip_ws();
                        return Err(p.err("a level between -60 and 3 dBm0"));
                    }
                    level = v as f32;
                }
                Some(b'L' | b'l') => {
                    p.pos += 1;
                    p.expect(b'=', "'=' after 'L'")?;
                    p.skip_ws();
                    let at = p.pos;
                    let n = p.number(false, false, "a loop count")?;
                    if !(1.0..=1_000_000.0).contains(&n) {
                        p.pos = at;
                        return Err(p.err("a loop count from 1 to 1000000"));
                    }
                    loops = Some(n as u32);
                }
                Some(_) => segments.push(p.segment(level)?),
            }
            if p.peek().is_none() {
                break;
            }
            p.expect(b';', "';' between items")?;
        }
        if segments.is_empty() {
            return Err(p.err("a segment '%(on,off,freq)'"));
        }
        Ok(ToneSpec { segments, loops })
    }

    /// True if playback never ends by itself: no loop limit, or a `%(0,0,..)` segment.
    pub fn is_endless(&self) -> bool {
        self.loops.is_none() || self.segments.iter().any(|s| s.on_ms == 0 && s.off_ms == 0)
    }
}

#[derive(Debug, Clone)]
struct SegmentSamples {
    /// `None` = continuous (`%(0,0,..)`).
    on: Option<u64>,
    off: u64,
    amps: [f32; MAX_FREQS],
    freqs: [f64; MAX_FREQS],
    nfreqs: usize,
}

/// Renders a [`ToneSpec`] into PCM, sample-exact and phase-continuous across calls.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    sample_rate: u32,
    segments: Vec<SegmentSamples>,
    loops: Option<u32>,
    loops_done: u32,
    seg: usize,
    /// Samples already rendered of the current segment (on then off).
    pos: u64,
    osc: [Oscillator; MAX_FREQS],
    finished: bool,
}

impl ToneGenerator {
    pub fn new(spec: &ToneSpec, sample_rate: u32) -> ToneGenerator {
        let ms = |v: u32| u64::from(v) * u64::from(sample_rate) / 1000;
        let segments: Vec<SegmentSamples> = spec
            .segments
            .iter()
            .map(|s| {
                let mut freqs = [0.0; MAX_FREQS];
                let nfreqs = s.freqs.len().min(MAX_FREQS);
                for (d, &f) in freqs.iter_mut().zip(&s.freqs) {
                    *d = f64::from(f);
                }
                SegmentSamples {
                    on: if s.on_ms == 0 && s.off_ms == 0 {
                        None
                    } else {
                        Some(ms(s.on_ms))
                    },
                    off: ms(s.off_ms),
                    amps: [dbm0_to_amplitude(s.level_dbm0); MAX_FREQS],
                    freqs,
                    nfreqs,
                }
            })
            .collect();
        let mut g = ToneGenerator {
            sample_rate,
            segments,
            loops: spec.loops,
            loops_done: 0,
            seg: 0,
            pos: 0,
            osc: [Oscillator::new(0.0, sample_rate); MAX_FREQS],
            finished: false,
        };
        g.reset();
        g
    }

    /// Back to the start of the sequence.
    pub fn reset(&mut self) {
        self.loops_done = 0;
        self.seg = 0;
        self.pos = 0;
        self.finished = self.segments.is_empty();
        self.osc = [Oscillator::new(0.0, self.sample_rate); MAX_FREQS];
        self.tune();
    }

    fn tune(&mut self) {
        if let Some(s) = self.segments.get(self.seg) {
            for (o, &f) in self.osc.iter_mut().zip(&s.freqs[..s.nfreqs]) {
                o.retune(f, self.sample_rate);
            }
        }
    }

    /// True once the loops are exhausted.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Fills `out`. Returns false when the tone had already finished before this call (all
    /// of `out` is then silence); a call during which it finishes returns true and pads the
    /// rest of `out` with silence.
    pub fn fill(&mut self, out: &mut [i16]) -> bool {
        if self.finished {
            out.fill(0);
            return false;
        }
        let n = self.render(out);
        out[n..].fill(0);
        true
    }

    /// Writes tone samples into `out` until it is full or the tone finishes; returns how many
    /// were written (fewer than `out.len()` only when the loops ran out).
    pub fn render(&mut self, out: &mut [i16]) -> usize {
        let mut i = 0;
        while i < out.len() && !self.finished {
            let seg = &self.segments[self.seg];
            let (n, tone) = match seg.on {
                None => (out.len() - i, true),
                Some(on) if self.pos < on => (((on - self.pos) as usize).min(out.len() - i), true),
                Some(on) => {
                    let left = on + seg.off - self.pos;
                    ((left as usize).min(out.len() - i), false)
                }
            };
            let nf = seg.nfreqs;
            let amps = seg.amps;
            for s in &mut out[i..i + n] {
                // The oscillators run through the gaps too, so every burst of a cadence
                // continues one waveform rather than restarting it.
                let mut v = 0.0f64;
                for (o, &a) in self.osc[..nf].iter_mut().zip(&amps) {
                    v += o.next() * f64::from(a);
                }
                *s = if tone { crate::to_i16(v as f32) } else { 0 };
            }
            i += n;
            self.pos += n as u64;
            if let Some(on) = seg.on
                && self.pos >= on + seg.off
            {
                self.advance();
            }
        }
        for o in &mut self.osc {
            o.renormalize();
        }
        i
    }

    fn advance(&mut self) {
        self.pos = 0;
        self.seg += 1;
        if self.seg == self.segments.len() {
            self.seg = 0;
            self.loops_done += 1;
            if self.loops.is_some_and(|l| self.loops_done >= l) {
                self.finished = true;
                return;
            }
        }
        self.tune();
    }
}

/// The call-progress tones [`country_tone`] knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ToneKind {
    Dial,
    Ringback,
    Busy,
    /// Congestion, also called reorder (North America) or equipment engaged.
    Congestion,
    CallWaiting,
}

/// The tone-language string of a national call-progress tone, by ISO 3166 country code
/// (lower case; "uk" is accepted for "gb").
///
/// Sources: ITU-T E.180 Supplement 2 (Various tones used in national networks) for cn, de,
/// fr, gb and jp; BT SIN 350 for gb; Telcordia GR-506 (precise tone plan) for us: dial
/// 350+440 at -13 dBm0 per frequency, audible ringing 440+480 2 s on 4 s off at -19 dBm0,
/// busy 480+620 0.5/0.5 and reorder 480+620 0.25/0.25 at -24 dBm0, call waiting 440 Hz
/// 300 ms once every 10 s. Levels not given here are the language's default, -13 dBm0. The supplement gives no
/// congestion tone for fr: we play the busy frequency at twice its rate, as French PBXs
/// commonly do; treat that one as a convention, not a national specification.
/// Japan's ringback and call waiting are 400 Hz amplitude-modulated at 15-16 Hz, which this
/// language cannot express: they return `None`.
pub fn country_tone(country: &str, kind: ToneKind) -> Option<&'static str> {
    use ToneKind::*;
    let c = country.trim().to_ascii_lowercase();
    Some(match (c.as_str(), kind) {
        ("cn", Dial) => "%(1000,0,450)",
        ("cn", Ringback) => "%(1000,4000,450)",
        ("cn", Busy) => "%(350,350,450)",
        ("cn", Congestion) => "%(700,700,450)",
        ("cn", CallWaiting) => "%(400,4000,450)",

        ("us", Dial) => "%(1000,0,350+440)",
        ("us", Ringback) => "v=-19;%(2000,4000,440+480)",
        ("us", Busy) => "v=-24;%(500,500,480+620)",
        ("us", Congestion) => "v=-24;%(250,250,480+620)",
        ("us", CallWaiting) => "%(300,9700,440)",

        ("gb" | "uk", Dial) => "%(1000,0,350+440)",
        ("gb" | "uk", Ringback) => "%(400,200,400+450);%(400,2000,400+450)",
        ("gb" | "uk", Busy) => "%(375,375,400)",
        ("gb" | "uk", Congestion) => "%(400,350,400);%(225,525,400)",
        ("gb" | "uk", CallWaiting) => "%(100,4000,400)",

        ("de", Dial) => "%(1000,0,425)",
        ("de", Ringback) => "%(1000,4000,425)",
        ("de", Busy) => "%(480,480,425)",
        ("de", Congestion) => "%(240,240,425)",
        ("de", CallWaiting) => "%(200,200,425);%(200,5000,425)",

        ("fr", Dial) => "%(1000,0,440)",
        ("fr", Ringback) => "%(1500,3500,440)",
        ("fr", Busy) => "%(500,500,440)",
        ("fr", Congestion) => "%(250,250,440)",
        ("fr", CallWaiting) => "%(300,10000,440)",

        ("jp", Dial) => "%(1000,0,400)",
        ("jp", Busy) => "%(500,500,400)",
        ("jp", Congestion) => "%(500,500,400)",

        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::goertzel_amplitude;

    fn syntax_err(s: &str) -> (usize, &'static str) {
        match ToneSpec::parse(s) {
            Err(Error::ToneSyntax {
                offset, expected, ..
            }) => (offset, expected),
            other => panic!("{s:?}: expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_examples() {
        let s = ToneSpec::parse("%(1000,4000,450)").unwrap();
        assert_eq!(s.loops, None);
        assert_eq!(
            s.segments,
            vec![ToneSegment {
                on_ms: 1000,
                off_ms: 4000,
                freqs: vec![450.0],
                level_dbm0: DEFAULT_LEVEL_DBM0
            }]
        );
        let s = ToneSpec::parse("%(2000,4000,440+480)").unwrap();
        assert_eq!(s.segments[0].freqs, vec![440.0, 480.0]);
        // FreeSWITCH's own comma form.
        let s = ToneSpec::parse("%(2000,4000,440,480)").unwrap();
        assert_eq!(s.segments[0].freqs, vec![440.0, 480.0]);
        let s = ToneSpec::parse("v=-7; L=3; %(100,50,941.5+1477) ; v=-20;%(0,100,350)").unwrap();
        assert_eq!(s.loops, Some(3));
        assert_eq!(s.segments.len(), 2);
        assert_eq!(s.segments[0].level_dbm0, -7.0);
        assert_eq!(s.segments[0].freqs, vec![941.5, 1477.0]);
        assert_eq!(s.segments[1].level_dbm0, -20.0);
        assert!(ToneSpec::parse("%(0,0,350+440)").unwrap().is_endless());
        assert!(!ToneSpec::parse("L=1;%(10,0,350)").unwrap().is_endless());
        assert!(ToneSpec::parse("L=1;%(0,0,350)").unwrap().is_endless());
    }

    #[test]
    fn parse_errors_name_offset_and_expectation() {
        assert_eq!(syntax_err(""), (0, "a segment '%(on,off,freq)'"));
        assert_eq!(syntax_err("v=-13;"), (6, "a segment '%(on,off,freq)'"));
        assert_eq!(syntax_err("(1000,4000,450)"), (0, "'%(', 'v=' or 'L='"));
        assert_eq!(syntax_err("%1000"), (1, "'(' after '%'"));
        assert_eq!(syntax_err("%(x,4000,450)"), (2, "the on time in ms"));
        assert_eq!(syntax_err("%(1000;4000,450)"), (6, "',' after the on time"));
        assert_eq!(syntax_err("%(1000,,450)"), (7, "the off time in ms"));
        assert_eq!(syntax_err("%(1000,4000,)"), (12, "a frequency in Hz"));
        assert_eq!(
            syntax_err("%(1000,4000,450"),
            (15, "'+', ',' or ')' after a frequency")
        );
        assert_eq!(
            syntax_err("%(1,1,5000)"),
            (6, "a frequency above 0 and below 4000 Hz")
        );
        assert_eq!(
            syntax_err("%(1,1,0)"),
            (6, "a frequency above 0 and below 4000 Hz")
        );
        assert_eq!(
            syntax_err("%(1,1,1+2+3+4+5)"),
            (14, "')': at most 4 frequencies per segment")
        );
        assert_eq!(
            syntax_err("%(1,1,400) %(1,1,400)"),
            (11, "';' between items")
        );
        assert_eq!(syntax_err("v=loud;%(1,1,400)"), (2, "a level in dBm0"));
        assert_eq!(
            syntax_err("v=-90;%(1,1,400)"),
            (2, "a level between -60 and 3 dBm0")
        );
        assert_eq!(
            syntax_err("L=0;%(1,1,400)"),
            (2, "a loop count from 1 to 1000000")
        );
        assert_eq!(syntax_err("L 2;%(1,1,400)"), (2, "'=' after 'L'"));
        assert_eq!(
            syntax_err("%(9999999,1,400)"),
            (2, "a duration of at most 3600000 ms")
        );
        let msg = ToneSpec::parse("%(1000;4000,450)").unwrap_err().to_string();
        assert!(
            msg.contains("byte 6") && msg.contains("',' after the on time"),
            "{msg}"
        );
    }

    /// Checks a cadence sample by sample: `spans` of (on, off) samples repeat from the start.
    /// Off spans must be exact digital silence; on spans must end on a non-zero sample, start
    /// with one in their first two (a burst may begin at phase 0) and never hold three zeros
    /// in a row.
    fn check_cadence(pcm: &[i16], spans: &[(usize, usize)]) {
        let mut i = 0;
        'outer: loop {
            for &(on, off) in spans {
                let on_end = (i + on).min(pcm.len());
                let burst = &pcm[i..on_end];
                assert!(
                    burst[..2].iter().any(|&x| x != 0),
                    "burst at {i} starts late"
                );
                assert!(
                    !burst.windows(3).any(|w| w == [0, 0, 0]),
                    "hole in burst at {i}"
                );
                if on_end == pcm.len() {
                    i = on_end;
                    break 'outer;
                }
                assert!(burst[on - 1] != 0, "burst at {i} ends early");
                i += on;
                let end = (i + off).min(pcm.len());
                assert!(
                    pcm[i..end].iter().all(|&x| x == 0),
                    "sound in the gap at {i}"
                );
                i = end;
                if i == pcm.len() {
                    break 'outer;
                }
            }
        }
        assert_eq!(i, pcm.len(), "cadence covers the whole render");
    }

    fn render(spec: &str, rate: u32, samples: usize, frame: usize) -> Vec<i16> {
        let mut g = ToneGenerator::new(&ToneSpec::parse(spec).unwrap(), rate);
        let mut out = vec![0i16; samples];
        for chunk in out.chunks_mut(frame) {
            g.fill(chunk);
        }
        out
    }

    #[test]
    fn cadence_counts_exact_samples() {
        // cn busy at 8 kHz: 350 ms = 2800 samples on, 2800 off.
        let pcm = render("%(350,350,450)", 8000, 5600 * 4, 160);
        check_cadence(&pcm, &[(2800, 2800)]);
        // us ringback at 16 kHz in odd chunk sizes: 2 s on, 4 s off.
        let pcm = render("%(2000,4000,440+480)", 16000, 16000 * 13, 97);
        check_cadence(&pcm, &[(32000, 64000)]);
        // gb ringback: two bursts per cadence.
        let pcm = render(
            country_tone("gb", ToneKind::Ringback).unwrap(),
            8000,
            8000 * 7,
            160,
        );
        check_cadence(&pcm, &[(3200, 1600), (3200, 16000)]);
        // A one-sample error would show: shifting the expectation by one fails.
        let pcm = render("%(350,350,450)", 8000, 5600 * 2, 160);
        let shifted = std::panic::catch_unwind(|| check_cadence(&pcm, &[(2801, 2799)]));
        assert!(shifted.is_err());
    }

    #[test]
    fn frequencies_and_level_are_right() {
        for rate in [8000u32, 16000, 48000] {
            let pcm = render("%(1000,0,450)", rate, rate as usize, 160);
            let a = goertzel_amplitude(&pcm, 450.0, rate);
            let want = f64::from(dbm0_to_amplitude(DEFAULT_LEVEL_DBM0));
            assert!((a / want - 1.0).abs() < 0.01, "{rate}: {a} vs {want}");
            assert!(goertzel_amplitude(&pcm, 350.0, rate) < want * 0.01);

            let pcm = render("v=-10;%(0,0,350+440)", rate, rate as usize / 2, 333);
            let want = f64::from(dbm0_to_amplitude(-10.0));
            for f in [350.0, 440.0] {
                let a = goertzel_amplitude(&pcm, f, rate);
                assert!((a / want - 1.0).abs() < 0.02, "{rate} {f}: {a} vs {want}");
            }
            assert!(goertzel_amplitude(&pcm, 395.0, rate) < want * 0.05);
        }
    }

    #[test]
    fn phase_continuous_across_calls_and_gapless_cadence() {
        // With off = 0 the on periods join: the output must equal one unbroken sine.
        let a = render("%(1000,0,450)", 8000, 24000, 7);
        let b = render("%(0,0,450)", 8000, 24000, 24000);
        let maxdiff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).max().unwrap();
        assert!(maxdiff <= 1, "{maxdiff}");
        let amp = f64::from(dbm0_to_amplitude(DEFAULT_LEVEL_DBM0));
        let expect_450 = crate::testutil::sine(450.0, amp, 8000, 24000, 0.0);
        let maxdiff = a
            .iter()
            .zip(&expect_450)
            .map(|(x, y)| (x - y).abs())
            .max()
            .unwrap();
        assert!(maxdiff <= 2, "{maxdiff}");
    }

    #[test]
    fn loops_end_the_tone() {
        let spec = ToneSpec::parse("L=2;%(100,50,1000)").unwrap();
        let mut g = ToneGenerator::new(&spec, 8000);
        let mut frame = [0i16; 160];
        // 2 x 150 ms = 300 ms = 15 frames exactly.
        for _ in 0..15 {
            assert!(g.fill(&mut frame));
        }
        assert!(g.is_finished());
        frame.fill(7);
        assert!(!g.fill(&mut frame));
        assert!(frame.iter().all(|&x| x == 0));
        g.reset();
        assert!(!g.is_finished());
        let mut big = vec![0i16; 8000];
        assert_eq!(g.render(&mut big), 2400);
        check_cadence(&big[..2400], &[(800, 400)]);
        assert!(g.is_finished());
    }

    #[test]
    fn country_tables_parse_and_cover_cn_and_us() {
        use ToneKind::*;
        for c in ["cn", "us", "gb", "uk", "de", "fr", "jp"] {
            for k in [Dial, Ringback, Busy, Congestion, CallWaiting] {
                if let Some(s) = country_tone(c, k) {
                    ToneSpec::parse(s).unwrap_or_else(|e| panic!("{c} {k:?}: {e}"));
                } else {
                    assert!(
                        c == "jp" && matches!(k, Ringback | CallWaiting),
                        "{c} {k:?}"
                    );
                }
            }
        }
        assert_eq!(country_tone("CN", Ringback), Some("%(1000,4000,450)"));
        assert_eq!(
            country_tone("us", Congestion),
            Some("v=-24;%(250,250,480+620)")
        );
        // GR-506 levels per frequency: dial -13, audible ringing -19, busy/reorder -24 dBm0.
        for (kind, level) in [(Dial, -13.0), (Ringback, -19.0), (Busy, -24.0)] {
            let spec = ToneSpec::parse(country_tone("us", kind).unwrap()).unwrap();
            assert_eq!(spec.segments[0].level_dbm0, level, "{kind:?}");
        }
        assert_eq!(country_tone("zz", Dial), None);
        let dial = ToneSpec::parse(country_tone("us", Dial).unwrap()).unwrap();
        assert_eq!(dial.segments[0].freqs, vec![350.0, 440.0]);
        assert_eq!(dial.segments[0].off_ms, 0);
    }
}
