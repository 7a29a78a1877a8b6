//! switchyard-store: the one writer to the database.
//!
//! ARCHITECTURE.md, "One writer to the database": a storage thread owns the SQLite connection and
//! everyone else sends it requests over a channel. Nothing on the signalling or media path ever
//! waits for the disk: CDR and recording inserts and registration updates are fire-and-forget;
//! only startup (`load_bindings`), the console (`recent_cdrs`, `recent_recordings`,
//! `recordings_for_call`, `recent_queue_log`) and tests (`flush`) block for a reply.
//!
//! Durability. The database runs in WAL mode with `synchronous=NORMAL`. A commit then appends the
//! transaction to the `-wal` file with `write(2)` before `COMMIT` returns; the fsync is deferred
//! to the checkpoint. Once the bytes are in the kernel's page cache they survive the death of our
//! process, including `kill -9`, so a CDR whose commit has returned is never lost to a daemon crash
//! (only a power cut or kernel panic can lose the last few transactions, which `synchronous=FULL`
//! would close at the cost of an fsync per call). Each CDR is its own transaction, committed
//! before the thread looks at any other request, so the window between "call ended" and "CDR is
//! crash-safe" is one channel hop and one `write(2)`.
//!
//! Recording metadata (one row per recording file, see `switchyard-recording`) is written like a
//! CDR: its own transaction, committed before anything else.
//!
//! Queue log rows (one per state change of a contact-centre queue, written by mod_acd through
//! the host) are written like CDRs too: reports rebuild a queue's day from them, so a row the
//! daemon queued before a `kill -9` must be there after it.
//!
//! Registrations are written in batches: when several binding updates are queued (a burst of
//! REGISTER refreshes after a restart) they share one transaction.
//!
//! ```no_run
//! # fn main() -> Result<(), switchyard_store::Error> {
//! let (store, thread) = switchyard_store::Store::open(std::path::Path::new("/var/lib/switchyard/switchyard.db"))?;
//! for b in store.load_bindings()? { println!("{} -> {}", b.user, b.contact); }
//! store.shutdown();
//! thread.join();
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, Row, params};

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// SQLite refused an operation (open, migration, query).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer Switchyard; we refuse to downgrade it.
    #[error(
        "database schema version {found} is newer than this build supports ({supported}); upgrade switchyard"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    /// The storage thread has exited (after `shutdown`, or it panicked).
    #[error("the storage thread is not running")]
    Closed,
    /// The storage thread could not be started.
    #[error("cannot start the storage thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// A call detail record: one per call, written when the call ends.
///
/// Fields are only ever added: build one with `..Cdr::default()` for what you do not know.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cdr {
    pub uuid: String,
    pub caller: String,
    pub callee: String,
    /// The dialled number (Request-URI user part as received).
    pub destination: String,
    /// Unix time in milliseconds when the INVITE arrived.
    pub start_ms: i64,
    /// Unix time in milliseconds when the call was answered (200 OK), if it was.
    pub answer_ms: Option<i64>,
    /// Unix time in milliseconds when the call ended.
    pub end_ms: i64,
    /// (end - start) in whole seconds, rounded down.
    pub duration_s: i64,
    /// (end - answer) in whole seconds, or 0 for an unanswered call.
    pub billsec_s: i64,
    /// Q.850-style cause name: NORMAL_CLEARING, ORIGINATOR_CANCEL, NO_ANSWER, USER_BUSY, ...
    pub hangup_cause: String,
    /// The final response code we sent the caller.
    pub a_sip_code: Option<u16>,
    /// The final response code the callee sent us.
    pub b_sip_code: Option<u16>,
    pub a_call_id: String,
    pub b_call_id: Option<String>,
    /// Who hung up: "caller", "callee" or "system".
    pub hangup_side: String,
    /// RTP packets the relay received from the caller (a-leg) and sent to it.
    pub rtp_a_in: i64,
    pub rtp_a_out: i64,
    /// RTP packets the relay received from the callee (b-leg) and sent to it.
    pub rtp_b_in: i64,
    pub rtp_b_out: i64,
    /// The codec negotiated on each leg, as "encoding name" or "name/clock rate"
    /// ("PCMA", "opus/48000").
    pub codec_a: Option<String>,
    pub codec_b: Option<String>,
    /// Estimated MOS of each leg (ITU-T G.107 E-model R factor mapped per G.107 Annex B).
    pub mos_a: Option<f64>,
    pub mos_b: Option<f64>,
    /// Packet loss we measured receiving from each leg, in percent.
    pub loss_a_pct: Option<f64>,
    pub loss_b_pct: Option<f64>,
    /// Interarrival jitter of what we received from each leg (RFC 3550 §6.4.1), in ms.
    pub jitter_a_ms: Option<f64>,
    pub jitter_b_ms: Option<f64>,
    /// Round-trip time to each leg from RTCP (RFC 3550 §6.4.1 LSR/DLSR), in ms.
    pub rtt_a_ms: Option<f64>,
    pub rtt_b_ms: Option<f64>,
    /// True if media was decoded and re-encoded between the legs (not relayed as is).
    pub transcoded: bool,
    /// The call's recording file, if it was recorded.
    pub recording_path: Option<String>,
    /// DTMF digits seen on the call, in order (RFC 4733 events or in-band), for audit.
    pub dtmf_digits: Option<String>,
}

