//! Helpers shared by the recording tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_recording::{Layout, MasterKey, Recorder, RecordingInfo, RecordingSpec};

/// Bound on waiting for the recorder thread: a deadline for a report that never comes.
pub const WAIT: Duration = Duration::from_secs(30);

pub const KEY_HEX: &str = "8f3a5c7e9b1d2f4a6c8e0b2d4f6a8c0e1f3b5d7a9c2e4f6b8d0a1c3e5f7b9d2a";

pub fn key() -> MasterKey {
    MasterKey::from_hex(KEY_HEX).unwrap()
}

/// A recorder whose finished recordings arrive on the returned channel. A recording whose
/// uuid starts with "stall" holds the recorder thread inside `on_finished` until the returned
/// gate sender is sent a message: a deterministic way to make the writer fall behind.
pub struct Harness {
    pub recorder: Option<Recorder>,
    pub finished: Receiver<RecordingInfo>,
    pub gate: Sender<()>,
}

impl Harness {
    pub fn start(key: Option<MasterKey>) -> Harness {
        let (done_tx, done_rx) = mpsc::channel();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate_rx = Arc::new(Mutex::new(gate_rx));
        let recorder = Recorder::start(
            key,
            Box::new(move |info: RecordingInfo| {
                assert_eq!(std::thread::current().name(), Some("recorder"));
                if info.call_uuid.starts_with("stall") {
                    let _ = gate_rx.lock().unwrap().recv_timeout(WAIT);
                }
                let _ = done_tx.send(info);
            }),
        )
        .unwrap();
        Harness {
            recorder: Some(recorder),
            finished: done_rx,
            gate: gate_tx,
        }
    }

    pub fn recorder(&self) -> &Recorder {
        self.recorder.as_ref().unwrap()
    }

    pub fn next(&self) -> RecordingInfo {
        self.finished
            .recv_timeout(WAIT)
            .expect("no recording finished")
    }

    /// Waits until the recorder thread has processed everything sent before this call: a
    /// recording opened and finished now is reported only after every earlier message (FIFO).
    pub fn barrier(&self, dir: &Path, n: usize) {
        let uuid = format!("barrier-{n}");
        let sink = self
            .recorder()
            .open(spec(
                &uuid,
                Layout::Mono,
                8000,
                dir.join(format!("{uuid}.wav")),
                false,
            ))
            .unwrap();
        sink.finish();
        let info = self.next();
        assert_eq!(info.call_uuid, uuid, "recordings finish in order");
    }
}

pub fn spec(uuid: &str, layout: Layout, rate: u32, path: PathBuf, encrypt: bool) -> RecordingSpec {
    RecordingSpec {
        call_uuid: uuid.into(),
        layout,
        sample_rate: rate,
        path,
        encrypt,
    }
}

/// A deterministic tone for frame `index` of `len` samples: frequency `hz`, amplitude `amp`.
pub fn tone(hz: f64, rate: u32, amp: f64, index: usize, len: usize) -> Vec<i16> {
    (0..len)
        .map(|i| {
            let t = (index * len + i) as f64 / f64::from(rate);
            (amp * (2.0 * std::f64::consts::PI * hz * t).sin()).round() as i16
        })
        .collect()
}

/// Every sample of a WAV file, interleaved, with its spec.
pub fn read_wav(path: &Path) -> (hound::WavSpec, Vec<i16>) {
    let reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    let samples = reader.into_samples().map(Result::unwrap).collect();
    (spec, samples)
}

/// Records the same frames to a plain and an encrypted file; returns (plain path, sealed path).
pub fn record_pair(
    h: &Harness,
    dir: &Path,
    layout: Layout,
    rate: u32,
    frames: usize,
) -> (PathBuf, PathBuf) {
    let len = rate as usize / 50;
    let plain = dir.join("pair.wav");
    let sealed = dir.join("pair.wav.enc");
    let mut a = h
        .recorder()
        .open(spec("plain", layout, rate, plain.clone(), false))
        .unwrap();
    let mut b = h
        .recorder()
        .open(spec("sealed", layout, rate, sealed.clone(), true))
        .unwrap();
    for f in 0..frames {
        let caller = tone(440.0, rate, 12000.0, f, len);
        let callee = tone(1013.0, rate, 9000.0, f, len);
        a.push(&caller, &callee);
        b.push(&caller, &callee);
        // Keep the writer ahead of us, so no frame is dropped, without any sleep.
        if f % 100 == 99 {
            h.barrier(dir, f);
        }
    }
    a.finish();
    b.finish();
    let (x, y) = (h.next(), h.next());
    assert_eq!(
        (x.call_uuid.as_str(), y.call_uuid.as_str()),
        ("plain", "sealed")
    );
    assert_eq!((x.frames_dropped, y.frames_dropped), (0, 0));
    assert_eq!((x.error.as_deref(), y.error.as_deref()), (None, None));
    (plain, sealed)
}
