//! A leg whose media we terminate: RTP in → jitter buffer → decoder → 20 ms PCM frames, and
//! 20 ms PCM frames → playback / DTMF overlay → encoder → RTP out, with RTCP reports both ways.
//!
//! Sans-IO: the reactor hands in packets with the time they arrived and asks for frames and
//! packets on its 20 ms tick; this module owns no socket and reads no clock. Every buffer is
//! allocated when the leg is created, so the steady state allocates nothing.

use std::time::{Duration, Instant, SystemTime};

use switchyard_codec::{CodecKind, CodecParams, Decoder, Encoder, OpusFmtp};
use switchyard_dsp::dtmf::{DtmfDetector, DtmfEvent as InbandEvent, DtmfGenerator};
use switchyard_dsp::play::Player;
use switchyard_rtp::event::{DtmfEvent as EventDtmf, EventReceiver, EventSender};
use switchyard_rtp::jitter::{JitterBuffer, JitterConfig, Playout};
use switchyard_rtp::packet::RtpHeader;
use switchyard_rtp::rtcp::{self, RtcpPacket, RtcpScheduler, RttEstimator};
use switchyard_rtp::stats::ReceiveStats;

use crate::{DtmfSource, LegQuality};

/// What one leg speaks, as negotiated in SDP.
#[derive(Clone, Debug, PartialEq)]
pub struct LegCodec {
    pub kind: CodecKind,
    /// The payload type of the voice codec on this leg (the leg's SDP numbering).
    pub payload_type: u8,
    /// The PCM rate we exchange with the codec: 8000 for G.711, 16000 for G.722, and for Opus
    /// what the graph around the leg needs (8000 when bridged to G.711 saves a resampler).
    pub sample_rate: u32,
    /// Opus parameters from the peer's fmtp (FEC, DTX, max playback rate).
    pub opus: OpusFmtp,
    /// The RFC 4733 telephone-event payload type, when the leg negotiated one.
    pub telephone_event: Option<u8>,
    /// Another number the far end may send the voice codec with: the one in OUR SDP, when its
    /// own SDP numbered the codec differently (RFC 3264 §6.1: each side receives on the
    /// numbers it listed, so a peer that renumbers sends with ours and receives on its own).
    pub also_receives: Option<u8>,
}

impl LegCodec {
    /// "PCMA", "opus/48000": how CDRs and `show channels` name it.
    pub fn label(&self) -> String {
        self.label_str().to_owned()
    }

    fn label_str(&self) -> &'static str {
        match self.kind {
            CodecKind::Opus => "opus/48000",
            kind => kind.encoding_name(),
        }
    }

    fn frame_samples(&self) -> usize {
        self.sample_rate as usize / 50
    }
}

/// How DTMF is detected on a terminated leg, besides RFC 4733 events (always understood when
/// a telephone-event payload type was negotiated).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DtmfOptions {
    /// Run the in-band (Goertzel) detector on what the leg sends us: PSTN legs and phones that
    /// play tones instead of sending events.
    pub detect_inband: bool,
    /// Silence the audio of a detected tone, so it does not reach the other leg as well as
    /// the events or INFO it is converted to (a phone listening for both would count twice).
    /// The first ~36 ms of each tone pass, too short for a receiver to accept as a digit.
    pub mute_detected: bool,
}

/// Something a leg noticed while processing, for the reactor to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LegNotice {
    Dtmf {
        digit: char,
        duration_ms: u32,
        source: DtmfSource,
    },
    PlaybackDone,
}

/// Payloads of up to 120 ms of 48 kHz audio come out of one Opus packet.
const MAX_DECODED: usize = 48_000 * 120 / 1000;
const MAX_PAYLOAD: usize = 1500;

/// A small ring of decoded samples: a packet may carry 10, 30 or 60 ms, and frames leave 20 ms
/// at a time.
struct PcmFifo {
    ring: Box<[i16]>,
    start: usize,
    len: usize,
}

impl PcmFifo {
    fn new(capacity: usize) -> PcmFifo {
        PcmFifo {
            ring: vec![0; capacity].into_boxed_slice(),
            start: 0,
            len: 0,
        }
    }

