//! Opus through libopus: tone fidelity at several rates, in-band FEC, DTX, PLC
//! and error paths.

mod common;

use common::{best_correlation, db, rms, sine, syllables, tone_ratio, voiced};
use switchyard_codec::{
    CodecKind, CodecParams, Decoder, Encoder, Error, MAX_OPUS_PAYLOAD, OpusFmtp,
};

fn opus_params(sample_rate: u32, fmtp: &str) -> CodecParams {
    let mut params = CodecParams::new(CodecKind::Opus).with_sample_rate(sample_rate);
    params.opus = OpusFmtp::parse(fmtp);
    params
}

/// Encodes `signal` frame by frame; returns the payloads.
fn encode_all(encoder: &mut Encoder, signal: &[i16]) -> Vec<Vec<u8>> {
    let mut out = [0u8; MAX_OPUS_PAYLOAD];
    signal
        .chunks_exact(encoder.frame_samples())
        .map(|frame| {
            let len = encoder.encode(frame, &mut out).unwrap();
            out[..len].to_vec()
        })
        .collect()
}

#[test]
fn a_1khz_tone_survives_at_8_16_and_48_khz() {
    for rate in [8_000, 16_000, 48_000] {
        let params = opus_params(rate, "");
        let mut encoder = Encoder::new(&params).unwrap();
        let mut decoder = Decoder::new(&params).unwrap();
        let frame = encoder.frame_samples();
        assert_eq!(frame, rate as usize / 50);
        let input = sine(1_000.0, rate, 10_000.0, 0, frame * 50);
        let mut output = Vec::new();
        let mut pcm = vec![0i16; frame * 6];
        for payload in encode_all(&mut encoder, &input) {
            let n = decoder.decode(&payload, &mut pcm).unwrap();
            assert_eq!(n, frame);
            output.extend_from_slice(&pcm[..n]);
        }
        // Skip the first 200 ms: encoder start-up and codec delay.
        let steady = &output[frame * 10..];
        let ratio = tone_ratio(steady, 1_000.0, rate);
        assert!(
            ratio > 0.9,
            "{rate} Hz: only {ratio:.3} of the power is at 1 kHz"
        );
        let level = db(rms(steady) / rms(&input[frame * 10..]));
        assert!(level.abs() < 3.0, "{rate} Hz: level off by {level:.1} dB");
    }
}

#[test]
fn every_opus_rate_and_complexity_extreme_round_trips() {
    for rate in [8_000, 12_000, 16_000, 24_000, 48_000] {
        for complexity in [0, 10] {
            let mut params = opus_params(rate, "");
            params.complexity = complexity;
            let mut encoder = Encoder::new(&params).unwrap();
            let mut decoder = Decoder::new(&params).unwrap();
            let input = voiced(rate, 8_000.0, 0, encoder.frame_samples() * 20);
            let mut pcm = vec![0i16; encoder.frame_samples()];
            let mut output = Vec::new();
            for payload in encode_all(&mut encoder, &input) {
                let n = decoder.decode(&payload, &mut pcm).unwrap();
                output.extend_from_slice(&pcm[..n]);
            }
            let tail = &output[output.len() / 2..];
            assert!(
                rms(tail) > 1_000.0,
                "{rate} Hz complexity {complexity}: near silence"
            );
        }
    }
}

#[test]
fn in_band_fec_recovers_lost_frames_better_than_plc() {
    let rate = 16_000;
    let params = opus_params(rate, "useinbandfec=1");
    let mut encoder = Encoder::new(&params).unwrap();
    let frame = encoder.frame_samples();
    let input = syllables(rate, frame * 60);
    let payloads = encode_all(&mut encoder, &input);
    // The output lags the input by the codec delay (under 10 ms).
    let max_lag = rate as usize / 100;

    let (mut fec_sum, mut plc_sum, mut with_lbrr) = (0.0, 0.0, 0u32);
    let lost_frames = 10..58;
    for lost in lost_frames.clone() {
        // One decoder recovers the lost frame from the next packet's FEC, the
        // other only conceals it.
        let mut with_fec = Decoder::new(&params).unwrap();
        let mut with_plc = Decoder::new(&params).unwrap();
        let mut recovered = vec![0i16; frame];
        let mut concealed = vec![0i16; frame];
        for payload in &payloads[..lost] {
            with_fec.decode(payload, &mut recovered).unwrap();
            with_plc.decode(payload, &mut concealed).unwrap();
        }
        assert_eq!(
            with_fec.decode_fec(&payloads[lost + 1], &mut recovered),
            Ok(frame)
        );
        assert_eq!(with_plc.conceal(&mut concealed), frame);
        // The stream goes on normally after the recovered frame.
        let mut next = vec![0i16; frame];
        assert_eq!(with_fec.decode(&payloads[lost + 1], &mut next), Ok(frame));

        // SILK only carries LBRR data for frames its VAD calls active speech;
        // without it, FEC decoding falls back to the same PLC.
        if recovered == concealed {
            continue;
        }
        with_lbrr += 1;
        assert!(
            rms(&recovered) > 300.0,
            "frame {lost}: FEC output is near silence"
        );
        let reference = &input[lost * frame - max_lag..(lost + 1) * frame];
        fec_sum += best_correlation(&recovered, reference, max_lag);
        plc_sum += best_correlation(&concealed, reference, max_lag);
    }
    assert!(
        with_lbrr as usize * 2 >= lost_frames.len(),
        "FEC data in only {with_lbrr} packets"
    );
    let (fec, plc) = (
        fec_sum / f64::from(with_lbrr),
        plc_sum / f64::from(with_lbrr),
    );
    assert!(
        fec > 0.8,
        "FEC frames correlate only {fec:.2} with the input"
    );
    assert!(
        fec > plc + 0.1,
        "FEC ({fec:.2}) should clearly beat PLC ({plc:.2})"
    );

    // FEC costs bits: the same signal without it makes smaller packets.
    let mut plain = Encoder::new(&opus_params(rate, "")).unwrap();
    let plain_bytes: usize = encode_all(&mut plain, &input).iter().map(Vec::len).sum();
    let fec_bytes: usize = payloads.iter().map(Vec::len).sum();
    assert!(
        fec_bytes > plain_bytes,
        "FEC {fec_bytes} bytes, plain {plain_bytes} bytes"
    );
}

