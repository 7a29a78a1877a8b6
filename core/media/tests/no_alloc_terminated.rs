//! A terminated bridge runs on the media clock: every 20 ms each leg's jitter buffer, decoder,
//! the other leg's encoder and RTCP. None of it may allocate in steady state. A counting global
//! allocator (see tests/no_alloc.rs for why `stats_alloc`) wraps the system one; after a
//! warm-up, two seconds of a PCMA<->PCMU call must not allocate at all.
//!
//! The counter is process-wide, so this binary holds one test, and the test's own thread (both
//! phones) allocates nothing while it measures: its packets and buffers are fixed arrays, and
//! it sends a packet each way per packet it receives, so the engine's 20 ms clock paces it
//! without a timer of its own. The only other threads are the media thread and libtest's,
//! which waits for the test.

// Real sockets and real time: like a reactor, this harness reads the clock.
#![allow(clippy::disallowed_methods)]

use std::alloc::System;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use switchyard_codec::g711;
use switchyard_media::{
    CodecKind, DtmfOptions, LegCodec, MediaConfig, MediaEngine, OpusFmtp, TapReceiver,
};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations and reallocations so far, in every thread of the process.
fn allocations() -> usize {
    let stats = ALLOCATOR.stats();
    stats.allocations + stats.reallocations
}

/// The bound on any one receive: a deadline for a packet that never comes.
const WAIT: Duration = Duration::from_secs(3);
/// Two seconds each: latching, the jitter buffers' first adaptation, the first statistics and
/// RTCP happen in the warm-up; the media thread's once-a-second housekeeping (RTP timeouts,
/// quality for `show channels`) ticks twice in the measured window.
const WARM_UP: u16 = 100;
const MEASURED: u16 = 100;
const AMP: f64 = 8000.0;

fn leg(kind: CodecKind, payload_type: u8) -> LegCodec {
    LegCodec {
        kind,
        payload_type,
        sample_rate: 8000,
        opus: OpusFmtp::default(),
        telephone_event: None,
        also_receives: None,
    }
}

