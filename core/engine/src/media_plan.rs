//! How a call's media is set up: which codec each leg speaks, whether the relay suffices or
//! the legs must be terminated (transcoding, DTMF conversion, recording), how DTMF travels,
//! what prompts and tones sound like, and the quality figures kept in the CDR.
//!
//! Pure functions and a prompt cache; the switch applies the decisions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use switchyard_config::DtmfMode;
use switchyard_dsp::tone::{self, ToneKind, ToneSpec};
use switchyard_dsp::wav::{self, Clip};
use switchyard_media::{CodecKind, LegCodec, LegQuality, OpusFmtp, PlayItem};
use switchyard_rtp::quality::{EModelInput, mos_from_r, r_factor};
use switchyard_sdp::{Codec, CodecOffer};

/// How DTMF travels on one leg once negotiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LegDtmf {
    Rfc4733,
    Info,
    Inband,
}

impl LegDtmf {
    /// The user's setting against what the leg negotiated: RFC 4733 needs telephone-event in
    /// the SDP; without it, "auto" and "rfc4733" fall back to tones.
    pub(crate) fn resolve(mode: DtmfMode, telephone_event: bool) -> LegDtmf {
        match mode {
            DtmfMode::Auto | DtmfMode::Rfc4733 if telephone_event => LegDtmf::Rfc4733,
            DtmfMode::Auto | DtmfMode::Rfc4733 | DtmfMode::Inband => LegDtmf::Inband,
            DtmfMode::Info => LegDtmf::Info,
        }
    }
}

/// The codecs of `[media] codecs` as SDP additions for a callee's offer, in that order. Unknown
/// names are skipped (config loading warns about them).
pub(crate) fn transcodable_offers(names: &[String]) -> Vec<CodecOffer<'static>> {
    names
        .iter()
        .filter_map(|name| CodecKind::from_encoding_name(name))
        .map(|kind| CodecOffer {
            name: kind.encoding_name(),
            clock_rate: kind.rtp_clock_rate(),
            channels: (kind == CodecKind::Opus).then_some(2),
            static_payload_type: kind.static_payload_type(),
            fmtp: (kind == CodecKind::Opus).then_some("useinbandfec=1"),
        })
        .chain(
            // DTMF events at both clock rates our codecs use (RFC 4733 §2.1: the rate of the
            // audio codec), so a callee answering Opus or G.711 can keep its events.
            [8000, 48000].map(|clock_rate| CodecOffer {
                name: "telephone-event",
                clock_rate,
                channels: None,
                static_payload_type: None,
                fmtp: Some("0-16"),
            }),
        )
        .collect()
}

/// Whether the active audio stream is plain RTP: SRTP (SAVP) is relayed untouched, never
/// decoded, transcoded or recorded here.
pub(crate) fn plain_rtp(sdp: &switchyard_sdp::SessionDescription) -> bool {
    sdp.active_audio().is_some_and(|m| {
        matches!(
            m.proto.to_ascii_uppercase().as_str(),
            "RTP/AVP" | "RTP/AVPF"
        )
    })
}

/// Whether we can decode this SDP codec.
pub(crate) fn decodable(codec: &Codec) -> bool {
    CodecKind::from_encoding_name(&codec.name)
        .is_some_and(|kind| kind.rtp_clock_rate() == codec.clock_rate)
}

/// The leg's codec for the media engine. `opus_rate` is the PCM rate an Opus leg works at:
/// the rate of what it is connected to, so a bridge to G.711 needs no resampler.
pub(crate) fn leg_codec(
    codec: &Codec,
    telephone_event: Option<u8>,
    opus_rate: u32,
) -> Option<LegCodec> {
    if !decodable(codec) {
        return None;
    }
    let kind = CodecKind::from_encoding_name(&codec.name)?;
    let opus = codec
        .fmtp
        .as_deref()
        .map(OpusFmtp::parse)
        .unwrap_or_default();
    let sample_rate = match kind {
        CodecKind::Opus => opus_rate.min(opus.max_playback_rate.max(8000)),
        other => other.default_sample_rate(),
    };
    let sample_rate = if kind.supports_sample_rate(sample_rate) {
        sample_rate
    } else {
        kind.default_sample_rate()
    };
    Some(LegCodec {
        kind,
        payload_type: codec.payload_type,
        sample_rate,
        opus,
        telephone_event,
        also_receives: None,
    })
}

/// The PCM rate a leg of this SDP codec naturally has (Opus: wideband is enough for voice).
pub(crate) fn natural_rate(codec: &Codec) -> u32 {
    match CodecKind::from_encoding_name(&codec.name) {
        Some(CodecKind::Opus) => 16_000,
        Some(kind) => kind.default_sample_rate(),
        None => 8000,
    }
}