    /// Appends; when full, the oldest samples go (the buffer ahead already decided timing).
    fn push(&mut self, samples: &[i16]) {
        let cap = self.ring.len();
        for &s in samples {
            if self.len == cap {
                self.start = (self.start + 1) % cap;
                self.len -= 1;
            }
            self.ring[(self.start + self.len) % cap] = s;
            self.len += 1;
        }
    }

    fn take(&mut self, out: &mut [i16]) -> usize {
        let n = out.len().min(self.len);
        let cap = self.ring.len();
        for (i, slot) in out.iter_mut().take(n).enumerate() {
            *slot = self.ring[(self.start + i) % cap];
        }
        self.start = (self.start + n) % cap;
        self.len -= n;
        n
    }
}

pub(crate) struct LegMedia {
    pub(crate) codec: LegCodec,
    decoder: Decoder,
    encoder: Encoder,
    jitter: JitterBuffer,
    fifo: PcmFifo,
    decoded: Box<[i16]>,
    /// 20 ms in RTP clock units (160 for G.711 and G.722, 960 for Opus).
    frame_units: u32,
    stats: ReceiveStats,
    events_in: Option<EventReceiver>,
    events_out: Option<EventSender>,
    inband_detector: Option<DtmfDetector>,
    /// A detected tone is sounding (between its Start and End).
    inband_sounding: bool,
    mute_detected: bool,
    inband_generator: DtmfGenerator,
    player: Option<Player>,
    /// True once something was received: before that, frames are silence without concealment.
    started: bool,
    // The sender side (RFC 3550 §5.1).
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    first_packet: bool,
    packets_sent: u32,
    octets_sent: u32,
    rtcp_scheduler: RtcpScheduler,
    rtt: RttEstimator,
    /// The last SR from the far end: its NTP middle 32 bits and when it arrived (for LSR/DLSR).
    last_sr: Option<(u32, Instant)>,
    remote_ssrc: Option<u32>,
    rtt_ms: Option<f64>,
    cname: String,
    payload: Box<[u8; MAX_PAYLOAD]>,
}

impl LegMedia {
    pub(crate) fn new(
        codec: LegCodec,
        dtmf: DtmfOptions,
        now: Instant,
        seed: u64,
    ) -> Result<LegMedia, crate::Error> {
        let params = CodecParams {
            kind: codec.kind,
            sample_rate: codec.sample_rate,
            opus: codec.opus.clone(),
            complexity: 5,
        };
        let decoder = Decoder::new(&params).map_err(crate::Error::Codec)?;
        let encoder = Encoder::new(&params).map_err(crate::Error::Codec)?;
        let clock = codec.kind.rtp_clock_rate();
        let frame_units = clock / 50;
        let rate = codec.sample_rate;
        let events_out = codec.telephone_event.map(|pt| EventSender::new(pt, clock));
        let events_in = codec.telephone_event.map(|_| EventReceiver::new(clock));
        Ok(LegMedia {
            decoder,
            encoder,
            jitter: JitterBuffer::new(
                clock,
                JitterConfig {
                    min_delay: Duration::from_millis(20),
                    max_delay: Duration::from_millis(200),
                    capacity: 64,
                },
            ),
            // 300 ms of room: a burst of long packets never overflows between two ticks.
            fifo: PcmFifo::new(rate as usize * 3 / 10),
            decoded: vec![0; MAX_DECODED].into_boxed_slice(),
            frame_units,
            stats: ReceiveStats::new(clock),
            events_in,
            events_out,
            inband_detector: dtmf.detect_inband.then(|| DtmfDetector::new(rate)),
            inband_sounding: false,
            mute_detected: dtmf.mute_detected,
            inband_generator: DtmfGenerator::new(rate),
            player: None,
            started: false,
            ssrc: (seed >> 32) as u32 ^ seed as u32,
            sequence: (seed >> 16) as u16,
            timestamp: (seed >> 7) as u32,
            first_packet: true,
            packets_sent: 0,
            octets_sent: 0,
            rtcp_scheduler: RtcpScheduler::new(now, seed),
            rtt: RttEstimator::new(),
            last_sr: None,
            remote_ssrc: None,
            rtt_ms: None,
            cname: format!("switchyard-{:08x}", seed as u32),
            payload: Box::new([0; MAX_PAYLOAD]),
            codec,
        })
    }

