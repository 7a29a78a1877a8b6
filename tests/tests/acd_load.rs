//! The contact centre under load (issue 6): 200 SIPp callers queue at once in queue `load`
//! (tests/conf/acd/queues.toml) while every agent is logged out; then 50 agents log in from
//! the console: 45 are one SIPp UAS that answers after a random 0.2-2.5 s and hangs up after
//! a random 0.5-3 s talk, 5 are a second SIPp UAS that rings and never answers. Every caller
//! must be served, every agent must end idle (the silent ones on break by max-no-answer), and
//! the queue log must account for every caller: entered, connected, completed, never twice.
//! Midway, `acd reload` re-reads queues.toml: nobody is logged out, no caller dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use switchyard_e2e::daemon::{QueueLogRow, copy_tree};
use switchyard_e2e::slot::offset;
use switchyard_e2e::{Daemon, Sipp, Slot, e2e_dir, sipp_caller, wait_until};

const CALLERS: usize = 200;
const ANSWERING: u32 = 45;
const SILENT: u32 = 5;

/// The rows of one queue, oldest first.
fn queue_log_of(d: &Daemon, queue: &str) -> Vec<QueueLogRow> {
    d.queue_log()
        .into_iter()
        .filter(|r| r.queue == queue)
        .collect()
}

/// A daemon of tests/conf/acd whose SIP-URI agents point at this slot's two SIPp UAS ports
/// (`SIPP_UAS`: 2001-2045, `SIPP_UAS2`: 2046-2050). SIPp sends no RTP: no media timeout.
fn daemon_for_sipp_agents(slot: Slot, extra: &[(&str, &str)]) -> (Daemon, tempfile::TempDir) {
    let uas = slot.port(offset::SIPP_UAS);
    let uas2 = slot.port(offset::SIPP_UAS2);
    let template = tempfile::Builder::new()
        .prefix("sy-acd-sipp-")
        .tempdir()
        .unwrap();
    copy_tree(&e2e_dir().join("conf/acd"), template.path(), &|text| {
        text.replace("127.0.0.1:5090\"", &format!("127.0.0.1:{uas}\""))
            .replace("127.0.0.1:5092\"", &format!("127.0.0.1:{uas2}\""))
    });
    let mut builder =
        Daemon::builder(template.path().to_str().unwrap()).set("media.rtp_timeout_secs", "600");
    for (key, value) in extra {
        builder = builder.set(key, value);
    }
    (builder.start_with_slot(slot), template)
}

/// The two SIPp agent phones: `acd_agent` (answers) and `uas_ring` (never answers).
fn sipp_agents(d: &Daemon) -> (Sipp, Sipp) {
    let port = |off: u16| d.slot().port(off).to_string();
    let answering = Sipp::spawn(
        "acd_agent",
        None,
        &[
            "-p",
            &port(offset::SIPP_UAS),
            "-mp",
            &port(offset::SIPP_UAS_MEDIA),
        ],
    );
    let silent = Sipp::spawn(
        "uas_ring",
        None,
        &[
            "-p",
            &port(offset::SIPP_UAS2),
            "-mp",
            &port(offset::SIPP_UAS2_MEDIA),
        ],
    );
    (answering, silent)
}

/// The figure of `queue show load` in `column` (0: name, 2: waiting, 4: answered...).
fn queue_figure(d: &Daemon, column: usize) -> String {
    let text = d.ctl_ok("queue show load");
    let row = text
        .lines()
        .find(|l| l.starts_with("load "))
        .unwrap_or_else(|| panic!("no load row in\n{text}"));
    row.split_whitespace().nth(column).unwrap().to_owned()
}

/// Agent states by id, from `agent show`.
fn agent_states(d: &Daemon) -> BTreeMap<u32, String> {
    d.ctl_ok("agent show")
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let id = words.next()?.parse().ok()?;
            Some((id, words.next()?.to_owned()))
        })
        .collect()
}

