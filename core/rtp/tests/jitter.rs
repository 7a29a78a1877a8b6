//! The jitter buffer on a virtual clock behind a small network emulator (seeded PRNG): delay
//! jitter, loss, reordering, duplicates, an outage, clock drift, wrap, real 30 ms packets.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use switchyard_rtp::jitter::{Insert, JitterBuffer, JitterConfig, JitterStats, Playout};
use switchyard_rtp::packet::RtpHeader;

/// SplitMix64: small, seeded, good enough for an emulator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone)]
struct Scenario {
    clock_rate: u32,
    /// Sender's packet time.
    ptime_ms: u64,
    packets: u32,
    /// Extra one-way delay, uniform in [0, jitter] (or exponential with this mean).
    jitter_ms: f64,
    exponential: bool,
    loss: f64,
    duplicate: f64,
    /// Packets sent in this span of sender time are all lost.
    outage: Option<(Duration, Duration)>,
    /// Sender clock rate error: +0.005 means the sender's clock runs 0.5 % fast.
    drift: f64,
    seq0: u16,
    ts0: u32,
    seed: u64,
    /// Talkspurts: (first packet, packets) — packets outside are not sent (DTX), the first of
    /// each carries the marker. None: one continuous stream.
    talkspurts: Option<Vec<(u32, u32)>>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            clock_rate: 8000,
            ptime_ms: 20,
            packets: 1500,
            jitter_ms: 0.0,
            exponential: false,
            loss: 0.0,
            duplicate: 0.0,
            outage: None,
            drift: 0.0,
            seq0: 1000,
            ts0: 123_456,
            seed: 1,
            talkspurts: None,
        }
    }
}

struct Run {
    stats: JitterStats,
    /// Packets the emulator lost (no copy arrived).
    never_arrived: u64,
    duplicates_arrived: u64,
    sent: u64,
    /// Packet numbers played, in order.
    played: Vec<u32>,
    /// (time since start, current delay ms, target ms), once per second.
    delays: Vec<(Duration, f64, f64)>,
    /// Age of the first packet of each talkspurt when played, with the target then.
    talkspurt_starts: Vec<(Duration, Duration)>,
    inserts: HashMap<&'static str, u64>,
    /// Lost items and whether they carried the next payload.
    lost_items: Vec<(u32, bool)>,
}

