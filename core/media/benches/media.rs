//! Media benchmark (issue 3): what one media core does, printed as figures against their goals.
//!
//! Every phase runs on a fresh [`MediaEngine`] with `threads = 1` (its thread is `media-0`),
//! on loopback: the relay on 127.0.0.2, the phones on 127.0.0.3, so the ports of e2e daemons
//! on 127.0.0.1 are never in the way. Load-generator threads play the phones: each owns whole
//! calls (both phones), sends 172-byte RTP packets (160 bytes of payload) at 50 packets/s per
//! stream with plain `send_to`, paced on a deadline schedule spread over each 20 ms frame.
//!
//! How the phones read matters on loopback, where the relay's `send_to` runs the receiving
//! socket's whole input path: if a thread sleeps in epoll on that socket, the relay's send
//! also wakes it (and the woken thread may then preempt the media thread). A send to a NIC
//! does neither. So the load phases sweep their phones every 20 ms instead (nobody waits on
//! them), and only the latency phase, which needs each packet read the moment it arrives,
//! uses epoll. MEDIA_BENCH_READ=epoll makes every phase use epoll.
//!
//! 0. System calls: what one send_to and two recv_from (the relay's per-packet calls) cost
//!    here in a tight loop, the floor under the relay's CPU per packet.
//! 1. Relay latency: 100 relayed G.711 calls; each payload carries its send time, so the
//!    receiving phone knows how long the packet took. The same streams sent phone to phone
//!    (no relay) give the loopback baseline; the difference is what the relay adds. Media CPU
//!    per relayed packet.
//! 2. Relay capacity: N relayed calls for N stepping up until a step loses packets; loss end
//!    to end (sent minus received after a drain), the media thread's CPU fraction, and calls
//!    per core = N / that fraction.
//! 3. Transcoding: N Opus<->PCMA calls (the Opus leg at 8 kHz, as the engine sets it up for a
//!    G.711 peer): CPU per call per 20 ms frame, and whether every leg kept sending 50 packets/s.
//! 4. Conferences of 3 and 10 G.711 parties mixing at 16 kHz (the daemon's default rate).
//! 5. Send jitter: N solo legs playing a tone; the phones take the kernel's receive timestamp
//!    of every packet (SO_TIMESTAMPNS: on loopback, the moment the media thread sent it) and
//!    the figure is the p99 of |inter-arrival - 20 ms|.
//!
//! The media thread's CPU comes from /proc/self/task/<tid>/schedstat (nanoseconds), checked
//! against utime + stime of /proc/self/task/<tid>/stat (10 ms ticks), which also tells how
//! much of it the kernel took. The machine is shared: the generator threads run on the same
//! cores, which is why per-core figures divide by the media thread's own CPU fraction rather
//! than assume it had a core to itself.
//!
//! `cargo bench -p switchyard-media --bench media [phase...]` (phases: latency, capacity,
//! transcoding, conference, jitter; all by default); `tests/bench/media` wraps it.
//! Environment: MEDIA_BENCH_SECS (seconds per step, default 4; jitter runs at least 8),
//! MEDIA_BENCH_RELAY_STEPS (calls, default 500,1000,1500,2000,2500,3000: 3000 relayed calls
//! hold 18000 sockets), MEDIA_BENCH_TRANSCODE_STEPS (default 100,200,300,400),
//! MEDIA_BENCH_JITTER_LEGS (default 1,500), MEDIA_BENCH_GENERATORS (load threads, default 2),
//! MEDIA_BENCH_READ (see above).

// Real sockets and real time: like a reactor, this harness reads the clock.
#![allow(clippy::disallowed_methods)]

use std::fmt::Write as _;
use std::io::{ErrorKind, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use nix::errno::Errno;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use nix::sys::time::TimeSpec;
use switchyard_codec::{CodecKind, CodecParams, Encoder};
use switchyard_dsp::tone::ToneSpec;
use switchyard_media::{
    DtmfOptions, EndpointId, LegCodec, MediaConfig, MediaEngine, OpusFmtp, PlayItem, Player,
};

const FRAME: Duration = Duration::from_millis(20);
const FRAME_NS: u64 = 20_000_000;
const RELAY_IP: &str = "127.0.0.2";
const PHONE_IP: &str = "127.0.0.3";
/// 6000 endpoints: 3000 calls, each endpoint an RTP and an RTCP port.
const PORT_MIN: u16 = 40000;
const PORT_MAX: u16 = 51999;
const PAYLOAD: usize = 160;
const PACKET: usize = 12 + PAYLOAD;
const PCMA_PT: u8 = 8;
const OPUS_PT: u8 = 111;
const TELEPHONE_EVENT_PT: u8 = 101;
/// Histogram range: 1 µs buckets up to 100 ms, the last one collects the rest.
const BUCKETS: usize = 100_000;

/// Microseconds, 1 µs per bucket.
struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    max: u64,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            buckets: vec![0; BUCKETS],
            count: 0,
            max: 0,
        }
    }

    fn record(&mut self, micros: u64) {
        self.buckets[(micros as usize).min(BUCKETS - 1)] += 1;
        self.count += 1;
        self.max = self.max.max(micros);
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.max = self.max.max(other.max);
    }

    fn percentile(&self, p: f64) -> u64 {
        let target = ((self.count as f64 * p).ceil() as u64).max(1);
        let mut seen = 0;
        for (micros, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= target {
                return micros as u64;
            }
        }
        self.max
    }
}

/// What a generated stream carries.
#[derive(Clone)]
enum Payload {
    /// 160 bytes, the first 8 the send time in ns since the run's base: the relay passes them
    /// untouched, so the receiver measures the latency.
    Stamped,
    /// Real codec frames, sent in a loop (a terminated leg decodes them).
    Frames(Arc<Vec<Vec<u8>>>),
}

/// One RTP stream a phone sends.
struct Stream {
    phone: usize,
    to: SocketAddr,
    payload_type: u8,
    /// RTP timestamp units per packet.
    units: u32,
    ssrc: u32,
    payload: Payload,
    sequence: u16,
}