    pub(crate) fn sample_rate(&self) -> u32 {
        self.codec.sample_rate
    }

    pub(crate) fn frame_samples(&self) -> usize {
        self.codec.frame_samples()
    }

    /// An RTP packet from the far end, already past latching.
    pub(crate) fn on_rtp(&mut self, now: Instant, packet: &[u8], notices: &mut Vec<LegNotice>) {
        let Ok(header) = RtpHeader::parse(packet) else {
            return;
        };
        let payload = header.payload(packet);
        let voice = header.payload_type == self.codec.payload_type
            || Some(header.payload_type) == self.codec.also_receives;
        if !voice {
            // Events and comfort noise share the stream's sequence numbers: without them
            // every digit would count as lost packets.
            self.stats.on_packet_untimed(now, &header);
        }
        if Some(header.payload_type) == self.codec.telephone_event {
            if let Some(receiver) = &mut self.events_in {
                // One packet can end one event and start the next: drain both.
                let first = receiver.on_packet(now, &header, payload);
                report_events(receiver, first, now, notices);
            }
            return;
        }
        if !voice {
            // Comfort noise or a codec we did not negotiate: nothing we can decode.
            return;
        }
        self.remote_ssrc = Some(header.ssrc);
        self.stats.on_packet(now, &header);
        self.jitter.insert(now, &header, payload);
        self.started = true;
    }

    /// RTCP from the far end: SRs for our receiver reports' LSR, report blocks about our stream
    /// for the round-trip time (RFC 3550 §6.4.1).
    pub(crate) fn on_rtcp(&mut self, now: Instant, packet: &[u8]) {
        let ours = self.ssrc;
        let mut last_sr = None;
        let mut rtt = None;
        let _ = rtcp::parse_compound(packet, |p| match p {
            RtcpPacket::SenderReport { info, reports, .. } => {
                last_sr = Some((rtcp::ntp_middle(info.ntp), now));
                for block in reports.filter(|b| b.ssrc == ours) {
                    rtt = self.rtt.rtt_from_block(&block, now).or(rtt);
                }
            }
            RtcpPacket::ReceiverReport { reports, .. } => {
                for block in reports.filter(|b| b.ssrc == ours) {
                    rtt = self.rtt.rtt_from_block(&block, now).or(rtt);
                }
            }
            _ => {}
        });
        if last_sr.is_some() {
            self.last_sr = last_sr;
        }
        if let Some(rtt) = rtt {
            self.rtt_ms = Some(rtt.as_secs_f64() * 1000.0);
        }
    }

    /// The next 20 ms of what the far end said, at the leg's PCM rate: decoded from the jitter
    /// buffer, concealed where packets are missing, silence before anything arrived. Returns
    /// false when the frame is silence because nothing has arrived yet.
    pub(crate) fn read_frame(
        &mut self,
        now: Instant,
        out: &mut [i16],
        notices: &mut Vec<LegNotice>,
    ) -> bool {
        let frame = self.frame_samples();
        let out = &mut out[..frame];
        if let Some(receiver) = &mut self.events_in {
            // Ends of digits whose end packets were all lost.
            let first = receiver.poll_timeout(now);
            report_events(receiver, first, now, notices);
        }
        if !self.started {
            // Nothing received yet (a prompt played to a phone that has not spoken): silence,
            // without running concealment over an empty buffer every frame.
            out.fill(0);
            return false;
        }
        // The buffer hands out whole packets until the frame is covered (see its contract).
        for _ in 0..64 {
            match self.jitter.pop(now, self.frame_units) {
                Playout::Packet { payload, .. } => {
                    let n = self.decoder.decode(payload, &mut self.decoded).unwrap_or(0);
                    self.fifo.push(&self.decoded[..n]);
                }
                Playout::Lost {
                    next_payload,
                    units,
                } => {
                    let samples = units_to_samples(&self.codec, units, self.decoded.len());
                    let n = match next_payload {
                        Some(next) => self
                            .decoder
                            .decode_fec(next, &mut self.decoded[..samples])
                            .unwrap_or(0),
                        None => self.decoder.conceal(&mut self.decoded[..samples]),
                    };
                    self.fifo.push(&self.decoded[..n]);
                }
                Playout::Gap { units } => {
                    let samples = units_to_samples(&self.codec, units, self.decoded.len());
                    let n = self.decoder.conceal(&mut self.decoded[..samples]);
                    self.fifo.push(&self.decoded[..n]);
                }
                Playout::NotYet => break,
            }
        }
        let got = self.fifo.take(out);
        out[got..].fill(0);
        if let Some(detector) = &mut self.inband_detector {
            let was_sounding = self.inband_sounding;
            let sounding = &mut self.inband_sounding;
            detector.process(out, &mut |event| match event {
                InbandEvent::Start { .. } => *sounding = true,
                InbandEvent::End { digit, duration_ms } => {
                    *sounding = false;
                    push_notice(
                        notices,
                        LegNotice::Dtmf {
                            digit,
                            duration_ms,
                            source: DtmfSource::Inband,
                        },
                    );
                }
            });
            // The frame in which a tone ended still holds its tail.
            if self.mute_detected && (was_sounding || self.inband_sounding) {
                out.fill(0);
            }
        }
        self.started
    }

