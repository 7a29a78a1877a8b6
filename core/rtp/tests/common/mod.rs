//! Test helpers: the origin of the virtual clock, and a tiny classic-pcap reader (Ethernet,
//! IPv4, UDP) for SIPp's capture files.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// The origin of a test's virtual clock: any Instant will do, it is only added to.
#[allow(clippy::disallowed_methods)]
pub fn epoch() -> Instant {
    Instant::now()
}

/// One UDP datagram of a capture: time since the first packet, ports, payload.
pub struct Datagram {
    pub at: Duration,
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: Vec<u8>,
}

pub fn read_udp(path: &str) -> Vec<Datagram> {
    let data = std::fs::read(path).unwrap_or_else(|e| {
        panic!("{path}: {e} (SIPp's sample pcaps come with Debian's sip-tester package)")
    });
    let magic = u32::from_le_bytes(data[0..4].try_into().unwrap());
    let (le, nanos) = match magic {
        0xa1b2_c3d4 => (true, false),
        0xa1b2_3c4d => (true, true),
        0xd4c3_b2a1 => (false, false),
        0x4d3c_b2a1 => (false, true),
        m => panic!("{path}: not a classic pcap (magic {m:08x})"),
    };
    let u32_at = |b: &[u8], at: usize| {
        let x: [u8; 4] = b[at..at + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(x)
        } else {
            u32::from_be_bytes(x)
        }
    };
    assert_eq!(u32_at(&data, 20), 1, "{path}: link type is not Ethernet");
    let mut out = Vec::new();
    let mut pos = 24;
    let mut first: Option<Duration> = None;
    while pos + 16 <= data.len() {
        let secs = u32_at(&data, pos);
        let frac = u32_at(&data, pos + 4);
        let incl = u32_at(&data, pos + 8) as usize;
        let frame = &data[pos + 16..pos + 16 + incl];
        pos += 16 + incl;
        let t = Duration::new(u64::from(secs), if nanos { frac } else { frac * 1000 });
        let at = t - *first.get_or_insert(t);
        // Ethernet II, IPv4, UDP.
        if frame.len() < 14 + 20 + 8 || frame[12..14] != [0x08, 0x00] {
            continue;
        }
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        if ip[0] >> 4 != 4 || ip[9] != 17 {
            continue;
        }
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let udp = &ip[ihl..total];
        let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
        out.push(Datagram {
            at,
            src_port: u16::from_be_bytes([udp[0], udp[1]]),
            dst_port: u16::from_be_bytes([udp[2], udp[3]]),
            payload: udp[8..udp_len].to_vec(),
        });
    }
    out
}