/// What a phone counts as the media it expects.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Stamped 172-byte PCMA packets: count them, and their latency.
    Stamped,
    /// RTP of this payload type: count it.
    Rtp(u8),
    /// RTP of this payload type: count it and time every arrival (send jitter).
    Arrivals(u8),
}

struct Phone {
    socket: UdpSocket,
    expect: Expect,
    received: u64,
    /// The kernel's receive timestamp of the last packet (SO_TIMESTAMPNS, ns of
    /// CLOCK_REALTIME): on loopback, the moment the media thread's send_to delivered it.
    last_arrival: Option<i64>,
}

/// The calls one load-generator thread plays.
#[derive(Default)]
struct Share {
    phones: Vec<Phone>,
    streams: Vec<Stream>,
}

impl Share {
    fn phone(&mut self, expect: Expect) -> (usize, SocketAddr) {
        let socket =
            UdpSocket::bind(SocketAddr::new(PHONE_IP.parse().unwrap(), 0)).expect("bind a phone");
        let local = socket.local_addr().unwrap();
        if let Expect::Arrivals(_) = expect {
            setsockopt(&socket, sockopt::ReceiveTimestampns, &true).expect("SO_TIMESTAMPNS");
        }
        self.phones.push(Phone {
            socket,
            expect,
            received: 0,
            last_arrival: None,
        });
        (self.phones.len() - 1, local)
    }

    fn stream(&mut self, phone: usize, to: SocketAddr, payload_type: u8, payload: Payload) {
        let units = if payload_type == OPUS_PT { 960 } else { 160 };
        let ssrc = 0x5000_0000 + self.streams.len() as u32;
        self.streams.push(Stream {
            phone,
            to,
            payload_type,
            units,
            ssrc,
            payload,
            sequence: 0,
        });
    }
}

/// What one load-generator thread saw in the measured window.
struct ShareReport {
    sent: u64,
    send_errors: u64,
    received: u64,
    latency: Histogram,
    jitter: Histogram,
    /// How far behind its schedule the generator got (it catches up by sending at once).
    behind_max: Duration,
    /// Time spent inside send_to, to tell what a loopback send costs.
    send_time: Duration,
    warmed_up: bool,
    /// The thread's own CPU time and the wall time of its run (window and drain).
    cpu: Duration,
    wall: Duration,
}

/// The generator's working state: its sockets, the clock base and its tallies.
struct Generator {
    share: Share,
    poll: Poll,
    events: Events,
    /// The phones of the last poll's events.
    ready: Vec<usize>,
    base: Instant,
    buffer: [u8; 2048],
    /// Room for one SO_TIMESTAMPNS control message.
    control: Vec<u8>,
    packet: [u8; 2048],
    report: ShareReport,
    record: bool,
    /// Read the phones by sweeping them at this period instead of through epoll: nobody
    /// sleeps on a phone's socket, so the relay's send_to queues the packet and wakes no
    /// thread, as a send to a NIC would (a loopback artefact otherwise charged to the relay).
    sweep: Option<Duration>,
}

impl Generator {
    fn new(mut share: Share, base: Instant, sweep: Option<Duration>) -> Generator {
        let poll = Poll::new().unwrap();
        if sweep.is_none() {
            for (index, phone) in share.phones.iter_mut().enumerate() {
                poll.registry()
                    .register(&mut phone.socket, Token(index), Interest::READABLE)
                    .unwrap();
            }
        }
        Generator {
            share,
            poll,
            events: Events::with_capacity(1024),
            ready: Vec::with_capacity(1024),
            base,
            buffer: [0; 2048],
            control: nix::cmsg_space!(TimeSpec),
            packet: [0; 2048],
            report: ShareReport {
                sent: 0,
                send_errors: 0,
                received: 0,
                latency: Histogram::new(),
                jitter: Histogram::new(),
                behind_max: Duration::ZERO,
                send_time: Duration::ZERO,
                warmed_up: false,
                cpu: Duration::ZERO,
                wall: Duration::ZERO,
            },
            record: false,
            sweep,
        }
    }

    fn send(&mut self, index: usize) {
        let stream = &mut self.share.streams[index];
        let sequence = stream.sequence;
        stream.sequence = sequence.wrapping_add(1);
        let p = &mut self.packet;
        p[0] = 0x80;
        p[1] = stream.payload_type;
        p[2..4].copy_from_slice(&sequence.to_be_bytes());
        p[4..8].copy_from_slice(&u32::from(sequence).wrapping_mul(stream.units).to_be_bytes());
        p[8..12].copy_from_slice(&stream.ssrc.to_be_bytes());
        let len = match &stream.payload {
            Payload::Stamped => {
                let sent_at = self.base.elapsed().as_nanos() as u64;
                p[12..20].copy_from_slice(&sent_at.to_be_bytes());
                PACKET
            }
            Payload::Frames(frames) => {
                let frame = &frames[usize::from(sequence) % frames.len()];
                p[12..12 + frame.len()].copy_from_slice(frame);
                12 + frame.len()
            }
        };
        let before = Instant::now();
        let result = self.share.phones[stream.phone]
            .socket
            .send_to(&p[..len], stream.to);
        if self.record {
            self.report.send_time += before.elapsed();
            match result {
                Ok(_) => self.report.sent += 1,
                Err(_) => self.report.send_errors += 1,
            }
        }
    }

