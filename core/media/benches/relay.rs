//! Relay benchmark: 100 concurrent relayed G.711 calls on one media thread.
//!
//! A load generator (this thread) plays both phones of every call: 200 RTP streams of 172-byte
//! packets (160 bytes of G.711 payload), 50 packets/s each, paced on a deadline schedule and
//! spread evenly over each 20 ms frame. Each payload carries its send time (nanoseconds since a
//! shared base), so the receiving phone measures the relay latency. The media thread's CPU time
//! comes from /proc/self/task/<tid>/schedstat (no unsafe). A second phase floods the relay to
//! find the packet rate it sustains.
//!
//! `cargo bench -p switchyard-media` (RELAY_BENCH_SECS=5 for a quick run; default 30).

// Real sockets and real time: like a reactor, this harness reads the clock.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use switchyard_media::{MediaConfig, MediaEngine};

const CALLS: usize = 100;
const STREAMS: usize = 2 * CALLS;
const PAYLOAD: usize = 160;
const PACKET: usize = 12 + PAYLOAD;
const FRAME: Duration = Duration::from_millis(20);
const LATENCY_BUCKETS: usize = 100_000; // 1 µs each; the last one collects the rest

struct Phones {
    poll: Poll,
    events: Events,
    /// Stream s is sent by phones[s] to relay[s] and arrives at phones[s ^ 1].
    phones: Vec<UdpSocket>,
    relay: Vec<SocketAddr>,
    base: Instant,
    buffer: [u8; 2048],
    received: u64,
    latency: Vec<u64>,
}

impl Phones {
    fn send(&mut self, stream: usize, sequence: u16) -> bool {
        let mut packet = [0u8; PACKET];
        packet[0] = 0x80;
        packet[2..4].copy_from_slice(&sequence.to_be_bytes());
        packet[4..8].copy_from_slice(&(u32::from(sequence) * 160).to_be_bytes());
        packet[8..12].copy_from_slice(&(stream as u32).to_be_bytes());
        let sent_at = self.base.elapsed().as_nanos() as u64;
        packet[12..20].copy_from_slice(&sent_at.to_be_bytes());
        self.phones[stream]
            .send_to(&packet, self.relay[stream])
            .is_ok()
    }

    /// Waits up to `timeout` for packets and reads everything readable.
    fn receive(&mut self, timeout: Duration, record: bool) {
        self.poll
            .poll(&mut self.events, Some(timeout))
            .expect("poll");
        for event in &self.events {
            let socket = &self.phones[event.token().0];
            while let Ok((len, _)) = socket.recv_from(&mut self.buffer) {
                if len != PACKET {
                    continue;
                }
                self.received += 1;
                if record {
                    let now = self.base.elapsed().as_nanos() as u64;
                    let sent = u64::from_be_bytes(self.buffer[12..20].try_into().unwrap());
                    let micros = (now.saturating_sub(sent) / 1000) as usize;
                    self.latency[micros.min(LATENCY_BUCKETS - 1)] += 1;
                }
            }
        }
    }

    fn percentile(&self, p: f64) -> usize {
        let total: u64 = self.latency.iter().sum();
        let target = ((total as f64) * p).ceil() as u64;
        let mut seen = 0;
        for (micros, count) in self.latency.iter().enumerate() {
            seen += count;
            if seen >= target.max(1) {
                return micros;
            }
        }
        LATENCY_BUCKETS
    }
}

/// CPU time of the thread named `name`, from the scheduler's nanosecond accounting.
fn thread_cpu(name: &str) -> Duration {
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let path = task.unwrap().path();
        if std::fs::read_to_string(path.join("comm"))
            .map(|c| c.trim() == name)
            .unwrap_or(false)
        {
            let schedstat = std::fs::read_to_string(path.join("schedstat")).expect("schedstat");
            let nanos: u64 = schedstat
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
            return Duration::from_nanos(nanos);
        }
    }
    panic!("no thread named {name}");
}