/// One recording file of a call (written when the recording is finalized).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recording {
    /// The recorded call's uuid (the CDR's `uuid`); a call may have several recordings.
    pub call_uuid: String,
    /// Full path of the file; unique.
    pub path: String,
    /// "mono" or "stereo" (caller left, callee right).
    pub layout: String,
    pub sample_rate: u32,
    pub duration_ms: i64,
    /// Size of the file.
    pub bytes: i64,
    /// The file is in the encrypted format (".wav.enc").
    pub encrypted: bool,
    /// Time paused (written as silence; PCI-DSS).
    pub paused_ms: i64,
    /// Frames lost because the recorder fell behind (written as silence).
    pub frames_dropped: i64,
    /// Unix time in milliseconds when the recording was finalized.
    pub created_ms: i64,
    /// Why the file is missing or incomplete, if it is.
    pub error: Option<String>,
}

/// One state change of a contact-centre queue (a caller joined, was offered to an agent,
/// answered, abandoned, overflowed; an agent changed state), as Asterisk's queue_log and
/// FreeSWITCH mod_callcenter's events record them for reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueLogEntry {
    /// Unix time in milliseconds when the host received the change.
    pub at_unix_ms: i64,
    pub queue: String,
    /// The caller's call uuid; empty for an agent's own change.
    pub call_uuid: String,
    /// The agent concerned; empty when none is.
    pub agent: String,
    /// What happened, in the module's words ("enter", "offer", "answer", "abandon", ...).
    pub event: String,
    /// The details, as JSON text.
    pub data: String,
}

/// A registration binding (RFC 3261 §10.3): one Contact of one address-of-record.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    pub user: String,
    /// The Contact URI exactly as the user agent sent it.
    pub contact: String,
    /// The flow the REGISTER came in on, e.g. "udp:1.2.3.4:5060" or "tcp:1.2.3.4:40312".
    pub source: String,
    pub expires_unix: i64,
    /// RFC 3261 §10.3 step 7: Call-ID and CSeq order refreshes of the same binding.
    pub call_id: String,
    pub cseq: u32,
    pub user_agent: Option<String>,
    pub q: Option<f32>,
}

enum Request {
    InsertCdr(Box<Cdr>),
    UpsertBinding(Binding),
    RemoveBinding { user: String, contact: String },
    RemoveAllBindings { user: String },
    RemoveExpiredBindings { now_unix: i64 },
    LoadBindings(Sender<Result<Vec<Binding>, Error>>),
    RecentCdrs(usize, Sender<Result<Vec<Cdr>, Error>>),
    InsertRecording(Box<Recording>),
    RecordingsForCall(String, Sender<Result<Vec<Recording>, Error>>),
    RecentRecordings(usize, Sender<Result<Vec<Recording>, Error>>),
    InsertQueueLog(Box<QueueLogEntry>),
    RecentQueueLog(usize, Sender<Result<Vec<QueueLogEntry>, Error>>),
    Flush(Sender<Result<(), Error>>),
    Shutdown,
}

