//! WAV prompts, held whole in memory and shared between calls.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{Error, SUPPORTED_RATES};

/// A whole prompt: mono 16-bit samples at `sample_rate`. Cloning shares the samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub sample_rate: u32,
    pub samples: Arc<[i16]>,
}

impl Clip {
    /// Length in milliseconds, rounded down.
    pub fn duration_ms(&self) -> u64 {
        self.samples.len() as u64 * 1000 / u64::from(self.sample_rate)
    }
}

/// Reads a 16-bit PCM mono WAV at one of [`SUPPORTED_RATES`]; anything else is refused with
/// an error naming the file and what is wrong with it.
pub fn load(path: &Path) -> Result<Clip, Error> {
    let read_err = |source| Error::WavRead {
        path: path.to_owned(),
        source,
    };
    let format_err = |problem: String| Error::WavFormat {
        path: path.to_owned(),
        problem,
    };
    let reader = hound::WavReader::open(path).map_err(read_err)?;
    let spec = reader.spec();
    if spec.channels != 1 {
        let what = if spec.channels == 2 {
            "stereo".to_owned()
        } else {
            format!("{} channels", spec.channels)
        };
        return Err(format_err(format!("{what}, not mono")));
    }
    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, 16) => {}
        (hound::SampleFormat::Float, bits) => {
            return Err(format_err(format!(
                "{bits}-bit floating point samples, not 16-bit PCM"
            )));
        }
        (hound::SampleFormat::Int, bits) => {
            return Err(format_err(format!("{bits}-bit samples, not 16-bit PCM")));
        }
    }
    if !SUPPORTED_RATES.contains(&spec.sample_rate) {
        return Err(format_err(format!("sample rate {} Hz", spec.sample_rate)));
    }
    let samples = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<i16>, _>>()
        .map_err(read_err)?;
    Ok(Clip {
        sample_rate: spec.sample_rate,
        samples: samples.into(),
    })
}

/// Loads each prompt once and hands out shared copies afterwards.
#[derive(Debug, Default)]
pub struct ClipCache {
    clips: HashMap<PathBuf, Clip>,
}

impl ClipCache {
    pub fn new() -> ClipCache {
        ClipCache::default()
    }

    /// The clip at `path`, read from disk on first use only. Failures are not cached, so a
    /// prompt fixed on disk loads on the next try.
    pub fn get(&mut self, path: &Path) -> Result<Clip, Error> {
        if let Some(c) = self.clips.get(path) {
            return Ok(c.clone());
        }
        let clip = load(path)?;
        self.clips.insert(path.to_owned(), clip.clone());
        Ok(clip)
    }

    /// Forgets one prompt (to pick up a changed file); true if it was cached.
    pub fn evict(&mut self, path: &Path) -> bool {
        self.clips.remove(path).is_some()
    }

    pub fn len(&self) -> usize {
        self.clips.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clips.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, channels: u16, rate: u32, bits: u16, float: bool, samples: &[i16]) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: if float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for &s in samples {
            match (float, bits) {
                (true, _) => w.write_sample(f32::from(s) / 32768.0).unwrap(),
                (false, 8) => w.write_sample((s >> 8) as i8).unwrap(),
                (false, 16) => w.write_sample(s).unwrap(),
                (false, _) => w.write_sample(i32::from(s) << 8).unwrap(),
            }
        }
        w.finalize().unwrap();
    }

    #[test]
    fn loads_16bit_mono_at_every_supported_rate() {
        let dir = tempfile::tempdir().unwrap();
        let samples: Vec<i16> = (0..1000).map(|i| (i * 37 % 2000 - 1000) as i16).collect();
        for rate in SUPPORTED_RATES {
            let p = dir.path().join(format!("p{rate}.wav"));
            write(&p, 1, rate, 16, false, &samples);
            let clip = load(&p).unwrap();
            assert_eq!(clip.sample_rate, rate);
            assert_eq!(&clip.samples[..], &samples[..]);
        }
        let clip = load(&dir.path().join("p8000.wav")).unwrap();
        assert_eq!(clip.duration_ms(), 125);
    }

    fn format_problem(r: Result<Clip, Error>) -> (PathBuf, String) {
        match r {
            Err(Error::WavFormat { path, problem }) => (path, problem),
            other => panic!("expected a format error, got {other:?}"),
        }
    }

    #[test]
    fn refuses_other_formats_naming_file_and_fault() {
        let dir = tempfile::tempdir().unwrap();
        let s = [0i16; 100];
        let cases: [(&str, u16, u32, u16, bool, &str); 5] = [
            ("stereo.wav", 2, 8000, 16, false, "stereo, not mono"),
            ("eight.wav", 1, 8000, 8, false, "8-bit samples"),
            ("float.wav", 1, 8000, 32, true, "32-bit floating point"),
            ("24.wav", 1, 8000, 24, false, "24-bit samples"),
            ("rate.wav", 1, 11025, 16, false, "sample rate 11025 Hz"),
        ];
        for (name, ch, rate, bits, float, want) in cases {
            let p = dir.path().join(name);
            write(&p, ch, rate, bits, float, &s);
            let err = load(&p).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(name) && msg.contains(want), "{msg}");
            let (path, problem) = format_problem(Err(err));
            assert_eq!(path, p);
            assert!(problem.contains(want));
        }
        let missing = dir.path().join("missing.wav");
        let err = load(&missing).unwrap_err();
        assert!(matches!(err, Error::WavRead { .. }));
        assert!(err.to_string().contains("missing.wav"));
        let junk = dir.path().join("junk.wav");
        std::fs::write(&junk, b"not a wave file at all").unwrap();
        assert!(matches!(load(&junk), Err(Error::WavRead { .. })));
    }

    #[test]
    fn cache_loads_once_and_shares() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.wav");
        write(&p, 1, 16000, 16, false, &[1, 2, 3]);
        let mut cache = ClipCache::new();
        assert!(cache.is_empty());
        let a = cache.get(&p).unwrap();
        // Changing the file does not change the cached clip: it was read once.
        write(&p, 1, 16000, 16, false, &[9, 9]);
        let b = cache.get(&p).unwrap();
        assert!(Arc::ptr_eq(&a.samples, &b.samples));
        assert_eq!(&b.samples[..], &[1, 2, 3]);
        assert_eq!(cache.len(), 1);
        assert!(cache.evict(&p));
        assert_eq!(&cache.get(&p).unwrap().samples[..], &[9, 9]);
        assert!(cache.get(&dir.path().join("nope.wav")).is_err());
        assert_eq!(cache.len(), 1);
    }
}