#[test]
fn dtx_turns_silence_into_tiny_packets() {
    let rate = 48_000;
    let params = opus_params(rate, "usedtx=1");
    let mut encoder = Encoder::new(&params).unwrap();
    let frame = encoder.frame_samples();
    let mut signal = voiced(rate, 8_000.0, 0, frame * 10);
    signal.extend(std::iter::repeat_n(0i16, frame * 40));
    let sizes: Vec<usize> = encode_all(&mut encoder, &signal)
        .iter()
        .map(Vec::len)
        .collect();
    assert!(
        sizes[..10].iter().all(|&len| len > 10),
        "speech frames: {sizes:?}"
    );
    let tiny = sizes[20..].iter().filter(|&&len| len <= 2).count();
    assert!(
        tiny >= 15,
        "expected most silent frames to be DTX, sizes {sizes:?}"
    );

    // Without DTX every silent frame is still a real packet.
    let mut plain = Encoder::new(&opus_params(rate, "")).unwrap();
    let plain_sizes: Vec<usize> = encode_all(&mut plain, &signal)
        .iter()
        .map(Vec::len)
        .collect();
    assert!(
        plain_sizes[20..].iter().all(|&len| len > 2),
        "{plain_sizes:?}"
    );
}

#[test]
fn plc_continues_the_signal_then_the_stream_resumes() {
    let rate = 8_000;
    let params = opus_params(rate, "");
    let mut encoder = Encoder::new(&params).unwrap();
    let frame = encoder.frame_samples();
    let input = sine(440.0, rate, 8_000.0, 0, frame * 30);
    let payloads = encode_all(&mut encoder, &input);
    let mut decoder = Decoder::new(&params).unwrap();
    let mut pcm = vec![0i16; frame];
    for payload in &payloads[..20] {
        decoder.decode(payload, &mut pcm).unwrap();
    }
    assert_eq!(decoder.conceal(&mut pcm), frame);
    assert!(rms(&pcm) > 1_000.0, "PLC output is near silence");
    assert!(tone_ratio(&pcm, 440.0, rate) > 0.5);

    // A length that is not a multiple of 2.5 ms: the remainder is silence.
    let mut odd = vec![1i16; 25];
    assert_eq!(decoder.conceal(&mut odd), 25);
    assert!(odd[20..].iter().all(|&s| s == 0));

    // Decoding resumes.
    assert_eq!(decoder.decode(&payloads[22], &mut pcm).unwrap(), frame);
}

#[test]
fn encode_rejects_bad_frames_and_small_buffers() {
    let params = opus_params(48_000, "");
    let mut encoder = Encoder::new(&params).unwrap();
    let mut out = [0u8; MAX_OPUS_PAYLOAD];
    assert_eq!(
        encoder.encode(&[0; 500], &mut out),
        Err(Error::InvalidFrameLength {
            kind: CodecKind::Opus,
            samples: 500
        })
    );
    // 2.5, 10 and 60 ms frames are fine.
    for samples in [120, 480, 2_880] {
        assert!(encoder.encode(&vec![0; samples], &mut out).unwrap() >= 1);
    }
    assert_eq!(
        encoder.encode(&[0; 960], &mut out[..2]),
        Err(Error::OutputTooSmall {
            needed: 3,
            available: 2
        })
    );
    assert_eq!(encoder.max_payload_bytes(960), MAX_OPUS_PAYLOAD);
}

