mod common;

use std::path::Path;

use common::{Harness, key, read_wav, record_pair, spec, tone};
use switchyard_recording::{
    Error, Layout, MasterKey, POOL_BLOCKS, PauseSpan, Recorder, decrypt, is_encrypted, recover,
};

/// Energy of `hz` in `x` (Goertzel), normalised by length.
fn goertzel(x: &[i16], rate: u32, hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s = f64::from(v) + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - c * s1 * s2) / (x.len() as f64).powi(2)
}

fn channel(samples: &[i16], ch: usize) -> Vec<i16> {
    samples.iter().skip(ch).step_by(2).copied().collect()
}

#[test]
fn stereo_puts_the_caller_left_and_the_callee_right() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(None);
    let path = dir.path().join("s.wav");
    let mut sink = h
        .recorder()
        .open(spec("stereo", Layout::Stereo, 8000, path.clone(), false))
        .unwrap();
    let mut want_left = Vec::new();
    let mut want_right = Vec::new();
    for f in 0..100 {
        let caller = tone(440.0, 8000, 10000.0, f, 160);
        let callee = tone(1000.0, 8000, 10000.0, f, 160);
        sink.push(&caller, &callee);
        want_left.extend_from_slice(&caller);
        want_right.extend_from_slice(&callee);
    }
    sink.finish();
    let info = h.next();
    assert_eq!(info.call_uuid, "stereo");
    assert_eq!(info.duration_ms, 2000);
    assert_eq!(info.layout, Layout::Stereo);
    assert_eq!(info.sample_rate, 8000);
    assert!(!info.encrypted);
    assert_eq!(info.frames_dropped, 0);
    assert_eq!(info.error, None);
    assert_eq!(info.bytes, std::fs::metadata(&path).unwrap().len());
    assert_eq!(info.bytes, 44 + 2 * 8000 * 2 * 2);

    let (wav, samples) = read_wav(&path);
    assert_eq!(
        (wav.channels, wav.sample_rate, wav.bits_per_sample),
        (2, 8000, 16)
    );
    let (left, right) = (channel(&samples, 0), channel(&samples, 1));
    assert_eq!(left, want_left);
    assert_eq!(right, want_right);
    // And by ear, so to speak: each tone dominates its own channel only.
    assert!(goertzel(&left, 8000, 440.0) > 1000.0 * goertzel(&left, 8000, 1000.0));
    assert!(goertzel(&right, 8000, 1000.0) > 1000.0 * goertzel(&right, 8000, 440.0));
}

#[test]
fn mono_sums_both_parties_with_saturation() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(None);
    let path = dir.path().join("m.wav");
    let mut sink = h
        .recorder()
        .open(spec("mono", Layout::Mono, 16000, path.clone(), false))
        .unwrap();
    let caller: Vec<i16> = (0..320).map(|i| [20000, -20000, 1000, 0][i % 4]).collect();
    let callee: Vec<i16> = (0..320).map(|i| [20000, -20000, -300, -7][i % 4]).collect();
    for _ in 0..60 {
        sink.push(&caller, &callee);
    }
    sink.finish();
    let info = h.next();
    assert_eq!(info.duration_ms, 1200);
    let (wav, samples) = read_wav(&path);
    assert_eq!((wav.channels, wav.sample_rate), (1, 16000));
    assert_eq!(samples.len(), 60 * 320);
    for (i, s) in samples.iter().enumerate() {
        assert_eq!(*s, [32767, -32768, 700, -7][i % 4], "sample {i}");
    }
}

#[test]
fn frames_of_any_size_cross_block_boundaries_intact() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(None);
    let path = dir.path().join("odd.wav");
    let mut sink = h
        .recorder()
        .open(spec("odd", Layout::Stereo, 8000, path.clone(), false))
        .unwrap();
    // 8000 is not a multiple of 30 or 7: frames straddle the 1 s blocks.
    let mut want = Vec::new();
    let mut n = 0i16;
    for f in 0..800 {
        let len = if f % 2 == 0 { 30 } else { 7 };
        let caller: Vec<i16> = (0..len).map(|i| n.wrapping_add(i)).collect();
        // The callee sends a shorter frame: the missing samples are silence.
        let callee: Vec<i16> = (0..len - 2).map(|i| -n.wrapping_add(i)).collect();
        for (i, &c) in caller.iter().enumerate() {
            want.push(c);
            want.push(callee.get(i).copied().unwrap_or(0));
        }
        sink.push(&caller, &callee);
        n = n.wrapping_add(len);
        if f % 200 == 199 {
            h.barrier(dir.path(), f);
        }
    }
    sink.push(&[], &[]);
    sink.finish();
    let info = h.next();
    assert_eq!(info.frames_dropped, 0);
    let (_, samples) = read_wav(&path);
    assert_eq!(samples, want);
}

