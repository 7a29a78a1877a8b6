//! Terminated media against real UDP sockets on 127.0.0.1: phones speak G.711, G.722 and Opus
//! (encoded with switchyard-codec, packetized with switchyard-rtp), and the engine transcodes,
//! conceals loss, converts DTMF, plays prompts, mixes conferences and records between them.
//!
//! Each phone is a thread that sends one packet per 20 ms slot on its own clock and reads its
//! socket until the next slot: waiting for packets is a socket timeout, waiting for the engine
//! is its events channel, and nothing sleeps for a fixed time. Each test has its own port range
//! so tests run in parallel.

// Real sockets and real time: like a reactor, this harness reads the clock.
#![allow(clippy::disallowed_methods)]

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchyard_codec::{CodecParams, Decoder, Encoder};
use switchyard_dsp::dtmf::{DtmfDetector, DtmfEvent as InbandEvent, DtmfGenerator};
use switchyard_dsp::tone::ToneSpec;
use switchyard_media::{
    CodecKind, DtmfOptions, DtmfSource, EndpointId, EndpointStats, LegCodec, MediaConfig,
    MediaEngine, MediaEvent, OpusFmtp, PlayItem, Player, TapReceiver,
};
use switchyard_recording::{Layout, Recorder, RecordingInfo, RecordingSpec};
use switchyard_rtp::event::{DtmfEvent as EventDtmf, EventReceiver, EventSender, TelephoneEvent};
use switchyard_rtp::packet::RtpHeader;

/// The packet time of every stream here.
const FRAME: Duration = Duration::from_millis(20);
/// The bound on any one wait: a deadline for something that never comes.
const WAIT: Duration = Duration::from_secs(5);
/// A phone hangs up by itself after this many slots (30 s), should its test fail midway.
const MAX_SLOTS: u32 = 1500;
/// The level of the phones' tones: -12 dBFS, loud and far from clipping once two are mixed.
const AMP: f64 = 8000.0;
/// Frames the engine needs before a phone's words come through: its jitter buffer waits for
/// two packets and a target delay, and the codecs and resamplers have their own delays.
const SETTLE: usize = 15;
/// RFC 3551 §6 / RFC 7587: static PCMU, PCMA and G.722 types, and the dynamic ones we pick.
const PT_PCMU: u8 = 0;
const PT_PCMA: u8 = 8;
const PT_G722: u8 = 9;
const PT_OPUS: u8 = 111;
const PT_EVENT: u8 = 101;

fn start_engine(port_min: u16) -> (MediaEngine, mpsc::Receiver<MediaEvent>) {
    let (tx, rx) = mpsc::channel();
    let engine = MediaEngine::start(
        MediaConfig {
            ip: "127.0.0.1".parse().unwrap(),
            port_min,
            port_max: port_min + 99,
            // Short, so quality is published every 50 ms (the timeout tick publishes it); a
            // phone that only listens times out, which the tests ignore.
            rtp_timeout: Duration::from_millis(200),
            threads: 1,
            realtime_priority: None,
        },
        Box::new(move |event| {
            let _ = tx.send(event);
        }),
    )
    .unwrap();
    (engine, rx)
}

fn leg(kind: CodecKind, payload_type: u8, sample_rate: u32, event: Option<u8>) -> LegCodec {
    LegCodec {
        kind,
        payload_type,
        sample_rate,
        opus: OpusFmtp::default(),
        telephone_event: event,
        also_receives: None,
    }
}

/// The next event `pick` accepts, skipping the others (RTP timeouts of listening phones).
fn wait_event<T>(
    events: &mpsc::Receiver<MediaEvent>,
    mut pick: impl FnMut(MediaEvent) -> Option<T>,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = events
            .recv_timeout(left)
            .expect("the media event expected before the deadline");
        if let Some(picked) = pick(event) {
            return picked;
        }
    }
}

/// The next DTMF digit reported on `endpoint`.
fn next_digit(
    events: &mpsc::Receiver<MediaEvent>,
    endpoint: EndpointId,
) -> (char, u32, DtmfSource) {
    wait_event(events, |event| match event {
        MediaEvent::Dtmf {
            endpoint: e,
            digit,
            duration_ms,
            source,
        } if e == endpoint => Some((digit, duration_ms, source)),
        _ => None,
    })
}

/// Polls the endpoint's counters (published by the media thread's timeout tick) until `done`.
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

// --- Phones --------------------------------------------------------------------------------

/// A packet a phone received, and when.
struct Received {
    /// When the phone's thread read it.
    at: Instant,
    packet: Vec<u8>,
}

impl Received {
    fn header(&self) -> RtpHeader {
        RtpHeader::parse(&self.packet).expect("the engine sends valid RTP")
    }

    fn payload(&self) -> &[u8] {
        self.header().payload(&self.packet)
    }
}

/// What a phone sends in each 20 ms slot: nothing, a packet, or more (a reordered pair).
type Mouth = Box<dyn FnMut(u32) -> Vec<Vec<u8>> + Send>;

/// A phone: a socket, and once started a thread that speaks on its 20 ms clock and hands what
/// it hears to the test as it arrives.
struct Phone {
    addr: SocketAddr,
    socket: Option<UdpSocket>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    inbox: Option<mpsc::Receiver<Received>>,
    received: Vec<Received>,
}

impl Phone {
    fn bind() -> Phone {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        Phone {
            addr: socket.local_addr().unwrap(),
            socket: Some(socket),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
            inbox: None,
            received: Vec::new(),
        }
    }

    /// Starts talking to `endpoint` (set the engine up first: its commands are applied before
    /// the packets that follow them).
    fn start(&mut self, endpoint: SocketAddr, mut mouth: Mouth) {
        let socket = self.socket.take().expect("a phone starts once");
        let stop = self.stop.clone();
        let (tx, rx) = mpsc::channel();
        self.inbox = Some(rx);
        self.thread = Some(std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let start = Instant::now();
            for slot in 0..MAX_SLOTS {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                for packet in mouth(slot) {
                    socket
                        .send_to(&packet, endpoint)
                        .expect("send to the endpoint");
                }
                let next = start + FRAME * (slot + 1);
                loop {
                    let left = next.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    socket.set_read_timeout(Some(left)).unwrap();
                    match socket.recv_from(&mut buf) {
                        Ok((len, from)) => {
                            let at = Instant::now();
                            if from == endpoint {
                                let packet = buf[..len].to_vec();
                                let _ = tx.send(Received { at, packet });
                            }
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) =>
                        {
                            break;
                        }
                        // An ICMP error from an earlier send (a released endpoint): read on.
                        Err(_) => {}
                    }
                }
            }
        }));
    }

    /// Takes what has arrived so far; returns the count of packets received.
    fn drain(&mut self) -> usize {
        if let Some(inbox) = &self.inbox {
            self.received.extend(inbox.try_iter());
        }
        self.received.len()
    }

    /// Waits until `done` holds of the packets received.
    fn wait_until(&mut self, what: &str, done: impl Fn(&[Received]) -> bool) {
        let deadline = Instant::now() + WAIT;
        self.drain();
        while !done(&self.received) {
            let left = deadline.saturating_duration_since(Instant::now());
            let inbox = self.inbox.as_ref().expect("a started phone");
            match inbox.recv_timeout(left) {
                Ok(received) => self.received.push(received),
                Err(_) => panic!(
                    "{what}: not there before the deadline ({} packets received)",
                    self.received.len()
                ),
            }
        }
    }

    /// Waits until `count` packets have arrived in all.
    fn wait_packets(&mut self, count: usize) {
        self.wait_until("packets", |received| received.len() >= count);
    }

    /// Waits until nothing arrives for `quiet`; returns the count of packets received.
    fn wait_quiet(&mut self, quiet: Duration) -> usize {
        let deadline = Instant::now() + WAIT;
        self.drain();
        let inbox = self.inbox.as_ref().expect("a started phone");
        while let Ok(received) = inbox.recv_timeout(quiet) {
            self.received.push(received);
            assert!(Instant::now() < deadline, "packets keep coming");
        }
        self.received.len()
    }

    /// Stops the phone; returns everything it received.
    fn hang_up(&mut self) -> &[Received] {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the phone thread");
        }
        self.drain();
        &self.received
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A sine, continuous across frames.
struct Tone {
    freq: f64,
    rate: u32,
    n: u64,
}

