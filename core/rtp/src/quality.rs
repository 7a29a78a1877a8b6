//! The ITU-T G.107 E-model, reduced to what a VoIP monitor measures: codec, packet loss and
//! mouth-to-ear delay. Every other G.107 parameter keeps its Table 1 default (SLR 8 dB, RLR
//! 2 dB, STMR 15 dB, LSTR 18 dB, Ds 3, TELR 65 dB, WEPL 110 dB, qdu 1, Ps = Pr = 35 dB(A),
//! Nc −70 dBm0p, Nfor −64 dBmp, A 0), which is the usual monitoring practice (RFC 3611 §4.7.5,
//! G.1020). With those defaults and no loss nor delay R = 93.2.
//!
//! R = Ro − Is − Id − Ie,eff + A, with
//! - Ro and Is from §7.2 and §7.3 (noise, loudness, sidetone, quantisation at the defaults);
//! - Id = Idte + Idle + Idd (§7.4), taking the one-way delay as mouth-to-ear delay Ta, as the
//!   talker-echo path delay T (the echo comes back over the same network) and Tr = 2T;
//! - Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl) (§7.5).

/// A codec's equipment impairment and packet-loss robustness.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CodecImpairment {
    pub ie: f64,
    pub bpl: f64,
}

/// G.711 with packet loss concealment (G.711 Appendix I): G.113 Appendix I, Ie 0, Bpl 25.1.
pub const G711_WITH_PLC: CodecImpairment = CodecImpairment { ie: 0.0, bpl: 25.1 };
/// G.711 without concealment: G.113 Appendix I, Ie 0, Bpl 4.3.
pub const G711_WITHOUT_PLC: CodecImpairment = CodecImpairment { ie: 0.0, bpl: 4.3 };
/// G.722 (64 kbit/s) scored on the narrowband scale: Ie 13 is our pick, between G.711 and
/// G.729A (11) plus the cost of rating wideband with a narrowband model, which rewards
/// nothing for the extra band. Bpl as G.711 with PLC (G.722 Appendix III/IV concealment).
pub const G722: CodecImpairment = CodecImpairment {
    ie: 13.0,
    bpl: 25.1,
};
/// Opus at VoIP bitrates, scored on the narrowband scale: Ie 11 is our pick (the value
/// G.113 gives codecs of comparable narrowband quality such as G.729A); Bpl as G.711 with
/// PLC, Opus's own concealment and in-band FEC being at least as robust.
pub const OPUS: CodecImpairment = CodecImpairment {
    ie: 11.0,
    bpl: 25.1,
};

/// What the simplified model needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EModelInput {
    /// Equipment impairment factor Ie of the codec.
    pub ie: f64,
    /// Packet-loss robustness factor Bpl of the codec.
    pub bpl: f64,
    /// Ppl, packets lost in percent (0..=100).
    pub packet_loss_percent: f64,
    /// BurstR: 1 for random loss, above 1 for bursty loss.
    pub burst_ratio: f64,
    /// Mouth-to-ear delay Ta in milliseconds (network + jitter buffer + codec + devices).
    pub one_way_delay_ms: f64,
}

impl EModelInput {
    /// Random loss with a codec's figures.
    pub fn new(codec: CodecImpairment, packet_loss_percent: f64, one_way_delay_ms: f64) -> Self {
        EModelInput {
            ie: codec.ie,
            bpl: codec.bpl,
            packet_loss_percent,
            burst_ratio: 1.0,
            one_way_delay_ms,
        }
    }
}

// G.107 Table 1 defaults.
const SLR: f64 = 8.0;
const RLR: f64 = 2.0;
const STMR: f64 = 15.0;
const LSTR: f64 = 18.0;
const DS: f64 = 3.0;
const TELR: f64 = 65.0;
const WEPL: f64 = 110.0;
const QDU: f64 = 1.0;
const PS: f64 = 35.0;
const PR: f64 = 35.0;
const NC: f64 = -70.0;
const NFOR: f64 = -64.0;
/// Idd: delay below which no impairment (mT) and sensitivity (sT), G.107 (06/2015) §7.4.
const M_T: f64 = 100.0;
const S_T: f64 = 1.0;

fn db_sum(levels: &[f64]) -> f64 {
    10.0 * levels
        .iter()
        .map(|l| 10f64.powf(l / 10.0))
        .sum::<f64>()
        .log10()
}

