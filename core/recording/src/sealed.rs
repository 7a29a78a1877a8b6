//! The encrypted recording format (".wav.enc"), version 1. The layout is documented in the
//! crate docs; this module writes it (on the recorder thread) and reads it back.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use aead_stream::{DecryptorBE32, EncryptorBE32};
use aes_gcm::aead::array::Array;
use aes_gcm::{AeadInOut, Aes256Gcm, KeyInit};
use rand::RngCore;

use crate::Error;
use crate::key::{KEY_ID_LEN, MasterKey};

pub(crate) const MAGIC: &[u8; 5] = b"SYREC";
pub(crate) const VERSION: u8 = 1;
/// Plaintext bytes per STREAM chunk. A multiple of 4, so a stereo 16-bit frame never straddles
/// two chunks.
pub(crate) const CHUNK_LEN: usize = 64 * 1024;
pub(crate) const TAG_LEN: usize = 16;
const DATA_KEY_LEN: usize = 32;
const WRAP_NONCE_LEN: usize = 12;
/// AES-GCM's 96-bit nonce less the 5 bytes STREAM-BE32 appends (32-bit counter, last flag).
const STREAM_NONCE_LEN: usize = 7;

// Header field offsets.
const OFF_VERSION: usize = 5;
const OFF_CHANNELS: usize = 6;
const OFF_BITS: usize = 7;
const OFF_RATE: usize = 8;
const OFF_CHUNK: usize = 12;
const OFF_KEY_ID: usize = 16;
const OFF_WRAP_NONCE: usize = OFF_KEY_ID + KEY_ID_LEN;
const OFF_STREAM_NONCE: usize = OFF_WRAP_NONCE + WRAP_NONCE_LEN;
const OFF_WRAPPED_KEY: usize = OFF_STREAM_NONCE + STREAM_NONCE_LEN;
/// Total header length: 91 bytes.
pub(crate) const HEADER_LEN: usize = OFF_WRAPPED_KEY + DATA_KEY_LEN + TAG_LEN;

/// Smallest and largest chunk size a reader accepts (bounds its buffer before anything is
/// authenticated).
const MIN_CHUNK: u32 = 1024;
const MAX_CHUNK: u32 = 1024 * 1024;

/// What the header says about the audio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AudioFormat {
    pub channels: u16,
    pub sample_rate: u32,
}

impl AudioFormat {
    pub(crate) fn wav_spec(self) -> hound::WavSpec {
        hound::WavSpec {
            channels: self.channels,
            sample_rate: self.sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        }
    }
}

fn data_cipher(key: &[u8; DATA_KEY_LEN]) -> Aes256Gcm {
    Aes256Gcm::new(&Array::from(*key))
}

/// Writes an encrypted recording: the header at creation, then one sealed chunk each time
/// 64 KiB of PCM have been collected, and the last (short, possibly empty) chunk at `finish`.
pub(crate) struct SealedWriter {
    file: File,
    /// `None` once the last chunk is sealed (the STREAM encryptor is consumed by it).
    stream: Option<EncryptorBE32<Aes256Gcm>>,
    header: [u8; HEADER_LEN],
    /// Plaintext being collected; capacity CHUNK_LEN + TAG_LEN so sealing never reallocates.
    chunk: Vec<u8>,
    bytes: u64,
}

