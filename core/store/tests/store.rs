use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use switchyard_store::{Binding, Cdr, Error, QueueLogEntry, Recording, Store};

fn cdr(uuid: &str, end_ms: i64) -> Cdr {
    Cdr {
        uuid: uuid.into(),
        caller: "1000".into(),
        callee: "1001".into(),
        destination: "1001".into(),
        start_ms: end_ms - 12_500,
        answer_ms: Some(end_ms - 10_200),
        end_ms,
        duration_s: 12,
        billsec_s: 10,
        hangup_cause: "NORMAL_CLEARING".into(),
        a_sip_code: Some(200),
        b_sip_code: Some(200),
        a_call_id: format!("a-{uuid}@127.0.0.1"),
        b_call_id: Some(format!("b-{uuid}")),
        hangup_side: "caller".into(),
        rtp_a_in: 500,
        rtp_a_out: 498,
        rtp_b_in: 499,
        rtp_b_out: 501,
        ..Cdr::default()
    }
}

/// A CDR with every media-quality and audit field known.
fn full_cdr(uuid: &str, end_ms: i64) -> Cdr {
    Cdr {
        codec_a: Some("PCMA".into()),
        codec_b: Some("opus/48000".into()),
        mos_a: Some(4.41),
        mos_b: Some(3.0625),
        loss_a_pct: Some(0.0),
        loss_b_pct: Some(2.5),
        jitter_a_ms: Some(1.125),
        jitter_b_ms: Some(17.75),
        rtt_a_ms: Some(42.0),
        rtt_b_ms: Some(180.5),
        transcoded: true,
        recording_path: Some(format!("/var/lib/switchyard/recordings/{uuid}.wav.enc")),
        dtmf_digits: Some("1234#*0".into()),
        ..cdr(uuid, end_ms)
    }
}

fn recording(call_uuid: &str, path: &str, created_ms: i64) -> Recording {
    Recording {
        call_uuid: call_uuid.into(),
        path: path.into(),
        layout: "stereo".into(),
        sample_rate: 8000,
        duration_ms: 61_240,
        bytes: 1_959_771,
        encrypted: true,
        paused_ms: 12_000,
        frames_dropped: 3,
        created_ms,
        error: None,
    }
}

fn queue_row(at_unix_ms: i64, call_uuid: &str, event: &str) -> QueueLogEntry {
    QueueLogEntry {
        at_unix_ms,
        queue: "sales".into(),
        call_uuid: call_uuid.into(),
        agent: "1001".into(),
        event: event.into(),
        data: format!("{{\"position\":{at_unix_ms}}}"),
    }
}

/// Queue-log rows come back newest first, limited; rows of the same millisecond keep the
/// order they were written in (newest insertion first).
#[test]
fn queue_log_rows_round_trip_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = Store::open(&dir.path().join("q.db")).unwrap();
    assert!(store.recent_queue_log(10).unwrap().is_empty());
    store.insert_queue_log(queue_row(1000, "c1", "enter"));
    store.insert_queue_log(queue_row(3000, "c1", "answer"));
    store.insert_queue_log(queue_row(2000, "c1", "offer"));
    store.insert_queue_log(queue_row(3000, "c2", "enter"));
    assert_eq!(
        store.recent_queue_log(3).unwrap(),
        vec![
            queue_row(3000, "c2", "enter"),
            queue_row(3000, "c1", "answer"),
            queue_row(2000, "c1", "offer"),
        ]
    );
    let agent_only = QueueLogEntry {
        call_uuid: String::new(),
        event: "break".into(),
        data: "{}".into(),
        ..queue_row(4000, "", "")
    };
    store.insert_queue_log(agent_only.clone());
    assert_eq!(store.recent_queue_log(1).unwrap(), vec![agent_only]);
    assert_eq!(store.recent_queue_log(100).unwrap().len(), 5);
    assert!(thread.join());
}

