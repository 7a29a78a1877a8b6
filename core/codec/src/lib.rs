//! Voice codecs for the media reactors: G.711 A-law and µ-law, G.722 and Opus.
//!
//! An [`Encoder`] turns one frame of 16-bit mono PCM into an RTP payload; a
//! [`Decoder`] turns a payload back into PCM, conceals lost frames and, for Opus,
//! recovers a lost frame from the in-band FEC of the next packet.
//!
//! # Two rates
//!
//! Every codec has two rates that are easy to confuse:
//!
//! - the **RTP clock rate** ([`CodecKind::rtp_clock_rate`]), which is what the
//!   SDP `a=rtpmap` line carries and what RTP timestamps count in;
//! - the **PCM rate** ([`CodecParams::sample_rate`]), the rate of the samples we
//!   exchange with the codec.
//!
//! | codec | RTP clock | PCM rate |
//! |---|---|---|
//! | PCMU, PCMA | 8000 | 8000 |
//! | G.722 | 8000 | 16000 |
//! | Opus | 48000 | 8000, 12000, 16000, 24000 or 48000 |
//!
//! G.722 samples at 16 kHz but is registered with an 8000 Hz RTP clock: RFC 1890
//! got it wrong and RFC 3551 §4.5.2 kept the error for compatibility, so a 20 ms
//! G.722 packet advances the timestamp by 160, not 320. Opus always uses a 48 kHz
//! RTP clock whatever rate it is coded at (RFC 7587 §4.1), so a 20 ms frame
//! advances the timestamp by 960 even when we exchange 8 kHz PCM with it.
//! [`CodecParams::rtp_ticks`] does this conversion.
//!
//! # Use
//!
//! ```
//! use switchyard_codec::{CodecKind, CodecParams, Decoder, Encoder, OpusFmtp};
//!
//! // A WebRTC leg: Opus with the peer's fmtp, coded at 8 kHz to meet a PSTN leg.
//! let mut params = CodecParams::new(CodecKind::Opus).with_sample_rate(8_000);
//! params.opus = OpusFmtp::parse("minptime=10;useinbandfec=1");
//! let mut encoder = Encoder::new(&params)?;
//! let mut decoder = Decoder::new(&params)?;
//!
//! let pcm = [0i16; 160]; // 20 ms at 8 kHz
//! let mut payload = [0u8; switchyard_codec::MAX_OPUS_PAYLOAD];
//! let len = encoder.encode(&pcm, &mut payload)?;
//! assert_eq!(params.rtp_ticks(pcm.len()), 960); // the RTP timestamp step
//!
//! let mut out = [0i16; 960]; // room for up to 120 ms at 8 kHz
//! assert_eq!(decoder.decode(&payload[..len], &mut out)?, 160);
//! // The next packet is missing: conceal one 20 ms frame.
//! assert_eq!(decoder.conceal(&mut out[..160]), 160);
//! # Ok::<(), switchyard_codec::Error>(())
//! ```
//!
//! # Steady state
//!
//! All state is allocated in `new`; `encode`, `decode`, `conceal` and
//! `decode_fec` write into caller buffers and do not allocate.

#![forbid(unsafe_code)]

mod fmtp;
pub mod g711;
pub mod g722;
mod plc;

use std::fmt;

pub use fmtp::OpusFmtp;
use plc::Plc;

/// The codecs we terminate and transcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodecKind {
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    /// G.722 at 64 kbit/s.
    G722,
    /// Opus (RFC 6716, RTP payload format RFC 7587), mono.
    Opus,
}

impl CodecKind {
    /// Every codec, widest audio band first.
    pub const ALL: [CodecKind; 4] = [
        CodecKind::Opus,
        CodecKind::G722,
        CodecKind::Pcmu,
        CodecKind::Pcma,
    ];

