//! DTMF end to end: the RFC 2833/4733 pcaps shipped with SIPp and the SIPp scenario blocks
//! that play or expect digits, in-band DTMF WAVs for baresip to send, detection of the digits
//! a recording holds, baresip's `sndcode` and received telephone-events, and the switch's
//! `DTMF ...` log lines.

use crate::slot::offset;
use crate::{Baresip, Daemon, Sipp};
use std::f64::consts::PI;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use switchyard_dsp::dtmf::{DtmfDetector, DtmfEvent};

/// Where Debian's sip-tester installs its pcaps.
pub const SIPP_PCAP_DIR: &str = "/usr/share/sip-tester";

/// The SIPp pcap holding one RFC 2833 event for `digit` (0-9, `*`, `#`).
pub fn rfc2833_pcap(digit: char) -> PathBuf {
    let name = match digit {
        '0'..='9' => digit.to_string(),
        '*' => "star".into(),
        '#' => "pound".into(),
        _ => panic!("SIPp ships no RFC 2833 pcap for {digit:?}"),
    };
    let p = Path::new(SIPP_PCAP_DIR).join(format!("dtmf_2833_{name}.pcap"));
    assert!(
        p.is_file(),
        "{} missing (is sip-tester installed?)",
        p.display()
    );
    p
}

/// One RTP packet of a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcapRtp {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

/// The RTP packets (version 2 over UDP over IPv4) of a classic libpcap file, Ethernet
/// (with or without one VLAN tag), Linux cooked or raw IP link layer.
pub fn pcap_rtp_packets(path: &Path) -> Vec<PcapRtp> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(data.len() >= 24, "{}: not a pcap", path.display());
    let magic = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let swapped = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => false,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => true,
        _ => panic!("{}: unknown pcap magic {magic:#x}", path.display()),
    };
    let u32_at = |b: &[u8], o: usize| {
        let v = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if swapped {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    };
    let link = u32_at(&data, 20);
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let caplen = u32_at(&data, off + 8) as usize;
        let start = off + 16;
        let end = (start + caplen).min(data.len());
        off = start + caplen;
        if let Some(rtp) = rtp_of_frame(link, &data[start..end]) {
            out.push(rtp);
        }
    }
    out
}

fn rtp_of_frame(link: u32, frame: &[u8]) -> Option<PcapRtp> {
    let ip = match link {
        // LINKTYPE_ETHERNET: ethertype at 12, one optional 802.1Q tag.
        1 => {
            let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
            match ethertype {
                0x0800 => frame.get(14..)?,
                0x8100 if frame.get(16..18)? == [0x08, 0x00] => frame.get(18..)?,
                _ => return None,
            }
        }
        // LINKTYPE_LINUX_SLL: a 16-byte cooked header, protocol at 14.
        113 if frame.get(14..16)? == [0x08, 0x00] => frame.get(16..)?,
        // LINKTYPE_RAW / DLT_RAW variants.
        12 | 14 | 101 => frame,
        _ => return None,
    };
    let first = *ip.first()?;
    if first >> 4 != 4 || *ip.get(9)? != 17 {
        return None;
    }
    let udp = ip.get(usize::from(first & 0x0f) * 4..)?;
    let rtp = udp.get(8..)?;
    if rtp.len() < 12 || rtp[0] >> 6 != 2 {
        return None;
    }
    Some(PcapRtp {
        payload_type: rtp[1] & 0x7f,
        marker: rtp[1] & 0x80 != 0,
        sequence: u16::from_be_bytes([rtp[2], rtp[3]]),
        timestamp: u32::from_be_bytes([rtp[4], rtp[5], rtp[6], rtp[7]]),
        ssrc: u32::from_be_bytes([rtp[8], rtp[9], rtp[10], rtp[11]]),
    })
}

/// The one RTP payload type the SIPp pcaps of `digits` use for their events (panics if they
/// hold none or several), so a scenario offers telephone-event with exactly that number.
pub fn rfc2833_pcaps_payload_type(digits: &str) -> u8 {
    let mut types: Vec<u8> = digits
        .chars()
        .flat_map(|d| pcap_rtp_packets(&rfc2833_pcap(d)))
        .map(|p| p.payload_type)
        .collect();
    types.sort_unstable();
    types.dedup();
    assert_eq!(
        types.len(),
        1,
        "the DTMF pcaps of {digits:?} use payload types {types:?}, expected one"
    );
    types[0]
}

