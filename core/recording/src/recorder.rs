//! The recorder thread and the sinks that feed it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use crate::key::MasterKey;
use crate::track::Track;
use crate::{Error, Layout};

/// Audio per block handed to the recorder thread.
pub const BLOCK_MS: u64 = 1000;
/// Blocks each recording owns: one being filled, the rest in flight or free. The recorder thread
/// may fall this many seconds less one behind a call before its audio is dropped. Memory per
/// recording: `POOL_BLOCKS` × 1 s of PCM (128 kB for 8 kHz stereo, 768 kB for 48 kHz stereo).
pub const POOL_BLOCKS: usize = 4;
/// Recordings open at once. The queue to the recorder thread is sized from it so that a sink's
/// non-blocking send can never find it full (see [`Recorder`]).
pub const MAX_OPEN_RECORDINGS: usize = 4096;
/// Messages one recording can have queued at once: its open, every block it owns, its finish.
const MESSAGES_PER_RECORDING: usize = POOL_BLOCKS + 2;

/// What to record and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingSpec {
    pub call_uuid: String,
    pub layout: Layout,
    /// Samples per second per channel: 8000, 16000 or 48000 (any rate 8000..=48000 works).
    pub sample_rate: u32,
    /// The final file: must end in ".wav", or in ".wav.enc" when `encrypt` is set.
    pub path: PathBuf,
    pub encrypt: bool,
}

/// A span of the recording during which it was paused (written as silence), in milliseconds
/// from the start of the recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PauseSpan {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// Reported through the `on_finished` callback once per recording, after its file is final.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordingInfo {
    pub call_uuid: String,
    pub path: PathBuf,
    pub layout: Layout,
    pub sample_rate: u32,
    /// Length of the audio in the file, pauses and dropped frames (silence) included.
    pub duration_ms: u64,
    /// Size of the file on disk.
    pub bytes: u64,
    pub encrypted: bool,
    /// Total time paused (PCI-DSS: card numbers spoken or keyed are not recorded).
    pub paused_ms: u64,
    /// Each pause, in order.
    pub pauses: Vec<PauseSpan>,
    /// `push` calls whose audio was lost because the recorder thread was behind (written as
    /// silence, so the timeline keeps its length). Frames pushed while paused are not counted.
    pub frames_dropped: u64,
    /// Why the file is missing or incomplete (cannot create, disk full, size limit), if it is.
    pub error: Option<String>,
}

/// One block of interleaved PCM on its way to the recorder thread and back.
struct Block {
    samples: Vec<i16>,
    /// Frames of silence to write before `samples`: audio dropped while no block was free.
    silence_before: u64,
}

struct OpenRequest {
    spec: RecordingSpec,
    free: SyncSender<Block>,
}

/// What a sink knows at its end and the recorder thread does not.
struct FinishReport {
    trailing_silence: u64,
    paused_ms: u64,
    pauses: Vec<PauseSpan>,
    frames_dropped: u64,
}

enum Msg {
    Open(u64, Box<OpenRequest>),
    Block(u64, Block),
    Finish(u64, Box<FinishReport>),
    Shutdown,
}

/// Called on the recorder thread with each finished recording.
pub type OnFinished = Box<dyn Fn(RecordingInfo) + Send + Sync>;

/// The recording service: one thread, named "recorder", owns every recording file.
///
/// Media threads never touch a file: a [`RecordingSink`] copies audio into preallocated
/// one-second blocks and passes full ones to the recorder thread over a bounded queue; the
/// thread writes them and hands the emptied block back through the sink's own pool. The queue
/// holds [`MAX_OPEN_RECORDINGS`] × ([`POOL_BLOCKS`] + 2) messages, the most that many
/// recordings can have queued (each owns `POOL_BLOCKS` blocks), so a sink's `try_send` never
/// finds it full and a media thread never waits.
pub struct Recorder {
    tx: SyncSender<Msg>,
    has_key: bool,
    active: Arc<AtomicUsize>,
    next_id: AtomicU64,
    thread: Option<JoinHandle<()>>,
}