    /// The encoding name of the SDP `a=rtpmap` line (RFC 3551 §6, RFC 7587 §7).
    pub fn encoding_name(self) -> &'static str {
        match self {
            CodecKind::Pcmu => "PCMU",
            CodecKind::Pcma => "PCMA",
            CodecKind::G722 => "G722",
            CodecKind::Opus => "opus",
        }
    }

    /// The codec for an `a=rtpmap` encoding name; names are case-insensitive
    /// (RFC 4855 §3).
    pub fn from_encoding_name(name: &str) -> Option<CodecKind> {
        CodecKind::ALL
            .into_iter()
            .find(|kind| kind.encoding_name().eq_ignore_ascii_case(name))
    }

    /// The static payload type of RFC 3551 Table 4; Opus is always dynamic.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            CodecKind::Pcmu => Some(0),
            CodecKind::Pcma => Some(8),
            CodecKind::G722 => Some(9),
            CodecKind::Opus => None,
        }
    }

    /// The RTP timestamp clock rate: 8000 for G.722 although it samples at
    /// 16 kHz (RFC 3551 §4.5.2), 48000 for Opus at any rate (RFC 7587 §4.1).
    pub fn rtp_clock_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma | CodecKind::G722 => 8_000,
            CodecKind::Opus => 48_000,
        }
    }

    /// The PCM rate a codec is used at unless asked otherwise: 8 kHz for G.711,
    /// 16 kHz for G.722, 48 kHz for Opus.
    pub fn default_sample_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => 8_000,
            CodecKind::G722 => 16_000,
            CodecKind::Opus => 48_000,
        }
    }

    /// Whether `sample_rate` is a PCM rate this codec can be used at.
    pub fn supports_sample_rate(self, sample_rate: u32) -> bool {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => sample_rate == 8_000,
            CodecKind::G722 => sample_rate == 16_000,
            CodecKind::Opus => OPUS_RATES.contains(&sample_rate),
        }
    }
}

impl fmt::Display for CodecKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encoding_name())
    }
}

/// The PCM rates libopus accepts (RFC 6716 §2).
const OPUS_RATES: [u32; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];

/// The default Opus encoder complexity.
///
/// 5 is the lowest level at which SILK (the speech layer) uses its full tool
/// set: warped noise shaping, NLSF interpolation, 10th-order LPC, two
/// delayed-decision states (libopus `silk_setup_complexity`); 2–3 drop those
/// and 6–10 add states and search at 1.5–2× the cost. It is also WebRTC's
/// choice on mobile. `benches/codec.rs` measures about 55 µs per 20 ms encode
/// at 8 kHz, some 340 Opus<->PCMA calls per core; complexity 0 is ~3× cheaper
/// and available per call when a host runs short.
pub const DEFAULT_OPUS_COMPLEXITY: u8 = 5;

/// Loss rate the Opus encoder plans for when FEC is on: enough for libopus to
/// carry LBRR data in every packet without starving the main layer.
const OPUS_FEC_LOSS_PERCENT: u8 = 10;

/// The largest Opus packet of one frame (RFC 6716 §3.2.1).
pub const MAX_OPUS_PAYLOAD: usize = 1275;

/// How a codec instance is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecParams {
    /// The codec.
    pub kind: CodecKind,
    /// The PCM rate we exchange with the codec (see the crate docs): 8000 for
    /// G.711, 16000 for G.722, one of 8000/12000/16000/24000/48000 for Opus.
    pub sample_rate: u32,
    /// For Opus, the fmtp the *remote* side sent: it shapes what our encoder
    /// sends (bandwidth, bitrate, FEC, DTX, CBR). Ignored by other codecs.
    pub opus: OpusFmtp,
    /// Opus encoder complexity, 0..=10, default [`DEFAULT_OPUS_COMPLEXITY`].
    pub complexity: u8,
}

impl CodecParams {
    /// Parameters for `kind` at its default PCM rate, default fmtp and
    /// complexity.
    pub fn new(kind: CodecKind) -> CodecParams {
        CodecParams {
            kind,
            sample_rate: kind.default_sample_rate(),
            opus: OpusFmtp::default(),
            complexity: DEFAULT_OPUS_COMPLEXITY,
        }
    }

    /// The same parameters at another PCM rate.
    pub fn with_sample_rate(mut self, sample_rate: u32) -> CodecParams {
        self.sample_rate = sample_rate;
        self
    }

    /// Samples in a 20 ms frame at the PCM rate.
    pub fn frame_samples(&self) -> usize {
        self.sample_rate as usize / 50
    }

    /// RTP timestamp ticks for `pcm_samples` samples at the PCM rate, e.g. 160
    /// for a 20 ms G.722 frame of 320 samples, 960 for 20 ms of Opus at 8 kHz.
    pub fn rtp_ticks(&self, pcm_samples: usize) -> u32 {
        (pcm_samples as u64 * u64::from(self.kind.rtp_clock_rate()) / u64::from(self.sample_rate))
            as u32
    }

