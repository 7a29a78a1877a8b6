//! The contact centre with real phones (issue 6): baresip callers in mod_acd's queues and
//! baresip agents answering them, on the template tests/conf/acd (queues.toml: sales in
//! English and support_zh in Chinese, agents 1000 and 1001 reached as user/1000, user/1001;
//! dialplan/acd.xml: 5100 the demo menu, 7001 sales, *22 login, *23 logout, *24 break).
//! What callers and agents hear is checked against sounds/<lang>/8000 by correlation, the
//! talk by tones both ways, and the path through the queue by the CDRs and the queue log.

use std::path::{Path, PathBuf};
use std::time::Duration;

use switchyard_e2e::daemon::QueueLogRow;
use switchyard_e2e::media::{
    Heard, best_correlation, wait_wav_seconds, wav_seconds, wav_seconds_so_far,
};
use switchyard_e2e::slot::offset;
use switchyard_e2e::{
    Baresip, BaresipConfig, Daemon, analyze_wav_window, wait_until, workspace_dir,
};

const T: Duration = Duration::from_secs(15);
/// A faithful copy of a prompt through G.711 correlates above 0.9 (media.rs).
const SAME: f64 = 0.8;
/// The customer's 1 kHz, the agent's 1.5 kHz.
const CUSTOMER_HZ: f64 = 1000.0;
const AGENT_HZ: f64 = 1500.0;

/// The daemon of tests/conf/acd; baresip 1.0 refuses a 401 holding any non-MD5 challenge.
fn daemon() -> Daemon {
    let d = Daemon::builder("acd")
        .set("auth.digest_algorithms", r#"["MD5"]"#)
        .start();
    let modules = d.ctl_ok("show modules");
    assert!(modules.contains("mod_acd"), "{modules}");
    assert!(modules.contains("mod_ivr"), "{modules}");
    d
}

/// A registered baresip of directory user `user` sending `hz`.
fn phone(d: &Daemon, user: &str, off: u16, hz: f64, auto_answer: bool) -> Baresip {
    let ua = Baresip::start(BaresipConfig::new(
        user,
        d.sip_port(),
        d.slot().port(off),
        hz,
        auto_answer,
    ));
    d.wait_registered(user, 1, T);
    ua
}

fn dial(d: &Daemon, ua: &mut Baresip, extension: &str) {
    ua.dial(&format!("sip:{extension}@127.0.0.1:{}", d.sip_port()));
}

fn prompt(language: &str, name: &str) -> PathBuf {
    workspace_dir()
        .join("sounds")
        .join(language)
        .join("8000")
        .join(format!("{name}.wav"))
}

/// The best correlation of the prompt `name` in `language` anywhere in `heard`: windows of
/// the prompt's length every quarter second, each searched ±1/8 s, so every start is tried.
fn heard_anywhere(heard: &Heard, language: &str, name: &str) -> f64 {
    let reference = Heard::read(&prompt(language, name));
    let len = reference.seconds();
    let step = 0.25;
    let lag = (f64::from(heard.rate) * step / 2.0) as usize + 1;
    let mut best = 0.0f64;
    let mut from = 0.0;
    while from < heard.seconds() {
        let window = heard.window(from, from + len);
        if window.len() > reference.samples.len() / 2 {
            best = best.max(best_correlation(window, &reference.samples, lag));
        }
        from += step;
    }
    best
}

/// The only recording of a baresip that made or took one call so far, once it holds audio.
fn recording(ua: &Baresip, before: &[PathBuf]) -> PathBuf {
    ua.wait_new_recording(before, 1, T)
}

/// Waits until the queue log holds a row `event` (for `agent` when given).
fn wait_row(d: &Daemon, event: &str, agent: Option<&str>) -> Vec<QueueLogRow> {
    wait_until(
        T,
        &format!("a queue-log row {event} {agent:?}"),
        || {
            let rows = d.queue_log();
            rows.iter()
                .any(|r| r.event == event && agent.is_none_or(|a| r.agent == a))
                .then_some(rows)
        },
        || format!("{:?}\n{}", d.queue_log(), d.log_tail()),
    )
}

/// The state `agent show ID` gives (the second word of the agent's row).
fn agent_state(d: &Daemon, id: &str) -> String {
    let text = d.ctl_ok(&format!("agent show {id}"));
    text.lines()
        .find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(id)).then(|| words.next().unwrap_or_default().to_owned())
        })
        .unwrap_or_else(|| panic!("no row for agent {id} in\n{text}"))
}