impl Recorder {
    /// Starts the recorder thread. Without a master key, plain recordings still work and
    /// encrypted ones are refused at [`Recorder::open`].
    pub fn start(
        master_key: Option<MasterKey>,
        on_finished: OnFinished,
    ) -> Result<Recorder, Error> {
        // +1: room for the Shutdown message even when every recording has its worst case queued.
        let (tx, rx) = mpsc::sync_channel(MAX_OPEN_RECORDINGS * MESSAGES_PER_RECORDING + 1);
        let active = Arc::new(AtomicUsize::new(0));
        let has_key = master_key.is_some();
        let writer = RecorderThread {
            key: master_key,
            on_finished,
            active: active.clone(),
            open: HashMap::new(),
        };
        let thread = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || writer.run(rx))
            .map_err(Error::Spawn)?;
        Ok(Recorder {
            tx,
            has_key,
            active,
            next_id: AtomicU64::new(1),
            thread: Some(thread),
        })
    }

    /// Starts a recording. The file is created on the recorder thread: if that fails (no space,
    /// no permission, the file exists) the failure arrives in [`RecordingInfo::error`] and the
    /// sink's audio is discarded. Allocates the recording's blocks here, never later.
    pub fn open(&self, spec: RecordingSpec) -> Result<RecordingSink, Error> {
        if spec.encrypt && !self.has_key {
            return Err(Error::NoMasterKey);
        }
        validate(&spec)?;
        if self.active.fetch_add(1, Ordering::AcqRel) >= MAX_OPEN_RECORDINGS {
            self.active.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::TooManyRecordings {
                limit: MAX_OPEN_RECORDINGS,
            });
        }
        let channels = usize::from(spec.layout.channels());
        let block_capacity = spec.sample_rate as usize * BLOCK_MS as usize / 1000 * channels;
        let (free_tx, free_rx) = mpsc::sync_channel(POOL_BLOCKS);
        let new_block = || Block {
            samples: Vec::with_capacity(block_capacity),
            silence_before: 0,
        };
        for _ in 1..POOL_BLOCKS {
            // Cannot fail: the channel has room for POOL_BLOCKS and we hold its receiver.
            let _ = free_tx.try_send(new_block());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let layout = spec.layout;
        let sample_rate = spec.sample_rate;
        let request = Box::new(OpenRequest {
            spec,
            free: free_tx,
        });
        if self.tx.try_send(Msg::Open(id, request)).is_err() {
            self.active.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::Closed);
        }
        Ok(RecordingSink {
            id,
            layout,
            channels,
            sample_rate: u64::from(sample_rate),
            block_capacity,
            current: Some(new_block()),
            free: free_rx,
            to_writer: self.tx.clone(),
            writer_gone: false,
            paused: false,
            pause_started: 0,
            pauses: Vec::with_capacity(8),
            paused_frames: 0,
            position: 0,
            pending_silence: 0,
            frames_dropped: 0,
            finished: false,
        })
    }

    /// Recordings opened and not yet finalized by the recorder thread.
    pub fn open_recordings(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Writes everything queued, finalizes every recording still open (their sinks' later
    /// audio is discarded; their [`RecordingInfo::error`] says so) and joins the thread.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.tx.try_send(Msg::Shutdown);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the recorder thread panicked");
        }
    }
}

fn validate(spec: &RecordingSpec) -> Result<(), Error> {
    if !(8000..=48000).contains(&spec.sample_rate) {
        return Err(Error::InvalidSpec(format!(
            "sample rate {} Hz: recordings are 8000 to 48000 Hz",
            spec.sample_rate
        )));
    }
    let name = spec.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let wanted = if spec.encrypt { ".wav.enc" } else { ".wav" };
    if !name.ends_with(wanted) || name.len() == wanted.len() {
        return Err(Error::InvalidSpec(format!(
            "{}: {} recordings are named *{wanted}",
            spec.path.display(),
            if spec.encrypt { "encrypted" } else { "plain" },
        )));
    }
    Ok(())
}

/// The media thread's end of one recording. `push` copies into a preallocated block and never
/// blocks or allocates; finishing (explicitly or by drop) hands the rest to the recorder thread.
pub struct RecordingSink {
    id: u64,
    layout: Layout,
    channels: usize,
    sample_rate: u64,
    /// Samples (all channels) per block.
    block_capacity: usize,
    /// The block being filled; `None` while the pool is empty (the recorder thread is behind).
    current: Option<Block>,
    free: Receiver<Block>,
    to_writer: SyncSender<Msg>,
    /// The recorder thread has exited (shutdown): further audio has nowhere to go.
    writer_gone: bool,
    paused: bool,
    /// Position (frames) where the current pause began.
    pause_started: u64,
    pauses: Vec<PauseSpan>,
    paused_frames: u64,
    /// Frames on the recording's timeline so far (written, silenced or dropped).
    position: u64,
    /// Frames lost while no block was free, to be written as silence before the next audio.
    pending_silence: u64,
    frames_dropped: u64,
    finished: bool,
}