    fn validate(&self) -> Result<(), Error> {
        if !self.kind.supports_sample_rate(self.sample_rate) {
            return Err(Error::UnsupportedSampleRate {
                kind: self.kind,
                sample_rate: self.sample_rate,
            });
        }
        if self.kind == CodecKind::Opus && self.complexity > 10 {
            return Err(Error::InvalidComplexity(self.complexity));
        }
        Ok(())
    }
}

/// What can go wrong in this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The codec cannot run at this PCM rate (local misuse).
    #[error("{kind} does not support a PCM rate of {sample_rate} Hz")]
    UnsupportedSampleRate {
        /// The codec asked for.
        kind: CodecKind,
        /// The rate asked for.
        sample_rate: u32,
    },
    /// Opus complexity above 10 (local misuse).
    #[error("Opus complexity {0} is out of range 0..=10")]
    InvalidComplexity(u8),
    /// A PCM frame whose length the codec cannot code: odd for G.722, not
    /// 2.5/5/10/20/40/60 ms for Opus (local misuse).
    #[error("{kind} cannot code a frame of {samples} samples")]
    InvalidFrameLength {
        /// The codec.
        kind: CodecKind,
        /// The frame length given.
        samples: usize,
    },
    /// The output buffer is too small for the result (local misuse).
    #[error("output buffer too small: {needed} needed, {available} available")]
    OutputTooSmall {
        /// Elements the result needs.
        needed: usize,
        /// Elements the buffer has.
        available: usize,
    },
    /// The peer sent a payload the codec cannot parse.
    #[error("malformed {kind} payload: {reason}")]
    MalformedPayload {
        /// The codec.
        kind: CodecKind,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// libopus refused: for a decode, usually a malformed packet from the peer.
    #[error("Opus {operation} failed: {source}")]
    Opus {
        /// What we asked libopus to do.
        operation: &'static str,
        /// libopus' error, with its message.
        source: audiopus::Error,
    },
}

fn opus_error(operation: &'static str) -> impl Fn(audiopus::Error) -> Error + Copy {
    move |source| Error::Opus { operation, source }
}

fn opus_rate(sample_rate: u32) -> audiopus::SampleRate {
    match sample_rate {
        8_000 => audiopus::SampleRate::Hz8000,
        12_000 => audiopus::SampleRate::Hz12000,
        16_000 => audiopus::SampleRate::Hz16000,
        24_000 => audiopus::SampleRate::Hz24000,
        // `validate` has checked it is one of the five.
        _ => audiopus::SampleRate::Hz48000,
    }
}

/// Whether `samples` at `sample_rate` is a duration Opus can encode in one
/// frame: 2.5, 5, 10, 20, 40 or 60 ms (RFC 6716 §2.1.4).
fn is_opus_frame(sample_rate: u32, samples: usize) -> bool {
    let per_2_5_ms = sample_rate as usize / 400;
    [1, 2, 4, 8, 16, 24]
        .iter()
        .any(|&quarters| quarters * per_2_5_ms == samples)
}

/// The duration of an Opus packet in samples at `sample_rate`, from its TOC
/// byte and frame count (RFC 6716 §3.1, §3.2.5). We parse it ourselves because
/// a packet's duration decides whether `pcm` is big enough before libopus runs.
fn opus_packet_samples(packet: &[u8], sample_rate: u32) -> Result<usize, &'static str> {
    let toc = *packet.first().ok_or("empty packet")?;
    let config = usize::from(toc >> 3);
    // Frame duration in units of 2.5 ms (RFC 6716 Table 2).
    let quanta_per_frame = match config {
        0..=11 => [4, 8, 16, 24][config % 4], // SILK-only: 10, 20, 40, 60 ms
        12..=15 => [4, 8][config % 2],        // hybrid: 10, 20 ms
        _ => [1, 2, 4, 8][config % 4],        // CELT-only: 2.5, 5, 10, 20 ms
    };
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => {
            let count = usize::from(*packet.get(1).ok_or("code 3 packet without frame count")?);
            count & 0x3f
        }
    };
    if frames == 0 {
        return Err("code 3 packet with no frames");
    }
    let quanta = frames * quanta_per_frame;
    // RFC 6716 §3.2.5: at most 120 ms per packet.
    if quanta > 48 {
        return Err("packet longer than 120 ms");
    }
    Ok(quanta * sample_rate as usize / 400)
}