impl Request {
    /// Registration writes may share a transaction with their neighbours in the queue.
    fn is_batchable(&self) -> bool {
        matches!(
            self,
            Request::UpsertBinding(_)
                | Request::RemoveBinding { .. }
                | Request::RemoveAllBindings { .. }
                | Request::RemoveExpiredBindings { .. }
        )
    }
}

/// Upper bound on requests in one batched transaction, so a flood of REGISTERs cannot hold a
/// write transaction (and delay the next CDR) for long.
const MAX_BATCH: usize = 512;

/// Handle to the storage thread. Cheap to clone; every clone talks to the same thread.
#[derive(Clone)]
pub struct Store {
    tx: Sender<Request>,
}

/// The storage thread itself; [`StoreThread::join`] waits for it to finish its queue and exit.
pub struct StoreThread {
    tx: Sender<Request>,
    handle: JoinHandle<()>,
}

impl StoreThread {
    /// Asks the thread to stop after the requests already queued, and waits for it.
    /// Returns false if the thread had panicked.
    pub fn join(self) -> bool {
        // Harmless if shutdown() was already sent: the thread is gone or exits at the first one.
        let _ = self.tx.send(Request::Shutdown);
        self.handle.join().is_ok()
    }
}

/// Schema migrations; entry i takes `user_version` from i to i+1. Each runs in one transaction
/// with its version bump, so a database is always at exactly one version. Never edit an entry
/// that has shipped: add one.
const MIGRATIONS: &[&str] = &[
    "
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
",
    "
    ALTER TABLE cdr ADD COLUMN codec_a TEXT;
    ALTER TABLE cdr ADD COLUMN codec_b TEXT;
    ALTER TABLE cdr ADD COLUMN mos_a REAL;
    ALTER TABLE cdr ADD COLUMN mos_b REAL;
    ALTER TABLE cdr ADD COLUMN loss_a_pct REAL;
    ALTER TABLE cdr ADD COLUMN loss_b_pct REAL;
    ALTER TABLE cdr ADD COLUMN jitter_a_ms REAL;
    ALTER TABLE cdr ADD COLUMN jitter_b_ms REAL;
    ALTER TABLE cdr ADD COLUMN rtt_a_ms REAL;
    ALTER TABLE cdr ADD COLUMN rtt_b_ms REAL;
    ALTER TABLE cdr ADD COLUMN transcoded INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE cdr ADD COLUMN recording_path TEXT;
    ALTER TABLE cdr ADD COLUMN dtmf_digits TEXT;
    CREATE TABLE recording (
        id              INTEGER PRIMARY KEY,
        call_uuid       TEXT NOT NULL,
        path            TEXT NOT NULL UNIQUE,
        layout          TEXT NOT NULL,
        sample_rate     INTEGER NOT NULL,
        duration_ms     INTEGER NOT NULL,
        bytes           INTEGER NOT NULL,
        encrypted       INTEGER NOT NULL,
        paused_ms       INTEGER NOT NULL DEFAULT 0,
        frames_dropped  INTEGER NOT NULL DEFAULT 0,
        created_ms      INTEGER NOT NULL,
        error           TEXT
    );
    CREATE INDEX recording_call_uuid ON recording(call_uuid);
    CREATE INDEX recording_created_ms ON recording(created_ms);
",
    "
    CREATE TABLE queue_log (
        id          INTEGER PRIMARY KEY,
        at_unix_ms  INTEGER NOT NULL,
        queue       TEXT NOT NULL,
        call_uuid   TEXT NOT NULL,
        agent       TEXT NOT NULL,
        event       TEXT NOT NULL,
        data        TEXT NOT NULL
    );
    CREATE INDEX queue_log_at ON queue_log(at_unix_ms);
    CREATE INDEX queue_log_call_uuid ON queue_log(call_uuid);
",
];

const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn configure(conn: &Connection) -> Result<(), Error> {
    // journal_mode returns the resulting mode as a row.
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, "SQLite refused WAL mode; CDR writes will be slower");
    }
    // See the crate docs: NORMAL in WAL mode is durable against process death.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Another process (sqlite3 CLI, a backup) may hold a read lock briefly.
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), Error> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version as i64 + 1)?;
        tx.commit()?;
        tracing::info!(version = version + 1, "database schema migrated");
    }
    Ok(())
}

