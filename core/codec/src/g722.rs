//! ITU-T G.722 sub-band ADPCM at 64 kbit/s (mode 1), 16 kHz PCM in and out.
//!
//! Written from the block structure of G.722 (11/88) §3–§4: a 24-tap QMF splits
//! the input into two 8 kHz sub-bands; the lower band gets a 6-bit adaptive
//! quantizer (of which the predictor sees the 4 most significant bits, so the
//! 56 and 48 kbit/s modes decode the same core), the upper band a 2-bit one.
//! Each codeword is one octet: `IH` in bits 7–6, `IL` in bits 5–0, sent most
//! significant bit first (RFC 3551 §4.5.2).
//!
//! `tests/g722_reference.rs` checks us against vectors produced by spandsp's
//! G.722 (the implementation in baresip and FreeSWITCH): the codewords are
//! bit-exact, and so is the decoded PCM except where the output reaches full
//! scale, which we saturate (G.722 §4.4) and spandsp 0.0.6 wraps around.
//! Encoder and decoder hold a few hundred bytes of state and never allocate.

/// QMF coefficients h0..h11 (G.722 Table 11); the filter is symmetric, so the
/// other twelve are these reversed.
const QMF: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];

/// Lower-band decision levels for the 6-bit quantizer (G.722 Table 6), scaled by
/// 2^3 against DETL.
const Q6: [i32; 32] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
    1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
];
/// Codeword `IL` for a negative difference in interval `i` (G.722 Table 6).
const ILN: [i32; 32] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4, 0,
];
/// Codeword `IL` for a non-negative difference in interval `i`.
const ILP: [i32; 32] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32, 0,
];
/// 4-bit inverse quantizer output levels QQ4 (G.722 Table 7), indexed by `IL >> 2`.
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
/// 6-bit inverse quantizer output levels QQ6 (G.722 Table 7), indexed by `IL`.
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
    -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776,
    -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280,
    11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776,
    2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
/// Map from `IL >> 2` to the log scale factor multiplier index (G.722 Table 8, RIL → IL4).
const RL42: [i32; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
/// Lower-band log scale factor multipliers WL (G.722 Table 8).
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
/// Inverse log2 table ILA used by SCALEL/SCALEH (G.722 Table 14).
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
/// Upper-band codewords `IH` for negative / non-negative differences (G.722 Table 9).
const IHN: [i32; 3] = [0, 1, 0];
const IHP: [i32; 3] = [0, 3, 2];
/// 2-bit inverse quantizer output levels QQ2 (G.722 Table 10), indexed by `IH`.
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
/// Map from `IH` to the upper-band log scale factor multiplier index.
const RH2: [i32; 4] = [2, 1, 2, 1];
/// Upper-band log scale factor multipliers WH (G.722 Table 10).
const WH: [i32; 3] = [0, -214, 798];

#[inline]
fn saturate(v: i32) -> i32 {
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX))
}

/// The adaptive predictor and scale factor state of one sub-band.
#[derive(Clone, Debug)]
struct Band {
    /// Signal estimate S.
    s: i32,
    /// Zero-section (6th order FIR) output SZ.
    sz: i32,
    /// Reconstructed signal R, delayed by 1 and 2.
    r: [i32; 3],
    /// Pole coefficients A1, A2.
    a: [i32; 3],
    /// Partially reconstructed signal P, delayed by 1 and 2.
    p: [i32; 3],
    /// Quantized difference signal D, delayed by 1..6.
    d: [i32; 7],
    /// Zero coefficients B1..B6.
    b: [i32; 7],
    /// Log scale factor NABLA.
    nb: i32,
    /// Scale factor DET.
    det: i32,
}

impl Band {
    fn new(det: i32) -> Band {
        Band {
            s: 0,
            sz: 0,
            r: [0; 3],
            a: [0; 3],
            p: [0; 3],
            d: [0; 7],
            b: [0; 7],
            nb: 0,
            det,
        }
    }

    /// LOGSCL + SCALEL (lower band) or LOGSCH + SCALEH (upper band): G.722 §3.5 / §3.6.
    #[inline]
    fn adapt_scale(&mut self, multiplier: i32, nb_max: i32, shift_base: i32) {
        let nb = ((self.nb * 127) >> 7) + multiplier;
        self.nb = nb.clamp(0, nb_max);
        let wd1 = (self.nb >> 6) & 31;
        let wd2 = shift_base - (self.nb >> 11);
        let wd3 = if wd2 < 0 {
            ILB[wd1 as usize] << -wd2
        } else {
            ILB[wd1 as usize] >> wd2
        };
        self.det = wd3 << 2;
    }