#[test]
fn pause_writes_silence_for_exactly_the_paused_span() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(None);
    let path = dir.path().join("p.wav");
    let mut sink = h
        .recorder()
        .open(spec("pause", Layout::Mono, 8000, path.clone(), false))
        .unwrap();
    let voice = [1234i16; 160];
    for f in 0..200 {
        // 1.0 s to 1.5 s and 3.0 s to the end are paused.
        match f {
            50 | 150 => sink.set_paused(true),
            75 => sink.set_paused(false),
            _ => {}
        }
        // Idempotent: pausing twice opens one span.
        if f == 51 {
            sink.set_paused(true);
            assert!(sink.is_paused());
        }
        sink.push(&voice, &[0; 160]);
        if f == 100 {
            h.barrier(dir.path(), 1);
        }
    }
    sink.finish(); // still paused: the open span ends with the recording
    let info = h.next();
    assert_eq!(info.duration_ms, 4000);
    assert_eq!(info.paused_ms, 500 + 1000);
    assert_eq!(
        info.pauses,
        vec![
            PauseSpan {
                start_ms: 1000,
                end_ms: 1500
            },
            PauseSpan {
                start_ms: 3000,
                end_ms: 4000
            }
        ]
    );
    assert_eq!(info.frames_dropped, 0);
    let (_, samples) = read_wav(&path);
    assert_eq!(samples.len(), 32000);
    for (i, s) in samples.iter().enumerate() {
        let paused = (8000..12000).contains(&i) || i >= 24000;
        assert_eq!(*s, if paused { 0 } else { 1234 }, "sample {i}");
    }
}

/// A stalled recorder thread: the pool runs dry, frames are dropped and counted, and their
/// place in the timeline is kept as silence.
#[test]
fn a_stalled_writer_costs_frames_not_the_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(None);
    let path = dir.path().join("d.wav");
    let mut sink = h
        .recorder()
        .open(spec("drops", Layout::Mono, 8000, path.clone(), false))
        .unwrap();
    // Make sure our Open is processed, then hold the writer inside on_finished.
    h.barrier(dir.path(), 0);
    h.recorder()
        .open(spec(
            "stall",
            Layout::Mono,
            8000,
            dir.path().join("stall.wav"),
            false,
        ))
        .unwrap()
        .finish();
    let pooled = POOL_BLOCKS * 50; // frames the pool holds: 1 s blocks of 20 ms frames
    for f in 0..pooled + 100 {
        sink.push(&[f as i16 + 1; 160], &[]);
    }
    assert_eq!(sink.frames_dropped(), 100);
    // A paused frame that cannot be stored is silence anyway: not a dropped frame.
    sink.set_paused(true);
    sink.push(&[5; 160], &[]);
    sink.set_paused(false);
    assert_eq!(sink.frames_dropped(), 100);
    // Release the writer; the blocks come back and recording resumes.
    h.gate.send(()).unwrap();
    assert_eq!(h.next().call_uuid, "stall");
    // The blocks queued behind the stall go back to the pool only after on_finished returns:
    // wait until the writer has worked through them, or the next frames could find no block.
    h.barrier(dir.path(), 1);
    for _ in 0..10 {
        sink.push(&[-1; 160], &[]);
    }
    sink.finish();
    let info = h.next();
    assert_eq!(info.frames_dropped, 100);
    assert_eq!(info.duration_ms, (pooled as u64 + 100 + 1 + 10) * 20);
    let (_, samples) = read_wav(&path);
    assert_eq!(samples.len(), (pooled + 111) * 160);
    for (f, frame) in samples.chunks(160).enumerate() {
        let want = if f < pooled {
            f as i16 + 1
        } else if f < pooled + 101 {
            0
        } else {
            -1
        };
        assert!(frame.iter().all(|&s| s == want), "frame {f}");
    }
}

#[test]
fn dropping_a_sink_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(None);
    let path = dir.path().join("dropped.wav");
    {
        let mut sink = h
            .recorder()
            .open(spec("dropped", Layout::Stereo, 8000, path.clone(), false))
            .unwrap();
        sink.push(&[3; 160], &[4; 160]);
    }
    let info = h.next();
    assert_eq!(info.call_uuid, "dropped");
    assert_eq!(info.duration_ms, 20);
    assert_eq!(read_wav(&path).1, [3, 4].repeat(160));
    assert_eq!(h.recorder().open_recordings(), 0);
}