fn check_output(needed: usize, available: usize) -> Result<(), Error> {
    if available < needed {
        Err(Error::OutputTooSmall { needed, available })
    } else {
        Ok(())
    }
}

/// A decoder for one incoming stream, with its packet-loss concealment state.
pub struct Decoder {
    params: CodecParams,
    inner: DecoderInner,
}

enum DecoderInner {
    Pcmu(Box<Plc>),
    Pcma(Box<Plc>),
    G722(Box<(g722::G722Decoder, Plc)>),
    Opus(audiopus::coder::Decoder),
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// A decoder for `params.kind` producing mono PCM at `params.sample_rate`.
    pub fn new(params: &CodecParams) -> Result<Decoder, Error> {
        params.validate()?;
        let inner = match params.kind {
            CodecKind::Pcmu => DecoderInner::Pcmu(Box::new(Plc::new(params.sample_rate))),
            CodecKind::Pcma => DecoderInner::Pcma(Box::new(Plc::new(params.sample_rate))),
            CodecKind::G722 => DecoderInner::G722(Box::new((
                g722::G722Decoder::new(),
                Plc::new(params.sample_rate),
            ))),
            CodecKind::Opus => DecoderInner::Opus(
                // Mono output: libopus downmixes a stereo stream itself.
                audiopus::coder::Decoder::new(
                    opus_rate(params.sample_rate),
                    audiopus::Channels::Mono,
                )
                .map_err(opus_error("decoder creation"))?,
            ),
        };
        Ok(Decoder {
            params: params.clone(),
            inner,
        })
    }

    /// The parameters this decoder was made with.
    pub fn params(&self) -> &CodecParams {
        &self.params
    }

    /// Decodes one RTP payload into `pcm` and returns the number of samples
    /// written (mono, at the PCM rate). An empty payload decodes to nothing.
    ///
    /// `pcm` must hold the whole payload: one sample per byte for G.711, two
    /// for G.722, the packet's duration for Opus (up to 120 ms).
    pub fn decode(&mut self, payload: &[u8], pcm: &mut [i16]) -> Result<usize, Error> {
        if payload.is_empty() {
            return Ok(0);
        }
        match &mut self.inner {
            DecoderInner::Pcmu(plc) => {
                check_output(payload.len(), pcm.len())?;
                let n = g711::ulaw_decode_slice(payload, pcm);
                plc.good_frame(&mut pcm[..n]);
                Ok(n)
            }
            DecoderInner::Pcma(plc) => {
                check_output(payload.len(), pcm.len())?;
                let n = g711::alaw_decode_slice(payload, pcm);
                plc.good_frame(&mut pcm[..n]);
                Ok(n)
            }
            DecoderInner::G722(state) => {
                let n = payload.len() * 2;
                check_output(n, pcm.len())?;
                let (decoder, plc) = &mut **state;
                decoder.decode(payload, &mut pcm[..n]);
                plc.good_frame(&mut pcm[..n]);
                Ok(n)
            }
            DecoderInner::Opus(decoder) => {
                let needed =
                    opus_packet_samples(payload, self.params.sample_rate).map_err(|reason| {
                        Error::MalformedPayload {
                            kind: CodecKind::Opus,
                            reason,
                        }
                    })?;
                check_output(needed, pcm.len())?;
                decoder
                    .decode(Some(payload), &mut pcm[..needed], false)
                    .map_err(opus_error("decode"))
            }
        }
    }

    /// Fills `pcm` with a concealment of one lost frame of `pcm.len()` samples
    /// and returns `pcm.len()`. Call it once per missing frame, in order.
    ///
    /// Opus runs its own PLC, which needs a multiple of 2.5 ms: a remainder
    /// beyond that is filled with silence. G.711 and G.722 use the pitch-
    /// repetition PLC of G.711 Appendix I, fading to silence after 60 ms.
    pub fn conceal(&mut self, pcm: &mut [i16]) -> usize {
        match &mut self.inner {
            DecoderInner::Pcmu(plc) | DecoderInner::Pcma(plc) => plc.conceal(pcm),
            // The ADPCM state is left as it was, so after the loss it disagrees
            // with the far encoder's: tests measure -11 dB of error in the
            // first good frame, falling to none within about 400 ms.
            DecoderInner::G722(state) => state.1.conceal(pcm),
            DecoderInner::Opus(decoder) => {
                let quantum = self.params.sample_rate as usize / 400;
                let whole = pcm.len() - pcm.len() % quantum;
                let (head, tail) = pcm.split_at_mut(whole);
                tail.fill(0);
                if !head.is_empty() {
                    // With no packet libopus cannot fail except on a bad length,
                    // which `whole` rules out; stay silent if it does anyway.
                    let concealed: Option<&[u8]> = None;
                    if decoder.decode(concealed, &mut *head, false).is_err() {
                        head.fill(0);
                    }
                }
                pcm.len()
            }
        }
    }