fn unanswered(uuid: &str, end_ms: i64) -> Cdr {
    Cdr {
        answer_ms: None,
        billsec_s: 0,
        hangup_cause: "ORIGINATOR_CANCEL".into(),
        a_sip_code: Some(487),
        b_sip_code: None,
        b_call_id: None,
        rtp_a_in: 0,
        rtp_a_out: 0,
        rtp_b_in: 0,
        rtp_b_out: 0,
        ..cdr(uuid, end_ms)
    }
}

fn binding(user: &str, contact: &str, expires: i64) -> Binding {
    Binding {
        user: user.into(),
        contact: contact.into(),
        source: "udp:127.0.0.1:5062".into(),
        expires_unix: expires,
        call_id: format!("reg-{user}"),
        cseq: 1,
        user_agent: Some("baresip".into()),
        q: Some(0.5),
    }
}

#[test]
fn cdr_round_trip_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = Store::open(&dir.path().join("s.db")).unwrap();
    let a = cdr("uuid-a", 1_700_000_000_000);
    let b = unanswered("uuid-b", 1_700_000_100_000);
    let c = full_cdr("uuid-c", 1_700_000_050_000);
    store.insert_cdr(a.clone());
    store.insert_cdr(b.clone());
    store.insert_cdr(c.clone());
    let got = store.recent_cdrs(10).unwrap();
    assert_eq!(got, vec![b.clone(), c, a]);
    assert_eq!(store.recent_cdrs(1).unwrap(), vec![b]);
    assert_eq!(store.recent_cdrs(0).unwrap(), vec![]);
    store.shutdown();
    assert!(thread.join());
}

#[test]
fn every_quality_and_audit_field_round_trips_and_unknown_is_null() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let (store, thread) = Store::open(&path).unwrap();
    let full = full_cdr("full", 2000);
    let bare = cdr("bare", 1000);
    assert_eq!(bare.mos_a, None);
    assert!(!bare.transcoded);
    store.insert_cdr(full.clone());
    store.insert_cdr(bare.clone());
    assert_eq!(store.recent_cdrs(10).unwrap(), vec![full, bare]);
    assert!(thread.join());
    // NULL in the database, not 0 or "": "unknown" stays distinguishable from "measured zero".
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (codec, mos, loss, transcoded, digits): (
        Option<String>,
        Option<f64>,
        Option<f64>,
        i64,
        Option<String>,
    ) = conn
        .query_row(
            "SELECT codec_a, mos_b, loss_a_pct, transcoded, dtmf_digits FROM cdr WHERE uuid = 'bare'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(
        (codec, mos, loss, transcoded, digits),
        (None, None, None, 0, None)
    );
    let loss: Option<f64> = conn
        .query_row("SELECT loss_a_pct FROM cdr WHERE uuid = 'full'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(loss, Some(0.0));
}

#[test]
fn recordings_by_call_and_recent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let (store, thread) = Store::open(&path).unwrap();
        let a1 = recording("call-a", "/r/a1.wav.enc", 1000);
        let b = Recording {
            layout: "mono".into(),
            sample_rate: 16000,
            encrypted: false,
            paused_ms: 0,
            frames_dropped: 0,
            error: Some("disk full".into()),
            ..recording("call-b", "/r/b.wav", 2000)
        };
        let a2 = recording("call-a", "/r/a2.wav.enc", 3000);
        store.insert_recording(a2.clone());
        store.insert_recording(a1.clone());
        store.insert_recording(b.clone());
        // The same file twice is refused; the thread carries on.
        store.insert_recording(recording("call-c", "/r/a1.wav.enc", 9000));
        assert_eq!(
            store.recordings_for_call("call-a").unwrap(),
            vec![a1.clone(), a2.clone()]
        );
        assert_eq!(
            store.recordings_for_call("call-b").unwrap(),
            vec![b.clone()]
        );
        assert_eq!(store.recordings_for_call("call-c").unwrap(), vec![]);
        assert_eq!(
            store.recent_recordings(10).unwrap(),
            vec![a2.clone(), b, a1]
        );
        assert_eq!(store.recent_recordings(1).unwrap(), vec![a2]);
        assert_eq!(store.recent_recordings(0).unwrap(), vec![]);
        assert!(thread.join());
        assert!(matches!(store.recent_recordings(1), Err(Error::Closed)));
    }
    let (store, thread) = Store::open(&path).unwrap();
    assert_eq!(store.recent_recordings(10).unwrap().len(), 3);
    assert!(thread.join());
}

