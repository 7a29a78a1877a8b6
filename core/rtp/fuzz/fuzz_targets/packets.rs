//! `cargo fuzz run packets -s none` (from core/rtp): every parser of the crate on the same
//! bytes (RTP header, RTCP compound, RFC 4733 payload), and what the relay does with a
//! packet: a report block round trip must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_rtp::event::TelephoneEvent;
use switchyard_rtp::packet::{RtpHeader, is_rtcp};
use switchyard_rtp::rtcp::{self, RtcpPacket};

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = RtpHeader::parse(data) {
        let payload = header.payload(data);
        assert!(payload.len() <= data.len());
        let mut out = [0u8; 12];
        assert_eq!(header.write(&mut out), 12);
        let again = RtpHeader::parse(&[&out[..], payload].concat()).expect("our own header parses");
        assert_eq!((again.sequence, again.timestamp, again.ssrc), (header.sequence, header.timestamp, header.ssrc));
    }
    let _ = is_rtcp(data);
    let _ = rtcp::parse_compound(data, |packet| match packet {
        RtcpPacket::SenderReport { reports, .. } | RtcpPacket::ReceiverReport { reports, .. } => {
            for block in reports {
                let _ = (block.fraction_lost, block.cumulative_lost, block.jitter);
            }
        }
        RtcpPacket::Sdes { items } => {
            for item in items {
                let _ = item;
            }
        }
        _ => {}
    });
    let _ = TelephoneEvent::parse(data);
});
