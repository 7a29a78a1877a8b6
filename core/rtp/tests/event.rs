//! RFC 4733 telephone-events: SIPp's real captures through the receiver, and the sender's
//! packets field by field.

mod common;

use std::time::{Duration, Instant};
use switchyard_rtp::Error;
use switchyard_rtp::event::{
    DtmfEvent, EventReceiver, EventSender, TelephoneEvent, digit_to_event, event_to_digit,
};
use switchyard_rtp::packet::RtpHeader;

/// Feeds a capture to a receiver on a virtual clock, polling timeouts every ms, and returns
/// every event with its time.
fn receive(path: &str) -> Vec<(Duration, DtmfEvent)> {
    let packets = common::read_udp(path);
    assert!(!packets.is_empty());
    let t0 = common::epoch();
    let mut rx = EventReceiver::new(8000);
    let mut events = Vec::new();
    let drain = |rx: &mut EventReceiver, now: Instant, events: &mut Vec<_>| {
        while let Some(e) = rx.poll_timeout(now) {
            events.push((now - t0, e));
        }
    };
    let end = packets.last().unwrap().at + Duration::from_secs(1);
    let mut next = packets.iter().peekable();
    let mut t = Duration::ZERO;
    while t <= end {
        let now = t0 + t;
        while let Some(p) = next.next_if(|p| p.at <= t) {
            let h = RtpHeader::parse(&p.payload).unwrap();
            assert_eq!(h.payload_type, 101);
            if let Some(e) = rx.on_packet(now, &h, h.payload(&p.payload)) {
                events.push((t, e));
            }
            drain(&mut rx, now, &mut events);
        }
        drain(&mut rx, now, &mut events);
        t += Duration::from_millis(1);
    }
    events
}

#[test]
fn sipp_dtmf_2833_1_is_one_digit() {
    // The capture: 8 updates of event 1 (marker on the first, duration 0, 320, … 2240), then
    // three end packets that repeat sequence number 0x1f37.
    let events = receive("/usr/share/sip-tester/dtmf_2833_1.pcap");
    let only: Vec<DtmfEvent> = events.iter().map(|e| e.1).collect();
    assert_eq!(
        only,
        vec![
            DtmfEvent::Start { digit: '1' },
            DtmfEvent::End {
                digit: '1',
                duration_ms: 280
            }
        ]
    );
    assert_eq!(events[0].0, Duration::ZERO, "starts on the first packet");
    // The first end packet arrives 140 ms in; the timeout must not have fired before.
    assert_eq!(events[1].0, Duration::from_millis(140));
}

#[test]
fn every_sipp_dtmf_capture_is_its_digit() {
    for (file, digit) in [
        ("0", '0'),
        ("2", '2'),
        ("3", '3'),
        ("4", '4'),
        ("5", '5'),
        ("6", '6'),
        ("7", '7'),
        ("8", '8'),
        ("9", '9'),
        ("pound", '#'),
        ("star", '*'),
    ] {
        let events = receive(&format!("/usr/share/sip-tester/dtmf_2833_{file}.pcap"));
        let starts = events
            .iter()
            .filter(|e| e.1 == DtmfEvent::Start { digit })
            .count();
        let ends = events
            .iter()
            .filter(|e| matches!(e.1, DtmfEvent::End { digit: d, .. } if d == digit))
            .count();
        assert_eq!(
            (starts, ends, events.len()),
            (1, 1, 2),
            "{file}: {events:?}"
        );
    }
}

fn header(seq: u16, ts: u32, marker: bool) -> RtpHeader {
    RtpHeader {
        marker,
        payload_type: 101,
        sequence: seq,
        timestamp: ts,
        ssrc: 42,
        payload_offset: 12,
        payload_len: 4,
    }
}

fn payload(event: u8, end: bool, duration: u16) -> [u8; 4] {
    let mut p = [0u8; 4];
    TelephoneEvent {
        event,
        end,
        volume: 10,
        duration,
    }
    .write(&mut p);
    p
}