#[test]
fn shutdown_finishes_open_recordings_and_later_audio_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::start(None);
    let path = dir.path().join("open.wav");
    let mut sink = h
        .recorder()
        .open(spec("open", Layout::Mono, 8000, path.clone(), false))
        .unwrap();
    for _ in 0..60 {
        sink.push(&[9; 160], &[]);
    }
    assert_eq!(h.recorder().open_recordings(), 1);
    h.recorder.take().unwrap().shutdown();
    let info = h.next();
    assert_eq!(info.call_uuid, "open");
    // The full first block was queued before the shutdown; the partial second was not sent.
    assert_eq!(info.duration_ms, 1000);
    assert!(info.error.unwrap().contains("shut down"));
    assert_eq!(read_wav(&path).1, vec![9; 8000]);
    // The sink outlives its recorder harmlessly.
    for _ in 0..300 {
        sink.push(&[9; 160], &[]);
    }
    sink.finish();
    assert!(h.finished.try_recv().is_err());
}

#[test]
fn open_refuses_what_it_cannot_honour() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(None);
    let r = h.recorder();
    let p = |n: &str| dir.path().join(n);
    assert!(matches!(
        r.open(spec("e", Layout::Mono, 8000, p("e.wav.enc"), true)),
        Err(Error::NoMasterKey)
    ));
    for (rate, name, encrypt) in [
        (4000, "a.wav", false),
        (96000, "a.wav", false),
        (8000, "a.wav.enc", false),
        (8000, "a.raw", false),
        (8000, ".wav", false),
    ] {
        match r.open(spec("x", Layout::Mono, rate, p(name), encrypt)) {
            Err(Error::InvalidSpec(_)) => {}
            Err(e) => panic!("{rate} {name}: {e}"),
            Ok(_) => panic!("{rate} {name}: accepted"),
        }
    }
    let keyed = Harness::start(Some(key()));
    match keyed
        .recorder()
        .open(spec("x", Layout::Mono, 8000, p("a.wav"), true))
    {
        Err(Error::InvalidSpec(why)) => assert!(why.contains(".wav.enc"), "{why}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("an encrypted recording named .wav"),
    }
    assert_eq!(r.open_recordings(), 0);
}

#[test]
fn a_file_that_cannot_be_created_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(None);
    let taken = dir.path().join("taken.wav");
    std::fs::write(&taken, b"a previous call").unwrap();
    let mut sink = h
        .recorder()
        .open(spec("taken", Layout::Mono, 8000, taken.clone(), false))
        .unwrap();
    for _ in 0..120 {
        sink.push(&[1; 160], &[]);
    }
    sink.finish();
    let info = h.next();
    assert!(info.error.unwrap().contains("exists"));
    assert_eq!((info.bytes, info.duration_ms), (0, 0));
    assert_eq!(std::fs::read(&taken).unwrap(), b"a previous call");
    // The recorder carries on.
    let ok = dir.path().join("ok.wav");
    let mut sink = h
        .recorder()
        .open(spec("ok", Layout::Mono, 8000, ok.clone(), false))
        .unwrap();
    sink.push(&[1; 160], &[]);
    sink.finish();
    assert_eq!(h.next().error, None);
}

#[test]
fn encrypted_recording_decrypts_to_the_plain_recording_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(Some(key()));
    // 48 kHz stereo, 3 s: 576000 bytes of PCM, 8 full chunks and a short last one.
    let (plain, sealed) = record_pair(&h, dir.path(), Layout::Stereo, 48000, 150);
    let size = std::fs::metadata(&sealed).unwrap().len();
    assert_eq!(size, 91 + 576_000 + 9 * 16);
    assert!(is_encrypted(&sealed).unwrap());
    assert!(!is_encrypted(&plain).unwrap());
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"SYR").unwrap();
    assert!(!is_encrypted(&empty).unwrap());

    let out = dir.path().join("out.wav");
    decrypt(&sealed, &key(), &out).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&plain).unwrap());
    // The ciphertext does not contain the audio in the clear.
    let pcm = &std::fs::read(&plain).unwrap()[44..1044];
    let enc = std::fs::read(&sealed).unwrap();
    assert!(!enc.windows(pcm.len()).any(|w| w == pcm));

    // recover() of a finished file is the same as decrypt().
    let rec = dir.path().join("rec.wav");
    let r = recover(&sealed, &key(), &rec).unwrap();
    assert!(r.complete);
    assert_eq!(r.duration_ms, 3000);
    assert_eq!(std::fs::read(&rec).unwrap(), std::fs::read(&plain).unwrap());
}

