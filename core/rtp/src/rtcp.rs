//! RTCP (RFC 3550 §6): compound packet parsing and writing, NTP timestamps, round-trip time
//! from report blocks, and when to send reports.

use crate::Error;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// RTCP packet types (RFC 3550 §12.1).
pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;
pub const PT_SDES: u8 = 202;
pub const PT_BYE: u8 = 203;
pub const PT_APP: u8 = 204;
/// SDES item type of the canonical name (RFC 3550 §6.5.1).
pub const SDES_CNAME: u8 = 1;
/// The 5-bit count field limits a report to 31 blocks.
pub const MAX_REPORT_BLOCKS: usize = 31;

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// One reception report block (RFC 3550 §6.4.1), 24 octets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Lost over expected since the previous report, as a fixed-point fraction × 256.
    pub fraction_lost: u8,
    /// Cumulative packets lost, a signed 24-bit value on the wire.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR from the source; 0 if none.
    pub lsr: u32,
    /// Delay since that SR arrived, in 1/65536 s.
    pub dlsr: u32,
}

impl ReportBlock {
    pub const LEN: usize = 24;

    /// Parses one block from the first 24 octets of `b`.
    pub fn parse(b: &[u8]) -> Result<ReportBlock, Error> {
        if b.len() < Self::LEN {
            return Err(Error::Truncated {
                needed: Self::LEN,
                available: b.len(),
            });
        }
        // Sign-extend the 24-bit cumulative loss.
        let cumulative_lost = (i32::from_be_bytes([b[5], b[6], b[7], 0])) >> 8;
        Ok(ReportBlock {
            ssrc: be32(&b[0..4]),
            fraction_lost: b[4],
            cumulative_lost,
            highest_seq: be32(&b[8..12]),
            jitter: be32(&b[12..16]),
            lsr: be32(&b[16..20]),
            dlsr: be32(&b[20..24]),
        })
    }

    /// Writes the 24 octets (cumulative loss clamped to 24 bits) and returns 24.
    ///
    /// # Panics
    /// If `out` is shorter than 24 octets.
    pub fn write(&self, out: &mut [u8]) -> usize {
        let out = &mut out[..Self::LEN];
        out[0..4].copy_from_slice(&self.ssrc.to_be_bytes());
        out[4] = self.fraction_lost;
        let lost = self
            .cumulative_lost
            .clamp(-0x80_0000, 0x7f_ffff)
            .to_be_bytes();
        out[5..8].copy_from_slice(&lost[1..4]);
        out[8..12].copy_from_slice(&self.highest_seq.to_be_bytes());
        out[12..16].copy_from_slice(&self.jitter.to_be_bytes());
        out[16..20].copy_from_slice(&self.lsr.to_be_bytes());
        out[20..24].copy_from_slice(&self.dlsr.to_be_bytes());
        Self::LEN
    }
}

/// The sender information of an SR (RFC 3550 §6.4.1), 20 octets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderInfo {
    /// 64-bit NTP timestamp of the report (see [`ntp_from_system_time`]).
    pub ntp: u64,
    /// The RTP timestamp corresponding to the same instant.
    pub rtp_ts: u32,
    /// Packets sent since the start of transmission.
    pub packets: u32,
    /// Payload octets sent since the start of transmission.
    pub octets: u32,
}

impl SenderInfo {
    pub const LEN: usize = 20;

    fn parse(b: &[u8]) -> SenderInfo {
        SenderInfo {
            ntp: (u64::from(be32(&b[0..4])) << 32) | u64::from(be32(&b[4..8])),
            rtp_ts: be32(&b[8..12]),
            packets: be32(&b[12..16]),
            octets: be32(&b[16..20]),
        }
    }

    fn write(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.ntp.to_be_bytes());
        out[8..12].copy_from_slice(&self.rtp_ts.to_be_bytes());
        out[12..16].copy_from_slice(&self.packets.to_be_bytes());
        out[16..20].copy_from_slice(&self.octets.to_be_bytes());
    }

    /// The middle 32 bits of the NTP timestamp: what a receiver echoes as LSR.
    pub fn ntp_middle(&self) -> u32 {
        ntp_middle(self.ntp)
    }
}

