//! The codec-independent API: kinds, parameters, errors, G.711/G.722 through
//! `Encoder`/`Decoder`, and the G.711 Appendix I-style concealment.

mod common;

use common::{best_correlation, rms, sine, voiced};
use switchyard_codec::{CodecKind, CodecParams, Decoder, Encoder, Error, g711};

#[test]
fn codec_kinds_carry_their_sdp_facts() {
    let facts = [
        (CodecKind::Pcmu, "PCMU", Some(0), 8_000, 8_000),
        (CodecKind::Pcma, "PCMA", Some(8), 8_000, 8_000),
        (CodecKind::G722, "G722", Some(9), 8_000, 16_000),
        (CodecKind::Opus, "opus", None, 48_000, 48_000),
    ];
    for (kind, name, pt, clock, pcm_rate) in facts {
        assert_eq!(kind.encoding_name(), name);
        assert_eq!(kind.to_string(), name);
        assert_eq!(kind.static_payload_type(), pt);
        assert_eq!(kind.rtp_clock_rate(), clock);
        assert_eq!(kind.default_sample_rate(), pcm_rate);
        assert_eq!(CodecKind::from_encoding_name(name), Some(kind));
        assert_eq!(
            CodecKind::from_encoding_name(&name.to_lowercase()),
            Some(kind)
        );
        assert_eq!(
            CodecKind::from_encoding_name(&name.to_uppercase()),
            Some(kind)
        );
    }
    for unknown in ["", "G729", "telephone-event", "PCM", "opus/48000"] {
        assert_eq!(CodecKind::from_encoding_name(unknown), None, "{unknown}");
    }
}

#[test]
fn rtp_ticks_convert_pcm_samples_to_the_rtp_clock() {
    let g722 = CodecParams::new(CodecKind::G722);
    assert_eq!(g722.frame_samples(), 320);
    assert_eq!(g722.rtp_ticks(320), 160); // RFC 3551 §4.5.2
    let pcma = CodecParams::new(CodecKind::Pcma);
    assert_eq!(pcma.rtp_ticks(pcma.frame_samples()), 160);
    let opus8 = CodecParams::new(CodecKind::Opus).with_sample_rate(8_000);
    assert_eq!(opus8.frame_samples(), 160);
    assert_eq!(opus8.rtp_ticks(160), 960); // RFC 7587 §4.1
    let opus48 = CodecParams::new(CodecKind::Opus);
    assert_eq!(opus48.rtp_ticks(opus48.frame_samples()), 960);
}

#[test]
fn unsupported_rates_and_complexity_are_refused() {
    let cases = [
        (CodecKind::Pcmu, 16_000),
        (CodecKind::Pcma, 48_000),
        (CodecKind::G722, 8_000),
        (CodecKind::Opus, 44_100),
        (CodecKind::Opus, 0),
    ];
    for (kind, sample_rate) in cases {
        let params = CodecParams::new(kind).with_sample_rate(sample_rate);
        let expected = Error::UnsupportedSampleRate { kind, sample_rate };
        assert_eq!(Encoder::new(&params).unwrap_err(), expected);
        assert_eq!(Decoder::new(&params).unwrap_err(), expected);
        assert!(!kind.supports_sample_rate(sample_rate));
    }
    let mut params = CodecParams::new(CodecKind::Opus);
    params.complexity = 11;
    assert_eq!(
        Encoder::new(&params).unwrap_err(),
        Error::InvalidComplexity(11)
    );
    assert_eq!(
        Error::InvalidComplexity(11).to_string(),
        "Opus complexity 11 is out of range 0..=10"
    );
    // Complexity means nothing to the other codecs.
    let mut pcmu = CodecParams::new(CodecKind::Pcmu);
    pcmu.complexity = 200;
    assert!(Encoder::new(&pcmu).is_ok());
}

#[test]
fn g711_through_the_codec_api() {
    for (kind, encode, decode) in [
        (
            CodecKind::Pcmu,
            g711::ulaw_encode as fn(i16) -> u8,
            g711::ulaw_decode as fn(u8) -> i16,
        ),
        (CodecKind::Pcma, g711::alaw_encode, g711::alaw_decode),
    ] {
        let params = CodecParams::new(kind);
        let mut encoder = Encoder::new(&params).unwrap();
        let mut decoder = Decoder::new(&params).unwrap();
        assert_eq!(encoder.params(), &params);
        assert_eq!(decoder.params(), &params);
        assert_eq!(encoder.frame_samples(), 160);
        assert_eq!(encoder.max_payload_bytes(160), 160);
        let pcm = sine(1_000.0, 8_000, 12_000.0, 0, 160);
        let mut payload = [0u8; 160];
        assert_eq!(encoder.encode(&pcm, &mut payload), Ok(160));
        assert!(payload.iter().zip(&pcm).all(|(&c, &s)| c == encode(s)));
        let mut out = [0i16; 160];
        assert_eq!(decoder.decode(&payload, &mut out), Ok(160));
        assert!(out.iter().zip(&payload).all(|(&s, &c)| s == decode(c)));

        assert_eq!(
            encoder.encode(&pcm, &mut payload[..100]),
            Err(Error::OutputTooSmall {
                needed: 160,
                available: 100
            })
        );
        assert_eq!(
            decoder.decode(&payload, &mut out[..10]),
            Err(Error::OutputTooSmall {
                needed: 160,
                available: 10
            })
        );
        assert_eq!(decoder.decode(&[], &mut out), Ok(0));
    }
}