/// The schema of the first release (user_version 1), kept verbatim as a fixture.
const SCHEMA_V1: &str = "
    CREATE TABLE cdr (
        id            INTEGER PRIMARY KEY,
        uuid          TEXT NOT NULL UNIQUE,
        caller        TEXT NOT NULL,
        callee        TEXT NOT NULL,
        destination   TEXT NOT NULL,
        start_ms      INTEGER NOT NULL,
        answer_ms     INTEGER,
        end_ms        INTEGER NOT NULL,
        duration_s    INTEGER NOT NULL,
        billsec_s     INTEGER NOT NULL,
        hangup_cause  TEXT NOT NULL,
        a_sip_code    INTEGER,
        b_sip_code    INTEGER,
        a_call_id     TEXT NOT NULL,
        b_call_id     TEXT,
        hangup_side   TEXT NOT NULL,
        rtp_a_in      INTEGER NOT NULL DEFAULT 0,
        rtp_a_out     INTEGER NOT NULL DEFAULT 0,
        rtp_b_in      INTEGER NOT NULL DEFAULT 0,
        rtp_b_out     INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX cdr_end_ms ON cdr(end_ms);
    CREATE TABLE registration (
        user          TEXT NOT NULL,
        contact       TEXT NOT NULL,
        source        TEXT NOT NULL,
        expires_unix  INTEGER NOT NULL,
        call_id       TEXT NOT NULL,
        cseq          INTEGER NOT NULL,
        user_agent    TEXT,
        q             REAL,
        PRIMARY KEY (user, contact)
    ) WITHOUT ROWID;
    CREATE INDEX registration_expires ON registration(expires_unix);
    PRAGMA user_version = 1;
";

#[test]
fn a_database_of_the_previous_version_gains_the_new_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute(
            "INSERT INTO cdr (uuid, caller, callee, destination, start_ms, answer_ms, end_ms,
                duration_s, billsec_s, hangup_cause, a_sip_code, b_sip_code, a_call_id, b_call_id,
                hangup_side, rtp_a_in, rtp_a_out, rtp_b_in, rtp_b_out)
             VALUES ('old', '1000', '1001', '1001', 1000, 2000, 12000, 11, 10, 'NORMAL_CLEARING',
                200, 200, 'a-old', 'b-old', 'callee', 5, 6, 7, 8)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO registration VALUES ('1000', 'sip:1000@h', 'udp:h:5060', 99, 'c', 3, NULL, NULL)",
            [],
        )
        .unwrap();
    }
    let (store, thread) = Store::open(&path).unwrap();
    let old = Cdr {
        uuid: "old".into(),
        caller: "1000".into(),
        callee: "1001".into(),
        destination: "1001".into(),
        start_ms: 1000,
        answer_ms: Some(2000),
        end_ms: 12000,
        duration_s: 11,
        billsec_s: 10,
        hangup_cause: "NORMAL_CLEARING".into(),
        a_sip_code: Some(200),
        b_sip_code: Some(200),
        a_call_id: "a-old".into(),
        b_call_id: Some("b-old".into()),
        hangup_side: "callee".into(),
        rtp_a_in: 5,
        rtp_a_out: 6,
        rtp_b_in: 7,
        rtp_b_out: 8,
        ..Cdr::default()
    };
    // The old row reads back with every new field unknown.
    assert_eq!(store.recent_cdrs(10).unwrap(), vec![old.clone()]);
    assert_eq!(store.load_bindings().unwrap().len(), 1);
    // And the new columns and table take writes.
    store.insert_cdr(full_cdr("new", 20000));
    store.insert_recording(recording("new", "/r/new.wav.enc", 20000));
    assert_eq!(
        store.recent_cdrs(10).unwrap(),
        vec![full_cdr("new", 20000), old]
    );
    assert_eq!(store.recordings_for_call("new").unwrap().len(), 1);
    assert!(thread.join());

    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 3);
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('cdr')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for name in [
        "codec_a",
        "codec_b",
        "mos_a",
        "mos_b",
        "loss_a_pct",
        "loss_b_pct",
        "jitter_a_ms",
        "jitter_b_ms",
        "rtt_a_ms",
        "rtt_b_ms",
        "transcoded",
        "recording_path",
        "dtmf_digits",
    ] {
        assert!(columns.iter().any(|c| c == name), "missing column {name}");
    }
    drop(conn);
    // Opening again is a no-op: the migration does not run twice.
    let (store, thread) = Store::open(&path).unwrap();
    assert_eq!(store.recent_cdrs(10).unwrap().len(), 2);
    assert!(thread.join());
}