/// The report blocks of an SR or RR, parsed as they are iterated.
#[derive(Clone, Debug)]
pub struct ReportBlocks<'a> {
    data: &'a [u8],
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;
    fn next(&mut self) -> Option<ReportBlock> {
        let block = ReportBlock::parse(self.data).ok()?;
        self.data = &self.data[ReportBlock::LEN..];
        Some(block)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.data.len() / ReportBlock::LEN;
        (n, Some(n))
    }
}

impl ExactSizeIterator for ReportBlocks<'_> {}

/// One SDES item with the source (chunk) it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdesItem<'a> {
    pub ssrc: u32,
    /// Item type (RFC 3550 §6.5: 1 CNAME, 2 NAME, … 8 PRIV).
    pub kind: u8,
    pub value: &'a [u8],
}

/// The items of an SDES packet, chunk after chunk. The packet was validated before this is
/// handed out, so iteration does not fail.
#[derive(Clone, Debug)]
pub struct SdesItems<'a> {
    data: &'a [u8],
    chunks_left: u8,
    /// Offset of the next item in the current chunk, and the chunk's SSRC.
    in_chunk: Option<(usize, u32)>,
    pos: usize,
}

impl<'a> Iterator for SdesItems<'a> {
    type Item = SdesItem<'a>;
    fn next(&mut self) -> Option<SdesItem<'a>> {
        loop {
            match self.in_chunk {
                None => {
                    if self.chunks_left == 0 || self.pos + 4 > self.data.len() {
                        return None;
                    }
                    self.chunks_left -= 1;
                    let ssrc = be32(&self.data[self.pos..]);
                    self.in_chunk = Some((self.pos + 4, ssrc));
                }
                Some((at, ssrc)) => {
                    let kind = *self.data.get(at)?;
                    if kind == 0 {
                        // End of the chunk's items; the chunk is padded to 32 bits.
                        self.pos = (at + 4) & !3;
                        self.in_chunk = None;
                        continue;
                    }
                    let len = usize::from(*self.data.get(at + 1)?);
                    let value = self.data.get(at + 2..at + 2 + len)?;
                    self.in_chunk = Some((at + 2 + len, ssrc));
                    return Some(SdesItem { ssrc, kind, value });
                }
            }
        }
    }
}

/// SSRCs listed in a BYE.
#[derive(Clone, Debug)]
pub struct Ssrcs<'a> {
    data: &'a [u8],
}

impl Iterator for Ssrcs<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        if self.data.len() < 4 {
            return None;
        }
        let s = be32(self.data);
        self.data = &self.data[4..];
        Some(s)
    }
}

/// One packet of a compound RTCP packet.
#[derive(Clone, Debug)]
pub enum RtcpPacket<'a> {
    SenderReport {
        ssrc: u32,
        info: SenderInfo,
        reports: ReportBlocks<'a>,
    },
    ReceiverReport {
        ssrc: u32,
        reports: ReportBlocks<'a>,
    },
    Sdes {
        items: SdesItems<'a>,
    },
    Bye {
        sources: Ssrcs<'a>,
        reason: Option<&'a [u8]>,
    },
    /// APP, feedback (RFC 4585), XR (RFC 3611) and anything else: the body after the 4-octet
    /// header, padding removed.
    Other {
        packet_type: u8,
        count: u8,
        body: &'a [u8],
    },
}

/// Checks an SDES body: `count` chunks, each an SSRC, items, and a null octet ending the list,
/// padded to 32 bits (RFC 3550 §6.5).
fn check_sdes(body: &[u8], count: u8) -> Result<(), Error> {
    let mut pos = 0;
    for _ in 0..count {
        if pos + 4 > body.len() {
            return Err(Error::InvalidRtcp("SDES chunk truncated"));
        }
        let mut at = pos + 4;
        loop {
            match body.get(at) {
                None => return Err(Error::InvalidRtcp("SDES item list not terminated")),
                Some(0) => break,
                Some(_) => {
                    let len = usize::from(
                        *body
                            .get(at + 1)
                            .ok_or(Error::InvalidRtcp("SDES item truncated"))?,
                    );
                    at += 2 + len;
                    if at > body.len() {
                        return Err(Error::InvalidRtcp("SDES item truncated"));
                    }
                }
            }
        }
        pos = (at + 4) & !3;
        if pos > body.len() {
            return Err(Error::InvalidRtcp("SDES chunk padding truncated"));
        }
    }
    Ok(())
}

/// One packet's header fields and body, padding removed.
struct Framed<'a> {
    count: u8,
    packet_type: u8,
    body: &'a [u8],
    len: usize,
}