impl Tone {
    fn new(freq: f64, rate: u32) -> Tone {
        Tone { freq, rate, n: 0 }
    }

    fn fill(&mut self, out: &mut [i16]) {
        for sample in out {
            let t = self.n as f64 / f64::from(self.rate);
            *sample = (AMP * (std::f64::consts::TAU * self.freq * t).sin()).round() as i16;
            self.n += 1;
        }
    }
}

/// A phone's sending side: its encoder and RTP numbering (RFC 3550 §5.1).
struct Speaker {
    encoder: Encoder,
    payload_type: u8,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    /// RTP clock units per 20 ms.
    step: u32,
    frame: Vec<i16>,
}

impl Speaker {
    fn new(kind: CodecKind, payload_type: u8, rate: u32, ssrc: u32) -> Speaker {
        let params = CodecParams::new(kind).with_sample_rate(rate);
        let frame = params.frame_samples();
        Speaker {
            step: params.rtp_ticks(frame),
            encoder: Encoder::new(&params).unwrap(),
            payload_type,
            ssrc,
            sequence: 1000,
            timestamp: 50_000,
            frame: vec![0; frame],
        }
    }

    fn packet(
        &mut self,
        payload_type: u8,
        marker: bool,
        timestamp: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut packet = vec![0; 12 + payload.len()];
        RtpHeader {
            marker,
            payload_type,
            sequence: self.sequence,
            timestamp,
            ssrc: self.ssrc,
            payload_offset: 12,
            payload_len: payload.len(),
        }
        .write(&mut packet);
        packet[12..].copy_from_slice(payload);
        self.sequence = self.sequence.wrapping_add(1);
        packet
    }

    /// The next 20 ms slot as an audio packet of `pcm` (one frame at the phone's rate).
    fn audio(&mut self, pcm: &[i16]) -> Vec<u8> {
        let mut payload = [0u8; 1500];
        let len = self.encoder.encode(pcm, &mut payload).unwrap();
        let first = self.sequence == 1000;
        let timestamp = self.timestamp;
        self.timestamp = self.timestamp.wrapping_add(self.step);
        self.packet(self.payload_type, first, timestamp, &payload[..len])
    }

    /// The next slot of a tone.
    fn tone(&mut self, tone: &mut Tone) -> Vec<u8> {
        let mut pcm = std::mem::take(&mut self.frame);
        tone.fill(&mut pcm);
        let packet = self.audio(&pcm);
        self.frame = pcm;
        packet
    }

    /// A mouth that says `freq` Hz, one packet per slot.
    fn saying(mut self, freq: f64) -> Mouth {
        let rate = self.encoder.params().sample_rate;
        let mut tone = Tone::new(freq, rate);
        Box::new(move |_| vec![self.tone(&mut tone)])
    }
}

/// A phone that only listens.
fn silent() -> Mouth {
    Box::new(|_| Vec::new())
}

// --- What the phones heard -----------------------------------------------------------------

/// Checks a stream the engine generated: one SSRC and payload type, sequence numbers without a
/// gap, timestamps `step` apart, the marker on the first packet only (RFC 3551 §4.1: no DTX
/// here, so one talkspurt).
fn assert_generated_stream(received: &[Received], payload_type: u8, step: u32, who: &str) {
    let headers: Vec<RtpHeader> = received.iter().map(Received::header).collect();
    let first = headers
        .first()
        .unwrap_or_else(|| panic!("{who}: no packets"));
    for (i, h) in headers.iter().enumerate() {
        assert_eq!(
            h.payload_type, payload_type,
            "{who}: payload type of packet {i}"
        );
        assert_eq!(h.ssrc, first.ssrc, "{who}: SSRC of packet {i}");
        assert_eq!(
            h.sequence,
            first.sequence.wrapping_add(i as u16),
            "{who}: sequence of packet {i}"
        );
        assert_eq!(
            h.timestamp,
            first.timestamp.wrapping_add(step * i as u32),
            "{who}: timestamp of packet {i}"
        );
        assert_eq!(h.marker, i == 0, "{who}: marker of packet {i}");
    }
}

/// Decodes the packets of `payload_type` in order, one frame per packet.
fn decode(received: &[Received], kind: CodecKind, rate: u32, payload_type: u8) -> Vec<Vec<i16>> {
    let mut decoder = Decoder::new(&CodecParams::new(kind).with_sample_rate(rate)).unwrap();
    let mut pcm = vec![0i16; rate as usize * 120 / 1000];
    received
        .iter()
        .filter(|r| r.header().payload_type == payload_type)
        .map(|r| {
            let n = decoder.decode(r.payload(), &mut pcm).unwrap();
            pcm[..n].to_vec()
        })
        .collect()
}