impl SealedWriter {
    pub(crate) fn create(
        mut file: File,
        format: AudioFormat,
        key: &MasterKey,
    ) -> Result<Self, std::io::Error> {
        let mut rng = rand::rng();
        let mut data_key = [0u8; DATA_KEY_LEN];
        let mut wrap_nonce = [0u8; WRAP_NONCE_LEN];
        let mut stream_nonce = [0u8; STREAM_NONCE_LEN];
        rng.fill_bytes(&mut data_key);
        rng.fill_bytes(&mut wrap_nonce);
        rng.fill_bytes(&mut stream_nonce);

        let mut header = [0u8; HEADER_LEN];
        header[..OFF_VERSION].copy_from_slice(MAGIC);
        header[OFF_VERSION] = VERSION;
        header[OFF_CHANNELS] = format.channels as u8;
        header[OFF_BITS] = 16;
        header[OFF_RATE..OFF_RATE + 4].copy_from_slice(&format.sample_rate.to_be_bytes());
        header[OFF_CHUNK..OFF_CHUNK + 4].copy_from_slice(&(CHUNK_LEN as u32).to_be_bytes());
        header[OFF_KEY_ID..OFF_WRAP_NONCE].copy_from_slice(&key.id());
        header[OFF_WRAP_NONCE..OFF_STREAM_NONCE].copy_from_slice(&wrap_nonce);
        header[OFF_STREAM_NONCE..OFF_WRAPPED_KEY].copy_from_slice(&stream_nonce);

        // Key wrap: AES-256-GCM under the master key, AAD = every header byte before the
        // wrapped key, so the format fields and nonces cannot be changed without notice.
        let mut wrapped = data_key;
        let tag = data_cipher(key.bytes())
            .encrypt_inout_detached(
                &Array::from(wrap_nonce),
                &header[..OFF_WRAPPED_KEY],
                (&mut wrapped[..]).into(),
            )
            .map_err(|_| std::io::Error::other("AES-GCM key wrap failed"))?;
        header[OFF_WRAPPED_KEY..OFF_WRAPPED_KEY + DATA_KEY_LEN].copy_from_slice(&wrapped);
        header[OFF_WRAPPED_KEY + DATA_KEY_LEN..].copy_from_slice(&tag);

        file.write_all(&header)?;
        let stream = EncryptorBE32::from_aead(data_cipher(&data_key), &Array::from(stream_nonce));
        Ok(SealedWriter {
            file,
            stream: Some(stream),
            header,
            chunk: Vec::with_capacity(CHUNK_LEN + TAG_LEN),
            bytes: HEADER_LEN as u64,
        })
    }

    /// Appends little-endian PCM; seals and writes each chunk as soon as it is full, so the
    /// final chunk is always shorter than a full one (that is how a reader recognises it).
    pub(crate) fn write(&mut self, samples: &[i16]) -> Result<(), std::io::Error> {
        for s in samples {
            self.chunk.extend_from_slice(&s.to_le_bytes());
            if self.chunk.len() == CHUNK_LEN {
                self.seal_next()?;
            }
        }
        Ok(())
    }

    pub(crate) fn write_silence(&mut self, mut samples: u64) -> Result<(), std::io::Error> {
        while samples > 0 {
            let room = ((CHUNK_LEN - self.chunk.len()) / 2) as u64;
            let n = room.min(samples) as usize;
            self.chunk.resize(self.chunk.len() + n * 2, 0);
            samples -= n as u64;
            if self.chunk.len() == CHUNK_LEN {
                self.seal_next()?;
            }
        }
        Ok(())
    }

    fn seal_next(&mut self) -> Result<(), std::io::Error> {
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| std::io::Error::other("recording already sealed"))?;
        stream
            .encrypt_next_in_place(&self.header, &mut self.chunk)
            .map_err(|_| std::io::Error::other("STREAM counter exhausted"))?;
        self.file.write_all(&self.chunk)?;
        self.bytes += self.chunk.len() as u64;
        self.chunk.clear();
        Ok(())
    }

    /// Seals the last chunk. Returns the file's size in bytes.
    pub(crate) fn finish(mut self) -> Result<u64, std::io::Error> {
        let stream = self
            .stream
            .take()
            .ok_or_else(|| std::io::Error::other("recording already sealed"))?;
        stream
            .encrypt_last_in_place(&self.header, &mut self.chunk)
            .map_err(|_| std::io::Error::other("AES-GCM refused the last chunk"))?;
        self.file.write_all(&self.chunk)?;
        self.bytes += self.chunk.len() as u64;
        self.file.flush()?;
        Ok(self.bytes)
    }
}

/// True if the file starts with the encrypted format's magic ("SYREC").
pub fn is_encrypted(path: &Path) -> Result<bool, Error> {
    let mut file = File::open(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut magic = [0u8; MAGIC.len()];
    let n = read_full(&mut file, &mut magic).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(n == MAGIC.len() && &magic == MAGIC)
}

/// What [`recover`] could give back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// Audio written to the output, in milliseconds.
    pub duration_ms: u64,
    /// The file ended with its sealed last chunk: nothing was missing (a finished recording).
    pub complete: bool,
}

