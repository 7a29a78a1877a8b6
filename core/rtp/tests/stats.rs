//! RFC 3550 Appendix A receiver statistics.

mod common;

use std::time::{Duration, Instant};
use switchyard_rtp::packet::RtpHeader;
use switchyard_rtp::stats::ReceiveStats;

fn h(ssrc: u32, seq: u16, ts: u32) -> RtpHeader {
    RtpHeader {
        marker: false,
        payload_type: 0,
        sequence: seq,
        timestamp: ts,
        ssrc,
        payload_offset: 12,
        payload_len: 160,
    }
}

/// Feeds 20 ms packets `seqs` (in that order) from a start sequence, arrival on time.
fn feed(s: &mut ReceiveStats, t0: Instant, first: u16, seqs: impl IntoIterator<Item = u16>) {
    for seq in seqs {
        let n = u32::from(seq.wrapping_sub(first));
        s.on_packet(
            t0 + Duration::from_millis(20 * u64::from(n)),
            &h(1, seq, 160 * n),
        );
    }
}

#[test]
fn probation_then_counting() {
    let t0 = common::epoch();
    let mut s = ReceiveStats::new(8000);
    s.on_packet(t0, &h(1, 100, 0));
    assert!(
        !s.is_valid(),
        "one packet is not enough (A.1 MIN_SEQUENTIAL = 2)"
    );
    assert_eq!(s.snapshot().packets, 0);
    // Out of sequence: probation starts over.
    s.on_packet(t0, &h(1, 200, 0));
    assert!(!s.is_valid());
    s.on_packet(t0, &h(1, 201, 160));
    assert!(s.is_valid());
    // A.1: counting starts with the packet that ends probation.
    assert_eq!(s.snapshot().packets, 1);
    let b = s.report_block(1, t0, None);
    assert_eq!(
        (b.highest_seq, b.cumulative_lost, b.fraction_lost),
        (201, 0, 0)
    );
}

#[test]
fn loss_fraction_per_interval_and_cumulative() {
    let t0 = common::epoch();
    let mut s = ReceiveStats::new(8000);
    // 0..=100 minus 10 losses in the first report interval.
    let lost = [5u16, 17, 23, 30, 41, 55, 60, 72, 88, 99];
    feed(&mut s, t0, 0, (0..=100).filter(|q| !lost.contains(q)));
    let b = s.report_block(0x77, t0 + Duration::from_secs(2), None);
    // Counting starts at seq 1 (probation): expected 100, received 90.
    assert_eq!(b.ssrc, 0x77);
    assert_eq!(b.cumulative_lost, 10);
    assert_eq!(b.fraction_lost, (10 * 256 / 100) as u8);
    assert_eq!(b.highest_seq, 100);
    assert_eq!((b.lsr, b.dlsr), (0, 0));
    // The next interval has no loss: fraction 0, cumulative unchanged.
    feed(&mut s, t0, 0, 101..=200);
    let b = s.report_block(0x77, t0 + Duration::from_secs(4), None);
    assert_eq!(
        (b.fraction_lost, b.cumulative_lost, b.highest_seq),
        (0, 10, 200)
    );
    let snap = s.snapshot();
    assert_eq!((snap.packets, snap.lost), (190, 10));
    assert!((snap.loss_fraction_total - 0.05).abs() < 1e-12);
    // An interval with only duplicates: the fraction stays 0 (A.3: never negative).
    feed(&mut s, t0, 0, [200, 200, 200]);
    let b = s.report_block(0x77, t0, None);
    assert_eq!((b.fraction_lost, b.cumulative_lost), (0, 7));
}

#[test]
fn sequence_wrap_extends_the_highest_number() {
    let t0 = common::epoch();
    let mut s = ReceiveStats::new(8000);
    let first = 65530u16;
    feed(&mut s, t0, first, (0..20u16).map(|i| first.wrapping_add(i)));
    let b = s.report_block(1, t0, None);
    assert_eq!(b.highest_seq, 65536 + 13);
    assert_eq!(b.cumulative_lost, 0);
    // A packet reordered across the wrap is neither loss nor a new cycle.
    feed(&mut s, t0, first, [65535]);
    let b = s.report_block(1, t0, None);
    assert_eq!((b.highest_seq, b.cumulative_lost), (65536 + 13, -1));
}

