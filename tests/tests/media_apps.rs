//! The switch's own media against real peers (issue 3): prompts it plays and then hangs up
//! on (9197 en, 9198 zh), a call-progress tone with its cadence (9199), music on hold (9664),
//! and a conference room (3000) that mixes each member everyone but themselves, across
//! codecs. The echo test (9196) lives in calls_baresip.rs.

use std::path::{Path, PathBuf};
use std::time::Duration;
use switchyard_e2e::media::{
    Heard, SILENCE_RMS, best_correlation, rms, tone_db, wait_conference, wait_wav_seconds,
    wav_seconds, wav_seconds_so_far,
};
use switchyard_e2e::slot::offset;
use switchyard_e2e::{Baresip, BaresipConfig, Daemon, sipp_caller, wait_until, workspace_dir};

const T: Duration = Duration::from_secs(10);

/// baresip 1.0 refuses a 401 holding any non-MD5 challenge (see calls_baresip.rs).
fn daemon() -> Daemon {
    Daemon::builder("basic")
        .set("auth.digest_algorithms", r#"["MD5"]"#)
        .start()
}

fn ua(d: &Daemon, user: &str, off: u16, hz: f64, codecs: &str) -> Baresip {
    Baresip::start(
        BaresipConfig::new(user, d.sip_port(), d.slot().port(off), hz, false).codecs(codecs),
    )
}

fn dial(d: &Daemon, ua: &mut Baresip, extension: &str) {
    ua.dial(&format!("sip:{extension}@127.0.0.1:{}", d.sip_port()));
    ua.wait_event("CALL_ESTABLISHED", T);
}

/// The recording of what `ua` hears in its (only) call, once baresip has opened it.
fn recording(ua: &Baresip) -> PathBuf {
    wait_until(
        T,
        &format!("a recording by baresip {}", ua.cfg.user),
        || ua.heard_wav().filter(|p| wav_seconds_so_far(p).is_some()),
        || ua.log(),
    )
}

fn prompt(lang: &str, name: &str) -> PathBuf {
    workspace_dir()
        .join("sounds")
        .join(lang)
        .join("8000")
        .join(format!("{name}.wav"))
}

/// 9197/9198 play "welcome" and "please-hold" (8 kHz set for G.711), then the switch hangs
/// up: baresip must hear exactly those prompts, in that language, and be hung up on.
fn playback_then_hangup(extension: &str, lang: &str, other_lang: &str) {
    let d = daemon();
    let mut a = ua(&d, "1000", offset::BARESIP_A, 1000.0, "pcmu");
    d.wait_registered("1000", 1, T);
    let files = |lang| [prompt(lang, "welcome"), prompt(lang, "please-hold")];
    let expected: f64 = files(lang).iter().map(|p| wav_seconds(p)).sum();

    dial(&d, &mut a, extension);
    // We never hang up: the CALL_CLOSED is the switch's BYE.
    a.wait_event("CALL_CLOSED", T);
    let cdrs = d.wait_cdrs(1, T);
    let cdr = &cdrs[0];
    assert_eq!(cdr.destination, extension, "{cdr:?}");
    assert_eq!(cdr.hangup_cause, "NORMAL_CLEARING", "{cdr:?}");
    assert_eq!(
        cdr.hangup_side.as_deref(),
        Some("system"),
        "the switch hung up: {cdr:?}"
    );
    let answered = cdr.answer_ms.expect("answered") as f64 / 1000.0;
    let talk = cdr.end_ms as f64 / 1000.0 - answered;
    assert!(
        (talk - expected).abs() <= 0.4,
        "the call lasts as long as the prompts ({expected:.3} s): {talk:.3} s"
    );

    let heard = Heard::read(&recording(&a));
    let level = rms(&heard.samples);
    assert!(
        level >= 0.02,
        "{extension}: the prompts are audible: rms {level:.4}"
    );
    let (from, to) = heard.loud_span().expect("not silent");
    // The switch waits for the phone's jitter buffer to play the end before its BYE: the
    // whole of the last prompt is heard (20 ms frames, leading/trailing fades of the prompts).
    assert!(
        (to - from - expected).abs() <= 0.1,
        "{extension}: the sound lasts as long as the prompts ({expected:.3} s): {from:.2}..{to:.2} s"
    );
    // The very prompts, not any sound: the recording matches them sample for sample (up to
    // G.711 noise), and does not match the other language's.
    let (mine, theirs) = (files(lang), files(other_lang));
    let reference = Heard::concat(&[&mine[0], &mine[1]]);
    let other = Heard::concat(&[&theirs[0], &theirs[1]]);
    let same = best_correlation(&heard.samples, &reference.samples, 1600);
    let different = best_correlation(&heard.samples, &other.samples, 1600);
    eprintln!(
        "{extension}: prompts {expected:.3} s, call {talk:.3} s, heard {:.3} s, loud {from:.2}..{to:.2} s, \
         rms {level:.3}, correlation {same:.3} ({other_lang}: {different:.3})",
        heard.seconds()
    );
    assert!(
        same >= 0.8,
        "{extension}: heard the {lang} prompts: correlation {same:.3}"
    );
    assert!(
        different <= 0.5,
        "{extension}: not the {other_lang} prompts: correlation {different:.3}"
    );
}

#[test]
fn playback_en_plays_the_prompts_then_the_switch_hangs_up() {
    playback_then_hangup("9197", "en", "zh");
}

#[test]
fn playback_zh_plays_the_prompts_then_the_switch_hangs_up() {
    playback_then_hangup("9198", "zh", "en");
}

/// The same with SIPp, which sends no RTP: the BYE comes from the end of the prompts, not
/// from the RTP timeout (10 s in the basic conf).
#[test]
fn playback_sipp_caller_gets_the_switch_bye() {
    let d = Daemon::start("basic");
    let expected: f64 = ["welcome", "please-hold"]
        .iter()
        .map(|n| wav_seconds(&prompt("en", n)))
        .sum();
    let mut uac = sipp_caller(
        &d,
        "uac_wait_bye",
        &[],
        "1000",
        "9197",
        &["-m", "1", "-recv_timeout", "15000", "-timeout", "20"],
    );
    uac.wait(Duration::from_secs(20))
        .assert_ok(1, &d.log_tail());
    let cdrs = d.wait_cdrs(1, T);
    let cdr = &cdrs[0];
    assert_eq!(cdr.hangup_cause, "NORMAL_CLEARING", "{cdr:?}");
    assert_eq!(cdr.hangup_side.as_deref(), Some("system"), "{cdr:?}");
    let talk = (cdr.end_ms - cdr.answer_ms.expect("answered")) as f64 / 1000.0;
    eprintln!("9197 via SIPp: prompts {expected:.3} s, BYE after {talk:.3} s");
    assert!(
        (talk - expected).abs() <= 0.4,
        "BYE after the prompts ({expected:.3} s), not the RTP timeout: {talk:.3} s"
    );
    assert!(cdr.rtp_a_out > 0, "the switch sent the prompts: {cdr:?}");
}

/// 9199: the US ringback, 440 + 480 Hz, 2 s on, 4 s off (ITU-T E.180 Suppl. 2), repeated.
#[test]
fn tone_9199_is_the_us_ringback_with_its_cadence() {
    let d = daemon();
    let mut a = ua(&d, "1000", offset::BARESIP_A, 1000.0, "pcmu");
    d.wait_registered("1000", 1, T);
    dial(&d, &mut a, "9199");
    let rec = recording(&a);
    // One whole cycle and the start of the next.
    wait_wav_seconds(&rec, 7.0, Duration::from_secs(12));
    a.hangup();
    a.wait_event("CALL_CLOSED", T);
    let heard = Heard::read(&rec);
    let runs = heard.cadence();
    eprintln!("9199 cadence (loud, start s, length s): {runs:?}");
    let loud: Vec<&(bool, f64, f64)> = runs.iter().filter(|r| r.0).collect();
    assert!(loud.len() >= 2, "two bursts of tone in 7 s: {runs:?}");
    let first = runs.iter().position(|r| r.0).expect("a burst");
    let (on, off) = (runs[first].2, runs.get(first + 1).map_or(0.0, |r| r.2));
    assert!((on - 2.0).abs() <= 0.25, "2 s of tone: {runs:?}");
    assert!((off - 4.0).abs() <= 0.25, "then 4 s of silence: {runs:?}");
    assert!(
        runs.get(first + 2).is_some_and(|r| r.0),
        "then tone again: {runs:?}"
    );
    let (start, len) = (runs[first].1, runs[first].2);
    let burst = heard.window(start + 0.1, start + len - 0.1);
    let db = |f| tone_db(burst, heard.rate, f);
    let (p440, p480, p1000, p620) = (db(440.0), db(480.0), db(1000.0), db(620.0));
    eprintln!(
        "9199 burst: 440 Hz {p440:.1} dB, 480 Hz {p480:.1} dB, 620 Hz {p620:.1} dB, 1000 Hz {p1000:.1} dB"
    );
    for (f, p) in [(440, p440), (480, p480)] {
        assert!(p >= -30.0, "{f} Hz present: {p:.1} dB");
        assert!(
            p >= p1000 + 30.0 && p >= p620 + 30.0,
            "{f} Hz dominates: {p:.1} dB"
        );
    }
    let gap = &runs[first + 1];
    let quiet = rms(heard.window(gap.1 + 0.1, gap.1 + gap.2 - 0.1));
    assert!(
        quiet < SILENCE_RMS,
        "the off period is silent: rms {quiet:.4}"
    );
}

/// 9664: music on hold, heard without gaps for several seconds.
#[test]
fn moh_9664_plays_music_continuously() {
    let d = daemon();
    let mut a = ua(&d, "1000", offset::BARESIP_A, 1000.0, "pcmu");
    d.wait_registered("1000", 1, T);
    dial(&d, &mut a, "9664");
    let rec = recording(&a);
    wait_wav_seconds(&rec, 5.0, T);
    a.hangup();
    a.wait_event("CALL_CLOSED", T);
    let heard = Heard::read(&rec);
    // Skip the music's 0.2 s fade-in, and the end where the call is torn down.
    let body = Heard {
        samples: heard.window(0.3, heard.seconds() - 0.2).to_vec(),
        rate: heard.rate,
    };
    let frames = body.frame_rms(0.25);
    let silent = frames.iter().filter(|&&r| r < SILENCE_RMS).count();
    let music = Heard::read(&workspace_dir().join("sounds/music/8000/moh.wav"));
    let same = best_correlation(heard.window(0.0, 3.0), music.window(0.0, 3.2), 1600);
    eprintln!(
        "9664: {:.2} s heard, rms {:.3}, {silent}/{} quiet 250 ms frames, correlation with moh.wav {same:.3}",
        heard.seconds(),
        rms(&body.samples),
        frames.len()
    );
    assert!(
        body.seconds() >= 4.0,
        "several seconds: {:.2} s",
        body.seconds()
    );
    assert_eq!(silent, 0, "no gap in the music: {frames:?}");
    assert!(same >= 0.8, "it is moh.wav: correlation {same:.3}");
}

/// Tone powers (dB) at the three members' frequencies over `from..to` s of `path`.
fn powers(path: &Path, from: f64, to: f64) -> [f64; 3] {
    let heard = Heard::read(path);
    let w = heard.window(from, to);
    assert!(
        w.len() as f64 >= 0.5 * f64::from(heard.rate),
        "{}: {from:.2}..{to:.2} s is not in the {:.2} s recording",
        path.display(),
        heard.seconds()
    );
    TONES.map(|f| tone_db(w, heard.rate, f))
}

const TONES: [f64; 3] = [440.0, 1000.0, 2000.0];

/// Asserts that member `own` hears the members in `others` and not itself: each other
/// tone present, its own at least 20 dB below the weakest of them.
fn assert_mix(who: &str, p: [f64; 3], own: usize, others: &[usize], absent: &[usize]) {
    let weakest = others.iter().map(|&i| p[i]).fold(f64::MAX, f64::min);
    assert!(
        weakest >= -30.0,
        "{who} hears the others: {p:?} dB at {TONES:?} Hz"
    );
    for &i in std::iter::once(&own).chain(absent) {
        assert!(
            p[i] <= weakest - 20.0,
            "{who}: {} Hz must be 20 dB below the others: {p:?} dB at {TONES:?} Hz",
            TONES[i]
        );
    }
}

/// Three members in room 3000, two in PCMU and one in Opus (the mixer decodes everyone to
/// its own rate): each hears the two others and not itself; after one leaves the other two
/// still hear each other; the room closes with its last member.
#[test]
fn conference_3000_mixes_everyone_but_oneself_across_codecs() {
    let d = daemon();
    let specs = [
        ("1000", offset::BARESIP_A, "pcmu"),
        ("1001", offset::BARESIP_B, "opus/48000/2"),
        ("1002", offset::BARESIP_C, "pcmu"),
    ];
    let mut uas: Vec<Baresip> = specs
        .iter()
        .zip(TONES)
        .map(|(&(user, off, codecs), hz)| ua(&d, user, off, hz, codecs))
        .collect();
    for (user, ..) in specs {
        d.wait_registered(user, 1, T);
    }
    for (n, ua) in uas.iter_mut().enumerate() {
        dial(&d, ua, "3000");
        wait_conference(&d, "3000", n + 1, T);
    }
    let recs: Vec<PathBuf> = uas.iter().map(recording).collect();
    // Where "all three in" falls in each recording (they grow in real time).
    let all_in: Vec<f64> = recs
        .iter()
        .map(|r| wav_seconds_so_far(r).expect("recording"))
        .collect();
    for (rec, at) in recs.iter().zip(&all_in) {
        wait_wav_seconds(rec, at + 2.0, T);
    }
    let channels = d.ctl_ok("show channels");
    assert!(
        channels.contains("opus/48000") && channels.contains("PCMU"),
        "the room bridges Opus and PCMU members:\n{channels}"
    );

    uas[2].hangup();
    uas[2].wait_event("CALL_CLOSED", T);
    wait_conference(&d, "3000", 2, T);
    let two_left: Vec<f64> = recs[..2]
        .iter()
        .map(|r| wav_seconds_so_far(r).expect("recording"))
        .collect();
    for (rec, at) in recs.iter().zip(&two_left) {
        wait_wav_seconds(rec, at + 1.5, T);
    }
    for ua in &mut uas[..2] {
        ua.hangup();
        ua.wait_event("CALL_CLOSED", T);
    }
    wait_conference(&d, "3000", 0, T);
    assert!(
        d.ctl_ok("show conferences").starts_with("0 conferences"),
        "{}",
        d.ctl_ok("show conferences")
    );
    d.wait_calls(0, T);

    // 0.5 s after the last join (its join beeps are 600/800 Hz, over within 0.25 s).
    for (i, rec) in recs.iter().enumerate() {
        let p = powers(rec, all_in[i] + 0.5, all_in[i] + 1.9);
        eprintln!(
            "3000 all in, {} ({}) hears {p:.1?} dB at {TONES:?} Hz",
            specs[i].0, specs[i].2
        );
        let others: Vec<usize> = (0..3).filter(|&j| j != i).collect();
        assert_mix(specs[i].0, p, i, &others, &[]);
    }
    for (i, rec) in recs[..2].iter().enumerate() {
        let p = powers(rec, two_left[i] + 0.5, two_left[i] + 1.4);
        eprintln!(
            "3000 after 1002 left, {} hears {p:.1?} dB at {TONES:?} Hz",
            specs[i].0
        );
        assert_mix(specs[i].0, p, i, &[1 - i], &[2]);
    }
}
