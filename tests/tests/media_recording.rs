//! Call recording against real phones: a baresip call recorded in stereo holds the caller's
//! tone on the left and the callee's on the right; a pause writes silence; an encrypted
//! recording decrypts with `switchyard recording decrypt` to the same tones, and a tampered
//! one is refused without writing anything.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use switchyard_e2e::slot::offset;
use switchyard_e2e::{Baresip, BaresipConfig, Daemon, goertzel, poll_until};

const T: Duration = Duration::from_secs(15);

fn phones(d: &Daemon) -> (Baresip, Baresip) {
    let a = Baresip::start(BaresipConfig::new(
        "1000",
        d.sip_port(),
        d.slot().port(offset::BARESIP_A),
        1000.0,
        false,
    ));
    let b = Baresip::start(BaresipConfig::new(
        "1001",
        d.sip_port(),
        d.slot().port(offset::BARESIP_B),
        1500.0,
        true,
    ));
    d.wait_registered("1000", 1, T);
    d.wait_registered("1001", 1, T);
    (a, b)
}

/// The path of the finished recording of the only call, from the `recording` table.
fn wait_recording_row(d: &Daemon) -> (PathBuf, i64) {
    let db = d.db_path();
    poll_until(T, || {
        let conn =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .ok()?;
        conn.query_row(
            "SELECT path, paused_ms FROM recording WHERE error IS NULL",
            [],
            |r| Ok((PathBuf::from(r.get::<_, String>(0)?), r.get::<_, i64>(1)?)),
        )
        .ok()
    })
    .unwrap_or_else(|| panic!("no recording row\n{}", d.log_tail()))
}

/// One channel of a stereo WAV, as f64 in [-1, 1].
fn channel(path: &Path, index: usize) -> (Vec<f64>, f64) {
    let mut reader = hound::WavReader::open(path).expect("a WAV");
    let spec = reader.spec();
    assert_eq!(spec.channels, 2, "stereo: caller left, callee right");
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let channel = samples
        .chunks(2)
        .map(|frame| f64::from(frame[index]) / 32768.0)
        .collect();
    (channel, f64::from(spec.sample_rate))
}

/// Asserts `freq` dominates 1 s of the channel, centred a quarter into the file (after call
/// setup, before the pause of the pause test), over the other test tone.
fn assert_channel_tone(path: &Path, index: usize, freq: f64, other: f64, what: &str) {
    let (samples, rate) = channel(path, index);
    assert!(
        samples.len() as f64 > 3.5 * rate,
        "{what}: at least 3.5 s: {}",
        samples.len()
    );
    let mid = (samples.len() / 4).max(rate as usize);
    let window = &samples[mid - (rate as usize / 2)..mid + (rate as usize / 2)];
    let rms = (window.iter().map(|s| s * s).sum::<f64>() / window.len() as f64).sqrt();
    let want = goertzel(window, rate, freq);
    let unwanted = goertzel(window, rate, other);
    assert!(rms > 0.01, "{what}: silent (rms {rms})");
    assert!(
        want > 100.0 * unwanted,
        "{what}: {freq} Hz should dominate {other} Hz by 20 dB: {want} vs {unwanted}"
    );
}

/// Longest run of digital silence (|s| < 0.001) in a channel, in seconds.
fn longest_silence(path: &Path, index: usize) -> f64 {
    let (samples, rate) = channel(path, index);
    let (mut best, mut run) = (0usize, 0usize);
    for s in samples {
        run = if s.abs() < 0.001 { run + 1 } else { 0 };
        best = best.max(run);
    }
    best as f64 / rate
}

fn call(d: &Daemon, a: &mut Baresip, b: &mut Baresip, pause: bool) {
    a.dial(&format!("sip:1001@127.0.0.1:{}", d.sip_port()));
    a.wait_event("CALL_ESTABLISHED", T);
    b.wait_event("CALL_ESTABLISHED", T);
    let heard = b.wait_new_recording(&[], 2, T);
    if pause {
        let uuid = d
            .ctl_ok("show calls")
            .lines()
            .nth(1)
            .and_then(|l| l.split_whitespace().next())
            .expect("the call's uuid")
            .to_owned();
        d.ctl_ok(&format!("record pause {uuid}"));
        // About 1.5 s paused, measured by what the callee keeps hearing.
        wait_audio_seconds(&heard, 3.5);
        d.ctl_ok(&format!("record resume {uuid}"));
        wait_audio_seconds(&heard, 5.5);
    } else {
        wait_audio_seconds(&heard, 4.0);
    }
    a.hangup();
    a.wait_event("CALL_CLOSED", T);
    b.wait_event("CALL_CLOSED", T);
}