#[test]
fn two_hundred_queued_callers_fifty_agents_everyone_accounted_for() {
    // 200 callers and up to 50 agent legs at once: 250 RTP/RTCP pairs, three slots' worth.
    let (d, _template) =
        daemon_for_sipp_agents(Slot::acquire_span(3), &[("calls.max_calls", "1000")]);
    let (mut agents, mut silent) = sipp_agents(&d);

    // Every agent starts logged out: the callers pile up in the queue.
    let states = agent_states(&d);
    assert_eq!(
        states.values().filter(|s| *s == "offline").count(),
        50 + 2,
        "{states:?}"
    );
    let calls = CALLERS.to_string();
    let mut callers = sipp_caller(
        &d,
        "uac_wait_bye",
        &[("timeout=\"60000\"", "timeout=\"240000\"")],
        "1000",
        "7100",
        &[
            "-r",
            "100",
            "-l",
            &calls,
            "-m",
            &calls,
            "-recv_timeout",
            "240000",
            "-timeout",
            "300",
        ],
    );
    wait_until(
        Duration::from_secs(60),
        "200 callers waiting in the queue at once",
        || (queue_figure(&d, 2) == "200").then_some(()),
        || format!("{}\n{}", d.ctl_ok("queue show load"), d.log_tail()),
    );
    assert_eq!(d.call_count(), CALLERS);

    for id in 2001..=2000 + ANSWERING + SILENT {
        // Logged in, and at once offered a caller: reserved (ringing).
        let out = d.ctl_ok(&format!("agent login {id}"));
        assert_eq!(out.trim(), format!("agent {id} reserved"), "{out}");
    }

    // A configuration reload with most callers still waiting and agents on calls: nobody
    // is logged out, no caller is dropped (the end of the test counts them all).
    let waiting: usize = queue_figure(&d, 2).parse().unwrap();
    assert!(waiting > 100, "{waiting} waiting");
    let out = d.ctl_ok("acd reload");
    assert!(out.contains("nobody logged out"), "{out}");
    assert!(
        agent_states(&d)
            .iter()
            .filter(|(id, _)| **id > 2000)
            .all(|(_, s)| s != "offline"),
        "{}",
        d.ctl_ok("agent show")
    );

    let outcome = callers.wait(Duration::from_secs(300));
    outcome.assert_ok(CALLERS as u64, &d.log_tail());

    // Every agent ends idle: available, or on break for not answering; nobody reserved, on a
    // call or in wrap-up (the queue has none).
    let states = wait_until(
        Duration::from_secs(30),
        "every agent idle",
        || {
            let states = agent_states(&d);
            states
                .iter()
                .filter(|(id, _)| **id > 2000)
                .all(|(_, s)| s == "available" || s == "break(max-no-answer)")
                .then_some(states)
        },
        || d.ctl_ok("agent show"),
    );
    for id in 2001..=2000 + ANSWERING {
        assert_eq!(states[&id], "available", "agent {id}");
    }
    assert_eq!(queue_figure(&d, 2), "0", "nobody waits");
    assert_eq!(
        queue_figure(&d, 4),
        "200",
        "all answered; warnings:\n{}",
        d.log_lines_with(&["WARN"]).join("\n")
    );
    assert_eq!(queue_figure(&d, 5), "0", "none abandoned");

    // The queue log: every caller entered once, connected once to an answering agent and
    // completed once; the silent agents' offers ended RINGNOANSWER, never CONNECT.
    // The store writes rows on its own thread: wait for the last COMPLETE.
    let rows = wait_until(
        Duration::from_secs(30),
        "200 COMPLETE rows",
        || {
            let rows: Vec<QueueLogRow> = d
                .queue_log()
                .into_iter()
                .filter(|r| r.queue == "load" || r.queue.is_empty())
                .collect();
            (rows.iter().filter(|r| r.event == "COMPLETE").count() >= CALLERS).then_some(rows)
        },
        || d.ctl_ok("show queue_log 20"),
    );
    // Every row of the queue names its call or agent: none lost its uuid.
    let orphans: Vec<&QueueLogRow> = rows
        .iter()
        .filter(|r| r.queue == "load" && r.call_uuid.is_empty())
        .collect();
    assert!(orphans.is_empty(), "{orphans:?}");
    let mut per_call: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for row in rows.iter().filter(|r| !r.call_uuid.is_empty()) {
        per_call
            .entry(row.call_uuid.as_str())
            .or_default()
            .push(row.event.as_str());
    }
    assert_eq!(per_call.len(), CALLERS, "one uuid per caller");
    for (uuid, events) in &per_call {
        let count = |e: &str| events.iter().filter(|x| **x == e).count();
        assert_eq!(count("ENTERQUEUE"), 1, "{uuid}: {events:?}");
        assert_eq!(count("CONNECT"), 1, "{uuid}: {events:?}");
        assert_eq!(count("COMPLETE"), 1, "{uuid}: {events:?}");
        assert_eq!(count("ABANDON") + count("EXITWITHTIMEOUT"), 0, "{uuid}");
        assert_eq!(events.first(), Some(&"ENTERQUEUE"), "{uuid}: {events:?}");
        assert_eq!(events.last(), Some(&"COMPLETE"), "{uuid}: {events:?}");
    }
    let silent_ids: BTreeSet<String> = (2001 + ANSWERING..=2000 + ANSWERING + SILENT)
        .map(|id| id.to_string())
        .collect();
    let connected_to_silent = rows
        .iter()
        .filter(|r| r.event == "CONNECT" && silent_ids.contains(&r.agent))
        .count();
    assert_eq!(connected_to_silent, 0);
    let no_answers = rows
        .iter()
        .filter(|r| r.event == "RINGNOANSWER" && silent_ids.contains(&r.agent))
        .count();
    assert!(no_answers >= 1, "the silent agents were offered calls");
    let logins = rows.iter().filter(|r| r.event == "AGENTLOGIN").count();
    assert_eq!(logins, 50);

    // One CDR per caller, each cleared normally, each with its agent as callee.
    let cdrs = d.wait_cdrs(CALLERS, Duration::from_secs(30));
    let to_queue: Vec<_> = cdrs.iter().filter(|c| c.destination == "7100").collect();
    assert_eq!(to_queue.len(), CALLERS);
    for cdr in &to_queue {
        assert_eq!(cdr.hangup_cause, "NORMAL_CLEARING", "{cdr:?}");
        let agent: u32 = cdr.callee.parse().unwrap_or_else(|_| panic!("{cdr:?}"));
        assert!((2001..=2000 + ANSWERING).contains(&agent), "{cdr:?}");
    }
    drop(agents.wait(Duration::from_millis(1)));
    drop(silent.wait(Duration::from_millis(1)));
}

