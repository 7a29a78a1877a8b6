//! The relay against real UDP sockets on 127.0.0.1. Each test has its own port range so tests
//! run in parallel; waits are bounded by deadlines, never fixed sleeps.

// Real sockets and real time: like a reactor, this harness reads the clock.
#![allow(clippy::disallowed_methods)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use switchyard_media::{EndpointId, EndpointStats, Error, MediaConfig, MediaEngine, MediaEvent};

const WAIT: Duration = Duration::from_secs(3);

fn start_engine(
    port_min: u16,
    port_max: u16,
    rtp_timeout: Duration,
) -> (MediaEngine, mpsc::Receiver<MediaEvent>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let engine = MediaEngine::start(
        MediaConfig {
            ip: "127.0.0.1".parse().unwrap(),
            port_min,
            port_max,
            rtp_timeout,
            threads: 2,
        },
        Box::new(move |event| {
            let _ = tx.lock().unwrap().send(event);
        }),
    )
    .unwrap();
    (engine, rx)
}

/// A phone's socket, reading with a timeout.
fn phone() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    socket
}

/// A phone's RTP socket and its RTCP socket on port + 1, searched for in `range`.
fn phone_pair(range: std::ops::Range<u16>) -> (UdpSocket, UdpSocket) {
    for port in range.step_by(2) {
        if let (Ok(rtp), Ok(rtcp)) = (
            UdpSocket::bind(("127.0.0.1", port)),
            UdpSocket::bind(("127.0.0.1", port + 1)),
        ) {
            rtp.set_read_timeout(Some(WAIT)).unwrap();
            rtcp.set_read_timeout(Some(WAIT)).unwrap();
            return (rtp, rtcp);
        }
    }
    panic!("no free port pair for the test phone");
}

fn rtp(sequence: u16, payload: &[u8]) -> Vec<u8> {
    let mut packet = vec![
        0x80,
        0,
        (sequence >> 8) as u8,
        sequence as u8,
        0,
        0,
        0,
        160,
        1,
        2,
        3,
        4,
    ];
    packet.extend_from_slice(payload);
    packet
}

fn rtcp_sender_report() -> Vec<u8> {
    let mut packet = vec![0x80, 200, 0, 6, 1, 2, 3, 4];
    packet.extend_from_slice(&[0; 20]);
    packet
}

fn recv(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 2048];
    let (len, from) = socket
        .recv_from(&mut buf)
        .expect("packet expected before the timeout");
    (buf[..len].to_vec(), from)
}

/// Polls the endpoint's counters until `done` holds.
fn wait_stats(
    engine: &MediaEngine,
    ep: EndpointId,
    done: impl Fn(&EndpointStats) -> bool,
) -> EndpointStats {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = engine.stats(ep).expect("endpoint exists");
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "stats never reached the expected state: {stats:?}"
        );
        std::thread::yield_now();
    }
}

#[test]
fn bridge_relays_both_ways_and_counts() {
    let (engine, _events) = start_engine(21000, 21099, Duration::from_secs(30));
    let (a, b) = engine.allocate_pair().unwrap();
    assert_eq!(a.local.port() % 2, 0);
    assert_eq!(b.local.port() % 2, 0);
    assert_eq!(engine.active_endpoints(), 2);
    let (phone_a, phone_b) = (phone(), phone());
    engine.set_remote(a.id, phone_a.local_addr().unwrap());
    engine.set_remote(b.id, phone_b.local_addr().unwrap());
    engine.bridge(a.id, b.id);

    let to_b = rtp(1, &[0xd5; 160]);
    phone_a.send_to(&to_b, a.local).unwrap();
    assert_eq!(
        recv(&phone_b),
        (to_b.clone(), b.local),
        "A's packet leaves from B's endpoint, untouched"
    );
    let to_a = rtp(7, &[0x55; 160]);
    phone_b.send_to(&to_a, b.local).unwrap();
    assert_eq!(recv(&phone_a), (to_a, a.local));

    let sa = wait_stats(&engine, a.id, |s| s.packets_out == 1);
    let sb = wait_stats(&engine, b.id, |s| s.packets_out == 1);
    assert_eq!(
        (sa.packets_in, sa.bytes_in, sa.bytes_out, sa.packets_dropped),
        (1, 172, 172, 0)
    );
    assert_eq!(
        (sb.packets_in, sb.bytes_in, sb.bytes_out, sb.packets_dropped),
        (1, 172, 172, 0)
    );
    assert_eq!(sa.remote, Some(phone_a.local_addr().unwrap()));
    engine.shutdown();
}