impl RecordingSink {
    /// Records one frame of each party (normally 20 ms; both slices the same length, the
    /// shorter is padded with silence). Stereo: caller left, callee right. Mono: the saturating
    /// sum. While paused, silence is recorded instead.
    pub fn push(&mut self, caller: &[i16], callee: &[i16]) {
        let frames = caller.len().max(callee.len());
        if frames == 0 || self.writer_gone {
            return;
        }
        let (channels, capacity, paused, layout) =
            (self.channels, self.block_capacity, self.paused, self.layout);
        let mut done = 0;
        while done < frames {
            let Some(block) = self.writable_block() else {
                break;
            };
            let room = (capacity - block.samples.len()) / channels;
            let take = room.min(frames - done);
            let range = done..done + take;
            let sample = |side: &[i16], i: usize| side.get(i).copied().unwrap_or(0);
            match (paused, layout) {
                (true, _) => block
                    .samples
                    .extend(std::iter::repeat_n(0i16, take * channels)),
                (false, Layout::Stereo) => {
                    for i in range {
                        block.samples.push(sample(caller, i));
                        block.samples.push(sample(callee, i));
                    }
                }
                (false, Layout::Mono) => block
                    .samples
                    .extend(range.map(|i| sample(caller, i).saturating_add(sample(callee, i)))),
            }
            done += take;
            if block.samples.len() == capacity {
                self.hand_over();
            }
        }
        if done < frames {
            self.pending_silence += (frames - done) as u64;
            if !self.paused {
                self.frames_dropped += 1;
            }
        }
        self.position += frames as u64;
    }

    /// The block to write into, taking one from the pool if needed. A block that starts here
    /// carries the silence owed for audio dropped before it.
    fn writable_block(&mut self) -> Option<&mut Block> {
        if self.current.is_none() {
            self.current = self.free.try_recv().ok();
        }
        let block = self.current.as_mut()?;
        if block.samples.is_empty() {
            block.silence_before += std::mem::take(&mut self.pending_silence);
        }
        Some(block)
    }

    fn hand_over(&mut self) {
        let Some(block) = self.current.take() else {
            return;
        };
        match self.to_writer.try_send(Msg::Block(self.id, block)) {
            Ok(()) => {}
            Err(TrySendError::Full(Msg::Block(_, mut block))) => {
                // Cannot happen while the queue is sized as documented on `Recorder`; if it
                // does, keep the timeline: the block's audio becomes silence owed.
                tracing::error!("recorder queue full; one block of audio dropped");
                self.pending_silence +=
                    block.silence_before + (block.samples.len() / self.channels) as u64;
                self.frames_dropped += 1;
                block.samples.clear();
                block.silence_before = 0;
                self.current = Some(block);
            }
            Err(_) => self.writer_gone = true,
        }
    }

    /// Pauses or resumes. While paused, frames are written as silence so the recording keeps
    /// the call's timeline; each pause is reported in [`RecordingInfo::pauses`].
    pub fn set_paused(&mut self, paused: bool) {
        if paused == self.paused {
            return;
        }
        self.paused = paused;
        if paused {
            self.pause_started = self.position;
        } else {
            self.close_pause();
        }
    }

    fn close_pause(&mut self) {
        let span = PauseSpan {
            start_ms: self.pause_started * 1000 / self.sample_rate,
            end_ms: self.position * 1000 / self.sample_rate,
        };
        self.paused_frames += self.position - self.pause_started;
        // Preallocated for 8 pauses; a call paused more often than that allocates here, on a
        // control event, never in `push`.
        self.pauses.push(span);
    }

    /// True while paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Frames dropped so far (see [`RecordingInfo::frames_dropped`]).
    pub fn frames_dropped(&self) -> u64 {
        self.frames_dropped
    }

    /// Ends the recording: the recorder thread writes what is left, finalizes the file and
    /// calls `on_finished`.
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        if std::mem::replace(&mut self.finished, true) || self.writer_gone {
            return;
        }
        if self.paused {
            self.close_pause();
            self.paused = false;
        }
        if let Some(block) = &self.current
            && (!block.samples.is_empty() || block.silence_before > 0)
        {
            self.hand_over();
        }
        let report = Box::new(FinishReport {
            trailing_silence: std::mem::take(&mut self.pending_silence),
            paused_ms: self.paused_frames * 1000 / self.sample_rate,
            pauses: std::mem::take(&mut self.pauses),
            frames_dropped: self.frames_dropped,
        });
        if let Err(TrySendError::Full(_)) = self.to_writer.try_send(Msg::Finish(self.id, report)) {
            tracing::error!("recorder queue full; a recording is left unfinished");
        }
    }
}

