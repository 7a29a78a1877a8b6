//! RTCP: compound packets from baresip, round trips, validity checks, RTT and scheduling.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use switchyard_rtp::Error;
use switchyard_rtp::rtcp::{
    ReportBlock, RtcpPacket, RtcpScheduler, RttEstimator, SdesItem, SenderInfo,
    ntp_from_system_time, ntp_middle, parse_compound, report_len, write_report,
};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Parses a compound into owned descriptions, for comparisons.
#[derive(Debug, PartialEq)]
enum Seen {
    Sr(u32, SenderInfo, Vec<ReportBlock>),
    Rr(u32, Vec<ReportBlock>),
    Sdes(Vec<(u32, u8, Vec<u8>)>),
    Bye(Vec<u32>, Option<Vec<u8>>),
    Other(u8, u8, Vec<u8>),
}

fn parse(buf: &[u8]) -> Result<Vec<Seen>, Error> {
    let mut seen = Vec::new();
    parse_compound(buf, |p| {
        seen.push(match p {
            RtcpPacket::SenderReport {
                ssrc,
                info,
                reports,
            } => {
                assert_eq!(reports.len(), reports.clone().count());
                Seen::Sr(ssrc, info, reports.collect())
            }
            RtcpPacket::ReceiverReport { ssrc, reports } => Seen::Rr(ssrc, reports.collect()),
            RtcpPacket::Sdes { items } => Seen::Sdes(
                items
                    .map(|SdesItem { ssrc, kind, value }| (ssrc, kind, value.to_vec()))
                    .collect(),
            ),
            RtcpPacket::Bye { sources, reason } => {
                Seen::Bye(sources.collect(), reason.map(<[u8]>::to_vec))
            }
            RtcpPacket::Other {
                packet_type,
                count,
                body,
            } => Seen::Other(packet_type, count, body.to_vec()),
        })
    })?;
    Ok(seen)
}

const BARESIP_CNAME: &[u8] = b"sip:bob@127.0.0.1:47060";

#[test]
fn baresip_sender_report() {
    // Captured from baresip 1.0 (Debian 12) in a call with a test UAC that sent it PCMU with
    // every 25th packet missing: SR + one report block + SDES CNAME.
    let sr = hex(
        "81c8000c 21c382af eeb021e9 3ac050bd 00018dda 000000fa 00009c40
         5ca1ab1e 0a00000a 000004d3 00000008 00000000 00000000
         81ca0008 21c382af 0117 7369703a626f62403132372e302e302e313a3437303630 000000",
    );
    let seen = parse(&sr).unwrap();
    assert_eq!(
        seen,
        vec![
            Seen::Sr(
                0x21c3_82af,
                SenderInfo {
                    ntp: 0xeeb0_21e9_3ac0_50bd,
                    rtp_ts: 0x0001_8dda,
                    packets: 250,
                    octets: 40000,
                },
                vec![ReportBlock {
                    ssrc: 0x5ca1_ab1e,
                    fraction_lost: 10,
                    cumulative_lost: 10,
                    highest_seq: 1235,
                    jitter: 8,
                    lsr: 0,
                    dlsr: 0,
                }]
            ),
            Seen::Sdes(vec![(0x21c3_82af, 1, BARESIP_CNAME.to_vec())]),
        ]
    );
    // Our writer produces the same octets from the same fields.
    let Seen::Sr(ssrc, info, blocks) = &seen[0] else {
        unreachable!()
    };
    let mut out = [0u8; 200];
    let n = write_report(
        &mut out,
        *ssrc,
        Some(*info),
        blocks,
        std::str::from_utf8(BARESIP_CNAME).unwrap(),
    );
    assert_eq!(&out[..n], &sr[..]);
}

