//! Switchyard benchmark against SIPp (run through `tests/bench/run`, which builds a release
//! daemon and sets SWITCHYARD_BIN):
//!
//! (a) B2BUA call rate: SIPp UAC → switchyard → SIPp UAS, signalling only (INVITE with the
//!     407 round trip, ACK, BYE), stepping the rate up; reports the highest rate with 0
//!     failed calls.
//! (b) CPU cost of media relay: 100 concurrent G.711 calls (SIPp plays g711a.pcap in a loop,
//!     the UAS echoes), daemon utime+stime over a 30 s window from /proc/<pid>/stat.
//!
//! Usage: bench [--rates 100,200,400,800,1200] [--step-secs 8] [--skip-cps] [--skip-cpu]

use std::time::{Duration, Instant};
use switchyard_e2e::slot::offset;
use switchyard_e2e::{Daemon, Sipp, sipp};

/// A single SIPp process is good for a few hundred calls per second: above that, split.
const CPS_PER_SIPP: u32 = 400;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let rates: Vec<u32> = opt("--rates")
        .unwrap_or_else(|| "100,200,400,800,1200".into())
        .split(',')
        .map(|r| r.trim().parse().expect("rate"))
        .collect();
    let step_secs: u32 = opt("--step-secs")
        .map(|s| s.parse().expect("secs"))
        .unwrap_or(8);
    let bin = switchyard_e2e::daemon::switchyard_bin();
    println!("switchyard benchmark — daemon {}", bin.display());
    if bin.components().any(|c| c.as_os_str() == "debug") {
        println!("WARNING: this is a DEBUG build; use tests/bench/run for release figures");
    }
    if !args.iter().any(|a| a == "--skip-cps") {
        bench_cps(&rates, step_secs);
    }
    if !args.iter().any(|a| a == "--skip-cpu") {
        bench_media_cpu();
    }
}

fn bench_daemon() -> Daemon {
    Daemon::builder("basic")
        // The bench runs alone: give it a wide RTP range and no artificial limits.
        .set("media.rtp_port_min", "20000")
        .set("media.rtp_port_max", "39999")
        .set("calls.max_calls", "100000")
        .start()
}

fn bench_cps(rates: &[u32], step_secs: u32) {
    println!("\n(a) B2BUA calls per second, signalling only ({step_secs} s per step)");
    println!(
        "{:>8} {:>10} {:>8} {:>8} {:>10}",
        "rate", "calls", "ok", "failed", "achieved"
    );
    let mut best = None;
    for &rate in rates {
        // A fresh daemon per step so one overloaded step does not poison the next.
        let d = bench_daemon();
        let uas_port = d.slot().port(offset::SIPP_UAS);
        let (up, ump) = (
            uas_port.to_string(),
            d.slot().port(offset::SIPP_UAS_MEDIA).to_string(),
        );
        sipp::register(d.sip_port(), uas_port, "1001", uas_port, 3600);
        let mut uas = Sipp::spawn(
            "uas_echo",
            None,
            &["-p", &up, "-mp", &ump, "-max_socket", "10000"],
        );
        let procs = rate.div_ceil(CPS_PER_SIPP);
        assert!(
            procs <= 3,
            "at most 3 SIPp callers fit in the port slot ({rate} cps asked)"
        );
        let per = rate / procs;
        let calls_each = per * step_secs;
        let t0 = Instant::now();
        let mut uacs: Vec<Sipp> = (0..procs)
            .map(|i| {
                // SIPp binds -mp and -mp+2 (audio, video) plus RTCP: 6 ports per process.
                let p = d.slot().port(offset::SCRATCH + (i as u16) * 6).to_string();
                let mp = d
                    .slot()
                    .port(offset::SCRATCH + (i as u16) * 6 + 2)
                    .to_string();
                let (r, m) = (per.to_string(), calls_each.to_string());
                let l = (per * 4).max(50).to_string();
                Sipp::spawn(
                    "uac",
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
        let (mut ok, mut failed, mut all_exit0) = (0, 0, true);
        for u in uacs.iter_mut() {
            let o = u.wait(Duration::from_secs(150));
            ok += o.successful;
            failed += o.failed;
            all_exit0 &= o.code == Some(0);
        }
        let elapsed = t0.elapsed().as_secs_f64();
        uas.kill();
        let total = u64::from(calls_each * procs);
        let clean = all_exit0 && failed == 0 && ok == total;
        println!(
            "{:>8} {:>10} {:>8} {:>8} {:>9.0}/s{}",
            rate,
            total,
            ok,
            failed,
            ok as f64 / elapsed,
            if clean { "" } else { "  <- failures" }
        );
        if clean {
            best = Some(per * procs);
        } else {
            break;
        }
    }
    match best {
        Some(r) => println!("RESULT cps: {r} calls/s with 0 failed calls"),
        None => println!("RESULT cps: failures already at the lowest rate"),
    }
}

/// utime + stime of a process, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/pid/stat");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime");
    let hz = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0);
    ticks / hz
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
    let c0 = cpu_secs(pid);
    let t0 = Instant::now();
    // A measurement window, not synchronisation: the figure is CPU per 30 s of relaying.
    std::thread::sleep(WINDOW);
    let c1 = cpu_secs(pid);
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
