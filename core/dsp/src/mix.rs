//! Conference mixing and level helpers.

/// Samples summed per pass; the i32 accumulator lives on the stack (1 KiB).
const CHUNK: usize = 256;

#[inline]
fn sat(v: i32) -> i16 {
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// Mix-minus for a conference: `outputs[i]` = saturating sum of every input except
/// `inputs[i]`, so no party hears itself.
///
/// Outputs past `inputs.len()` receive the sum of all inputs (listen-only members); inputs
/// past `outputs.len()` are mixed in but get no output. Only the first `n` samples are
/// touched, `n` being the shortest of all the slices (they are normally one frame each).
/// Sums are taken in i32 and clipped once at the end, so intermediate overflow cannot
/// distort. Does not allocate.
pub fn mix_minus(inputs: &[&[i16]], outputs: &mut [&mut [i16]]) {
    let n = inputs
        .iter()
        .map(|s| s.len())
        .chain(outputs.iter().map(|s| s.len()))
        .min()
        .unwrap_or(0);
    let mut acc = [0i32; CHUNK];
    let mut start = 0;
    while start < n {
        let len = CHUNK.min(n - start);
        let acc = &mut acc[..len];
        acc.fill(0);
        for input in inputs {
            for (a, &x) in acc.iter_mut().zip(&input[start..start + len]) {
                *a += i32::from(x);
            }
        }
        for (i, output) in outputs.iter_mut().enumerate() {
            let out = &mut output[start..start + len];
            match inputs.get(i) {
                Some(own) => {
                    for ((o, &a), &x) in
                        out.iter_mut().zip(acc.iter()).zip(&own[start..start + len])
                    {
                        *o = sat(a - i32::from(x));
                    }
                }
                None => {
                    for (o, &a) in out.iter_mut().zip(acc.iter()) {
                        *o = sat(a);
                    }
                }
            }
        }
        start += len;
    }
}

/// `dst[i] += src[i]` with saturation, over the shorter of the two.
pub fn add_saturating(dst: &mut [i16], src: &[i16]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = d.saturating_add(s);
    }
}

/// Applies a gain of `db` decibels (negative attenuates), rounding and saturating.
pub fn scale_db(pcm: &mut [i16], db: f32) {
    let g = 10f32.powf(db / 20.0);
    for s in pcm.iter_mut() {
        *s = crate::to_i16(f32::from(*s) * g);
    }
}

/// RMS level in dBFS, where 0 dBFS is the RMS of a full-scale square wave (so a full-scale
/// sine reads -3.01 dBFS). Silence and empty input give negative infinity.
pub fn rms_dbfs(pcm: &[i16]) -> f32 {
    if pcm.is_empty() {
        return f32::NEG_INFINITY;
    }
    let sum: f64 = pcm.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    let rms = (sum / pcm.len() as f64).sqrt();
    if rms == 0.0 {
        return f32::NEG_INFINITY;
    }
    (20.0 * (rms / 32768.0).log10()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::goertzel_amplitude;
    use crate::testutil::sine;

    #[test]
    fn three_parties_hear_the_others_not_themselves() {
        let rate = 8000;
        let a = sine(400.0, 5000.0, rate, 160, 0.0);
        let b = sine(1000.0, 5000.0, rate, 160, 0.0);
        let c = sine(2000.0, 5000.0, rate, 160, 0.0);
        let mut oa = [0i16; 160];
        let mut ob = [0i16; 160];
        let mut oc = [0i16; 160];
        mix_minus(&[&a, &b, &c], &mut [&mut oa, &mut ob, &mut oc]);
        for i in 0..160 {
            assert_eq!(oa[i], b[i] + c[i]);
            assert_eq!(ob[i], a[i] + c[i]);
            assert_eq!(oc[i], a[i] + b[i]);
        }
        // Spectrally: each output has the two others and not its own tone.
        for (out, own, others) in [
            (&oa, 400.0, [1000.0, 2000.0]),
            (&ob, 1000.0, [400.0, 2000.0]),
            (&oc, 2000.0, [400.0, 1000.0]),
        ] {
            assert!(goertzel_amplitude(out, own, rate) < 50.0);
            for f in others {
                assert!((goertzel_amplitude(out, f, rate) - 5000.0).abs() < 100.0);
            }
        }
    }

    #[test]
    fn saturates_and_handles_long_frames_and_listeners() {
        // 960 samples (48 kHz frame) crosses several accumulator chunks.
        let loud = vec![30000i16; 960];
        let neg = vec![-30000i16; 960];
        let quiet = vec![100i16; 960];
        let mut o = [
            vec![0i16; 960],
            vec![0i16; 960],
            vec![0i16; 960],
            vec![0i16; 960],
        ];
        let [o0, o1, o2, o3] = &mut o;
        mix_minus(&[&loud, &loud, &quiet], &mut [o0, o1, o2, o3]);
        assert!(o[0].iter().all(|&x| x == 30100));
        assert!(o[1].iter().all(|&x| x == 30100));
        assert!(o[2].iter().all(|&x| x == i16::MAX), "30000 + 30000 clips");
        assert!(
            o[3].iter().all(|&x| x == i16::MAX),
            "listener gets everything, clipped"
        );

        // The i32 sum is clipped once: +30000 +30000 -30000 heard by the fourth is 30000,
        // not (clip(60000) - 30000).
        let mut p = [vec![0i16; 960], vec![0i16; 960]];
        let [p0, p1] = &mut p;
        mix_minus(&[&quiet, &loud, &loud, &neg], &mut [p0, p1]);
        assert!(p[0].iter().all(|&x| x == 30000));
        assert!(p[1].iter().all(|&x| x == 100));

        let mut m = [vec![0i16; 4], vec![0i16; 4]];
        let [m0, m1] = &mut m;
        mix_minus(&[&neg, &neg, &neg], &mut [m0, m1]);
        assert!(m[0].iter().all(|&x| x == i16::MIN));

        // Shortest slice wins; nothing beyond it is touched.
        let mut short = [7i16; 10];
        let mut long = [7i16; 20];
        mix_minus(&[&quiet[..5], &quiet[..20]], &mut [&mut short, &mut long]);
        assert_eq!(&short[..5], &[100; 5]);
        assert_eq!(&short[5..], &[7; 5]);
        assert_eq!(&long[5..], &[7; 15]);
    }

    #[test]
    fn level_helpers() {
        let mut a = [100i16, 32000, -32000, 0];
        add_saturating(&mut a, &[1, 1000, -1000]);
        assert_eq!(a, [101, i16::MAX, i16::MIN, 0]);

        let mut s = [1000i16, -1000, 20000, 7];
        scale_db(&mut s, -6.0206);
        assert_eq!(s, [500, -500, 10000, 4]);
        scale_db(&mut s, 20.0);
        assert_eq!(s, [5000, -5000, i16::MAX, 40]);

        assert_eq!(rms_dbfs(&[]), f32::NEG_INFINITY);
        assert_eq!(rms_dbfs(&[0; 10]), f32::NEG_INFINITY);
        let square: Vec<i16> = (0..100)
            .map(|i| if i % 2 == 0 { i16::MAX } else { i16::MIN + 1 })
            .collect();
        assert!(rms_dbfs(&square).abs() < 0.01);
        let full_sine = sine(1000.0, 32767.0, 8000, 8000, 0.0);
        assert!((rms_dbfs(&full_sine) + 3.01).abs() < 0.02);
        let tenth = sine(1000.0, 3276.7, 8000, 8000, 0.0);
        assert!((rms_dbfs(&tenth) + 23.01).abs() < 0.02);
    }
}
