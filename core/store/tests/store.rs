use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use switchyard_store::{Binding, Cdr, Error, Store};

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
    }
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
    let c = cdr("uuid-c", 1_700_000_050_000);
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
        store.insert_cdr(cdr("killed", 4242));
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
    assert_eq!(store.recent_cdrs(10).unwrap(), vec![cdr("killed", 4242)]);
    assert_eq!(
        store.load_bindings().unwrap(),
        vec![binding("1000", "sip:1000@h", 77)]
    );
    assert!(thread.join());
}
