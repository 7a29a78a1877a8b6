//! The daemon under test: a copy of a conf template with this test's ports, a data dir,
//! the `switchyard` process, its console and its CDR database.

use crate::slot::Slot;
use crate::{tail, wait_until};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const READY_LINE: &str = "switchyard ready";
const START_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Path of the daemon binary: `$SWITCHYARD_BIN`, else `<target>/debug/switchyard`.
pub fn switchyard_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SWITCHYARD_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "SWITCHYARD_BIN={} does not exist", p.display());
        return p;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_relative() {
                crate::workspace_dir().join(p)
            } else {
                p
            }
        })
        .unwrap_or_else(|| crate::workspace_dir().join("target"));
    let p = target.join("debug").join("switchyard");
    assert!(
        p.is_file(),
        "switchyard binary not found at {}: run `cargo build -p switchyard` first (or set SWITCHYARD_BIN)",
        p.display()
    );
    p
}

/// A CDR row (table `cdr`).
#[derive(Debug, Clone)]
pub struct Cdr {
    pub uuid: String,
    pub caller: String,
    pub callee: String,
    pub destination: String,
    pub start_ms: i64,
    pub answer_ms: Option<i64>,
    pub end_ms: i64,
    pub duration_s: i64,
    pub billsec_s: i64,
    pub hangup_cause: String,
    pub a_sip_code: Option<i64>,
    pub b_sip_code: Option<i64>,
    pub a_call_id: String,
    pub b_call_id: Option<String>,
    pub hangup_side: Option<String>,
    pub rtp_a_in: i64,
    pub rtp_a_out: i64,
    pub rtp_b_in: i64,
    pub rtp_b_out: i64,
}

/// Reads all CDRs from a database file (opened read-only; works while the daemon runs,
/// the store uses WAL).
pub fn read_cdrs(db: &Path) -> Result<Vec<Cdr>, String> {
    use rusqlite::{Connection, OpenFlags};
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("open {}: {e}", db.display()))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    let mut stmt = conn
        .prepare(
            "SELECT uuid, caller, callee, destination, start_ms, answer_ms, end_ms, duration_s, \
             billsec_s, hangup_cause, a_sip_code, b_sip_code, a_call_id, b_call_id, hangup_side, \
             rtp_a_in, rtp_a_out, rtp_b_in, rtp_b_out FROM cdr ORDER BY start_ms",
        )
        .map_err(|e| format!("prepare: {e}"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Cdr {
                uuid: r.get(0)?,
                caller: r.get(1)?,
                callee: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                destination: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                start_ms: r.get(4)?,
                answer_ms: r.get(5)?,
                end_ms: r.get(6)?,
                duration_s: r.get(7)?,
                billsec_s: r.get(8)?,
                hangup_cause: r.get(9)?,
                a_sip_code: r.get(10)?,
                b_sip_code: r.get(11)?,
                a_call_id: r.get::<_, Option<String>>(12)?.unwrap_or_default(),
                b_call_id: r.get(13)?,
                hangup_side: r.get(14)?,
                rtp_a_in: r.get::<_, Option<i64>>(15)?.unwrap_or(0),
                rtp_a_out: r.get::<_, Option<i64>>(16)?.unwrap_or(0),
                rtp_b_in: r.get::<_, Option<i64>>(17)?.unwrap_or(0),
                rtp_b_out: r.get::<_, Option<i64>>(18)?.unwrap_or(0),
            })
        })
        .map_err(|e| format!("query: {e}"))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("row: {e}"))
}

/// One row of the ACD's queue log (mod_acd), as the store keeps it.
#[derive(Debug, Clone)]
pub struct QueueLogRow {
    pub queue: String,
    pub call_uuid: String,
    pub agent: String,
    pub event: String,
}