impl Store {
    /// Opens or creates the database at `path`, brings its schema up to date
    /// (`PRAGMA user_version`) and starts the storage thread.
    pub fn open(path: &Path) -> Result<(Store, StoreThread), Error> {
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        migrate(&mut conn)?;
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("store".into())
            .spawn(move || StorageThread { conn }.run(rx))
            .map_err(Error::Spawn)?;
        Ok((Store { tx: tx.clone() }, StoreThread { tx, handle }))
    }

    fn send(&self, req: Request) {
        if self.tx.send(req).is_err() {
            tracing::error!("storage thread is not running; write dropped");
        }
    }

    fn ask<T>(&self, make: impl FnOnce(Sender<Result<T, Error>>) -> Request) -> Result<T, Error> {
        let (reply_tx, reply_rx) = mpsc::channel();
        self.tx.send(make(reply_tx)).map_err(|_| Error::Closed)?;
        reply_rx.recv().map_err(|_| Error::Closed)?
    }

    /// Queues a CDR; the storage thread commits it in its own transaction before doing
    /// anything else. Errors are logged there.
    pub fn insert_cdr(&self, cdr: Cdr) {
        self.send(Request::InsertCdr(Box::new(cdr)));
    }

    /// Queues a recording's metadata; committed in its own transaction, like a CDR. A second
    /// row for the same `path` is refused (and logged).
    pub fn insert_recording(&self, recording: Recording) {
        self.send(Request::InsertRecording(Box::new(recording)));
    }

    /// Every recording of one call, oldest first. Blocks.
    pub fn recordings_for_call(&self, call_uuid: &str) -> Result<Vec<Recording>, Error> {
        self.ask(|reply| Request::RecordingsForCall(call_uuid.to_owned(), reply))
    }

    /// The `limit` most recent recordings, newest (by `created_ms`) first. Blocks.
    pub fn recent_recordings(&self, limit: usize) -> Result<Vec<Recording>, Error> {
        self.ask(|reply| Request::RecentRecordings(limit, reply))
    }

    /// Queues a queue-log row; committed in its own transaction, like a CDR.
    pub fn insert_queue_log(&self, entry: QueueLogEntry) {
        self.send(Request::InsertQueueLog(Box::new(entry)));
    }

    /// The `limit` most recent queue-log rows, newest (by time, then insertion) first. Blocks.
    pub fn recent_queue_log(&self, limit: usize) -> Result<Vec<QueueLogEntry>, Error> {
        self.ask(|reply| Request::RecentQueueLog(limit, reply))
    }

    /// Inserts or replaces the binding keyed by (user, contact).
    pub fn upsert_binding(&self, binding: Binding) {
        self.send(Request::UpsertBinding(binding));
    }

    pub fn remove_binding(&self, user: &str, contact: &str) {
        self.send(Request::RemoveBinding {
            user: user.to_owned(),
            contact: contact.to_owned(),
        });
    }

    /// RFC 3261 §10.2.2: `Contact: *` with `Expires: 0` removes every binding of the AOR.
    pub fn remove_all_bindings(&self, user: &str) {
        self.send(Request::RemoveAllBindings {
            user: user.to_owned(),
        });
    }

    /// Removes every binding with `expires_unix <= now_unix`.
    pub fn remove_expired_bindings(&self, now_unix: i64) {
        self.send(Request::RemoveExpiredBindings { now_unix });
    }

    /// Every stored binding (expired ones included: the caller knows the time), ordered by
    /// user then contact. Blocks; meant for startup.
    pub fn load_bindings(&self) -> Result<Vec<Binding>, Error> {
        self.ask(Request::LoadBindings)
    }

    /// The `limit` most recent CDRs, newest (by end time) first. Blocks.
    pub fn recent_cdrs(&self, limit: usize) -> Result<Vec<Cdr>, Error> {
        self.ask(|reply| Request::RecentCdrs(limit, reply))
    }

    /// Blocks until every request sent before this call is committed.
    pub fn flush(&self) -> Result<(), Error> {
        self.ask(Request::Flush)
    }

