//! One recording file as the recorder thread writes it: a plain WAV (hound) or the encrypted
//! format, behind one interface.

use std::fs::{File, OpenOptions};
use std::io::BufWriter;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::key::MasterKey;
use crate::sealed::{AudioFormat, SealedWriter};
use crate::{Error, Layout, RecordingSpec};

/// The most PCM a WAV file can describe: its RIFF size field (u32) counts the data plus the 36
/// header bytes after it. A 48 kHz stereo call reaches this after 6 h 12 min.
pub(crate) const WAV_DATA_LIMIT: u64 = u32::MAX as u64 - 36;

/// Recordings hold call audio: readable by the owner and its group (an archiver), no one else.
const FILE_MODE: u32 = 0o640;

enum Out {
    Plain(hound::WavWriter<BufWriter<File>>),
    // Boxed: the AES key schedules make it ten times the size of the plain writer.
    Sealed(Box<SealedWriter>),
}

pub(crate) struct Track {
    out: Out,
    path: PathBuf,
    channels: u16,
    /// PCM bytes written so far (the WAV data chunk's size).
    data_bytes: u64,
    /// Where writing stops; `WAV_DATA_LIMIT` rounded down to whole frames (smaller in tests).
    data_limit: u64,
    /// Set once the limit was reached: the rest of the call is not recorded.
    full: bool,
}

impl Track {
    pub(crate) fn create(spec: &RecordingSpec, key: Option<&MasterKey>) -> Result<Track, Error> {
        Self::create_with_limit(spec, key, WAV_DATA_LIMIT)
    }

