//! Switchyard benchmark against SIPp (run through `tests/bench/run`, which builds a release
//! daemon and sets SWITCHYARD_BIN):
//!
//! (a) B2BUA call rate: SIPp UACs → switchyard → SIPp UASs, signalling only (INVITE with the
//!     407 round trip, ACK, BYE), stepping the rate up until calls fail, the generators fall
//!     behind the target rate, or the daemon's signalling thread fills one core. Per step it
//!     prints the daemon's CPU (whole process and busiest thread, from /proc) next to the
//!     SIPp processes' CPU, so the reader sees which side was the bottleneck: the machine may
//!     have only a couple of cores shared by the daemon and every SIPp process.
//! (b) CPU cost of media relay: 100 concurrent G.711 calls (SIPp plays g711a.pcap in a loop,
//!     the UAS echoes), daemon utime+stime over a 30 s window from /proc/<pid>/stat.
//!
//! "achieved" is completed calls over the wall time from the first INVITE to the last
//! caller's exit (SIPp's 0.2 s timewait included, so it reads a few % under the target).
//!
//! Usage: bench [--rates 400,800,...] [--step-secs 10] [--skip-cps] [--skip-cpu]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use switchyard_e2e::sipp::stat_counts;
use switchyard_e2e::slot::offset;
use switchyard_e2e::{Daemon, Sipp, Slot, sipp};

/// One SIPp process tops out near 1,000 calls/s on this scenario (it is single-threaded and
/// handles ~8 messages per call); half that leaves it headroom to hold the asked rate.
const CPS_PER_UAC: u32 = 500;
/// A UAS handles fewer messages per call than a UAC (no 407 round trip).
const CPS_PER_UAS: u32 = 800;
/// Callee users of the test directory (1001..1009); each UAS registers as one of them.
/// Distinct users rather than several contacts of one user: contacts of one user fork.
const MAX_UAS: u32 = 9;
/// The bench's own port block holds this many UACs (6 ports each, see `uac_ports`).
const MAX_UAC: u32 = 16;
/// Above the kernel's ephemeral range (32768–60999) and outside the e2e slots' RTP ranges
/// (20000–39999), so the bench daemon never binds a port a concurrent e2e test owns.
const BENCH_RTP: (&str, &str) = ("61000", "64999");
/// Stop stepping once the busiest daemon thread uses this share of a core: it is saturated.
const SATURATED_PCT: f64 = 95.0;
/// Stop stepping when the callers achieve less than this share of the asked rate: SIPp (or
/// the daemon) cannot keep up, and higher steps would only measure the same ceiling.
const MIN_ACHIEVED: f64 = 0.9;
const DEFAULT_RATES: &str = "400,800,1200,1600,2000,2500,3000,3500,4000,5000,6000";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let rates: Vec<u32> = opt("--rates")
        .unwrap_or_else(|| DEFAULT_RATES.into())
        .split(',')
        .map(|r| r.trim().parse().expect("rate"))
        .collect();
    let step_secs: u32 = opt("--step-secs")
        .map(|s| s.parse().expect("secs"))
        .unwrap_or(10);
    let bin = switchyard_e2e::daemon::switchyard_bin();
    println!("switchyard benchmark — daemon {}", bin.display());
    if bin.components().any(|c| c.as_os_str() == "debug") {
        println!("WARNING: this is a DEBUG build; use tests/bench/run for release figures");
    }
    println!(
        "host: {} CPU(s), shared by the daemon and every SIPp process",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if !args.iter().any(|a| a == "--skip-cps") {
        bench_cps(&rates, step_secs);
    }
    if !args.iter().any(|a| a == "--skip-cpu") {
        bench_media_cpu();
    }
}

fn bench_daemon() -> Daemon {
    Daemon::builder("basic")
        // The bench runs alone: a wide RTP range of its own and no artificial limits.
        .set("media.rtp_port_min", BENCH_RTP.0)
        .set("media.rtp_port_max", BENCH_RTP.1)
        .set("calls.max_calls", "100000")
        .start()
}

