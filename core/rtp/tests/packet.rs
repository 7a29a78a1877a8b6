//! RTP header vectors (RFC 3550 §5.1, §5.3.1) and RTP/RTCP demultiplexing (RFC 5761 §4).

use switchyard_rtp::Error;
use switchyard_rtp::packet::{RtpHeader, is_rtcp};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn plain_g711_packet() {
    // The first RTP header of SIPp's g711a.pcap.
    let p = hex("8008e6fd 000000f0 dee0ee8f d5d5d5d5");
    let h = RtpHeader::parse(&p).unwrap();
    assert_eq!(
        h,
        RtpHeader {
            marker: false,
            payload_type: 8,
            sequence: 0xe6fd,
            timestamp: 0xf0,
            ssrc: 0xdee0_ee8f,
            payload_offset: 12,
            payload_len: 4,
        }
    );
    assert_eq!(h.payload(&p), &[0xd5; 4]);
}

#[test]
fn csrc_list_is_skipped() {
    // CC = 2: two contributing sources before the payload.
    let p = hex("82e1 0001 00000002 00000003 aaaaaaaa bbbbbbbb 0102");
    let h = RtpHeader::parse(&p).unwrap();
    assert!(h.marker);
    assert_eq!(
        (h.payload_type, h.sequence, h.timestamp, h.ssrc),
        (97, 1, 2, 3)
    );
    assert_eq!((h.payload_offset, h.payload_len), (20, 2));
    // Announced but missing.
    assert_eq!(
        RtpHeader::parse(&p[..16]),
        Err(Error::Truncated {
            needed: 20,
            available: 16
        })
    );
}

#[test]
fn header_extension_is_skipped() {
    // X = 1, RFC 8285 one-byte profile 0xBEDE, two words of extension.
    let p = hex("9000 0005 00000a00 12345678 bede0002 10ff0000 22334400 cafe");
    let h = RtpHeader::parse(&p).unwrap();
    assert_eq!((h.payload_offset, h.payload_len), (24, 2));
    assert_eq!(h.payload(&p), &[0xca, 0xfe]);
    // The extension header itself cut short, then its words.
    assert!(matches!(
        RtpHeader::parse(&p[..14]),
        Err(Error::Truncated { needed: 16, .. })
    ));
    assert!(matches!(
        RtpHeader::parse(&p[..20]),
        Err(Error::Truncated { needed: 24, .. })
    ));
    // CSRC and extension together: the extension follows the CSRC list.
    let p = hex("9100 0005 00000a00 12345678 99999999 bede0001 10ff0000 77");
    let h = RtpHeader::parse(&p).unwrap();
    assert_eq!((h.payload_offset, h.payload_len), (24, 1));
}

#[test]
fn padding_is_removed() {
    // P = 1: three payload octets, then three padding octets, the last one counting them.
    let p = hex("a000 0001 00000000 00000001 010203 000003");
    let h = RtpHeader::parse(&p).unwrap();
    assert_eq!(h.payload(&p), &[1, 2, 3]);
    // A padding count of zero, or reaching into the header, is invalid.
    let zero = hex("a000 0001 00000000 00000001 010200");
    assert_eq!(RtpHeader::parse(&zero), Err(Error::BadPadding(0)));
    let long = hex("a000 0001 00000000 00000001 0105");
    assert_eq!(RtpHeader::parse(&long), Err(Error::BadPadding(5)));
    // Padding may take the whole payload.
    let all = hex("a000 0001 00000000 00000001 000003");
    assert_eq!(RtpHeader::parse(&all).unwrap().payload_len, 0);
}

#[test]
fn truncated_and_wrong_version() {
    assert_eq!(
        RtpHeader::parse(&[0x80; 11]),
        Err(Error::Truncated {
            needed: 12,
            available: 11
        })
    );
    // Version 1 (vat) and version 0.
    assert_eq!(
        RtpHeader::parse(&hex("4000000100000000 00000001")),
        Err(Error::BadVersion(1))
    );
    assert_eq!(RtpHeader::parse(b"hello world!"), Err(Error::BadVersion(1)));
    assert_eq!(RtpHeader::parse(&[0u8; 12]), Err(Error::BadVersion(0)));
}

#[test]
fn write_is_the_fixed_header() {
    let h = RtpHeader {
        marker: true,
        payload_type: 0,
        sequence: 0x1234,
        timestamp: 320,
        ssrc: 0xdead_beef,
        payload_offset: 99,
        payload_len: 0,
    };
    let mut out = [0u8; 12];
    assert_eq!(h.write(&mut out), 12);
    assert_eq!(out.to_vec(), hex("8080 1234 00000140 deadbeef"));
}

#[test]
fn rtcp_demultiplexing() {
    for pt in 200..=204u8 {
        assert!(is_rtcp(&[0x80, pt, 0, 1, 0, 0, 0, 1]), "RTCP type {pt}");
    }
    // Feedback (RFC 4585) and XR (RFC 3611) are RTCP too.
    assert!(is_rtcp(&[0x81, 205, 0, 2, 0, 0, 0, 1]));
    assert!(is_rtcp(&[0x80, 207, 0, 2, 0, 0, 0, 1]));
    // RTP: PCMU with and without marker, dynamic 96..127 with marker.
    assert!(!is_rtcp(&[0x80, 0, 0, 6, 1, 2, 3, 4]));
    assert!(!is_rtcp(&[0x80, 0x80, 0, 6, 1, 2, 3, 4]));
    assert!(!is_rtcp(&[0x80, 0x80 | 111, 0, 6, 1, 2, 3, 4]));
    // Too short, or not version 2 (STUN's first octet is 0 or 1).
    assert!(!is_rtcp(&[0x81, 200, 0]));
    assert!(!is_rtcp(&[0x00, 200, 0, 1, 0, 0, 0, 1]));
}
