//! The Opus `a=fmtp` parameters of RFC 7587 §6.1.

use std::fmt::Write as _;

/// Opus media type parameters (RFC 7587 §6.1), as carried in an SDP `a=fmtp`
/// line. Each field describes the side that sent the SDP: `max_playback_rate`,
/// `stereo`, `use_inband_fec` and `use_dtx` are what it wants to *receive*;
/// `sprop_*` are properties of what it *sends*.
///
/// `Default` gives the RFC defaults: 48000 Hz playback and capture, mono, VBR,
/// no FEC, no DTX, no bitrate or ptime limits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpusFmtp {
    /// `maxplaybackrate`: the highest audio rate the receiver renders, 8000..=48000.
    pub max_playback_rate: u32,
    /// `sprop-maxcapturerate`: the highest rate the sender captures, 8000..=48000.
    pub sprop_max_capture_rate: u32,
    /// `maxaveragebitrate` in bit/s, 6000..=510000.
    pub max_average_bitrate: Option<u32>,
    /// `stereo`: the receiver prefers stereo.
    pub stereo: bool,
    /// `sprop-stereo`: the sender is likely to send stereo.
    pub sprop_stereo: bool,
    /// `cbr`: the receiver wants constant bitrate.
    pub cbr: bool,
    /// `useinbandfec`: the receiver can use Opus in-band FEC.
    pub use_inband_fec: bool,
    /// `usedtx`: the receiver prefers discontinuous transmission.
    pub use_dtx: bool,
    /// `ptime` in ms (RFC 4566 §6, allowed inside the Opus fmtp by RFC 7587 §6.1).
    pub ptime: Option<u32>,
    /// `maxptime` in ms (RFC 7587 §6.1 with RFC 4566 §6 meaning; at most 120).
    pub max_ptime: Option<u32>,
    /// `minptime` in ms: not in RFC 7587, but browsers send `minptime=10`.
    pub min_ptime: Option<u32>,
}

impl Default for OpusFmtp {
    fn default() -> Self {
        OpusFmtp {
            max_playback_rate: 48_000,
            sprop_max_capture_rate: 48_000,
            max_average_bitrate: None,
            stereo: false,
            sprop_stereo: false,
            cbr: false,
            use_inband_fec: false,
            use_dtx: false,
            ptime: None,
            max_ptime: None,
            min_ptime: None,
        }
    }
}

/// Opus carries 120 ms at most in one packet (RFC 6716 §3.2.5).
const MAX_PTIME_MS: u32 = 120;

fn parse_rate(value: &str) -> Option<u32> {
    value
        .parse()
        .ok()
        .filter(|rate| (8_000..=48_000).contains(rate))
}

fn parse_flag(value: &str) -> Option<bool> {
    match value {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

fn parse_ptime(value: &str) -> Option<u32> {
    value
        .parse()
        .ok()
        .filter(|ms| (1..=MAX_PTIME_MS).contains(ms))
}

impl OpusFmtp {
    /// Parses the parameter part of an `a=fmtp:<pt> ...` line, e.g.
    /// `"minptime=10;useinbandfec=1"`. Names are case-insensitive (RFC 4855 §3)
    /// and whitespace around `;` and `=` is tolerated. Unknown parameters, and
    /// known ones with a value outside the RFC's range, are ignored and leave
    /// the default: a peer's fmtp never makes a call fail.
    pub fn parse(fmtp: &str) -> OpusFmtp {
        let mut params = OpusFmtp::default();
        for item in fmtp.split(';') {
            let Some((name, value)) = item.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            let name_is = |known: &str| name.eq_ignore_ascii_case(known);
            if name_is("maxplaybackrate") {
                if let Some(rate) = parse_rate(value) {
                    params.max_playback_rate = rate;
                }
            } else if name_is("sprop-maxcapturerate") {
                if let Some(rate) = parse_rate(value) {
                    params.sprop_max_capture_rate = rate;
                }
            } else if name_is("maxaveragebitrate") {
                if let Some(bitrate) = value.parse().ok().filter(|b| (6_000..=510_000).contains(b))
                {
                    params.max_average_bitrate = Some(bitrate);
                }
            } else if name_is("stereo") {
                params.stereo = parse_flag(value).unwrap_or(params.stereo);
            } else if name_is("sprop-stereo") {
                params.sprop_stereo = parse_flag(value).unwrap_or(params.sprop_stereo);
            } else if name_is("cbr") {
                params.cbr = parse_flag(value).unwrap_or(params.cbr);
            } else if name_is("useinbandfec") {
                params.use_inband_fec = parse_flag(value).unwrap_or(params.use_inband_fec);
            } else if name_is("usedtx") {
                params.use_dtx = parse_flag(value).unwrap_or(params.use_dtx);
            } else if name_is("ptime") {
                params.ptime = parse_ptime(value).or(params.ptime);
            } else if name_is("maxptime") {
                params.max_ptime = parse_ptime(value).or(params.max_ptime);
            } else if name_is("minptime") {
                params.min_ptime = parse_ptime(value).or(params.min_ptime);
            }
        }
        params
    }

    /// Formats the parameters that differ from the RFC defaults, `;`-separated
    /// in a fixed order. An empty string means "all defaults": the caller then
    /// omits the `a=fmtp` line, which must not be empty (RFC 4566 §6).
    pub fn to_fmtp(&self) -> String {
        let defaults = OpusFmtp::default();
        let mut out = String::new();
        let mut put = |name: &str, value: u32| {
            if !out.is_empty() {
                out.push(';');
            }
            // Writing to a String cannot fail.
            let _ = write!(out, "{name}={value}");
        };
        if let Some(ms) = self.min_ptime {
            put("minptime", ms);
        }
        if let Some(ms) = self.ptime {
            put("ptime", ms);
        }
        if let Some(ms) = self.max_ptime {
            put("maxptime", ms);
        }
        if self.max_playback_rate != defaults.max_playback_rate {
            put("maxplaybackrate", self.max_playback_rate);
        }
        if self.sprop_max_capture_rate != defaults.sprop_max_capture_rate {
            put("sprop-maxcapturerate", self.sprop_max_capture_rate);
        }
        if let Some(bitrate) = self.max_average_bitrate {
            put("maxaveragebitrate", bitrate);
        }
        for (name, on) in [
            ("stereo", self.stereo),
            ("sprop-stereo", self.sprop_stereo),
            ("cbr", self.cbr),
            ("useinbandfec", self.use_inband_fec),
            ("usedtx", self.use_dtx),
        ] {
            if on {
                put(name, 1);
            }
        }
        out
    }
}