/// Waits until baresip's recording of what it heard holds `secs` seconds (8 kHz 16-bit).
fn wait_audio_seconds(wav: &Path, secs: f64) {
    let bytes = 44 + (secs * 16000.0) as u64;
    poll_until(T, || {
        (wav.metadata().map(|m| m.len()).unwrap_or(0) >= bytes).then_some(())
    })
    .unwrap_or_else(|| panic!("{} never reached {secs} s", wav.display()));
}

#[test]
fn a_stereo_recording_holds_each_party_on_its_own_channel_and_pauses_as_silence() {
    // tests/conf/recording loads mod_recorder, which records every bridged call in stereo.
    let d = Daemon::builder("recording")
        .set("auth.digest_algorithms", r#"["MD5"]"#)
        .start();
    let (mut a, mut b) = phones(&d);
    call(&d, &mut a, &mut b, true);
    let (path, paused_ms) = wait_recording_row(&d);
    assert!(path.starts_with(d.data_dir()), "{}", path.display());
    assert_eq!(path.extension().unwrap(), "wav");
    assert_channel_tone(&path, 0, 1000.0, 1500.0, "left: the caller's 1 kHz");
    assert_channel_tone(&path, 1, 1500.0, 1000.0, "right: the callee's 1.5 kHz");
    assert!(
        (1000..3000).contains(&paused_ms),
        "about 1.5 s paused: {paused_ms} ms"
    );
    for index in [0, 1] {
        let silence = longest_silence(&path, index);
        assert!(
            silence * 1000.0 >= paused_ms as f64 - 100.0,
            "the pause is silence on channel {index}: {silence} s vs {paused_ms} ms"
        );
    }
    let cdrs = d.wait_cdrs(1, T);
    let quality = d.cdr_quality(&cdrs[0].uuid);
    assert_eq!(
        quality.recording_path.as_deref(),
        Some(path.display().to_string().as_str())
    );
    assert_eq!(
        quality.transcoded,
        Some(false),
        "recording taps a relayed call"
    );
}

#[test]
fn an_encrypted_recording_decrypts_to_the_tones_and_a_tampered_one_is_refused() {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("recording.key");
    let bin = switchyard_e2e::daemon::switchyard_bin();
    let keygen = Command::new(&bin)
        .args(["recording", "keygen", "--key-file"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{keygen:?}");
    // tests/conf/recording loads mod_recorder, which records every bridged call in stereo.
    let d = Daemon::builder("recording")
        .set("auth.digest_algorithms", r#"["MD5"]"#)
        .set("recording.encrypt", "true")
        .set(
            "recording.key_file",
            &format!("{:?}", key.display().to_string()),
        )
        .start();
    let (mut a, mut b) = phones(&d);
    call(&d, &mut a, &mut b, false);
    let (path, _) = wait_recording_row(&d);
    assert!(
        path.to_string_lossy().ends_with(".wav.enc"),
        "{}",
        path.display()
    );
    assert!(
        hound::WavReader::open(&path).is_err(),
        "the file at rest is not a readable WAV"
    );

    let out = keys.path().join("call.wav");
    let decrypt = |input: &Path, output: &Path| {
        Command::new(&bin)
            .args(["recording", "decrypt"])
            .arg(input)
            .arg("-o")
            .arg(output)
            .arg("--key-file")
            .arg(&key)
            .output()
            .unwrap()
    };
    let done = decrypt(&path, &out);
    assert!(done.status.success(), "{done:?}");
    assert_channel_tone(&out, 0, 1000.0, 1500.0, "decrypted left: the caller");
    assert_channel_tone(&out, 1, 1500.0, 1000.0, "decrypted right: the callee");

    // One flipped byte in the middle of the audio: refused, and nothing written.
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    let tampered = keys.path().join("tampered.wav.enc");
    std::fs::write(&tampered, bytes).unwrap();
    let refused_out = keys.path().join("tampered.wav");
    let refused = decrypt(&tampered, &refused_out);
    assert!(!refused.status.success(), "a tampered file is refused");
    let message = String::from_utf8_lossy(&refused.stderr).to_lowercase();
    assert!(
        message.contains("tamper") || message.contains("authentic"),
        "the error says why: {message}"
    );
    assert!(!refused_out.exists(), "no partial output");
}

/// With automatic recording off, `record start <uuid>` on a relayed call taps its legs and
/// records it from then on; `record stop` ends the file, which stays in the CDR.
#[test]
fn the_console_records_a_relayed_call_on_demand() {
    let d = Daemon::builder("basic")
        .set("auth.digest_algorithms", r#"["MD5"]"#)
        .start();
    let (mut a, mut b) = phones(&d);
    a.dial(&format!("sip:1001@127.0.0.1:{}", d.sip_port()));
    a.wait_event("CALL_ESTABLISHED", T);
    b.wait_event("CALL_ESTABLISHED", T);
    let heard = b.wait_new_recording(&[], 1, T);
    let uuid = d
        .ctl_ok("show calls")
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("the call's uuid")
        .to_owned();
    assert!(
        d.ctl(&format!("record pause {uuid}")).is_err(),
        "nothing to pause before a recording starts"
    );
    let started = d.ctl_ok(&format!("record start {uuid}"));
    assert!(started.contains(".wav"), "{started}");
    wait_audio_seconds(&heard, 6.0);
    d.ctl_ok(&format!("record stop {uuid}"));
    a.hangup();
    a.wait_event("CALL_CLOSED", T);
    b.wait_event("CALL_CLOSED", T);
    let (path, _) = wait_recording_row(&d);
    assert_channel_tone(&path, 0, 1000.0, 1500.0, "left: the caller's 1 kHz");
    assert_channel_tone(&path, 1, 1500.0, 1000.0, "right: the callee's 1.5 kHz");
    let cdrs = d.wait_cdrs(1, T);
    let quality = d.cdr_quality(&cdrs[0].uuid);
    assert_eq!(
        quality.recording_path.as_deref(),
        Some(path.display().to_string().as_str()),
        "the stopped recording stays in the CDR"
    );
    assert_eq!(quality.transcoded, Some(false), "still a relay");
}

/// The recording rows so far: (call uuid, path).
fn recording_rows(d: &Daemon) -> Vec<(String, String)> {
    let Ok(conn) = rusqlite::Connection::open_with_flags(
        d.db_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return Vec::new();
    };
    let Ok(mut statement) = conn.prepare("SELECT call_uuid, path FROM recording") else {
        return Vec::new();
    };
    statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// mod_recorder on demand: a call whose plan runs `record_session mono` before its bridge is
/// recorded (mono), a call straight to the user is not.
#[test]
fn on_demand_the_dialplan_asks_and_only_that_call_is_recorded() {
    let conf = tempfile::tempdir().unwrap();
    switchyard_e2e::daemon::copy_tree(
        &switchyard_e2e::e2e_dir().join("conf").join("recording"),
        conf.path(),
        &|t| {
            let t = t.replace("mode = \"all\"", "mode = \"on-demand\"");
            t.replace(
                "  </context>",
                "    <extension name=\"recorded\">\
                 <condition field=\"destination_number\" expression=\"^5860$\">\
                 <action application=\"record_session\" data=\"mono\"/>\
                 <action application=\"bridge\" data=\"user/1001\"/>\
                 </condition></extension>\n  </context>",
            )
        },
    );
    let d = Daemon::builder(conf.path().to_str().unwrap()).start();
    let mut uas = switchyard_e2e::sipp_callee(&d, "uas_echo", "1001", &["-m", "2"]);
    d.wait_registered("1001", 1, T);
    for destination in ["1001", "5860"] {
        let mut uac = switchyard_e2e::sipp_caller(
            &d,
            "uac",
            &[],
            "1000",
            destination,
            &["-m", "1", "-d", "1500", "-timeout", "30"],
        );
        let outcome = uac.wait(T);
        assert_eq!(outcome.code, Some(0), "{}", outcome.report);
    }
    uas.wait(T);
    let cdrs = d.wait_cdrs(2, T);
    let recorded = cdrs
        .iter()
        .find(|c| c.destination == "5860")
        .expect("the 5860 call's CDR");
    let rows = poll_until(T, || {
        let rows = recording_rows(&d);
        (!rows.is_empty()).then_some(rows)
    })
    .unwrap_or_else(|| panic!("no recording\n{}", d.log_tail()));
    assert_eq!(rows.len(), 1, "only the call that asked: {rows:?}");
    assert_eq!(rows[0].0, recorded.uuid);
    let spec = hound::WavReader::open(&rows[0].1).expect("a WAV").spec();
    assert_eq!(spec.channels, 1, "record_session mono");
}
