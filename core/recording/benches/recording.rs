//! Recording costs: what `push` costs the media thread per 20 ms stereo frame at 8 kHz, and how
//! many MB/s of PCM the recorder thread turns into finished files, plain and encrypted (and
//! what `decrypt` reads back per second).
//!
//! `cargo bench -p switchyard-recording`. Criterion prints the time per iteration: for `push`
//! an iteration is one frame (ns per frame); for the writer it is a batch of recordings and the
//! throughput line gives MB/s of PCM.
// Benchmarks time real work, so they read the clock.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchyard_recording::{
    Layout, MasterKey, POOL_BLOCKS, Recorder, RecordingInfo, RecordingSpec, decrypt,
};

const WAIT: Duration = Duration::from_secs(60);
/// Recordings per writer-throughput iteration, and their length in 20 ms frames (a pool's
/// worth, so none is dropped however the threads interleave).
const CALLS: usize = 16;
const FRAMES: usize = (POOL_BLOCKS - 1) * 50;

fn frame(f: usize) -> ([i16; 160], [i16; 160]) {
    let mut a = [0i16; 160];
    let mut b = [0i16; 160];
    for i in 0..160 {
        let t = (f * 160 + i) as f64 / 8000.0;
        a[i] = (9000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16;
        b[i] = (7000.0 * (2.0 * std::f64::consts::PI * 1013.0 * t).sin()) as i16;
    }
    (a, b)
}

fn start(key: Option<MasterKey>) -> (Recorder, Receiver<RecordingInfo>) {
    let (tx, rx) = mpsc::channel();
    let recorder = Recorder::start(
        key,
        Box::new(move |info| {
            let _ = tx.send(info);
        }),
    )
    .unwrap();
    (recorder, rx)
}

fn spec(uuid: String, path: std::path::PathBuf, encrypt: bool) -> RecordingSpec {
    RecordingSpec {
        call_uuid: uuid,
        layout: Layout::Stereo,
        sample_rate: 8000,
        path,
        encrypt,
    }
}

/// Waits until the recorder thread has handled everything queued before (FIFO).
fn barrier(recorder: &Recorder, done: &Receiver<RecordingInfo>, dir: &Path, n: u64) {
    recorder
        .open(spec(format!("b{n}"), dir.join(format!("b{n}.wav")), false))
        .unwrap()
        .finish();
    done.recv_timeout(WAIT).unwrap();
}

fn bench_push(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let frames: Vec<_> = (0..50).map(frame).collect();
    for encrypt in [false, true] {
        let (recorder, done) = start(Some(MasterKey::generate()));
        let ext = if encrypt { "wav.enc" } else { "wav" };
        let file = |generation: u32| dir.path().join(format!("p{generation}.{ext}"));
        let mut generation = 0;
        let mut sink = recorder
            .open(spec("push".into(), file(generation), encrypt))
            .unwrap();
        let mut pushed = 0usize;
        let mut barriers = 0u64;
        let mut dropped = 0u64;
        let mut recorded_ms = 0u64;
        let label = if encrypt {
            "push stereo 8 kHz 20 ms frame (encrypted)"
        } else {
            "push stereo 8 kHz 20 ms frame (plain)"
        };
        c.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    // Time a pool's worth of frames, then let the writer catch up untimed.
                    let n = left.min(FRAMES as u64);
                    let t0 = Instant::now();
                    for _ in 0..n {
                        let (a, b) = &frames[pushed % 50];
                        sink.push(a, b);
                        pushed += 1;
                    }
                    spent += t0.elapsed();
                    left -= n;
                    barriers += 1;
                    barrier(&recorder, &done, dir.path(), barriers);
                    let _ = std::fs::remove_file(dir.path().join(format!("b{barriers}.wav")));
                    // Every 10 min of audio, start a new file (untimed) so the bench does not
                    // fill the disk.
                    if pushed >= 30_000 {
                        dropped += sink.frames_dropped();
                        recorded_ms += 20 * pushed as u64;
                        pushed = 0;
                        generation += 1;
                        let next = recorder
                            .open(spec("push".into(), file(generation), encrypt))
                            .unwrap();
                        std::mem::replace(&mut sink, next).finish();
                        done.recv_timeout(WAIT).unwrap();
                        std::fs::remove_file(file(generation - 1)).unwrap();
                    }
                }
                spent
            })
        });
        dropped += sink.frames_dropped();
        sink.finish();
        let info = done.recv_timeout(WAIT).unwrap();
        recorded_ms += info.duration_ms;
        println!(
            "  {label}: {} s recorded, {dropped} frames dropped",
            recorded_ms / 1000
        );
        assert_eq!(dropped, 0, "the bench must measure the no-drop path");
        recorder.shutdown();
        let _ = std::fs::remove_file(file(generation));
    }
}