#[test]
fn rtp_before_the_bridge_is_dropped_and_counted() {
    let (engine, _events) = start_engine(21100, 21199, Duration::from_secs(30));
    let (a, b) = engine.allocate_pair().unwrap();
    let (phone_a, phone_b) = (phone(), phone());
    engine.set_remote(b.id, phone_b.local_addr().unwrap());
    phone_a.send_to(&rtp(1, b"early"), a.local).unwrap();
    wait_stats(&engine, a.id, |s| s.packets_dropped == 1);
    engine.bridge(a.id, b.id);
    phone_a.send_to(&rtp(2, b"bridged"), a.local).unwrap();
    assert_eq!(recv(&phone_b).0, rtp(2, b"bridged"));
    engine.shutdown();
}

#[test]
fn latches_to_the_source_of_received_rtp() {
    let (engine, _events) = start_engine(21200, 21299, Duration::from_secs(30));
    let (a, b) = engine.allocate_pair().unwrap();
    let phone_a = phone();
    // B's SDP names one address; behind NAT its packets come from another.
    let (b_in_sdp, b_behind_nat) = (phone(), phone());
    engine.set_remote(a.id, phone_a.local_addr().unwrap());
    engine.set_remote(b.id, b_in_sdp.local_addr().unwrap());
    engine.bridge(a.id, b.id);

    phone_a.send_to(&rtp(1, b"before"), a.local).unwrap();
    assert_eq!(
        recv(&b_in_sdp).0,
        rtp(1, b"before"),
        "before latching, the SDP address is used"
    );
    assert!(!engine.stats(b.id).unwrap().latched);

    b_behind_nat.send_to(&rtp(1, b"from nat"), b.local).unwrap();
    assert_eq!(recv(&phone_a).0, rtp(1, b"from nat"));
    let stats = wait_stats(&engine, b.id, |s| s.latched);
    assert_eq!(stats.remote, Some(b_behind_nat.local_addr().unwrap()));

    phone_a.send_to(&rtp(2, b"after"), a.local).unwrap();
    assert_eq!(
        recv(&b_behind_nat).0,
        rtp(2, b"after"),
        "after latching, the packet source is used"
    );

    // A re-INVITE's set_remote re-arms latching.
    engine.set_remote(b.id, b_in_sdp.local_addr().unwrap());
    wait_stats(&engine, b.id, |s| !s.latched);
    phone_a.send_to(&rtp(3, b"re-invite"), a.local).unwrap();
    assert_eq!(recv(&b_in_sdp).0, rtp(3, b"re-invite"));
    engine.shutdown();
}

#[test]
fn echo_returns_packets_to_their_source() {
    let (engine, _events) = start_engine(21300, 21399, Duration::from_secs(30));
    let ep = engine.allocate().unwrap();
    engine.echo(ep.id);
    let phone = phone();
    for seq in 0..5 {
        let packet = rtp(seq, &[seq as u8; 160]);
        phone.send_to(&packet, ep.local).unwrap();
        assert_eq!(recv(&phone), (packet, ep.local));
    }
    let stats = wait_stats(&engine, ep.id, |s| s.packets_out == 5);
    assert_eq!(stats.packets_in, 5);
    engine.shutdown();
}

#[test]
fn rtcp_is_relayed_between_the_odd_ports() {
    let (engine, _events) = start_engine(21400, 21499, Duration::from_secs(30));
    let (a, b) = engine.allocate_pair().unwrap();
    let (a_rtp, a_rtcp) = phone_pair(21600..21700);
    let (b_rtp, b_rtcp) = phone_pair(21700..21800);
    engine.set_remote(a.id, a_rtp.local_addr().unwrap());
    engine.set_remote(b.id, b_rtp.local_addr().unwrap());
    engine.bridge(a.id, b.id);
    let a_rtcp_port = SocketAddr::new(a.local.ip(), a.local.port() + 1);
    let b_rtcp_port = SocketAddr::new(b.local.ip(), b.local.port() + 1);

    let report = rtcp_sender_report();
    a_rtcp.send_to(&report, a_rtcp_port).unwrap();
    assert_eq!(
        recv(&b_rtcp),
        (report.clone(), b_rtcp_port),
        "RTCP goes to B's RTP port + 1"
    );
    b_rtcp.send_to(&report, b_rtcp_port).unwrap();
    assert_eq!(recv(&a_rtcp), (report.clone(), a_rtcp_port));
    // RTCP is not RTP: it must not latch the RTP destination.
    assert!(!engine.stats(a.id).unwrap().latched);
    // Junk on the RTCP port is dropped.
    a_rtcp.send_to(b"not rtcp", a_rtcp_port).unwrap();
    wait_stats(&engine, a.id, |s| s.packets_dropped == 1);
    drop((a_rtp, b_rtp));
    engine.shutdown();
}

