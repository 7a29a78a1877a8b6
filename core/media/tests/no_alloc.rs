//! The relay is the hot path: it must not allocate per packet. A counting global allocator
//! wraps the system one for this whole test binary; after a warm-up we relay tens of thousands
//! of packets both ways through a bridge and check the count of allocations did not grow with
//! them.
//!
//! The counting allocator is `stats_alloc` (a dev-dependency): a `GlobalAlloc` impl needs
//! `unsafe`, and the workspace's `forbid(unsafe_code)` cannot be relaxed by an `allow` in this
//! file (E0453), so the unsafe stays in that small, well-known crate.
//!
//! This binary holds one test on purpose: the counter is process-wide, so another test running
//! in parallel would add its allocations to ours. Everything the measured loop touches is
//! allocated before it starts: the packet buffer, the receive buffers, the sockets.

use std::alloc::System;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use switchyard_media::{MediaConfig, MediaEngine};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations and reallocations so far, in every thread of the process.
fn allocations() -> usize {
    let stats = ALLOCATOR.stats();
    stats.allocations + stats.reallocations
}

/// The bound on any one receive: a deadline for a packet that never comes, not a pacing sleep.
const WAIT: Duration = Duration::from_secs(3);
const WARM_UP: usize = 200;
const MEASURED: usize = 20_000;
/// Packets in flight each way before we wait for them: well under what a default UDP receive
/// buffer (~208 KiB on Linux, ~1 KiB of it per small datagram) holds, so the kernel drops none.
const BATCH: usize = 32;

/// What one direction of the call saw.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    received: usize,
    /// Packets that came back altered, out of order, or from another address than the
    /// endpoint's: the relay must pass payloads untouched and in order.
    wrong: usize,
    /// Receives that hit the deadline: a lost packet.
    lost: usize,
}

/// Sends `count` packets each way, `BATCH` at a time, and waits for each batch to arrive.
/// Allocates nothing: the packet is one fixed buffer whose sequence number is rewritten.
#[allow(clippy::too_many_arguments)]
fn relay_both_ways(
    count: usize,
    first_sequence: u16,
    packet: &mut [u8; 172],
    phone_a: &UdpSocket,
    phone_b: &UdpSocket,
    a: SocketAddr,
    b: SocketAddr,
    tallies: &mut [Tally; 2],
) {
    let mut inbox = [0u8; 2048];
    let mut sent = 0;
    while sent < count {
        let batch = BATCH.min(count - sent);
        for i in 0..batch {
            let sequence = first_sequence.wrapping_add((sent + i) as u16);
            packet[2..4].copy_from_slice(&sequence.to_be_bytes());
            phone_a
                .send_to(&packet[..], a)
                .expect("send to A's endpoint");
            phone_b
                .send_to(&packet[..], b)
                .expect("send to B's endpoint");
        }
        // A's packets leave from B's endpoint to phone B, and B's from A's to phone A.
        for (phone, endpoint, tally) in [(phone_b, b, 0), (phone_a, a, 1)] {
            for i in 0..batch {
                let sequence = first_sequence.wrapping_add((sent + i) as u16);
                packet[2..4].copy_from_slice(&sequence.to_be_bytes());
                match phone.recv_from(&mut inbox) {
                    Ok((len, from)) => {
                        tallies[tally].received += 1;
                        if from != endpoint || inbox[..len] != packet[..] {
                            tallies[tally].wrong += 1;
                        }
                    }
                    // The rest of this batch is lost too; the next batch resynchronises.
                    Err(_) => {
                        tallies[tally].lost += batch - i;
                        break;
                    }
                }
            }
        }
        sent += batch;
    }
}

#[test]
fn relaying_a_packet_allocates_nothing() {
    let engine = MediaEngine::start(
        MediaConfig {
            ip: "127.0.0.1".parse().unwrap(),
            port_min: 22000,
            port_max: 22099,
            // Long enough that no timeout event (which logs) fires during the test.
            rtp_timeout: Duration::from_secs(60),
            threads: 1,
            realtime_priority: None,
        },
        Box::new(|_| {}),
    )
    .unwrap();
    let (a, b) = engine.allocate_pair().unwrap();
    let phone_a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let phone_b = UdpSocket::bind("127.0.0.1:0").unwrap();
    phone_a.set_read_timeout(Some(WAIT)).unwrap();
    phone_b.set_read_timeout(Some(WAIT)).unwrap();
    engine.set_remote(a.id, phone_a.local_addr().unwrap());
    engine.set_remote(b.id, phone_b.local_addr().unwrap());
    engine.bridge(a.id, b.id);

    // A G.711 packet: 12-byte RTP header (RFC 3550 §5.1, PT 0) and 20 ms of payload.
    let mut packet = [0xd5u8; 172];
    packet[..12].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 160, 1, 2, 3, 4]);

    // Warm-up: latching (which logs and takes the stats lock once), lazy initialisation in
    // std and mio, first use of the sockets.
    let mut warm_up = [Tally::default(), Tally::default()];
    relay_both_ways(
        WARM_UP,
        0,
        &mut packet,
        &phone_a,
        &phone_b,
        a.local,
        b.local,
        &mut warm_up,
    );
    let warmed = Tally {
        received: WARM_UP,
        wrong: 0,
        lost: 0,
    };
    assert_eq!(warm_up[0], warmed, "A to B during warm-up");
    assert_eq!(warm_up[1], warmed, "B to A during warm-up");

    let mut measured = [Tally::default(), Tally::default()];
    let before = allocations();
    relay_both_ways(
        MEASURED,
        WARM_UP as u16,
        &mut packet,
        &phone_a,
        &phone_b,
        a.local,
        b.local,
        &mut measured,
    );
    let during = allocations() - before;

    let relayed = Tally {
        received: MEASURED,
        wrong: 0,
        lost: 0,
    };
    assert_eq!(measured[0], relayed, "A to B");
    assert_eq!(measured[1], relayed, "B to A");
    let total = (WARM_UP + MEASURED) as u64;
    let (sa, sb) = (engine.stats(a.id).unwrap(), engine.stats(b.id).unwrap());
    assert_eq!((sa.packets_in, sa.packets_out), (total, total));
    assert_eq!((sb.packets_in, sb.packets_out), (total, total));
    assert_eq!((sa.packets_dropped, sb.packets_dropped), (0, 0));
    eprintln!(
        "{during} allocations while relaying {} packets ({MEASURED} each way)",
        2 * MEASURED
    );
    // Not zero: a rare allocation off the packet path (the media thread's timeout tick, the
    // test harness) may land in the window. One per packet would be 40,000.
    assert!(
        during < 50,
        "{during} allocations while relaying {} packets: the packet path allocates",
        2 * MEASURED
    );
    engine.shutdown();
}
