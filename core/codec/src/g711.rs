//! ITU-T G.711 A-law (PCMA) and µ-law (PCMU) companding.
//!
//! PCM is 16-bit linear at 8 kHz. G.711 itself works on 13-bit (A-law) and 14-bit
//! (µ-law) magnitudes; we take the top bits of the 16-bit sample, and a negative
//! sample `s` is companded as its one's complement `!s`, as the G.191 reference
//! does, so that the quantizer is symmetric about -1/2.
//!
//! Every function is a lookup in a `const` table built at compile time: nothing is
//! initialised at run time and nothing allocates.

/// A-law decoded value for each codeword (G.711 Table 1a, scaled to 16 bits).
static ALAW_DECODE: [i16; 256] = build_alaw_decode();
/// µ-law decoded value for each codeword (G.711 Table 2a, scaled to 16 bits).
static ULAW_DECODE: [i16; 256] = build_ulaw_decode();
/// A-law codeword for each 16-bit sample `s`, indexed by `(s >> 4) + 2048`: the
/// A-law decision values are all multiples of 16 at this scale.
static ALAW_ENCODE: [u8; 4096] = build_alaw_encode();
/// µ-law codeword for each 16-bit sample `s`, indexed by `(s >> 2) + 8192`.
static ULAW_ENCODE: [u8; 16384] = build_ulaw_encode();

/// A-law transmits every even bit inverted (G.711 §3.3, "even bit inversion").
const ALAW_INVERT: u8 = 0x55;

const fn alaw_decode_value(code: u8) -> i16 {
    let c = code ^ ALAW_INVERT;
    let segment = ((c >> 4) & 7) as i32;
    let step = (c & 0x0f) as i32;
    // Segment 0 and 1 share the finest step; each further segment doubles it.
    // The decoded value is the middle of the decision interval.
    let magnitude = if segment == 0 {
        (step << 4) + 8
    } else {
        ((step << 4) + 0x108) << (segment - 1)
    };
    // Bit 8 (0x80) set means positive for A-law.
    if c & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn build_alaw_decode() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = alaw_decode_value(code as u8);
        code += 1;
    }
    table
}

const fn ulaw_decode_value(code: u8) -> i16 {
    // µ-law transmits all bits inverted (G.711 §3.4).
    let c = !code;
    let segment = ((c >> 4) & 7) as i32;
    let step = (c & 0x0f) as i32;
    // Segment end points are 33 * (2^(s+1) - 1) - 33 in the 14-bit domain, with
    // the decoded value in the middle of each interval.
    let magnitude = ((((step << 1) + 33) << segment) - 33) << 2;
    if c & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn build_ulaw_decode() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = ulaw_decode_value(code as u8);
        code += 1;
    }
    table
}

/// Encodes one 12-bit-domain A-law magnitude index (`|s| >> 4`, 0..=2047).
const fn alaw_code(magnitude: u32, positive: bool) -> u8 {
    // Segment 0 covers 0..16, segment n >= 1 covers [16 << (n-1), 16 << n).
    let segment = if magnitude < 16 {
        0
    } else {
        (31 - magnitude.leading_zeros()) - 3
    };
    let step = if segment == 0 {
        magnitude
    } else {
        (magnitude >> (segment - 1)) & 0x0f
    };
    let sign = if positive { 0x80 } else { 0 };
    (sign | (segment << 4) as u8 | step as u8) ^ ALAW_INVERT
}

const fn build_alaw_encode() -> [u8; 4096] {
    let mut table = [0u8; 4096];
    let mut index = 0;
    while index < 4096 {
        let shifted = index as i32 - 2048; // s >> 4
        table[index] = if shifted >= 0 {
            alaw_code(shifted as u32, true)
        } else {
            alaw_code(!shifted as u32, false)
        };
        index += 1;
    }
    table
}

/// Encodes one 14-bit-domain µ-law magnitude (`|s| >> 2`, 0..=8191).
const fn ulaw_code(magnitude: u32, positive: bool) -> u8 {
    // Biasing by 33 turns the µ-law segment end points into powers of two.
    let mut biased = magnitude + 33;
    if biased > 0x1fff {
        biased = 0x1fff;
    }
    let segment = (31 - biased.leading_zeros()) - 5; // biased is in 32..8192
    let step = (biased >> (segment + 1)) & 0x0f;
    let sign = if positive { 0x80 } else { 0 };
    sign | (((segment << 4) as u8 | step as u8) ^ 0x7f)
}

const fn build_ulaw_encode() -> [u8; 16384] {
    let mut table = [0u8; 16384];
    let mut index = 0;
    while index < 16384 {
        let shifted = index as i32 - 8192; // s >> 2
        table[index] = if shifted >= 0 {
            ulaw_code(shifted as u32, true)
        } else {
            ulaw_code(!shifted as u32, false)
        };
        index += 1;
    }
    table
}

/// Compands one 16-bit sample to an A-law codeword.
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    ALAW_ENCODE[((sample >> 4) as i32 + 2048) as usize]
}

/// Expands one A-law codeword to a 16-bit sample.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[code as usize]
}

/// Compands one 16-bit sample to a µ-law codeword.
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    ULAW_ENCODE[((sample >> 2) as i32 + 8192) as usize]
}

/// Expands one µ-law codeword to a 16-bit sample.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[code as usize]
}

/// A-law encodes `min(pcm.len(), out.len())` samples and returns that count.
pub fn alaw_encode_slice(pcm: &[i16], out: &mut [u8]) -> usize {
    let n = pcm.len().min(out.len());
    for (code, &sample) in out[..n].iter_mut().zip(&pcm[..n]) {
        *code = alaw_encode(sample);
    }
    n
}

/// A-law decodes `min(codes.len(), pcm.len())` codewords and returns that count.
pub fn alaw_decode_slice(codes: &[u8], pcm: &mut [i16]) -> usize {
    let n = codes.len().min(pcm.len());
    for (sample, &code) in pcm[..n].iter_mut().zip(&codes[..n]) {
        *sample = alaw_decode(code);
    }
    n
}

/// µ-law encodes `min(pcm.len(), out.len())` samples and returns that count.
pub fn ulaw_encode_slice(pcm: &[i16], out: &mut [u8]) -> usize {
    let n = pcm.len().min(out.len());
    for (code, &sample) in out[..n].iter_mut().zip(&pcm[..n]) {
        *code = ulaw_encode(sample);
    }
    n
}

/// µ-law decodes `min(codes.len(), pcm.len())` codewords and returns that count.
pub fn ulaw_decode_slice(codes: &[u8], pcm: &mut [i16]) -> usize {
    let n = codes.len().min(pcm.len());
    for (sample, &code) in pcm[..n].iter_mut().zip(&codes[..n]) {
        *sample = ulaw_decode(code);
    }
    n
}