/// A G.711 packet of a tone whose period divides 160 samples, so every 20 ms frame has the
/// same payload and only the header changes.
fn tone_packet(freq: f64, encode: fn(&[i16], &mut [u8]) -> usize, payload_type: u8) -> [u8; 172] {
    let mut pcm = [0i16; 160];
    for (n, sample) in pcm.iter_mut().enumerate() {
        let t = n as f64 / 8000.0;
        *sample = (AMP * (std::f64::consts::TAU * freq * t).sin()).round() as i16;
    }
    let mut packet = [0u8; 172];
    packet[..12].copy_from_slice(&[0x80, payload_type, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    packet[8..12].copy_from_slice(&u32::from(payload_type).to_be_bytes());
    encode(&pcm, &mut packet[12..]);
    packet
}

/// Goertzel amplitude of `freq` (a sine of amplitude A reads about A).
fn amplitude(pcm: &[i16], freq: f64) -> f64 {
    let coeff = 2.0 * (std::f64::consts::TAU * freq / 8000.0).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in pcm {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    2.0 * (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0).sqrt() / pcm.len() as f64
}

/// One phone's side of the call.
struct Phone {
    socket: UdpSocket,
    endpoint: SocketAddr,
    packet: [u8; 172],
    /// What it should hear, and how the engine encodes it for this phone.
    hears: f64,
    payload_type: u8,
    decode: fn(&[u8], &mut [i16]) -> usize,
}

/// What one phone heard: packets that were the other's tone in this leg's codec, and others.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    tone: usize,
    wrong: usize,
}

/// `count` slots of the call from slot `first`: each phone sends its packet, then reads the one
/// the engine generated for it on its next tick, and the tap's frames are taken as they come.
/// Allocates nothing; returns the count of tapped frames.
fn talk(
    phones: &mut [Phone; 2],
    tap: &TapReceiver,
    first: u16,
    count: u16,
    tallies: &mut [Tally; 2],
) -> usize {
    let mut tapped = 0;
    let mut inbox = [0u8; 2048];
    let mut pcm = [0i16; 160];
    for slot in first..first + count {
        for phone in phones.iter_mut() {
            phone.packet[2..4].copy_from_slice(&slot.to_be_bytes());
            phone.packet[4..8].copy_from_slice(&(160 * u32::from(slot)).to_be_bytes());
            phone
                .socket
                .send_to(&phone.packet, phone.endpoint)
                .expect("send to the endpoint");
        }
        for (phone, tally) in phones.iter().zip(tallies.iter_mut()) {
            let (len, from) = phone
                .socket
                .recv_from(&mut inbox)
                .expect("the engine sends every 20 ms");
            let right = from == phone.endpoint
                && len == 172
                && inbox[1] & 0x7f == phone.payload_type
                && (phone.decode)(&inbox[12..len], &mut pcm) == 160
                && amplitude(&pcm, phone.hears) > AMP / 2.0;
            if right {
                tally.tone += 1;
            } else {
                tally.wrong += 1;
            }
        }
        while tap.try_recv().is_ok() {
            tapped += 1;
        }
    }
    tapped
}

#[test]
fn a_transcoding_bridge_allocates_nothing_in_steady_state() {
    let engine = MediaEngine::start(
        MediaConfig {
            ip: "127.0.0.1".parse().unwrap(),
            port_min: 23900,
            port_max: 23999,
            // No RTP timeout fires: the phones never stop.
            rtp_timeout: Duration::from_secs(60),
            threads: 1,
            realtime_priority: None,
        },
        Box::new(|_| {}),
    )
    .unwrap();
    let (a, b) = engine.allocate_pair().unwrap();
    engine.terminate(a.id, leg(CodecKind::Pcma, 8), DtmfOptions::default());
    engine.terminate(b.id, leg(CodecKind::Pcmu, 0), DtmfOptions::default());
    let bind = || {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(WAIT)).unwrap();
        socket
    };
    // A says 1000 Hz in PCMA and hears B's 500 Hz in PCMA; B the other way round in PCMU.
    let mut phones = [
        Phone {
            socket: bind(),
            endpoint: a.local,
            packet: tone_packet(1000.0, g711::alaw_encode_slice, 8),
            hears: 500.0,
            payload_type: 8,
            decode: g711::alaw_decode_slice,
        },
        Phone {
            socket: bind(),
            endpoint: b.local,
            packet: tone_packet(500.0, g711::ulaw_encode_slice, 0),
            hears: 1000.0,
            payload_type: 0,
            decode: g711::ulaw_decode_slice,
        },
    ];
    engine.set_remote(a.id, phones[0].socket.local_addr().unwrap());
    engine.set_remote(b.id, phones[1].socket.local_addr().unwrap());
    engine.connect(a.id, b.id);
    // A media tap (speech analytics) rides along: its ring was allocated here.
    let tap = engine.tap(a.id, 16000).unwrap();

    let mut warm_up = [Tally::default(), Tally::default()];
    talk(&mut phones, &tap, 0, WARM_UP, &mut warm_up);
    for (who, tally) in ["A", "B"].iter().zip(&warm_up) {
        // The first frames are silence while the jitter buffers fill.
        assert!(
            tally.tone >= usize::from(WARM_UP) - 10,
            "{who} during warm-up: {tally:?}"
        );
    }

    let mut measured = [Tally::default(), Tally::default()];
    let started = Instant::now();
    let before = allocations();
    let tapped = talk(&mut phones, &tap, WARM_UP, MEASURED, &mut measured);
    let during = allocations() - before;
    let elapsed = started.elapsed();

    let heard = || Tally {
        tone: usize::from(MEASURED),
        wrong: 0,
    };
    assert_eq!(
        measured,
        [heard(), heard()],
        "every packet carried the other's tone"
    );
    let quality = engine.stats(a.id).unwrap().quality;
    assert!(quality.terminated, "{quality:?}");
    eprintln!(
        "{during} allocations in {:.2} s of a PCMA<->PCMU bridge ({MEASURED} packets each way)",
        elapsed.as_secs_f64()
    );
    assert!(
        elapsed >= Duration::from_millis(1900),
        "paced by the media clock: {elapsed:?}"
    );
    assert!(
        tapped >= usize::from(MEASURED) - 5,
        "the tap delivered a frame per tick: {tapped}"
    );
    assert_eq!(tap.dropped(), 0);
    assert_eq!(
        during, 0,
        "the terminated path (with a tap) allocates in steady state"
    );
    engine.shutdown();
}
