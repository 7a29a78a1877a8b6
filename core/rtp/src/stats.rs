//! Receiver statistics of one RTP source, RFC 3550 Appendix A.
//!
//! [`ReceiveStats`] follows the reference code: A.1 sequence-number validation with a
//! probation of two sequential packets, A.3 expected and lost packets across sequence wrap,
//! A.8 interarrival jitter in timestamp units. It works on relayed streams as well as on legs
//! we terminate: it only needs each packet's header and arrival time.

use crate::packet::RtpHeader;
use crate::rtcp::ReportBlock;
use std::time::Instant;

/// A.1: packets in sequence needed before a source is valid.
const MIN_SEQUENTIAL: u32 = 2;
/// A.1: a forward jump larger than this is a restart, not loss.
const MAX_DROPOUT: u16 = 3000;
/// A.1: a backward jump within this is a reordered or duplicate packet.
const MAX_MISORDER: u16 = 100;
const RTP_SEQ_MOD: u32 = 1 << 16;

/// A copy of the cumulative figures, for logs and quality estimates.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReceiveSnapshot {
    /// Packets received from the validated source (duplicates included, as in A.3).
    pub packets: u64,
    /// Expected minus received; negative when duplicates outnumber losses.
    pub lost: i64,
    /// Lost over expected since the source was validated, clamped to 0..=1.
    pub loss_fraction_total: f64,
    /// The A.8 interarrival jitter in milliseconds.
    pub jitter_ms: f64,
}

/// Statistics for one source (SSRC). A packet with another SSRC starts over with the new
/// source, as a restarted sender would (A.1).
#[derive(Clone, Debug)]
pub struct ReceiveStats {
    clock_rate: u32,
    ssrc: Option<u32>,
    max_seq: u16,
    /// Shifted count of sequence number cycles (multiples of 65536).
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Relative transit time of the previous packet (A.8), timestamp units.
    transit: Option<u32>,
    /// A.8 jitter scaled by 16.
    jitter: u32,
    /// Arrival times are counted in timestamp units from here.
    epoch: Option<Instant>,
}

impl ReceiveStats {
    pub fn new(clock_rate: u32) -> Self {
        ReceiveStats {
            clock_rate: clock_rate.max(1),
            ssrc: None,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD + 1,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter: 0,
            epoch: None,
        }
    }

    /// The source being measured, once a packet was seen.
    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }

    /// Whether the source passed probation (A.1).
    pub fn is_valid(&self) -> bool {
        self.ssrc.is_some() && self.probation == 0
    }

    /// Extended highest sequence number received (cycles in the high 16 bits).
    pub fn extended_highest_seq(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// The A.8 jitter estimate in timestamp units.
    pub fn jitter_units(&self) -> u32 {
        self.jitter >> 4
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1; // so seq == bad_seq is false
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// A.1 `update_seq`: whether the packet counts.
    fn update_seq(&mut self, seq: u16) -> bool {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            // Source not valid until MIN_SEQUENTIAL packets in sequence have arrived.
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return true;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return false;
        } else if udelta < MAX_DROPOUT {
            // In order, with permissible gap.
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            // A very large jump: two sequential packets mean the source restarted.
            if u32::from(seq) == self.bad_seq {
                self.init_seq(seq);
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return false;
            }
        } else {
            // Duplicate or reordered packet.
        }
        self.received += 1;
        true
    }

    /// Accounts for one received packet.
    pub fn on_packet(&mut self, now: Instant, header: &RtpHeader) {
        self.record(now, header, true);
    }

    /// A packet of the stream whose timestamp does not follow the media clock: RFC 4733
    /// events keep the timestamp of the digit's start (§2.5.1.2), comfort noise may skip. It
    /// counts for sequence and loss (A.1, A.3) but not for the interarrival jitter, which A.8
    /// defines on packets sampled at their timestamp.
    pub fn on_packet_untimed(&mut self, now: Instant, header: &RtpHeader) {
        self.record(now, header, false);
    }

    fn record(&mut self, now: Instant, header: &RtpHeader, timed: bool) {
        if self.ssrc != Some(header.ssrc) {
            let clock_rate = self.clock_rate;
            *self = ReceiveStats::new(clock_rate);
            self.ssrc = Some(header.ssrc);
            // A.1: a new source starts on probation, as if the previous packet preceded it.
            self.init_seq(header.sequence);
            self.max_seq = header.sequence.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        if !self.update_seq(header.sequence) || !timed {
            return;
        }
        let epoch = *self.epoch.get_or_insert(now);
        let elapsed = now.saturating_duration_since(epoch).as_nanos();
        let arrival = (elapsed * u128::from(self.clock_rate) / 1_000_000_000) as u32;
        // A.8: transit difference between consecutive packets, in timestamp units.
        let transit = arrival.wrapping_sub(header.timestamp);
        if let Some(prev) = self.transit {
            let d = i64::from((transit.wrapping_sub(prev) as i32).unsigned_abs());
            let j = i64::from(self.jitter);
            self.jitter = (j + d - ((j + 8) >> 4)).clamp(0, i64::from(u32::MAX)) as u32;
        }
        self.transit = Some(transit);
    }

    fn expected(&self) -> u32 {
        self.extended_highest_seq()
            .wrapping_sub(self.base_seq)
            .wrapping_add(1)
    }

    /// A report block about this source (A.3), which starts a new reporting interval for the
    /// fraction lost. `ssrc` is the source reported on (normally [`ReceiveStats::ssrc`]).
    /// `last_sr` is the middle 32 bits of the NTP timestamp of the last sender report from
    /// this source and when it arrived; it gives LSR and DLSR (RFC 3550 §6.4.1), zero without.
    pub fn report_block(
        &mut self,
        ssrc: u32,
        now: Instant,
        last_sr: Option<(u32, Instant)>,
    ) -> ReportBlock {
        let (lsr, dlsr) = match last_sr {
            Some((lsr, at)) => {
                let d = now.saturating_duration_since(at);
                let units = d.as_micros() * 65536 / 1_000_000;
                (lsr, units.min(u128::from(u32::MAX)) as u32)
            }
            None => (0, 0),
        };
        if !self.is_valid() {
            return ReportBlock {
                ssrc,
                lsr,
                dlsr,
                ..ReportBlock::default()
            };
        }
        let expected = self.expected();
        let lost = i64::from(expected) - i64::from(self.received);
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        ReportBlock {
            ssrc,
            fraction_lost,
            // RFC 3550 §6.4.1: a signed 24-bit field; clamp rather than wrap.
            cumulative_lost: lost.clamp(-0x80_0000, 0x7f_ffff) as i32,
            highest_seq: self.extended_highest_seq(),
            jitter: self.jitter_units(),
            lsr,
            dlsr,
        }
    }

    /// Cumulative figures since the source was validated.
    pub fn snapshot(&self) -> ReceiveSnapshot {
        if !self.is_valid() {
            return ReceiveSnapshot::default();
        }
        let expected = self.expected();
        let lost = i64::from(expected) - i64::from(self.received);
        let loss_fraction_total = if expected == 0 {
            0.0
        } else {
            (lost as f64 / f64::from(expected)).clamp(0.0, 1.0)
        };
        ReceiveSnapshot {
            packets: u64::from(self.received),
            lost,
            loss_fraction_total,
            jitter_ms: f64::from(self.jitter) / 16.0 * 1000.0 / f64::from(self.clock_rate),
        }
    }
}