fn main() {
    let secs: u64 = std::env::var("RELAY_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let engine = MediaEngine::start(
        MediaConfig {
            ip: "127.0.0.1".parse().unwrap(),
            port_min: 24000,
            port_max: 24999,
            rtp_timeout: Duration::from_secs(600),
            threads: 1,
            realtime_priority: None,
        },
        Box::new(|event| eprintln!("unexpected media event: {event:?}")),
    )
    .expect("media engine");

    let poll = Poll::new().unwrap();
    let mut phones = Vec::with_capacity(STREAMS);
    let mut relay = Vec::with_capacity(STREAMS);
    let mut endpoints = Vec::with_capacity(STREAMS);
    for _ in 0..CALLS {
        let (a, b) = engine.allocate_pair().expect("allocate");
        for ep in [&a, &b] {
            let mut phone = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            poll.registry()
                .register(&mut phone, Token(phones.len()), Interest::READABLE)
                .unwrap();
            engine.set_remote(ep.id, phone.local_addr().unwrap());
            relay.push(ep.local);
            phones.push(phone);
            endpoints.push(ep.id);
        }
        engine.bridge(a.id, b.id);
    }
    let mut phones = Phones {
        poll,
        events: Events::with_capacity(1024),
        phones,
        relay,
        base: Instant::now(),
        buffer: [0; 2048],
        received: 0,
        latency: vec![0; LATENCY_BUCKETS],
    };

    // Warm-up: one packet per stream, until all came through (the bridges are in place).
    let deadline = Instant::now() + Duration::from_secs(5);
    for stream in 0..STREAMS {
        phones.send(stream, 0);
    }
    while phones.received < STREAMS as u64 && Instant::now() < deadline {
        phones.receive(Duration::from_millis(10), false);
    }
    assert_eq!(phones.received, STREAMS as u64, "warm-up packets lost");
    phones.received = 0;
    let relayed_before: u64 = endpoints
        .iter()
        .map(|e| engine.stats(*e).unwrap().packets_out)
        .sum();

    // Paced phase: packet k goes to stream k % 200 at start + k × (20 ms / 200).
    let spacing = FRAME / STREAMS as u32;
    let total = secs * 50 * STREAMS as u64;
    let cpu_start = thread_cpu("media-0");
    let start = Instant::now();
    let mut sent = 0u64;
    let mut k = 0u64;
    while k < total {
        let now = Instant::now();
        while k < total && start + spacing * k as u32 <= now {
            if phones.send(
                (k % STREAMS as u64) as usize,
                (k / STREAMS as u64) as u16 + 1,
            ) {
                sent += 1;
            }
            k += 1;
        }
        let next = start + spacing * k as u32;
        phones.receive(next.saturating_duration_since(Instant::now()), true);
    }
    let drain = Instant::now() + Duration::from_millis(500);
    while phones.received < sent && Instant::now() < drain {
        phones.receive(Duration::from_millis(10), true);
    }
    let elapsed = start.elapsed();
    let cpu = thread_cpu("media-0") - cpu_start;
    let relayed: u64 = endpoints
        .iter()
        .map(|e| engine.stats(*e).unwrap().packets_out)
        .sum::<u64>()
        - relayed_before;
    let lost = sent - phones.received;
    println!(
        "media: {CALLS} relayed G.711 calls for {secs} s: media-thread CPU {:.2} s ({:.1}% of one core), packets relayed {relayed}, lost {lost}, relay latency p50 {} µs p99 {} µs",
        cpu.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / elapsed.as_secs_f64(),
        phones.percentile(0.50),
        phones.percentile(0.99),
    );
    println!(
        "media: paced phase {:.0} packets/s relayed, {:.2} µs media-thread CPU per relayed packet, p99.9 latency {} µs",
        relayed as f64 / elapsed.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / relayed.max(1) as f64,
        phones.percentile(0.999),
    );

    // Flood phase: as fast as the generator can, with at most WINDOW packets in flight so
    // socket buffers do not overflow; the relay's sustained rate is what comes out.
    const WINDOW: u64 = 2000;
    let flood = Duration::from_secs(secs.clamp(2, 5));
    phones.received = 0;
    let relayed_before: u64 = endpoints
        .iter()
        .map(|e| engine.stats(*e).unwrap().packets_out)
        .sum();
    let cpu_start = thread_cpu("media-0");
    let start = Instant::now();
    let mut sent = 0u64;
    let mut stream = 0;
    while start.elapsed() < flood {
        while sent - phones.received < WINDOW {
            if phones.send(stream, sent as u16) {
                sent += 1;
            }
            stream = (stream + 1) % STREAMS;
        }
        phones.receive(Duration::from_millis(1), false);
    }
    let elapsed = start.elapsed();
    let cpu = thread_cpu("media-0") - cpu_start;
    let relayed: u64 = endpoints
        .iter()
        .map(|e| engine.stats(*e).unwrap().packets_out)
        .sum::<u64>()
        - relayed_before;
    println!(
        "media: flood: relay sustained {:.0} packets/s ({:.0} G.711 calls' worth) with the media thread at {:.1}% of one core \
         and the generator sharing the machine's 2 cores; {:.2} µs CPU per packet, so ~{:.0} packets/s per fully used core",
        relayed as f64 / elapsed.as_secs_f64(),
        relayed as f64 / elapsed.as_secs_f64() / 100.0,
        100.0 * cpu.as_secs_f64() / elapsed.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / relayed.max(1) as f64,
        relayed as f64 / cpu.as_secs_f64().max(1e-9),
    );
    engine.shutdown();
}