#[test]
fn lost_start_and_lost_ends() {
    let t0 = common::epoch();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut rx = EventReceiver::new(8000);
    // The marker packet is lost: the second update starts the digit.
    assert_eq!(
        rx.on_packet(ms(0), &header(11, 8000, false), &payload(5, false, 320)),
        Some(DtmfEvent::Start { digit: '5' })
    );
    assert_eq!(
        rx.on_packet(ms(20), &header(12, 8000, false), &payload(5, false, 480)),
        None
    );
    // Every end packet is lost: the digit ends three packet times (learnt: 20 ms) after the
    // last update.
    assert_eq!(rx.timeout(), Some(ms(80)));
    assert_eq!(rx.poll_timeout(ms(79)), None);
    assert_eq!(
        rx.poll_timeout(ms(80)),
        Some(DtmfEvent::End {
            digit: '5',
            duration_ms: 60
        })
    );
    assert_eq!(rx.poll_timeout(ms(500)), None);
    assert_eq!(rx.timeout(), None);
    // A late end packet of that event changes nothing.
    assert_eq!(
        rx.on_packet(ms(90), &header(13, 8000, false), &payload(5, true, 640)),
        None
    );
    // An older event's packet is ignored too.
    assert_eq!(
        rx.on_packet(ms(95), &header(9, 7000, false), &payload(4, true, 640)),
        None
    );
}

#[test]
fn next_event_ends_an_unfinished_one() {
    let t0 = common::epoch();
    let mut rx = EventReceiver::new(8000);
    assert_eq!(
        rx.on_packet(t0, &header(1, 100, true), &payload(1, false, 160)),
        Some(DtmfEvent::Start { digit: '1' })
    );
    // The next digit's first packet arrives before the timeout: end, then start (drained).
    let now = t0 + Duration::from_millis(30);
    assert_eq!(
        rx.on_packet(now, &header(2, 900, true), &payload(11, false, 160)),
        Some(DtmfEvent::End {
            digit: '1',
            duration_ms: 20
        })
    );
    assert_eq!(rx.poll_timeout(now), Some(DtmfEvent::Start { digit: '#' }));
    assert_eq!(rx.poll_timeout(now), None);
}

#[test]
fn an_event_seen_only_by_its_end() {
    let t0 = common::epoch();
    let mut rx = EventReceiver::new(8000);
    assert_eq!(
        rx.on_packet(t0, &header(7, 555, false), &payload(13, true, 800)),
        Some(DtmfEvent::Start { digit: 'B' })
    );
    assert_eq!(
        rx.poll_timeout(t0),
        Some(DtmfEvent::End {
            digit: 'B',
            duration_ms: 100
        })
    );
    assert_eq!(rx.poll_timeout(t0 + Duration::from_secs(1)), None);
    // The two retransmissions, with new sequence numbers this time.
    assert_eq!(
        rx.on_packet(t0, &header(8, 555, false), &payload(13, true, 800)),
        None
    );
    assert_eq!(
        rx.on_packet(t0, &header(9, 555, false), &payload(13, true, 800)),
        None
    );
}

#[test]
fn non_dtmf_events_and_short_payloads_are_ignored() {
    let t0 = common::epoch();
    let mut rx = EventReceiver::new(8000);
    // Event 16 is hook flash (RFC 4733 §3.2).
    assert_eq!(
        rx.on_packet(t0, &header(1, 1, true), &payload(16, false, 160)),
        None
    );
    assert_eq!(rx.on_packet(t0, &header(2, 1, false), &[1, 2, 3]), None);
    assert_eq!(rx.timeout(), None);
}

#[test]
fn telephone_event_round_trip() {
    let e = TelephoneEvent::parse(&[11, 0xca, 0x03, 0x20]).unwrap();
    // The reserved R bit (0x40) is ignored.
    assert_eq!(
        e,
        TelephoneEvent {
            event: 11,
            end: true,
            volume: 10,
            duration: 800
        }
    );
    let mut out = [0u8; 4];
    assert_eq!(e.write(&mut out), 4);
    assert_eq!(out, [11, 0x8a, 0x03, 0x20]);
    assert!(matches!(
        TelephoneEvent::parse(&[1, 2]),
        Err(Error::Truncated {
            needed: 4,
            available: 2
        })
    ));
}

#[test]
fn digits_and_events() {
    let digits = "0123456789*#ABCD";
    for (i, c) in digits.chars().enumerate() {
        assert_eq!(digit_to_event(c), Some(i as u8));
        assert_eq!(event_to_digit(i as u8), Some(c));
    }
    assert_eq!(digit_to_event('c'), Some(14));
    assert_eq!(digit_to_event('E'), None);
    assert_eq!(digit_to_event('+'), None);
    assert_eq!(event_to_digit(16), None);
}

/// One event packet as sent: (marker, timestamp, event, end, duration).
type Sent = (bool, u32, u8, bool, u16);