fn wait_agent_state(d: &Daemon, id: &str, accept: &dyn Fn(&str) -> bool, what: &str) -> String {
    wait_until(
        T,
        &format!("agent {id} {what}"),
        || Some(agent_state(d, id)).filter(|s| accept(s)),
        || {
            format!(
                "{}\n{}",
                d.ctl_ok(&format!("agent show {id}")),
                d.log_tail()
            )
        },
    )
}

/// The waiting lines of `queue show NAME` ("  1. UUID ..." or "  1. (callback)").
fn waiting_lines(d: &Daemon, queue: &str) -> Vec<String> {
    d.ctl_ok(&format!("queue show {queue}"))
        .lines()
        .filter(|l| {
            l.trim_start()
                .split_once(". ")
                .is_some_and(|(n, _)| n.parse::<usize>().is_ok())
        })
        .map(str::to_owned)
        .collect()
}

/// The agent's phone dials a feature code: the switch answers, plays the prompt saying what
/// changed (in English: agents have no language of their own) and hangs up. Returns how
/// well what the phone heard matches `prompt_name`, and the `agent_result` the plan logged
/// (tests/conf/acd/dialplan/acd.xml).
fn feature_code(d: &Daemon, ua: &mut Baresip, code: &str, prompt_name: &str) -> (f64, String) {
    const RESULT: &str = "dialplan log: agent_result=";
    let results = || d.log_lines_with(&[RESULT]);
    let logged = results().len();
    let before = ua.heard_wavs();
    dial(d, ua, code);
    ua.wait_event("CALL_ESTABLISHED", T);
    ua.wait_event("CALL_CLOSED", T);
    let rec = wait_until(
        T,
        "the feature call's recording",
        || ua.heard_wavs().into_iter().find(|p| !before.contains(p)),
        || ua.log(),
    );
    let result = wait_until(
        T,
        &format!("the agent_result of {code}"),
        || {
            let lines = results();
            let line = lines.get(logged)?;
            let value = line.split(RESULT).nth(1)?;
            Some(
                value
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            )
        },
        || d.log_tail(),
    );
    let heard = Heard::read(&rec);
    (heard_anywhere(&heard, "en", prompt_name), result)
}