fn frame(buf: &[u8], first: bool) -> Result<Framed<'_>, Error> {
    if buf.len() < 4 {
        return Err(Error::Truncated {
            needed: 4,
            available: buf.len(),
        });
    }
    let version = buf[0] >> 6;
    if version != 2 {
        return Err(Error::BadVersion(version));
    }
    let len = (usize::from(u16::from_be_bytes([buf[2], buf[3]])) + 1) * 4;
    if len > buf.len() {
        return Err(Error::Truncated {
            needed: len,
            available: buf.len(),
        });
    }
    let mut body = &buf[4..len];
    if buf[0] & 0x20 != 0 {
        // A.2: the first packet has no padding, and only the last may have any (§6.4.1).
        if first || len != buf.len() {
            return Err(Error::InvalidRtcp("padding before the last packet"));
        }
        let pad = buf[len - 1];
        if pad == 0 || usize::from(pad) > body.len() {
            return Err(Error::BadPadding(pad));
        }
        body = &body[..body.len() - usize::from(pad)];
    }
    let count = buf[0] & 0x1f;
    let packet_type = buf[1];
    let needed = match packet_type {
        PT_SR => 4 + SenderInfo::LEN + ReportBlock::LEN * usize::from(count),
        PT_RR => 4 + ReportBlock::LEN * usize::from(count),
        PT_BYE => 4 * usize::from(count),
        _ => 0,
    };
    if body.len() < needed {
        return Err(Error::InvalidRtcp("count exceeds packet length"));
    }
    match packet_type {
        PT_SDES => check_sdes(body, count)?,
        PT_BYE if body.len() > needed => {
            let reason_len = usize::from(body[needed]);
            if needed + 1 + reason_len > body.len() {
                return Err(Error::InvalidRtcp("BYE reason truncated"));
            }
        }
        _ => {}
    }
    Ok(Framed {
        count,
        packet_type,
        body,
        len,
    })
}

fn to_packet<'a>(f: &Framed<'a>) -> RtcpPacket<'a> {
    let count = usize::from(f.count);
    let body = f.body;
    match f.packet_type {
        PT_SR => RtcpPacket::SenderReport {
            ssrc: be32(body),
            info: SenderInfo::parse(&body[4..]),
            reports: ReportBlocks {
                data: &body[24..24 + ReportBlock::LEN * count],
            },
        },
        PT_RR => RtcpPacket::ReceiverReport {
            ssrc: be32(body),
            reports: ReportBlocks {
                data: &body[4..4 + ReportBlock::LEN * count],
            },
        },
        PT_SDES => RtcpPacket::Sdes {
            items: SdesItems {
                data: body,
                chunks_left: f.count,
                in_chunk: None,
                pos: 0,
            },
        },
        PT_BYE => {
            let ssrcs = 4 * count;
            let reason = body
                .get(ssrcs)
                .map(|&n| &body[ssrcs + 1..ssrcs + 1 + usize::from(n)]);
            RtcpPacket::Bye {
                sources: Ssrcs {
                    data: &body[..ssrcs],
                },
                reason,
            }
        }
        packet_type => RtcpPacket::Other {
            packet_type,
            count: f.count,
            body,
        },
    }
}