/// Goertzel power at `freq`, scaled so a sine of amplitude A reads about A.
fn amplitude(pcm: &[i16], freq: f64, rate: u32) -> f64 {
    let w = std::f64::consts::TAU * freq / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in pcm {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power.max(0.0).sqrt() / pcm.len() as f64
}

/// Every 100 ms of `pcm` carries each of `present` at about the phones' level (within 6 dB)
/// and none of `absent` (26 dB down or more).
fn assert_hears(pcm: &[i16], rate: u32, present: &[f64], absent: &[f64], who: &str) {
    let window = rate as usize / 10;
    assert!(
        pcm.len() >= window,
        "{who}: only {} samples to listen to",
        pcm.len()
    );
    for (w, chunk) in pcm.chunks_exact(window).enumerate() {
        for &freq in present {
            let a = amplitude(chunk, freq, rate);
            assert!(
                a > AMP / 2.0,
                "{who}: {freq} Hz at {a:.0} in window {w}, expected about {AMP}"
            );
        }
        for &freq in absent {
            let a = amplitude(chunk, freq, rate);
            assert!(
                a < AMP / 20.0,
                "{who}: {freq} Hz at {a:.0} in window {w}, expected none"
            );
        }
    }
}

/// The frames from `from` to `to`, concatenated.
fn span(frames: &[Vec<i16>], from: usize, to: usize) -> Vec<i16> {
    frames[from..to.min(frames.len())].concat()
}

// --- 1. Transcoding ------------------------------------------------------------------------

/// PCMA on one side, Opus (48 kHz RTP clock, 8 kHz PCM on the switch's side, as the engine
/// runs it against G.711) on the other.
#[test]
fn transcodes_between_pcma_and_opus() {
    let (engine, _events) = start_engine(23000);
    let (a, b) = engine.allocate_pair().unwrap();
    engine.terminate(
        a.id,
        leg(CodecKind::Pcma, PT_PCMA, 8000, None),
        DtmfOptions::default(),
    );
    engine.terminate(
        b.id,
        leg(CodecKind::Opus, PT_OPUS, 8000, None),
        DtmfOptions::default(),
    );
    let (mut phone_a, mut phone_b) = (Phone::bind(), Phone::bind());
    engine.set_remote(a.id, phone_a.addr);
    engine.set_remote(b.id, phone_b.addr);
    engine.connect(a.id, b.id);
    phone_a.start(
        a.local,
        Speaker::new(CodecKind::Pcma, PT_PCMA, 8000, 0xa).saying(1000.0),
    );
    // Phone B runs Opus at 48 kHz, as a softphone would.
    phone_b.start(
        b.local,
        Speaker::new(CodecKind::Opus, PT_OPUS, 48000, 0xb).saying(600.0),
    );
    phone_a.wait_packets(75);
    phone_b.wait_packets(75);

    let to_b = phone_b.hang_up();
    // RFC 7587 §4.1: the Opus RTP clock is 48 kHz whatever the PCM rate: 960 per 20 ms.
    assert_generated_stream(to_b, PT_OPUS, 960, "B");
    let heard_b = decode(to_b, CodecKind::Opus, 48000, PT_OPUS);
    let end = heard_b.len();
    assert_hears(
        &span(&heard_b, SETTLE, end),
        48000,
        &[1000.0],
        &[600.0],
        "B",
    );

    let to_a = phone_a.hang_up();
    assert_generated_stream(to_a, PT_PCMA, 160, "A");
    assert!(to_a.iter().all(|r| r.header().payload_len == 160));
    let heard_a = decode(to_a, CodecKind::Pcma, 8000, PT_PCMA);
    let end = heard_a.len();
    assert_hears(&span(&heard_a, SETTLE, end), 8000, &[600.0], &[1000.0], "A");
    engine.shutdown();
}

/// A phone that numbered Opus its own way in its SDP (here 96) receives on that number but
/// sends with ours (111, RFC 3264 §6.1): the leg takes both.
#[test]
fn a_leg_hears_its_codec_under_both_numbers() {
    let (engine, _events) = start_engine(23900);
    let (a, b) = engine.allocate_pair().unwrap();
    engine.terminate(
        a.id,
        leg(CodecKind::Pcma, PT_PCMA, 8000, None),
        DtmfOptions::default(),
    );
    let mut opus = leg(CodecKind::Opus, 96, 8000, None);
    opus.also_receives = Some(PT_OPUS);
    engine.terminate(b.id, opus, DtmfOptions::default());
    let (mut phone_a, mut phone_b) = (Phone::bind(), Phone::bind());
    engine.set_remote(a.id, phone_a.addr);
    engine.set_remote(b.id, phone_b.addr);
    engine.connect(a.id, b.id);
    phone_a.start(a.local, silent());
    phone_b.start(
        b.local,
        Speaker::new(CodecKind::Opus, PT_OPUS, 48000, 0xb).saying(600.0),
    );
    phone_a.wait_packets(75);
    let to_b = phone_b.hang_up();
    assert_generated_stream(to_b, 96, 960, "B gets its own number");
    let to_a = phone_a.hang_up();
    let heard_a = decode(to_a, CodecKind::Pcma, 8000, PT_PCMA);
    let end = heard_a.len();
    assert_hears(&span(&heard_a, SETTLE, end), 8000, &[600.0], &[], "A");
    engine.shutdown();
}

/// G.722 (16 kHz audio on an 8 kHz RTP clock, RFC 3551 §4.5.2) against PCMU: the bridge
/// resamples both ways, and nothing of the 8 kHz side's tone mirrors above 4 kHz.
#[test]
fn transcodes_between_g722_and_pcmu_through_the_resampler() {
    let (engine, _events) = start_engine(23100);
    let (a, b) = engine.allocate_pair().unwrap();
    engine.terminate(
        a.id,
        leg(CodecKind::G722, PT_G722, 16000, None),
        DtmfOptions::default(),
    );
    engine.terminate(
        b.id,
        leg(CodecKind::Pcmu, PT_PCMU, 8000, None),
        DtmfOptions::default(),
    );
    let (mut phone_a, mut phone_b) = (Phone::bind(), Phone::bind());
    engine.set_remote(a.id, phone_a.addr);
    engine.set_remote(b.id, phone_b.addr);
    engine.connect(a.id, b.id);
    phone_a.start(
        a.local,
        Speaker::new(CodecKind::G722, PT_G722, 16000, 0xa).saying(1000.0),
    );
    phone_b.start(
        b.local,
        Speaker::new(CodecKind::Pcmu, PT_PCMU, 8000, 0xb).saying(600.0),
    );
    phone_a.wait_packets(75);
    phone_b.wait_packets(75);

    let to_b = phone_b.hang_up();
    assert_generated_stream(to_b, PT_PCMU, 160, "B");
    let heard_b = decode(to_b, CodecKind::Pcmu, 8000, PT_PCMU);
    let end = heard_b.len();
    assert_hears(&span(&heard_b, SETTLE, end), 8000, &[1000.0], &[600.0], "B");

    let to_a = phone_a.hang_up();
    // 20 ms of G.722 is 320 samples in 160 octets, and 160 units of its 8 kHz clock.
    assert_generated_stream(to_a, PT_G722, 160, "A");
    assert!(to_a.iter().all(|r| r.header().payload_len == 160));
    let heard_a = decode(to_a, CodecKind::G722, 16000, PT_G722);
    assert!(heard_a.iter().all(|frame| frame.len() == 320));
    let end = heard_a.len();
    // 7400 Hz: the image of 600 Hz an upsampler without its low-pass would leave.
    assert_hears(
        &span(&heard_a, SETTLE, end),
        16000,
        &[600.0],
        &[1000.0, 7400.0],
        "A",
    );
    engine.shutdown();
}

// --- 2. Jitter -----------------------------------------------------------------------------

/// Phone A's network reorders and loses 5 % of its packets (seeded); the engine's jitter
/// buffer and concealment still give B one packet every 20 ms, gapless, carrying A's tone, and
/// A's quality shows exactly the loss (RFC 3550 A.3: expected minus received).
#[test]
fn reordering_and_loss_are_absorbed_and_counted() {
    const PACKETS: usize = 200;
    let (engine, _events) = start_engine(23200);
    let (a, b) = engine.allocate_pair().unwrap();
    engine.terminate(
        a.id,
        leg(CodecKind::Pcma, PT_PCMA, 8000, None),
        DtmfOptions::default(),
    );
    engine.terminate(
        b.id,
        leg(CodecKind::Pcmu, PT_PCMU, 8000, None),
        DtmfOptions::default(),
    );

    // A's packets, then what the network does to them. The first three and the last pass
    // untouched: the statistics validate a source on its first two packets (A.1), and a loss
    // after the highest sequence number received is not yet a loss.
    let mut speaker = Speaker::new(CodecKind::Pcma, PT_PCMA, 8000, 0xa);
    let mut tone = Tone::new(1000.0, 8000);
    let packets: Vec<Vec<u8>> = (0..PACKETS).map(|_| speaker.tone(&mut tone)).collect();
    let mut rng = StdRng::seed_from_u64(4733);
    let mut lost = [false; PACKETS];
    let mut touched = [false; PACKETS];
    while lost.iter().filter(|&&l| l).count() < PACKETS / 20 {
        let i = rng.random_range(3..PACKETS - 1);
        lost[i] = true;
        touched[i] = true;
    }
    // Swapped neighbours: packet i + 1 is sent in slot i, packet i 20 ms late.
    let mut order: Vec<usize> = (0..PACKETS).collect();
    let mut swaps = 0;
    while swaps < 10 {
        let i = rng.random_range(3..PACKETS - 2);
        if !touched[i] && !touched[i + 1] {
            order.swap(i, i + 1);
            touched[i] = true;
            touched[i + 1] = true;
            swaps += 1;
        }
    }
    let dropped = lost.iter().filter(|&&l| l).count();
    let plan: Vec<Option<Vec<u8>>> = order
        .iter()
        .map(|&i| (!lost[i]).then(|| packets[i].clone()))
        .collect();

    let (mut phone_a, mut phone_b) = (Phone::bind(), Phone::bind());
    engine.set_remote(a.id, phone_a.addr);
    engine.set_remote(b.id, phone_b.addr);
    engine.connect(a.id, b.id);
    phone_a.start(
        a.local,
        Box::new(move |slot| {
            plan.get(slot as usize)
                .cloned()
                .flatten()
                .into_iter()
                .collect()
        }),
    );
    phone_b.start(
        b.local,
        Speaker::new(CodecKind::Pcmu, PT_PCMU, 8000, 0xb).saying(600.0),
    );
    phone_b.wait_packets(PACKETS);

    // The first packet only opens the source's probation: the others are counted.
    let expected = (PACKETS - 1) as i64;
    let stats = wait_stats(&engine, a.id, |s| {
        s.quality.packets_received as i64 + s.quality.packets_lost == expected
    });
    let quality = &stats.quality;
    eprintln!(
        "A's quality with {dropped} of {PACKETS} packets lost and {swaps} pairs swapped: {quality:?}"
    );
    assert_eq!(quality.packets_lost, dropped as i64);
    let percent = 100.0 * dropped as f64 / expected as f64;
    assert!(
        (quality.loss_percent - percent).abs() < 0.01 && (4.0..6.0).contains(&quality.loss_percent),
        "loss {:.2} %, expected {percent:.2} %",
        quality.loss_percent
    );
    assert!(quality.terminated);
    assert_eq!(quality.codec.as_deref(), Some("PCMA"));
    assert!(quality.jitter_buffer_ms.is_some());

    let to_b = phone_b.hang_up();
    // One packet per 20 ms of media, gapless, whatever A's network did (the wall-clock pacing
    // of generated packets is the playback test's subject).
    assert_generated_stream(to_b, PT_PCMU, 160, "B");
    // Until A's last packet played out, every frame B heard carries A's tone: the reordered
    // packets were put back in place and the lost ones concealed (G.711 Appendix I repeats
    // the last pitch period, so a single loss keeps the tone's level).
    let heard = decode(to_b, CodecKind::Pcmu, 8000, PT_PCMU);
    let weak: Vec<(usize, f64)> = heard[SETTLE..PACKETS - 10]
        .iter()
        .enumerate()
        .map(|(i, frame)| (SETTLE + i, amplitude(frame, 1000.0, 8000)))
        .filter(|&(_, a)| a < AMP / 2.0)
        .collect();
    assert!(weak.is_empty(), "frames where A's tone faded: {weak:?}");
    phone_a.hang_up();
    engine.shutdown();
}

// --- 3. DTMF -------------------------------------------------------------------------------

/// A phone's RFC 4733 sender and DTMF tone generator around a Speaker, as a phone drives them:
/// in each slot an event packet if one is due, else audio (silence or tones).
struct Keypad {
    speaker: Speaker,
    events: EventSender,
    tones: DtmfGenerator,
}

impl Keypad {
    fn slot(&mut self) -> Vec<u8> {
        let mut payload = [0u8; TelephoneEvent::LEN];
        if let Some(event) = self.events.next_packet(&mut payload) {
            // RFC 4733 §2.5.1.2: every packet of an event carries its start's timestamp; the
            // slot's timestamp goes by as if audio had been sent.
            let timestamp = event.timestamp(self.speaker.timestamp);
            self.speaker.timestamp = self.speaker.timestamp.wrapping_add(self.speaker.step);
            return self
                .speaker
                .packet(event.payload_type, event.marker, timestamp, &payload);
        }
        let mut pcm = [0i16; 160];
        self.tones.fill(&mut pcm);
        self.speaker.audio(&pcm)
    }
}

/// Digits both ways on a terminated bridge: RFC 4733 events and in-band tones from a phone
/// are reported in order with their source, and the engine sends well-formed events and
/// tones that a phone's own receiver and detector decode.
#[test]
fn dtmf_events_and_tones_both_ways() {
    let (engine, events) = start_engine(23300);
    let (a, b) = engine.allocate_pair().unwrap();
    engine.terminate(
        a.id,
        leg(CodecKind::Pcma, PT_PCMA, 8000, Some(PT_EVENT)),
        DtmfOptions {
            detect_inband: true,
            ..DtmfOptions::default()
        },
    );
    engine.terminate(
        b.id,
        leg(CodecKind::Pcmu, PT_PCMU, 8000, Some(PT_EVENT)),
        DtmfOptions::default(),
    );
    let (mut phone_a, mut phone_b) = (Phone::bind(), Phone::bind());
    engine.set_remote(a.id, phone_a.addr);
    engine.set_remote(b.id, phone_b.addr);
    engine.connect(a.id, b.id);

    // Phone A: silence, "19#" as events from 200 ms, "5*" as tones from 2 s (well after the
    // tones the engine sends B, so B's detector hears the two apart).
    let mut keypad = Keypad {
        speaker: Speaker::new(CodecKind::Pcma, PT_PCMA, 8000, 0xa),
        events: EventSender::new(PT_EVENT, 8000),
        tones: DtmfGenerator::new(8000),
    };
    phone_a.start(
        a.local,
        Box::new(move |slot| {
            if slot == 10 {
                for digit in "19#".chars() {
                    keypad.events.queue(digit, 100).unwrap();
                }
            }
            if slot == 100 {
                keypad.tones.queue_digits("5*", 100, 60).unwrap();
            }
            vec![keypad.slot()]
        }),
    );
    phone_b.start(b.local, {
        let mut speaker = Speaker::new(CodecKind::Pcmu, PT_PCMU, 8000, 0xb);
        Box::new(move |_| vec![speaker.audio(&[0; 160])])
    });
    engine.send_dtmf(b.id, "42", 100, false);

    for expected in ['1', '9', '#'] {
        assert_eq!(
            next_digit(&events, a.id),
            (expected, 100, DtmfSource::Rfc4733),
            "A's events, in order"
        );
    }
    // The three end packets of '2' (event 2) have reached B: its tones may follow.
    phone_b.wait_until("the end of B's '2'", |received| {
        end_packets(received, 2) == 3
    });
    engine.send_dtmf(b.id, "86", 100, true);
    for expected in ['5', '*'] {
        let (digit, duration_ms, source) = next_digit(&events, a.id);
        assert_eq!(
            (digit, source),
            (expected, DtmfSource::Inband),
            "A's tones, in order"
        );
        assert!(
            (80..=130).contains(&duration_ms),
            "'{digit}' lasted {duration_ms} ms, sent for 100"
        );
    }
    // A's tones cross to B too: listen until they are through.
    let heard = phone_b.drain();
    phone_b.wait_packets(heard + 25);
    let to_b = phone_b.hang_up();

    // One stream: events and audio share the sequence numbers, and every slot advances the
    // timestamp by 160 whether it carried audio or an event (RFC 4733 §2.5.1.2).
    let headers: Vec<RtpHeader> = to_b.iter().map(Received::header).collect();
    let first = headers[0];
    let mut event_start = None;
    for (i, h) in headers.iter().enumerate() {
        assert_eq!(h.ssrc, first.ssrc);
        assert_eq!(
            h.sequence,
            first.sequence.wrapping_add(i as u16),
            "sequence of packet {i}"
        );
        let slot_timestamp = first.timestamp.wrapping_add(160 * i as u32);
        if h.payload_type == PT_EVENT {
            let start = *event_start.get_or_insert(slot_timestamp);
            assert_eq!(h.timestamp, start, "an event keeps its start's timestamp");
        } else {
            assert_eq!(h.payload_type, PT_PCMU);
            assert_eq!(h.timestamp, slot_timestamp, "timestamp of audio packet {i}");
            event_start = None;
        }
    }
    // Each digit: the marker on its first packet, the duration growing by 20 ms, and the
    // last one three times with the E bit (RFC 4733 §2.5.1.4).
    let event_packets: Vec<&Received> = to_b
        .iter()
        .filter(|r| r.header().payload_type == PT_EVENT)
        .collect();
    let sent: Vec<(bool, TelephoneEvent)> = event_packets
        .iter()
        .map(|r| {
            (
                r.header().marker,
                TelephoneEvent::parse(r.payload()).unwrap(),
            )
        })
        .collect();
    let mut expected = Vec::new();
    for event in [4u8, 2] {
        for (i, duration) in [160u16, 320, 480, 640, 800, 800, 800]
            .into_iter()
            .enumerate()
        {
            let end = i >= 4;
            expected.push((
                i == 0,
                TelephoneEvent {
                    event,
                    end,
                    volume: 10,
                    duration,
                },
            ));
        }
    }
    assert_eq!(sent, expected, "B's telephone-events");
    let mut receiver = EventReceiver::new(8000);
    let mut digits = Vec::new();
    for r in &event_packets {
        let mut next = receiver.on_packet(r.at, &r.header(), r.payload());
        while let Some(event) = next {
            if let EventDtmf::End { digit, duration_ms } = event {
                digits.push((digit, duration_ms));
            }
            next = receiver.poll_timeout(r.at);
        }
    }
    assert_eq!(digits, [('4', 100), ('2', 100)]);

    // In-band: B's audio, with silence where events took the slot, as B would play it.
    let mut decoder = Decoder::new(&CodecParams::new(CodecKind::Pcmu)).unwrap();
    let mut detector = DtmfDetector::new(8000);
    let mut tones = String::new();
    for r in to_b {
        let mut pcm = [0i16; 160];
        if r.header().payload_type == PT_PCMU {
            decoder.decode(r.payload(), &mut pcm).unwrap();
        }
        detector.process(&pcm, &mut |event| {
            if let InbandEvent::End { digit, .. } = event {
                tones.push(digit);
            }
        });
    }
    assert_eq!(
        tones, "865*",
        "B hears the engine's tones, then A's through the bridge"
    );
    phone_a.hang_up();
    // Events share the stream's sequence numbers with the audio: they are not lost packets.
    let quality = wait_stats(&engine, a.id, |s| s.quality.packets_received >= 100).quality;
    assert_eq!(quality.packets_lost, 0, "{quality:?}");
    engine.shutdown();
}

/// A leg that converts the tones it detects (to events or INFO for the other leg) mutes them,
/// so the other leg does not get the digit twice: A's tones are reported, B's detector hears
/// none of them, and A's voice after them passes as before.
#[test]
fn detected_tones_are_muted_towards_the_other_leg() {
    let (engine, events) = start_engine(23800);
    let (a, b) = engine.allocate_pair().unwrap();
    engine.terminate(
        a.id,
        leg(CodecKind::Pcma, PT_PCMA, 8000, None),
        DtmfOptions {
            detect_inband: true,
            mute_detected: true,
        },
    );
    engine.terminate(
        b.id,
        leg(CodecKind::Pcmu, PT_PCMU, 8000, None),
        DtmfOptions::default(),
    );
    let (mut phone_a, mut phone_b) = (Phone::bind(), Phone::bind());
    engine.set_remote(a.id, phone_a.addr);
    engine.set_remote(b.id, phone_b.addr);
    engine.connect(a.id, b.id);
    // Phone A: "5*" as tones from 200 ms, then from 1 s a 1 kHz tone, its voice.
    let mut speaker = Speaker::new(CodecKind::Pcma, PT_PCMA, 8000, 0xa);
    let mut keys = DtmfGenerator::new(8000);
    let mut voice = Tone::new(1000.0, 8000);
    phone_a.start(
        a.local,
        Box::new(move |slot| {
            if slot == 10 {
                keys.queue_digits("5*", 100, 60).unwrap();
            }
            let mut pcm = [0i16; 160];
            if slot >= 50 {
                voice.fill(&mut pcm);
            } else {
                keys.fill(&mut pcm);
            }
            vec![speaker.audio(&pcm)]
        }),
    );
    phone_b.start(b.local, silent());
    for expected in ['5', '*'] {
        let (digit, _, source) = next_digit(&events, a.id);
        assert_eq!(
            (digit, source),
            (expected, DtmfSource::Inband),
            "A's tones, in order"
        );
    }
    phone_b.wait_packets(50 + SETTLE + 20);
    let to_b = phone_b.hang_up();

    let heard = decode(to_b, CodecKind::Pcmu, 8000, PT_PCMU);
    let mut detector = DtmfDetector::new(8000);
    let mut tones = String::new();
    for frame in &heard {
        detector.process(frame, &mut |event| {
            if let InbandEvent::End { digit, .. } = event {
                tones.push(digit);
            }
        });
    }
    assert_eq!(
        tones, "",
        "B hears no digit: A's tones were muted once detected"
    );
    let end = heard.len();
    assert_hears(
        &span(&heard, 50 + SETTLE, end),
        8000,
        &[1000.0],
        &[],
        "B, after the digits",
    );
    phone_a.hang_up();
    engine.shutdown();
}

/// The telephone-event packets with the E bit for `event`.
fn end_packets(received: &[Received], event: u8) -> usize {
    received
        .iter()
        .filter(|r| r.header().payload_type == PT_EVENT)
        .filter_map(|r| TelephoneEvent::parse(r.payload()).ok())
        .filter(|e| e.event == event && e.end)
        .count()
}

// --- 4. Playback ---------------------------------------------------------------------------

/// A solo leg hears what is played to it: 500 ms of tone and 300 ms of silence are 40 frames,
/// then PlaybackDone. The packets the media clock generates are 20 ms apart; their send
/// jitter is printed (CI machines are noisy: only a gross 10 ms is asserted).
#[test]
fn playback_to_a_solo_leg_is_paced_by_the_media_clock() {
    let (engine, events) = start_engine(23400);
    let b = engine.allocate().unwrap();
    engine.terminate(
        b.id,
        leg(CodecKind::Pcmu, PT_PCMU, 8000, None),
        DtmfOptions::default(),
    );
    let mut phone_b = Phone::bind();
    engine.set_remote(b.id, phone_b.addr);
    let player = Player::new(
        vec![
            PlayItem::Tone(ToneSpec::parse("L=1;%(500,0,1000)").unwrap()),
            PlayItem::Silence { ms: 300 },
        ],
        8000,
        false,
    )
    .unwrap();
    // Played before the leg goes solo: its first packet is the prompt's first frame.
    engine.play(b.id, player);
    engine.solo(b.id);
    phone_b.start(b.local, silent());
    wait_event(&events, |event| match event {
        MediaEvent::PlaybackDone { endpoint } if endpoint == b.id => Some(()),
        _ => None,
    });
    let done = Instant::now();
    phone_b.wait_packets(150);
    let to_b = phone_b.hang_up();

    assert_generated_stream(to_b, PT_PCMU, 160, "B");
    let before_done = to_b.iter().filter(|r| r.at < done).count();
    assert!(
        (39..=43).contains(&before_done),
        "{before_done} packets before PlaybackDone, expected the prompt's 40 and the next"
    );
    let heard = decode(to_b, CodecKind::Pcmu, 8000, PT_PCMU);
    let tone: Vec<bool> = heard
        .iter()
        .map(|frame| amplitude(frame, 1000.0, 8000) > 1000.0)
        .collect();
    assert!(
        tone[..25].iter().all(|&t| t),
        "500 ms of tone first: {tone:?}"
    );
    assert!(
        heard[25..].iter().flatten().all(|s| s.abs() < 16),
        "then silence"
    );

    // Pacing is a figure of the media benchmark (`cargo bench -p switchyard-media --bench
    // media`: send jitter p99), not of a test: on a loaded CI machine the media thread waits
    // for the CPU. What a test can hold is the stream's own clock, checked above: one packet
    // per 20 ms of RTP time, gapless.
    engine.shutdown();
}

// --- 5. Conference -------------------------------------------------------------------------

/// Three phones at three rates in a 16 kHz room: each hears the two others and not itself
/// (mix-minus); a muted member is heard by no one, a deaf one hears nothing, a member who
/// leaves stops receiving while the others go on, and closing the room stops everyone's media.
#[test]
fn conference_mixes_minus_self_with_mute_deaf_leave_and_close() {
    let (engine, _events) = start_engine(23500);
    let room = engine.create_conference(16000);
    let legs = [
        (CodecKind::Pcmu, PT_PCMU, 8000, 500.0),
        (CodecKind::Pcma, PT_PCMA, 8000, 1100.0),
        (CodecKind::Opus, PT_OPUS, 16000, 1700.0),
    ];
    let mut endpoints = Vec::new();
    let mut phones = Vec::new();
    for (i, &(kind, pt, rate, freq)) in legs.iter().enumerate() {
        let ep = engine.allocate_for(room).unwrap();
        engine.terminate(ep.id, leg(kind, pt, rate, None), DtmfOptions::default());
        let mut phone = Phone::bind();
        engine.set_remote(ep.id, phone.addr);
        engine.join_conference(room, ep.id, false, false, None);
        phone.start(
            ep.local,
            Speaker::new(kind, pt, rate, 0x10 + i as u32).saying(freq),
        );
        endpoints.push(ep.id);
        phones.push(phone);
    }
    let (a, b, c) = (endpoints[0], endpoints[1], endpoints[2]);
    // Phase boundaries, as each phone's count of packets received when the change was made.
    let mut marks: Vec<Vec<usize>> = Vec::new();
    let mut phase = |phones: &mut Vec<Phone>, active: &[usize]| {
        let mark: Vec<usize> = phones.iter_mut().map(Phone::drain).collect();
        for &i in active {
            phones[i].wait_packets(mark[i] + SETTLE + 20);
        }
        marks.push(mark);
    };
    phase(&mut phones, &[0, 1, 2]);
    engine.set_conference_member(room, a, true, false);
    phase(&mut phones, &[0, 1, 2]);
    engine.set_conference_member(room, a, false, false);
    engine.set_conference_member(room, b, false, true);
    phase(&mut phones, &[0, 1, 2]);
    engine.set_conference_member(room, b, false, false);
    engine.leave_conference(room, c, None);
    phase(&mut phones, &[0, 1]);
    let after_leave = marks[3][2];
    engine.close_conference(room);
    let after_close: Vec<usize> = phones.iter_mut().map(Phone::drain).collect();
    marks.push(after_close.clone());

    let left_c = phones[2].wait_quiet(Duration::from_millis(300));
    assert!(
        left_c <= after_leave + 3,
        "C got {} packets after leaving",
        left_c - after_leave
    );
    for i in [0, 1] {
        let total = phones[i].wait_quiet(Duration::from_millis(300));
        assert!(
            total <= after_close[i] + 3,
            "phone {i} got {} packets after the room closed",
            total - after_close[i]
        );
    }

    let (fa, fb, fc) = (500.0, 1100.0, 1700.0);
    let heard: Vec<Vec<Vec<i16>>> = phones
        .iter_mut()
        .zip(&legs)
        .map(|(phone, &(kind, pt, rate, _))| decode(phone.hang_up(), kind, rate, pt))
        .collect();
    let window =
        |who: usize, p: usize| span(&heard[who], marks[p][who] + SETTLE, marks[p + 1][who]);
    // Everyone in.
    assert_hears(&window(0, 0), 8000, &[fb, fc], &[fa], "A, all in");
    assert_hears(&window(1, 0), 8000, &[fa, fc], &[fb], "B, all in");
    assert_hears(&window(2, 0), 16000, &[fa, fb], &[fc], "C, all in");
    // A muted.
    assert_hears(&window(0, 1), 8000, &[fb, fc], &[fa], "A, muted");
    assert_hears(&window(1, 1), 8000, &[fc], &[fa, fb], "B, A muted");
    assert_hears(&window(2, 1), 16000, &[fb], &[fa, fc], "C, A muted");
    // B deaf.
    assert_hears(&window(0, 2), 8000, &[fb, fc], &[fa], "A, B deaf");
    assert_hears(&window(1, 2), 8000, &[], &[fa, fb, fc], "B, deaf");
    assert!(
        window(1, 2).iter().all(|s| s.abs() < 16),
        "a deaf member hears silence"
    );
    assert_hears(&window(2, 2), 16000, &[fa, fb], &[fc], "C, B deaf");
    // C gone.
    assert_hears(&window(0, 3), 8000, &[fb], &[fa, fc], "A, C gone");
    assert_hears(&window(1, 3), 8000, &[fa], &[fb, fc], "B, C gone");
    engine.shutdown();
}

// --- 6. Recording --------------------------------------------------------------------------

/// A recorder whose finished recordings arrive on a channel.
fn recorder() -> (Recorder, mpsc::Receiver<RecordingInfo>) {
    let (tx, rx) = mpsc::channel();
    let recorder = Recorder::start(
        None,
        Box::new(move |info| {
            let _ = tx.send(info);
        }),
    )
    .unwrap();
    (recorder, rx)
}

/// The two channels of a stereo 16-bit WAV.
fn read_stereo(path: &Path, rate: u32) -> (Vec<i16>, Vec<i16>) {
    let mut reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, rate, 16)
    );
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}