/// A SIPp process for the rate bench. Unlike [`Sipp`] it keeps no message trace: writing
/// every message to a file would cost SIPp more CPU than the calls themselves, and the
/// generators share the cores with the daemon. Killed on drop.
struct Generator {
    child: Child,
    dir: tempfile::TempDir,
    /// Last utime+stime seen in /proc (a reaped process has no /proc entry any more).
    cpu: f64,
    code: Option<i32>,
    /// Its signalling port and the most datagrams the kernel was seen dropping there.
    port: u16,
    drops: u64,
}

impl Generator {
    /// `port` is the signalling port, also passed in `args` as `-p`.
    fn spawn(scenario: &str, port: u16, remote: Option<u16>, args: &[&str]) -> Generator {
        let dir = tempfile::Builder::new()
            .prefix("sy-bench-")
            .tempdir()
            .expect("tempdir");
        let log = std::fs::File::create(dir.path().join("stdout.log")).expect("stdout log");
        let mut cmd = Command::new("sipp");
        cmd.current_dir(dir.path())
            .arg("-sf")
            .arg(sipp::scenario_path(scenario))
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-nostdin"])
            .args(["-trace_stat", "-stf"])
            .arg(dir.path().join("stat.csv"))
            .args(["-fd", "1", "-trace_err", "-error_file"])
            .arg(dir.path().join("errors.log"))
            .args(args);
        if let Some(port) = remote {
            cmd.arg(format!("127.0.0.1:{port}"));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn sipp (is sip-tester installed?)");
        Generator {
            child,
            dir,
            cpu: 0.0,
            code: None,
            port,
            drops: 0,
        }
    }

    /// Samples the CPU time; true once the process has exited (and is reaped).
    fn poll(&mut self) -> bool {
        if self.code.is_some() {
            return true;
        }
        if let Some(c) = proc_cpu_secs(&format!("/proc/{}/stat", self.child.id())) {
            self.cpu = c;
        }
        match self.child.try_wait() {
            Ok(Some(st)) => {
                // -1: killed by a signal.
                self.code = Some(st.code().unwrap_or(-1));
                true
            }
            Ok(None) => false,
            Err(_) => {
                self.code = Some(-1);
                true
            }
        }
    }

    /// (SuccessfulCall(C), FailedCall(C)) from the last line of the stat CSV.
    fn stats(&self) -> (u64, u64) {
        stat_counts(&std::fs::read_to_string(self.dir.path().join("stat.csv")).unwrap_or_default())
    }

    fn errors_tail(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        format!(
            "[stdout]\n{}\n[errors]\n{}",
            switchyard_e2e::tail(&read("stdout.log"), 10),
            switchyard_e2e::tail(&read("errors.log"), 20)
        )
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        if self.code.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// CPU seconds (utime + stime) of a process or thread, from its `stat` file.
fn proc_cpu_secs(stat_path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    let (_, ticks) = parse_stat_ticks(&stat)?;
    Some(ticks as f64 / clk_tck())
}

/// (command name, utime + stime ticks) from a `/proc/.../stat` line. The name is in
/// parentheses and may itself hold spaces or parentheses: fields resume after the last ')'.
fn parse_stat_ticks(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_string();
    let f: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime), counted from 1 with pid and comm as 1 and 2.
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some((name, ticks))
}

fn clk_tck() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// CPU seconds per thread of a process: (thread id, name, seconds).
fn thread_cpu(pid: u32) -> Vec<(String, String, f64)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let tid = e.file_name().to_string_lossy().into_owned();
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let (name, ticks) = parse_stat_ticks(&stat)?;
        Some((tid, name, ticks as f64 / clk_tck()))
    })
    .collect()
}

