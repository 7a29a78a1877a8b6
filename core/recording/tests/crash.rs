//! What a `kill -9` of the daemon leaves: the test re-executes its own binary as a child that
//! records 3 s to a plain and an encrypted file, waits until the recorder thread has written
//! every block it was handed, says so and waits to be killed with SIGKILL. The parent then
//! reads what is on disk.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{Harness, WAIT, key, read_wav, spec, tone};
use switchyard_recording::{Error, Layout, decrypt, recover};

const CHILD_ENV: &str = "SWITCHYARD_RECORDING_KILL9_CHILD_DIR";

fn frame(f: usize) -> (Vec<i16>, Vec<i16>) {
    (
        tone(440.0, 8000, 9000.0, f, 160),
        tone(700.0, 8000, 7000.0, f, 160),
    )
}

#[test]
fn a_killed_recorder_leaves_a_playable_wav_and_a_recoverable_sealed_file() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let dir = std::path::PathBuf::from(dir);
        let h = Harness::start(Some(key()));
        let mut plain = h
            .recorder()
            .open(spec(
                "plain",
                Layout::Stereo,
                8000,
                dir.join("c.wav"),
                false,
            ))
            .unwrap();
        let mut sealed = h
            .recorder()
            .open(spec(
                "sealed",
                Layout::Stereo,
                8000,
                dir.join("c.wav.enc"),
                true,
            ))
            .unwrap();
        // 3.5 s: three full blocks are handed over; the last half second stays in the sinks.
        for f in 0..175 {
            let (caller, callee) = frame(f);
            plain.push(&caller, &callee);
            sealed.push(&caller, &callee);
            if f % 100 == 99 {
                h.barrier(&dir, f);
            }
        }
        h.barrier(&dir, 1000);
        println!("written");
        use std::io::Write;
        std::io::stdout().flush().unwrap();
        // Hold the recordings open until SIGKILL: never finish, never finalize.
        let (_keep, never) = std::sync::mpsc::channel::<()>();
        let _ = never.recv();
        unreachable!("the parent kills us");
    }

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_killed_recorder_leaves_a_playable_wav_and_a_recoverable_sealed_file",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (line_tx, line_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        match line_rx.recv_timeout(WAIT) {
            // libtest prints "test name ... " without a newline before the body prints.
            Ok(line) if line.trim_end().ends_with("written") => break,
            Ok(_) => continue,
            Err(e) => {
                let _ = child.kill();
                panic!("child never wrote: {e}");
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
    }

    let want: Vec<i16> = (0..175)
        .flat_map(|f| {
            let (a, b) = frame(f);
            a.into_iter()
                .zip(b)
                .flat_map(|(l, r)| [l, r])
                .collect::<Vec<_>>()
        })
        .collect();

    // The plain WAV's header was checkpointed after each block: 3 s are there and valid.
    let (wav, got) = read_wav(&dir.path().join("c.wav"));
    assert_eq!((wav.channels, wav.sample_rate), (2, 8000));
    assert_eq!(got.len(), 3 * 16000);
    assert_eq!(got[..], want[..got.len()]);

    // The sealed file has no last chunk: decrypt refuses it, recover returns the full chunks
    // (96000 bytes written, one 65536-byte chunk sealed: 16384 frames).
    let sealed = dir.path().join("c.wav.enc");
    let out = dir.path().join("out.wav");
    assert!(matches!(
        decrypt(&sealed, &key(), &out),
        Err(Error::Truncated { .. })
    ));
    assert!(!out.exists());
    let r = recover(&sealed, &key(), &out).unwrap();
    assert!(!r.complete);
    assert_eq!(r.duration_ms, 16384 * 1000 / 8000);
    let (_, got) = read_wav(&out);
    assert_eq!(got.len(), 16384 * 2);
    assert_eq!(got[..], want[..got.len()]);
}