#[test]
fn junk_is_dropped() {
    let (engine, _events) = start_engine(21500, 21599, Duration::from_secs(30));
    let (a, b) = engine.allocate_pair().unwrap();
    let (phone_a, phone_b) = (phone(), phone());
    engine.set_remote(a.id, phone_a.local_addr().unwrap());
    engine.set_remote(b.id, phone_b.local_addr().unwrap());
    engine.bridge(a.id, b.id);
    phone_a.send_to(b"GET / HTTP/1.1\r\n\r\n", a.local).unwrap(); // version bits 01
    phone_a.send_to(&[0x80; 11], a.local).unwrap(); // shorter than an RTP header
    phone_a
        .send_to(&[0x9f, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0], a.local)
        .unwrap(); // 15 CSRCs missing
    phone_a.send_to(&[], a.local).unwrap();
    let good = rtp(9, &[1; 160]);
    phone_a.send_to(&good, a.local).unwrap();
    assert_eq!(
        recv(&phone_b).0,
        good,
        "the first packet through is the valid one"
    );
    let stats = wait_stats(&engine, a.id, |s| s.packets_in == 5);
    assert_eq!(stats.packets_dropped, 4);
    assert!(stats.latched, "latched on the valid RTP packet");
    engine.shutdown();
}

fn timed_out(event: MediaEvent) -> EndpointId {
    match event {
        MediaEvent::RtpTimeout { endpoint } => endpoint,
        other => panic!("unexpected event {other:?}"),
    }
}

#[test]
fn rtp_timeout_fires_for_a_silent_bridged_endpoint_but_not_a_held_one() {
    let (engine, events) = start_engine(21800, 21899, Duration::from_millis(200));
    let (a, b) = engine.allocate_pair().unwrap();
    let idle = engine.allocate().unwrap();
    let (phone_a, phone_b) = (phone(), phone());
    engine.set_remote(a.id, phone_a.local_addr().unwrap());
    engine.set_remote(b.id, phone_b.local_addr().unwrap());
    engine.set_hold(b.id, true);
    engine.bridge(a.id, b.id);
    let started = Instant::now();
    assert_eq!(
        timed_out(events.recv_timeout(WAIT).expect("an RTP timeout")),
        a.id
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    // Neither the held endpoint nor the unbridged one times out, and A reports only once.
    assert!(events.recv_timeout(Duration::from_millis(800)).is_err());

    // B taken off hold and still silent: it times out too.
    engine.set_hold(b.id, false);
    assert_eq!(
        timed_out(events.recv_timeout(WAIT).expect("an RTP timeout for B")),
        b.id
    );
    // RTP flowing on A re-arms its timeout; it fires again once A falls silent again.
    phone_a.send_to(&rtp(1, b"x"), a.local).unwrap();
    assert_eq!(
        timed_out(
            events
                .recv_timeout(WAIT)
                .expect("a second RTP timeout for A")
        ),
        a.id
    );
    let _ = idle;
    engine.shutdown();
}

#[test]
fn release_frees_the_ports_and_tiny_ranges_exhaust() {
    // One pair: 21900 (RTP) and 21901 (RTCP).
    let (engine, _events) = start_engine(21900, 21901, Duration::from_secs(30));
    let first = engine.allocate().unwrap();
    assert_eq!(first.local.port(), 21900);
    assert!(matches!(engine.allocate(), Err(Error::PortsExhausted)));
    assert!(matches!(engine.allocate_pair(), Err(Error::PortsExhausted)));
    assert_eq!(engine.active_endpoints(), 1);
    engine.release(first.id);
    assert_eq!(engine.active_endpoints(), 0);
    assert!(engine.stats(first.id).is_none());

    // The media thread closes the sockets right after release returns.
    let deadline = Instant::now() + WAIT;
    let again = loop {
        match engine.allocate() {
            Ok(ep) => break ep,
            Err(Error::PortsExhausted) if Instant::now() < deadline => std::thread::yield_now(),
            Err(e) => panic!("ports never came back: {e}"),
        }
    };
    assert_eq!(again.local.port(), 21900);
    assert_ne!(
        again.id, first.id,
        "a new generation: the stale handle stays dead"
    );
    // A stale handle neither releases nor reads the new endpoint.
    engine.release(first.id);
    assert!(engine.stats(again.id).is_some());
    engine.shutdown();

    // A range with no whole even/odd pair.
    let (engine, _events) = start_engine(21951, 21952, Duration::from_secs(30));
    assert!(matches!(engine.allocate(), Err(Error::PortsExhausted)));
    engine.shutdown();
}

#[test]
fn ports_in_use_are_skipped() {
    let _squatter = UdpSocket::bind("127.0.0.1:21960").unwrap();
    let (engine, _events) = start_engine(21960, 21963, Duration::from_secs(30));
    let ep = engine.allocate().unwrap();
    assert_eq!(ep.local.port(), 21962);
    assert!(matches!(engine.allocate(), Err(Error::PortsExhausted)));
    engine.shutdown();
}