#[test]
fn duplicate_cdr_uuid_is_rejected_and_thread_survives() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = Store::open(&dir.path().join("s.db")).unwrap();
    store.insert_cdr(cdr("dup", 1000));
    store.insert_cdr(cdr("dup", 2000));
    store.insert_cdr(cdr("other", 3000));
    let got = store.recent_cdrs(10).unwrap();
    assert_eq!(
        got.iter().map(|c| c.uuid.as_str()).collect::<Vec<_>>(),
        ["other", "dup"]
    );
    assert_eq!(got[1].end_ms, 1000, "the first insert wins");
    assert!(thread.join());
}

#[test]
fn bindings_upsert_remove_expire() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = Store::open(&dir.path().join("s.db")).unwrap();
    store.upsert_binding(binding("1000", "sip:1000@10.0.0.1:5060", 100));
    store.upsert_binding(binding("1000", "sip:1000@10.0.0.2:5060", 200));
    store.upsert_binding(binding("1001", "sip:1001@10.0.0.3:5060", 300));
    // Refresh: same (user, contact), new values replace the old.
    let refreshed = Binding {
        expires_unix: 500,
        cseq: 2,
        source: "tcp:127.0.0.1:40000".into(),
        user_agent: None,
        q: None,
        ..binding("1000", "sip:1000@10.0.0.1:5060", 0)
    };
    store.upsert_binding(refreshed.clone());
    let all = store.load_bindings().unwrap();
    assert_eq!(
        all,
        vec![
            refreshed.clone(),
            binding("1000", "sip:1000@10.0.0.2:5060", 200),
            binding("1001", "sip:1001@10.0.0.3:5060", 300),
        ]
    );

    store.remove_binding("1000", "sip:1000@10.0.0.2:5060");
    store.remove_binding("1000", "sip:nonexistent@x"); // no-op
    assert_eq!(store.load_bindings().unwrap().len(), 2);

    // Expiry is inclusive: a binding expiring exactly now is gone.
    store.remove_expired_bindings(300);
    assert_eq!(store.load_bindings().unwrap(), vec![refreshed]);

    store.upsert_binding(binding("1000", "sip:1000@10.0.0.9:5060", 900));
    store.upsert_binding(binding("1002", "sip:1002@10.0.0.9:5060", 900));
    store.remove_all_bindings("1000");
    let left = store.load_bindings().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].user, "1002");
    assert!(thread.join());
}

#[test]
fn many_queued_binding_writes_batch_and_interleave_with_cdrs_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = Store::open(&dir.path().join("s.db")).unwrap();
    for i in 0..2000 {
        store.upsert_binding(binding(&format!("u{i}"), "sip:x@h", i));
        if i % 500 == 0 {
            store.insert_cdr(cdr(&format!("c{i}"), i));
        }
        if i % 3 == 0 {
            store.remove_binding(&format!("u{i}"), "sip:x@h");
        }
    }
    store.flush().unwrap();
    let users = store.load_bindings().unwrap();
    assert_eq!(users.len(), 2000 - 667);
    assert!(
        users
            .iter()
            .all(|b| b.user[1..].parse::<i64>().unwrap() % 3 != 0)
    );
    assert_eq!(store.recent_cdrs(100).unwrap().len(), 4);
    assert!(thread.join());
}