/// Reads the whole queue log, oldest first (read-only; works while the daemon runs).
pub fn read_queue_log(db: &Path) -> Result<Vec<QueueLogRow>, String> {
    use rusqlite::{Connection, OpenFlags};
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("open {}: {e}", db.display()))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    let mut stmt = conn
        .prepare("SELECT queue, call_uuid, agent, event FROM queue_log ORDER BY id")
        .map_err(|e| format!("prepare: {e}"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(QueueLogRow {
                queue: r.get(0)?,
                call_uuid: r.get(1)?,
                agent: r.get(2)?,
                event: r.get(3)?,
            })
        })
        .map_err(|e| format!("query: {e}"))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("row: {e}"))
}

/// The media columns of a CDR (issue 3).
#[derive(Debug, Clone, Default)]
pub struct CdrQuality {
    pub codec_a: Option<String>,
    pub codec_b: Option<String>,
    pub mos_a: Option<f64>,
    pub mos_b: Option<f64>,
    pub loss_a_pct: Option<f64>,
    pub loss_b_pct: Option<f64>,
    pub jitter_a_ms: Option<f64>,
    pub jitter_b_ms: Option<f64>,
    pub transcoded: Option<bool>,
    pub recording_path: Option<String>,
    pub dtmf_digits: Option<String>,
}

/// The media columns of the CDR of call `uuid`.
pub fn read_cdr_quality(db: &Path, uuid: &str) -> Result<CdrQuality, String> {
    use rusqlite::{Connection, OpenFlags};
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("open {}: {e}", db.display()))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    conn.query_row(
        "SELECT codec_a, codec_b, mos_a, mos_b, loss_a_pct, loss_b_pct, jitter_a_ms, \
         jitter_b_ms, transcoded, recording_path, dtmf_digits FROM cdr WHERE uuid = ?1",
        [uuid],
        |r| {
            Ok(CdrQuality {
                codec_a: r.get(0)?,
                codec_b: r.get(1)?,
                mos_a: r.get(2)?,
                mos_b: r.get(3)?,
                loss_a_pct: r.get(4)?,
                loss_b_pct: r.get(5)?,
                jitter_a_ms: r.get(6)?,
                jitter_b_ms: r.get(7)?,
                transcoded: r.get(8)?,
                recording_path: r.get(9)?,
                dtmf_digits: r.get(10)?,
            })
        },
    )
    .map_err(|e| format!("cdr {uuid}: {e}"))
}

/// Builds a daemon from `tests/conf/<template>` with per-key overrides.
#[derive(Debug, Clone)]
pub struct DaemonBuilder {
    template: String,
    overrides: Vec<(String, String)>,
}

impl DaemonBuilder {
    /// Sets `key = value` in switchyard.toml; `key` is `"table.key"` (e.g.
    /// `"calls.no_answer_timeout_secs"`), value is TOML text (`"3"`, `"\"x\""`).
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.overrides.push((key.to_string(), value.to_string()));
        self
    }

    pub fn start(self) -> Daemon {
        self.start_with_slot(Slot::acquire())
    }

    pub fn start_with_slot(self, slot: Slot) -> Daemon {
        let conf = tempfile::Builder::new()
            .prefix("sy-conf-")
            .tempdir()
            .expect("tempdir");
        let data = tempfile::Builder::new()
            .prefix("sy-data-")
            .tempdir()
            .expect("tempdir");
        let src = crate::e2e_dir().join("conf").join(&self.template);
        assert!(src.is_dir(), "conf template {} missing", src.display());
        let port = slot.sip_port();
        let (lo, hi) = slot.rtp_range();
        copy_tree(&src, conf.path(), &|text| {
            text.replace("127.0.0.1:5060", &format!("127.0.0.1:{port}"))
        });
        let main = conf.path().join("switchyard.toml");
        let mut text = std::fs::read_to_string(&main).expect("read switchyard.toml");
        let sounds = crate::workspace_dir().join("sounds");
        let mut overrides = vec![
            ("media.rtp_port_min".to_string(), lo.to_string()),
            ("media.rtp_port_max".to_string(), hi.to_string()),
            (
                "media.sounds_dir".to_string(),
                format!("{:?}", sounds.display().to_string()),
            ),
        ];
        overrides.extend(self.overrides.clone());
        for (k, v) in &overrides {
            text = set_toml_key(&text, k, v);
        }
        std::fs::write(&main, text).expect("write switchyard.toml");
        let mut d = Daemon {
            slot,
            conf,
            data,
            child: None,
            log: Arc::new(Mutex::new(String::new())),
            bin: switchyard_bin(),
        };
        d.spawn();
        d
    }
}