    /// Recovers the lost frame that came just before `next_payload`, into
    /// `pcm`, whose length must be the lost frame's duration (a multiple of
    /// 2.5 ms for Opus). Then decode `next_payload` itself with [`decode`].
    ///
    /// Opus reads the lost frame's low-bitrate copy from the in-band FEC of
    /// `next_payload` (RFC 7587 §3.3, RFC 6716 §2.1.7), and falls back to its
    /// PLC when the packet carries none. Other codecs have no FEC: this is
    /// [`conceal`].
    ///
    /// [`decode`]: Decoder::decode
    /// [`conceal`]: Decoder::conceal
    pub fn decode_fec(&mut self, next_payload: &[u8], pcm: &mut [i16]) -> Result<usize, Error> {
        let DecoderInner::Opus(decoder) = &mut self.inner else {
            return Ok(self.conceal(pcm));
        };
        if next_payload.is_empty() {
            return Ok(self.conceal(pcm));
        }
        let quantum = self.params.sample_rate as usize / 400;
        if pcm.is_empty() || !pcm.len().is_multiple_of(quantum) {
            return Err(Error::InvalidFrameLength {
                kind: CodecKind::Opus,
                samples: pcm.len(),
            });
        }
        decoder
            .decode(Some(next_payload), pcm, true)
            .map_err(opus_error("FEC decode"))
    }
}

/// An encoder for one outgoing stream.
pub struct Encoder {
    params: CodecParams,
    inner: EncoderInner,
}

enum EncoderInner {
    Pcmu,
    Pcma,
    G722(Box<g722::G722Encoder>),
    Opus(audiopus::coder::Encoder),
}

impl fmt::Debug for Encoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoder")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// Opus bitrate when the remote gave no `maxaveragebitrate`: enough for clean
/// speech at each audio bandwidth with room for the FEC copy (libopus only adds
/// LBRR data above roughly 14 kbit/s narrowband, 18 kbit/s wideband at 10 %
/// loss).
fn default_opus_bitrate(sample_rate: u32) -> i32 {
    match sample_rate {
        8_000 => 20_000,
        12_000 => 24_000,
        16_000 => 28_000,
        _ => 32_000,
    }
}

/// The widest Opus audio bandwidth worth coding for a receiver that plays at
/// `rate` Hz (RFC 7587 §7.1: don't send more than `maxplaybackrate` allows).
fn opus_bandwidth(rate: u32) -> audiopus::Bandwidth {
    match rate {
        0..=8_000 => audiopus::Bandwidth::Narrowband,
        8_001..=12_000 => audiopus::Bandwidth::Mediumband,
        12_001..=16_000 => audiopus::Bandwidth::Wideband,
        16_001..=24_000 => audiopus::Bandwidth::Superwideband,
        _ => audiopus::Bandwidth::Fullband,
    }
}

impl Encoder {
    /// An encoder for `params.kind` taking mono PCM at `params.sample_rate`.
    ///
    /// Opus is set up for VoIP: mono, `params.complexity`, bitrate from
    /// `maxaveragebitrate` (else 20–32 kbit/s by rate), audio bandwidth capped
    /// by `maxplaybackrate`, CBR if `cbr=1`, in-band FEC with a planned 10 %
    /// loss if `useinbandfec=1`, and DTX if `usedtx=1`.
    pub fn new(params: &CodecParams) -> Result<Encoder, Error> {
        params.validate()?;
        let inner = match params.kind {
            CodecKind::Pcmu => EncoderInner::Pcmu,
            CodecKind::Pcma => EncoderInner::Pcma,
            CodecKind::G722 => EncoderInner::G722(Box::default()),
            CodecKind::Opus => EncoderInner::Opus(Self::new_opus(params)?),
        };
        Ok(Encoder {
            params: params.clone(),
            inner,
        })
    }