#[test]
fn reopen_persists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let (store, thread) = Store::open(&path).unwrap();
        store.insert_cdr(cdr("persist", 42));
        store.upsert_binding(binding("1000", "sip:1000@h", 77));
        // No flush: join drains the queue before exiting.
        assert!(thread.join());
        assert!(matches!(store.recent_cdrs(1), Err(Error::Closed)));
    }
    let (store, thread) = Store::open(&path).unwrap();
    assert_eq!(store.recent_cdrs(5).unwrap(), vec![cdr("persist", 42)]);
    assert_eq!(
        store.load_bindings().unwrap(),
        vec![binding("1000", "sip:1000@h", 77)]
    );
    assert!(thread.join());
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let (_store, thread) = Store::open(&path).unwrap();
        assert!(thread.join());
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    match Store::open(&path) {
        Err(Error::SchemaTooNew { found: 99, .. }) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a database from the future"),
    }
}

#[test]
fn shutdown_drains_queue_then_later_requests_fail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let (store, thread) = Store::open(&path).unwrap();
    for i in 0..100 {
        store.insert_cdr(cdr(&format!("d{i}"), i));
    }
    store.shutdown();
    assert!(thread.join());
    assert!(matches!(store.flush(), Err(Error::Closed)));
    let (store, thread) = Store::open(&path).unwrap();
    assert_eq!(store.recent_cdrs(1000).unwrap().len(), 100);
    assert!(thread.join());
}

const CHILD_ENV: &str = "SWITCHYARD_STORE_KILL9_CHILD_DB";

/// ARCHITECTURE.md: a kill -9 of the daemon after a call ended loses no CDR. The test re-executes
/// its own binary as a child that inserts a CDR, flushes, says "committed" and then waits to be
/// killed with SIGKILL; the parent reopens the database and looks for the CDR.
#[test]
fn cdr_survives_kill_9() {
    if let Ok(db) = std::env::var(CHILD_ENV) {
        let (store, _thread) = Store::open(std::path::Path::new(&db)).unwrap();
        store.upsert_binding(binding("1000", "sip:1000@h", 77));
        store.insert_cdr(full_cdr("killed", 4242));
        store.insert_recording(recording("killed", "/r/killed.wav.enc", 4242));
        store.insert_queue_log(queue_row(4242, "killed", "abandon"));
        store.flush().unwrap();
        println!("committed");
        use std::io::Write;
        std::io::stdout().flush().unwrap();
        // Keep the connection open (no checkpoint, no clean close) until SIGKILL.
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "cdr_survives_kill_9",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &db)
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
    // The child prints a handful of libtest lines before ours; each gets at most 60 s.
    loop {
        match line_rx.recv_timeout(Duration::from_secs(60)) {
            // libtest prints "test name ... " without a newline before the body prints.
            Ok(line) if line.trim_end().ends_with("committed") => break,
            Ok(_) => continue,
            Err(e) => {
                let _ = child.kill();
                panic!("child never committed: {e}");
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
    }
    // The WAL was never checkpointed: the CDR lives only in k.db-wal.
    assert!(dir.path().join("k.db-wal").exists());

    let (store, thread) = Store::open(&db).unwrap();
    assert_eq!(
        store.recent_cdrs(10).unwrap(),
        vec![full_cdr("killed", 4242)]
    );
    assert_eq!(
        store.recordings_for_call("killed").unwrap(),
        vec![recording("killed", "/r/killed.wav.enc", 4242)]
    );
    assert_eq!(
        store.recent_queue_log(10).unwrap(),
        vec![queue_row(4242, "killed", "abandon")]
    );
    assert_eq!(
        store.load_bindings().unwrap(),
        vec![binding("1000", "sip:1000@h", 77)]
    );
    assert!(thread.join());
}