#[test]
fn g722_checks_lengths() {
    let params = CodecParams::new(CodecKind::G722);
    let mut encoder = Encoder::new(&params).unwrap();
    let mut decoder = Decoder::new(&params).unwrap();
    assert_eq!(encoder.max_payload_bytes(320), 160);
    let mut payload = [0u8; 160];
    assert_eq!(
        encoder.encode(&[0; 319], &mut payload),
        Err(Error::InvalidFrameLength {
            kind: CodecKind::G722,
            samples: 319
        })
    );
    assert_eq!(
        encoder.encode(&[0; 320], &mut payload[..159]),
        Err(Error::OutputTooSmall {
            needed: 160,
            available: 159
        })
    );
    let mut pcm = [0i16; 320];
    assert_eq!(
        decoder.decode(&payload, &mut pcm[..319]),
        Err(Error::OutputTooSmall {
            needed: 320,
            available: 319
        })
    );
    assert_eq!(decoder.decode_fec(&payload, &mut pcm), Ok(320));
}

/// Runs `frames` 20 ms frames of `signal` through a PCMA pair and returns the
/// decoder, ready for a loss.
fn pcma_after(signal: &[i16]) -> Decoder {
    let params = CodecParams::new(CodecKind::Pcma);
    let mut encoder = Encoder::new(&params).unwrap();
    let mut decoder = Decoder::new(&params).unwrap();
    let mut payload = [0u8; 160];
    let mut pcm = [0i16; 160];
    for frame in signal.chunks_exact(160) {
        encoder.encode(frame, &mut payload).unwrap();
        decoder.decode(&payload, &mut pcm).unwrap();
    }
    decoder
}

#[test]
fn g711_plc_continues_a_voiced_signal() {
    // 400 ms of a 125 Hz voiced signal; frame 20 is lost.
    let signal = voiced(8_000, 6_000.0, 0, 160 * 21);
    let mut decoder = pcma_after(&signal[..160 * 20]);
    let mut concealed = [0i16; 160];
    assert_eq!(decoder.conceal(&mut concealed), 160);

    // The first 10 ms repeat the pitch period at full level: they follow the
    // real continuation closely (allowing for the 2 % vibrato).
    let truth = &signal[160 * 20..160 * 21];
    let first = best_correlation(&concealed[..80], &truth[..80], 0);
    assert!(
        first > 0.9,
        "concealment correlates {first:.2} with the lost audio"
    );
    let level = rms(&concealed[..80]) / rms(&truth[..80]);
    assert!((0.8..1.25).contains(&level), "level ratio {level:.2}");
    // It joins the last real sample without a jump bigger than the signal's
    // own sample-to-sample steps.
    let max_step = signal[..160 * 20]
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .max()
        .unwrap();
    let last_real = g711::alaw_decode(g711::alaw_encode(signal[160 * 20 - 1]));
    assert!((concealed[0] - last_real).abs() <= max_step * 2);
}

#[test]
fn g711_plc_fades_to_silence_after_60_ms() {
    let signal = voiced(8_000, 6_000.0, 0, 160 * 20);
    let mut decoder = pcma_after(&signal);
    let mut frames = Vec::new();
    for _ in 0..5 {
        let mut pcm = [0i16; 160];
        decoder.conceal(&mut pcm);
        frames.push(pcm);
    }
    let levels: Vec<f64> = frames.iter().map(|f| rms(f)).collect();
    // 0–20 ms: starts fading at 10 ms; 20–40 ms quieter; 40–60 ms quieter still.
    assert!(levels[0] > 1_000.0, "{levels:?}");
    assert!(levels[1] < levels[0] && levels[2] < levels[1], "{levels:?}");
    // Nothing after 60 ms.
    assert!(frames[3].iter().all(|&s| s == 0) && frames[4].iter().all(|&s| s == 0));
    // The last sample before 60 ms is already near zero.
    assert!(frames[2][159].abs() < 100, "{}", frames[2][159]);
}