/// §7.2: total noise No, in dBm0p.
fn noise() -> f64 {
    let olr = SLR + RLR;
    let nos = PS - SLR - DS - 100.0 + 0.004 * (PS - olr - DS - 14.0).powi(2);
    let pre = PR + 10.0 * (1.0 + 10f64.powf((10.0 - LSTR) / 10.0)).log10();
    let nor = RLR - 121.0 + pre + 0.008 * (pre - 35.0).powi(2);
    let nfo = NFOR + RLR;
    db_sum(&[NC, nos, nor, nfo])
}

/// §7.3: simultaneous impairments (loudness, sidetone, quantisation), at echo path delay T.
fn simultaneous_impairment(ro: f64, no: f64, t: f64) -> f64 {
    let olr = SLR + RLR;
    let xolr = olr + 0.2 * (64.0 + no - RLR);
    let iolr = 20.0 * ((1.0 + (xolr / 8.0).powi(8)).powf(1.0 / 8.0) - xolr / 8.0);
    let stmro =
        -10.0 * (10f64.powf(-STMR / 10.0) + (-t / 4.0).exp() * 10f64.powf(-TELR / 10.0)).log10();
    let ist = 12.0 * (1.0 + ((stmro - 13.0) / 6.0).powi(8)).powf(1.0 / 8.0)
        - 28.0 * (1.0 + ((stmro + 1.0) / 19.4).powi(35)).powf(1.0 / 35.0)
        - 13.0 * (1.0 + ((stmro - 3.0) / 33.0).powi(13)).powf(1.0 / 13.0)
        + 29.0;
    let q = 37.0 - 15.0 * QDU.log10();
    let g = 1.07 + 0.258 * q + 0.0602 * q * q;
    let y = (ro - 100.0) / 15.0 + 46.0 / 8.4 - g / 9.0;
    let z = 46.0 / 30.0 - g / 40.0;
    let iq = 15.0 * (1.0 + 10f64.powf(y) + 10f64.powf(z)).log10();
    iolr + ist + iq
}

/// §7.4: delay impairment Id = Idte + Idle + Idd for talker-echo delay `t`, round trip `tr`
/// and mouth-to-ear delay `ta`, all in ms.
pub fn delay_impairment(t: f64, tr: f64, ta: f64) -> f64 {
    let no = noise();
    let ro = 15.0 - 1.5 * (SLR + no);
    // Talker echo.
    let terv =
        TELR - 40.0 * ((1.0 + t / 10.0) / (1.0 + t / 150.0)).log10() + 6.0 * (-0.3 * t * t).exp();
    let roe = -1.5 * (no - RLR);
    let re = 80.0 + 2.5 * (terv - 14.0);
    let idte =
        ((roe - re) / 2.0 + ((roe - re).powi(2) / 4.0 + 100.0).sqrt() - 1.0) * (1.0 - (-t).exp());
    // Listener echo.
    let rle = 10.5 * (WEPL + 7.0) * (tr + 1.0).powf(-0.25);
    let idle = (ro - rle) / 2.0 + ((ro - rle).powi(2) / 4.0 + 169.0).sqrt();
    // Absolute delay.
    let idd = if ta <= M_T {
        0.0
    } else {
        let x = (ta / M_T).log2();
        let e = 6.0 * S_T;
        25.0 * ((1.0 + x.powf(e)).powf(1.0 / e) - 3.0 * (1.0 + (x / 3.0).powf(e)).powf(1.0 / e)
            + 2.0)
    };
    idte + idle + idd
}

/// §7.5: effective equipment impairment under packet loss.
pub fn effective_equipment_impairment(input: &EModelInput) -> f64 {
    let ppl = input.packet_loss_percent.clamp(0.0, 100.0);
    let burst = input.burst_ratio.max(1.0);
    if ppl == 0.0 {
        return input.ie;
    }
    input.ie + (95.0 - input.ie) * ppl / (ppl / burst + input.bpl)
}

/// The transmission rating R (0..=100; values below 0 are reported as 0).
pub fn r_factor(input: &EModelInput) -> f64 {
    let ta = input.one_way_delay_ms.max(0.0);
    let no = noise();
    let ro = 15.0 - 1.5 * (SLR + no);
    let is = simultaneous_impairment(ro, no, ta);
    let id = delay_impairment(ta, 2.0 * ta, ta);
    (ro - is - id - effective_equipment_impairment(input)).max(0.0)
}

/// MOS (conversational quality, 1..=4.5) from R: G.107 (B.4). The polynomial dips just below
/// 1 for R under about 6.5; MOS has no value below 1, so it is held there.
pub fn mos_from_r(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        (1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7.0e-6).max(1.0)
    }
}