#[test]
fn mono_encrypted_of_an_exact_number_of_chunks_ends_with_an_empty_last_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(Some(key()));
    // 8 kHz mono: 16000 bytes/s; 4096 frames of 16 samples = 131072 bytes = 2 chunks exactly.
    let sealed = dir.path().join("x.wav.enc");
    let plain = dir.path().join("x.wav");
    let mut a = h
        .recorder()
        .open(spec("a", Layout::Mono, 8000, plain.clone(), false))
        .unwrap();
    let mut b = h
        .recorder()
        .open(spec("b", Layout::Mono, 8000, sealed.clone(), true))
        .unwrap();
    for f in 0..4096usize {
        let x = tone(300.0, 8000, 5000.0, f, 16);
        a.push(&x, &[]);
        b.push(&x, &[]);
        if f % 256 == 255 {
            h.barrier(dir.path(), f);
        }
    }
    a.finish();
    b.finish();
    assert_eq!(h.next().call_uuid, "a");
    let info = h.next();
    assert!(info.encrypted);
    assert_eq!(info.bytes, 91 + 2 * (65536 + 16) + 16);
    assert_eq!(info.bytes, std::fs::metadata(&sealed).unwrap().len());
    let out = dir.path().join("o.wav");
    decrypt(&sealed, &key(), &out).unwrap();
    assert_eq!(std::fs::read(out).unwrap(), std::fs::read(plain).unwrap());
}

fn assert_refused(sealed: &Path, out: &Path, key: &MasterKey, what: &str) -> Error {
    let err = decrypt(sealed, key, out).expect_err(what);
    assert!(!out.exists(), "{what}: left an output file");
    // No temporary files are left behind either.
    let dir = out.parent().unwrap();
    let stray: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".decrypting"))
        .collect();
    assert!(stray.is_empty(), "{what}: {stray:?}");
    err
}

#[test]
fn any_altered_byte_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(Some(key()));
    let (_, sealed) = record_pair(&h, dir.path(), Layout::Stereo, 8000, 150);
    let original = std::fs::read(&sealed).unwrap();
    // 3 s of 8 kHz stereo = 96000 bytes: one full chunk and a last one of 30464 bytes.
    assert_eq!(original.len(), 91 + 65552 + 30464 + 16);
    let positions = [
        (0, "magic"),
        (5, "version"),
        (6, "channels"),
        (7, "bits"),
        (9, "sample rate"),
        (14, "chunk size"),
        (20, "key id"),
        (30, "key-wrap nonce"),
        (40, "STREAM nonce"),
        (50, "wrapped key"),
        (90, "wrapped key tag"),
        (91, "first chunk, first byte"),
        (91 + 30000, "middle of the first chunk"),
        (91 + 65551, "first chunk's tag"),
        (91 + 65552 + 100, "last chunk"),
        (original.len() - 1, "last byte"),
    ];
    let out = dir.path().join("out.wav");
    for (pos, what) in positions {
        for flip in [0x01u8, 0x80] {
            let mut bytes = original.clone();
            bytes[pos] ^= flip;
            std::fs::write(&sealed, &bytes).unwrap();
            let err = assert_refused(&sealed, &out, &key(), what);
            let expected = match pos {
                0..=4 => matches!(err, Error::NotEncrypted { .. }),
                5 => matches!(err, Error::UnsupportedVersion { found, .. } if found == 1 ^ flip),
                16..=23 => matches!(err, Error::WrongKey { .. }),
                _ => matches!(err, Error::Tampered { .. } | Error::Corrupt { .. }),
            };
            assert!(expected, "{what} (byte {pos}): {err}");
            // recover() is no looser about alterations that are not a torn end.
            if pos < 91 + 65552 {
                assert!(recover(&sealed, &key(), &out).is_err(), "{what}");
                assert!(!out.exists());
            }
        }
    }
    // Appended bytes are refused too.
    let mut longer = original.clone();
    longer.extend_from_slice(&[0; 5]);
    std::fs::write(&sealed, &longer).unwrap();
    assert_refused(&sealed, &out, &key(), "appended");
    std::fs::write(&sealed, &original).unwrap();
    decrypt(&sealed, &key(), &out).unwrap();
}