    fn new_opus(params: &CodecParams) -> Result<audiopus::coder::Encoder, Error> {
        let fmtp = &params.opus;
        let mut encoder = audiopus::coder::Encoder::new(
            opus_rate(params.sample_rate),
            audiopus::Channels::Mono,
            audiopus::Application::Voip,
        )
        .map_err(opus_error("encoder creation"))?;
        let configure = opus_error("encoder configuration");
        let bitrate = fmtp.max_average_bitrate.map_or_else(
            || default_opus_bitrate(params.sample_rate),
            |bitrate| bitrate.clamp(6_000, 510_000) as i32,
        );
        encoder
            .set_bitrate(audiopus::Bitrate::BitsPerSecond(bitrate))
            .map_err(configure)?;
        encoder
            .set_complexity(params.complexity)
            .map_err(configure)?;
        encoder
            .set_max_bandwidth(opus_bandwidth(
                fmtp.max_playback_rate.min(params.sample_rate),
            ))
            .map_err(configure)?;
        encoder.set_vbr(!fmtp.cbr).map_err(configure)?;
        encoder
            .set_inband_fec(fmtp.use_inband_fec)
            .map_err(configure)?;
        if fmtp.use_inband_fec {
            encoder
                .set_packet_loss_perc(OPUS_FEC_LOSS_PERCENT)
                .map_err(configure)?;
        }
        encoder
            .set_encoder_ctl_request(audiopus::ffi::OPUS_SET_DTX_REQUEST, i32::from(fmtp.use_dtx))
            .map_err(configure)?;
        Ok(encoder)
    }

    /// The parameters this encoder was made with.
    pub fn params(&self) -> &CodecParams {
        &self.params
    }

    /// Samples in one 20 ms frame at the PCM rate.
    pub fn frame_samples(&self) -> usize {
        self.params.frame_samples()
    }

    /// The largest payload `encode` can produce for `pcm_samples` samples:
    /// size `out` with this.
    pub fn max_payload_bytes(&self, pcm_samples: usize) -> usize {
        match self.inner {
            EncoderInner::Pcmu | EncoderInner::Pcma => pcm_samples,
            EncoderInner::G722(_) => pcm_samples / 2,
            EncoderInner::Opus(_) => MAX_OPUS_PAYLOAD,
        }
    }

    /// Encodes one frame of mono PCM at the PCM rate (normally 20 ms, see
    /// [`frame_samples`](Encoder::frame_samples)) into `out` and returns the
    /// payload length.
    ///
    /// With Opus DTX on, a frame of silence or background noise comes out as
    /// a packet of 1 or 2 bytes (no audio, only the TOC). Such a payload may be
    /// skipped instead of sent, which is the point of DTX (RFC 7587 §3.1.3);
    /// the receiver's PLC / comfort noise fills the gap. libopus still emits a
    /// full packet every 400 ms to refresh the noise estimate.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, Error> {
        let kind = self.params.kind;
        match &mut self.inner {
            EncoderInner::Pcmu => {
                check_output(pcm.len(), out.len())?;
                Ok(g711::ulaw_encode_slice(pcm, out))
            }
            EncoderInner::Pcma => {
                check_output(pcm.len(), out.len())?;
                Ok(g711::alaw_encode_slice(pcm, out))
            }
            EncoderInner::G722(encoder) => {
                if !pcm.len().is_multiple_of(2) {
                    return Err(Error::InvalidFrameLength {
                        kind,
                        samples: pcm.len(),
                    });
                }
                check_output(pcm.len() / 2, out.len())?;
                encoder.encode(pcm, out);
                Ok(pcm.len() / 2)
            }
            EncoderInner::Opus(encoder) => {
                if !is_opus_frame(self.params.sample_rate, pcm.len()) {
                    return Err(Error::InvalidFrameLength {
                        kind,
                        samples: pcm.len(),
                    });
                }
                // A TOC byte plus a little: libopus fits the bitrate into what
                // it is given, so a small buffer lowers quality, not correctness.
                check_output(3, out.len())?;
                let len = out.len().min(MAX_OPUS_PAYLOAD);
                encoder
                    .encode(pcm, &mut out[..len])
                    .map_err(opus_error("encode"))
            }
        }
    }
}
