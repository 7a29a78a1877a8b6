//! G.711 against its test sequences and a re-derivation of the ITU-T G.191
//! reference routines.

use switchyard_codec::g711::{
    alaw_decode, alaw_decode_slice, alaw_encode, alaw_encode_slice, ulaw_decode, ulaw_decode_slice,
    ulaw_encode, ulaw_encode_slice,
};

/// The 1 kHz, 0 dBm0 periodic sequences (G.711 Tables 5 and 6).
const ALAW_1KHZ: [u8; 8] = [0x34, 0x21, 0x21, 0x34, 0xB4, 0xA1, 0xA1, 0xB4];
const ULAW_1KHZ: [u8; 8] = [0x1E, 0x0B, 0x0B, 0x1E, 0x9E, 0x8B, 0x8B, 0x9E];

/// G.191 `alaw_compress`, written from the G.711 segment rules: a 12-bit
/// magnitude, 16 steps per segment, segments 0 and 1 of equal step.
fn g191_alaw_compress(x: i16) -> u8 {
    let x = i32::from(x);
    let mut ix = if x < 0 { (!x) >> 4 } else { x >> 4 };
    if ix > 15 {
        let mut exponent = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            exponent += 1;
        }
        ix -= 16;
        ix += exponent << 4;
    }
    if x >= 0 {
        ix |= 0x80;
    }
    (ix ^ 0x55) as u8
}

fn g191_alaw_expand(code: u8) -> i16 {
    let ix = i32::from(code ^ 0x55) & 0x7f;
    let exponent = ix >> 4;
    let mut mantissa = ix & 0x0f;
    if exponent > 0 {
        mantissa += 16;
    }
    mantissa = (mantissa << 4) + 8;
    if exponent > 1 {
        mantissa <<= exponent - 1;
    }
    (if code > 127 { mantissa } else { -mantissa }) as i16
}

/// G.191 `ulaw_compress`: bias the 14-bit magnitude by 33, find the segment by
/// counting shifts, invert the bits.
fn g191_ulaw_compress(x: i16) -> u8 {
    let x = i32::from(x);
    let mut absno = if x < 0 {
        ((!x) >> 2) + 33
    } else {
        (x >> 2) + 33
    };
    if absno > 0x1fff {
        absno = 0x1fff;
    }
    let mut i = absno >> 6;
    let mut segno = 1;
    while i != 0 {
        segno += 1;
        i >>= 1;
    }
    let high_nibble = 0x08 - segno;
    let low_nibble = 0x0f - ((absno >> segno) & 0x0f);
    let mut code = (high_nibble << 4) | low_nibble;
    if x >= 0 {
        code |= 0x80;
    }
    code as u8
}

fn g191_ulaw_expand(code: u8) -> i16 {
    let sign = if code < 0x80 { -1 } else { 1 };
    let mantissa = !i32::from(code);
    let exponent = (mantissa >> 4) & 0x07;
    let segment = exponent + 1;
    let mantissa = mantissa & 0x0f;
    let step = 4 << segment;
    (sign * ((0x80 << exponent) + step * mantissa + step / 2 - 4 * 33)) as i16
}

fn all_samples() -> impl Iterator<Item = i16> {
    i16::MIN..=i16::MAX
}

#[test]
fn alaw_1khz_sequence_survives_decode_and_reencode() {
    let decoded: Vec<i16> = ALAW_1KHZ.iter().map(|&c| alaw_decode(c)).collect();
    let reencoded: Vec<u8> = decoded.iter().map(|&s| alaw_encode(s)).collect();
    assert_eq!(reencoded, ALAW_1KHZ);
    assert_eq!(
        decoded,
        [-8960, -20992, -20992, -8960, 8960, 20992, 20992, 8960]
    );
    // 0 dBm0 is 3.14 dB below A-law full scale (G.711 Table 5 note): the
    // sequence's RMS must sit there.
    // (3.14 dB written as 314/100: clippy takes the literal for an approximate pi.)
    let expected_rms = 32_768.0 / 2f64.sqrt() * 10f64.powf(-(314.0 / 100.0) / 20.0);
    let rms = (decoded.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / 8.0).sqrt();
    assert!(
        (20.0 * (rms / expected_rms).log10()).abs() < 0.1,
        "rms {rms}"
    );
}

#[test]
fn ulaw_1khz_sequence_survives_decode_and_reencode() {
    let decoded: Vec<i16> = ULAW_1KHZ.iter().map(|&c| ulaw_decode(c)).collect();
    let reencoded: Vec<u8> = decoded.iter().map(|&s| ulaw_encode(s)).collect();
    assert_eq!(reencoded, ULAW_1KHZ);
    assert_eq!(
        decoded,
        [-8828, -20860, -20860, -8828, 8828, 20860, 20860, 8828]
    );
    // µ-law full scale is +3.17 dBm0 at 8159 (14-bit), i.e. 32636 here.
    let expected_rms = 32_636.0 / 2f64.sqrt() * 10f64.powf(-3.17 / 20.0);
    let rms = (decoded.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / 8.0).sqrt();
    assert!(
        (20.0 * (rms / expected_rms).log10()).abs() < 0.1,
        "rms {rms}"
    );
}

