//! switchyard-recording: call recording off the packet path, with optional encryption at rest.
//!
//! # Threads
//!
//! [`Recorder::start`] spawns one thread, "recorder", which owns every recording file. A media
//! thread holds a [`RecordingSink`] per recorded call and calls [`RecordingSink::push`] with
//! each 20 ms frame of both parties. `push` copies the frame into a preallocated one-second
//! block; a full block goes to the recorder thread over a bounded queue, and the sink carries
//! on in an empty block from its own pool of [`POOL_BLOCKS`]. The recorder thread writes the
//! block and returns it to that pool. In steady state nothing is allocated on either side and
//! `push` never waits: if the recorder thread falls so far behind that the pool is empty, the
//! frame's audio is dropped, counted ([`RecordingInfo::frames_dropped`]) and written later as
//! silence, so the recording keeps the call's timeline.
//!
//! ```no_run
//! use switchyard_recording::{Layout, Recorder, RecordingSpec};
//! # fn main() -> Result<(), switchyard_recording::Error> {
//! let recorder = Recorder::start(None, Box::new(|info| println!("{} done: {} ms", info.call_uuid, info.duration_ms)))?;
//! let mut sink = recorder.open(RecordingSpec {
//!     call_uuid: "4f1c".into(),
//!     layout: Layout::Stereo,
//!     sample_rate: 8000,
//!     path: "/var/lib/switchyard/recordings/4f1c.wav".into(),
//!     encrypt: false,
//! })?;
//! let (caller, callee) = ([0i16; 160], [0i16; 160]);
//! sink.push(&caller, &callee); // every 20 ms, on the media thread
//! sink.set_paused(true);       // the caller is about to read a card number (PCI-DSS)
//! sink.set_paused(false);
//! sink.finish();
//! recorder.shutdown();
//! # Ok(()) }
//! ```
//!
//! # Plain files and crashes
//!
//! A plain recording is a 16-bit PCM WAV written with hound: mono, or stereo with the caller
//! on the left channel and the callee on the right. After every block (one second) the
//! recorder thread rewrites the RIFF and data chunk sizes and flushes (hound's checkpoint), so
//! the file on disk is always a valid WAV of everything up to the last block. A `kill -9` of
//! the daemon therefore leaves a playable file that lacks only the audio not yet handed over:
//! the block being filled and any still queued, at most [`POOL_BLOCKS`] seconds. No repair
//! step is needed; bytes past the recorded data size, if a write was under way, are ignored by
//! WAV readers.
//!
//! # Encrypted files (".wav.enc"), format version 1
//!
//! Each recording gets a fresh random 256-bit data key; only that key is encrypted with the
//! [`MasterKey`] (a key wrap), so the master key encrypts 32 bytes per file and can be rotated
//! by rewrapping headers. The file is a fixed 91-byte header followed by the audio encrypted
//! with the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár, "Online
//! Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", 2015) over AES-256-GCM, as
//! implemented by `aead-stream`'s `StreamBE32`:
//!
//! | offset | bytes | field |
//! |-------:|------:|-------|
//! | 0  | 5  | magic `SYREC` |
//! | 5  | 1  | format version, 1 |
//! | 6  | 1  | channels (1 or 2) |
//! | 7  | 1  | bits per sample (16) |
//! | 8  | 4  | sample rate, big-endian |
//! | 12 | 4  | plaintext bytes per chunk, big-endian (65536) |
//! | 16 | 8  | master key id: the first 8 bytes of SHA-256("switchyard-recording key id v1" ‖ master key) |
//! | 24 | 12 | key-wrap nonce (random) |
//! | 36 | 7  | STREAM nonce prefix (random) |
//! | 43 | 48 | the data key encrypted with AES-256-GCM under the master key (32 bytes + 16-byte tag); nonce: offset 24, AAD: bytes 0..43 |
//! | 91 | …  | chunks |
//!
//! The plaintext is the WAV's PCM data (little-endian, interleaved). It is cut into 64 KiB
//! chunks, each encrypted with AES-256-GCM under the data key with the nonce *prefix ‖ counter
//! (u32 BE) ‖ last flag (1 byte)* and the whole 91-byte header as AAD, and stored as ciphertext
//! followed by its 16-byte tag. Every chunk but the last holds exactly 65536 bytes; the last
//! holds fewer (possibly none) and is sealed with the last flag set, which is how a reader
//! tells it apart, and why a file cut at any point, even at a chunk boundary, is detected. The
//! counter binds each chunk to its position, so chunks cannot be reordered, dropped or
//! spliced from another file (whose data key differs), and the header cannot be changed
//! without the key unwrap or every chunk failing.
//!
//! Why not encrypt the WAV header itself? Its size fields are known only when the call ends,
//! and a stream cipher cannot go back. The header carries the format instead (channels, rate,
//! 16 bits, all authenticated), the data length is the authenticated length of the stream, and
//! [`decrypt`] writes a fresh WAV header from them: its output is byte for byte the WAV that a
//! plain recording of the same audio would have produced.
//!
//! A `kill -9` leaves an encrypted file with its header and every full chunk, but no sealed
//! last chunk: [`decrypt`] refuses it as truncated, and [`recover`] returns the audio of every
//! authentic chunk (losing the unsealed tail: at most 64 KiB of PCM, 2 s of 8 kHz stereo, plus
//! what was still queued).
//!
//! # Not covered
//!
//! No fsync: a finished file is in the page cache, which survives the death of the process but
//! not a power cut (as for the CDRs of `switchyard-store`). The master key is not zeroed in
//! memory after use.
#![forbid(unsafe_code)]

