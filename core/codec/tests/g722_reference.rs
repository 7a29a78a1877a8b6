//! G.722 against an independent implementation: spandsp's (baresip, FreeSWITCH).
//! The fixtures come from `fixtures/g722_reference.c`, which says how to rebuild
//! them.

use switchyard_codec::g722::{G722Decoder, G722Encoder};
use switchyard_codec::{CodecKind, CodecParams, Decoder, Encoder};

const SAMPLES: usize = 16_000;
const SPANDSP_ENCODED: &[u8] = include_bytes!("fixtures/g722_spandsp_encoded.bin");
const SPANDSP_DECODED: &[u8] = include_bytes!("fixtures/g722_spandsp_decoded.bin");

/// Must stay identical to `reference_signal` in fixtures/g722_reference.c:
/// chirp, loud noise, silence, full-scale square, quiet mix.
fn reference_signal() -> Vec<i16> {
    let mut lcg: u32 = 0x1234_5678;
    let mut phase: u32 = 0;
    let mut step: u32 = 0x0080_0000;
    (0..SAMPLES)
        .map(|n| {
            lcg = lcg.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let noise = ((lcg >> 16) & 0x7fff) as i32 - 16_384;
            phase = phase.wrapping_add(step);
            step = step.wrapping_add(0x2000);
            let p = (phase >> 17) as i32;
            let tri = if p < 16_384 {
                p * 2 - 16_384
            } else {
                (32_767 - p) * 2 - 16_384
            };
            let v = if n < 4_000 {
                tri / 2
            } else if n < 8_000 {
                noise * 3 / 4
            } else if n < 9_600 {
                0
            } else if n < 12_800 {
                if phase & 0x8000_0000 != 0 {
                    32_767
                } else {
                    -32_768
                }
            } else {
                (tri + noise) / 160
            };
            v as i16
        })
        .collect()
}

fn spandsp_decoded() -> Vec<i16> {
    SPANDSP_DECODED
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

#[test]
fn encoder_matches_spandsp_bit_for_bit() {
    let pcm = reference_signal();
    let mut encoder = G722Encoder::new();
    let mut coded = vec![0u8; SAMPLES / 2];
    for (frame, out) in pcm.chunks(320).zip(coded.chunks_mut(160)) {
        assert_eq!(encoder.encode(frame, out), 160);
    }
    assert_eq!(SPANDSP_ENCODED.len(), coded.len());
    let first_difference = coded.iter().zip(SPANDSP_ENCODED).position(|(a, b)| a != b);
    assert_eq!(
        first_difference, None,
        "G.722 codewords differ from spandsp"
    );
}

#[test]
fn decoder_matches_spandsp_except_where_spandsp_wraps() {
    let mut decoder = G722Decoder::new();
    let mut pcm = vec![0i16; SAMPLES];
    for (codes, out) in SPANDSP_ENCODED.chunks(160).zip(pcm.chunks_mut(320)) {
        assert_eq!(decoder.decode(codes, out), 320);
    }
    assert_same_as_spandsp(&pcm);
}

/// spandsp 0.0.6 (Debian 12's) casts the receive QMF output to 16 bits without
/// saturating, so a full-scale output wraps to the other sign; G.722 §4.4 limits
/// it, as we do. The ADPCM state never sees the output, so everywhere else the
/// samples must be identical, and where they differ ours must be at the rail
/// and spandsp's wrapped.
fn assert_same_as_spandsp(pcm: &[i16]) {
    let expected = spandsp_decoded();
    assert_eq!(pcm.len(), expected.len());
    let mut wrapped = 0;
    for (n, (&ours, &theirs)) in pcm.iter().zip(&expected).enumerate() {
        if ours != theirs {
            let is_wrap = (ours == i16::MAX && theirs < 0) || (ours == i16::MIN && theirs > 0);
            assert!(is_wrap, "sample {n}: ours {ours}, spandsp {theirs}");
            wrapped += 1;
        }
    }
    // Only the full-scale square segment (samples 9600..12800) reaches the rails.
    assert!(wrapped < 1_000, "{wrapped} samples differ");
}

/// Through the public `Encoder`/`Decoder`: the same bits, and the decoded
/// chirp resembles the input (the codec delay is 22 samples: 2 x 11 QMF taps).
#[test]
fn public_api_round_trip_matches_reference_and_tracks_input() {
    let params = CodecParams::new(CodecKind::G722);
    let mut encoder = Encoder::new(&params).unwrap();
    let mut decoder = Decoder::new(&params).unwrap();
    assert_eq!(encoder.frame_samples(), 320);
    let pcm = reference_signal();
    let mut decoded = Vec::with_capacity(SAMPLES);
    let mut payload = [0u8; 160];
    let mut out = [0i16; 320];
    for (i, frame) in pcm.chunks(320).enumerate() {
        assert_eq!(encoder.encode(frame, &mut payload).unwrap(), 160);
        assert_eq!(&payload[..], &SPANDSP_ENCODED[i * 160..(i + 1) * 160]);
        assert_eq!(decoder.decode(&payload, &mut out).unwrap(), 320);
        decoded.extend_from_slice(&out);
    }
    assert_same_as_spandsp(&decoded);

    // SNR of the chirp segment after the 22-sample codec delay: ADPCM at
    // 64 kbit/s gives well over 20 dB on a clean tone.
    const DELAY: usize = 22;
    let (mut signal, mut error) = (0f64, 0f64);
    for n in 400..3_900 {
        let x = f64::from(pcm[n]);
        let y = f64::from(decoded[n + DELAY]);
        signal += x * x;
        error += (x - y) * (x - y);
    }
    let snr = 10.0 * (signal / error).log10();
    assert!(snr > 20.0, "G.722 chirp SNR {snr:.1} dB");
}

#[test]
fn core_coder_stops_at_the_shorter_buffer() {
    let pcm = reference_signal();
    let mut encoder = G722Encoder::default();
    let mut codes = [0u8; 10];
    assert_eq!(encoder.encode(&pcm[..320], &mut codes), 10);
    assert_eq!(encoder.encode(&pcm[..7], &mut codes), 3);
    let mut decoder = G722Decoder::default();
    let mut out = [0i16; 7];
    assert_eq!(decoder.decode(&codes, &mut out), 6);
    assert_eq!(decoder.decode(&codes[..2], &mut out), 4);
}
