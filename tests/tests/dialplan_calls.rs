//! The dialplan driving real calls (issue 4), with the 59xx extensions of
//! tests/conf/basic/dialplan/engine-tests.xml: an IVR (5940) that answers, collects one
//! digit and transfers by it (1: the English greeting 9197; 3: a bridge to user 1001, whose
//! leg is connected to the caller leg we already terminate), and `reload dialplan` run
//! again and again, once with a broken plan, while SIPp keeps 50 calls up through 5950.

use std::time::Duration;
use switchyard_e2e::daemon::read_cdrs;
use switchyard_e2e::media::{
    Heard, SILENCE_RMS, best_correlation, rms, tone_db, wait_wav_seconds, wav_seconds,
    wav_seconds_so_far,
};
use switchyard_e2e::slot::offset;
use switchyard_e2e::{
    Baresip, BaresipConfig, Daemon, analyze_wav, sipp_callee, sipp_caller, wait_until,
    workspace_dir,
};

const T: Duration = Duration::from_secs(10);

/// baresip 1.0 refuses a 401 holding any non-MD5 challenge (see calls_baresip.rs).
fn daemon() -> Daemon {
    Daemon::builder("basic")
        .set("auth.digest_algorithms", r#"["MD5"]"#)
        .start()
}

fn ua(d: &Daemon, user: &str, off: u16, hz: f64, auto_answer: bool) -> Baresip {
    Baresip::start(BaresipConfig::new(
        user,
        d.sip_port(),
        d.slot().port(off),
        hz,
        auto_answer,
    ))
}

fn prompt(name: &str) -> std::path::PathBuf {
    workspace_dir()
        .join("sounds/en/8000")
        .join(format!("{name}.wav"))
}

fn wait_log(d: &Daemon, parts: &[&str]) {
    wait_until(
        T,
        &format!("a log line with {parts:?}"),
        || (!d.log_lines_with(parts).is_empty()).then_some(()),
        || d.log_tail(),
    );
}

/// baresip dials 5940, hears the start of the IVR's prompt, and sends `digit`.
fn into_the_ivr(d: &Daemon, caller: &mut Baresip, digit: &str) -> std::path::PathBuf {
    caller.dial(&format!("sip:5940@127.0.0.1:{}", d.sip_port()));
    caller.wait_event("CALL_ESTABLISHED", T);
    let rec = wait_until(
        T,
        "baresip's recording of the IVR",
        || {
            caller
                .heard_wav()
                .filter(|p| wav_seconds_so_far(p).is_some())
        },
        || caller.log(),
    );
    // The prompt is playing: the collection is waiting for the digit.
    wait_wav_seconds(&rec, 0.5, T);
    caller.send_digits(digit);
    wait_log(d, &["digits collected", &format!("digits={digit}")]);
    rec
}

/// Digit 1: 5941 transfers on to 9197, which plays "welcome" and "please-hold" and hangs up.
#[test]
fn ivr_digit_1_transfers_to_the_english_greeting() {
    let d = daemon();
    let mut a = ua(&d, "1000", offset::BARESIP_A, 1000.0, false);
    d.wait_registered("1000", 1, T);
    let rec = into_the_ivr(&d, &mut a, "1");
    // We never hang up: the CALL_CLOSED is the switch's BYE after the greeting.
    a.wait_event("CALL_CLOSED", Duration::from_secs(15));
    for extension in ["5941", "9197"] {
        assert!(
            !d.log_lines_with(&["transfer", &format!("extension={extension}")])
                .is_empty(),
            "the transfer to {extension} is logged\n{}",
            d.log_tail()
        );
    }
    let cdrs = d.wait_cdrs(1, T);
    let cdr = &cdrs[0];
    assert_eq!(cdr.hangup_cause, "NORMAL_CLEARING", "{cdr:?}");
    assert_eq!(cdr.hangup_side.as_deref(), Some("system"), "{cdr:?}");
    assert!(cdr.answer_ms.is_some(), "answered by the IVR: {cdr:?}");

    // The last sound of the call is the greeting, whole: it matches the prompts.
    let greeting = Heard::concat(&[&prompt("welcome"), &prompt("please-hold")]);
    let expected = wav_seconds(&prompt("welcome")) + wav_seconds(&prompt("please-hold"));
    let heard = Heard::read(&rec);
    let (_, end) = heard.loud_span().expect("the caller heard something");
    let tail = heard.window(end - expected - 0.25, end + 0.1);
    let same = best_correlation(tail, &greeting.samples, 4000);
    eprintln!(
        "IVR digit 1: heard {:.2} s, loud until {end:.2} s, greeting correlation {same:.3}",
        heard.seconds()
    );
    assert!(
        same >= 0.8,
        "the greeting of 9197 is heard after the IVR: correlation {same:.3}"
    );
    d.wait_calls(0, T);
}

/// Digit 3: 5943 bridges to 1001 (a baresip that answers). The caller was answered by the
/// IVR, so the callee leg is connected to our terminated caller leg, and each phone must
/// hear the other's tone.
#[test]
fn ivr_digit_3_bridges_to_a_phone_and_tones_cross() {
    let d = daemon();
    let mut a = ua(&d, "1000", offset::BARESIP_A, 1000.0, false);
    let mut b = ua(&d, "1001", offset::BARESIP_B, 1500.0, true);
    d.wait_registered("1000", 1, T);
    d.wait_registered("1001", 1, T);
    let a_rec = into_the_ivr(&d, &mut a, "3");
    b.wait_event("CALL_ESTABLISHED", T);
    wait_log(&d, &["connecting to our caller leg"]);
    let b_rec = b.wait_new_recording(&[], 3, T);
    a.hangup();
    a.wait_event("CALL_CLOSED", T);
    b.wait_event("CALL_CLOSED", T);

    analyze_wav(&b_rec).assert_tone(1000.0, "the callee hears the caller's 1 kHz");
    // The caller's recording holds the prompt, ringback, then the callee: judge its last 2 s.
    let heard = Heard::read(&a_rec);
    let end = heard.seconds() - 0.3;
    let window = heard.window(end - 2.0, end);
    let (p1500, p1000, p440) = (
        tone_db(window, heard.rate, 1500.0),
        tone_db(window, heard.rate, 1000.0),
        tone_db(window, heard.rate, 440.0),
    );
    eprintln!(
        "IVR digit 3: caller's last 2 s: rms {:.3}, 1500 Hz {p1500:.1} dB, 1000 Hz {p1000:.1} dB, 440 Hz {p440:.1} dB",
        rms(window)
    );
    assert!(rms(window) > SILENCE_RMS, "the caller hears the callee");
    assert!(
        p1500 >= p1000 + 20.0 && p1500 >= p440 + 20.0,
        "the caller hears the callee's 1.5 kHz, not its own tone or ringback"
    );

    let cdrs = d.wait_cdrs(1, T);
    let cdr = &cdrs[0];
    assert_eq!(cdr.hangup_cause, "NORMAL_CLEARING", "{cdr:?}");
    assert_eq!(cdr.callee, "1001", "{cdr:?}");
    assert!(cdr.rtp_b_in > 0 && cdr.rtp_b_out > 0, "{cdr:?}");
    d.wait_calls(0, T);
}

/// 100 calls, 50 at a time, each held 3 s, from a SIPp caller through 5950 (`bridge
/// user/1001`) to a SIPp callee; meanwhile the console reloads the plan several times, once
/// with a broken engine-tests.xml (refused with file:line, the plan in force keeps routing
/// new calls), then with the file restored. Every call succeeds and ends NORMAL_CLEARING.
#[test]
fn reload_under_load_never_drops_a_call() {
    let d = Daemon::start("basic");
    let mut uas = sipp_callee(&d, "uas_echo", "1001", &["-m", "100"]);
    d.wait_registered("1001", 1, T);
    let mut uac = sipp_caller(
        &d,
        "uac",
        &[],
        "1000",
        "5950",
        switchyard_e2e::LOAD_50_CONCURRENT,
    );
    let cdrs = || read_cdrs(&d.db_path()).map_or(0, |c| c.len());
    let new_calls = || d.log_lines_with(&["new call", "destination=5950"]).len();
    let under_load = |what: &str| {
        let calls = d.call_count();
        assert!(calls >= 10, "{what}: calls are up ({calls})");
    };
    wait_until(
        T,
        "40 calls up",
        || (d.call_count() >= 40).then_some(()),
        || d.log_tail(),
    );
    let file = d.conf_dir().join("dialplan/engine-tests.xml");
    let good = std::fs::read_to_string(&file).expect("the plan file");
    let mut reloads = Vec::new();
    for round in 0..2 {
        under_load(&format!("reload {round}"));
        reloads.push(d.ctl_ok("reload dialplan"));
        let seen = new_calls();
        wait_until(
            T,
            "5 more calls after the reload",
            || (new_calls() >= seen + 5).then_some(()),
            || d.log_tail(),
        );
    }

    // A broken plan: refused, with where; the plan in force keeps routing new calls.
    let broken = good.replacen(
        "<extension name=\"et-load\">",
        "<extension name=\"et-load\" name=\"twice\">",
        1,
    );
    let line = broken
        .lines()
        .position(|l| l.contains("name=\"twice\""))
        .expect("the edit")
        + 1;
    std::fs::write(&file, &broken).expect("write the broken plan");
    under_load("the broken reload");
    let error = d
        .ctl("reload dialplan")
        .expect_err("a broken plan is refused");
    assert!(
        error.contains(&format!("engine-tests.xml:{line}:")),
        "the refusal names engine-tests.xml:{line}: {error}"
    );
    let seen = new_calls();
    wait_until(
        T,
        "5 more calls routed while the broken file is in place",
        || (new_calls() >= seen + 5).then_some(()),
        || d.log_tail(),
    );
    std::fs::write(&file, &good).expect("restore the plan");
    under_load("the reload after the repair");
    reloads.push(d.ctl_ok("reload dialplan"));
    reloads.push(d.ctl_ok("reloadxml"));
    for out in &reloads {
        assert!(out.starts_with("dialplan reloaded"), "{out}");
        assert_eq!(
            out.lines().next(),
            reloads[0].lines().next(),
            "the same plan"
        );
    }
    eprintln!(
        "reloads under load: {} ok, 1 refused; CDRs so far {}",
        reloads.len(),
        cdrs()
    );

    uac.wait(Duration::from_secs(90))
        .assert_ok(100, &d.log_tail());
    uas.wait(Duration::from_secs(20))
        .assert_ok(100, &d.log_tail());
    let all = d.wait_cdrs(100, T);
    assert_eq!(all.len(), 100, "one CDR per call");
    for cdr in &all {
        assert_eq!(cdr.hangup_cause, "NORMAL_CLEARING", "{cdr:?}");
        assert_eq!(cdr.callee, "1001", "{cdr:?}");
    }
    d.wait_calls(0, T);
}