/// Sets `key` (`"table.key"` or a bare top-level `"key"`) in TOML text: replaces the line
/// defining it when present; otherwise adds it under its `[table]` header (appending the
/// table if missing).
fn set_toml_key(text: &str, key: &str, value: &str) -> String {
    let (table, name) = match key.rsplit_once('.') {
        Some((t, n)) => (Some(t), n),
        None => (None, key),
    };
    let mut out: Vec<String> = Vec::new();
    let mut done = false;
    let mut current: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            current = Some(t.trim_matches(|c| c == '[' || c == ']').trim().to_string());
        }
        let same_table = match table {
            Some(tb) => current.as_deref() == Some(tb),
            None => current.is_none(),
        };
        let is_key = same_table
            && t.strip_prefix(name)
                .map(|rest| rest.trim_start().starts_with('='))
                .unwrap_or(false);
        if is_key && !done {
            out.push(format!("{name} = {value}"));
            done = true;
        } else {
            out.push(line.to_string());
        }
    }
    if !done {
        match table {
            None => {
                let pos = out
                    .iter()
                    .position(|l| l.trim_start().starts_with('['))
                    .unwrap_or(out.len());
                out.insert(pos, format!("{name} = {value}"));
            }
            Some(tb) => {
                let header = format!("[{tb}]");
                match out.iter().position(|l| l.trim() == header) {
                    Some(pos) => out.insert(pos + 1, format!("{name} = {value}")),
                    None => {
                        out.push(String::new());
                        out.push(header);
                        out.push(format!("{name} = {value}"));
                    }
                }
            }
        }
    }
    out.join("\n") + "\n"
}

/// Copies a conf tree, passing every text file through `edit` (binary files are copied as
/// they are): how tests make a template of their own with per-test values filled in.
pub fn copy_tree(src: &Path, dst: &Path, edit: &dyn Fn(&str) -> String) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for entry in std::fs::read_dir(src).expect("read conf dir") {
        let entry = entry.expect("dir entry");
        let from = entry.path();
        let to = dst.join(entry.file_name());
        if from.is_dir() {
            copy_tree(&from, &to, edit);
        } else {
            match std::fs::read_to_string(&from) {
                Ok(text) => std::fs::write(&to, edit(&text)).expect("write conf file"),
                Err(_) => {
                    std::fs::copy(&from, &to).expect("copy conf file");
                }
            }
        }
    }
}

/// A running `switchyard run` process. Dropping it kills the process.
pub struct Daemon {
    slot: Slot,
    conf: tempfile::TempDir,
    data: tempfile::TempDir,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    bin: PathBuf,
}

impl Daemon {
    /// Starts a daemon from `tests/conf/<template>` on a fresh slot.
    pub fn start(template: &str) -> Daemon {
        Daemon::builder(template).start()
    }