/// Sends the scenario through the emulator into a buffer polled every 20 ms, checking on every
/// frame that the output is continuous: the FIFO never underflows and holds less than a frame
/// plus one packet after the frame is taken.
fn run(sc: &Scenario) -> Run {
    let mut rng = Rng(sc.seed);
    let t0 = common::epoch();
    let units_per_packet = sc.clock_rate as u64 * sc.ptime_ms / 1000;
    let frame = sc.clock_rate / 50;
    let in_spurt = |n: u32| match &sc.talkspurts {
        None => Some(n == 0),
        Some(v) => v
            .iter()
            .find(|(s, len)| n >= *s && n < s + len)
            .map(|(s, _)| n == *s),
    };
    // (arrival, packet number, marker)
    let mut arrivals: Vec<(Duration, u32, bool)> = Vec::new();
    // Sequence numbers count packets sent: they do not advance in silence (DTX).
    let mut seq_of = HashMap::new();
    let mut never_arrived = 0;
    let mut duplicates_arrived = 0;
    let mut sent = 0;
    let mut talkspurt_first = BTreeSet::new();
    for n in 0..sc.packets {
        let Some(first) = in_spurt(n) else { continue };
        if first {
            talkspurt_first.insert(n);
        }
        seq_of.insert(n, sc.seq0.wrapping_add(sent as u16));
        sent += 1;
        let sender_time = Duration::from_millis(sc.ptime_ms * u64::from(n));
        let send = sender_time.mul_f64(1.0 / (1.0 + sc.drift));
        let in_outage = sc
            .outage
            .is_some_and(|(a, b)| sender_time >= a && sender_time < b);
        // The last packets always arrive, so that every loss is followed by a packet.
        // The first and last packets always arrive: the buffer cannot know of losses before
        // the first packet, and every loss must be followed by a packet to be noticed.
        let protected = n < 3 || n + 5 >= sc.packets;
        if !protected && (in_outage || rng.unit() < sc.loss) {
            never_arrived += 1;
            continue;
        }
        let base = Duration::from_millis(30);
        let delay = |rng: &mut Rng| {
            let extra = if sc.exponential {
                -(1.0 - rng.unit()).ln() * sc.jitter_ms
            } else {
                rng.unit() * sc.jitter_ms
            };
            base + Duration::from_secs_f64(extra / 1000.0)
        };
        arrivals.push((send + delay(&mut rng), n, first));
        if rng.unit() < sc.duplicate {
            arrivals.push((send + delay(&mut rng) + Duration::from_millis(5), n, first));
            duplicates_arrived += 1;
        }
    }
    arrivals.sort_by_key(|a| a.0);

    let mut jb = JitterBuffer::new(sc.clock_rate, JitterConfig::default());
    let mut inserts: HashMap<&'static str, u64> = HashMap::new();
    let mut next_arrival = arrivals.iter().peekable();
    let mut fifo: u64 = 0;
    let mut played = Vec::new();
    let mut delays = Vec::new();
    let mut talkspurt_starts = Vec::new();
    let mut lost_items = Vec::new();
    let end = arrivals.last().unwrap().0 + Duration::from_secs(1);
    // Frames on the receiver's clock, out of phase with the sender.
    let mut tick = Duration::from_micros(7_300);
    let mut frames = 0u64;
    while tick < end {
        let now = t0 + tick;
        while let Some(&&(at, n, marker)) = next_arrival.peek() {
            if at > tick {
                break;
            }
            next_arrival.next();
            let mut payload = [0u8; 4];
            payload.copy_from_slice(&n.to_be_bytes());
            let header = RtpHeader {
                marker,
                payload_type: 0,
                sequence: seq_of[&n],
                timestamp: sc
                    .ts0
                    .wrapping_add((units_per_packet * u64::from(n)) as u32),
                ssrc: 0x5151,
                payload_offset: 12,
                payload_len: 4,
            };
            let what = match jb.insert(t0 + at, &header, &payload) {
                Insert::Stored => "stored",
                Insert::Duplicate => "duplicate",
                Insert::TooLate => "late",
                Insert::Overflow => "overflow",
                other => panic!("unexpected {other:?}"),
            };
            *inserts.entry(what).or_default() += 1;
        }
        let target = jb.target_delay();
        loop {
            match jb.pop(now, frame) {
                Playout::Packet {
                    payload,
                    units,
                    timestamp,
                    sequence,
                    ..
                } => {
                    let n = u32::from_be_bytes(payload[..4].try_into().unwrap());
                    assert_eq!(sequence, seq_of[&n]);
                    assert_eq!(
                        timestamp,
                        sc.ts0
                            .wrapping_add((units_per_packet * u64::from(n)) as u32)
                    );
                    if let Some(&last) = played.last() {
                        assert!(n > last, "packet {n} after {last}");
                    }
                    if talkspurt_first.contains(&n) && sc.talkspurts.is_some() {
                        let arrived = arrivals.iter().find(|a| a.1 == n).unwrap().0;
                        talkspurt_starts.push((tick.saturating_sub(arrived), target));
                    }
                    played.push(n);
                    fifo += u64::from(units);
                }
                Playout::Lost {
                    units,
                    next_payload,
                } => {
                    if let Some(p) = next_payload {
                        let next = u32::from_be_bytes(p[..4].try_into().unwrap());
                        lost_items.push((next, true));
                    } else {
                        lost_items.push((0, false));
                    }
                    fifo += u64::from(units);
                }
                Playout::Gap { units } => fifo += u64::from(units),
                Playout::NotYet => break,
            }
        }
        assert!(
            fifo >= u64::from(frame),
            "underflow at {tick:?}: {fifo} units for a {frame}-unit frame"
        );
        fifo -= u64::from(frame);
        assert!(
            fifo < units_per_packet.max(u64::from(frame)),
            "overfill at {tick:?}: {fifo} units left"
        );
        frames += 1;
        if frames.is_multiple_of(50) {
            delays.push((
                tick,
                jb.stats().current_delay_ms,
                target.as_secs_f64() * 1000.0,
            ));
        }
        tick += Duration::from_millis(20);
    }
    // JB_SUMMARY=1 cargo test … -- --nocapture: one line per run, for tuning.
    if std::env::var("JB_SUMMARY").is_ok() {
        eprintln!(
            "jitter {} ms, loss {}, drift {}, ptime {} ms: {:?}, {never_arrived} of {sent} \
             never arrived, {}",
            sc.jitter_ms,
            sc.loss,
            sc.drift,
            sc.ptime_ms,
            jb.stats(),
            delay_summary(&delays)
        );
    }
    Run {
        stats: jb.stats(),
        never_arrived,
        duplicates_arrived,
        sent,
        played,
        delays,
        talkspurt_starts,
        inserts,
        lost_items,
    }
}