/// A transcoded bridge (PCMA and G.722) recorded in stereo at 16 kHz: A on the left, B on
/// the right; the paused span is silence, the timeline keeps its length.
#[test]
fn records_a_transcoded_bridge_in_stereo_and_pauses_with_silence() {
    let (engine, _events) = start_engine(23600);
    let (recorder, finished) = recorder();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = engine.allocate_pair().unwrap();
    engine.terminate(
        a.id,
        leg(CodecKind::Pcma, PT_PCMA, 8000, None),
        DtmfOptions::default(),
    );
    engine.terminate(
        b.id,
        leg(CodecKind::G722, PT_G722, 16000, None),
        DtmfOptions::default(),
    );
    let (mut phone_a, mut phone_b) = (Phone::bind(), Phone::bind());
    engine.set_remote(a.id, phone_a.addr);
    engine.set_remote(b.id, phone_b.addr);
    engine.connect(a.id, b.id);
    let path = dir.path().join("transcoded.wav");
    let sink = recorder
        .open(RecordingSpec {
            call_uuid: "transcoded".into(),
            layout: Layout::Stereo,
            sample_rate: 16000,
            path: path.clone(),
            encrypt: false,
        })
        .unwrap();
    engine.record(a.id, sink, 16000);
    phone_a.start(
        a.local,
        Speaker::new(CodecKind::Pcma, PT_PCMA, 8000, 0xa).saying(1000.0),
    );
    phone_b.start(
        b.local,
        Speaker::new(CodecKind::G722, PT_G722, 16000, 0xb).saying(600.0),
    );
    phone_a.wait_packets(50);
    engine.pause_recording(a.id, true);
    phone_a.wait_packets(75);
    engine.pause_recording(a.id, false);
    phone_a.wait_packets(100);
    engine.stop_recording(a.id);
    let info = finished.recv_timeout(WAIT).expect("the recording finishes");
    phone_a.hang_up();
    phone_b.hang_up();

    assert_eq!(info.error, None);
    assert_eq!(info.pauses.len(), 1, "{info:?}");
    let pause = info.pauses[0];
    let paused_ms = pause.end_ms - pause.start_ms;
    assert!(
        (350..=650).contains(&paused_ms),
        "paused for {paused_ms} ms, about 500 expected"
    );
    let (left, right) = read_stereo(&path, 16000);
    assert_eq!(left.len() as u64, info.duration_ms * 16);
    let at = |ms: u64| (ms * 16) as usize;
    // 20 ms in from each edge of the pause: the frame straddling it may hold either.
    let quiet = at(pause.start_ms + 20)..at(pause.end_ms - 20);
    assert!(
        left[quiet.clone()]
            .iter()
            .chain(&right[quiet])
            .all(|&s| s == 0),
        "the pause is recorded as silence"
    );
    // Speech: after the jitter buffers filled, before the pause, and after it.
    for (from, to) in [
        (300, pause.start_ms - 20),
        (pause.end_ms + 100, info.duration_ms - 20),
    ] {
        let (l, r) = (&left[at(from)..at(to)], &right[at(from)..at(to)]);
        assert_hears(l, 16000, &[1000.0], &[600.0], "left (caller)");
        assert_hears(r, 16000, &[600.0], &[1000.0], "right (callee)");
    }
    recorder.shutdown();
    engine.shutdown();
}