    pub fn builder(template: &str) -> DaemonBuilder {
        DaemonBuilder {
            template: template.to_string(),
            overrides: Vec::new(),
        }
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "daemon already running");
        let mut child = Command::new(&self.bin)
            .arg("run")
            .arg("--conf")
            .arg(self.conf.path())
            .arg("--data")
            .arg(self.data.path())
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        let (tx, rx) = mpsc::channel::<bool>();
        for (pipe, name) in [
            (
                child
                    .stderr
                    .take()
                    .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
                "stderr",
            ),
            (
                child
                    .stdout
                    .take()
                    .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
                "stdout",
            ),
        ] {
            let Some(pipe) = pipe else { continue };
            let log = Arc::clone(&self.log);
            let tx = tx.clone();
            std::thread::Builder::new()
                .name(format!("daemon-{name}"))
                .spawn(move || {
                    for line in BufReader::new(pipe).lines() {
                        let Ok(line) = line else { break };
                        let ready = line.contains(READY_LINE);
                        {
                            let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                            l.push_str(&line);
                            l.push('\n');
                        }
                        if ready {
                            let _ = tx.send(true);
                        }
                    }
                    let _ = tx.send(false);
                })
                .expect("spawn log reader");
        }
        drop(tx);
        self.child = Some(child);
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(true) => return,
                Ok(false) => {
                    // One pipe closed; if the process exited, report it.
                    if let Some(st) = self
                        .child
                        .as_mut()
                        .and_then(|c| c.try_wait().ok().flatten())
                    {
                        // Give the readers a moment to drain is unnecessary: EOF means drained.
                        panic!(
                            "switchyard exited ({st}) before printing '{READY_LINE}'\n--- log ---\n{}",
                            self.log()
                        );
                    }
                }
                Err(_) => {
                    let log = self.log();
                    self.kill9();
                    panic!(
                        "switchyard did not print '{READY_LINE}' within {START_TIMEOUT:?}\n--- log ---\n{log}"
                    );
                }
            }
        }
    }

    /// The port slot (SIPp/baresip ports of this test come from it).
    pub fn slot(&self) -> &Slot {
        &self.slot
    }

    /// The daemon's SIP port (UDP and TCP on 127.0.0.1).
    pub fn sip_port(&self) -> u16 {
        self.slot.sip_port()
    }

    pub fn sip_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.sip_port()))
    }

    pub fn conf_dir(&self) -> &Path {
        self.conf.path()
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    pub fn db_path(&self) -> PathBuf {
        self.data.path().join("switchyard.db")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Everything the daemon wrote to stderr/stdout so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The log lines holding every one of `parts`; a `key=value` part also matches the
    /// quoted form tracing writes for strings (`key="value"`).
    pub fn log_lines_with(&self, parts: &[&str]) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| {
                parts.iter().all(|p| match p.split_once('=') {
                    Some((k, v)) => l.contains(p) || l.contains(&format!("{k}=\"{v}\"")),
                    None => l.contains(p),
                })
            })
            .map(str::to_owned)
            .collect()
    }

    /// The last 60 log lines, for assertion messages.
    pub fn log_tail(&self) -> String {
        format!("--- daemon log (tail) ---\n{}", tail(&self.log(), 60))
    }

    /// `switchyard ctl --data DIR CMD`: Ok(stdout) on exit 0, Err(stdout+stderr) otherwise.
    pub fn ctl(&self, cmd: &str) -> Result<String, String> {
        let out = Command::new(&self.bin)
            .arg("ctl")
            .arg("--data")
            .arg(self.data.path())
            .arg(cmd)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("spawn ctl: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// `ctl` that must succeed.
    pub fn ctl_ok(&self, cmd: &str) -> String {
        self.ctl(cmd)
            .unwrap_or_else(|e| panic!("ctl {cmd:?} failed: {e}\n{}", self.log_tail()))
    }

    /// N from the first line of `show calls` ("<N> calls").
    pub fn call_count(&self) -> usize {
        let out = self.ctl_ok("show calls");
        parse_count(&out).unwrap_or_else(|| panic!("cannot parse `show calls` reply: {out:?}"))
    }

    /// User ids of `show registrations` (one binding per line, starting with the user id).
    pub fn registrations(&self) -> Vec<String> {
        let out = self.ctl_ok("show registrations");
        out.lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| w.chars().all(|c| c.is_ascii_digit()) && !w.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The full `show registrations` text.
    pub fn registrations_text(&self) -> String {
        self.ctl_ok("show registrations")
    }

    /// Waits until `user` has at least `n` bindings.
    pub fn wait_registered(&self, user: &str, n: usize, timeout: Duration) {
        wait_until(
            timeout,
            &format!("{n} registration(s) of {user}"),
            || (self.registrations().iter().filter(|u| *u == user).count() >= n).then_some(()),
            || {
                format!(
                    "show registrations:\n{}\n{}",
                    self.ctl("show registrations").unwrap_or_else(|e| e),
                    self.log_tail()
                )
            },
        );
    }

    /// Waits until `show calls` reports `n` calls.
    pub fn wait_calls(&self, n: usize, timeout: Duration) {
        wait_until(
            timeout,
            &format!("`show calls` = {n} calls"),
            || (self.call_count() == n).then_some(()),
            || {
                format!(
                    "show calls:\n{}\n{}",
                    self.ctl("show calls").unwrap_or_else(|e| e),
                    self.log_tail()
                )
            },
        );
    }

    /// All CDRs in the database.
    /// The queue log so far (mod_acd), oldest first.
    pub fn queue_log(&self) -> Vec<QueueLogRow> {
        read_queue_log(&self.db_path()).expect("read the queue log")
    }

    pub fn cdrs(&self) -> Vec<Cdr> {
        read_cdrs(&self.db_path()).unwrap_or_else(|e| panic!("read CDRs: {e}\n{}", self.log_tail()))
    }

    /// Waits until at least `n` CDRs are written (the store writes asynchronously).
    /// The media columns (codecs, MOS, loss, DTMF...) of one call's CDR.
    pub fn cdr_quality(&self, uuid: &str) -> CdrQuality {
        read_cdr_quality(&self.db_path(), uuid).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn wait_cdrs(&self, n: usize, timeout: Duration) -> Vec<Cdr> {
        wait_until(
            timeout,
            &format!("{n} CDR(s)"),
            || read_cdrs(&self.db_path()).ok().filter(|v| v.len() >= n),
            || {
                format!(
                    "CDRs now: {:?}\n{}",
                    read_cdrs(&self.db_path()).map(|v| v.len()),
                    self.log_tail()
                )
            },
        )
    }

    /// `switchyard user add ID --conf DIR`: returns the printed password.
    pub fn user_add(&self, id: &str) -> String {
        let out = Command::new(&self.bin)
            .args(["user", "add", id, "--conf"])
            .arg(self.conf.path())
            .output()
            .expect("spawn user add");
        assert!(
            out.status.success(),
            "user add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Is the process still alive?
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits for the process to exit by itself (e.g. after `shutdown`).
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("daemon not running");
        let st = wait_child(child, timeout);
        match st {
            Some(st) => {
                self.child = None;
                st
            }
            None => panic!(
                "switchyard did not exit within {timeout:?}\n{}",
                self.log_tail()
            ),
        }
    }

    /// SIGKILL, no cleanup by the daemon.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a graceful exit (SIGKILL after 20 s, and panic then).
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let Some(mut c) = self.child.take() else {
            panic!("daemon not running")
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        match wait_child(&mut c, STOP_TIMEOUT) {
            Some(st) => st,
            None => {
                let _ = c.kill();
                let _ = c.wait();
                panic!(
                    "switchyard ignored SIGTERM for {STOP_TIMEOUT:?}\n{}",
                    self.log_tail()
                );
            }
        }
    }

    /// Graceful stop, then start again on the same conf/data dirs and ports.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_str("----- restart -----\n");
        self.spawn();
    }

    /// Start again after `kill9`/`wait_exit`.
    pub fn start_again(&mut self) {
        self.spawn();
    }
}

fn wait_child(c: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    crate::poll_until(timeout, || c.try_wait().ok().flatten())
}

/// Parses "<N> calls" (first line).
pub fn parse_count(out: &str) -> Option<usize> {
    out.lines().next()?.split_whitespace().next()?.parse().ok()
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::set_toml_key;

    #[test]
    fn toml_override_replaces_inserts_and_appends() {
        let t = "[media]\nrtp_port_min = 20000\n[calls]\nno_answer_timeout_secs = 30\n";
        let t = set_toml_key(t, "media.rtp_port_min", "21000");
        let t = set_toml_key(&t, "calls.max_calls", "5");
        let t = set_toml_key(&t, "auth.max_failures", "3");
        assert_eq!(
            t,
            "[media]\nrtp_port_min = 21000\n[calls]\nmax_calls = 5\nno_answer_timeout_secs = 30\n\n[auth]\nmax_failures = 3\n"
        );
    }
}