    /// Block 4 (G.722 §3.6): reconstruction, pole/zero predictor adaptation and
    /// prediction, driven by the quantized difference `d`.
    #[inline]
    fn block4(&mut self, d: i32) {
        // RECONS and PARREC
        let r0 = saturate(self.s + d);
        let p0 = saturate(self.sz + d);

        // UPPOL2: the sign tests compare P(n) with P(n-1) and P(n-2).
        let sg0 = p0 >> 15;
        let sg1 = self.p[1] >> 15;
        let sg2 = self.p[2] >> 15;
        let wd1 = saturate(self.a[1] << 2);
        let wd2 = if sg0 == sg1 { -wd1 } else { wd1 }.min(32767);
        let wd3 = (wd2 >> 7) + if sg0 == sg2 { 128 } else { -128 } + ((self.a[2] * 32512) >> 15);
        let ap2 = wd3.clamp(-12288, 12288);

        // UPPOL1, with the stability limit |A1| <= 15360 - A2.
        let wd1 = if sg0 == sg1 { 192 } else { -192 };
        let wd2 = (self.a[1] * 32640) >> 15;
        let limit = saturate(15360 - ap2);
        let ap1 = saturate(wd1 + wd2).clamp(-limit, limit);

        // UPZERO: sign-sign LMS with leakage on the six zero coefficients.
        let step = if d == 0 { 0 } else { 128 };
        let sgd = d >> 15;
        for i in 1..7 {
            let wd2 = if self.d[i] >> 15 == sgd { step } else { -step };
            let wd3 = (self.b[i] * 32640) >> 15;
            self.b[i] = saturate(wd2 + wd3);
        }

        // DELAYA
        self.d.copy_within(1..6, 2);
        self.d[1] = d;
        self.r[2] = self.r[1];
        self.r[1] = r0;
        self.p[2] = self.p[1];
        self.p[1] = p0;
        self.a[1] = ap1;
        self.a[2] = ap2;

        // FILTEP
        let wd1 = (self.a[1] * saturate(self.r[1] + self.r[1])) >> 15;
        let wd2 = (self.a[2] * saturate(self.r[2] + self.r[2])) >> 15;
        let sp = saturate(wd1 + wd2);

        // FILTEZ
        let mut sz = 0;
        for i in (1..7).rev() {
            sz += (self.b[i] * saturate(self.d[i] + self.d[i])) >> 15;
        }
        self.sz = saturate(sz);

        // PREDIC
        self.s = saturate(sp + self.sz);
    }
}

/// Reset values of DETL and DETH (G.722 §3.6.1 / Table 17).
const DETL_RESET: i32 = 32;
const DETH_RESET: i32 = 8;

/// A 64 kbit/s G.722 encoder: 16 kHz PCM in, one octet per two samples out.
#[derive(Clone, Debug)]
pub struct G722Encoder {
    /// QMF delay line: the last 24 input samples.
    x: [i32; 24],
    band: [Band; 2],
}

impl Default for G722Encoder {
    fn default() -> Self {
        G722Encoder::new()
    }
}

impl G722Encoder {
    /// An encoder in the reset state of G.722 §3.6.1.
    pub fn new() -> G722Encoder {
        G722Encoder {
            x: [0; 24],
            band: [Band::new(DETL_RESET), Band::new(DETH_RESET)],
        }
    }