/// Every packet sent is accounted for exactly once, and losses are exactly the packets that
/// never arrived.
fn check_accounting(r: &Run) {
    let s = &r.stats;
    assert_eq!(s.lost, r.never_arrived, "lost: {s:?}");
    assert_eq!(
        s.played + s.late + s.dropped + s.overflows,
        r.sent - r.never_arrived,
        "{s:?}"
    );
    assert_eq!(s.duplicates, r.duplicates_arrived, "{s:?}");
    let count = |what| r.inserts.get(what).copied().unwrap_or(0);
    assert_eq!(count("duplicate"), s.duplicates);
    assert_eq!(count("late"), s.late);
    assert_eq!(count("overflow"), s.overflows);
    assert_eq!(r.played.len() as u64, s.played);
}

/// After a warm-up, the delay stays within the configured bounds and near the target.
fn check_delay(r: &Run, from: Duration, slack_ms: f64) {
    for &(at, delay, target) in r.delays.iter().filter(|d| d.0 >= from) {
        assert!(
            (15.0..=215.0).contains(&delay),
            "delay {delay:.1} ms at {at:?} (target {target:.1})"
        );
        assert!((20.0..=200.0).contains(&target));
        assert!(
            (delay - target).abs() <= slack_ms,
            "delay {delay:.1} ms vs target {target:.1} at {at:?}"
        );
    }
}

#[test]
fn no_jitter_no_loss() {
    let r = run(&Scenario::default());
    check_accounting(&r);
    assert_eq!(r.stats.played, 1500);
    assert_eq!((r.stats.late, r.stats.lost, r.stats.dropped), (0, 0, 0));
    assert_eq!(r.played, (0..1500).collect::<Vec<_>>());
    check_delay(&r, Duration::from_secs(2), 30.0);
    // Nothing to wait for: the delay sits at the 20 ms floor plus the frame quantisation.
    let last = r.delays.last().unwrap();
    assert!(last.2 == 20.0 && last.1 < 45.0, "{last:?}");
}

#[test]
fn jitter_30_ms_with_loss_reordering_and_duplicates() {
    for seed in 1..=4 {
        let r = run(&Scenario {
            jitter_ms: 30.0,
            loss: 0.05,
            duplicate: 0.02,
            seed,
            ..Scenario::default()
        });
        check_accounting(&r);
        assert!(
            r.never_arrived > 40,
            "the emulator lost {}",
            r.never_arrived
        );
        assert!(
            r.stats.late < 15,
            "late {} of {} (seed {seed})",
            r.stats.late,
            r.sent
        );
        check_delay(&r, Duration::from_secs(3), 35.0);
        // Single losses come with the next packet for FEC.
        assert!(r.lost_items.iter().filter(|l| l.1).count() > 20);
    }
}

#[test]
fn jitter_80_ms() {
    for seed in 10..=13 {
        let r = run(&Scenario {
            jitter_ms: 80.0,
            loss: 0.05,
            duplicate: 0.02,
            packets: 3000,
            seed,
            ..Scenario::default()
        });
        check_accounting(&r);
        // 80 ms of uniform jitter reorders up to four packets deep.
        assert!(
            r.stats.late * 100 < r.sent,
            "late {} of {} (seed {seed})",
            r.stats.late,
            r.sent
        );
        check_delay(&r, Duration::from_secs(5), 40.0);
        let target = r.delays.last().unwrap().2;
        assert!(target > 90.0, "target {target} for 80 ms of jitter");
    }
}