#[test]
fn every_alaw_code_round_trips() {
    for code in 0..=255u8 {
        assert_eq!(alaw_encode(alaw_decode(code)), code, "code {code:#04x}");
    }
}

#[test]
fn every_ulaw_code_round_trips_except_negative_zero() {
    for code in 0..=255u8 {
        let expected = if code == 0x7f { 0xff } else { code };
        assert_eq!(ulaw_encode(ulaw_decode(code)), expected, "code {code:#04x}");
    }
    // µ-law has two zeros; both decode to 0, which encodes as positive zero.
    assert_eq!((ulaw_decode(0x7f), ulaw_decode(0xff)), (0, 0));
}

#[test]
fn encoding_is_monotonic_over_every_input() {
    let (mut last_alaw, mut last_ulaw) = (i16::MIN, i16::MIN);
    for s in all_samples() {
        let a = alaw_decode(alaw_encode(s));
        let u = ulaw_decode(ulaw_encode(s));
        assert!(a >= last_alaw, "A-law not monotonic at {s}");
        assert!(u >= last_ulaw, "µ-law not monotonic at {s}");
        last_alaw = a;
        last_ulaw = u;
    }
}

#[test]
fn encoding_matches_g191_for_every_input() {
    for s in all_samples() {
        assert_eq!(alaw_encode(s), g191_alaw_compress(s), "A-law encode of {s}");
        assert_eq!(ulaw_encode(s), g191_ulaw_compress(s), "µ-law encode of {s}");
    }
}

#[test]
fn decoding_matches_g191_for_every_code() {
    for code in 0..=255u8 {
        assert_eq!(
            alaw_decode(code),
            g191_alaw_expand(code),
            "A-law decode of {code:#04x}"
        );
        assert_eq!(
            ulaw_decode(code),
            g191_ulaw_expand(code),
            "µ-law decode of {code:#04x}"
        );
    }
}

/// The quantization error never exceeds half a step of the segment the sample
/// falls in, plus the one-LSB offset of companding negative samples as their
/// one's complement, up to the clipping level. A-law: 1/32 of the magnitude,
/// 8 near zero. µ-law: its segments start at 132 * (2^e - 1), so 1/32 of the
/// magnitude plus 132, 4 near zero.
#[test]
fn quantization_error_is_within_half_a_step() {
    for s in all_samples() {
        let magnitude = i32::from(s).abs();
        let a = i32::from(alaw_decode(alaw_encode(s)));
        let u = i32::from(ulaw_decode(ulaw_encode(s)));
        if magnitude < 32_000 {
            let alaw_bound = (magnitude / 32).max(8) + 1;
            let ulaw_bound = ((magnitude + 132) / 32).max(4) + 1;
            assert!((a - i32::from(s)).abs() <= alaw_bound, "A-law {s} -> {a}");
            assert!((u - i32::from(s)).abs() <= ulaw_bound, "µ-law {s} -> {u}");
        }
    }
}

#[test]
fn slice_functions_match_the_scalar_ones_and_stop_at_the_shorter_buffer() {
    let pcm: Vec<i16> = (0..160)
        .map(|n| ((n * 409) % 65_536 - 32_768) as i16)
        .collect();
    let mut alaw = [0u8; 160];
    let mut ulaw = [0u8; 160];
    assert_eq!(alaw_encode_slice(&pcm, &mut alaw), 160);
    assert_eq!(ulaw_encode_slice(&pcm, &mut ulaw), 160);
    for (n, &s) in pcm.iter().enumerate() {
        assert_eq!(alaw[n], alaw_encode(s));
        assert_eq!(ulaw[n], ulaw_encode(s));
    }
    let mut back = [0i16; 160];
    assert_eq!(alaw_decode_slice(&alaw, &mut back), 160);
    assert!(back.iter().zip(&alaw).all(|(&s, &c)| s == alaw_decode(c)));
    assert_eq!(ulaw_decode_slice(&ulaw, &mut back), 160);
    assert!(back.iter().zip(&ulaw).all(|(&s, &c)| s == ulaw_decode(c)));

    let mut short = [0u8; 10];
    assert_eq!(alaw_encode_slice(&pcm, &mut short), 10);
    assert_eq!(ulaw_encode_slice(&pcm[..4], &mut short), 4);
    let mut short_pcm = [0i16; 3];
    assert_eq!(alaw_decode_slice(&alaw, &mut short_pcm), 3);
    assert_eq!(ulaw_decode_slice(&ulaw[..2], &mut short_pcm), 2);
}
