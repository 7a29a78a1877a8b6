//! SIPp processes: scenarios from `tests/sipp/*.xml` (optionally with `__NAME__`
//! placeholders substituted), statistics from `-trace_stat`, unexpected messages from
//! `-trace_err`, the full message trace from `-trace_msg`. Killed on drop.

use crate::tail;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Sipp {
    name: String,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

/// What a finished SIPp run reported.
#[derive(Debug, Clone)]
pub struct SippOutcome {
    /// Exit code (0 = all calls succeeded, 1 = some failed, other = error).
    pub code: Option<i32>,
    pub successful: u64,
    pub failed: u64,
    /// Scenario name + stdout/errors/messages tails, for assertion messages.
    pub report: String,
}

impl SippOutcome {
    /// Panics unless exit 0 and exactly `n` successful calls.
    pub fn assert_ok(&self, n: u64, context: &str) {
        assert!(
            self.code == Some(0) && self.successful == n && self.failed == 0,
            "SIPp: expected exit 0 with {n} successful calls, got exit {:?}, {} successful, {} failed\n{}\n{}",
            self.code,
            self.successful,
            self.failed,
            self.report,
            context
        );
    }
}

/// Path of a scenario file in tests/sipp.
pub fn scenario_path(name: &str) -> PathBuf {
    let p = crate::e2e_dir().join("sipp").join(format!("{name}.xml"));
    assert!(p.is_file(), "SIPp scenario {} missing", p.display());
    p
}

impl Sipp {
    /// Runs `sipp -sf tests/sipp/<scenario>.xml <args> 127.0.0.1:<remote>`.
    pub fn spawn(scenario: &str, remote: Option<u16>, args: &[&str]) -> Sipp {
        Sipp::spawn_with(scenario, &[], remote, args)
    }

    /// Like [`Sipp::spawn`], replacing each `(placeholder, value)` in the scenario text first.
    pub fn spawn_with(
        scenario: &str,
        substitutions: &[(&str, &str)],
        remote: Option<u16>,
        args: &[&str],
    ) -> Sipp {
        let dir = tempfile::Builder::new()
            .prefix("sy-sipp-")
            .tempdir()
            .expect("tempdir");
        let mut text = std::fs::read_to_string(scenario_path(scenario)).expect("read scenario");
        for (k, v) in substitutions {
            text = text.replace(k, v);
        }
        let sf = dir.path().join(format!("{scenario}.xml"));
        std::fs::write(&sf, text).expect("write scenario");
        let stdout = std::fs::File::create(dir.path().join("stdout.log")).expect("stdout log");
        let stderr = stdout.try_clone().expect("clone");
        let mut cmd = Command::new("sipp");
        cmd.current_dir(dir.path())
            .arg("-sf")
            .arg(&sf)
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-nostdin"])
            .args(["-trace_stat", "-stf"])
            .arg(dir.path().join("stat.csv"))
            .args(["-fd", "1", "-trace_err", "-error_file"])
            .arg(dir.path().join("errors.log"))
            .args(["-trace_msg", "-message_file"])
            .arg(dir.path().join("messages.log"))
            .args(args);
        if let Some(port) = remote {
            cmd.arg(format!("127.0.0.1:{port}"));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn sipp (is sip-tester installed?)");
        Sipp {
            name: scenario.to_string(),
            child: Some(child),
            dir,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Has the process exited?
    pub fn exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// The SIP messages traced so far.
    pub fn messages(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("messages.log")).unwrap_or_default()
    }

    /// Waits for exit (kills after `timeout`) and returns the outcome.
    pub fn wait(&mut self, timeout: Duration) -> SippOutcome {
        let mut code = None;
        let mut timed_out = false;
        if let Some(mut c) = self.child.take() {
            match crate::poll_until(timeout, || c.try_wait().ok().flatten()) {
                Some(st) => code = st.code(),
                None => {
                    timed_out = true;
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
        }
        let (successful, failed) = self.stats();
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        let report = format!(
            "--- sipp {} {}---\n[stdout tail]\n{}\n[errors]\n{}\n[messages tail]\n{}",
            self.name,
            if timed_out {
                format!("KILLED after {timeout:?} ")
            } else {
                String::new()
            },
            tail(&read("stdout.log"), 25),
            tail(&read("errors.log"), 40),
            tail(&read("messages.log"), 80),
        );
        SippOutcome {
            code,
            successful,
            failed,
            report,
        }
    }

    /// (SuccessfulCall(C), FailedCall(C)) from the last line of the stat CSV.
    pub fn stats(&self) -> (u64, u64) {
        stat_counts(&std::fs::read_to_string(self.dir.path().join("stat.csv")).unwrap_or_default())
    }

    /// SIGKILL now.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Registers `user` (password `pass<user>`) with Contact `127.0.0.1:contact_port` using the
/// register.xml scenario from local port `local_port`; panics unless it gets 200.
pub fn register(daemon_port: u16, local_port: u16, user: &str, contact_port: u16, expires: u32) {
    let pass = format!("pass{user}");
    let lp = local_port.to_string();
    let cp = contact_port.to_string();
    let ex = expires.to_string();
    let mut s = Sipp::spawn(
        "register",
        Some(daemon_port),
        &[
            "-p",
            &lp,
            "-s",
            user,
            "-au",
            user,
            "-ap",
            &pass,
            "-key",
            "contact_port",
            &cp,
            "-key",
            "expires",
            &ex,
            "-m",
            "1",
            "-recv_timeout",
            "5000",
            "-timeout",
            "15",
        ],
    );
    s.wait(Duration::from_secs(20))
        .assert_ok(1, &format!("REGISTER of {user}"));
}

/// Counts from a SIPp `-trace_stat` CSV: (SuccessfulCall(C), FailedCall(C)) of its last row.
pub fn stat_counts(csv: &str) -> (u64, u64) {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let (Some(header), Some(last)) = (lines.next(), lines.next_back()) else {
        return (0, 0);
    };
    let cols: Vec<&str> = header.split(';').collect();
    let vals: Vec<&str> = last.split(';').collect();
    let get = |name: &str| {
        cols.iter()
            .position(|c| *c == name)
            .and_then(|i| vals.get(i))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (get("SuccessfulCall(C)"), get("FailedCall(C)"))
}
