//! `cargo fuzz run jitter -s none` (from core/rtp): a hostile stream into the jitter buffer
//! and the RFC 4733 receiver. Each 16-byte record of the input is one arrival: time step,
//! sequence, timestamp, SSRC, marker, payload type and length; the buffer is drained every
//! 20 ms like a leg does. Nothing may panic, loop or overflow.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use switchyard_rtp::event::EventReceiver;
use switchyard_rtp::jitter::{JitterBuffer, JitterConfig, Playout};
use switchyard_rtp::packet::RtpHeader;

fuzz_target!(|data: &[u8]| {
    // The fuzzer's clock: an origin read once, then moved by the input.
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let mut now = start;
    let mut next_frame = start;
    let mut jb = JitterBuffer::new(8000, JitterConfig::default());
    let mut events = EventReceiver::new(8000);
    let payload = [0xd5u8; 320];
    for record in data.chunks_exact(16) {
        now += Duration::from_micros(u64::from(u16::from_be_bytes([record[0], record[1]])) * 4);
        let header = RtpHeader {
            marker: record[2] & 1 == 1,
            payload_type: record[3] & 0x7f,
            sequence: u16::from_be_bytes([record[4], record[5]]),
            timestamp: u32::from_be_bytes([record[6], record[7], record[8], record[9]]),
            ssrc: u32::from(record[10] & 3),
            payload_offset: 12,
            payload_len: usize::from(record[11]),
        };
        let body = &payload[..usize::from(record[11]).min(payload.len())];
        let _ = jb.insert(now, &header, body);
        let _ = events.on_packet(now, &header, &record[12..16]);
        while events.poll_timeout(now).is_some() {}
        while next_frame <= now {
            for _ in 0..256 {
                if matches!(jb.pop(next_frame, 160), Playout::NotYet) {
                    break;
                }
            }
            next_frame += Duration::from_millis(20);
        }
    }
});