/// ITU-T G.107 E-model MOS estimate for a leg, from what we measured receiving it. The
/// mouth-to-ear delay is taken as half the RTCP round trip, plus the jitter buffer (or twice
/// the jitter when we only relay), plus one 20 ms packet.
pub(crate) fn mos(quality: &LegQuality) -> Option<f64> {
    if quality.packets_received == 0 {
        return None;
    }
    let codec = quality.codec.as_deref().unwrap_or("PCMU");
    // G.113 Appendix I: G.711 Ie 0 with Bpl 25.1 (with PLC); Opus and G.722 are wideband
    // codecs the narrowband E-model scores like G.711 at these bitrates.
    let (ie, bpl) = match codec {
        c if c.starts_with("opus") => (0.0, 20.0),
        "G722" => (0.0, 20.0),
        _ => (0.0, 25.1),
    };
    let buffer = quality.jitter_buffer_ms.unwrap_or(2.0 * quality.jitter_ms);
    let delay = quality.rtt_ms.unwrap_or(0.0) / 2.0 + buffer + 20.0;
    let input = EModelInput {
        ie,
        bpl,
        packet_loss_percent: quality.loss_percent.clamp(0.0, 100.0),
        burst_ratio: 1.0,
        one_way_delay_ms: delay,
    };
    Some((mos_from_r(r_factor(&input)) * 100.0).round() / 100.0)
}

/// SIP INFO DTMF (application/dtmf-relay: "Signal=5\r\nDuration=160"; application/dtmf: "5").
pub(crate) fn parse_dtmf_info(content_type: &str, body: &[u8]) -> Option<(char, u32)> {
    let text = std::str::from_utf8(body).ok()?;
    let content_type = content_type.to_ascii_lowercase();
    let valid = |c: char| matches!(c, '0'..='9' | '*' | '#' | 'A'..='D');
    if content_type.starts_with("application/dtmf-relay") {
        let mut digit = None;
        let mut duration = 160;
        for line in text.lines() {
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            match name.trim().to_ascii_lowercase().as_str() {
                "signal" => {
                    let value = value.trim();
                    digit = match value {
                        "10" => Some('*'),
                        "11" => Some('#'),
                        v if v.len() == 1 => v.chars().next().map(|c| c.to_ascii_uppercase()),
                        _ => None,
                    };
                }
                "duration" => duration = value.trim().parse().unwrap_or(160),
                _ => {}
            }
        }
        let digit = digit.filter(|c| valid(*c))?;
        Some((digit, duration.clamp(40, 5000)))
    } else if content_type.starts_with("application/dtmf") {
        let digit = text.trim().chars().next()?.to_ascii_uppercase();
        valid(digit).then_some((digit, 160))
    } else {
        None
    }
}

/// The body of a SIP INFO carrying one digit (the de-facto application/dtmf-relay format).
pub(crate) fn dtmf_info_body(digit: char, duration_ms: u32) -> String {
    format!("Signal={digit}\r\nDuration={duration_ms}\r\n")
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SoundError {
    #[error("prompt {path}: {source}")]
    Prompt {
        path: PathBuf,
        source: switchyard_dsp::Error,
    },
    #[error(
        "tone {0:?}: neither a known tone name (dial, ringback, busy, congestion) nor a tone spec"
    )]
    Tone(String),
}

/// Prompts, tones and music, loaded from `sounds_dir` once and shared by every call.
pub(crate) struct Sounds {
    dir: PathBuf,
    country: String,
    clips: HashMap<PathBuf, Clip>,
}

impl Sounds {
    pub(crate) fn new(dir: &Path, country: &str) -> Sounds {
        Sounds {
            dir: dir.to_path_buf(),
            country: country.to_owned(),
            clips: HashMap::new(),
        }
    }

    /// The set at 16 kHz for wideband legs, else 8 kHz: the player resamples the rest.
    fn set_rate(rate: u32) -> u32 {
        if rate >= 16_000 { 16_000 } else { 8000 }
    }

    /// Loads (once) and returns a clip. Blocking file I/O on the first use of each prompt:
    /// prompts are a few kilobytes and cached for the daemon's life.
    fn clip(&mut self, path: PathBuf) -> Result<Clip, SoundError> {
        if let Some(clip) = self.clips.get(&path) {
            return Ok(clip.clone());
        }
        let clip = wav::load(&path).map_err(|source| SoundError::Prompt {
            path: path.clone(),
            source,
        })?;
        self.clips.insert(path, clip.clone());
        Ok(clip)
    }

    pub(crate) fn prompts(
        &mut self,
        lang: &str,
        names: &[String],
        rate: u32,
    ) -> Result<Vec<PlayItem>, SoundError> {
        let set = Self::set_rate(rate);
        names
            .iter()
            .map(|name| {
                let path = self
                    .dir
                    .join(lang)
                    .join(set.to_string())
                    .join(format!("{name}.wav"));
                self.clip(path).map(PlayItem::Clip)
            })
            .collect()
    }