impl Drop for RecordingSink {
    fn drop(&mut self) {
        self.end();
    }
}

/// One recording as the recorder thread sees it.
struct ActiveRecording {
    spec: RecordingSpec,
    /// `None` if the file could not be created.
    track: Option<Track>,
    free: SyncSender<Block>,
    /// The first failure; writing stops at it.
    error: Option<String>,
}

impl ActiveRecording {
    fn write(&mut self, block: &Block) {
        if self.error.is_some() {
            return;
        }
        let Some(track) = self.track.as_mut() else {
            return;
        };
        let was_full = track.is_full();
        let result = track
            .write_silence(block.silence_before)
            .and_then(|()| track.write(&block.samples))
            .and_then(|()| track.checkpoint());
        if let Err(e) = result {
            tracing::error!(uuid = %self.spec.call_uuid, error = %e, "recording write failed");
            self.error = Some(e.to_string());
        } else if track.is_full() && !was_full {
            tracing::warn!(uuid = %self.spec.call_uuid, "recording reached the WAV size limit");
        }
    }

    fn finish(self, report: FinishReport) -> RecordingInfo {
        let ActiveRecording {
            spec,
            track,
            mut error,
            ..
        } = self;
        let mut duration_ms = 0;
        let mut bytes = 0;
        if let Some(mut track) = track {
            if error.is_none()
                && let Err(e) = track.write_silence(report.trailing_silence)
            {
                error = Some(e.to_string());
            }
            if track.is_full() && error.is_none() {
                error = Some(
                    "the recording reached the 4 GiB WAV size limit; the rest of the call was not recorded"
                        .into(),
                );
            }
            duration_ms = track.frames() * 1000 / u64::from(spec.sample_rate);
            let path = track.path().to_owned();
            match track.finish() {
                Ok(n) => bytes = n,
                Err(e) => {
                    error.get_or_insert(e.to_string());
                    bytes = std::fs::metadata(path).map_or(0, |m| m.len());
                }
            }
        }
        RecordingInfo {
            call_uuid: spec.call_uuid,
            path: spec.path,
            layout: spec.layout,
            sample_rate: spec.sample_rate,
            duration_ms,
            bytes,
            encrypted: spec.encrypt,
            paused_ms: report.paused_ms,
            pauses: report.pauses,
            frames_dropped: report.frames_dropped,
            error,
        }
    }
}

struct RecorderThread {
    key: Option<MasterKey>,
    on_finished: OnFinished,
    active: Arc<AtomicUsize>,
    open: HashMap<u64, ActiveRecording>,
}

impl RecorderThread {
    fn run(mut self, rx: Receiver<Msg>) {
        while let Ok(msg) = rx.recv() {
            match msg {
                Msg::Open(id, request) => {
                    let OpenRequest { spec, free } = *request;
                    let (track, error) = match Track::create(&spec, self.key.as_ref()) {
                        Ok(track) => (Some(track), None),
                        Err(e) => {
                            tracing::error!(uuid = %spec.call_uuid, error = %e, "cannot start recording");
                            (None, Some(e.to_string()))
                        }
                    };
                    self.open.insert(
                        id,
                        ActiveRecording {
                            spec,
                            track,
                            free,
                            error,
                        },
                    );
                }
                Msg::Block(id, mut block) => {
                    // FIFO: a recording's Open always precedes its blocks.
                    if let Some(rec) = self.open.get_mut(&id) {
                        rec.write(&block);
                        block.samples.clear();
                        block.silence_before = 0;
                        // The pool has room for every block the sink owns; if the sink is gone
                        // the block is simply freed.
                        let _ = rec.free.try_send(block);
                    }
                }
                Msg::Finish(id, report) => {
                    if let Some(rec) = self.open.remove(&id) {
                        let info = rec.finish(*report);
                        self.active.fetch_sub(1, Ordering::AcqRel);
                        (self.on_finished)(info);
                    }
                }
                Msg::Shutdown => break,
            }
        }
        for (_, rec) in self.open.drain() {
            let mut info = rec.finish(FinishReport {
                trailing_silence: 0,
                paused_ms: 0,
                pauses: Vec::new(),
                frames_dropped: 0,
            });
            info.error.get_or_insert_with(|| {
                "the recorder shut down before the call ended; the rest of the call was not recorded"
                    .into()
            });
            self.active.fetch_sub(1, Ordering::AcqRel);
            (self.on_finished)(info);
        }
        tracing::debug!("recorder thread exiting");
    }
}