use std::path::PathBuf;

mod key;
mod recorder;
mod sealed;
mod track;

pub use key::{MASTER_KEY_LEN, MasterKey};
pub use recorder::{
    BLOCK_MS, MAX_OPEN_RECORDINGS, OnFinished, POOL_BLOCKS, PauseSpan, Recorder, RecordingInfo,
    RecordingSink, RecordingSpec,
};
pub use sealed::{Recovered, decrypt, is_encrypted, recover};

/// How the two parties are laid out in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One channel: caller and callee summed (saturating).
    Mono,
    /// Two channels: caller left, callee right.
    Stereo,
}

/// Errors of recording, key handling and decryption.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read, written or created.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// hound refused to write or finalize a WAV file.
    #[error("{}: WAV: {source}", path.display())]
    Wav {
        path: PathBuf,
        #[source]
        source: hound::Error,
    },
    /// The master key text is not 64 hex digits.
    #[error("invalid master key: {0}")]
    InvalidKey(String),
    /// The key file can be read or written by group or others.
    #[error(
        "{}: mode {mode:o} lets group or others read the recording key; chmod 600 it",
        path.display()
    )]
    KeyFilePermissions { path: PathBuf, mode: u32 },
    /// An encrypted recording was asked for but the recorder has no master key.
    #[error("encrypted recording requested but no master key is configured")]
    NoMasterKey,
    /// The recording spec cannot be honoured (sample rate, file name).
    #[error("invalid recording: {0}")]
    InvalidSpec(String),
    /// [`MAX_OPEN_RECORDINGS`] recordings are already open.
    #[error("{limit} recordings are already open")]
    TooManyRecordings { limit: usize },
    /// The recorder thread has exited.
    #[error("the recorder thread is not running")]
    Closed,
    /// The recorder thread could not be started.
    #[error("cannot start the recorder thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// The file is not an encrypted recording (no `SYREC` magic).
    #[error("{} is not an encrypted switchyard recording", path.display())]
    NotEncrypted { path: PathBuf },
    /// The file was written by a newer format version.
    #[error(
        "{}: encrypted recording format version {found}; this build reads version {supported}",
        path.display()
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u8,
        supported: u8,
    },
    /// The file was sealed with another master key.
    #[error(
        "{}: sealed with master key id {file_key_id}, but the key given has id {key_id}",
        path.display()
    )]
    WrongKey {
        path: PathBuf,
        file_key_id: String,
        key_id: String,
    },
    /// Authentication failed: the file was altered (or, for its last chunk, cut short).
    #[error("{}: {what} fails authentication: the file was altered; refusing it", path.display())]
    Tampered { path: PathBuf, what: String },
    /// The file ends early: the recorder died before sealing it (see [`recover`]), or it was
    /// cut short.
    #[error("{}: truncated: {what} is missing (a recorder crash leaves this; see `recover`)", path.display())]
    Truncated { path: PathBuf, what: &'static str },
    /// The header is malformed.
    #[error("{}: corrupt: {what}", path.display())]
    Corrupt { path: PathBuf, what: String },
}