/// Parses a compound RTCP packet and hands each of its packets to `on_packet`, in order.
///
/// The whole compound is checked first (RFC 3550 §6.1 and the A.2 validity checks: version 2
/// everywhere, the first packet an SR or RR without padding, padding only in the last packet,
/// lengths adding up to the datagram, counts that fit), so `on_packet` sees nothing of an
/// invalid one. One check is relaxed: a compound may also start with a BYE, because baresip
/// 1.0 sends BYE + SDES on hangup where §6.1 wants an empty RR first, and the BYE matters.
pub fn parse_compound(buf: &[u8], mut on_packet: impl FnMut(RtcpPacket<'_>)) -> Result<(), Error> {
    if buf.len() < 4 {
        return Err(Error::Truncated {
            needed: 4,
            available: buf.len(),
        });
    }
    if !matches!(buf[1], PT_SR | PT_RR | PT_BYE) {
        return Err(Error::InvalidRtcp(
            "compound does not start with SR, RR or BYE",
        ));
    }
    let mut pos = 0;
    while pos < buf.len() {
        pos += frame(&buf[pos..], pos == 0)?.len;
    }
    let mut pos = 0;
    while pos < buf.len() {
        let f = frame(&buf[pos..], pos == 0)?;
        pos += f.len;
        on_packet(to_packet(&f));
    }
    Ok(())
}

fn write_header(out: &mut [u8], count: usize, packet_type: u8, len: usize) {
    out[0] = 0x80 | (count as u8 & 0x1f);
    out[1] = packet_type;
    out[2..4].copy_from_slice(&((len / 4 - 1) as u16).to_be_bytes());
}

fn cname_bytes(cname: &str) -> &[u8] {
    // An SDES item holds at most 255 octets; cut at a character boundary.
    let mut end = cname.len().min(255);
    while !cname.is_char_boundary(end) {
        end -= 1;
    }
    &cname.as_bytes()[..end]
}

/// Octets [`write_report`] needs.
pub fn report_len(has_sender_info: bool, blocks: usize, cname_len: usize) -> usize {
    let blocks = blocks.min(MAX_REPORT_BLOCKS);
    let report = 8 + if has_sender_info { SenderInfo::LEN } else { 0 } + 24 * blocks;
    // SDES: header, SSRC, CNAME item (type, length, text), at least one null, 32-bit aligned.
    let chunk = (4 + 2 + cname_len.min(255) + 1).div_ceil(4) * 4;
    report + 4 + chunk
}

/// Writes a compound RTCP packet: an SR (with `sender`) or an RR, with up to 31 report blocks,
/// followed by an SDES with our CNAME, which RFC 3550 §6.1 requires in every compound packet.
/// Returns the length written.
///
/// # Panics
/// If `out` is shorter than [`report_len`].
pub fn write_report(
    out: &mut [u8],
    ssrc: u32,
    sender: Option<SenderInfo>,
    blocks: &[ReportBlock],
    cname: &str,
) -> usize {
    let cname = cname_bytes(cname);
    let total = report_len(sender.is_some(), blocks.len(), cname.len());
    let out = &mut out[..total];
    let blocks = &blocks[..blocks.len().min(MAX_REPORT_BLOCKS)];
    let mut pos = 8;
    out[4..8].copy_from_slice(&ssrc.to_be_bytes());
    if let Some(info) = sender {
        info.write(&mut out[pos..pos + SenderInfo::LEN]);
        pos += SenderInfo::LEN;
    }
    for b in blocks {
        pos += b.write(&mut out[pos..]);
    }
    let packet_type = if sender.is_some() { PT_SR } else { PT_RR };
    write_header(out, blocks.len(), packet_type, pos);
    let sdes = pos;
    out[sdes + 4..sdes + 8].copy_from_slice(&ssrc.to_be_bytes());
    out[sdes + 8] = SDES_CNAME;
    out[sdes + 9] = cname.len() as u8;
    out[sdes + 10..sdes + 10 + cname.len()].copy_from_slice(cname);
    out[sdes + 10 + cname.len()..total].fill(0);
    write_header(&mut out[sdes..], 1, PT_SDES, total - sdes);
    total
}

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET_SECS: u128 = 2_208_988_800;

/// The 64-bit NTP timestamp (RFC 3550 §4: seconds since 1900 in the high 32 bits, the
/// fraction in the low 32) of a wall-clock time. Seconds wrap in 2036 (NTP era 1), as on the
/// wire.
pub fn ntp_from_system_time(t: SystemTime) -> u64 {
    let base = NTP_UNIX_OFFSET_SECS * 1_000_000_000;
    let nanos = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => base + d.as_nanos(),
        Err(e) => base.saturating_sub(e.duration().as_nanos()),
    };
    let secs = (nanos / 1_000_000_000) as u64 & 0xffff_ffff;
    let frac = ((nanos % 1_000_000_000) << 32) / 1_000_000_000;
    (secs << 32) | frac as u64
}

/// The middle 32 bits of an NTP timestamp, as carried in LSR (RFC 3550 §6.4.1).
pub fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

#[derive(Clone, Copy, Debug)]
struct SentReport {
    ssrc: u32,
    ntp_middle: u32,
    at: Instant,
}

/// Sender reports remembered for RTT: a few seconds' worth at one report per second.
const RTT_HISTORY: usize = 16;