/// A relayed bridge recorded through taps: both legs terminated for decoding only, the packets
/// relayed untouched, the file in stereo.
#[test]
fn records_a_relayed_bridge_through_taps() {
    let (engine, _events) = start_engine(23700);
    let (recorder, finished) = recorder();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = engine.allocate_pair().unwrap();
    engine.terminate(
        a.id,
        leg(CodecKind::Pcma, PT_PCMA, 8000, None),
        DtmfOptions::default(),
    );
    engine.terminate(
        b.id,
        leg(CodecKind::Pcma, PT_PCMA, 8000, None),
        DtmfOptions::default(),
    );
    let (mut phone_a, mut phone_b) = (Phone::bind(), Phone::bind());
    engine.set_remote(a.id, phone_a.addr);
    engine.set_remote(b.id, phone_b.addr);
    engine.bridge(a.id, b.id);
    let path = dir.path().join("relayed.wav");
    let sink = recorder
        .open(RecordingSpec {
            call_uuid: "relayed".into(),
            layout: Layout::Stereo,
            sample_rate: 8000,
            path: path.clone(),
            encrypt: false,
        })
        .unwrap();
    engine.record(a.id, sink, 8000);
    phone_a.start(
        a.local,
        Speaker::new(CodecKind::Pcma, PT_PCMA, 8000, 0xa).saying(1000.0),
    );
    phone_b.start(
        b.local,
        Speaker::new(CodecKind::Pcma, PT_PCMA, 8000, 0xb).saying(600.0),
    );
    phone_b.wait_packets(60);
    engine.stop_recording(a.id);
    let info = finished.recv_timeout(WAIT).expect("the recording finishes");
    // Still relayed after the recording: the node that fed the recorder is gone, not the bridge.
    let heard = phone_b.drain();
    phone_b.wait_packets(heard + 10);
    let to_b = phone_b.hang_up();
    let to_a = phone_a.hang_up();

    // Relayed, not re-encoded: each phone gets the other's own packets, numbering and all.
    for (received, ssrc, who) in [(to_b, 0xa, "B"), (to_a, 0xb, "A")] {
        for (i, r) in received.iter().enumerate() {
            let h = r.header();
            assert_eq!(
                (h.ssrc, h.payload_type),
                (ssrc, PT_PCMA),
                "{who}: packet {i}"
            );
            assert_eq!(h.sequence, 1000 + i as u16, "{who}: packet {i}");
        }
    }
    assert_eq!(info.error, None);
    assert!(info.duration_ms >= 800, "{info:?}");
    let (left, right) = read_stereo(&path, 8000);
    let (from, to) = (300 * 8, left.len() - 20 * 8);
    assert_hears(&left[from..to], 8000, &[1000.0], &[600.0], "left (caller)");
    assert_hears(
        &right[from..to],
        8000,
        &[600.0],
        &[1000.0],
        "right (callee)",
    );
    recorder.shutdown();
    engine.shutdown();
}

