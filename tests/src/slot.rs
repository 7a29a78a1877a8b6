//! Port reservation across test processes.
//!
//! Slot `i` (0..100) owns SIP/control ports `10000 + 100·i .. +99` (below the kernel's
//! ephemeral range 32768–60999, so outgoing sockets of other programs do not land there)
//! and RTP ports `20000 + 200·i .. +199` for the daemon. A slot is held by an exclusive
//! `flock` on a file in the temp dir: the kernel releases it when the process dies, so a
//! crashed test never leaks a slot, and two nextest processes can never share one.

use std::fs::{File, OpenOptions};
use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;

pub const SLOTS: u16 = 100;
const SIP_BASE: u16 = 10000;
const SIP_BLOCK: u16 = 100;
const RTP_BASE: u16 = 20000;
const RTP_BLOCK: u16 = 200;

/// Named offsets inside a slot's SIP block, so every test uses the same layout.
pub mod offset {
    /// The daemon's SIP port (UDP and TCP).
    pub const DAEMON: u16 = 0;
    /// SIPp UAS signalling port.
    pub const SIPP_UAS: u16 = 10;
    /// SIPp UAS media port (uses +0..+3).
    pub const SIPP_UAS_MEDIA: u16 = 12;
    /// SIPp UAC signalling port.
    pub const SIPP_UAC: u16 = 20;
    /// SIPp UAC media port (uses +0..+3).
    pub const SIPP_UAC_MEDIA: u16 = 22;
    /// A SIPp process that only registers.
    pub const SIPP_REG: u16 = 30;
    /// Second SIPp UAS (two callees).
    pub const SIPP_UAS2: u16 = 32;
    pub const SIPP_UAS2_MEDIA: u16 = 34;
    /// Baresip instance A: SIP, ctrl_tcp, RTP range of 10 ports.
    pub const BARESIP_A: u16 = 40;
    /// Baresip instance B.
    pub const BARESIP_B: u16 = 60;
    /// Free for test-specific sockets.
    pub const SCRATCH: u16 = 80;
    /// Baresip instance C, in SCRATCH's block: only for tests that use no SCRATCH socket.
    pub const BARESIP_C: u16 = 80;
}

#[derive(Debug)]
pub struct Slot {
    index: u16,
    _lock: File,
    /// Further slots held by [`Slot::acquire_span`]: their RTP blocks widen this one's.
    extra: Vec<File>,
}

impl Slot {
    /// Reserves a free slot (panics if all 100 are taken).
    pub fn acquire() -> Slot {
        let dir = std::env::temp_dir().join("switchyard-e2e-slots");
        std::fs::create_dir_all(&dir).expect("create slot lock dir");
        // Start at a pid-dependent slot so parallel processes rarely contend for the same lock.
        let start = (std::process::id() % u32::from(SLOTS)) as u16;
        for k in 0..SLOTS {
            let index = (start + k) % SLOTS;
            let path: PathBuf = dir.join(format!("slot-{index}.lock"));
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .expect("open slot lock file");
            if file.try_lock().is_err() {
                continue;
            }
            let slot = Slot {
                index,
                _lock: file,
                extra: Vec::new(),
            };
            // Something outside the test suite may hold the port: skip such slots.
            if slot.probe_free(offset::DAEMON) {
                return slot;
            }
        }
        panic!("no free e2e port slot (all {SLOTS} locked or busy)");
    }

    /// Reserves `n` consecutive slots as one: the first's SIP block, and an RTP range over
    /// all `n` blocks (a load test with hundreds of calls needs more than one block's 100
    /// RTP/RTCP pairs).
    pub fn acquire_span(n: u16) -> Slot {
        let dir = std::env::temp_dir().join("switchyard-e2e-slots");
        std::fs::create_dir_all(&dir).expect("create slot lock dir");
        let lock = |index: u16| {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join(format!("slot-{index}.lock")))
                .expect("open slot lock file");
            file.try_lock().is_ok().then_some(file)
        };
        let start = (std::process::id() % u32::from(SLOTS)) as u16;
        for k in 0..SLOTS {
            let first = (start + k) % SLOTS;
            if first + n > SLOTS {
                continue;
            }
            let mut files = Vec::new();
            for index in first..first + n {
                match lock(index) {
                    Some(file) => files.push(file),
                    None => break,
                }
            }
            if files.len() < usize::from(n) {
                continue;
            }
            let head = files.remove(0);
            let slot = Slot {
                index: first,
                _lock: head,
                extra: files,
            };
            if slot.probe_free(offset::DAEMON) {
                return slot;
            }
        }
        panic!("no {n} consecutive free e2e port slots");
    }

    fn probe_free(&self, off: u16) -> bool {
        let p = self.port(off);
        UdpSocket::bind(("127.0.0.1", p)).is_ok() && TcpListener::bind(("127.0.0.1", p)).is_ok()
    }

    pub fn index(&self) -> u16 {
        self.index
    }

    /// A port of this slot's SIP block; `off` < 100 (see [`offset`]).
    pub fn port(&self, off: u16) -> u16 {
        assert!(off < SIP_BLOCK, "slot offset {off} out of block");
        SIP_BASE + self.index * SIP_BLOCK + off
    }

    /// The daemon's SIP port.
    pub fn sip_port(&self) -> u16 {
        self.port(offset::DAEMON)
    }

    /// The daemon's RTP range, inclusive.
    pub fn rtp_range(&self) -> (u16, u16) {
        let lo = RTP_BASE + self.index * RTP_BLOCK;
        let blocks = 1 + self.extra.len() as u16;
        (lo, lo + blocks * RTP_BLOCK - 1)
    }
}