#[test]
fn decode_rejects_malformed_packets_and_small_buffers() {
    let params = opus_params(16_000, "");
    let mut encoder = Encoder::new(&params).unwrap();
    let mut decoder = Decoder::new(&params).unwrap();
    let mut out = [0u8; MAX_OPUS_PAYLOAD];
    let len = encoder
        .encode(&sine(300.0, 16_000, 5_000.0, 0, 320), &mut out)
        .unwrap();
    let mut short = [0i16; 100];
    assert_eq!(
        decoder.decode(&out[..len], &mut short),
        Err(Error::OutputTooSmall {
            needed: 320,
            available: 100
        })
    );
    // TOC code 3 (arbitrary frame count) without its frame-count byte.
    let mut pcm = [0i16; 5_760];
    assert_eq!(
        decoder.decode(&[0x03], &mut pcm),
        Err(Error::MalformedPayload {
            kind: CodecKind::Opus,
            reason: "code 3 packet without frame count"
        })
    );
    // Code 3 with 49 CELT 2.5 ms frames = 122.5 ms, over the 120 ms limit.
    assert!(matches!(
        decoder.decode(&[0xfb, 49], &mut pcm),
        Err(Error::MalformedPayload {
            kind: CodecKind::Opus,
            ..
        })
    ));
    // A valid TOC with a body libopus cannot decode: code 2 (two frames of
    // different size) whose first-frame length runs past the packet's end.
    match decoder.decode(&[0x0a, 0xfc, 0x01], &mut pcm) {
        Err(Error::Opus { operation, source }) => {
            assert_eq!(operation, "decode");
            assert!(!source.to_string().is_empty());
        }
        other => panic!("expected an Opus error, got {other:?}"),
    }
    // An empty payload decodes to nothing.
    assert_eq!(decoder.decode(&[], &mut pcm), Ok(0));
    // FEC needs a whole number of 2.5 ms.
    assert_eq!(
        decoder.decode_fec(&out[..len], &mut pcm[..50]),
        Err(Error::InvalidFrameLength {
            kind: CodecKind::Opus,
            samples: 50
        })
    );
    // With an empty next payload, FEC falls back to PLC.
    assert_eq!(decoder.decode_fec(&[], &mut pcm[..320]), Ok(320));
}

#[test]
fn max_playback_rate_limits_the_coded_bandwidth() {
    // A 6 kHz tone at 48 kHz PCM: passes when the remote plays 48 kHz, is cut
    // when it says it plays only 8 kHz (narrowband, 4 kHz audio).
    let rate = 48_000;
    let mut levels = Vec::new();
    for fmtp in ["", "maxplaybackrate=8000"] {
        let params = opus_params(rate, fmtp);
        let mut encoder = Encoder::new(&params).unwrap();
        let mut decoder = Decoder::new(&params).unwrap();
        let input = sine(6_000.0, rate, 8_000.0, 0, 960 * 25);
        let mut output = Vec::new();
        let mut pcm = vec![0i16; 960];
        for payload in encode_all(&mut encoder, &input) {
            let n = decoder.decode(&payload, &mut pcm).unwrap();
            output.extend_from_slice(&pcm[..n]);
        }
        levels.push(rms(&output[960 * 10..]));
    }
    assert!(
        levels[0] > 3_000.0,
        "6 kHz should pass at fullband: {levels:?}"
    );
    assert!(
        levels[1] < levels[0] / 10.0,
        "6 kHz should be cut at narrowband: {levels:?}"
    );
}

#[test]
fn max_average_bitrate_and_cbr_shape_the_packets() {
    let rate = 48_000;
    let input = voiced(rate, 8_000.0, 0, 960 * 50);
    let mean = |fmtp: &str| {
        let mut encoder = Encoder::new(&opus_params(rate, fmtp)).unwrap();
        let sizes: Vec<usize> = encode_all(&mut encoder, &input)
            .iter()
            .map(Vec::len)
            .collect();
        sizes
    };
    let low = mean("maxaveragebitrate=12000");
    let high = mean("maxaveragebitrate=64000");
    let average = |s: &[usize]| s[10..].iter().sum::<usize>() as f64 / (s.len() - 10) as f64;
    // 12 kbit/s is 30 bytes per 20 ms, 64 kbit/s is 160.
    assert!(average(&low) < 40.0, "{}", average(&low));
    assert!(average(&high) > 100.0, "{}", average(&high));
    let cbr = mean("cbr=1;maxaveragebitrate=32000");
    assert!(
        cbr[5..].iter().all(|&len| len == 80),
        "CBR 32 kbit/s is 80 bytes: {cbr:?}"
    );
}

#[test]
fn packet_durations_follow_the_toc() {
    // 60 ms at 8 kHz (SILK), 2.5 ms at 48 kHz (CELT), 40 ms at 16 kHz.
    for (rate, samples) in [(8_000, 480), (48_000, 120), (16_000, 640)] {
        let params = opus_params(rate, "");
        let mut encoder = Encoder::new(&params).unwrap();
        let mut decoder = Decoder::new(&params).unwrap();
        let mut out = [0u8; MAX_OPUS_PAYLOAD];
        let mut pcm = [0i16; 5_760];
        let input = sine(500.0, rate, 5_000.0, 0, samples);
        let len = encoder.encode(&input, &mut out).unwrap();
        assert_eq!(
            decoder.decode(&out[..len], &mut pcm),
            Ok(samples),
            "{rate} Hz"
        );
    }
}