/// Decrypts an encrypted recording to a WAV file at `output`.
///
/// Every chunk is authenticated before its audio is written, and the output only appears (by
/// rename from a temporary file in the same directory) once the sealed last chunk has been
/// verified: a wrong key, an altered byte anywhere, a truncated file or appended data is
/// refused and leaves no output behind. The WAV produced is byte for byte the file a plain
/// recording of the same audio would have been.
pub fn decrypt(input: &Path, key: &MasterKey, output: &Path) -> Result<(), Error> {
    open_sealed(input, key, output, Tail::Require).map(|_| ())
}

/// Recovers what a crash (kill -9, power cut) left of an encrypted recording.
///
/// A recorder that dies before it seals the last chunk leaves a file whose every complete chunk
/// is authentic but which ends early, possibly inside a chunk; [`decrypt`] refuses it as
/// truncated. `recover` writes the audio of every chunk that authenticates and stops at the
/// torn end; the missing tail (at most one chunk, 64 KiB of PCM: 2 s of 8 kHz stereo) is lost.
/// Only a damaged *end* is tolerated: a chunk that fails authentication while more data
/// follows it is an alteration, and is refused as [`decrypt`] would. A wrong key is refused.
pub fn recover(input: &Path, key: &MasterKey, output: &Path) -> Result<Recovered, Error> {
    open_sealed(input, key, output, Tail::Tolerate)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tail {
    Require,
    Tolerate,
}

fn open_sealed(
    input: &Path,
    key: &MasterKey,
    output: &Path,
    tail: Tail,
) -> Result<Recovered, Error> {
    let in_err = |source| Error::Io {
        path: input.to_owned(),
        source,
    };
    let out_err = |source| Error::Io {
        path: output.to_owned(),
        source,
    };
    let mut file =
        std::io::BufReader::with_capacity(CHUNK_LEN + TAG_LEN, File::open(input).map_err(in_err)?);
    if same_file(input, output) {
        return Err(Error::InvalidSpec(format!(
            "{} would overwrite the encrypted input",
            output.display()
        )));
    }

    let mut header = [0u8; HEADER_LEN];
    let n = read_full(&mut file, &mut header).map_err(in_err)?;
    if n < MAGIC.len() || &header[..MAGIC.len()] != MAGIC {
        return Err(Error::NotEncrypted {
            path: input.to_owned(),
        });
    }
    if n > OFF_VERSION && header[OFF_VERSION] != VERSION {
        return Err(Error::UnsupportedVersion {
            path: input.to_owned(),
            found: header[OFF_VERSION],
            supported: VERSION,
        });
    }
    if n < HEADER_LEN {
        return Err(Error::Truncated {
            path: input.to_owned(),
            what: "the header",
        });
    }
    let corrupt = |what: &str| Error::Corrupt {
        path: input.to_owned(),
        what: what.to_owned(),
    };
    let channels = header[OFF_CHANNELS];
    if channels != 1 && channels != 2 {
        return Err(corrupt(&format!("header: {channels} channels")));
    }
    if header[OFF_BITS] != 16 {
        return Err(corrupt(&format!(
            "header: {} bits per sample",
            header[OFF_BITS]
        )));
    }
    let sample_rate = u32::from_be_bytes(
        header[OFF_RATE..OFF_RATE + 4]
            .try_into()
            .unwrap_or_default(),
    );
    if sample_rate == 0 {
        return Err(corrupt("header: sample rate 0"));
    }
    let chunk_len = u32::from_be_bytes(
        header[OFF_CHUNK..OFF_CHUNK + 4]
            .try_into()
            .unwrap_or_default(),
    );
    if !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk_len) || !chunk_len.is_multiple_of(4) {
        return Err(corrupt(&format!("header: chunk size {chunk_len}")));
    }
    let chunk_len = chunk_len as usize;
    let format = AudioFormat {
        channels: u16::from(channels),
        sample_rate,
    };
    if header[OFF_KEY_ID..OFF_WRAP_NONCE] != key.id() {
        return Err(Error::WrongKey {
            path: input.to_owned(),
            file_key_id: hex::encode(&header[OFF_KEY_ID..OFF_WRAP_NONCE]),
            key_id: hex::encode(key.id()),
        });
    }

    // Unwrap the data key; failure with the right key id means the header was altered.
    let mut data_key = [0u8; DATA_KEY_LEN];
    data_key.copy_from_slice(&header[OFF_WRAPPED_KEY..OFF_WRAPPED_KEY + DATA_KEY_LEN]);
    let mut wrap_nonce = [0u8; WRAP_NONCE_LEN];
    wrap_nonce.copy_from_slice(&header[OFF_WRAP_NONCE..OFF_STREAM_NONCE]);
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&header[OFF_WRAPPED_KEY + DATA_KEY_LEN..]);
    data_cipher(key.bytes())
        .decrypt_inout_detached(
            &Array::from(wrap_nonce),
            &header[..OFF_WRAPPED_KEY],
            (&mut data_key[..]).into(),
            &Array::from(tag),
        )
        .map_err(|_| Error::Tampered {
            path: input.to_owned(),
            what: "the header (the wrapped data key does not authenticate)".into(),
        })?;
    let mut stream_nonce = [0u8; STREAM_NONCE_LEN];
    stream_nonce.copy_from_slice(&header[OFF_STREAM_NONCE..OFF_WRAPPED_KEY]);
    let mut stream = Some(DecryptorBE32::from_aead(
        data_cipher(&data_key),
        &Array::from(stream_nonce),
    ));

    // The output: a temporary file beside the target, renamed into place only on success.
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".decrypting-")
        .tempfile_in(dir)
        .map_err(out_err)?;
    let wav_err = |e: hound::Error| Error::Wav {
        path: output.to_owned(),
        source: e,
    };
    let mut wav = hound::WavWriter::new(BufWriter::new(temp.as_file_mut()), format.wav_spec())
        .map_err(wav_err)?;

    let block_align = usize::from(format.channels) * 2;
    let mut buf: Vec<u8> = Vec::with_capacity(chunk_len + TAG_LEN);
    let mut audio_bytes: u64 = 0;
    let mut index: u64 = 0;
    let complete = loop {
        buf.resize(chunk_len + TAG_LEN, 0);
        let n = read_full(&mut file, &mut buf).map_err(in_err)?;
        buf.truncate(n);
        let last = n < chunk_len + TAG_LEN;
        let opened = if last {
            if n < TAG_LEN {
                // Not even a tag: the file stops at a chunk boundary (or inside a tag).
                if tail == Tail::Tolerate {
                    break false;
                }
                return Err(Error::Truncated {
                    path: input.to_owned(),
                    what: "the sealed last chunk",
                });
            }
            // The last chunk consumes the decryptor: STREAM has no chunk after it.
            match stream.take() {
                Some(stream) => stream.decrypt_last_in_place(&header, &mut buf),
                None => unreachable!("the loop ends at the last chunk"),
            }
        } else {
            match stream.as_mut() {
                Some(stream) => stream.decrypt_next_in_place(&header, &mut buf),
                None => unreachable!("the loop ends at the last chunk"),
            }
        };
        if opened.is_err() {
            if last && tail == Tail::Tolerate {
                break false;
            }
            return Err(Error::Tampered {
                path: input.to_owned(),
                what: if last {
                    format!("chunk {index}, the last: truncated or altered")
                } else {
                    format!("chunk {index}")
                },
            });
        }
        if !buf.len().is_multiple_of(block_align) {
            return Err(corrupt(&format!(
                "chunk {index} ends inside a sample frame"
            )));
        }
        if audio_bytes + buf.len() as u64 > crate::track::WAV_DATA_LIMIT {
            return Err(corrupt("more audio than a WAV file can hold"));
        }
        let mut samples = wav.get_i16_writer(buf.len() as u32 / 2);
        for pair in buf.chunks_exact(2) {
            samples.write_sample(i16::from_le_bytes([pair[0], pair[1]]));
        }
        samples.flush().map_err(wav_err)?;
        audio_bytes += buf.len() as u64;
        index += 1;
        if last {
            break true;
        }
    };
    wav.finalize().map_err(wav_err)?;
    temp.as_file().sync_all().map_err(out_err)?;
    temp.persist(output).map_err(|e| out_err(e.error))?;
    Ok(Recovered {
        duration_ms: audio_bytes / block_align as u64 * 1000 / u64::from(format.sample_rate),
        complete,
    })
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}