    /// Waits up to `timeout` for packets and reads every readable phone until it would block.
    fn receive(&mut self, timeout: Duration) {
        if self.sweep.is_some() {
            std::thread::sleep(timeout);
            return self.sweep_phones();
        }
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => return,
            Err(e) => panic!("poll: {e}"),
        }
        self.ready.clear();
        self.ready.extend(self.events.iter().map(|e| e.token().0));
        for index in 0..self.ready.len() {
            self.read_phone(self.ready[index]);
        }
    }

    /// Reads every phone until it would block, without epoll.
    fn sweep_phones(&mut self) {
        for index in 0..self.share.phones.len() {
            self.read_phone(index);
        }
    }

    fn read_phone(&mut self, index: usize) {
        if let Expect::Arrivals(pt) = self.share.phones[index].expect {
            return self.read_timestamped(index, pt);
        }
        let phone = &mut self.share.phones[index];
        loop {
            let len = match phone.socket.recv_from(&mut self.buffer) {
                Ok((len, _)) => len,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => continue,
            };
            // RTCP from a terminated leg may land on a phone that happens to sit on the
            // port above another's: only the expected RTP counts.
            let payload_type = self.buffer[1] & 0x7f;
            let now = Instant::now();
            match phone.expect {
                Expect::Stamped => {
                    if len != PACKET || payload_type != PCMA_PT {
                        continue;
                    }
                    // A sweep reads late by design: its latency says nothing.
                    if self.record && self.sweep.is_none() {
                        let at = now.duration_since(self.base).as_nanos() as u64;
                        let sent = u64::from_be_bytes(self.buffer[12..20].try_into().unwrap());
                        self.report.latency.record(at.saturating_sub(sent) / 1000);
                    }
                }
                Expect::Rtp(pt) => {
                    if len < 12 || payload_type != pt {
                        continue;
                    }
                }
                Expect::Arrivals(_) => continue,
            }
            phone.received += 1;
            if self.record {
                self.report.received += 1;
            }
        }
    }

    /// Reads a phone that times arrivals: each packet with its kernel receive timestamp, so
    /// the figure is when the media thread sent it, not when this thread got round to it.
    fn read_timestamped(&mut self, index: usize, pt: u8) {
        let phone = &mut self.share.phones[index];
        let mut errors = 0;
        loop {
            let mut iov = [IoSliceMut::new(&mut self.buffer)];
            let (len, stamp) = match recvmsg::<()>(
                phone.socket.as_raw_fd(),
                &mut iov,
                Some(&mut self.control),
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(message) => {
                    let stamp = message.cmsgs().ok().and_then(|mut c| {
                        c.find_map(|m| match m {
                            ControlMessageOwned::ScmTimestampns(t) => {
                                Some(t.tv_sec() * 1_000_000_000 + t.tv_nsec())
                            }
                            _ => None,
                        })
                    });
                    (message.bytes, stamp)
                }
                Err(Errno::EAGAIN) => break,
                Err(_) if errors < 8 => {
                    errors += 1;
                    continue;
                }
                Err(e) => panic!("recvmsg: {e}"),
            };
            if len < 12 || self.buffer[1] & 0x7f != pt {
                continue;
            }
            let stamp = stamp.expect("SO_TIMESTAMPNS gives every datagram a timestamp");
            if self.record
                && let Some(last) = phone.last_arrival
            {
                let off = (stamp - last - FRAME_NS as i64).unsigned_abs() / 1000;
                self.report.jitter.record(off);
            }
            phone.last_arrival = Some(stamp);
            phone.received += 1;
            if self.record {
                self.report.received += 1;
            }
        }
    }

    /// One packet per stream, then waits until every phone has heard its first packet.
    fn warm_up(&mut self) -> bool {
        for index in 0..self.share.streams.len() {
            self.send(index);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.share.phones.iter().all(|p| p.received > 0) {
                return true;
            }
            self.receive(Duration::from_millis(5));
        }
        false
    }

    /// The measured window: every stream at 50 packets/s, packet k to stream k % S at
    /// start + k × 20 ms / S; then a drain of what is still in flight.
    fn run(&mut self, duration: Duration, drain: Duration) {
        for phone in &mut self.share.phones {
            phone.last_arrival = None;
        }
        self.record = true;
        let cpu_start = own_cpu();
        let streams = self.share.streams.len() as u64;
        let start = Instant::now();
        let end = start + duration;
        let total = duration.as_nanos() as u64 / FRAME_NS * streams;
        let due = |k: u64| k * FRAME_NS / streams.max(1);
        let mut k = 0;
        let mut next_sweep = start;
        loop {
            let now = Instant::now();
            if now >= end && k >= total {
                break;
            }
            let elapsed = now.duration_since(start).as_nanos() as u64;
            while k < total && due(k) <= elapsed {
                self.send((k % streams) as usize);
                k += 1;
            }
            if k > 0 {
                let late = Duration::from_nanos(elapsed.saturating_sub(due(k - 1)));
                self.report.behind_max = self.report.behind_max.max(late);
            }
            let next = if k < total {
                start + Duration::from_nanos(due(k))
            } else {
                end
            };
            match self.sweep {
                None => self.receive(next.saturating_duration_since(Instant::now())),
                Some(period) => {
                    if now >= next_sweep {
                        self.sweep_phones();
                        next_sweep += period;
                    }
                    // Sends go out in batches of at least half a millisecond.
                    let wake = next.min(next_sweep).max(now + Duration::from_micros(500));
                    std::thread::sleep(wake.saturating_duration_since(Instant::now()));
                }
            }
        }
        if self.sweep.is_some() {
            // What arrived since the last sweep belongs to the window.
            self.sweep_phones();
        }
        let drain_end = Instant::now() + drain;
        let stamped = self
            .share
            .phones
            .iter()
            .all(|p| p.expect == Expect::Stamped);
        while Instant::now() < drain_end {
            if stamped && self.report.received >= self.report.sent {
                break;
            }
            self.receive(Duration::from_millis(2));
        }
        self.record = false;
        self.report.cpu = own_cpu() - cpu_start;
        self.report.wall = start.elapsed();
    }
}

/// Runs the shares on their own threads: warm-up, then a window of `duration` the media
/// thread's CPU is measured over. Returns the reports and the media measurement.
fn run_shares(
    shares: Vec<Share>,
    duration: Duration,
    drain: Duration,
    sweep: Option<Duration>,
    engine: Option<&MediaEngine>,
    endpoints: &[EndpointId],
) -> (Vec<ShareReport>, MediaWindow) {
    let base = Instant::now();
    let barrier = Arc::new(Barrier::new(shares.len() + 1));
    let mut threads = Vec::new();
    for (index, share) in shares.into_iter().enumerate() {
        let barrier = barrier.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("load-{index}"))
                .spawn(move || {
                    let mut generator = Generator::new(share, base, sweep);
                    let warmed_up = generator.warm_up();
                    barrier.wait();
                    generator.run(duration, drain);
                    generator.report.warmed_up = warmed_up;
                    generator.report
                })
                .unwrap(),
        );
    }
    barrier.wait();
    let window = MediaWindow::measure(engine, endpoints, duration);
    let reports = threads.into_iter().map(|t| t.join().unwrap()).collect();
    (reports, window)
}