    /// Asks the thread to finish the requests already queued and exit. Later writes are
    /// dropped (and logged); later queries return [`Error::Closed`].
    pub fn shutdown(&self) {
        let _ = self.tx.send(Request::Shutdown);
    }
}

struct StorageThread {
    conn: Connection,
}

impl StorageThread {
    fn run(self, rx: Receiver<Request>) {
        let mut pending: Option<Request> = None;
        let mut draining = false;
        loop {
            let req = match pending.take() {
                Some(req) => req,
                None if draining => match rx.try_recv() {
                    Ok(req) => req,
                    Err(_) => break,
                },
                None => match rx.recv() {
                    Ok(req) => req,
                    Err(_) => break, // every Store and the StoreThread are gone
                },
            };
            if req.is_batchable() {
                pending = self.write_batch(req, &rx);
                continue;
            }
            match req {
                Request::InsertCdr(cdr) => {
                    if let Err(e) = self.insert_cdr(&cdr) {
                        tracing::error!(uuid = %cdr.uuid, error = %e, "CDR insert failed");
                    }
                }
                Request::InsertRecording(rec) => {
                    if let Err(e) = self.insert_recording(&rec) {
                        tracing::error!(uuid = %rec.call_uuid, path = %rec.path, error = %e, "recording insert failed");
                    }
                }
                Request::RecordingsForCall(uuid, reply) => {
                    let _ = reply.send(self.recordings_for_call(&uuid));
                }
                Request::RecentRecordings(limit, reply) => {
                    let _ = reply.send(self.recent_recordings(limit));
                }
                Request::InsertQueueLog(entry) => {
                    if let Err(e) = self.insert_queue_log(&entry) {
                        tracing::error!(queue = %entry.queue, event = %entry.event, error = %e, "queue log insert failed");
                    }
                }
                Request::RecentQueueLog(limit, reply) => {
                    let _ = reply.send(self.recent_queue_log(limit));
                }
                Request::LoadBindings(reply) => {
                    let _ = reply.send(self.load_bindings());
                }
                Request::RecentCdrs(limit, reply) => {
                    let _ = reply.send(self.recent_cdrs(limit));
                }
                Request::Flush(reply) => {
                    // Every earlier request was committed when it was processed.
                    let _ = reply.send(Ok(()));
                }
                Request::Shutdown => draining = true,
                _ => unreachable!("batchable requests are handled above"),
            }
        }
        tracing::debug!("storage thread exiting");
    }