#[test]
fn duplicates_make_loss_negative_and_the_field_clamps() {
    let t0 = common::epoch();
    let mut s = ReceiveStats::new(8000);
    feed(&mut s, t0, 0, 0..10);
    feed(&mut s, t0, 0, [9, 9, 9]);
    assert_eq!(s.report_block(1, t0, None).cumulative_lost, -3);
    assert_eq!(s.snapshot().loss_fraction_total, 0.0);

    // 3000 jumps of 2999 (just under MAX_DROPOUT): 2998 × 2999 lost, beyond 24 bits.
    let mut s = ReceiveStats::new(8000);
    let mut seq = 0u16;
    s.on_packet(t0, &h(1, seq, 0));
    seq += 1;
    s.on_packet(t0, &h(1, seq, 0));
    for _ in 0..3000 {
        seq = seq.wrapping_add(2999);
        s.on_packet(t0, &h(1, seq, 0));
    }
    assert_eq!(s.snapshot().lost, 2998 * 3000);
    assert_eq!(s.report_block(1, t0, None).cumulative_lost, 0x7f_ffff);
}

#[test]
fn a_restarted_sender_is_followed() {
    let t0 = common::epoch();
    let mut s = ReceiveStats::new(8000);
    feed(&mut s, t0, 0, 0..50);
    // One stray packet far away is dropped …
    s.on_packet(t0, &h(1, 30000, 0));
    assert_eq!(s.report_block(1, t0, None).highest_seq, 49);
    // … two in sequence mean the sender restarted (A.1 bad_seq).
    s.on_packet(t0, &h(1, 40000, 0));
    s.on_packet(t0, &h(1, 40001, 160));
    let b = s.report_block(1, t0, None);
    assert_eq!((b.highest_seq, b.cumulative_lost), (40001, 0));
    // A.1: counting restarts with the second packet (init_seq, then counted).
    assert_eq!(s.snapshot().packets, 1);
}

#[test]
fn a_new_ssrc_starts_over() {
    let t0 = common::epoch();
    let mut s = ReceiveStats::new(8000);
    feed(&mut s, t0, 0, [0, 1, 2, 5]);
    assert_eq!(s.snapshot().lost, 2);
    s.on_packet(t0, &h(2, 7000, 0));
    assert_eq!(s.ssrc(), Some(2));
    assert!(!s.is_valid());
    s.on_packet(t0, &h(2, 7001, 160));
    assert_eq!(s.snapshot().lost, 0);
    assert_eq!(s.report_block(2, t0, None).highest_seq, 7001);
}

#[test]
fn interarrival_jitter() {
    let t0 = common::epoch();
    // Constant transit: no jitter.
    let mut s = ReceiveStats::new(8000);
    feed(&mut s, t0, 0, 0..100);
    assert_eq!(s.report_block(1, t0, None).jitter, 0);
    // Every other packet 10 ms late: |D| = 80 units each time, J converges to 80 (A.8).
    let mut s = ReceiveStats::new(8000);
    for n in 0..500u32 {
        let late = if n % 2 == 1 { 10 } else { 0 };
        let at = t0 + Duration::from_millis(20 * u64::from(n) + late);
        s.on_packet(at, &h(1, n as u16, 160 * n));
    }
    let j = s.report_block(1, t0, None).jitter;
    assert!((78..=80).contains(&j), "jitter {j}");
    assert!((s.snapshot().jitter_ms - 10.0).abs() < 0.3);
    // The first step of the estimator: J = |D| / 16.
    let mut s = ReceiveStats::new(8000);
    feed(&mut s, t0, 0, 0..2);
    s.on_packet(t0 + Duration::from_millis(40 + 20), &h(1, 2, 320));
    assert_eq!(s.jitter_units(), 160 / 16);
}

#[test]
fn lsr_and_dlsr() {
    let t0 = common::epoch();
    let mut s = ReceiveStats::new(8000);
    feed(&mut s, t0, 0, 0..10);
    let b = s.report_block(
        1,
        t0 + Duration::from_millis(2500),
        Some((0x1234_5678, t0 + Duration::from_secs(1))),
    );
    assert_eq!((b.lsr, b.dlsr), (0x1234_5678, 98304)); // 1.5 s in 1/65536 s
    // Before the source is valid, a block still carries LSR/DLSR.
    let mut s = ReceiveStats::new(8000);
    let b = s.report_block(9, t0 + Duration::from_secs(2), Some((5, t0)));
    assert_eq!((b.ssrc, b.lsr, b.dlsr, b.highest_seq), (9, 5, 131072, 0));
}