/// SIPp scenario text that plays the RFC 2833 pcap of each digit, `gap_ms` apart. SIPp
/// cancels a pcap still playing when the next starts, and each pcap lasts about 140 ms, so
/// the gap must be longer than that.
pub fn sipp_play_digits(digits: &str, gap_ms: u32) -> String {
    assert!(
        gap_ms >= 300,
        "a pcap lasts ~140 ms: leave it time to finish"
    );
    digits
        .chars()
        .map(|d| {
            format!(
                "  <nop>\n    <action>\n      <exec play_pcap_audio=\"{}\"/>\n    </action>\n  </nop>\n  <pause milliseconds=\"{gap_ms}\"/>\n",
                rfc2833_pcap(d).display()
            )
        })
        .collect()
}

/// SIPp scenario text for a UAC in a confirmed dialog (`uac_dtmf.xml`) that sends each digit
/// as a SIP INFO (application/dtmf-relay, CSeq 10, 11, ...), waits for its 200, then pauses
/// `gap_ms`.
pub fn sipp_send_info_digits(digits: &str, gap_ms: u32) -> String {
    let mut s = String::new();
    for (i, d) in digits.chars().enumerate() {
        let cseq = 10 + i;
        s.push_str(&format!(
            r#"  <send retrans="500">
    <![CDATA[

      INFO [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:[caller]@[remote_ip]>;tag=[pid]SIPpTag09[call_number]
      To: <sip:[service]@[remote_ip]>[peer_tag_param]
      [routes]
      Call-ID: [call_id]
      CSeq: {cseq} INFO
      Contact: <sip:[caller]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal={d}
      Duration=160

    ]]>
  </send>
  <recv response="200"/>
  <pause milliseconds="{gap_ms}"/>
"#
        ));
    }
    s
}

/// SIPp scenario text for a UAS that must receive one INFO per digit, in order, each carrying
/// `Signal=<digit>` (application/dtmf-relay), and answers each with 200. An INFO with another
/// signal fails the call (`check_it`), so SIPp exits non-zero.
pub fn sipp_expect_info_digits(digits: &str) -> String {
    let mut s = String::new();
    for (i, d) in digits.chars().enumerate() {
        // Signal=* is a regex metacharacter; `#` and digits are literal. `10`/`11` are the
        // numeric spellings of `*`/`#` some peers use.
        let signal = match d {
            '*' => "([*]|10)".to_string(),
            '#' => "(#|11)".to_string(),
            _ => d.to_string(),
        };
        s.push_str(&format!(
            r#"  <recv request="INFO">
    <action>
      <ereg regexp="Signal= *{signal}[[:space:]]" search_in="body" check_it="true" assign_to="info{i}"/>
    </action>
  </recv>
  <Reference variables="info{i}"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
"#
        ));
    }
    s
}

/// Like [`crate::sipp_callee`], replacing each `(placeholder, value)` in the scenario first:
/// registers `user` from the slot's UAS port, then starts the SIPp callee there.
pub fn sipp_callee_with(
    d: &Daemon,
    scenario: &str,
    substitutions: &[(&str, &str)],
    user: &str,
    args: &[&str],
) -> Sipp {
    let port = d.slot().port(offset::SIPP_UAS);
    let p = port.to_string();
    let mp = d.slot().port(offset::SIPP_UAS_MEDIA).to_string();
    let mut all = vec!["-p", &p, "-mp", &mp];
    all.extend_from_slice(args);
    crate::sipp::register(d.sip_port(), port, user, port, 3600);
    Sipp::spawn_with(scenario, substitutions, None, &all)
}

/// The low (row) and high (column) frequency of a DTMF digit (ITU-T Q.23).
pub fn dtmf_frequencies(digit: char) -> (f64, f64) {
    const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    const KEYS: [&str; 4] = ["123A", "456B", "789C", "*0#D"];
    let d = digit.to_ascii_uppercase();
    for (r, row) in KEYS.iter().enumerate() {
        if let Some(c) = row.find(d) {
            return (ROWS[r], COLS[c]);
        }
    }
    panic!("{digit:?} is not a DTMF digit")
}

/// How an in-band DTMF WAV is laid out.
#[derive(Debug, Clone, Copy)]
pub struct DtmfWav {
    /// Silence before the first digit.
    pub lead_ms: u32,
    /// Each digit's tone, then the silence after it.
    pub tone_ms: u32,
    pub gap_ms: u32,
    /// Level of each of the two sines, dB relative to full scale.
    pub level_dbfs: f64,
    /// Total length: silence pads the end (baresip hangs up when its aufile ends).
    pub total_secs: f64,
    pub sample_rate: u32,
}

impl Default for DtmfWav {
    fn default() -> DtmfWav {
        DtmfWav {
            lead_ms: 1000,
            tone_ms: 120,
            gap_ms: 100,
            level_dbfs: -10.0,
            total_secs: 60.0,
            sample_rate: 8000,
        }
    }
}

/// Writes `digits` as dual sines (S16 mono) laid out as `layout` says.
pub fn write_dtmf_wav(path: &Path, digits: &str, layout: DtmfWav) {
    let rate = layout.sample_rate;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let amp = 10f64.powf(layout.level_dbfs / 20.0) * f64::from(i16::MAX);
    let samples = |ms: u32| (u64::from(ms) * u64::from(rate) / 1000) as usize;
    let mut pcm: Vec<i16> = vec![0; samples(layout.lead_ms)];
    for d in digits.chars() {
        let (lo, hi) = dtmf_frequencies(d);
        let w = |f: f64| 2.0 * PI * f / f64::from(rate);
        pcm.extend((0..samples(layout.tone_ms)).map(|i| {
            let t = i as f64;
            (amp * ((w(lo) * t).sin() + (w(hi) * t).sin())).round() as i16
        }));
        pcm.extend(std::iter::repeat_n(0, samples(layout.gap_ms)));
    }
    let total = (layout.total_secs * f64::from(rate)) as usize;
    assert!(
        pcm.len() <= total,
        "the digits do not fit in {} s",
        layout.total_secs
    );
    pcm.resize(total, 0);
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    for s in pcm {
        w.write_sample(s).expect("write sample");
    }
    w.finalize().expect("finalize wav");
}

/// The digits the switch's own detector hears in a 16-bit PCM WAV (first channel), in order.
/// The RIFF sizes are not trusted: a recorder still writing (baresip's sndfile updates them
/// on close) leaves them zero, so the data runs to the end of the file.
pub fn detect_dtmf_wav(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let (rate, channels, data) =
        wav_pcm16(&bytes).unwrap_or_else(|| panic!("{}: not a 16-bit PCM WAV", path.display()));
    let pcm: Vec<i16> = data
        .chunks_exact(2 * channels)
        .map(|f| i16::from_le_bytes([f[0], f[1]]))
        .collect();
    let mut detector = DtmfDetector::new(rate);
    let mut digits = String::new();
    let mut on_event = |e| {
        if let DtmfEvent::End { digit, .. } = e {
            digits.push(digit);
        }
    };
    detector.process(&pcm, &mut on_event);
    // Some silence ends a digit still sounding at the end of the file.
    detector.process(&vec![0i16; rate as usize / 10], &mut on_event);
    digits
}

/// (sample rate, channels, sample bytes) of a 16-bit PCM WAV.
fn wav_pcm16(bytes: &[u8]) -> Option<(u32, usize, &[u8])> {
    if bytes.get(0..4)? != b"RIFF" || bytes.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut format = None;
    let mut off = 12;
    while off + 8 <= bytes.len() {
        let id = &bytes[off..off + 4];
        let size = u32::from_le_bytes(bytes[off + 4..off + 8].try_into().ok()?) as usize;
        let body = off + 8;
        if id == b"fmt " {
            let f = bytes.get(body..body + 16)?;
            let tag = u16::from_le_bytes([f[0], f[1]]);
            let channels = usize::from(u16::from_le_bytes([f[2], f[3]]));
            let rate = u32::from_le_bytes([f[4], f[5], f[6], f[7]]);
            let bits = u16::from_le_bytes([f[14], f[15]]);
            // 1 = PCM, 0xFFFE = WAVE_FORMAT_EXTENSIBLE (PCM for our recorders).
            if !matches!(tag, 1 | 0xfffe) || bits != 16 || channels == 0 {
                return None;
            }
            format = Some((rate, channels));
        } else if id == b"data" {
            let (rate, channels) = format?;
            let end = if size == 0 || body + size > bytes.len() {
                bytes.len()
            } else {
                body + size
            };
            return Some((rate, channels, &bytes[body..end]));
        }
        off = body + size + (size & 1);
    }
    None
}

/// One `DTMF uuid=.. leg=.. digit=.. duration_ms=.. via=..` line of the switch's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtmfLogLine {
    pub uuid: String,
    pub leg: String,
    pub digit: char,
    pub via: String,
}