/// Runs a sender for `slots` 20 ms slots from audio timestamp `ts0`; returns, per slot, the
/// event packet as (marker, timestamp, event, end, duration) or None for audio.
fn drive(tx: &mut EventSender, ts0: u32, slots: usize, step: u32) -> Vec<Option<Sent>> {
    let mut out = Vec::new();
    let mut ts = ts0;
    for _ in 0..slots {
        let mut payload = [0u8; 4];
        out.push(tx.next_packet(&mut payload).map(|p| {
            assert_eq!(p.payload_type, 96);
            assert_eq!(p.len, 4);
            let e = TelephoneEvent::parse(&payload).unwrap();
            assert_eq!(e.volume, 10);
            assert_eq!(p.end, e.end);
            (p.marker, p.timestamp(ts), e.event, e.end, e.duration)
        }));
        ts = ts.wrapping_add(step);
    }
    out
}

#[test]
fn sender_packets_field_by_field() {
    let mut tx = EventSender::new(96, 8000);
    assert!(!tx.is_active());
    tx.queue('9', 100).unwrap();
    tx.queue('#', 50).unwrap();
    assert!(tx.is_active());
    // Timestamps wrap in the middle of the first event.
    let ts0 = u32::MAX - 159;
    let got = drive(&mut tx, ts0, 16, 160);
    let e1 = ts0;
    let e2 = ts0.wrapping_add(9 * 160);
    let want = vec![
        Some((true, e1, 9, false, 160)),
        Some((false, e1, 9, false, 320)),
        Some((false, e1, 9, false, 480)),
        Some((false, e1, 9, false, 640)),
        Some((false, e1, 9, true, 800)),
        Some((false, e1, 9, true, 800)),
        Some((false, e1, 9, true, 800)),
        None, // 40 ms between digits
        None,
        Some((true, e2, 11, false, 160)),
        Some((false, e2, 11, false, 320)),
        Some((false, e2, 11, true, 400)), // 50 ms is not a whole number of slots
        Some((false, e2, 11, true, 400)),
        Some((false, e2, 11, true, 400)),
        None,
        None,
    ];
    assert_eq!(got, want);
    assert!(!tx.is_active());
}

#[test]
fn sender_at_48_khz_and_errors() {
    let mut tx = EventSender::new(96, 48000);
    tx.queue('1', 40).unwrap();
    let got = drive(&mut tx, 7, 5, 960);
    // Slots are 960 units at 48 kHz.
    assert_eq!(got[0], Some((true, 7, 1, false, 960)));
    assert_eq!(got[1], Some((false, 7, 1, true, 1920)));
    assert_eq!(got[3], Some((false, 7, 1, true, 1920)));
    assert_eq!(got[4], None);
    assert_eq!(tx.queue('X', 100), Err(Error::NotADigit('X')));
    assert_eq!(tx.queue('1', 0), Err(Error::DurationOutOfRange(0)));
    // 2 s at 48 kHz is 96000 units: more than the 16-bit duration field.
    assert_eq!(tx.queue('1', 2000), Err(Error::DurationOutOfRange(2000)));
    let mut tx = EventSender::new(96, 8000);
    for _ in 0..32 {
        tx.queue('0', 100).unwrap();
    }
    assert_eq!(tx.queue('0', 100), Err(Error::QueueFull));
}

#[test]
fn sender_and_receiver_agree() {
    let mut tx = EventSender::new(101, 8000);
    let mut rx = EventReceiver::new(8000);
    for d in "1A#".chars() {
        tx.queue(d, 120).unwrap();
    }
    let t0 = common::epoch();
    let mut events = Vec::new();
    let (mut seq, mut ts) = (100u16, 5000u32);
    for slot in 0..40u64 {
        let now = t0 + Duration::from_millis(20 * slot);
        let mut payload = [0u8; 4];
        if let Some(p) = tx.next_packet(&mut payload) {
            let h = RtpHeader {
                marker: p.marker,
                payload_type: p.payload_type,
                sequence: seq,
                timestamp: p.timestamp(ts),
                ssrc: 1,
                payload_offset: 12,
                payload_len: p.len,
            };
            events.extend(rx.on_packet(now, &h, &payload[..p.len]));
            seq = seq.wrapping_add(1);
        }
        while let Some(e) = rx.poll_timeout(now) {
            events.push(e);
        }
        ts = ts.wrapping_add(160);
    }
    let want: Vec<DtmfEvent> = "1A#"
        .chars()
        .flat_map(|digit| {
            [
                DtmfEvent::Start { digit },
                DtmfEvent::End {
                    digit,
                    duration_ms: 120,
                },
            ]
        })
        .collect();
    assert_eq!(events, want);
}