#[test]
fn heavy_tailed_jitter() {
    // Queueing delay with an exponential tail (mean 20 ms): k = 4 keeps lateness under 1 %.
    let mut late = 0;
    let mut sent = 0;
    for seed in 20..=23 {
        let r = run(&Scenario {
            jitter_ms: 20.0,
            exponential: true,
            packets: 3000,
            loss: 0.02,
            seed,
            ..Scenario::default()
        });
        check_accounting(&r);
        check_delay(&r, Duration::from_secs(5), 40.0);
        late += r.stats.late;
        sent += r.sent;
    }
    assert!(late * 100 < sent, "{late} late of {sent}");
}

#[test]
fn a_two_second_outage() {
    let r = run(&Scenario {
        jitter_ms: 30.0,
        packets: 1500,
        outage: Some((Duration::from_secs(10), Duration::from_secs(12))),
        ..Scenario::default()
    });
    check_accounting(&r);
    assert_eq!(r.never_arrived, 100);
    assert_eq!(r.stats.lost, 100);
    // The 2 s were concealed as gaps, not as 100 lost-packet items.
    assert!(r.lost_items.len() < 5, "{} lost items", r.lost_items.len());
    assert!(r.stats.concealed_units >= 2 * 8000);
    check_delay(&r, Duration::from_secs(3), 35.0);
    // Playback resumes right after the outage.
    assert!(r.played.contains(&600) || r.played.contains(&601));
}

#[test]
fn sender_clock_drift_is_absorbed() {
    for drift in [0.005, -0.005] {
        let r = run(&Scenario {
            jitter_ms: 10.0,
            packets: 4000, // 80 s: 400 ms of drift
            drift,
            ..Scenario::default()
        });
        check_accounting(&r);
        check_delay(&r, Duration::from_secs(3), 35.0);
        if drift > 0.0 {
            // The surplus is dropped, about one packet every 4 s.
            assert!((14..=30).contains(&r.stats.dropped), "{:?}", r.stats);
        } else {
            // The shortfall is concealed, about one frame every 4 s.
            assert_eq!(r.stats.dropped, 0);
            assert!(r.stats.concealed_units >= 14 * 160, "{:?}", r.stats);
            assert!(r.stats.late < 10, "{:?}", r.stats);
        }
    }
}

#[test]
fn sequence_and_timestamp_wrap() {
    let r = run(&Scenario {
        jitter_ms: 30.0,
        loss: 0.05,
        seq0: 65_000,
        ts0: u32::MAX - 40_000,
        seed: 7,
        ..Scenario::default()
    });
    check_accounting(&r);
    check_delay(&r, Duration::from_secs(3), 35.0);
}

#[test]
fn talkspurts_reset_the_delay_to_the_target() {
    let spurts = vec![(0, 200), (300, 100), (450, 300), (800, 200)];
    let r = run(&Scenario {
        jitter_ms: 40.0,
        packets: 1000,
        talkspurts: Some(spurts),
        seed: 3,
        ..Scenario::default()
    });
    check_accounting(&r);
    assert_eq!(r.talkspurt_starts.len(), 4);
    for &(age, target) in &r.talkspurt_starts[1..] {
        // Played on the first frame at which it had waited the target delay.
        assert!(
            age >= target && age < target + Duration::from_millis(21),
            "age {age:?} target {target:?}"
        );
    }
}

#[test]
fn opus_packet_times() {
    for ptime in [10, 40, 60] {
        let r = run(&Scenario {
            clock_rate: 48_000,
            ptime_ms: ptime,
            packets: (30_000 / ptime) as u32,
            jitter_ms: 30.0,
            loss: 0.03,
            seed: ptime,
            ..Scenario::default()
        });
        check_accounting(&r);
        check_delay(&r, Duration::from_secs(3), 20.0 + ptime as f64);
    }
}