/// The issue's acceptance test: a caller presses 2 in the demo menu, waits in support_zh
/// hearing the Chinese position announcements; agent 1001 logs in from its phone (*22) and
/// is offered the call, answers, and the two hear each other; the CDR and the queue log
/// show the whole path.
#[test]
fn demo_menu_digit_2_queues_in_chinese_and_reaches_an_agent_who_logs_in_by_phone() {
    let d = daemon();
    assert_eq!(agent_state(&d, "1001"), "offline");
    let mut caller = phone(&d, "1002", offset::BARESIP_A, CUSTOMER_HZ, false);
    // The agent answers by hand (`accept`), see below.
    let mut agent = phone(&d, "1001", offset::BARESIP_B, AGENT_HZ, false);

    // Into the menu; 2 once the long greeting played (welcome, press-1, press-2).
    dial(&d, &mut caller, "5100");
    caller.wait_event("CALL_ESTABLISHED", T);
    let rec = recording(&caller, &[]);
    let greeting: f64 = ["welcome", "press-1-sales", "press-2-zh"]
        .iter()
        .map(|n| wav_seconds(&prompt("en", n)))
        .sum();
    wait_wav_seconds(&rec, greeting + 0.5, T);
    caller.send_digits("2");
    let enter = wait_row(&d, "ENTERQUEUE", None);
    let entered: Vec<&QueueLogRow> = enter.iter().filter(|r| r.event == "ENTERQUEUE").collect();
    assert_eq!(entered.len(), 1, "{enter:?}");
    assert_eq!(entered[0].queue, "support_zh", "{enter:?}");
    let uuid = entered[0].call_uuid.clone();
    let waiting = waiting_lines(&d, "support_zh");
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert!(waiting[0].contains(&uuid), "{waiting:?}");

    // The first position announcement (support_zh says it every 5 s): where it starts in
    // the recording is where the recording stood when the switch started it.
    let announcement = ["you-are-caller-number", "digits/1", "caller-number-suffix"];
    let mark = wait_until(
        T,
        "the first position announcement",
        || {
            let played = d.log_lines_with(&[
                "uuid_exec",
                &uuid,
                "application=playback",
                "you-are-caller-number",
            ]);
            (!played.is_empty()).then(|| wav_seconds_so_far(&rec).unwrap_or(0.0))
        },
        || d.log_tail(),
    );
    let sentence_secs: f64 = announcement
        .iter()
        .map(|n| wav_seconds(&prompt("zh", n)))
        .sum();
    wait_wav_seconds(&rec, mark + sentence_secs + 1.0, T);

    // The agent logs in from its phone. The login takes effect when the feature call ends,
    // so the waiting call rings the phone only then; the agent answers it.
    let (logged_in, result) = feature_code(&d, &mut agent, "*22", "agent-logged-in");
    assert_eq!(result, "agent-logged-in");
    let state = agent_state(&d, "1001");
    assert_ne!(state, "offline", "logged in");
    let rows = wait_row(&d, "OFFER", Some("1001"));
    assert!(
        rows.iter()
            .any(|r| r.event == "AGENTLOGIN" && r.agent == "1001"),
        "{rows:?}"
    );
    agent.wait_event("CALL_INCOMING", T);
    let before = agent.heard_wavs();
    agent.command("accept", "");
    agent.wait_event("CALL_ESTABLISHED", T);
    wait_row(&d, "CONNECT", Some("1001"));
    assert_eq!(agent_state(&d, "1001"), "on-contact");
    assert!(waiting_lines(&d, "support_zh").is_empty(), "nobody waits");
    let caller_mark = wav_seconds_so_far(&rec).unwrap_or(0.0);
    let agent_rec = recording(&agent, &before);
    wait_wav_seconds(&agent_rec, 3.0, T);
    wait_wav_seconds(&rec, caller_mark + 3.0, T);
    caller.hangup();
    caller.wait_event("CALL_CLOSED", T);
    agent.wait_event("CALL_CLOSED", T);
    d.wait_calls(0, T);

    // Talk both ways; half a second of margin for the change from music to the agent.
    analyze_wav_window(&rec, caller_mark + 0.5, 2.0)
        .assert_tone(AGENT_HZ, "the caller hears the agent's 1.5 kHz");
    analyze_wav_window(&agent_rec, 0.5, 2.0)
        .assert_tone(CUSTOMER_HZ, "the agent hears the caller's 1 kHz");

    // What the caller heard while waiting: the Chinese announcement, not the English one.
    let heard = Heard::read(&rec);
    let like = |language: &str| {
        let reference = Heard::read(&prompt(language, "you-are-caller-number"));
        // The recording on disk trails what baresip heard: the prompt may start up to a
        // second before the mark, or a little after it (window start ±0.75 s).
        let window = heard.window(mark - 0.5, mark + reference.seconds() + 0.5);
        best_correlation(window, &reference.samples, 6000)
    };
    let (zh, en) = (like("zh"), like("en"));
    // And the whole sentence, 您现在排在第 一 位 (one playback of three prompts).
    let paths: Vec<PathBuf> = announcement.iter().map(|n| prompt("zh", n)).collect();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let sentence = Heard::concat(&refs);
    let whole = sentence.seconds();
    let said = best_correlation(
        heard.window(mark - 0.5, mark + whole + 0.5),
        &sentence.samples,
        6000,
    );
    eprintln!(
        "demo path: announcement at {mark:.2} s ~ zh {zh:.3}, en {en:.3}; \
         whole sentence ({whole:.2} s) {said:.3}; \
         agent-logged-in {logged_in:.3}; talk from {caller_mark:.2} s"
    );
    assert!(zh >= SAME, "the caller heard 您现在排在第: {zh:.3}");
    assert!(
        en < zh - 0.2,
        "in Chinese, not English: zh {zh:.3}, en {en:.3}"
    );
    assert!(
        logged_in >= SAME,
        "the agent heard agent-logged-in: {logged_in:.3}"
    );

    // The CDR of the caller names the agent.
    let cdrs = d.wait_cdrs(2, T);
    let cdr = cdrs
        .iter()
        .find(|c| c.uuid == uuid)
        .unwrap_or_else(|| panic!("the caller's CDR: {cdrs:?}"));
    assert_eq!(cdr.caller, "1002", "{cdr:?}");
    assert_eq!(cdr.callee, "1001", "{cdr:?}");
    assert_eq!(cdr.hangup_cause, "NORMAL_CLEARING", "{cdr:?}");
    let feature = cdrs
        .iter()
        .find(|c| c.destination == "*22")
        .unwrap_or_else(|| panic!("the feature call's CDR: {cdrs:?}"));
    assert_eq!(feature.caller, "1001", "{feature:?}");

    // The queue log holds the whole path, in order.
    let rows = wait_row(&d, "COMPLETE", Some("1001"));
    let path: Vec<(&str, &str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r.event.as_str(),
                r.queue.as_str(),
                r.call_uuid.as_str(),
                r.agent.as_str(),
            )
        })
        .collect();
    let expected = [
        ("ENTERQUEUE", "support_zh", uuid.as_str(), ""),
        ("AGENTLOGIN", "", "", "1001"),
        ("OFFER", "support_zh", uuid.as_str(), "1001"),
        ("CONNECT", "support_zh", uuid.as_str(), "1001"),
        ("COMPLETE", "support_zh", uuid.as_str(), "1001"),
    ];
    let mut at = 0;
    for row in &path {
        if at < expected.len() && *row == expected[at] {
            at += 1;
        }
    }
    assert_eq!(
        at,
        expected.len(),
        "the path {expected:?} in order in {path:?}"
    );
    for event in ["ABANDON", "RINGNOANSWER", "EXITWITHTIMEOUT"] {
        assert!(!path.iter().any(|r| r.0 == event), "no {event}: {path:?}");
    }
    let state = wait_agent_state(
        &d,
        "1001",
        &|s| s == "available",
        "available after the call (wrap-up, if any, over)",
    );
    assert_eq!(state, "available");
}