/// What the media thread did over the measured window.
#[derive(Default)]
struct MediaWindow {
    elapsed: Duration,
    cpu: Duration,
    /// utime and stime, 10 ms resolution: a cross-check of `cpu`, and where it went.
    user_ticks: Duration,
    system_ticks: Duration,
    packets_out: u64,
    dropped: u64,
    /// Loopback UDP receive-buffer overflows anywhere on the host (RcvbufErrors).
    rcvbuf_errors: u64,
}

impl MediaWindow {
    fn measure(
        engine: Option<&MediaEngine>,
        endpoints: &[EndpointId],
        duration: Duration,
    ) -> MediaWindow {
        let Some(engine) = engine else {
            std::thread::sleep(duration);
            return MediaWindow {
                elapsed: duration,
                ..MediaWindow::default()
            };
        };
        let task = media_task();
        let totals = |engine: &MediaEngine| {
            endpoints
                .iter()
                .filter_map(|e| engine.stats(*e))
                .fold((0, 0), |(o, d), s| {
                    (o + s.packets_out, d + s.packets_dropped)
                })
        };
        let (out0, dropped0) = totals(engine);
        let rcvbuf0 = udp_rcvbuf_errors();
        let (cpu0, ticks0) = (task_cpu(&task), task_cpu_ticks(&task));
        let start = Instant::now();
        std::thread::sleep(duration);
        let (cpu1, ticks1) = (task_cpu(&task), task_cpu_ticks(&task));
        let elapsed = start.elapsed();
        let (out1, dropped1) = totals(engine);
        MediaWindow {
            elapsed,
            cpu: cpu1 - cpu0,
            user_ticks: ticks1.0 - ticks0.0,
            system_ticks: ticks1.1 - ticks0.1,
            packets_out: out1 - out0,
            dropped: dropped1 - dropped0,
            rcvbuf_errors: udp_rcvbuf_errors() - rcvbuf0,
        }
    }

    fn fraction(&self) -> f64 {
        self.cpu.as_secs_f64() / self.elapsed.as_secs_f64()
    }

    fn cpu_note(&self) -> String {
        let ticks = self.user_ticks + self.system_ticks;
        format!(
            "media thread {:.1}% of a core (stat: {:.0}%, {:.0}% of it in the kernel)",
            100.0 * self.fraction(),
            100.0 * ticks.as_secs_f64() / self.elapsed.as_secs_f64(),
            100.0 * self.system_ticks.as_secs_f64() / ticks.as_secs_f64().max(1e-9),
        )
    }
}

/// The sum of the reports of all generator threads.
struct Totals {
    sent: u64,
    send_errors: u64,
    received: u64,
    latency: Histogram,
    jitter: Histogram,
    behind_max: Duration,
    send_time: Duration,
    warmed_up: bool,
    /// The generator threads' CPU, in cores (each thread's CPU over its own run).
    cores: f64,
}

fn totals(reports: &[ShareReport]) -> Totals {
    let mut t = Totals {
        sent: 0,
        send_errors: 0,
        received: 0,
        latency: Histogram::new(),
        jitter: Histogram::new(),
        behind_max: Duration::ZERO,
        send_time: Duration::ZERO,
        warmed_up: true,
        cores: 0.0,
    };
    for r in reports {
        t.sent += r.sent;
        t.send_errors += r.send_errors;
        t.received += r.received;
        t.latency.merge(&r.latency);
        t.jitter.merge(&r.jitter);
        t.behind_max = t.behind_max.max(r.behind_max);
        t.send_time += r.send_time;
        t.warmed_up &= r.warmed_up;
        t.cores += r.cpu.as_secs_f64() / r.wall.as_secs_f64().max(1e-9);
    }
    t
}

fn start_engine() -> MediaEngine {
    MediaEngine::start(
        MediaConfig {
            ip: RELAY_IP.parse().unwrap(),
            port_min: PORT_MIN,
            port_max: PORT_MAX,
            rtp_timeout: Duration::from_secs(600),
            threads: 1,
            // `RT_PRIORITY=50 cargo bench ...`: the media thread at SCHED_FIFO 50, as
            // `[media] realtime_priority` runs it in production.
            realtime_priority: std::env::var("RT_PRIORITY")
                .ok()
                .and_then(|p| p.parse().ok()),
        },
        Box::new(|event| eprintln!("unexpected media event: {event:?}")),
    )
    .expect("media engine")
}

