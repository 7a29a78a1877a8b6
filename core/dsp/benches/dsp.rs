//! Per-frame cost of the hot-path DSP calls. Criterion runs each benchmark; the closing
//! table prints the mean ns per 20 ms frame of every one (also in `cargo test --benches`
//! mode, where each runs once and the figures are only indicative).

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Bencher, Criterion};
use switchyard_dsp::dtmf::{DtmfDetector, DtmfGenerator};
use switchyard_dsp::mix::mix_minus;
use switchyard_dsp::resample::Resampler;

thread_local! {
    static SUMMARY: RefCell<Vec<(String, u64, Duration)>> = const { RefCell::new(Vec::new()) };
}

/// Times `f` per iteration and keeps the totals for the closing table.
// A benchmark measures wall time by definition; library code never reads the clock.
#[allow(clippy::disallowed_methods)]
fn timed(b: &mut Bencher, name: &str, mut f: impl FnMut()) {
    b.iter_custom(|iters| {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        let d = t.elapsed();
        SUMMARY.with(|s| {
            let mut s = s.borrow_mut();
            match s.iter_mut().find(|e| e.0 == name) {
                Some(e) => {
                    e.1 += iters;
                    e.2 += d;
                }
                None => s.push((name.to_owned(), iters, d)),
            }
        });
        d
    });
}

fn sine(freq: f64, rate: u32, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            (8000.0 * (std::f64::consts::TAU * freq * i as f64 / f64::from(rate)).sin()) as i16
        })
        .collect()
}

fn bench_resample(c: &mut Criterion) {
    for (from, to) in [(48000u32, 8000u32), (8000, 16000)] {
        let name = format!("resample {}k->{}k", from / 1000, to / 1000);
        let mut r = Resampler::new(from, to).unwrap();
        let input = sine(1000.0, from, from as usize / 50);
        let mut out = vec![0i16; to as usize / 50];
        c.bench_function(&name, |b| {
            timed(b, &name, || {
                r.process(black_box(&input), &mut out).unwrap();
                black_box(&out);
            })
        });
    }
}

fn bench_dtmf(c: &mut Criterion) {
    for rate in [8000u32, 16000] {
        let name = format!("dtmf detect {}k", rate / 1000);
        // A second of digits and gaps, fed frame by frame round and round.
        let mut g = DtmfGenerator::new(rate);
        g.queue_digits("1593#*0D", 60, 60).unwrap();
        let frame = rate as usize / 50;
        let mut pcm = vec![0i16; rate as usize];
        g.fill(&mut pcm);
        let mut d = DtmfDetector::new(rate);
        let mut i = 0;
        let mut events = 0u32;
        c.bench_function(&name, |b| {
            timed(b, &name, || {
                d.process(black_box(&pcm[i..i + frame]), &mut |_| events += 1);
                i = (i + frame) % pcm.len();
            })
        });
        black_box(events);
    }
}

fn bench_mix(c: &mut Criterion) {
    for parties in [3usize, 10] {
        let name = format!("mix_minus {parties} parties 8k");
        let inputs: Vec<Vec<i16>> = (0..parties)
            .map(|p| sine(300.0 + 100.0 * p as f64, 8000, 160))
            .collect();
        let mut outputs: Vec<Vec<i16>> = vec![vec![0i16; 160]; parties];
        // The slice tables are built once, as a conference bridge keeps them.
        let ins: Vec<&[i16]> = inputs.iter().map(Vec::as_slice).collect();
        let mut outs: Vec<&mut [i16]> = outputs.iter_mut().map(Vec::as_mut_slice).collect();
        c.bench_function(&name, |b| {
            timed(b, &name, || {
                mix_minus(black_box(&ins), &mut outs);
                black_box(&outs);
            })
        });
    }
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    bench_resample(&mut c);
    bench_dtmf(&mut c);
    bench_mix(&mut c);
    c.final_summary();

    println!("\nswitchyard-dsp, mean per 20 ms frame:");
    SUMMARY.with(|s| {
        for (name, iters, d) in s.borrow().iter() {
            let ns = d.as_nanos() as f64 / (*iters).max(1) as f64;
            println!("  {name:<28} {ns:>10.0} ns/frame");
        }
    });
}
