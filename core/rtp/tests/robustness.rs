//! Random and hostile input: parsers never panic, the jitter buffer keeps its output contract
//! whatever arrives.

mod common;

use std::time::Duration;
use switchyard_rtp::event::EventReceiver;
use switchyard_rtp::jitter::{JitterBuffer, JitterConfig, Playout};
use switchyard_rtp::packet::RtpHeader;
use switchyard_rtp::rtcp::{RtcpPacket, parse_compound};
use switchyard_rtp::stats::ReceiveStats;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_datagrams_do_not_panic_the_parsers() {
    let mut rng = Rng(99);
    let mut buf = [0u8; 200];
    let (mut rtp_ok, mut rtcp_ok) = (0, 0);
    let t0 = common::epoch();
    let mut rx = EventReceiver::new(8000);
    for i in 0..200_000u64 {
        let len = rng.below(200) as usize;
        for b in &mut buf[..len] {
            *b = rng.next() as u8;
        }
        // Half the time, make the first octets look right so the deeper checks run.
        if i % 2 == 0 && len >= 4 {
            buf[0] = 0x80 | (buf[0] & 0x3f);
            buf[1] = [200, 201, 202, 203][i as usize / 2 % 4];
            let words = (len / 4 - 1) as u16;
            buf[2..4].copy_from_slice(&words.to_be_bytes());
        }
        let p = &buf[..len];
        if let Ok(h) = RtpHeader::parse(p) {
            rtp_ok += 1;
            assert!(h.payload_offset + h.payload_len <= len);
            rx.on_packet(t0, &h, h.payload(p));
        }
        let r = parse_compound(p, |pkt| {
            // Iterating the validated parts never panics either.
            match pkt {
                RtcpPacket::SenderReport { reports, .. }
                | RtcpPacket::ReceiverReport { reports, .. } => {
                    reports.count();
                }
                RtcpPacket::Sdes { items } => {
                    items.count();
                }
                RtcpPacket::Bye { sources, .. } => {
                    sources.count();
                }
                RtcpPacket::Other { .. } => {}
            }
        });
        if r.is_ok() {
            rtcp_ok += 1;
        }
    }
    assert!(rtp_ok > 10_000 && rtcp_ok > 100, "{rtp_ok} {rtcp_ok}");
}

#[test]
fn hostile_streams_keep_the_output_contract() {
    let mut rng = Rng(5);
    let t0 = common::epoch();
    for round in 0..20 {
        let mut jb = JitterBuffer::new(8000, JitterConfig::default());
        let mut stats = ReceiveStats::new(8000);
        let mut fifo = 0u64;
        let (mut seq, mut ts) = (rng.next() as u16, rng.next() as u32);
        let mut now = t0;
        for step in 0..3000u32 {
            // Mostly a plausible stream, with random jumps of every kind mixed in.
            for _ in 0..rng.below(3) {
                match rng.below(20) {
                    0 => seq = rng.next() as u16,
                    1 => ts = rng.next() as u32,
                    2 => seq = seq.wrapping_sub(rng.below(200) as u16),
                    3 => ts = ts.wrapping_add(rng.below(1_000_000) as u32),
                    _ => {}
                }
                let ssrc = if rng.below(500) == 0 { 2 } else { 1 };
                let h = RtpHeader {
                    marker: rng.below(30) == 0,
                    payload_type: 0,
                    sequence: seq,
                    timestamp: ts,
                    ssrc,
                    payload_offset: 12,
                    payload_len: 160,
                };
                let len = rng.below(400) as usize;
                jb.insert(now, &h, &[0u8; 400][..len]);
                stats.on_packet(now, &h);
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(160);
            }
            while let Playout::Packet { units, .. }
            | Playout::Lost { units, .. }
            | Playout::Gap { units } = jb.pop(now, 160)
            {
                assert!(
                    units > 0 && units <= 960,
                    "round {round} step {step}: {units}"
                );
                fifo += u64::from(units);
            }
            assert!(fifo >= 160, "round {round} step {step}: underflow");
            fifo -= 160;
            assert!(fifo < 960, "round {round} step {step}: {fifo} left");
            now += Duration::from_millis(rng.below(40));
            let d = jb.target_delay();
            assert!(d >= Duration::from_millis(20) && d <= Duration::from_millis(200));
        }
        stats.report_block(1, now, None);
    }
}