fn bench_writer(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let frames: Vec<_> = (0..50).map(frame).collect();
    let bytes_per_iter = (CALLS * FRAMES * 160 * 4) as u64;
    let mut group = c.benchmark_group("recorder thread");
    group.throughput(Throughput::Bytes(bytes_per_iter));
    group.sample_size(20);
    for encrypt in [false, true] {
        let (recorder, done) = start(Some(MasterKey::generate()));
        let mut batch = 0u64;
        let label = if encrypt {
            "16 calls x 3 s, encrypted"
        } else {
            "16 calls x 3 s, plain"
        };
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    batch += 1;
                    let ext = if encrypt { "wav.enc" } else { "wav" };
                    let paths: Vec<_> = (0..CALLS)
                        .map(|i| dir.path().join(format!("w{batch}-{i}.{ext}")))
                        .collect();
                    let t0 = Instant::now();
                    let mut sinks: Vec<_> = paths
                        .iter()
                        .enumerate()
                        .map(|(i, p)| {
                            recorder
                                .open(spec(format!("w{batch}-{i}"), p.clone(), encrypt))
                                .unwrap()
                        })
                        .collect();
                    for f in 0..FRAMES {
                        let (a, b) = &frames[f % 50];
                        for sink in &mut sinks {
                            sink.push(a, b);
                        }
                    }
                    for sink in sinks {
                        sink.finish();
                    }
                    for _ in 0..CALLS {
                        let info = done.recv_timeout(WAIT).unwrap();
                        assert_eq!(info.frames_dropped, 0);
                        assert_eq!(info.error, None);
                    }
                    spent += t0.elapsed();
                    for p in paths {
                        let _ = std::fs::remove_file(p);
                    }
                }
                spent
            })
        });
        recorder.shutdown();
    }
    group.finish();
}

fn bench_decrypt(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let (recorder, done) = start(Some(key.clone()));
    let sealed = dir.path().join("d.wav.enc");
    let mut sink = recorder
        .open(spec("d".into(), sealed.clone(), true))
        .unwrap();
    // 60 s of 8 kHz stereo, in pool-sized rounds.
    for f in 0..3000 {
        let (a, b) = frame(f);
        sink.push(&a, &b);
        if f % FRAMES == FRAMES - 1 {
            barrier(&recorder, &done, dir.path(), f as u64);
        }
    }
    sink.finish();
    let info = loop {
        let info = done.recv_timeout(WAIT).unwrap();
        if info.call_uuid == "d" {
            break info;
        }
    };
    assert_eq!(info.frames_dropped, 0);
    recorder.shutdown();
    let mut group = c.benchmark_group("decrypt");
    group.throughput(Throughput::Bytes(3000 * 160 * 4));
    group.sample_size(20);
    let out = dir.path().join("d.wav");
    group.bench_function("60 s of 8 kHz stereo", |b| {
        b.iter(|| {
            decrypt(&sealed, &key, &out).unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, bench_push, bench_writer, bench_decrypt);
criterion_main!(benches);