    /// Applies `first` and every batchable request queued behind it in one transaction.
    /// Returns the first non-batchable request found, to be processed next.
    fn write_batch(&self, first: Request, rx: &Receiver<Request>) -> Option<Request> {
        let mut next = None;
        // `unchecked_transaction` borrows shared: this thread is the only user of the connection.
        let tx = match self.conn.unchecked_transaction() {
            Ok(tx) => tx,
            Err(e) => {
                tracing::error!(error = %e, "cannot begin transaction");
                // Fall back to autocommit for this one request.
                if let Err(e) = apply_binding_write(&self.conn, &first) {
                    tracing::error!(error = %e, "registration write failed");
                }
                return None;
            }
        };
        let mut req = first;
        let mut count = 1;
        loop {
            // A failed statement is rolled back on its own; the rest of the batch stands.
            if let Err(e) = apply_binding_write(&tx, &req) {
                tracing::error!(error = %e, "registration write failed");
            }
            if count >= MAX_BATCH {
                break;
            }
            match rx.try_recv() {
                Ok(r) if r.is_batchable() => {
                    req = r;
                    count += 1;
                }
                Ok(r) => {
                    next = Some(r);
                    break;
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if let Err(e) = tx.commit() {
            tracing::error!(error = %e, count, "registration batch commit failed");
        }
        next
    }

    fn insert_cdr(&self, c: &Cdr) -> Result<(), rusqlite::Error> {
        // Autocommit: the INSERT is its own transaction and is in the WAL when execute returns.
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO cdr (uuid, caller, callee, destination, start_ms, answer_ms, end_ms,
                duration_s, billsec_s, hangup_cause, a_sip_code, b_sip_code, a_call_id, b_call_id,
                hangup_side, rtp_a_in, rtp_a_out, rtp_b_in, rtp_b_out, codec_a, codec_b, mos_a,
                mos_b, loss_a_pct, loss_b_pct, jitter_a_ms, jitter_b_ms, rtt_a_ms, rtt_b_ms,
                transcoded, recording_path, dtmf_digits)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32)",
        )?;
        stmt.execute(params![
            c.uuid,
            c.caller,
            c.callee,
            c.destination,
            c.start_ms,
            c.answer_ms,
            c.end_ms,
            c.duration_s,
            c.billsec_s,
            c.hangup_cause,
            c.a_sip_code,
            c.b_sip_code,
            c.a_call_id,
            c.b_call_id,
            c.hangup_side,
            c.rtp_a_in,
            c.rtp_a_out,
            c.rtp_b_in,
            c.rtp_b_out,
            c.codec_a,
            c.codec_b,
            c.mos_a,
            c.mos_b,
            c.loss_a_pct,
            c.loss_b_pct,
            c.jitter_a_ms,
            c.jitter_b_ms,
            c.rtt_a_ms,
            c.rtt_b_ms,
            c.transcoded,
            c.recording_path,
            c.dtmf_digits,
        ])?;
        Ok(())
    }

    fn insert_recording(&self, r: &Recording) -> Result<(), rusqlite::Error> {
        // Autocommit, as for a CDR: in the WAL when execute returns.
        self.conn
            .prepare_cached(
                "INSERT INTO recording (call_uuid, path, layout, sample_rate, duration_ms, bytes,
                    encrypted, paused_ms, frames_dropped, created_ms, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                r.call_uuid,
                r.path,
                r.layout,
                r.sample_rate,
                r.duration_ms,
                r.bytes,
                r.encrypted,
                r.paused_ms,
                r.frames_dropped,
                r.created_ms,
                r.error,
            ])?;
        Ok(())
    }

    fn insert_queue_log(&self, q: &QueueLogEntry) -> Result<(), rusqlite::Error> {
        // Autocommit, as for a CDR: in the WAL when execute returns.
        self.conn
            .prepare_cached(
                "INSERT INTO queue_log (at_unix_ms, queue, call_uuid, agent, event, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                q.at_unix_ms,
                q.queue,
                q.call_uuid,
                q.agent,
                q.event,
                q.data
            ])?;
        Ok(())
    }

    fn recent_queue_log(&self, limit: usize) -> Result<Vec<QueueLogEntry>, Error> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT at_unix_ms, queue, call_uuid, agent, event, data
             FROM queue_log ORDER BY at_unix_ms DESC, id DESC LIMIT ?1",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map([limit], |r| {
            Ok(QueueLogEntry {
                at_unix_ms: r.get(0)?,
                queue: r.get(1)?,
                call_uuid: r.get(2)?,
                agent: r.get(3)?,
                event: r.get(4)?,
                data: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn recordings_for_call(&self, call_uuid: &str) -> Result<Vec<Recording>, Error> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {RECORDING_COLUMNS} FROM recording WHERE call_uuid = ?1 ORDER BY created_ms, id"
        ))?;
        let rows = stmt.query_map([call_uuid], recording_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn recent_recordings(&self, limit: usize) -> Result<Vec<Recording>, Error> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {RECORDING_COLUMNS} FROM recording ORDER BY created_ms DESC, id DESC LIMIT ?1"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map([limit], recording_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn load_bindings(&self) -> Result<Vec<Binding>, Error> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT user, contact, source, expires_unix, call_id, cseq, user_agent, q
             FROM registration ORDER BY user, contact",
        )?;
        let rows = stmt.query_map([], binding_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn recent_cdrs(&self, limit: usize) -> Result<Vec<Cdr>, Error> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT uuid, caller, callee, destination, start_ms, answer_ms, end_ms, duration_s,
                billsec_s, hangup_cause, a_sip_code, b_sip_code, a_call_id, b_call_id, hangup_side,
                rtp_a_in, rtp_a_out, rtp_b_in, rtp_b_out, codec_a, codec_b, mos_a, mos_b,
                loss_a_pct, loss_b_pct, jitter_a_ms, jitter_b_ms, rtt_a_ms, rtt_b_ms, transcoded,
                recording_path, dtmf_digits
             FROM cdr ORDER BY end_ms DESC, id DESC LIMIT ?1",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map([limit], cdr_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn apply_binding_write(conn: &Connection, req: &Request) -> Result<(), rusqlite::Error> {
    match req {
        Request::UpsertBinding(b) => {
            conn.prepare_cached(
                "INSERT INTO registration (user, contact, source, expires_unix, call_id, cseq, user_agent, q)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (user, contact) DO UPDATE SET
                    source = excluded.source, expires_unix = excluded.expires_unix,
                    call_id = excluded.call_id, cseq = excluded.cseq,
                    user_agent = excluded.user_agent, q = excluded.q",
            )?
            .execute(params![
                b.user,
                b.contact,
                b.source,
                b.expires_unix,
                b.call_id,
                b.cseq,
                b.user_agent,
                b.q.map(f64::from),
            ])?;
        }
        Request::RemoveBinding { user, contact } => {
            conn.prepare_cached("DELETE FROM registration WHERE user = ?1 AND contact = ?2")?
                .execute(params![user, contact])?;
        }
        Request::RemoveAllBindings { user } => {
            conn.prepare_cached("DELETE FROM registration WHERE user = ?1")?
                .execute([user])?;
        }
        Request::RemoveExpiredBindings { now_unix } => {
            conn.prepare_cached("DELETE FROM registration WHERE expires_unix <= ?1")?
                .execute([now_unix])?;
        }
        _ => {}
    }
    Ok(())
}