/// `count` frames of a media tap, in order, caller and callee apart.
fn tap_frames(tap: &TapReceiver, count: usize, rate: u32) -> (Vec<i16>, Vec<i16>) {
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for _ in 0..count {
        let frame = tap.recv_timeout(WAIT).expect("a tapped frame every 20 ms");
        assert_eq!(frame.rate(), rate);
        assert_eq!(frame.samples_per_channel(), rate as usize / 50);
        for pair in frame.stereo().chunks_exact(2) {
            left.push(pair[0]);
            right.push(pair[1]);
        }
    }
    (left, right)
}

/// A transcoded bridge (PCMA and G.722) tapped at 16 kHz: 20 ms stereo frames, the caller on
/// the left, the callee on the right; untapping ends the reader's stream, not the call.
#[test]
fn taps_a_transcoded_bridge_in_stereo_frames_until_untapped() {
    let (engine, _events) = start_engine(24100);
    let (a, b) = engine.allocate_pair().unwrap();
    engine.terminate(
        a.id,
        leg(CodecKind::Pcma, PT_PCMA, 8000, None),
        DtmfOptions::default(),
    );
    engine.terminate(
        b.id,
        leg(CodecKind::G722, PT_G722, 16000, None),
        DtmfOptions::default(),
    );
    let (mut phone_a, mut phone_b) = (Phone::bind(), Phone::bind());
    engine.set_remote(a.id, phone_a.addr);
    engine.set_remote(b.id, phone_b.addr);
    engine.connect(a.id, b.id);
    assert!(
        engine.tap(a.id, 48000).is_err(),
        "a tap runs at 8 or 16 kHz"
    );
    let tap = engine.tap(a.id, 16000).unwrap();
    phone_a.start(
        a.local,
        Speaker::new(CodecKind::Pcma, PT_PCMA, 8000, 0xa).saying(1000.0),
    );
    phone_b.start(
        b.local,
        Speaker::new(CodecKind::G722, PT_G722, 16000, 0xb).saying(600.0),
    );
    let (left, right) = tap_frames(&tap, 50, 16000);
    // After the jitter buffers filled.
    let from = 2 * SETTLE * 320;
    assert_hears(&left[from..], 16000, &[1000.0], &[600.0], "left (caller)");
    assert_hears(&right[from..], 16000, &[600.0], &[1000.0], "right (callee)");
    assert_eq!(tap.dropped(), 0, "a reader keeping up loses nothing");

    engine.untap(a.id);
    // Frames queued before the untap may still come, then the end.
    let ended = loop {
        match tap.recv_timeout(WAIT) {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert_eq!(ended, mpsc::RecvTimeoutError::Disconnected);
    // The call goes on, still transcoded.
    let heard = phone_b.drain();
    phone_b.wait_packets(heard + 10);
    let to_b = phone_b.hang_up();
    assert!(to_b.iter().all(|r| r.header().payload_type == PT_G722));
    phone_a.hang_up();
    engine.shutdown();
}

/// A relayed bridge tapped beside its recorder: the two are independent (stopping the
/// recording keeps the tap and the node feeding it), a reader that falls behind costs frames
/// that are dropped and counted while the ring stays full, and releasing the call ends the tap.
#[test]
fn taps_a_relayed_bridge_beside_its_recorder_and_counts_dropped_frames() {
    let (engine, _events) = start_engine(24200);
    let (recorder, finished) = recorder();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = engine.allocate_pair().unwrap();
    for ep in [a.id, b.id] {
        engine.terminate(
            ep,
            leg(CodecKind::Pcma, PT_PCMA, 8000, None),
            DtmfOptions::default(),
        );
    }
    let (mut phone_a, mut phone_b) = (Phone::bind(), Phone::bind());
    engine.set_remote(a.id, phone_a.addr);
    engine.set_remote(b.id, phone_b.addr);
    engine.bridge(a.id, b.id);
    let sink = recorder
        .open(RecordingSpec {
            call_uuid: "tapped".into(),
            layout: Layout::Stereo,
            sample_rate: 8000,
            path: dir.path().join("tapped.wav"),
            encrypt: false,
        })
        .unwrap();
    engine.record(a.id, sink, 8000);
    let tap = engine.tap(a.id, 8000).unwrap();
    phone_a.start(
        a.local,
        Speaker::new(CodecKind::Pcma, PT_PCMA, 8000, 0xa).saying(1000.0),
    );
    phone_b.start(
        b.local,
        Speaker::new(CodecKind::Pcma, PT_PCMA, 8000, 0xb).saying(600.0),
    );
    phone_b.wait_packets(20);
    engine.stop_recording(a.id);
    let info = finished.recv_timeout(WAIT).expect("the recording finishes");
    assert_eq!(info.error, None);
    // Nobody reads for 1.6 s: the ring of one second fills, later frames are dropped.
    phone_b.wait_packets(100);
    assert!(tap.dropped() > 0, "a full ring drops frames");
    let mut queued = 0;
    while tap.try_recv().is_ok() {
        queued += 1;
    }
    assert!(queued >= 49, "the ring held a second of frames: {queued}");
    // Still tapped after the recording stopped: fresh frames keep coming, in stereo.
    let (left, right) = tap_frames(&tap, 25, 8000);
    assert_hears(&left, 8000, &[1000.0], &[600.0], "left (caller)");
    assert_hears(&right, 8000, &[600.0], &[1000.0], "right (callee)");

    engine.release(a.id);
    engine.release(b.id);
    let ended = loop {
        match tap.recv_timeout(WAIT) {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert_eq!(ended, mpsc::RecvTimeoutError::Disconnected);
    // Over for good: the blocking `recv` does not wait either.
    assert!(tap.recv().is_err());
    phone_a.hang_up();
    phone_b.hang_up();
    recorder.shutdown();
    engine.shutdown();
}