    /// A WAV file by its path (`playback /path/file.wav`).
    pub(crate) fn file(&mut self, path: PathBuf) -> Result<Clip, SoundError> {
        self.clip(path)
    }

    pub(crate) fn music_on_hold(&mut self, rate: u32) -> Result<Vec<PlayItem>, SoundError> {
        let set = Self::set_rate(rate);
        let path = self.dir.join("music").join(set.to_string()).join("moh.wav");
        Ok(vec![PlayItem::Clip(self.clip(path)?)])
    }

    /// A call-progress tone of the configured country by name, or a tone spec.
    pub(crate) fn tone(&self, name: &str) -> Result<ToneSpec, SoundError> {
        let kind = match name {
            "dial" => Some(ToneKind::Dial),
            "ringback" => Some(ToneKind::Ringback),
            "busy" => Some(ToneKind::Busy),
            "congestion" | "reorder" => Some(ToneKind::Congestion),
            _ => None,
        };
        let spec = match kind {
            Some(kind) => tone::country_tone(&self.country, kind)
                .or_else(|| tone::country_tone("us", kind))
                .ok_or_else(|| SoundError::Tone(name.to_owned()))?,
            None => name,
        };
        ToneSpec::parse(spec).map_err(|_| SoundError::Tone(name.to_owned()))
    }

    /// The short rising beep of someone joining a conference, the falling one of a leave.
    pub(crate) fn conference_tone(joining: bool) -> ToneSpec {
        let spec = if joining {
            "L=1;%(100,20,600);%(100,20,800)"
        } else {
            "L=1;%(100,20,800);%(100,20,600)"
        };
        ToneSpec::parse(spec).expect("a valid built-in tone")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_info_bodies_parse() {
        assert_eq!(
            parse_dtmf_info("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
            Some(('5', 160))
        );
        assert_eq!(
            parse_dtmf_info("Application/DTMF-Relay", b"Signal= #\nDuration= 250"),
            Some(('#', 250))
        );
        assert_eq!(
            parse_dtmf_info("application/dtmf-relay", b"Signal=11"),
            Some(('#', 160))
        );
        assert_eq!(parse_dtmf_info("application/dtmf", b"7"), Some(('7', 160)));
        assert_eq!(parse_dtmf_info("application/dtmf-relay", b"Signal=x"), None);
        assert_eq!(parse_dtmf_info("text/plain", b"Signal=1"), None);
        let body = dtmf_info_body('9', 200);
        assert_eq!(
            parse_dtmf_info("application/dtmf-relay", body.as_bytes()),
            Some(('9', 200))
        );
    }

    #[test]
    fn dtmf_modes_fall_back_to_tones_without_telephone_event() {
        assert_eq!(LegDtmf::resolve(DtmfMode::Auto, true), LegDtmf::Rfc4733);
        assert_eq!(LegDtmf::resolve(DtmfMode::Auto, false), LegDtmf::Inband);
        assert_eq!(LegDtmf::resolve(DtmfMode::Info, true), LegDtmf::Info);
        assert_eq!(LegDtmf::resolve(DtmfMode::Inband, true), LegDtmf::Inband);
    }

    #[test]
    fn a_clean_g711_leg_scores_near_the_top_and_loss_lowers_it() {
        let clean = LegQuality {
            codec: Some("PCMA".into()),
            packets_received: 500,
            ..LegQuality::default()
        };
        let good = mos(&clean).unwrap();
        assert!(good > 4.3 && good < 4.5, "{good}");
        let lossy = LegQuality {
            loss_percent: 5.0,
            ..clean.clone()
        };
        assert!(mos(&lossy).unwrap() < good - 0.3);
        assert_eq!(mos(&LegQuality::default()), None);
    }

    #[test]
    fn opus_legs_follow_what_they_connect_to() {
        let opus = Codec {
            payload_type: 111,
            name: "opus".into(),
            clock_rate: 48000,
            channels: Some(2),
            fmtp: Some("useinbandfec=1".into()),
        };
        let leg = leg_codec(&opus, Some(101), 8000).unwrap();
        assert_eq!(
            (leg.kind, leg.sample_rate, leg.payload_type),
            (CodecKind::Opus, 8000, 111)
        );
        assert!(leg.opus.use_inband_fec);
        let pcma = Codec {
            payload_type: 8,
            name: "PCMA".into(),
            clock_rate: 8000,
            channels: None,
            fmtp: None,
        };
        assert_eq!(leg_codec(&pcma, None, 48000).unwrap().sample_rate, 8000);
        let unknown = Codec {
            name: "GSM".into(),
            ..pcma
        };
        assert!(leg_codec(&unknown, None, 8000).is_none());
    }
}
