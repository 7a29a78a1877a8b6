//! The RTP fixed header (RFC 3550 §5.1) and RTP/RTCP demultiplexing (RFC 5761 §4).

use crate::Error;

/// Length of the fixed RTP header without CSRCs.
pub const FIXED_HEADER_LEN: usize = 12;

/// An RTP header as received or to be sent. `payload_offset` and `payload_len` locate the
/// payload in the packet it was parsed from: after the CSRC list and header extension, before
/// any padding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// 12 + 4 per CSRC + the header extension (RFC 3550 §5.3.1).
    pub payload_offset: usize,
    /// Payload octets, padding removed.
    pub payload_len: usize,
}

impl RtpHeader {
    /// Parses and checks an RTP packet: version 2, the CSRC list (§5.1), the header extension
    /// (§5.3.1) and the padding count (§5.1: the last octet counts the padding, itself
    /// included, and cannot reach into the header).
    pub fn parse(packet: &[u8]) -> Result<RtpHeader, Error> {
        if packet.len() < FIXED_HEADER_LEN {
            return Err(Error::Truncated {
                needed: FIXED_HEADER_LEN,
                available: packet.len(),
            });
        }
        let version = packet[0] >> 6;
        if version != 2 {
            return Err(Error::BadVersion(version));
        }
        let csrc_count = usize::from(packet[0] & 0x0f);
        let mut offset = FIXED_HEADER_LEN + 4 * csrc_count;
        if packet[0] & 0x10 != 0 {
            // RFC 3550 §5.3.1: 16 bits defined by profile, 16 bits length in 32-bit words
            // (the four-octet extension header not counted).
            let ext = packet.get(offset..offset + 4).ok_or(Error::Truncated {
                needed: offset + 4,
                available: packet.len(),
            })?;
            offset += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        }
        if offset > packet.len() {
            return Err(Error::Truncated {
                needed: offset,
                available: packet.len(),
            });
        }
        let mut payload_len = packet.len() - offset;
        if packet[0] & 0x20 != 0 {
            let pad = packet[packet.len() - 1];
            if pad == 0 || usize::from(pad) > payload_len {
                return Err(Error::BadPadding(pad));
            }
            payload_len -= usize::from(pad);
        }
        Ok(RtpHeader {
            marker: packet[1] & 0x80 != 0,
            payload_type: packet[1] & 0x7f,
            sequence: u16::from_be_bytes([packet[2], packet[3]]),
            timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
            ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
            payload_offset: offset,
            payload_len,
        })
    }

    /// The payload of `packet`, the one this header was parsed from.
    pub fn payload<'a>(&self, packet: &'a [u8]) -> &'a [u8] {
        &packet[self.payload_offset..self.payload_offset + self.payload_len]
    }

    /// Writes the 12-byte fixed header (version 2, no padding, extension or CSRC) and returns
    /// 12; `payload_offset` and `payload_len` are ignored. The payload goes at `out[12..]`.
    ///
    /// # Panics
    /// If `out` is shorter than 12 bytes: the caller sizes its own packet buffer.
    pub fn write(&self, out: &mut [u8]) -> usize {
        let h = &mut out[..FIXED_HEADER_LEN];
        h[0] = 0x80;
        h[1] = (u8::from(self.marker) << 7) | (self.payload_type & 0x7f);
        h[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        h[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        h[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        FIXED_HEADER_LEN
    }
}

/// Whether a datagram on an RTP/RTCP-multiplexed port is RTCP (RFC 5761 §4).
///
/// RFC 5761 §4 demultiplexes on the second octet: RTCP packet types 200-204 (SR, RR, SDES,
/// BYE, APP) would read as RTP payload types 72-76 with the marker set, and the section forbids
/// RTP payload types 64-95 on a multiplexed port so that the whole RTCP range 192-223 stays
/// unambiguous. We accept that whole range (it includes 200-204, and also the feedback and XR
/// types 205-207 of RFC 4585/3611 that may lead a reduced-size packet, RFC 5506). Version 2 and
/// a header with sender SSRC (8 octets) are required.
pub fn is_rtcp(packet: &[u8]) -> bool {
    packet.len() >= 8 && packet[0] >> 6 == 2 && (192..=223).contains(&packet[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_parse_round_trips() {
        let h = RtpHeader {
            marker: true,
            payload_type: 101,
            sequence: 0xfffe,
            timestamp: 0xdead_beef,
            ssrc: 0x0102_0304,
            payload_offset: 0,
            payload_len: 0,
        };
        let mut buf = [0u8; 16];
        assert_eq!(h.write(&mut buf), 12);
        buf[12..].copy_from_slice(&[1, 2, 3, 4]);
        let p = RtpHeader::parse(&buf).unwrap();
        assert_eq!(
            p,
            RtpHeader {
                payload_offset: 12,
                payload_len: 4,
                ..h
            }
        );
        assert_eq!(p.payload(&buf), &[1, 2, 3, 4]);
    }
}