#[test]
fn g711_plc_cross_fades_into_the_next_good_frame() {
    let signal = voiced(8_000, 6_000.0, 0, 160 * 23);
    let params = CodecParams::new(CodecKind::Pcma);
    let mut encoder = Encoder::new(&params).unwrap();
    let mut decoder = Decoder::new(&params).unwrap();
    let mut payload = [0u8; 160];
    let mut pcm = [0i16; 160];
    for frame in signal[..160 * 20].chunks_exact(160) {
        encoder.encode(frame, &mut payload).unwrap();
        decoder.decode(&payload, &mut pcm).unwrap();
    }
    // Frame 20 is lost (the encoder still runs, as the far end's would).
    encoder
        .encode(&signal[160 * 20..160 * 21], &mut payload)
        .unwrap();
    let mut concealed = [0i16; 160];
    decoder.conceal(&mut concealed);
    // Frame 21 arrives: after a 20 ms erasure its first 8 ms (64 samples)
    // blend the synthetic continuation into the real audio (4 ms plus 4 ms per
    // 10 ms beyond the first), then it is exactly the decoded frame.
    encoder
        .encode(&signal[160 * 21..160 * 22], &mut payload)
        .unwrap();
    decoder.decode(&payload, &mut pcm).unwrap();
    let plain: Vec<i16> = payload.iter().map(|&c| g711::alaw_decode(c)).collect();
    assert_eq!(&pcm[64..], &plain[64..]);
    assert_ne!(&pcm[..64], &plain[..64]);
    let max_step = signal
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .max()
        .unwrap();
    assert!(
        (pcm[0] - concealed[159]).abs() <= max_step * 2,
        "jump into the good frame"
    );
    // The blend moves from the synthetic towards the real signal.
    let early = (pcm[1] - plain[1]).abs();
    let late = (pcm[62] - plain[62]).abs();
    assert!(late <= early.max(200), "blend: early {early}, late {late}");

    // The next frame is untouched.
    encoder
        .encode(&signal[160 * 22..160 * 23], &mut payload)
        .unwrap();
    decoder.decode(&payload, &mut pcm).unwrap();
    assert!(
        pcm.iter()
            .zip(&payload)
            .all(|(&s, &c)| s == g711::alaw_decode(c))
    );
}

#[test]
fn plc_of_a_fresh_decoder_is_silence() {
    for kind in [
        CodecKind::Pcmu,
        CodecKind::Pcma,
        CodecKind::G722,
        CodecKind::Opus,
    ] {
        let params = CodecParams::new(kind);
        let mut decoder = Decoder::new(&params).unwrap();
        let mut pcm = vec![7i16; params.frame_samples()];
        assert_eq!(decoder.conceal(&mut pcm), pcm.len());
        assert!(pcm.iter().all(|&s| s == 0), "{kind}");
    }
}

#[test]
fn g722_plc_works_at_16_khz() {
    // 160 Hz voiced-like tone at 16 kHz: a pitch period of 100 samples, inside
    // the 80..240 range the PLC searches at this rate.
    let params = CodecParams::new(CodecKind::G722);
    let mut encoder = Encoder::new(&params).unwrap();
    let mut decoder = Decoder::new(&params).unwrap();
    let signal = sine(160.0, 16_000, 8_000.0, 0, 320 * 21);
    let mut payload = [0u8; 160];
    let mut pcm = [0i16; 320];
    for frame in signal[..320 * 20].chunks_exact(320) {
        encoder.encode(frame, &mut payload).unwrap();
        decoder.decode(&payload, &mut pcm).unwrap();
    }
    let mut concealed = [0i16; 320];
    assert_eq!(decoder.decode_fec(&payload, &mut concealed), Ok(320));
    // G.722 delays by 22 samples: compare with the input allowing for that.
    let reference = &signal[320 * 20 - 40..320 * 20 + 160];
    let correlation = best_correlation(&concealed[..160], reference, 40);
    assert!(correlation > 0.95, "G.722 PLC correlation {correlation:.2}");
}

#[test]
fn g722_decoder_recovers_after_a_concealed_frame() {
    // The ADPCM state is not advanced through a lost frame, so the decoder and
    // the far encoder disagree for a while; the leaky adaptation pulls them
    // back together.
    let params = CodecParams::new(CodecKind::G722);
    let mut encoder = Encoder::new(&params).unwrap();
    let signal = voiced(16_000, 6_000.0, 0, 320 * 45);
    let mut payloads = Vec::new();
    let mut payload = [0u8; 160];
    for frame in signal.chunks_exact(320) {
        encoder.encode(frame, &mut payload).unwrap();
        payloads.push(payload);
    }
    let mut continuous = Decoder::new(&params).unwrap();
    let mut lossy = Decoder::new(&params).unwrap();
    let (mut a, mut b) = ([0i16; 320], [0i16; 320]);
    for (n, p) in payloads.iter().enumerate() {
        continuous.decode(p, &mut a).unwrap();
        if n == 20 {
            lossy.conceal(&mut b);
            continue;
        }
        lossy.decode(p, &mut b).unwrap();
        let error: Vec<i16> = a
            .iter()
            .zip(&b)
            .map(|(x, y)| x.saturating_sub(*y))
            .collect();
        let ratio = rms(&error) / rms(&a);
        if n > 20 {
            // Measured: -11 dB in the first good frame, under -17 dB after it.
            assert!(ratio < 0.4, "frame {n}: error/signal {ratio:.3}");
        }
        if n >= 40 {
            // 400 ms after the loss the two decoders agree again, sample for sample.
            assert_eq!(a, b, "frame {n}");
        }
    }
}