/// How well the last sound `caller` heard (until the switch hung up) matches the prompt
/// `name` in `language`.
fn ends_with_prompt(heard: &Heard, language: &str, name: &str) -> f64 {
    let reference = Heard::read(&prompt(language, name));
    let (_, end) = heard.loud_span().expect("something was heard");
    let window = heard.window(end - reference.seconds() - 0.25, end + 0.1);
    best_correlation(window, &reference.samples, 4000)
}

/// Callback in queue: a caller of sales with nobody logged in presses `*`, hears the
/// confirmation and is hung up on, keeping its place; when agent 1000 logs in, the switch
/// calls the agent, then the customer back, and the two talk.
#[test]
fn a_caller_who_asks_for_a_callback_is_called_back_when_an_agent_logs_in() {
    let d = daemon();
    // The customer is called back on the same phone: it answers by itself.
    let mut customer = phone(&d, "1002", offset::BARESIP_A, CUSTOMER_HZ, true);
    let mut agent = phone(&d, "1000", offset::BARESIP_B, AGENT_HZ, true);
    assert_eq!(agent_state(&d, "1000"), "offline");

    dial(&d, &mut customer, "7001");
    customer.wait_event("CALL_ESTABLISHED", T);
    let rows = wait_row(&d, "ENTERQUEUE", None);
    let uuid = rows[0].call_uuid.clone();
    assert_eq!(rows[0].queue, "sales", "{rows:?}");
    // A second of the queue's music, then the callback key.
    let rec = recording(&customer, &[]);
    wait_wav_seconds(&rec, 1.5, T);
    customer.send_digits("*");
    customer.wait_event("CALL_CLOSED", T);
    let confirmed = ends_with_prompt(&Heard::read(&rec), "en", "callback-confirmed");
    assert!(
        confirmed >= SAME,
        "the caller heard callback-confirmed before the switch hung up: {confirmed:.3}"
    );
    let waiting = waiting_lines(&d, "sales");
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert!(waiting[0].contains("(callback)"), "{waiting:?}");
    let rows = d.queue_log();
    assert!(
        rows.iter()
            .any(|r| r.event == "CALLBACK" && r.call_uuid == uuid && r.queue == "sales"),
        "{rows:?}"
    );

    // The agent logs in from the console: it is offered the callback at once.
    let out = d.ctl_ok("agent login 1000");
    assert_eq!(out.trim(), "agent 1000 reserved", "{out}");
    agent.wait_event("CALL_ESTABLISHED", T);
    customer.wait_event("CALL_ESTABLISHED", T);
    wait_row(&d, "CONNECT", Some("1000"));
    assert_eq!(agent_state(&d, "1000"), "on-contact");
    assert!(waiting_lines(&d, "sales").is_empty(), "nobody waits");
    let agent_rec = recording(&agent, &[]);
    let customer_rec = recording(&customer, std::slice::from_ref(&rec));
    let agent_mark = wav_seconds_so_far(&agent_rec).unwrap_or(0.0);
    wait_wav_seconds(&customer_rec, 3.0, T);
    wait_wav_seconds(&agent_rec, agent_mark + 3.0, T);
    agent.hangup();
    agent.wait_event("CALL_CLOSED", T);
    customer.wait_event("CALL_CLOSED", T);
    d.wait_calls(0, T);
    analyze_wav_window(&customer_rec, 0.5, 2.0)
        .assert_tone(AGENT_HZ, "the customer hears the agent's 1.5 kHz");
    analyze_wav_window(&agent_rec, agent_mark + 0.5, 2.0)
        .assert_tone(CUSTOMER_HZ, "the agent hears the customer's 1 kHz");

    // The queue log: the callback, then offered, connected and completed by 1000; the
    // customer who hung up after asking never abandoned.
    let rows = wait_row(&d, "COMPLETE", Some("1000"));
    let sales: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r.queue == "sales")
        .map(|r| (r.event.as_str(), r.agent.as_str()))
        .collect();
    let expected = [
        ("ENTERQUEUE", ""),
        ("CALLBACK", ""),
        ("OFFER", "1000"),
        ("CONNECT", "1000"),
        ("COMPLETE", "1000"),
    ];
    let mut at = 0;
    for row in &sales {
        if at < expected.len() && *row == expected[at] {
            at += 1;
        }
    }
    assert_eq!(at, expected.len(), "{expected:?} in order in {sales:?}");
    assert!(
        !rows.iter().any(|r| r.event == "ABANDON"),
        "no ABANDON: {rows:?}"
    );
    // The customer was reached at the first attempt: exactly one contact, no retry, and
    // every row of the callback carries the uuid of the call that asked for it.
    let count = |event: &str| sales.iter().filter(|(e, _)| *e == event).count();
    assert_eq!(count("CONNECT"), 1, "{sales:?}");
    assert_eq!(count("COMPLETE"), 1, "{sales:?}");
    assert!(
        !rows.iter().any(|r| r.event.starts_with("CALLBACK_")),
        "no retry: {rows:?}"
    );
    assert!(
        rows.iter()
            .filter(|r| r.queue == "sales")
            .all(|r| r.call_uuid == uuid),
        "{rows:?}"
    );
    assert!(waiting_lines(&d, "sales").is_empty(), "nobody waits");
    let cdrs = d.wait_cdrs(2, T);
    let first = cdrs
        .iter()
        .find(|c| c.uuid == uuid)
        .unwrap_or_else(|| panic!("the first call's CDR: {cdrs:?}"));
    assert_eq!(first.destination, "7001", "{first:?}");
    assert_eq!(first.hangup_cause, "NORMAL_CLEARING", "{first:?}");
    eprintln!(
        "callback: confirmed {confirmed:.3}; queue log {sales:?}; CDRs {:?}",
        cdrs.iter()
            .map(|c| (&c.caller, &c.destination, &c.callee, &c.hangup_cause))
            .collect::<Vec<_>>()
    );
    wait_agent_state(
        &d,
        "1000",
        &|s| s == "available",
        "available after the call",
    );
}