#[test]
fn baresip_bye_and_ping() {
    // On hangup baresip 1.0 sends BYE (reason "Adjo") + SDES without a report first; RFC 3550
    // §6.1 wants an (empty) RR first, but we accept BYE-first compounds to see the BYE.
    let bye = hex("81cb0003 21c382af 04 41646a6f 000000
         81ca0008 21c382af 0117 7369703a626f62403132372e302e302e313a3437303630 000000");
    assert_eq!(
        parse(&bye).unwrap(),
        vec![
            Seen::Bye(vec![0x21c3_82af], Some(b"Adjo".to_vec())),
            Seen::Sdes(vec![(0x21c3_82af, 1, BARESIP_CNAME.to_vec())]),
        ]
    );
    // Its keep-alive, a lone APP "PING" (name "PONG"), is not a compound report.
    let ping = hex("80cc0003 21c382af 50494e47 504f4e47");
    assert!(matches!(parse(&ping), Err(Error::InvalidRtcp(_))));
}

#[test]
fn receiver_report_round_trip() {
    let blocks = [
        ReportBlock {
            ssrc: 1,
            fraction_lost: 255,
            cumulative_lost: -5,
            highest_seq: 0x0001_0005,
            jitter: 77,
            lsr: 0xaabb_ccdd,
            dlsr: 65536,
        },
        ReportBlock {
            ssrc: 2,
            cumulative_lost: 0x7f_ffff,
            ..ReportBlock::default()
        },
    ];
    let mut out = [0u8; 256];
    let cname = "leg-7@switchyard";
    let n = write_report(&mut out, 0xfeed, None, &blocks, cname);
    assert_eq!(n, report_len(false, 2, cname.len()));
    assert_eq!(n, 8 + 48 + 4 + 24);
    assert_eq!(n % 4, 0);
    assert_eq!(
        parse(&out[..n]).unwrap(),
        vec![
            Seen::Rr(0xfeed, blocks.to_vec()),
            Seen::Sdes(vec![(0xfeed, 1, cname.as_bytes().to_vec())]),
        ]
    );
    // An empty RR (RFC 3550 §6.1: sent even with nothing to report).
    let n = write_report(&mut out, 3, None, &[], "x");
    assert_eq!(&out[..8], &hex("80c90001 00000003")[..]);
    assert_eq!(parse(&out[..n]).unwrap().len(), 2);
    // A CNAME whose length is a multiple of 4 minus 2 still gets its null terminator.
    let n = write_report(&mut out, 3, None, &[], "ab");
    assert_eq!(&out[8..n], &hex("81ca0003 00000003 01026162 00000000")[..]);
}

#[test]
fn out_of_range_values_are_clamped_or_cut() {
    let blocks = vec![
        ReportBlock {
            cumulative_lost: -10_000_000,
            ..ReportBlock::default()
        };
        40
    ];
    let long_cname = "é".repeat(200); // 400 octets
    let mut out = vec![0u8; 2000];
    let n = write_report(
        &mut out,
        1,
        Some(SenderInfo::default()),
        &blocks,
        &long_cname,
    );
    assert_eq!(n, report_len(true, 40, long_cname.len()));
    let seen = parse(&out[..n]).unwrap();
    let Seen::Sr(_, _, got) = &seen[0] else {
        panic!("{seen:?}")
    };
    assert_eq!(got.len(), 31, "the count field holds 31 at most");
    assert_eq!(got[0].cumulative_lost, -0x80_0000);
    let Seen::Sdes(items) = &seen[1] else {
        panic!()
    };
    assert_eq!(
        items[0].2.len(),
        254,
        "cut at a character boundary within 255 octets"
    );
}

#[test]
fn invalid_compounds_are_rejected_whole() {
    let mut good = [0u8; 128];
    let n = write_report(&mut good, 9, None, &[ReportBlock::default()], "cname");
    let good = &good[..n];
    assert!(parse(good).is_ok());
    let calls = |buf: &[u8]| {
        let mut count = 0;
        let r = parse_compound(buf, |_| count += 1);
        (r, count)
    };
    // Trailing octets that are not a packet: nothing is delivered.
    let mut long = good.to_vec();
    long.extend_from_slice(&[0x80, 0xcb, 0x00]);
    assert!(matches!(calls(&long), (Err(Error::Truncated { .. }), 0)));
    // The length field of the RR reaching past the datagram.
    let mut bad = good.to_vec();
    bad[3] = 0x40;
    assert!(matches!(calls(&bad), (Err(Error::Truncated { .. }), 0)));
    // Version 1 in the second packet.
    let mut bad = good.to_vec();
    bad[32] = 0x41;
    assert!(matches!(calls(&bad), (Err(Error::BadVersion(1)), 0)));
    // Padding bit on the first packet (A.2).
    let mut bad = good.to_vec();
    bad[0] |= 0x20;
    assert!(matches!(calls(&bad), (Err(Error::InvalidRtcp(_)), 0)));
    // Count larger than the packet: RC = 2 with one block.
    let mut bad = good.to_vec();
    bad[0] = 0x82;
    assert!(matches!(calls(&bad), (Err(Error::InvalidRtcp(_)), 0)));
    // First packet neither SR nor RR.
    assert!(matches!(
        calls(&good[32..]),
        (Err(Error::InvalidRtcp(_)), 0)
    ));
    // SDES item list without its terminating null.
    let sdes = hex("81ca0002 00000009 01020102");
    let mut bad = good[..32].to_vec();
    bad.extend_from_slice(&sdes);
    assert!(matches!(calls(&bad), (Err(Error::InvalidRtcp(_)), 0)));
    // BYE whose reason runs past the packet.
    let mut bad = good[..32].to_vec();
    bad.extend_from_slice(&hex("81cb0002 00000009 09414243"));
    assert!(matches!(calls(&bad), (Err(Error::InvalidRtcp(_)), 0)));
    assert!(matches!(
        calls(&[0x80, 0xc9]),
        (Err(Error::Truncated { .. }), 0)
    ));
}

#[test]
fn padding_in_the_last_packet() {
    // RR, then an APP with 4 octets of padding (P bit, last octet 4).
    let mut buf = hex("80c90001 00000001");
    buf.extend_from_slice(&hex("a0cc0004 00000001 41424344 11223344 00000004"));
    assert_eq!(
        parse(&buf).unwrap()[1],
        Seen::Other(204, 0, hex("00000001 41424344 11223344"))
    );
    // Padding count larger than the body.
    let n = buf.len();
    buf[n - 1] = 0x20;
    assert!(matches!(parse(&buf), Err(Error::BadPadding(0x20))));
}

#[test]
fn ntp_timestamps() {
    assert_eq!(ntp_from_system_time(UNIX_EPOCH), 2_208_988_800u64 << 32);
    let t = UNIX_EPOCH + Duration::from_millis(1_500);
    assert_eq!(
        ntp_from_system_time(t),
        ((2_208_988_801u64) << 32) | 0x8000_0000
    );
    // 2036-02-07 06:28:16 UTC is the end of NTP era 0: seconds wrap to 0.
    let era1 = UNIX_EPOCH + Duration::from_secs((1u64 << 32) - 2_208_988_800);
    assert_eq!(ntp_from_system_time(era1), 0);
    // Before 1970.
    let t = UNIX_EPOCH - Duration::from_secs(2_208_988_800 - 5);
    assert_eq!(ntp_from_system_time(t), 5 << 32);
    // The baresip SR above: eeb021e9.3ac050bd; its LSR would be 21e93ac0.
    assert_eq!(ntp_middle(0xeeb0_21e9_3ac0_50bd), 0x21e9_3ac0);
    let info = SenderInfo {
        ntp: 0xeeb0_21e9_3ac0_50bd,
        ..SenderInfo::default()
    };
    assert_eq!(info.ntp_middle(), 0x21e9_3ac0);
    let _ = SystemTime::UNIX_EPOCH;
}

#[test]
fn rtt_from_lsr_and_dlsr() {
    let t0 = common::epoch();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut rtt = RttEstimator::new();
    // We send two SRs; the peer answers the second after holding it 250 ms.
    rtt.sr_sent(0xabc, 0x1111_0000, ms(0));
    rtt.sr_sent(0xabc, 0x2222_0000, ms(5000));
    let block = ReportBlock {
        ssrc: 0xabc,
        lsr: 0x2222_0000,
        dlsr: 65536 / 4,
        ..ReportBlock::default()
    };
    assert_eq!(
        rtt.rtt_from_block(&block, ms(5330)),
        Some(Duration::from_millis(80))
    );
    assert_eq!(rtt.latest(), Some(Duration::from_millis(80)));
    // No SR received by the peer yet, an SR we never sent, another source.
    let none = ReportBlock { lsr: 0, ..block };
    assert_eq!(rtt.rtt_from_block(&none, ms(6000)), None);
    let unknown = ReportBlock {
        lsr: 0x3333_0000,
        ..block
    };
    assert_eq!(rtt.rtt_from_block(&unknown, ms(6000)), None);
    let other = ReportBlock {
        ssrc: 0xdef,
        ..block
    };
    assert_eq!(rtt.rtt_from_block(&other, ms(6000)), None);
    // DLSR rounding making it negative: zero.
    let tight = ReportBlock {
        dlsr: 65536,
        ..block
    };
    assert_eq!(rtt.rtt_from_block(&tight, ms(5999)), Some(Duration::ZERO));
    assert_eq!(rtt.latest(), Some(Duration::ZERO));
}

#[test]
fn rtt_on_a_relayed_stream() {
    // A's SR (SSRC 0xa) passes the relay toward B at 1.000 s; B's RR about 0xa comes back
    // through the relay at 1.170 s having held the SR 100 ms: relay-B round trip 70 ms.
    let t0 = common::epoch();
    let mut rtt = RttEstimator::new();
    let ntp = ntp_from_system_time(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    rtt.sr_passed(0xa, ntp_middle(ntp), t0 + Duration::from_secs(1));
    // Older SRs of other streams fill the history without pushing it out.
    for i in 0..10 {
        rtt.sr_passed(0xb, i, t0);
    }
    let rr = ReportBlock {
        ssrc: 0xa,
        lsr: ntp_middle(ntp),
        dlsr: 6554, // 100.01 ms
        ..ReportBlock::default()
    };
    let got = rtt
        .rtt_from_block(&rr, t0 + Duration::from_millis(1170))
        .unwrap();
    assert!((got.as_secs_f64() - 0.070).abs() < 0.0001, "{got:?}");
    // After 16 more SRs the old one is forgotten.
    for i in 0..16 {
        rtt.sr_passed(0xb, 100 + i, t0);
    }
    assert_eq!(
        rtt.rtt_from_block(&rr, t0 + Duration::from_millis(1170)),
        None
    );
}

#[test]
fn report_schedule() {
    let t0 = common::epoch();
    let mut s = RtcpScheduler::new(t0, 42);
    let first = s.next_send() - t0;
    assert!(
        (Duration::from_millis(1250)..=Duration::from_millis(3750)).contains(&first),
        "{first:?}"
    );
    assert!(!s.poll_send(t0 + first - Duration::from_millis(1)));
    let mut at = t0 + first;
    assert!(s.poll_send(at));
    assert!(!s.poll_send(at), "one report per deadline");
    let mut total = Duration::ZERO;
    let (mut lo, mut hi) = (Duration::MAX, Duration::ZERO);
    for _ in 0..1000 {
        let gap = s.next_send() - at;
        lo = lo.min(gap);
        hi = hi.max(gap);
        total += gap;
        at = s.next_send();
        assert!(s.poll_send(at + Duration::from_millis(3)));
        at += Duration::from_millis(3);
    }
    // RFC 3550 §6.3.1: uniformly in [0.5, 1.5] × 5 s.
    assert!(lo >= Duration::from_millis(2500) && hi <= Duration::from_millis(7500));
    assert!(lo < Duration::from_millis(2700) && hi > Duration::from_millis(7300));
    let mean = total.as_secs_f64() / 1000.0;
    assert!((mean - 5.0).abs() < 0.15, "mean interval {mean}");
    // Deterministic per seed, different across seeds.
    assert_eq!(RtcpScheduler::new(t0, 42).next_send() - t0, first);
    assert_ne!(RtcpScheduler::new(t0, 43).next_send() - t0, first);
    let s = RtcpScheduler::with_interval(t0, 1, Duration::from_secs(1));
    assert!(s.next_send() - t0 <= Duration::from_millis(750));
}