    pub(crate) fn create_with_limit(
        spec: &RecordingSpec,
        key: Option<&MasterKey>,
        data_limit: u64,
    ) -> Result<Track, Error> {
        let io = |source| Error::Io {
            path: spec.path.clone(),
            source,
        };
        if let Some(dir) = spec.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        // create_new: a recording never silently replaces another one.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&spec.path)
            .map_err(io)?;
        let format = AudioFormat {
            channels: spec.layout.channels(),
            sample_rate: spec.sample_rate,
        };
        let out = if spec.encrypt {
            let key = key.ok_or(Error::NoMasterKey)?;
            Out::Sealed(Box::new(
                SealedWriter::create(file, format, key).map_err(io)?,
            ))
        } else {
            let wav =
                hound::WavWriter::new(BufWriter::with_capacity(64 * 1024, file), format.wav_spec())
                    .map_err(|e| wav_error(&spec.path, e))?;
            Out::Plain(wav)
        };
        let align = u64::from(format.channels) * 2;
        Ok(Track {
            out,
            path: spec.path.clone(),
            channels: format.channels,
            data_bytes: 0,
            data_limit: data_limit / align * align,
            full: false,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Frames (one sample per channel) written so far.
    pub(crate) fn frames(&self) -> u64 {
        self.data_bytes / (u64::from(self.channels) * 2)
    }

    /// How many of `samples` still fit under the WAV size limit.
    fn admit(&mut self, samples: u64) -> u64 {
        let room = (self.data_limit - self.data_bytes) / 2;
        if samples > room {
            self.full = true;
        }
        samples.min(room)
    }

    /// True once the WAV size limit stopped the recording.
    pub(crate) fn is_full(&self) -> bool {
        self.full
    }

    /// Appends interleaved samples (a whole number of frames).
    pub(crate) fn write(&mut self, samples: &[i16]) -> Result<(), Error> {
        let n = self.admit(samples.len() as u64) as usize;
        let samples = &samples[..n];
        match &mut self.out {
            Out::Plain(wav) => {
                let mut w = wav.get_i16_writer(n as u32);
                for &s in samples {
                    w.write_sample(s);
                }
                w.flush().map_err(|e| wav_error(&self.path, e))?;
            }
            Out::Sealed(sealed) => sealed.write(samples).map_err(|source| Error::Io {
                path: self.path.clone(),
                source,
            })?,
        }
        self.data_bytes += n as u64 * 2;
        Ok(())
    }

    /// Appends `frames` frames of digital silence.
    pub(crate) fn write_silence(&mut self, frames: u64) -> Result<(), Error> {
        let n = self.admit(frames * u64::from(self.channels));
        match &mut self.out {
            Out::Plain(wav) => {
                // In pieces, so hound's staging buffer stays at its steady-state size.
                const PIECE: u64 = 4096;
                let mut left = n;
                while left > 0 {
                    let k = left.min(PIECE) as u32;
                    let mut w = wav.get_i16_writer(k);
                    for _ in 0..k {
                        w.write_sample(0i16);
                    }
                    w.flush().map_err(|e| wav_error(&self.path, e))?;
                    left -= u64::from(k);
                }
            }
            Out::Sealed(sealed) => sealed.write_silence(n).map_err(|source| Error::Io {
                path: self.path.clone(),
                source,
            })?,
        }
        self.data_bytes += n * 2;
        Ok(())
    }

    /// Makes what was written so far survive a crash of this process. Plain: hound rewrites the
    /// RIFF and data sizes and flushes, so the file on disk is a valid WAV of everything up to
    /// here. Sealed: full chunks are already written; the open one cannot be sealed early
    /// without ending the STREAM.
    pub(crate) fn checkpoint(&mut self) -> Result<(), Error> {
        match &mut self.out {
            Out::Plain(wav) => wav.flush().map_err(|e| wav_error(&self.path, e)),
            Out::Sealed(_) => Ok(()),
        }
    }

    /// Finalizes the file (WAV sizes, or the sealed last chunk). Returns its size in bytes.
    pub(crate) fn finish(self) -> Result<u64, Error> {
        match self.out {
            Out::Plain(wav) => {
                wav.finalize().map_err(|e| wav_error(&self.path, e))?;
                std::fs::metadata(&self.path)
                    .map(|m| m.len())
                    .map_err(|source| Error::Io {
                        path: self.path.clone(),
                        source,
                    })
            }
            Out::Sealed(sealed) => sealed.finish().map_err(|source| Error::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }
}

fn wav_error(path: &Path, e: hound::Error) -> Error {
    Error::Wav {
        path: path.to_owned(),
        source: e,
    }
}

impl Layout {
    pub(crate) fn channels(self) -> u16 {
        match self {
            Layout::Mono => 1,
            Layout::Stereo => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, name: &str, encrypt: bool) -> RecordingSpec {
        RecordingSpec {
            call_uuid: "u".into(),
            layout: Layout::Stereo,
            sample_rate: 8000,
            path: dir.join(name),
            encrypt,
        }
    }

    /// The 4 GiB limit cannot be reached in a test; a small limit exercises the same code.
    #[test]
    fn writing_stops_at_the_wav_size_limit_on_a_frame_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate();
        for encrypt in [false, true] {
            let name = if encrypt { "l.wav.enc" } else { "l.wav" };
            // 1002 is not a multiple of 4: the limit rounds down to 250 frames.
            let mut t =
                Track::create_with_limit(&spec(dir.path(), name, encrypt), Some(&key), 1002)
                    .unwrap();
            t.write(&[7; 400]).unwrap();
            assert!(!t.is_full());
            t.write_silence(40).unwrap();
            t.write(&[9; 400]).unwrap();
            assert!(t.is_full());
            t.write(&[9; 4]).unwrap();
            assert_eq!(t.frames(), 250);
            t.finish().unwrap();
            let wav_path = if encrypt {
                let out = dir.path().join("l-dec.wav");
                crate::decrypt(&dir.path().join(name), &key, &out).unwrap();
                out
            } else {
                dir.path().join(name)
            };
            let samples: Vec<i16> = hound::WavReader::open(&wav_path)
                .unwrap()
                .into_samples()
                .map(Result::unwrap)
                .collect();
            assert_eq!(samples.len(), 500);
            assert!(samples[..400].iter().all(|&s| s == 7));
            assert!(samples[400..480].iter().all(|&s| s == 0));
            assert!(samples[480..].iter().all(|&s| s == 9));
        }
    }

    #[test]
    fn an_existing_file_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.wav"), b"earlier call").unwrap();
        match Track::create(&spec(dir.path(), "x.wav", false), None) {
            Err(Error::Io { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::AlreadyExists)
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("replaced an existing recording"),
        }
        assert_eq!(
            std::fs::read(dir.path().join("x.wav")).unwrap(),
            b"earlier call"
        );
    }

    #[test]
    fn parent_directories_are_created_and_mode_is_0640() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let t = Track::create(&spec(dir.path(), "2026/11/24/c.wav", false), None).unwrap();
        assert_eq!(t.path(), dir.path().join("2026/11/24/c.wav"));
        t.finish().unwrap();
        let mode = std::fs::metadata(dir.path().join("2026/11/24/c.wav"))
            .unwrap()
            .permissions()
            .mode();
        // The umask may take bits away, never add them.
        assert_eq!(mode & 0o137, 0);
    }
}