#[test]
fn sipp_g711a_capture_plays_whole() {
    // SIPp's g711a.pcap: a real stream of 30 ms PCMA packets (240 octets), replayed at its
    // capture times; every packet must come out, in order, with no gap once started.
    let packets = common::read_udp("/usr/share/sip-tester/g711a.pcap");
    let t0 = common::epoch();
    let mut jb = JitterBuffer::new(8000, JitterConfig::default());
    let mut headers = Vec::new();
    for p in &packets {
        let h = RtpHeader::parse(&p.payload).unwrap();
        assert_eq!((h.payload_type, h.payload_len), (8, 240));
        headers.push((p.at, h, h.payload(&p.payload).to_vec()));
    }
    let mut next = headers.iter().peekable();
    let mut tick = Duration::from_millis(3);
    let end = headers.last().unwrap().0 + Duration::from_millis(500);
    let (mut fifo, mut played) = (0u32, Vec::new());
    let mut gaps_after_start = Vec::new();
    while tick < end {
        while let Some((at, h, payload)) = next.next_if(|p| p.0 <= tick) {
            assert_eq!(jb.insert(t0 + *at, h, payload), Insert::Stored);
        }
        loop {
            match jb.pop(t0 + tick, 160) {
                Playout::Packet {
                    units,
                    sequence,
                    payload,
                    ..
                } => {
                    assert_eq!((units, payload.len()), (240, 240));
                    played.push(sequence);
                    fifo += units;
                }
                Playout::Gap { units } | Playout::Lost { units, .. } => {
                    if !played.is_empty() && played.len() < headers.len() {
                        gaps_after_start.push(tick);
                    }
                    fifo += units;
                }
                Playout::NotYet => break,
            }
        }
        assert!(fifo >= 160);
        fifo -= 160;
        tick += Duration::from_millis(20);
    }
    let want: Vec<u16> = headers.iter().map(|h| h.1.sequence).collect();
    assert_eq!(played, want);
    // Once started, frames are inserted only while the delay settles on its target (30 ms
    // packets drain the buffer unevenly at first): within the first second, a few at most.
    assert!(gaps_after_start.len() <= 4, "{gaps_after_start:?}");
    assert!(
        gaps_after_start.iter().all(|t| *t < Duration::from_secs(1)),
        "{gaps_after_start:?}"
    );
    let s = jb.stats();
    assert_eq!((s.lost, s.late, s.dropped, s.duplicates), (0, 0, 0, 0));
}

fn header(seq: u16, ts: u32, ssrc: u32, marker: bool) -> RtpHeader {
    RtpHeader {
        marker,
        payload_type: 0,
        sequence: seq,
        timestamp: ts,
        ssrc,
        payload_offset: 12,
        payload_len: 4,
    }
}

#[test]
fn lost_packet_offers_the_next_payload() {
    let t0 = common::epoch();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut jb = JitterBuffer::new(8000, JitterConfig::default());
    jb.insert(ms(0), &header(9, 0, 1, true), b"p9");
    jb.insert(ms(20), &header(10, 160, 1, false), b"p10");
    assert!(matches!(
        jb.pop(ms(20), 160),
        Playout::Packet {
            payload: b"p9",
            units: 160,
            ..
        }
    ));
    assert_eq!(jb.pop(ms(20), 160), Playout::NotYet);
    jb.insert(ms(40), &header(12, 480, 1, false), b"p12");
    assert!(matches!(
        jb.pop(ms(40), 160),
        Playout::Packet {
            payload: b"p10",
            ..
        }
    ));
    assert_eq!(jb.pop(ms(40), 160), Playout::NotYet);
    jb.insert(ms(60), &header(13, 640, 1, false), b"p13");
    assert_eq!(
        jb.pop(ms(60), 160),
        Playout::Lost {
            units: 160,
            next_payload: Some(b"p12")
        }
    );
    assert_eq!(jb.pop(ms(60), 160), Playout::NotYet);
    assert!(matches!(
        jb.pop(ms(80), 160),
        Playout::Packet {
            payload: b"p12",
            ..
        }
    ));
    // Seq 11 shows up now: too late, and no longer lost.
    assert_eq!(jb.stats().lost, 1);
    assert_eq!(
        jb.insert(ms(80), &header(11, 320, 1, false), b"p11"),
        Insert::TooLate
    );
    assert_eq!((jb.stats().lost, jb.stats().late), (0, 1));
    // Again: a duplicate.
    assert_eq!(
        jb.insert(ms(80), &header(11, 320, 1, false), b"p11"),
        Insert::Duplicate
    );
    assert_eq!(
        jb.insert(ms(80), &header(14, 800, 1, false), &[0; 1501]),
        Insert::TooLarge
    );
}