/// The DTMF lines of a daemon log, in order.
pub fn dtmf_log_lines(log: &str) -> Vec<DtmfLogLine> {
    log.lines()
        .filter(|l| l.contains("DTMF") && l.contains("digit=") && l.contains("via="))
        .filter_map(|l| {
            let field = |name: &str| {
                let key = format!("{name}=");
                let at = l
                    .match_indices(&key)
                    .find(|(i, _)| *i == 0 || l.as_bytes()[i - 1].is_ascii_whitespace())?;
                let rest = &l[at.0 + key.len()..];
                let rest = rest.strip_prefix('"').unwrap_or(rest);
                let end = rest
                    .find(|c: char| c == '"' || c.is_whitespace())
                    .unwrap_or(rest.len());
                Some(rest[..end].to_string())
            };
            Some(DtmfLogLine {
                uuid: field("uuid").unwrap_or_default(),
                leg: field("leg").unwrap_or_default(),
                digit: field("digit")?.chars().next()?,
                via: field("via")?,
            })
        })
        .collect()
}

impl Baresip {
    /// Sends `digits` as telephone-events on the current call (the menu module's `sndcode`).
    pub fn send_digits(&mut self, digits: &str) {
        self.command("sndcode", digits);
    }

    /// Waits for `n` received telephone-events (`CALL_DTMF_START`, whose `param` is the digit)
    /// and returns their digits in order.
    pub fn wait_dtmf_digits(&mut self, n: usize, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut digits = String::new();
        while digits.chars().count() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = self.wait_event("CALL_DTMF_START", left.max(Duration::from_millis(1)));
            digits.push_str(ev["param"].as_str().unwrap_or("?"));
        }
        digits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_wav_is_detected_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wav = dir.path().join("d.wav");
        write_dtmf_wav(
            &wav,
            "2580*#",
            DtmfWav {
                total_secs: 3.0,
                ..DtmfWav::default()
            },
        );
        assert_eq!(detect_dtmf_wav(&wav), "2580*#");
    }

    #[test]
    fn a_wav_still_being_written_is_read_to_its_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wav = dir.path().join("d.wav");
        write_dtmf_wav(
            &wav,
            "147",
            DtmfWav {
                total_secs: 2.0,
                ..DtmfWav::default()
            },
        );
        // What a recorder leaves before it closes: zero RIFF and data sizes.
        let mut bytes = std::fs::read(&wav).expect("read");
        bytes[4..8].fill(0);
        let data = bytes
            .windows(4)
            .position(|w| w == b"data")
            .expect("data chunk");
        bytes[data + 4..data + 8].fill(0);
        std::fs::write(&wav, bytes).expect("write");
        assert_eq!(detect_dtmf_wav(&wav), "147");
    }

    #[test]
    fn a_quiet_wav_has_no_digits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wav = dir.path().join("d.wav");
        write_dtmf_wav(
            &wav,
            "",
            DtmfWav {
                total_secs: 1.0,
                ..DtmfWav::default()
            },
        );
        assert_eq!(detect_dtmf_wav(&wav), "");
    }

    #[test]
    fn dtmf_log_lines_parse_quoted_and_bare_fields() {
        let log = "2025 INFO switchyard_engine: DTMF uuid=\"ab-1\" leg=\"caller\" digit=5 duration_ms=120 via=\"rfc4733\"\n\
                   2025 INFO switchyard_engine: DTMF uuid=ab-2 digit=# via=info\n\
                   2025 INFO something else digit=4";
        assert_eq!(
            dtmf_log_lines(log),
            vec![
                DtmfLogLine {
                    uuid: "ab-1".into(),
                    leg: "caller".into(),
                    digit: '5',
                    via: "rfc4733".into()
                },
                DtmfLogLine {
                    uuid: "ab-2".into(),
                    leg: String::new(),
                    digit: '#',
                    via: "info".into()
                },
            ]
        );
    }

    #[test]
    fn sipp_dtmf_pcaps_are_rfc2833_events() {
        let packets = pcap_rtp_packets(&rfc2833_pcap('1'));
        assert!(!packets.is_empty());
        assert!(packets[0].marker, "an event starts with the marker bit");
        assert_eq!(rfc2833_pcaps_payload_type("123"), packets[0].payload_type);
    }
}