    /// Encodes pairs of 16 kHz samples from `pcm` into one codeword each at
    /// the start of `out`, as many as both hold, and returns that count: `pcm`
    /// should have an even length and `out` at least half of it.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        let mut written = 0;
        for (pair, code) in pcm.chunks_exact(2).zip(out.iter_mut()) {
            *code = self.encode_pair(pair[0], pair[1]);
            written += 1;
        }
        written
    }

    #[inline]
    fn encode_pair(&mut self, first: i16, second: i16) -> u8 {
        // Transmit QMF (G.722 §3.1): two input samples in, one sample per sub-band out.
        self.x.copy_within(2..24, 0);
        self.x[22] = i32::from(first);
        self.x[23] = i32::from(second);
        let mut sumodd = 0;
        let mut sumeven = 0;
        for i in 0..12 {
            sumodd += self.x[2 * i] * QMF[i];
            sumeven += self.x[2 * i + 1] * QMF[11 - i];
        }
        let xlow = (sumeven + sumodd) >> 14;
        let xhigh = (sumeven - sumodd) >> 14;

        // Lower band. SUBTRA and QUANTL (§3.3): find the decision interval of |EL|.
        let low = &mut self.band[0];
        let el = saturate(xlow - low.s);
        let wd = if el >= 0 { el } else { -(el + 1) };
        let mut i = 1;
        while i < 30 && wd >= (Q6[i] * low.det) >> 12 {
            i += 1;
        }
        let ilow = if el < 0 { ILN[i] } else { ILP[i] };
        // INVQAL: the predictor only sees the 4-bit quantizer (IL with 2 LSBs dropped).
        let ril = (ilow >> 2) as usize;
        let dlow = (low.det * QM4[ril]) >> 15;
        low.adapt_scale(WL[RL42[ril] as usize], 18432, 8);
        low.block4(dlow);

        // Upper band. SUBTRA and QUANTH (§3.4).
        let high = &mut self.band[1];
        let eh = saturate(xhigh - high.s);
        let wd = if eh >= 0 { eh } else { -(eh + 1) };
        let mih = if wd >= (564 * high.det) >> 12 { 2 } else { 1 };
        let ihigh = if eh < 0 { IHN[mih] } else { IHP[mih] };
        let dhigh = (high.det * QM2[ihigh as usize]) >> 15;
        high.adapt_scale(WH[RH2[ihigh as usize] as usize], 22528, 10);
        high.block4(dhigh);

        ((ihigh << 6) | ilow) as u8
    }
}

/// A 64 kbit/s G.722 decoder: one octet in, two 16 kHz samples out.
#[derive(Clone, Debug)]
pub struct G722Decoder {
    /// Receive QMF delay line.
    x: [i32; 24],
    band: [Band; 2],
}

impl Default for G722Decoder {
    fn default() -> Self {
        G722Decoder::new()
    }
}

impl G722Decoder {
    /// A decoder in the reset state of G.722 §3.6.1.
    pub fn new() -> G722Decoder {
        G722Decoder {
            x: [0; 24],
            band: [Band::new(DETL_RESET), Band::new(DETH_RESET)],
        }
    }

    /// Decodes codewords into two 16 kHz samples each at the start of `pcm`,
    /// as many as both hold, and returns the number of samples written:
    /// `2 * codes.len()` when `pcm` is long enough.
    pub fn decode(&mut self, codes: &[u8], pcm: &mut [i16]) -> usize {
        let mut written = 0;
        for (&code, pair) in codes.iter().zip(pcm.chunks_exact_mut(2)) {
            let [first, second] = self.decode_code(code);
            pair[0] = first;
            pair[1] = second;
            written += 2;
        }
        written
    }

    #[inline]
    fn decode_code(&mut self, code: u8) -> [i16; 2] {
        let code = i32::from(code);
        let il6 = (code & 0x3f) as usize;
        let ihigh = ((code >> 6) & 0x03) as usize;

        // Lower band. INVQBL (6-bit, mode 1) and RECONS, LIMIT (§4.2).
        let low = &mut self.band[0];
        let rlow = (low.s + ((low.det * QM6[il6]) >> 15)).clamp(-16384, 16383);
        // INVQAL: the predictor runs on the 4-bit quantizer, as in the encoder.
        let ril = il6 >> 2;
        let dlow = (low.det * QM4[ril]) >> 15;
        low.adapt_scale(WL[RL42[ril] as usize], 18432, 8);
        low.block4(dlow);

        // Upper band. INVQAH, RECONS, LIMIT.
        let high = &mut self.band[1];
        let dhigh = (high.det * QM2[ihigh]) >> 15;
        let rhigh = (dhigh + high.s).clamp(-16384, 16383);
        high.adapt_scale(WH[RH2[ihigh] as usize], 22528, 10);
        high.block4(dhigh);

        // Receive QMF (§4.4).
        self.x.copy_within(2..24, 0);
        self.x[22] = rlow + rhigh;
        self.x[23] = rlow - rhigh;
        let mut xout1 = 0;
        let mut xout2 = 0;
        for i in 0..12 {
            xout2 += self.x[2 * i] * QMF[i];
            xout1 += self.x[2 * i + 1] * QMF[11 - i];
        }
        [saturate(xout1 >> 11) as i16, saturate(xout2 >> 11) as i16]
    }
}