#[test]
fn truncation_is_refused_and_recover_gives_the_authentic_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(Some(key()));
    let (plain, sealed) = record_pair(&h, dir.path(), Layout::Stereo, 8000, 150);
    let original = std::fs::read(&sealed).unwrap();
    let (_, all) = read_wav(&plain);
    let out = dir.path().join("out.wav");
    let cut = dir.path().join("cut.wav.enc");
    // (length kept, whether the error must be Truncated rather than Tampered)
    let cuts = [
        (0, false),
        (3, false),
        (50, true),
        (91, true),
        (91 + 10, true),
        (91 + 65552, true),
        (91 + 65552 + 15, true),
        (91 + 65552 + 5000, false),
        (original.len() - 1, false),
    ];
    for (len, truncated) in cuts {
        std::fs::write(&cut, &original[..len]).unwrap();
        let err = assert_refused(&cut, &out, &key(), &format!("cut at {len}"));
        let expected = match len {
            0 | 3 => matches!(err, Error::NotEncrypted { .. }),
            _ if truncated => matches!(err, Error::Truncated { .. }),
            _ => matches!(err, Error::Tampered { .. }),
        };
        assert!(expected, "cut at {len}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("cut.wav.enc"), "{msg}");

        let recovered = recover(&cut, &key(), &out);
        if len < 91 {
            assert!(recovered.is_err(), "{len}");
            assert!(!out.exists());
            continue;
        }
        let r = recovered.unwrap();
        assert!(!r.complete);
        let (_, got) = read_wav(&out);
        // Only whole authenticated chunks come back: 65536 bytes = 16384 stereo frames.
        let chunks = if len >= 91 + 65552 { 1 } else { 0 };
        assert_eq!(got.len(), chunks * 32768, "cut at {len}");
        assert_eq!(got[..], all[..got.len()]);
        assert_eq!(r.duration_ms, chunks as u64 * 16384 * 1000 / 8000);
        std::fs::remove_file(&out).unwrap();
    }
}

#[test]
fn a_wrong_key_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(Some(key()));
    let (_, sealed) = record_pair(&h, dir.path(), Layout::Mono, 8000, 60);
    let out = dir.path().join("out.wav");
    let other = MasterKey::generate();
    let err = assert_refused(&sealed, &out, &other, "wrong key");
    match &err {
        Error::WrongKey {
            file_key_id,
            key_id,
            ..
        } => assert_ne!(file_key_id, key_id),
        e => panic!("{e}"),
    }
    assert!(err.to_string().contains("master key id"), "{err}");
    assert!(matches!(
        recover(&sealed, &other, &out),
        Err(Error::WrongKey { .. })
    ));
    // A plain WAV is not mistaken for an encrypted one.
    let plain = dir.path().join("pair.wav");
    assert!(matches!(
        decrypt(&plain, &key(), &out),
        Err(Error::NotEncrypted { .. })
    ));
    // Decrypting onto the input itself is refused before anything is written.
    assert!(decrypt(&sealed, &key(), &sealed).is_err());
    assert!(is_encrypted(&sealed).unwrap());
}

#[test]
fn recorder_without_a_key_still_records_plain() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::start(None, Box::new(|_| {})).unwrap();
    let mut sink = recorder
        .open(spec(
            "p",
            Layout::Mono,
            48000,
            dir.path().join("p.wav"),
            false,
        ))
        .unwrap();
    sink.push(&[1; 960], &[2; 960]);
    sink.finish();
    recorder.shutdown();
    assert_eq!(read_wav(&dir.path().join("p.wav")).1, vec![3; 960]);
}

#[test]
fn sinks_move_to_media_threads_and_the_recorder_is_shared() {
    fn send<T: Send>() {}
    fn sync<T: Send + Sync>() {}
    send::<switchyard_recording::RecordingSink>();
    sync::<Recorder>();
    sync::<MasterKey>();
    // And for real: a sink opened here records from another thread.
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(None);
    let mut sink = h
        .recorder()
        .open(spec(
            "moved",
            Layout::Mono,
            8000,
            dir.path().join("m.wav"),
            false,
        ))
        .unwrap();
    std::thread::spawn(move || {
        sink.push(&[5; 160], &[6; 160]);
        sink.finish();
    })
    .join()
    .unwrap();
    assert_eq!(h.next().duration_ms, 20);
    assert_eq!(read_wav(&dir.path().join("m.wav")).1, vec![11; 160]);
}