/// Ring-all and ring-progressively against real SIPp phones: 2046 and 2047 ring and never
/// answer, 2001 answers. Ring-all rings the three at once and cancels the two others when
/// 2001 answers; ring-progressively adds one phone a second (2046, 2047, then 2001) without
/// re-ringing the first ones: each silent phone gets exactly one INVITE and one CANCEL.
#[test]
fn ring_all_and_ring_progressively_with_sipp_agents() {
    let (d, _template) = daemon_for_sipp_agents(Slot::acquire(), &[]);
    let (_answering, silent) = sipp_agents(&d);
    for id in ["2001", "2046", "2047"] {
        d.ctl_ok(&format!("agent login {id}"));
    }

    for (number, queue) in [("7101", "ringall"), ("7102", "progressive")] {
        let mut caller = sipp_caller(&d, "uac_wait_bye", &[], "1000", number, &["-m", "1"]);
        caller
            .wait(Duration::from_secs(40))
            .assert_ok(1, &d.log_tail());
        let rows = wait_until(
            Duration::from_secs(10),
            "the call's COMPLETE row",
            || {
                let rows = queue_log_of(&d, queue);
                rows.iter().any(|r| r.event == "COMPLETE").then_some(rows)
            },
            || d.ctl_ok("show queue_log 20"),
        );
        let events: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.event.as_str(), r.agent.as_str()))
            .collect();
        let count = |e: &str| events.iter().filter(|(x, _)| *x == e).count();
        assert_eq!(count("OFFER"), 3, "{queue}: {events:?}");
        assert!(events.contains(&("CONNECT", "2001")), "{queue}: {events:?}");
        assert!(
            events.contains(&("OFFERCANCELLED", "2046")),
            "{queue}: {events:?}"
        );
        assert!(
            events.contains(&("OFFERCANCELLED", "2047")),
            "{queue}: {events:?}"
        );
        assert_eq!(count("RINGNOANSWER"), 0, "{queue}: {events:?}");
        assert_eq!(count("COMPLETE"), 1, "{queue}: {events:?}");
    }
    // Ring-progressively added phones to the bridge: two additions, and no phone was rung
    // twice for one call (the silent UAS saw 2 INVITEs per call, 4 in all, and as many
    // CANCELs).
    assert_eq!(
        d.log_lines_with(&["uuid_bridge_add"]).len(),
        2,
        "{}",
        d.log_tail()
    );
    let trace = silent.messages();
    let received = |method: &str| {
        trace
            .lines()
            .filter(|l| l.starts_with(&format!("{method} sip:")))
            .count()
    };
    assert_eq!(received("INVITE"), 4, "{trace}");
    assert_eq!(received("CANCEL"), 4, "{trace}");
}