/// Agent states from the phone: *22 logs in, *24 puts on break and *24 again ends it, *23
/// logs out, each confirmed by its prompt; a directory user who is no agent is refused.
#[test]
fn agent_feature_codes_change_the_state_and_a_non_agent_is_refused() {
    let d = daemon();
    let mut agent = phone(&d, "1000", offset::BARESIP_A, AGENT_HZ, false);
    let mut other = phone(&d, "1003", offset::BARESIP_B, CUSTOMER_HZ, false);
    let steps = [
        ("*22", "agent-logged-in", "available"),
        ("*24", "agent-on-break", "break(break)"),
        ("*24", "agent-logged-in", "available"),
        ("*23", "agent-logged-out", "offline"),
    ];
    let mut report = Vec::new();
    for (code, prompt_name, state) in steps {
        let (heard, result) = feature_code(&d, &mut agent, code, prompt_name);
        assert_eq!(result, prompt_name, "{code}: agent_result");
        assert!(heard >= SAME, "{code}: {prompt_name} heard: {heard:.3}");
        assert_eq!(agent_state(&d, "1000"), state, "after {code}");
        report.push(format!("{code} {prompt_name} {heard:.3} -> {state}"));
    }
    let events: Vec<String> = d
        .queue_log()
        .into_iter()
        .filter(|r| r.agent == "1000")
        .map(|r| r.event)
        .collect();
    assert_eq!(
        events,
        ["AGENTLOGIN", "PAUSE", "UNPAUSE", "AGENTLOGOFF"],
        "one row per change"
    );

    let (refused, result) = feature_code(&d, &mut other, "*22", "invalid-option");
    assert_eq!(result, "refused", "1003 is no agent");
    assert!(
        refused >= SAME,
        "the non-agent heard invalid-option: {refused:.3}"
    );
    assert_eq!(
        d.log_lines_with(&["agent_login: unknown agent"]).len(),
        1,
        "the refusal is logged\n{}",
        d.log_tail()
    );
    assert_eq!(agent_state(&d, "1000"), "offline");
    assert!(
        d.ctl("agent show 1003").is_err(),
        "1003 did not become an agent"
    );
    assert_eq!(d.queue_log().len(), 4, "no row for the refusal");
    eprintln!(
        "feature codes: {}; 1003 *22 invalid-option {refused:.3}",
        report.join(", ")
    );
}
