//! The per-packet and per-frame paths allocate nothing once their objects are built: a
//! counting global allocator (`stats_alloc`; the workspace forbids the `unsafe` a `GlobalAlloc`
//! impl needs) wraps the system one for this binary, which holds one test on purpose (the count
//! is process-wide).

mod common;

use std::alloc::System;
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use switchyard_rtp::event::{EventReceiver, EventSender};
use switchyard_rtp::jitter::{JitterBuffer, JitterConfig, Playout};
use switchyard_rtp::packet::RtpHeader;
use switchyard_rtp::rtcp::{ReportBlock, RttEstimator, SenderInfo, parse_compound, write_report};
use switchyard_rtp::stats::ReceiveStats;

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn allocations() -> usize {
    let stats = ALLOCATOR.stats();
    stats.allocations + stats.reallocations
}

#[test]
fn hot_paths_do_not_allocate() {
    let t0 = common::epoch();
    let mut jb = JitterBuffer::new(8000, JitterConfig::default());
    let mut stats = ReceiveStats::new(8000);
    let mut rx = EventReceiver::new(8000);
    let mut tx = EventSender::new(101, 8000);
    let mut rtt = RttEstimator::new();
    let mut packet = [0xd5u8; 172];
    let mut rtcp = [0u8; 256];
    let mut event = [0u8; 4];
    let mut played = 0u64;
    let mut run = |from: u32, to: u32, tx: &mut EventSender| {
        for n in from..to {
            let now = t0 + Duration::from_millis(20 * u64::from(n));
            // Every 17th packet lost, every 13th swapped with the next.
            let k = if n % 13 == 0 {
                n + 1
            } else if n % 13 == 1 {
                n - 1
            } else {
                n
            };
            if k % 17 != 5 {
                RtpHeader {
                    marker: false,
                    payload_type: 0,
                    sequence: k as u16,
                    timestamp: k.wrapping_mul(160),
                    ssrc: 9,
                    payload_offset: 0,
                    payload_len: 0,
                }
                .write(&mut packet);
                let h = RtpHeader::parse(&packet).unwrap();
                stats.on_packet(now, &h);
                jb.insert(now, &h, h.payload(&packet));
            }
            loop {
                match jb.pop(now, 160) {
                    Playout::NotYet => break,
                    Playout::Packet { .. } => played += 1,
                    _ => {}
                }
            }
            if n % 50 == 0 {
                tx.queue('5', 100).unwrap();
            }
            if let Some(p) = tx.next_packet(&mut event) {
                let h = RtpHeader {
                    marker: p.marker,
                    payload_type: p.payload_type,
                    sequence: n as u16,
                    timestamp: p.timestamp(n * 160),
                    ssrc: 3,
                    payload_offset: 12,
                    payload_len: p.len,
                };
                rx.on_packet(now, &h, &event);
            }
            while rx.poll_timeout(now).is_some() {}
            if n % 250 == 0 {
                let block = stats.report_block(9, now, Some((n, now)));
                rtt.sr_sent(9, n, now);
                let len = write_report(
                    &mut rtcp,
                    1,
                    Some(SenderInfo::default()),
                    &[block, ReportBlock::default()],
                    "leg@switchyard",
                );
                parse_compound(&rtcp[..len], |_| {}).unwrap();
                rtt.rtt_from_block(&block, now);
            }
        }
    };
    run(0, 500, &mut tx);
    // The counter is process-wide: the test harness's own thread may allocate now and then
    // (seen once under a loaded CI run). A hot-path allocation would show in every window of
    // 20,000 packets, so one clean window out of three proves there is none.
    let mut counts = Vec::new();
    for window in 0..3u32 {
        let start = 500 + window * 20_000;
        let before = allocations();
        run(start, start + 20_000, &mut tx);
        counts.push(allocations() - before);
        if counts.last() == Some(&0) {
            break;
        }
    }
    assert!(
        counts.contains(&0),
        "allocations on the hot path in every window: {counts:?}"
    );
    assert!(played > 18_000, "{played}");
    assert!(stats.snapshot().lost > 1000);
}