/// Round-trip time from report blocks (RFC 3550 §6.4.1: RTT = A − LSR − DLSR).
///
/// Instead of the arrival time A in NTP units it remembers, per SR, the monotonic instant the SR
/// left (or passed), so the wall clock never enters: RTT = (now − then) − DLSR.
///
/// - On a leg we terminate: [`RttEstimator::sr_sent`] for each SR we send, then
///   [`RttEstimator::rtt_from_block`] for each incoming block about our SSRC.
/// - On a relayed stream: [`RttEstimator::sr_passed`] when an SR from side A (SSRC `s`) is
///   forwarded toward B, then `rtt_from_block` with B's block about `s`: the result is the
///   round trip between the relay and B, B's hold time removed.
#[derive(Clone, Debug, Default)]
pub struct RttEstimator {
    sent: [Option<SentReport>; RTT_HISTORY],
    next: usize,
    latest: Option<Duration>,
}

impl RttEstimator {
    pub fn new() -> Self {
        Self::default()
    }

    /// We sent an SR from `ssrc` whose NTP timestamp has these middle 32 bits.
    pub fn sr_sent(&mut self, ssrc: u32, ntp_middle: u32, now: Instant) {
        self.sr_passed(ssrc, ntp_middle, now);
    }

    /// An SR from `ssrc` (the sender on one side) was forwarded toward the other side.
    pub fn sr_passed(&mut self, ssrc: u32, ntp_middle: u32, now: Instant) {
        self.sent[self.next] = Some(SentReport {
            ssrc,
            ntp_middle,
            at: now,
        });
        self.next = (self.next + 1) % RTT_HISTORY;
    }

    /// The round trip measured by a report block that echoes a remembered SR, or None (no SR
    /// received by the peer yet, LSR = 0, or an SR forgotten). Rounding of DLSR to 1/65536 s can
    /// make a tiny RTT negative; it is reported as zero.
    pub fn rtt_from_block(&mut self, block: &ReportBlock, now: Instant) -> Option<Duration> {
        if block.lsr == 0 {
            return None;
        }
        let sr = self
            .sent
            .iter()
            .flatten()
            .find(|s| s.ssrc == block.ssrc && s.ntp_middle == block.lsr)?;
        let dlsr = Duration::from_micros(u64::from(block.dlsr) * 1_000_000 / 65536);
        let rtt = now.saturating_duration_since(sr.at).saturating_sub(dlsr);
        self.latest = Some(rtt);
        Some(rtt)
    }

    /// The last RTT measured.
    pub fn latest(&self) -> Option<Duration> {
        self.latest
    }
}

/// When to send RTCP reports: RFC 3550 §6.2/§6.3, simplified for one sender and one receiver on
/// a voice leg, where 5 % of the session bandwidth always allows the minimum interval.
///
/// The deterministic interval is the RFC's minimum, 5 s, and each interval is multiplied by a
/// random factor uniform in [0.5, 1.5] (§6.3.1) so that endpoints started together do not
/// synchronise. The first report is sent after half the minimum (§6.2: "the initial value ...
/// may be halved"), 2.5 s × [0.5, 1.5], early enough for call-quality figures but after the
/// first packets. Timer reconsideration and the e − 3/2 compensation are left out: with two
/// members they change nothing that matters. The random factor comes from a SplitMix64 stream
/// seeded by the caller, so tests are deterministic.
#[derive(Clone, Debug)]
pub struct RtcpScheduler {
    interval: Duration,
    next: Instant,
    rng: u64,
}

impl RtcpScheduler {
    /// RFC 3550 §6.2 minimum interval.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

    pub fn new(now: Instant, seed: u64) -> Self {
        Self::with_interval(now, seed, Self::DEFAULT_INTERVAL)
    }

    /// A schedule with another mean interval (the first report after half of it).
    pub fn with_interval(now: Instant, seed: u64, interval: Duration) -> Self {
        let mut s = RtcpScheduler {
            interval,
            next: now,
            rng: seed,
        };
        s.next = now + s.randomised(interval / 2);
        s
    }

    fn randomised(&mut self, d: Duration) -> Duration {
        // SplitMix64 step.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let unit = (z >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        d.mul_f64(0.5 + unit)
    }

    /// When the next report is due (arm the reactor's timer for it).
    pub fn next_send(&self) -> Instant {
        self.next
    }

    /// True when a report is due at `now`; the next one is then scheduled one randomised
    /// interval later.
    pub fn poll_send(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + self.randomised(self.interval);
        true
    }
}
