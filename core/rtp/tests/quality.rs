//! The G.107 E-model against reference points.
//!
//! The table values come from a separate implementation of G.107 (06/2015) §7 written from the
//! Recommendation's equations (Python, all Table 1 defaults, T = Ta, Tr = 2T); the anchor
//! points (R = 93.2 at the defaults, Ie,eff, the MOS curve) are derived here by hand.

use switchyard_rtp::quality::{
    CodecImpairment, EModelInput, G711_WITH_PLC, G711_WITHOUT_PLC, G722, OPUS, delay_impairment,
    effective_equipment_impairment, mos_from_r, r_factor,
};

fn close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} ± {tol}"
    );
}

#[test]
fn defaults_give_93_2_and_mos_4_41() {
    let r = r_factor(&EModelInput::new(G711_WITH_PLC, 0.0, 0.0));
    // G.107 §7: "the default values … result in R = 93.2".
    close(r, 93.2, 0.01, "R");
    close(mos_from_r(r), 4.41, 0.005, "MOS");
    // Without PLC the same when nothing is lost.
    assert_eq!(r, r_factor(&EModelInput::new(G711_WITHOUT_PLC, 0.0, 0.0)));
}

#[test]
fn effective_equipment_impairment_by_hand() {
    // Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl).
    let cases = [
        (G711_WITH_PLC, 1.0, 1.0, 95.0 / 26.1),
        (G711_WITHOUT_PLC, 1.0, 1.0, 95.0 / 5.3),
        (G711_WITH_PLC, 5.0, 2.0, 95.0 * 5.0 / 27.6),
        (OPUS, 2.0, 1.0, 11.0 + 84.0 * 2.0 / 27.1),
        (G722, 0.0, 1.0, 13.0),
    ];
    for (codec, ppl, burst, want) in cases {
        let input = EModelInput {
            burst_ratio: burst,
            ..EModelInput::new(codec, ppl, 0.0)
        };
        close(effective_equipment_impairment(&input), want, 1e-9, "Ie,eff");
        // With no delay, R falls by exactly Ie,eff.
        let r0 = r_factor(&EModelInput::new(G711_WITH_PLC, 0.0, 0.0));
        close(r_factor(&input), r0 - want, 1e-9, "R − Ie,eff");
    }
}

#[test]
fn delay_impairment_reference_points() {
    // (Ta = T ms, Id): at the defaults Id(0) = Idle(Tr = 0) ≈ 0.15, Idd starts above 100 ms.
    let table = [
        (0.0, 0.1490),
        (50.0, 1.5991),
        (100.0, 2.6915),
        (150.0, 3.8161),
        (200.0, 7.5505),
        (300.0, 20.6889),
        (400.0, 31.1084),
    ];
    for (t, want) in table {
        close(
            delay_impairment(t, 2.0 * t, t),
            want,
            0.001,
            &format!("Id({t})"),
        );
    }
    // Idd alone: 25{(1+X⁶)^⅙ − 3(1+(X/3)⁶)^⅙ + 2}, X = log2(Ta/100), by hand at Ta = 200:
    // X = 1: 25(2^⅙ − 3(1 + 1/729)^⅙ + 2) = 3.0444.
    let idd = delay_impairment(0.0, 0.0, 200.0) - delay_impairment(0.0, 0.0, 0.0);
    close(idd, 3.0444, 0.0005, "Idd(200)");
}

#[test]
fn r_table() {
    // (Ppl %, Ta ms, Ie, Bpl, BurstR, R, MOS)
    let table = [
        (0.0, 0.0, 0.0, 25.1, 1.0, 93.206, 4.409),
        (1.0, 0.0, 0.0, 25.1, 1.0, 89.566, 4.328),
        (2.0, 50.0, 0.0, 25.1, 1.0, 84.745, 4.190),
        (5.0, 150.0, 0.0, 25.1, 1.0, 73.758, 3.768),
        (0.0, 150.0, 0.0, 25.1, 1.0, 89.539, 4.328),
        (3.0, 250.0, 0.0, 4.3, 1.0, 40.136, 2.071),
        (10.0, 300.0, 11.0, 25.1, 2.0, 33.759, 1.771),
        (0.0, 400.0, 13.0, 25.1, 1.0, 49.247, 2.536),
        (20.0, 100.0, 0.0, 25.1, 1.0, 48.535, 2.498),
        (5.0, 0.0, 0.0, 4.3, 1.0, 42.131, 2.170),
    ];
    for (ppl, ta, ie, bpl, burst, r, mos) in table {
        let input = EModelInput {
            ie,
            bpl,
            packet_loss_percent: ppl,
            burst_ratio: burst,
            one_way_delay_ms: ta,
        };
        let got = r_factor(&input);
        close(got, r, 0.001, &format!("R({ppl} %, {ta} ms)"));
        close(
            mos_from_r(got),
            mos,
            0.001,
            &format!("MOS({ppl} %, {ta} ms)"),
        );
    }
}

#[test]
fn mos_curve() {
    assert_eq!(mos_from_r(-5.0), 1.0);
    assert_eq!(mos_from_r(0.0), 1.0);
    assert_eq!(mos_from_r(100.0), 4.5);
    assert_eq!(mos_from_r(120.0), 4.5);
    // By hand: R = 60 → 1 + 2.1 + 0 = 3.1; R = 50 → 1 + 1.75 − 50·10·50·7e-6 = 2.575.
    close(mos_from_r(60.0), 3.1, 1e-12, "MOS(60)");
    close(mos_from_r(50.0), 2.575, 1e-12, "MOS(50)");
    // The polynomial would dip to 0.994 at R = 1: held at 1, never decreasing.
    assert_eq!(mos_from_r(1.0), 1.0);
    let mut prev = 1.0;
    for r in 1..1000 {
        let m = mos_from_r(f64::from(r) / 10.0);
        assert!(m >= prev, "MOS decreasing at R = {}", f64::from(r) / 10.0);
        prev = m;
    }
    assert!(mos_from_r(10.0) > 1.0);
    // R never goes below 0 even with everything wrong.
    let awful = EModelInput {
        burst_ratio: 4.0,
        ..EModelInput::new(CodecImpairment { ie: 40.0, bpl: 4.0 }, 60.0, 800.0)
    };
    assert_eq!(r_factor(&awful), 0.0);
}
