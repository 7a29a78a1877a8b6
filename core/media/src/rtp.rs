//! The little of RTP (RFC 3550) the relay needs: enough to tell media from junk, cheaply.
//! Sans-IO and allocation-free.

/// The fixed RTP header (RFC 3550 §5.1), with the length of the whole header (CSRC list and
/// extension included) so callers can find the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpHeader {
    pub padding: bool,
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Offset of the payload: 12 + 4 per CSRC + the header extension (RFC 3550 §5.3.1).
    pub header_len: usize,
}

impl RtpHeader {
    /// None unless `packet` is a plausible RTP packet: version 2, at least the 12-byte fixed
    /// header, and CSRC list and extension within the packet.
    pub fn parse(packet: &[u8]) -> Option<RtpHeader> {
        if packet.len() < 12 || packet[0] >> 6 != 2 {
            return None;
        }
        let csrc_count = usize::from(packet[0] & 0x0f);
        let mut header_len = 12 + 4 * csrc_count;
        if packet[0] & 0x10 != 0 {
            // RFC 3550 §5.3.1: 16-bit profile, 16-bit length in 32-bit words, then the words.
            let ext = packet.get(header_len..header_len + 4)?;
            header_len += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        }
        if header_len > packet.len() {
            return None;
        }
        Some(RtpHeader {
            padding: packet[0] & 0x20 != 0,
            marker: packet[1] & 0x80 != 0,
            payload_type: packet[1] & 0x7f,
            sequence: u16::from_be_bytes([packet[2], packet[3]]),
            timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
            ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
            header_len,
        })
    }
}

impl RtpHeader {
    /// The full header of the RTP crate, for statistics; `len` is the whole packet's length.
    pub fn to_full(&self, len: usize) -> switchyard_rtp::packet::RtpHeader {
        switchyard_rtp::packet::RtpHeader {
            marker: self.marker,
            payload_type: self.payload_type,
            sequence: self.sequence,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
            payload_offset: self.header_len,
            payload_len: len.saturating_sub(self.header_len),
        }
    }
}

/// Whether `packet` looks like RTCP (RFC 3550 §6.4): version 2, at least a header and a
/// sender SSRC, and a first packet type in 192..=223 (RFC 5761 §4 keeps that range for RTCP).
pub fn is_rtcp(packet: &[u8]) -> bool {
    packet.len() >= 8 && packet[0] >> 6 == 2 && (192..=223).contains(&packet[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_g711_header() {
        let mut p = [0u8; 172];
        p[..12].copy_from_slice(&[
            0x80, 0x80, 0x12, 0x34, 0, 0, 0x01, 0x40, 0xde, 0xad, 0xbe, 0xef,
        ]);
        let h = RtpHeader::parse(&p).unwrap();
        assert!(h.marker);
        assert_eq!(
            (
                h.payload_type,
                h.sequence,
                h.timestamp,
                h.ssrc,
                h.header_len
            ),
            (0, 0x1234, 320, 0xdeadbeef, 12)
        );
    }

    #[test]
    fn csrc_and_extension_lengths_are_checked() {
        let mut p = vec![0x82u8, 8, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
        assert_eq!(
            RtpHeader::parse(&p),
            None,
            "two CSRCs announced, none present"
        );
        p.extend_from_slice(&[0; 8]);
        assert_eq!(RtpHeader::parse(&p).unwrap().header_len, 20);
        let mut x = vec![0x90u8, 8, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 1];
        assert_eq!(
            RtpHeader::parse(&x),
            None,
            "one extension word announced, none present"
        );
        x.extend_from_slice(&[1, 2, 3, 4, 0xff]);
        assert_eq!(RtpHeader::parse(&x).unwrap().header_len, 20);
    }

    #[test]
    fn junk_is_not_rtp() {
        assert_eq!(RtpHeader::parse(b""), None);
        assert_eq!(RtpHeader::parse(b"hello world!"), None); // version 1
        assert_eq!(RtpHeader::parse(&[0x80; 11]), None);
        assert!(is_rtcp(&[0x81, 200, 0, 6, 1, 2, 3, 4]));
        assert!(!is_rtcp(&[0x80, 0, 0, 6, 1, 2, 3, 4]));
        assert!(!is_rtcp(&[0x81, 200, 0]));
    }
}