    pub(crate) fn play(&mut self, player: Player) {
        self.player = Some(player);
    }

    pub(crate) fn stop_playback(&mut self) -> bool {
        self.player.take().is_some()
    }

    /// Queues DTMF to send on this leg: as RFC 4733 events when negotiated, else as tones.
    pub(crate) fn send_dtmf(&mut self, digits: &str, duration_ms: u32, inband: bool) {
        match (&mut self.events_out, inband) {
            (Some(sender), false) => {
                for digit in digits.chars() {
                    if let Err(e) = sender.queue(digit, duration_ms) {
                        tracing::warn!(%digit, error = %e, "cannot send DTMF event");
                    }
                }
            }
            _ => {
                if let Err(e) = self.inband_generator.queue_digits(digits, duration_ms, 60) {
                    tracing::warn!(digits, error = %e, "cannot generate DTMF tones");
                }
            }
        }
    }

    /// Builds the next 20 ms RTP packet into `out` from `pcm` (one frame at the leg's rate),
    /// after playback and DTMF tones have had their say. None when nothing is to be sent this
    /// slot (an Opus DTX frame). The timestamp advances either way (RFC 3550 §5.1).
    pub(crate) fn write_frame(
        &mut self,
        pcm: &mut [i16],
        out: &mut [u8],
        notices: &mut Vec<LegNotice>,
    ) -> Option<usize> {
        let frame = self.frame_samples();
        let Some(pcm) = pcm.get_mut(..frame) else {
            tracing::error!(
                frame,
                got = pcm.len(),
                "a frame shorter than the leg's: not sent"
            );
            return None;
        };
        if let Some(player) = &mut self.player
            && !player.next_frame(pcm)
        {
            self.player = None;
            push_notice(notices, LegNotice::PlaybackDone);
        }
        if !self.inband_generator.is_idle() {
            self.inband_generator.fill(pcm);
        }
        let timestamp = self.timestamp;
        self.timestamp = self.timestamp.wrapping_add(self.frame_units);
        if let Some(sender) = &mut self.events_out
            && sender.is_active()
            && let Some(event) = sender.next_packet(&mut self.payload[..])
        {
            // RFC 4733 §2.5.1.2: every packet of one event carries the timestamp of its start.
            let ts = event.timestamp(timestamp);
            return Some(self.packetize(out, event.payload_type, event.marker, ts, event.len));
        }
        let len = match self.encoder.encode(pcm, &mut self.payload[..]) {
            Ok(len) => len,
            Err(e) => {
                tracing::warn!(error = %e, "encoder failed; frame skipped");
                return None;
            }
        };
        // An Opus DTX frame (1–2 bytes) need not be sent: the far end conceals or plays
        // comfort noise until real frames resume (RFC 7587 §3.1.3).
        if self.codec.kind == CodecKind::Opus && self.codec.opus.use_dtx && len <= 2 {
            self.first_packet = true;
            return None;
        }
        // RFC 3551 §4.1: the marker starts a talkspurt (the first packet, or after DTX).
        let marker = std::mem::replace(&mut self.first_packet, false);
        let pt = self.codec.payload_type;
        Some(self.packetize(out, pt, marker, timestamp, len))
    }

