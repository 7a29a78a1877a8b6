//! The relay against real UDP sockets on 127.0.0.1. Each test has its own port range so tests
//! run in parallel; waits are bounded by deadlines, never fixed sleeps.

// Real sockets and real time: like a reactor, this harness reads the clock.
#![allow(clippy::disallowed_methods)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use switchyard_media::{EndpointId, EndpointStats, Error, MediaConfig, MediaEngine, MediaEvent};

const WAIT: Duration = Duration::from_secs(3);

fn start_engine(
    port_min: u16,
    port_max: u16,
    rtp_timeout: Duration,
) -> (MediaEngine, mpsc::Receiver<MediaEvent>) {
    start_engine_on(port_min, port_max, rtp_timeout, 2)
}

fn start_engine_on(
    port_min: u16,
    port_max: u16,
    rtp_timeout: Duration,
    threads: usize,
) -> (MediaEngine, mpsc::Receiver<MediaEvent>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let engine = MediaEngine::start(
        MediaConfig {
            ip: "127.0.0.1".parse().unwrap(),
            port_min,
            port_max,
            rtp_timeout,
            threads,
            realtime_priority: None,
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

/// Nothing is waiting on `socket`. The relay sends from its media thread before it handles the
/// next packet, and loopback delivery happens within send, so call this after a later packet
/// has been seen to arrive.
fn assert_nothing_for(socket: &UdpSocket, who: &str) {
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    match socket.recv_from(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("{who} received something: {other:?}"),
    }
    socket.set_nonblocking(false).unwrap();
}

#[test]
fn a_remote_on_our_own_relay_ports_is_ignored_so_nothing_loops() {
    // One media thread: a loop there would stop the other call too.
    let (engine, _events) = start_engine_on(22100, 22199, Duration::from_secs(30), 1);
    let (a, b) = engine.allocate_pair().unwrap();
    let (c, d) = engine.allocate_pair().unwrap();
    let (phone_a, phone_c, phone_d) = (phone(), phone(), phone());
    engine.set_remote(a.id, phone_a.local_addr().unwrap());
    // The callee answers c=<relay ip> m=audio <A-leg port>: B would relay to A, A back to B...
    engine.set_remote(b.id, a.local);
    engine.bridge(a.id, b.id);
    phone_a.send_to(&rtp(1, b"loop?"), a.local).unwrap();
    let sa = wait_stats(&engine, a.id, |s| s.packets_dropped == 1);
    assert_eq!(sa.packets_in, 1, "A received the phone's packet only");
    let sb = engine.stats(b.id).unwrap();
    assert_eq!((sb.remote, sb.packets_in, sb.packets_out), (None, 0, 0));

    // Every other destination we must not send to is ignored too, keeping the good one.
    engine.set_remote(c.id, phone_c.local_addr().unwrap());
    engine.set_remote(d.id, phone_d.local_addr().unwrap());
    let ip = a.local.ip();
    for bad in [
        c.local,                                 // our own RTP port
        SocketAddr::new(ip, c.local.port() + 1), // our own RTCP port
        SocketAddr::new(ip, 22099),              // its RTCP port (22100) would be ours
        "0.0.0.0:4000".parse().unwrap(),
        "224.0.0.1:4000".parse().unwrap(),
        "255.255.255.255:4000".parse().unwrap(),
        "[ff02::1]:4000".parse().unwrap(),
        SocketAddr::new(ip, 0),
    ] {
        engine.set_remote(d.id, bad);
    }
    engine.bridge(c.id, d.id);
    // The thread still serves the other call, both ways.
    phone_c.send_to(&rtp(1, b"c to d"), c.local).unwrap();
    assert_eq!(recv(&phone_d), (rtp(1, b"c to d"), d.local));
    phone_d.send_to(&rtp(1, b"d to c"), d.local).unwrap();
    assert_eq!(recv(&phone_c), (rtp(1, b"d to c"), c.local));
    assert_eq!(
        engine.stats(d.id).unwrap().remote,
        Some(phone_d.local_addr().unwrap())
    );
    let sa = engine.stats(a.id).unwrap();
    assert_eq!(
        (sa.packets_in, sa.packets_out),
        (1, 0),
        "no packet went round"
    );
    engine.shutdown();
}

#[test]
fn a_flood_on_one_endpoint_does_not_starve_another_call() {
    let (engine, _events) = start_engine_on(22200, 22299, Duration::from_secs(30), 1);
    let (a1, b1) = engine.allocate_pair().unwrap();
    let (a2, b2) = engine.allocate_pair().unwrap();
    let (flooder, sink) = (phone(), phone());
    let (phone_a2, phone_b2, phone_b2_moved) = (phone(), phone(), phone());
    engine.set_remote(a1.id, flooder.local_addr().unwrap());
    engine.set_remote(b1.id, sink.local_addr().unwrap()); // never read: the kernel drops
    engine.bridge(a1.id, b1.id);
    engine.set_remote(a2.id, phone_a2.local_addr().unwrap());
    engine.set_remote(b2.id, phone_b2.local_addr().unwrap());
    engine.bridge(a2.id, b2.id);

    // Three phones flooding A1 send faster than one media thread receives and relays, so A1's
    // socket never runs dry: reading it until it would block, the thread would never come
    // back to poll. (A1 relays the flood of the address in its SDP, and drops the others'.)
    let stop = Arc::new(AtomicBool::new(false));
    let floods: Vec<_> = [flooder, phone(), phone()]
        .into_iter()
        .map(|flooder| {
            let stop = stop.clone();
            let target = a1.local;
            std::thread::spawn(move || {
                let packet = rtp(1, &[0xd5; 160]);
                let deadline = Instant::now() + Duration::from_secs(20);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    for _ in 0..64 {
                        let _ = flooder.send_to(&packet, target);
                    }
                }
            })
        })
        .collect();
    let flooding = wait_stats(&engine, b1.id, |s| s.packets_out > 1000).packets_out;

    for seq in 0..50 {
        let packet = rtp(seq, b"call two");
        phone_a2.send_to(&packet, a2.local).unwrap();
        assert_eq!(
            recv(&phone_b2).0,
            packet,
            "call two relayed during the flood"
        );
    }
    // Commands still apply during the flood: a re-INVITE moves B2.
    engine.set_remote(b2.id, phone_b2_moved.local_addr().unwrap());
    wait_stats(&engine, b2.id, |s| {
        s.remote == Some(phone_b2_moved.local_addr().unwrap())
    });
    phone_a2.send_to(&rtp(50, b"moved"), a2.local).unwrap();
    assert_eq!(recv(&phone_b2_moved).0, rtp(50, b"moved"));
    // The flooded call is still relayed: its counter moves on. Waited for, not sampled once:
    // on a loaded machine the one flooder whose packets A1 relays (the SDP address; the two
    // others are dropped by latching) may be off the CPU for a moment.
    let still = wait_stats(&engine, b1.id, |s| s.packets_out > flooding).packets_out;
    stop.store(true, Ordering::Relaxed);
    for flood in floods {
        flood.join().unwrap();
    }
    assert!(
        still > flooding,
        "the flooded call is still relayed ({flooding} then {still})"
    );
    engine.shutdown();
}

#[test]
fn rtp_before_the_bridge_latches_nothing() {
    let (engine, _events) = start_engine(22300, 22399, Duration::from_secs(30));
    let (a, b) = engine.allocate_pair().unwrap();
    let (a_rtp, a_rtcp) = phone_pair(22400..22500);
    let (phone_b, attacker) = (phone(), phone());
    engine.set_remote(a.id, a_rtp.local_addr().unwrap());
    engine.set_remote(b.id, phone_b.local_addr().unwrap());
    // Before the bridge, a stranger sprays the new port with RTP and RTCP.
    let a_rtcp_port = SocketAddr::new(a.local.ip(), a.local.port() + 1);
    attacker.send_to(&rtp(1, b"bleed"), a.local).unwrap();
    attacker
        .send_to(&rtcp_sender_report(), a_rtcp_port)
        .unwrap();
    let stats = wait_stats(&engine, a.id, |s| s.packets_dropped == 2);
    assert!(!stats.latched);
    assert_eq!(stats.remote, Some(a_rtp.local_addr().unwrap()));

    engine.bridge(a.id, b.id);
    phone_b.send_to(&rtp(1, b"hello a"), b.local).unwrap();
    assert_eq!(recv(&a_rtp), (rtp(1, b"hello a"), a.local));
    let b_rtcp_port = SocketAddr::new(b.local.ip(), b.local.port() + 1);
    phone_b.send_to(&rtcp_sender_report(), b_rtcp_port).unwrap();
    assert_eq!(recv(&a_rtcp), (rtcp_sender_report(), a_rtcp_port));
    assert_nothing_for(&attacker, "the attacker");
    engine.shutdown();
}

#[test]
fn after_latching_a_third_party_is_not_relayed() {
    let (engine, _events) = start_engine(22500, 22599, Duration::from_secs(30));
    let (a, b) = engine.allocate_pair().unwrap();
    let (a_rtp, a_rtcp) = phone_pair(22600..22700);
    let (b_rtp, b_rtcp) = phone_pair(22700..22800);
    let attacker = phone();
    engine.set_remote(a.id, a_rtp.local_addr().unwrap());
    engine.set_remote(b.id, b_rtp.local_addr().unwrap());
    engine.bridge(a.id, b.id);
    let a_rtcp_port = SocketAddr::new(a.local.ip(), a.local.port() + 1);

    a_rtp.send_to(&rtp(1, b"first"), a.local).unwrap();
    assert_eq!(recv(&b_rtp).0, rtp(1, b"first"));
    a_rtcp.send_to(&rtcp_sender_report(), a_rtcp_port).unwrap();
    assert_eq!(recv(&b_rtcp).0, rtcp_sender_report());

    // Injection: a third party's RTP and RTCP do not reach B, nor move A's latch.
    attacker.send_to(&rtp(2, b"injected"), a.local).unwrap();
    let mut report = rtcp_sender_report();
    report[4] = 0x66; // another SSRC
    attacker.send_to(&report, a_rtcp_port).unwrap();
    let stats = wait_stats(&engine, a.id, |s| s.packets_dropped == 2);
    assert_eq!(stats.remote, Some(a_rtp.local_addr().unwrap()));
    a_rtp.send_to(&rtp(3, b"second"), a.local).unwrap();
    assert_eq!(
        recv(&b_rtp).0,
        rtp(3, b"second"),
        "the injected packet was not relayed"
    );
    a_rtcp.send_to(&rtcp_sender_report(), a_rtcp_port).unwrap();
    assert_eq!(recv(&b_rtcp).0, rtcp_sender_report());
    // Hijack: B's media still goes to A's phone, not to the attacker.
    b_rtp.send_to(&rtp(1, b"to a"), b.local).unwrap();
    assert_eq!(recv(&a_rtp).0, rtp(1, b"to a"));
    assert_nothing_for(&attacker, "the attacker");
    engine.shutdown();
}

#[test]
fn the_sdp_address_reclaims_the_latch_from_an_impostor() {
    let (engine, _events) = start_engine(22800, 22899, Duration::from_secs(30));
    let (a, b) = engine.allocate_pair().unwrap();
    let (phone_a, phone_b, impostor) = (phone(), phone(), phone());
    engine.set_remote(a.id, phone_a.local_addr().unwrap());
    engine.set_remote(b.id, phone_b.local_addr().unwrap());
    engine.bridge(a.id, b.id);

    // First to send after the bridge: it could be A's phone behind NAT, so it latches.
    impostor.send_to(&rtp(1, b"impostor"), a.local).unwrap();
    assert_eq!(recv(&phone_b).0, rtp(1, b"impostor"));
    assert_eq!(
        wait_stats(&engine, a.id, |s| s.latched).remote,
        Some(impostor.local_addr().unwrap())
    );
    // The address A's SDP names is always heard, and takes the latch back.
    phone_a.send_to(&rtp(1, b"real"), a.local).unwrap();
    assert_eq!(recv(&phone_b).0, rtp(1, b"real"));
    let stats = wait_stats(&engine, a.id, |s| {
        s.remote == Some(phone_a.local_addr().unwrap())
    });
    assert!(stats.latched);
    phone_b.send_to(&rtp(1, b"to a"), b.local).unwrap();
    assert_eq!(recv(&phone_a), (rtp(1, b"to a"), a.local));
    // The impostor is now refused.
    impostor
        .send_to(&rtp(2, b"impostor again"), a.local)
        .unwrap();
    phone_a.send_to(&rtp(2, b"real again"), a.local).unwrap();
    assert_eq!(recv(&phone_b).0, rtp(2, b"real again"));
    assert_eq!(engine.stats(a.id).unwrap().packets_dropped, 1);
    assert_nothing_for(&impostor, "the impostor");
    engine.shutdown();
}

#[test]
fn echo_answers_only_the_latched_source() {
    let (engine, _events) = start_engine(22900, 22999, Duration::from_secs(30));
    let ep = engine.allocate().unwrap();
    let (phone, stranger) = (phone(), phone());
    engine.set_remote(ep.id, phone.local_addr().unwrap());
    engine.echo(ep.id);
    phone.send_to(&rtp(1, b"echo"), ep.local).unwrap();
    assert_eq!(recv(&phone).0, rtp(1, b"echo"));
    // A stranger cannot use the echo as a reflector once it has latched.
    stranger.send_to(&rtp(1, b"reflect me"), ep.local).unwrap();
    phone.send_to(&rtp(2, b"echo"), ep.local).unwrap();
    assert_eq!(recv(&phone).0, rtp(2, b"echo"));
    assert_nothing_for(&stranger, "the stranger");
    assert_eq!(engine.stats(ep.id).unwrap().packets_dropped, 1);
    engine.shutdown();
}
