//! A leg's announcement source: clips, tones and pauses played in order, once or looping
//! (music on hold), delivered as 20 ms frames at the leg's rate.
//!
//! Items join sample-exactly: a clip that ends mid-frame is followed in the same frame by
//! the next item, and only the very end of a non-looping playlist is padded with silence.
//! Clips at another rate go through [`Resampler`]; its 10 ms delay is trimmed at the start of
//! each clip and flushed at its end, so a resampled clip lasts exactly its own length.

use crate::resample::Resampler;
use crate::tone::{ToneGenerator, ToneSpec};
use crate::wav::Clip;
use crate::{Error, SUPPORTED_RATES, frame_samples};

/// One entry of a playlist.
#[derive(Debug, Clone)]
pub enum PlayItem {
    Clip(Clip),
    Tone(ToneSpec),
    Silence { ms: u32 },
}

#[derive(Debug)]
enum Source {
    /// `resampler`: index into `Player::resamplers`, `None` when already at the target rate.
    Clip {
        clip: Clip,
        resampler: Option<usize>,
        /// Length at the target rate.
        out_len: u64,
    },
    Tone(ToneGenerator),
    Silence {
        samples: u64,
    },
}

/// Position inside the current item.
#[derive(Debug, Default)]
struct Cursor {
    /// Output samples produced for this item.
    emitted: u64,
    /// Clip samples fed to the resampler.
    consumed: usize,
    /// Resampler delay still to drop.
    skip: usize,
    /// Unread resampled samples are `out_frame[read..len]`.
    read: usize,
    len: usize,
}

/// Produces the frames of a playlist.
#[derive(Debug)]
pub struct Player {
    sources: Vec<Source>,
    target_rate: u32,
    looping: bool,
    index: usize,
    cursor: Cursor,
    resamplers: Vec<Resampler>,
    in_frame: Vec<i16>,
    out_frame: Vec<i16>,
    /// Samples of content delivered so far (padding excluded).
    elapsed: u64,
    /// Samples delivered in the current pass of the playlist, to stop looping an empty one.
    pass: u64,
    finished: bool,
}

impl Player {
    /// Builds a player for `target_rate` (one of [`SUPPORTED_RATES`]); fails if a clip's rate
    /// is not supported. All buffers are allocated here.
    pub fn new(items: Vec<PlayItem>, target_rate: u32, looping: bool) -> Result<Player, Error> {
        if !SUPPORTED_RATES.contains(&target_rate) {
            return Err(Error::UnsupportedRate { rate: target_rate });
        }
        let mut resamplers: Vec<Resampler> = Vec::new();
        let mut max_in = 0;
        let mut sources = Vec::with_capacity(items.len());
        for item in items {
            sources.push(match item {
                PlayItem::Clip(clip) => {
                    let resampler = if clip.sample_rate == target_rate {
                        None
                    } else {
                        let i = match resamplers
                            .iter()
                            .position(|r| r.from_rate() == clip.sample_rate)
                        {
                            Some(i) => i,
                            None => {
                                resamplers.push(Resampler::new(clip.sample_rate, target_rate)?);
                                resamplers.len() - 1
                            }
                        };
                        max_in = max_in.max(frame_samples(clip.sample_rate));
                        Some(i)
                    };
                    let out_len = (clip.samples.len() as u64 * u64::from(target_rate)
                        + u64::from(clip.sample_rate) / 2)
                        / u64::from(clip.sample_rate);
                    Source::Clip {
                        clip,
                        resampler,
                        out_len,
                    }
                }
                PlayItem::Tone(spec) => Source::Tone(ToneGenerator::new(&spec, target_rate)),
                PlayItem::Silence { ms } => Source::Silence {
                    samples: u64::from(ms) * u64::from(target_rate) / 1000,
                },
            });
        }
        let mut p = Player {
            finished: sources.is_empty(),
            sources,
            target_rate,
            looping,
            index: 0,
            cursor: Cursor::default(),
            resamplers,
            in_frame: vec![0; max_in],
            out_frame: vec![0; frame_samples(target_rate)],
            elapsed: 0,
            pass: 0,
        };
        p.begin_item();
        Ok(p)
    }

    /// Writes the next frame into `out` (normally `target_rate / 50` samples). Returns true
    /// if any content was written; the frame holding the end of a non-looping playlist is
    /// padded with silence, and every call after it returns false with a silent frame.
    pub fn next_frame(&mut self, out: &mut [i16]) -> bool {
        let mut w = 0;
        while w < out.len() && !self.finished {
            let n = self.pull(&mut out[w..]);
            w += n;
            self.pass += n as u64;
            if w < out.len() {
                self.next_item();
            }
        }
        out[w..].fill(0);
        self.elapsed += w as u64;
        w > 0
    }