fn binding_from_row(r: &Row<'_>) -> rusqlite::Result<Binding> {
    Ok(Binding {
        user: r.get(0)?,
        contact: r.get(1)?,
        source: r.get(2)?,
        expires_unix: r.get(3)?,
        call_id: r.get(4)?,
        cseq: r.get(5)?,
        user_agent: r.get(6)?,
        q: r.get::<_, Option<f64>>(7)?.map(|q| q as f32),
    })
}

fn cdr_from_row(r: &Row<'_>) -> rusqlite::Result<Cdr> {
    Ok(Cdr {
        uuid: r.get(0)?,
        caller: r.get(1)?,
        callee: r.get(2)?,
        destination: r.get(3)?,
        start_ms: r.get(4)?,
        answer_ms: r.get(5)?,
        end_ms: r.get(6)?,
        duration_s: r.get(7)?,
        billsec_s: r.get(8)?,
        hangup_cause: r.get(9)?,
        a_sip_code: r.get(10)?,
        b_sip_code: r.get(11)?,
        a_call_id: r.get(12)?,
        b_call_id: r.get(13)?,
        hangup_side: r.get(14)?,
        rtp_a_in: r.get(15)?,
        rtp_a_out: r.get(16)?,
        rtp_b_in: r.get(17)?,
        rtp_b_out: r.get(18)?,
        codec_a: r.get(19)?,
        codec_b: r.get(20)?,
        mos_a: r.get(21)?,
        mos_b: r.get(22)?,
        loss_a_pct: r.get(23)?,
        loss_b_pct: r.get(24)?,
        jitter_a_ms: r.get(25)?,
        jitter_b_ms: r.get(26)?,
        rtt_a_ms: r.get(27)?,
        rtt_b_ms: r.get(28)?,
        transcoded: r.get(29)?,
        recording_path: r.get(30)?,
        dtmf_digits: r.get(31)?,
    })
}

const RECORDING_COLUMNS: &str =
    "call_uuid, path, layout, sample_rate, duration_ms, bytes, encrypted,
    paused_ms, frames_dropped, created_ms, error";

fn recording_from_row(r: &Row<'_>) -> rusqlite::Result<Recording> {
    Ok(Recording {
        call_uuid: r.get(0)?,
        path: r.get(1)?,
        layout: r.get(2)?,
        sample_rate: r.get(3)?,
        duration_ms: r.get(4)?,
        bytes: r.get(5)?,
        encrypted: r.get(6)?,
        paused_ms: r.get(7)?,
        frames_dropped: r.get(8)?,
        created_ms: r.get(9)?,
        error: r.get(10)?,
    })
}