/// The thread that used the most CPU between two samples: (name, seconds).
fn busiest_thread(
    before: &[(String, String, f64)],
    after: &[(String, String, f64)],
) -> (String, f64) {
    after
        .iter()
        .map(|(tid, name, secs)| {
            let start = before
                .iter()
                .find(|(t, _, _)| t == tid)
                .map_or(0.0, |b| b.2);
            (name.clone(), secs - start)
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or_default()
}

/// Busy and total jiffies of the whole host (first line of /proc/stat).
fn host_jiffies() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    // idle + iowait are not busy.
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Datagrams the kernel dropped on UDP sockets (receive buffer full), per local port, from
/// the last column of /proc/net/udp; counted per socket since it was created.
fn udp_drops() -> HashMap<u16, u64> {
    let text = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    let mut drops = HashMap::new();
    for l in text.lines().skip(1) {
        let mut f = l.split_whitespace();
        let port = f
            .nth(1)
            .and_then(|a| a.rsplit_once(':'))
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
        if let (Some(port), Some(n)) = (port, f.last().and_then(|d| d.parse::<u64>().ok())) {
            *drops.entry(port).or_insert(0) += n;
        }
    }
    drops
}

/// Ports of UAC `i` in the bench's own slot: signalling at +0, media at +2 (SIPp binds
/// -mp .. -mp+3 for audio and video RTP/RTCP): 6 ports each.
fn uac_ports(ports: &Slot, i: u32) -> (u16, u16) {
    let base = (i * 6) as u16;
    (ports.port(base), ports.port(base + 2))
}

/// Ports of UAS `j` in the daemon's slot, from offset 10 (SIPP_UAS) on, 6 ports each,
/// leaving the SCRATCH block (80..) for the REGISTER process.
fn uas_ports(d: &Daemon, j: u32) -> (u16, u16) {
    let base = offset::SIPP_UAS + (j * 6) as u16;
    (d.slot().port(base), d.slot().port(base + 2))
}

/// One step of the rate bench, measured.
struct Step {
    target: u32,
    calls: u64,
    ok: u64,
    failed: u64,
    achieved: f64,
    /// Whole daemon process, % of one core.
    daemon_pct: f64,
    /// Busiest daemon thread, % of one core, and its name.
    thread_pct: f64,
    thread: String,
    /// All SIPp processes together, % of one core.
    sipp_pct: f64,
    /// The whole host (every process, everyone's), % of one core.
    host_pct: f64,
    us_per_call: f64,
    /// Datagrams dropped by the kernel on the daemon's SIP socket / on the SIPp sockets.
    daemon_drops: u64,
    sipp_drops: u64,
    clean: bool,
}

fn bench_cps(rates: &[u32], step_secs: u32) {
    println!(
        "\n(a) B2BUA calls per second, signalling only ({step_secs} s per step; CPU columns in % of one core)"
    );
    println!(
        "{:>7} {:>9} {:>13} {:>7} {:>9} {:>8} {:>16} {:>6} {:>6} {:>8} {:>13}",
        "target",
        "achieved",
        "ok/calls",
        "failed",
        "daemon%",
        "thread%",
        "(busiest thread)",
        "sipp%",
        "host%",
        "µs/call",
        "drops sy/sipp"
    );
    // A second slot holds the callers' ports: the daemon's slot has room for only a few.
    let ports = Slot::acquire();
    let mut best: Option<Step> = None;
    for &rate in rates {
        let s = run_step(rate, step_secs, &ports);
        println!(
            "{:>7} {:>8.0}/s {:>13} {:>7} {:>8.0}% {:>7.0}% {:>16} {:>5.0}% {:>5.0}% {:>8.1} {:>13}{}",
            s.target,
            s.achieved,
            format!("{}/{}", s.ok, s.calls),
            s.failed,
            s.daemon_pct,
            s.thread_pct,
            format!("({})", s.thread),
            s.sipp_pct,
            s.host_pct,
            s.us_per_call,
            format!("{}/{}", s.daemon_drops, s.sipp_drops),
            if !s.clean {
                "  <- failures"
            } else if s.achieved < MIN_ACHIEVED * f64::from(s.target) {
                "  <- below target"
            } else {
                ""
            }
        );
        let why = if !s.clean {
            Some(if s.daemon_drops > 0 {
                format!(
                    "calls failed; the kernel dropped {} datagrams on the daemon's SIP socket (receive buffer full)",
                    s.daemon_drops
                )
            } else {
                "calls failed".to_string()
            })
        } else if s.thread_pct >= SATURATED_PCT {
            Some(format!("daemon thread {} saturates one core", s.thread))
        } else if s.achieved < MIN_ACHIEVED * f64::from(s.target) {
            Some(format!(
                "callers achieved under {:.0}% of the target rate (host {:.0}% busy of {} cores)",
                100.0 * MIN_ACHIEVED,
                s.host_pct,
                std::thread::available_parallelism().map_or(0, |n| n.get())
            ))
        } else {
            None
        };
        if s.clean && best.as_ref().is_none_or(|b| s.achieved > b.achieved) {
            best = Some(s);
        }
        if let Some(why) = why {
            println!("stopped: {why}");
            break;
        }
    }
    match best {
        Some(b) => {
            println!(
                "B2BUA: {:.0} calls/s with 0 failures (daemon at {:.0}% of one core; busiest thread {} at {:.0}%; SIPp at {:.0}%)",
                b.achieved, b.daemon_pct, b.thread, b.thread_pct, b.sipp_pct
            );
            println!(
                "daemon CPU per call: {:.1} µs (at {:.0} calls/s)",
                b.us_per_call, b.achieved
            );
        }
        None => println!("B2BUA: failures already at the lowest rate"),
    }
}

fn run_step(rate: u32, step_secs: u32, ports: &Slot) -> Step {
    // A fresh daemon per step so one overloaded step does not poison the next.
    let d = bench_daemon();
    let pid = d.pid().expect("daemon pid");
    let n_uas = rate.div_ceil(CPS_PER_UAS).clamp(1, MAX_UAS);
    let mut uases: Vec<Generator> = (0..n_uas)
        .map(|j| {
            let user = (1001 + j).to_string();
            let (p, mp) = uas_ports(&d, j);
            sipp::register(d.sip_port(), d.slot().port(offset::SCRATCH), &user, p, 3600);
            let port = p;
            let (p, mp) = (p.to_string(), mp.to_string());
            Generator::spawn("uas_echo", port, None, &["-p", &p, "-mp", &mp])
        })
        .collect();
    let n_uac = rate.div_ceil(CPS_PER_UAC);
    assert!(
        n_uac <= MAX_UAC,
        "at most {MAX_UAC} SIPp callers fit in the bench's port slot ({rate} cps asked)"
    );
    // Split the rate exactly: the first `rate % n_uac` callers take one call/s more.
    let per = |i: u32| rate / n_uac + u32::from(i < rate % n_uac);
    let calls: u64 = (0..n_uac).map(|i| u64::from(per(i) * step_secs)).sum();
    let (host0, threads0, cpu0) = (host_jiffies(), thread_cpu(pid), proc_cpu(pid));
    let t0 = Instant::now();
    let mut uacs: Vec<Generator> = (0..n_uac)
        .map(|i| {
            let (port, mp) = uac_ports(ports, i);
            let (p, mp) = (port.to_string(), mp.to_string());
            let callee = (1001 + i % n_uas).to_string();
            let r = per(i).to_string();
            let m = (per(i) * step_secs).to_string();
            // Calls last a few ms plus SIPp's 200 ms timewait: 1 s of calls is plenty.
            let l = per(i).max(50).to_string();
            Generator::spawn(
                "uac",
                port,
                Some(d.sip_port()),
                &[
                    "-p",
                    &p,
                    "-mp",
                    &mp,
                    "-s",
                    &callee,
                    "-key",
                    "caller",
                    "1000",
                    "-au",
                    "1000",
                    "-ap",
                    "pass1000",
                    "-r",
                    &r,
                    "-l",
                    &l,
                    "-m",
                    &m,
                    "-d",
                    "0",
                    "-recv_timeout",
                    "10000",
                    "-timeout",
                    "120",
                ],
            )
        })
        .collect();
    // Sample SIPp CPU while the callers run: an exited, reaped process has no /proc entry.
    let deadline = t0 + Duration::from_secs(u64::from(step_secs) * 4 + 30);
    let mut elapsed = None;
    let mut daemon_drops = 0;
    let mut tick = 0u32;
    while Instant::now() < deadline {
        // Socket drop counters vanish with the socket: sample them every 0.5 s.
        if tick.is_multiple_of(10) {
            let drops = udp_drops();
            daemon_drops = daemon_drops.max(drops.get(&d.sip_port()).copied().unwrap_or(0));
            for u in uases.iter_mut().chain(uacs.iter_mut()) {
                if u.code.is_none() {
                    u.drops = u.drops.max(drops.get(&u.port).copied().unwrap_or(0));
                }
            }
        }
        tick += 1;
        for u in uases.iter_mut() {
            u.poll();
        }
        let mut done = true;
        for u in uacs.iter_mut() {
            done &= u.poll();
        }
        if done {
            elapsed = Some(t0.elapsed().as_secs_f64());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let elapsed = elapsed.unwrap_or_else(|| t0.elapsed().as_secs_f64());
    let (cpu1, threads1, host1) = (proc_cpu(pid), thread_cpu(pid), host_jiffies());
    let drops = udp_drops();
    let daemon_drops = daemon_drops.max(drops.get(&d.sip_port()).copied().unwrap_or(0));
    for u in uases.iter_mut() {
        u.drops = u.drops.max(drops.get(&u.port).copied().unwrap_or(0));
    }
    let sipp_drops: u64 = uases.iter().chain(uacs.iter()).map(|u| u.drops).sum();
    for u in uases.iter_mut() {
        u.poll();
    }
    let (mut ok, mut failed, mut all_exit0) = (0, 0, true);
    let mut sipp_cpu = uases.iter().map(|u| u.cpu).sum::<f64>();
    for u in &uacs {
        let (s, f) = u.stats();
        ok += s;
        failed += f;
        all_exit0 &= u.code == Some(0);
        sipp_cpu += u.cpu;
    }
    let clean = all_exit0 && failed == 0 && ok == calls;
    if !clean {
        keep_failure(rate, &uacs, &d);
    }
    let daemon = cpu1 - cpu0;
    let (thread, thread_secs) = busiest_thread(&threads0, &threads1);
    let host_busy = (host1.0 - host0.0) as f64 / clk_tck();
    drop(uacs);
    drop(uases);
    Step {
        target: rate,
        calls,
        ok,
        failed,
        achieved: ok as f64 / elapsed,
        daemon_pct: 100.0 * daemon / elapsed,
        thread_pct: 100.0 * thread_secs / elapsed,
        thread,
        sipp_pct: 100.0 * sipp_cpu / elapsed,
        host_pct: 100.0 * host_busy / elapsed,
        us_per_call: if ok > 0 {
            1e6 * daemon / ok as f64
        } else {
            0.0
        },
        daemon_drops,
        sipp_drops,
        clean,
    }
}

/// Keeps what explains a failed step (the daemon's log, each failing caller's SIPp error
/// log) in `$TMPDIR/switchyard-bench-<rate>cps/`, and prints the first caller's errors.
fn keep_failure(rate: u32, uacs: &[Generator], d: &Daemon) {
    let keep = std::env::temp_dir().join(format!("switchyard-bench-{rate}cps"));
    let _ = std::fs::remove_dir_all(&keep);
    std::fs::create_dir_all(&keep).expect("create failure dir");
    std::fs::write(keep.join("daemon.log"), d.log()).expect("write daemon log");
    let mut first = true;
    for (i, u) in uacs.iter().enumerate() {
        if u.code == Some(0) && u.stats().1 == 0 {
            continue;
        }
        for f in ["errors.log", "stdout.log", "stat.csv"] {
            let _ = std::fs::copy(u.dir.path().join(f), keep.join(format!("uac{i}-{f}")));
        }
        if first {
            eprintln!(
                "--- SIPp caller {i} failed (exit {:?}) ---\n{}",
                u.code,
                u.errors_tail()
            );
            first = false;
        }
    }
    eprintln!("failure evidence kept in {}", keep.display());
}

/// utime + stime of a process, in seconds.
fn proc_cpu(pid: u32) -> f64 {
    proc_cpu_secs(&format!("/proc/{pid}/stat")).expect("read /proc/<pid>/stat")
}

fn bench_media_cpu() {
    const CALLS: usize = 100;
    const WINDOW: Duration = Duration::from_secs(30);
    println!("\n(b) daemon CPU for {CALLS} concurrent relayed G.711 calls over {WINDOW:?}");
    if !std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    {
        println!("SKIPPED: SIPp play_pcap_audio needs root");
        return;
    }
    let d = bench_daemon();
    let pid = d.pid().expect("daemon pid");
    let uas_port = d.slot().port(offset::SIPP_UAS);
    let (up, ump) = (
        uas_port.to_string(),
        d.slot().port(offset::SIPP_UAS_MEDIA).to_string(),
    );
    let n = CALLS.to_string();
    sipp::register(d.sip_port(), uas_port, "1001", uas_port, 3600);
    let mut uas = Sipp::spawn(
        "uas_echo",
        None,
        &["-p", &up, "-mp", &ump, "-rtp_echo", "-m", &n],
    );
    // g711a.pcap lasts 7.05 s: play it 6 times back to back (42 s) so media flows through
    // the whole measurement window.
    let one = "  <nop>\n    <action>\n      <exec play_pcap_audio=\"/usr/share/sip-tester/g711a.pcap\"/>\n    </action>\n  </nop>\n";
    let looped: String = (0..6)
        .map(|_| format!("{one}  <pause milliseconds=\"7050\"/>\n"))
        .collect();
    let (p, mp) = (
        d.slot().port(offset::SIPP_UAC).to_string(),
        d.slot().port(offset::SIPP_UAC_MEDIA).to_string(),
    );
    let mut uac = Sipp::spawn_with(
        "uac_pcap",
        &[(one, looped.as_str())],
        Some(d.sip_port()),
        &[
            "-p",
            &p,
            "-mp",
            &mp,
            "-s",
            "1001",
            "-key",
            "caller",
            "1000",
            "-au",
            "1000",
            "-ap",
            "pass1000",
            "-r",
            "50",
            "-l",
            &n,
            "-m",
            &n,
            "-d",
            "0",
            "-recv_timeout",
            "20000",
            "-timeout",
            "120",
        ],
    );
    d.wait_calls(CALLS, Duration::from_secs(30));
    let c0 = proc_cpu(pid);
    let t0 = Instant::now();
    // A measurement window, not synchronisation: the figure is CPU per 30 s of relaying.
    std::thread::sleep(WINDOW);
    let c1 = proc_cpu(pid);
    let wall = t0.elapsed().as_secs_f64();
    let still_up = d.call_count();
    let o = uac.wait(Duration::from_secs(90));
    uas.wait(Duration::from_secs(30));
    let cdrs = d.wait_cdrs(CALLS, Duration::from_secs(20));
    let pkts: i64 = cdrs
        .iter()
        .map(|c| c.rtp_a_in + c.rtp_a_out + c.rtp_b_in + c.rtp_b_out)
        .sum();
    let cpu = c1 - c0;
    println!(
        "calls up during the window: {still_up} (at its end); SIPp: {} ok, {} failed",
        o.successful, o.failed
    );
    println!("RTP packets handled (sum over CDR counters): {pkts}");
    println!(
        "RESULT media cpu: {cpu:.2} CPU-seconds per {CALLS} concurrent G.711 calls over {wall:.1} s ({:.1} % of one core)",
        100.0 * cpu / wall
    );
}

#[cfg(test)]
mod tests {
    use super::{parse_stat_ticks, stat_counts};

    #[test]
    fn stat_fields_resume_after_the_last_parenthesis() {
        // A thread name may hold spaces and parentheses; utime=7 and stime=5 here.
        let line = "4242 (media (1) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 3 0";
        assert_eq!(
            parse_stat_ticks(line),
            Some(("media (1) x".to_string(), 12))
        );
        assert_eq!(parse_stat_ticks("4242 (short) S 1"), None);
    }

    #[test]
    fn sipp_stat_counts_come_from_the_last_row() {
        let csv = "StartTime;SuccessfulCall(C);FailedCall(C);\n\
                   t0;10;0;\n\
                   t1;4000;3;\n\n";
        assert_eq!(stat_counts(csv), (4000, 3));
        assert_eq!(stat_counts("StartTime;SuccessfulCall(C);\n"), (0, 0));
    }
}