    /// Content played so far, in milliseconds (padding not counted; loops add up).
    pub fn elapsed_ms(&self) -> u64 {
        self.elapsed * 1000 / u64::from(self.target_rate)
    }

    /// True once a non-looping playlist has been played to its end.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn next_item(&mut self) {
        self.index += 1;
        if self.index == self.sources.len() {
            // A looping playlist that produced nothing in a whole pass would spin forever.
            if !self.looping || self.pass == 0 {
                self.finished = true;
                return;
            }
            self.index = 0;
            self.pass = 0;
        }
        self.begin_item();
    }

    fn begin_item(&mut self) {
        self.cursor = Cursor::default();
        match self.sources.get_mut(self.index) {
            Some(Source::Tone(g)) => g.reset(),
            Some(Source::Clip {
                resampler: Some(i), ..
            }) => {
                let r = &mut self.resamplers[*i];
                r.reset();
                self.cursor.skip = r.delay_samples();
            }
            _ => {}
        }
    }

    /// Fills as much of `out` as the current item allows; fewer than `out.len()` samples
    /// means the item is over.
    fn pull(&mut self, out: &mut [i16]) -> usize {
        let c = &mut self.cursor;
        match &mut self.sources[self.index] {
            Source::Silence { samples } => {
                let n = (*samples - c.emitted).min(out.len() as u64) as usize;
                out[..n].fill(0);
                c.emitted += n as u64;
                n
            }
            Source::Tone(g) => g.render(out),
            Source::Clip {
                clip,
                resampler: None,
                ..
            } => {
                let src = &clip.samples[c.consumed..];
                let n = src.len().min(out.len());
                out[..n].copy_from_slice(&src[..n]);
                c.consumed += n;
                n
            }
            Source::Clip {
                clip,
                resampler: Some(ri),
                out_len,
            } => {
                let r = &mut self.resamplers[*ri];
                let fi = frame_samples(clip.sample_rate);
                let mut w = 0;
                while w < out.len() && c.emitted < *out_len {
                    if c.read == c.len {
                        // Feed the next 20 ms of the clip, zero-padded past its end (which also
                        // flushes the filter's delay).
                        let input = &mut self.in_frame[..fi];
                        let start = c.consumed.min(clip.samples.len());
                        let end = (start + fi).min(clip.samples.len());
                        input[..end - start].copy_from_slice(&clip.samples[start..end]);
                        input[end - start..].fill(0);
                        c.consumed += fi;
                        let Ok(n) = r.process(input, &mut self.out_frame) else {
                            // Sizes are fixed at construction; a failure here cannot happen,
                            // but if it did, ending the clip is the safe outcome.
                            c.emitted = *out_len;
                            break;
                        };
                        let skip = c.skip.min(n);
                        c.skip -= skip;
                        c.read = skip;
                        c.len = n;
                        continue;
                    }
                    let n = (c.len - c.read)
                        .min(out.len() - w)
                        .min((*out_len - c.emitted) as usize);
                    out[w..w + n].copy_from_slice(&self.out_frame[c.read..c.read + n]);
                    c.read += n;
                    c.emitted += n as u64;
                    w += n;
                }
                w
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{freq_by_crossings, goertzel_amplitude, sine};
    use std::sync::Arc;

    fn clip(rate: u32, samples: Vec<i16>) -> Clip {
        Clip {
            sample_rate: rate,
            samples: Arc::from(samples),
        }
    }

    /// Plays to the end; returns the frames that reported content.
    fn play_all(p: &mut Player, frame: usize, max_frames: usize) -> Vec<i16> {
        let mut out = Vec::new();
        let mut buf = vec![0i16; frame];
        for _ in 0..max_frames {
            if !p.next_frame(&mut buf) {
                return out;
            }
            out.extend_from_slice(&buf);
        }
        panic!("player did not finish in {max_frames} frames");
    }

    #[test]
    fn clip_at_16k_plays_at_8k_with_its_own_length() {
        let tone = sine(1000.0, 10000.0, 16000, 16000, 0.0);
        let mut p = Player::new(vec![PlayItem::Clip(clip(16000, tone))], 8000, false).unwrap();
        let out = play_all(&mut p, 160, 1000);
        // 1 s of clip = 50 frames of 20 ms.
        assert_eq!(out.len(), 50 * 160);
        assert!(p.is_finished());
        assert_eq!(p.elapsed_ms(), 1000);
        let mid = &out[800..7200];
        assert!((freq_by_crossings(mid, 8000) - 1000.0).abs() < 2.0);
        assert!((goertzel_amplitude(mid, 1000.0, 8000) / 10000.0 - 1.0).abs() < 0.02);
        // The delay was trimmed: the sine is there from the first milliseconds...
        assert!(
            out[8..40].iter().any(|&x| x.abs() > 5000),
            "{:?}",
            &out[..40]
        );
        // ...and the flush gives the tail up to the end.
        assert!(out[7960..7992].iter().any(|&x| x.abs() > 5000));
        // The silent frame after the end.
        let mut buf = [1i16; 160];
        assert!(!p.next_frame(&mut buf));
        assert!(buf.iter().all(|&x| x == 0));
    }

    #[test]
    fn odd_lengths_pad_only_the_last_frame() {
        // 30 ms of tone + 25 ms of silence + 100 samples of clip at 8 kHz = 540 samples.
        let items = vec![
            PlayItem::Tone(ToneSpec::parse("L=1;%(30,0,1000)").unwrap()),
            PlayItem::Silence { ms: 25 },
            PlayItem::Clip(clip(8000, vec![1234; 100])),
        ];
        let mut p = Player::new(items, 8000, false).unwrap();
        let out = play_all(&mut p, 160, 100);
        assert_eq!(out.len(), 4 * 160);
        assert!(out[..240].iter().any(|&x| x != 0));
        assert!(out[240..440].iter().all(|&x| x == 0));
        assert!(out[440..540].iter().all(|&x| x == 1234));
        assert!(out[540..].iter().all(|&x| x == 0));
        assert_eq!(p.elapsed_ms(), 67); // 540 samples = 67.5 ms
        // A resampled clip keeps its length too: 44.1 kHz, 1234 samples -> 224 at 8 kHz.
        let mut p = Player::new(
            vec![PlayItem::Clip(clip(44100, vec![5000; 1234]))],
            8000,
            false,
        )
        .unwrap();
        let out = play_all(&mut p, 160, 100);
        assert_eq!(out.len(), 2 * 160);
        assert_eq!(p.elapsed_ms(), 28);
        assert!(out[224..].iter().all(|&x| x == 0));
        assert!(
            out[20..200].iter().all(|&x| (x - 5000).abs() < 100),
            "{:?}",
            &out[..224]
        );
    }

    #[test]
    fn looping_restarts_from_the_first_item() {
        let music = sine(440.0, 8000.0, 16000, 16000 / 2, 0.0);
        let items = vec![
            PlayItem::Clip(clip(16000, music)),
            PlayItem::Silence { ms: 100 },
        ];
        let mut p = Player::new(items, 8000, true).unwrap();
        // One pass = 500 + 100 ms = 30 frames.
        let mut passes = vec![Vec::new(), Vec::new(), Vec::new()];
        let mut buf = [0i16; 160];
        for pass in &mut passes {
            for _ in 0..30 {
                assert!(p.next_frame(&mut buf));
                pass.extend_from_slice(&buf);
            }
        }
        assert!(!p.is_finished());
        assert_eq!(passes[0], passes[1]);
        assert_eq!(passes[1], passes[2]);
        assert!(passes[0][..4000].iter().any(|&x| x.abs() > 7000));
        assert!(passes[0][4000..].iter().all(|&x| x == 0));
        assert_eq!(p.elapsed_ms(), 1800);
    }

    #[test]
    fn edge_cases() {
        assert!(matches!(
            Player::new(vec![], 11025, false),
            Err(Error::UnsupportedRate { rate: 11025 })
        ));
        assert!(matches!(
            Player::new(vec![PlayItem::Clip(clip(22050, vec![0; 10]))], 8000, false),
            Err(Error::UnsupportedRate { rate: 22050 })
        ));
        let mut buf = [5i16; 160];
        let mut p = Player::new(vec![], 8000, true).unwrap();
        assert!(!p.next_frame(&mut buf));
        assert!(buf.iter().all(|&x| x == 0));
        // A looping playlist of nothing ends instead of spinning.
        let mut p = Player::new(
            vec![
                PlayItem::Silence { ms: 0 },
                PlayItem::Clip(clip(8000, vec![])),
            ],
            8000,
            true,
        )
        .unwrap();
        assert!(!p.next_frame(&mut buf));
        // An endless tone never ends.
        let mut p = Player::new(
            vec![PlayItem::Tone(ToneSpec::parse("%(0,0,425)").unwrap())],
            48000,
            false,
        )
        .unwrap();
        let mut big = [0i16; 960];
        for _ in 0..100 {
            assert!(p.next_frame(&mut big));
        }
        assert_eq!(p.elapsed_ms(), 2000);
    }
}