    fn packetize(&mut self, out: &mut [u8], pt: u8, marker: bool, ts: u32, len: usize) -> usize {
        let header = RtpHeader {
            marker,
            payload_type: pt,
            sequence: self.sequence,
            timestamp: ts,
            ssrc: self.ssrc,
            payload_offset: 12,
            payload_len: len,
        };
        self.sequence = self.sequence.wrapping_add(1);
        let head = header.write(out);
        out[head..head + len].copy_from_slice(&self.payload[..len]);
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(len as u32);
        head + len
    }

    /// An RTCP compound report when one is due (RFC 3550 §6.2): an SR once we have sent, with
    /// a report block about the far end's stream once it has sent.
    pub(crate) fn poll_rtcp(
        &mut self,
        now: Instant,
        wall: SystemTime,
        out: &mut [u8],
    ) -> Option<usize> {
        if !self.rtcp_scheduler.poll_send(now) {
            return None;
        }
        let ntp = rtcp::ntp_from_system_time(wall);
        let sender = (self.packets_sent > 0).then_some(rtcp::SenderInfo {
            ntp,
            rtp_ts: self.timestamp,
            packets: self.packets_sent,
            octets: self.octets_sent,
        });
        if sender.is_some() {
            self.rtt.sr_sent(self.ssrc, rtcp::ntp_middle(ntp), now);
        }
        let block = self
            .remote_ssrc
            .map(|ssrc| self.stats.report_block(ssrc, now, self.last_sr));
        let blocks = block.as_slice();
        Some(rtcp::write_report(
            out,
            self.ssrc,
            sender,
            blocks,
            &self.cname,
        ))
    }

    /// Writes this leg's quality over `quality` (the published one), keeping its codec label:
    /// the housekeeping tick that publishes it must not allocate.
    /// While the far end holds the call we send nothing, but time goes on: the next packet
    /// starts a talkspurt (RFC 3551 §4.1 marker).
    pub(crate) fn mark_talkspurt(&mut self) {
        self.first_packet = true;
    }

    pub(crate) fn quality(&self, quality: &mut LegQuality) {
        let snapshot = self.stats.snapshot();
        *quality = LegQuality {
            codec: crate::reuse_label(quality.codec.take(), self.codec.label_str()),
            packets_received: snapshot.packets,
            packets_lost: snapshot.lost,
            loss_percent: snapshot.loss_fraction_total * 100.0,
            jitter_ms: snapshot.jitter_ms,
            rtt_ms: self.rtt_ms,
            jitter_buffer_ms: Some(self.jitter.stats().current_delay_ms),
            terminated: true,
        };
    }
}

/// Reports `first` and whatever else the receiver has ready (the drain rule of
/// `EventReceiver`): each ended digit becomes a notice.
fn report_events(
    receiver: &mut EventReceiver,
    first: Option<EventDtmf>,
    now: Instant,
    notices: &mut Vec<LegNotice>,
) {
    let mut next = first;
    while let Some(event) = next {
        if let EventDtmf::End { digit, duration_ms } = event {
            push_notice(
                notices,
                LegNotice::Dtmf {
                    digit,
                    duration_ms,
                    source: DtmfSource::Rfc4733,
                },
            );
        }
        next = receiver.poll_timeout(now);
    }
}

/// RTP clock units as PCM samples at the leg's rate (G.722: 8000 Hz clock, 16 kHz audio).
fn units_to_samples(codec: &LegCodec, units: u32, max: usize) -> usize {
    let clock = u64::from(codec.kind.rtp_clock_rate());
    let samples = u64::from(units) * u64::from(codec.sample_rate) / clock;
    (samples as usize).min(max)
}

/// Notices are few (a DTMF digit, the end of a prompt) and the vector keeps its capacity, so
/// pushing does not allocate after the first few.
fn push_notice(notices: &mut Vec<LegNotice>, notice: LegNotice) {
    notices.push(notice);
}