#[test]
fn a_new_ssrc_restarts_the_stream() {
    let t0 = common::epoch();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut jb = JitterBuffer::new(8000, JitterConfig::default());
    for i in 0..5u16 {
        jb.insert(
            ms(20 * u64::from(i)),
            &header(i, 160 * u32::from(i), 1, i == 0),
            b"old",
        );
    }
    let mut fifo = 0;
    let mut got = Vec::new();
    for tick in 1..30u64 {
        let now = ms(20 * tick + 5);
        if (6..16).contains(&tick) {
            // A re-INVITE switched the source: new SSRC, numbering far from the old one.
            let i = (tick - 6) as u16;
            let h = header(40_000 + i, 9_000_000 + 160 * u32::from(i), 2, i == 0);
            assert_eq!(jb.insert(now, &h, b"new"), Insert::Stored);
        }
        loop {
            match jb.pop(now, 160) {
                Playout::Packet { payload, units, .. } => {
                    got.push(payload.to_vec());
                    fifo += units;
                }
                Playout::Gap { units } | Playout::Lost { units, .. } => fifo += units,
                Playout::NotYet => break,
            }
        }
        assert!(fifo >= 160);
        fifo -= 160;
    }
    let old = got.iter().filter(|p| p == &b"old").count();
    let new = got.iter().filter(|p| p == &b"new").count();
    assert_eq!((old, new), (5, 10), "{got:?}");
    assert_eq!(jb.stats().lost, 0);
}

#[test]
fn overflow_drops_the_oldest() {
    let t0 = common::epoch();
    let config = JitterConfig {
        capacity: 8,
        ..JitterConfig::default()
    };
    let mut jb = JitterBuffer::new(8000, config);
    // Seq 0 is missing; 1..=8 fill the eight slots.
    for i in 1..=8u16 {
        let h = header(i, 160 * u32::from(i), 1, false);
        assert_eq!(jb.insert(t0, &h, &[i as u8]), Insert::Stored);
    }
    assert_eq!(
        jb.insert(t0, &header(9, 1440, 1, false), &[9]),
        Insert::Overflow
    );
    assert_eq!(jb.stats().overflows, 1);
    // Seq 0 would go where seq 8 is: too late.
    assert_eq!(
        jb.insert(t0, &header(0, 0, 1, false), &[0]),
        Insert::TooLate
    );
    // Playout starts on the oldest left, seq 2 (all arrived at once: wait for the jitter).
    let now = t0 + Duration::from_millis(200);
    assert!(matches!(
        jb.pop(now, 160),
        Playout::Packet { payload: [2], .. }
    ));
}

#[test]
fn target_delay_follows_jitter() {
    let t0 = common::epoch();
    let mut jb = JitterBuffer::new(8000, JitterConfig::default());
    assert_eq!(jb.target_delay(), Duration::from_millis(20));
    // Alternating 0 / 25 ms extra delay: |D| = 25 ms, J → 25 ms, target → 4 × 25 + 20 = 120.
    for i in 0..400u32 {
        let extra = if i % 2 == 1 { 25 } else { 0 };
        let at = t0 + Duration::from_millis(20 * u64::from(i) + extra);
        jb.insert(at, &header(i as u16, 160 * i, 1, false), b"x");
        while !matches!(jb.pop(at, 160), Playout::NotYet) {}
    }
    let t = jb.target_delay().as_secs_f64() * 1000.0;
    assert!((117.0..=121.0).contains(&t), "target {t}");
    // Never past max_delay.
    for i in 400..800u32 {
        let extra = if i % 2 == 1 { 150 } else { 0 };
        let at = t0 + Duration::from_millis(20 * u64::from(i) + extra);
        jb.insert(at, &header(i as u16, 160 * i, 1, false), b"x");
    }
    assert_eq!(jb.target_delay(), Duration::from_millis(200));
}

fn delay_summary(d: &[(Duration, f64, f64)]) -> String {
    // After a 3 s warm-up: range of the measured delay and of the target.
    let after: Vec<_> = d.iter().filter(|x| x.0 > Duration::from_secs(3)).collect();
    let min = after.iter().map(|x| x.1).fold(f64::MAX, f64::min);
    let max = after.iter().map(|x| x.1).fold(0.0, f64::max);
    let tmin = after.iter().map(|x| x.2).fold(f64::MAX, f64::min);
    let tmax = after.iter().map(|x| x.2).fold(0.0, f64::max);
    format!("delay {min:.0}..{max:.0} target {tmin:.0}..{tmax:.0}")
}