/// /proc/self/task/<tid> of the media thread (`media-0`).
fn media_task() -> PathBuf {
    for _ in 0..100 {
        for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
            let path = task.unwrap().path();
            if std::fs::read_to_string(path.join("comm")).is_ok_and(|c| c.trim() == "media-0") {
                return path;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no media-0 thread");
}

/// The task's CPU time from the scheduler's nanosecond accounting.
fn task_cpu(task: &std::path::Path) -> Duration {
    let schedstat = std::fs::read_to_string(task.join("schedstat")).expect("schedstat");
    let nanos = schedstat
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    Duration::from_nanos(nanos)
}

/// utime and stime of the task's stat, in USER_HZ (100 Hz) ticks.
fn task_cpu_ticks(task: &std::path::Path) -> (Duration, Duration) {
    let stat = std::fs::read_to_string(task.join("stat")).expect("stat");
    // Fields after the command name (which may hold spaces): state is field 3, utime 14.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    let ticks = |i: usize| Duration::from_millis(fields[i].parse::<u64>().unwrap() * 10);
    (ticks(11), ticks(12))
}

fn own_cpu() -> Duration {
    task_cpu(std::path::Path::new("/proc/thread-self"))
}

/// Host-wide UDP receive-buffer overflows (/proc/net/snmp): where loss happens on loopback.
fn udp_rcvbuf_errors() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut lines = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn env_secs() -> Duration {
    Duration::from_secs_f64(
        std::env::var("MEDIA_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(4.0),
    )
}

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

/// How the load phases read their phones: a sweep every 20 ms (default) or `epoll`
/// (MEDIA_BENCH_READ=epoll), where each relayed packet also wakes a generator thread.
fn sweep() -> Option<Duration> {
    match std::env::var("MEDIA_BENCH_READ").as_deref() {
        Ok("epoll") => None,
        _ => Some(FRAME),
    }
}

fn generators() -> usize {
    std::env::var("MEDIA_BENCH_GENERATORS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2)
        .max(1)
}

/// A voice-like test signal: a 100–180 Hz glottal pulse train with harmonics, syllable-rate
/// envelope and a little noise, so the codecs work as on speech rather than on a pure tone.
fn speech_like(rate: u32, samples: usize) -> Vec<i16> {
    let mut noise = 0x1234_5678u32;
    (0..samples)
        .map(|n| {
            let t = n as f64 / f64::from(rate);
            let f0 = 140.0 + 40.0 * (2.0 * std::f64::consts::PI * 0.7 * t).sin();
            let envelope = 0.55 + 0.45 * (2.0 * std::f64::consts::PI * 4.0 * t).sin();
            let mut v = 0.0;
            for h in 1..=12 {
                let f = f0 * f64::from(h);
                if f < f64::from(rate) / 2.0 {
                    v += (2.0 * std::f64::consts::PI * f * t).sin() / f64::from(h);
                }
            }
            noise = noise.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let n = f64::from((noise >> 16) as u16) / 65536.0 - 0.5;
            ((v * 0.25 * envelope + 0.03 * n) * 32767.0).clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// One second (50 frames) of the test signal encoded as `kind` at `rate`.
fn encoded_frames(kind: CodecKind, rate: u32) -> Arc<Vec<Vec<u8>>> {
    let params = CodecParams::new(kind).with_sample_rate(rate);
    let mut encoder = Encoder::new(&params).expect("encoder");
    let frame = rate as usize / 50;
    let pcm = speech_like(rate, frame * 50);
    let mut out = [0u8; 1500];
    Arc::new(
        pcm.chunks(frame)
            .map(|chunk| {
                let n = encoder.encode(chunk, &mut out).expect("encode");
                out[..n].to_vec()
            })
            .collect(),
    )
}

fn pcma_leg() -> LegCodec {
    LegCodec {
        kind: CodecKind::Pcma,
        payload_type: PCMA_PT,
        sample_rate: 8000,
        opus: OpusFmtp::default(),
        telephone_event: Some(TELEPHONE_EVENT_PT),
        also_receives: None,
    }
}

/// An Opus leg bridged to G.711 works at 8 kHz (see the engine's media plan).
fn opus_leg() -> LegCodec {
    LegCodec {
        kind: CodecKind::Opus,
        payload_type: OPUS_PT,
        sample_rate: 8000,
        opus: OpusFmtp::default(),
        telephone_event: Some(TELEPHONE_EVENT_PT),
        also_receives: None,
    }
}

/// Relayed calls, both phones of a call on the same generator thread; `direct` sends phone
/// to phone without the relay (the loopback baseline).
fn relayed_calls(
    engine: &MediaEngine,
    calls: usize,
    threads: usize,
    direct: bool,
) -> (Vec<Share>, Vec<EndpointId>) {
    let mut shares: Vec<Share> = (0..threads).map(|_| Share::default()).collect();
    let mut endpoints = Vec::new();
    for call in 0..calls {
        let share = &mut shares[call % threads];
        let (pa, addr_a) = share.phone(Expect::Stamped);
        let (pb, addr_b) = share.phone(Expect::Stamped);
        if direct {
            share.stream(pa, addr_b, PCMA_PT, Payload::Stamped);
            share.stream(pb, addr_a, PCMA_PT, Payload::Stamped);
            continue;
        }
        let (a, b) = engine.allocate_pair().expect("allocate");
        engine.set_remote(a.id, addr_a);
        engine.set_remote(b.id, addr_b);
        engine.bridge(a.id, b.id);
        share.stream(pa, a.local, PCMA_PT, Payload::Stamped);
        share.stream(pb, b.local, PCMA_PT, Payload::Stamped);
        endpoints.extend([a.id, b.id]);
    }
    (shares, endpoints)
}

/// The figures the summary prints.
#[derive(Default)]
struct Summary {
    lines: Vec<String>,
}

impl Summary {
    fn add(&mut self, figure: &str, value: String, goal: &str, met: Option<bool>) {
        let verdict = match met {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "not measured",
        };
        self.lines
            .push(format!("{figure}: {value} (goal {goal}: {verdict})"));
    }

    fn info(&mut self, figure: &str, value: String) {
        self.lines.push(format!("{figure}: {value}"));
    }
}

/// What the kernel charges for the system calls of one relayed packet on this machine, timed
/// one kind at a time in a tight loop: the floor under the media thread's CPU per packet.
fn syscall_costs() -> f64 {
    const ROUNDS: usize = 2000;
    const BATCH: usize = 64;
    let phone_ip: std::net::IpAddr = PHONE_IP.parse().unwrap();
    let a = std::net::UdpSocket::bind(SocketAddr::new(phone_ip, 0)).unwrap();
    let b = std::net::UdpSocket::bind(SocketAddr::new(phone_ip, 0)).unwrap();
    b.set_nonblocking(true).unwrap();
    let to = b.local_addr().unwrap();
    let packet = [0x80u8; PACKET];
    let mut buffer = [0u8; 2048];
    let (mut send, mut recv, mut empty) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for _ in 0..BATCH {
            a.send_to(&packet, to).unwrap();
        }
        send += t.elapsed();
        let t = Instant::now();
        for _ in 0..BATCH {
            b.recv_from(&mut buffer).unwrap();
        }
        recv += t.elapsed();
        let t = Instant::now();
        for _ in 0..BATCH {
            let _ = b.recv_from(&mut buffer);
        }
        empty += t.elapsed();
    }
    // The same sends on a connected socket: the kernel keeps the route (sk_dst_cache) and
    // skips the per-packet route lookup of an unconnected send_to.
    a.connect(to).unwrap();
    let mut connected = Duration::ZERO;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for _ in 0..BATCH {
            a.send(&packet).unwrap();
        }
        connected += t.elapsed();
        while b.recv_from(&mut buffer).is_ok() {}
    }
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(16);
    let t = Instant::now();
    for _ in 0..ROUNDS * 8 {
        poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
    }
    let epoll = t.elapsed().as_secs_f64() * 1e6 / (ROUNDS * 8) as f64;
    let per = |d: Duration| d.as_secs_f64() * 1e6 / (ROUNDS * BATCH) as f64;
    let (send, recv, empty, connected) = (per(send), per(recv), per(empty), per(connected));
    println!(
        "system calls on this machine (loopback, nobody waiting): send_to {send:.2} µs (with the delivery into the receiving socket; \
         send on a connected socket {connected:.2} µs), recv_from of a datagram {recv:.2} µs, recv_from of an empty socket {empty:.2} µs, \
         epoll_wait with nothing ready {epoll:.2} µs; a relayed packet needs a send_to and two recv_from: {:.2} µs",
        send + recv + empty
    );
    send + recv + empty
}

fn relay_latency(summary: &mut Summary, secs: Duration) {
    const CALLS: usize = 100;
    let drain = Duration::from_millis(300);
    let engine = start_engine();
    let (shares, _) = relayed_calls(&engine, CALLS, 1, true);
    let (reports, _) = run_shares(shares, secs, drain, None, None, &[]);
    let direct = totals(&reports);
    let (shares, endpoints) = relayed_calls(&engine, CALLS, 1, false);
    let (reports, media) = run_shares(shares, secs, drain, None, Some(&engine), &endpoints);
    engine.shutdown();
    let relayed = totals(&reports);
    let per_packet = media.cpu.as_secs_f64() * 1e6 / media.packets_out.max(1) as f64;
    let (r50, r99) = (
        relayed.latency.percentile(0.5),
        relayed.latency.percentile(0.99),
    );
    let (d50, d99) = (
        direct.latency.percentile(0.5),
        direct.latency.percentile(0.99),
    );
    println!(
        "relay latency: {CALLS} relayed G.711 calls for {:.0} s: sent {}, lost {}, phone->relay->phone p50 {r50} µs p99 {r99} µs p99.9 {} µs max {} µs; \
         phone->phone directly p50 {d50} µs p99 {d99} µs; {}, {:.2} µs per relayed packet ({} relayed)",
        secs.as_secs_f64(),
        relayed.sent,
        relayed.sent - relayed.received.min(relayed.sent),
        relayed.latency.percentile(0.999),
        relayed.latency.max,
        media.cpu_note(),
        per_packet,
        media.packets_out,
    );
    summary.info(
        "CPU per relayed packet (100 calls, phones on epoll: every packet wakes a thread)",
        format!("{per_packet:.2} µs"),
    );
    let (a50, a99) = (r50.saturating_sub(d50), r99.saturating_sub(d99));
    summary.add(
        "added relay latency p50 / p99",
        format!(
            "{a50} / {a99} µs (phone->relay->phone {r50} / {r99} µs minus phone->phone {d50} / {d99} µs)"
        ),
        "p99 <= 1 ms",
        Some(relayed.received >= relayed.sent && a99 <= 1000),
    );
}

fn relay_capacity(summary: &mut Summary, secs: Duration, floor: f64) {
    let steps = env_list(
        "MEDIA_BENCH_RELAY_STEPS",
        &[500, 1000, 1500, 2000, 2500, 3000],
    );
    let threads = generators();
    let mut clean_steps: Vec<(usize, f64, f64)> = Vec::new();
    let mut failed = None;
    for &calls in &steps {
        let engine = start_engine();
        let (shares, endpoints) = relayed_calls(&engine, calls, threads, false);
        let (reports, media) = run_shares(
            shares,
            secs,
            Duration::from_millis(500),
            sweep(),
            Some(&engine),
            &endpoints,
        );
        engine.shutdown();
        let t = totals(&reports);
        let lost = t.sent.saturating_sub(t.received);
        let fraction = media.fraction();
        let per_core = calls as f64 / fraction;
        let per_packet = media.cpu.as_secs_f64() * 1e6 / media.packets_out.max(1) as f64;
        let offered = calls as f64 * 100.0;
        let rate = t.sent as f64 / secs.as_secs_f64();
        println!(
            "relay capacity: {calls} calls ({:.0} packets/s offered, {:.0} sent{}): lost {lost} of {} ({} send errors, {} dropped by the relay, host RcvbufErrors +{}), \
             {}; {}, {:.2} µs per relayed packet -> {:.0} calls per core; \
             generators: {threads} threads, {:.0}% of a core, {:.2} µs per send_to, at most {:.1} ms behind",
            offered,
            rate,
            if t.warmed_up {
                ""
            } else {
                ", WARM-UP INCOMPLETE"
            },
            t.sent,
            t.send_errors,
            media.dropped,
            media.rcvbuf_errors,
            if t.latency.count == 0 {
                "phones swept every 20 ms (no latency)".to_owned()
            } else {
                format!(
                    "latency p50 {} µs p99 {} µs max {} µs",
                    t.latency.percentile(0.5),
                    t.latency.percentile(0.99),
                    t.latency.max
                )
            },
            media.cpu_note(),
            per_packet,
            per_core,
            100.0 * t.cores,
            t.send_time.as_secs_f64() * 1e6 / t.sent.max(1) as f64,
            t.behind_max.as_secs_f64() * 1000.0,
        );
        let machine = media.fraction() + t.cores;
        let clean = lost == 0 && t.send_errors == 0 && t.warmed_up;
        if clean {
            clean_steps.push((calls, per_core, per_packet));
        } else {
            failed = Some((calls, lost, t.sent, machine));
            break;
        }
    }
    // The per-core figure of the largest step without loss (the most packets per wake-up).
    let Some(&(figure_calls, per_core, per_packet)) = clean_steps.last() else {
        summary.add(
            "relayed G.711 calls per media core",
            format!("no step without loss in {steps:?}"),
            ">= 2500",
            Some(false),
        );
        return;
    };
    let spread = clean_steps
        .iter()
        .filter(|(n, _, _)| *n >= 1000)
        .map(|(_, c, _)| *c)
        .fold((f64::MAX, f64::MIN), |(lo, hi), c| (lo.min(c), hi.max(c)));
    summary.info(
        "CPU per relayed packet (at load)",
        format!(
            "{per_packet:.2} µs at {figure_calls} calls; its three system calls alone take {floor:.2} µs in a tight loop"
        ),
    );
    summary.add(
        "relayed G.711 calls per media core",
        format!(
            "{per_core:.0} (calls / media-thread CPU fraction at {figure_calls} calls; {:.0}..{:.0} over the clean steps of 1000 calls and more)",
            spread.0, spread.1
        ),
        ">= 2500",
        Some(per_core >= 2500.0),
    );
    summary.add(
        "highest relayed G.711 calls with 0 loss end to end",
        match failed {
            None => format!("{figure_calls} (the largest step: not the limit)"),
            Some((n, lost, sent, machine)) => format!(
                "{figure_calls} ({n} lost {lost} of {sent} with the media thread and the generators using {:.0}% of the {} CPUs)",
                100.0 * machine / cpus() as f64,
                cpus()
            ),
        },
        ">= 2500",
        Some(figure_calls >= 2500),
    );
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Terminated calls: each a PCMA leg and an Opus leg connected through the graph.
fn transcoding(summary: &mut Summary, secs: Duration) {
    let steps = env_list("MEDIA_BENCH_TRANSCODE_STEPS", &[100, 200, 300, 400]);
    let threads = generators();
    let pcma = encoded_frames(CodecKind::Pcma, 8000);
    let opus = encoded_frames(CodecKind::Opus, 48000);
    let mut sustained: Option<usize> = None;
    let mut per_core_seen = Vec::new();
    let mut per_frame_seen = Vec::new();
    for &calls in &steps {
        let engine = start_engine();
        let mut shares: Vec<Share> = (0..threads).map(|_| Share::default()).collect();
        let mut endpoints = Vec::new();
        for call in 0..calls {
            let share = &mut shares[call % threads];
            let (pa, addr_a) = share.phone(Expect::Rtp(PCMA_PT));
            let (pb, addr_b) = share.phone(Expect::Rtp(OPUS_PT));
            let (a, b) = engine.allocate_pair().expect("allocate");
            engine.set_remote(a.id, addr_a);
            engine.set_remote(b.id, addr_b);
            engine.terminate(a.id, pcma_leg(), DtmfOptions::default());
            engine.terminate(b.id, opus_leg(), DtmfOptions::default());
            engine.connect(a.id, b.id);
            share.stream(pa, a.local, PCMA_PT, Payload::Frames(pcma.clone()));
            share.stream(pb, b.local, OPUS_PT, Payload::Frames(opus.clone()));
            endpoints.extend([a.id, b.id]);
        }
        let (reports, media) = run_shares(
            shares,
            secs,
            Duration::ZERO,
            sweep(),
            Some(&engine),
            &endpoints,
        );
        // The first call's Opus leg as the engine saw it: proof the packets were decoded.
        let opus_quality = engine
            .stats(endpoints[1])
            .map(|s| s.quality)
            .unwrap_or_default();
        engine.shutdown();
        let t = totals(&reports);
        let frames = media.elapsed.as_secs_f64() / FRAME.as_secs_f64();
        let legs = 2.0 * calls as f64;
        let output = media.packets_out as f64 / (legs * frames);
        let heard = t.received as f64 / (legs * secs.as_secs_f64() / FRAME.as_secs_f64());
        let fraction = media.fraction();
        // Per call frame actually produced (a starved thread skips ticks: fewer frames).
        let per_frame = media.cpu.as_secs_f64() * 1e6 / (media.packets_out.max(1) as f64 / 2.0);
        let per_core = calls as f64 / fraction;
        let kept_up = output >= 0.99 && heard >= 0.99 && t.warmed_up;
        println!(
            "transcoding: {calls} Opus<->PCMA calls: the legs sent {:.1}% of their 50 packets/s, the phones heard {:.1}%{}; \
             {}, {:.1} µs per call per 20 ms frame (both directions: 2 packets in, 2 decodes, 2 encodes, 2 packets out) -> {:.0} calls per core; \
             generators {:.0}% of a core; first Opus leg: {:?} terminated={} received {} lost {} jitter buffer {:?} ms",
            100.0 * output,
            100.0 * heard,
            if t.warmed_up {
                ""
            } else {
                ", WARM-UP INCOMPLETE"
            },
            media.cpu_note(),
            per_frame,
            per_core,
            100.0 * t.cores,
            opus_quality.codec.unwrap_or_default(),
            opus_quality.terminated,
            opus_quality.packets_received,
            opus_quality.packets_lost,
            opus_quality.jitter_buffer_ms,
        );
        per_core_seen.push((calls, per_core, kept_up));
        per_frame_seen.push(per_frame);
        if kept_up {
            sustained = Some(calls);
        } else {
            break;
        }
    }
    // The per-core figure of the largest step that kept up (or the first step).
    let (at, per_core, _) = per_core_seen
        .iter()
        .rev()
        .find(|(_, _, k)| *k)
        .or(per_core_seen.first())
        .copied()
        .unwrap_or((0, 0.0, false));
    let per_frame = per_frame_seen.iter().copied().fold(f64::NAN, f64::min);
    summary.info(
        "CPU per transcoded Opus<->PCMA call frame (20 ms, both directions)",
        format!("{per_frame:.1} µs (lowest of the steps)"),
    );
    summary.add(
        "transcoded Opus<->PCMA calls per media core",
        format!("{per_core:.0} (calls / media-thread CPU fraction at {at} calls)"),
        ">= 200",
        Some(per_core >= 200.0),
    );
    summary.add(
        "highest transcoded calls kept at 50 packets/s per leg end to end",
        match sustained {
            Some(n) => format!("{n} of steps {steps:?}"),
            None => format!("none of {steps:?}"),
        },
        ">= 200",
        Some(sustained.is_some_and(|n| n >= 200)),
    );
}

fn conferences(summary: &mut Summary, secs: Duration) {
    const RATE: u32 = 16000;
    const PARTICIPANTS: usize = 120;
    let pcma = encoded_frames(CodecKind::Pcma, 8000);
    let threads = generators();
    for parties in [3usize, 10] {
        let rooms = PARTICIPANTS / parties;
        let engine = start_engine();
        let mut shares: Vec<Share> = (0..threads).map(|_| Share::default()).collect();
        let mut endpoints = Vec::new();
        for room in 0..rooms {
            let conference = engine.create_conference(RATE);
            let share = &mut shares[room % threads];
            for _ in 0..parties {
                let (phone, addr) = share.phone(Expect::Rtp(PCMA_PT));
                let ep = engine.allocate_for(conference).expect("allocate");
                engine.set_remote(ep.id, addr);
                engine.terminate(ep.id, pcma_leg(), DtmfOptions::default());
                engine.join_conference(conference, ep.id, false, false, None);
                share.stream(phone, ep.local, PCMA_PT, Payload::Frames(pcma.clone()));
                endpoints.push(ep.id);
            }
        }
        let (reports, media) = run_shares(
            shares,
            secs,
            Duration::ZERO,
            sweep(),
            Some(&engine),
            &endpoints,
        );
        engine.shutdown();
        let t = totals(&reports);
        let frames = media.elapsed.as_secs_f64() / FRAME.as_secs_f64();
        let participants = (rooms * parties) as f64;
        let output = media.packets_out as f64 / (participants * frames);
        let heard = t.received as f64 / (participants * secs.as_secs_f64() / FRAME.as_secs_f64());
        // Per participant frame actually produced: one packet out each.
        let per_participant = media.cpu.as_secs_f64() * 1e6 / media.packets_out.max(1) as f64;
        println!(
            "conference: {rooms} rooms of {parties} G.711 parties mixing at {RATE} Hz: the legs sent {:.1}% of their 50 packets/s, the phones heard {:.1}%{}; \
             {}, {:.1} µs per participant per 20 ms frame ({:.1} µs per room frame; packet in, decode, resample, mix-minus, resample, encode, packet out)",
            100.0 * output,
            100.0 * heard,
            if t.warmed_up {
                ""
            } else {
                ", WARM-UP INCOMPLETE"
            },
            media.cpu_note(),
            per_participant,
            per_participant * parties as f64,
        );
        summary.info(
            &format!("CPU per mixed conference frame, {parties} parties"),
            format!(
                "{per_participant:.1} µs per participant ({:.1} µs per room; G.711 at a 16 kHz mix)",
                per_participant * parties as f64
            ),
        );
    }
}

fn send_jitter(summary: &mut Summary, secs: Duration) {
    // At least 400 inter-arrivals per stream, so the p99 of one stream is not its maximum.
    let secs = secs.max(Duration::from_secs(8));
    let tone = ToneSpec::parse("%(0,0,440)").expect("tone");
    for legs in env_list("MEDIA_BENCH_JITTER_LEGS", &[1, 500]) {
        let engine = start_engine();
        let mut share = Share::default();
        let mut endpoints = Vec::new();
        for _ in 0..legs {
            let (_, addr) = share.phone(Expect::Arrivals(PCMA_PT));
            let ep = engine.allocate().expect("allocate");
            engine.set_remote(ep.id, addr);
            engine.terminate(ep.id, pcma_leg(), DtmfOptions::default());
            engine.solo(ep.id);
            let player =
                Player::new(vec![PlayItem::Tone(tone.clone())], 8000, true).expect("player");
            engine.play(ep.id, player);
            endpoints.push(ep.id);
        }
        // The kernel timestamps every arrival, so the phones can be swept: nobody sleeps on
        // them, and the media thread's sends wake no thread (as sends to a NIC would not).
        let read = sweep().map(|_| Duration::from_millis(5));
        let (reports, media) = run_shares(
            vec![share],
            secs,
            Duration::ZERO,
            read,
            Some(&engine),
            &endpoints,
        );
        engine.shutdown();
        let t = totals(&reports);
        let p99 = t.jitter.percentile(0.99);
        println!(
            "send jitter: {legs} solo legs playing a tone, kernel receive timestamps, read by {}: {} inter-arrivals{}, |inter-arrival - 20 ms| p50 {} µs p99 {p99} µs p99.9 {} µs max {} µs; {}",
            if read.is_some() {
                "5 ms sweeps"
            } else {
                "epoll"
            },
            t.jitter.count,
            if t.warmed_up {
                ""
            } else {
                ", WARM-UP INCOMPLETE"
            },
            t.jitter.percentile(0.5),
            t.jitter.percentile(0.999),
            t.jitter.max,
            media.cpu_note(),
        );
        summary.add(
            &format!("send jitter p99, {legs} generated stream(s)"),
            format!("{p99} µs (max {} µs)", t.jitter.max),
            "<= 1 ms",
            Some(t.warmed_up && t.jitter.count > 0 && p99 <= 1000),
        );
    }
}

fn main() {
    // `cargo bench` passes --bench; a filter argument picks phases by name.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    // 3000 relayed calls hold 18000 sockets (6000 endpoints of two ports, 6000 phones).
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        eprintln!("cannot raise the open-files limit to {hard}: {e}");
    }
    let secs = env_secs();
    let mut summary = Summary::default();
    let started = Instant::now();
    let floor = syscall_costs();
    if wanted("latency") {
        relay_latency(&mut summary, secs);
    }
    if wanted("capacity") {
        relay_capacity(&mut summary, secs, floor);
    }
    if wanted("transcoding") {
        transcoding(&mut summary, secs);
    }
    if wanted("conference") {
        conferences(&mut summary, secs);
    }
    if wanted("jitter") {
        send_jitter(&mut summary, secs);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n== media bench summary ({:.0} s, {:.0} s per step, media engine threads = 1, {} CPUs shared with the load generator) ==",
        started.elapsed().as_secs_f64(),
        secs.as_secs_f64(),
        cpus(),
    );
    for line in &summary.lines {
        let _ = writeln!(out, "{line}");
    }
    print!("{out}");
}
