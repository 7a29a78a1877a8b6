//! Per-packet costs: header parse, receive statistics update, jitter buffer insert + pop.
//! Criterion prints the time per iteration, i.e. ns per packet.
// The clock's origin only: the code under test gets time passed in.
#![allow(clippy::disallowed_methods)]

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};
use switchyard_rtp::jitter::{JitterBuffer, JitterConfig, Playout};
use switchyard_rtp::packet::RtpHeader;
use switchyard_rtp::stats::ReceiveStats;

/// Packet `n` of a 20 ms G.711 stream.
fn header(n: u64) -> RtpHeader {
    RtpHeader {
        marker: false,
        payload_type: 0,
        sequence: n as u16,
        timestamp: (n * 160) as u32,
        ssrc: 0x1234_5678,
        payload_offset: 12,
        payload_len: 160,
    }
}

fn benches(c: &mut Criterion) {
    let mut packet = [0xd5u8; 172];
    header(1).write(&mut packet);
    c.bench_function("header parse (172-byte G.711 packet)", |b| {
        b.iter(|| RtpHeader::parse(black_box(&packet)))
    });

    let start = Instant::now();
    let mut stats = ReceiveStats::new(8000);
    let mut k = 0u64;
    c.bench_function("ReceiveStats::on_packet", |b| {
        b.iter(|| {
            k += 1;
            let now = start + Duration::from_millis(20 * k);
            stats.on_packet(now, black_box(&header(k)));
        })
    });
    assert!(k == 0 || stats.snapshot().lost == 0);

    let mut jb = JitterBuffer::new(8000, JitterConfig::default());
    let payload = [0xd5u8; 160];
    let mut n = 0u64;
    c.bench_function("jitter insert + pop (one 20 ms packet and frame)", |b| {
        b.iter(|| {
            n += 1;
            let now = start + Duration::from_millis(20 * n);
            jb.insert(now, &header(n), black_box(&payload));
            loop {
                match jb.pop(now, 160) {
                    Playout::NotYet => break,
                    other => {
                        black_box(other);
                    }
                }
            }
        })
    });
    // The loop above plays packets, not concealment.
    let s = jb.stats();
    assert!(
        n == 0 || (s.played > 0 && s.lost + s.late + s.dropped == 0),
        "{s:?}"
    );
}

criterion_group!(rtp, benches);
criterion_main!(rtp);
