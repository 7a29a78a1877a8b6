//! Per-frame cost of each codec, and how many Opus<->PCMA transcoded calls one
//! core can carry.
//!
//! `cargo bench -p switchyard-codec --bench codec` runs the criterion groups,
//! then prints a summary from plain timed loops:
//!
//! ```text
//! opus encode 20ms@8k: X µs/frame (complexity 5), Y µs/frame (complexity 0)
//! opus decode 20ms@8k: X µs/frame
//! ...
//! pcma encode/decode: X / Y ns/frame
//! transcoded Opus<->PCMA calls per core: N (Opus at 8 kHz, complexity 5; complexity 0: M)
//! ```
//!
//! A transcoded call costs, every 20 ms and in each direction, one Opus
//! decode + PCMA encode and one PCMA decode + Opus encode: 50 frames a second
//! each way. Resampling (the dsp crate) is not included: at 8 kHz Opus needs
//! none. The input is a speech stand-in (voiced syllables), not silence, which
//! Opus codes far faster.

use std::f64::consts::PI;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use switchyard_codec::{
    CodecKind, CodecParams, DEFAULT_OPUS_COMPLEXITY, Decoder, Encoder, MAX_OPUS_PAYLOAD, OpusFmtp,
};

/// One second of voiced syllables at `rate`: a new pitch every 160 ms, with
/// harmonics to 3.5 kHz and a rise-and-fall envelope.
fn speech(rate: u32) -> Vec<i16> {
    const PITCH: [f64; 5] = [110.0, 150.0, 128.0, 180.0, 135.0];
    let mut phase = 0.0f64;
    (0..rate as usize)
        .map(|n| {
            let t = n as f64 / f64::from(rate);
            let f0 = PITCH[(t / 0.16) as usize % PITCH.len()];
            phase += 2.0 * PI * f0 / f64::from(rate);
            let envelope = 0.1 + 0.9 * (PI * (t / 0.16).fract()).sin();
            let mut v = 0.0;
            let mut k = 1.0;
            while k * f0 < 3_500.0 {
                v += (phase * k).sin() / k;
                k += 1.0;
            }
            (3_000.0 * envelope * v).clamp(-32_768.0, 32_767.0) as i16
        })
        .collect()
}

fn opus_params(rate: u32, complexity: u8) -> CodecParams {
    let mut params = CodecParams::new(CodecKind::Opus).with_sample_rate(rate);
    params.complexity = complexity;
    // What a WebRTC peer typically offers.
    params.opus = OpusFmtp::parse("minptime=10;useinbandfec=1");
    params
}

fn encode_all(encoder: &mut Encoder, pcm: &[i16]) -> Vec<Vec<u8>> {
    let mut out = [0u8; MAX_OPUS_PAYLOAD];
    pcm.chunks_exact(encoder.frame_samples())
        .map(|frame| {
            let len = encoder.encode(frame, &mut out).expect("encode");
            out[..len].to_vec()
        })
        .collect()
}

/// Wall-clock time per 20 ms frame of `work`, which codes `frames` frames.
// A benchmark measures wall-clock time on purpose.
#[allow(clippy::disallowed_methods)]
fn per_frame(frames: usize, rounds: u32, mut work: impl FnMut()) -> Duration {
    work(); // warm up
    let start = Instant::now();
    for _ in 0..rounds {
        work();
    }
    start.elapsed() / (rounds * frames as u32)
}

struct Costs {
    opus_encode: Duration,
    opus_decode: Duration,
}

fn opus_costs(rate: u32, complexity: u8, rounds: u32) -> Costs {
    let pcm = speech(rate);
    let params = opus_params(rate, complexity);
    let mut encoder = Encoder::new(&params).expect("encoder");
    let frame = encoder.frame_samples();
    let packets = encode_all(&mut encoder, &pcm);
    let mut out = [0u8; MAX_OPUS_PAYLOAD];
    let opus_encode = per_frame(packets.len(), rounds, || {
        for chunk in pcm.chunks_exact(frame) {
            black_box(encoder.encode(black_box(chunk), &mut out).expect("encode"));
        }
    });
    let mut decoder = Decoder::new(&params).expect("decoder");
    let mut decoded = vec![0i16; frame];
    let opus_decode = per_frame(packets.len(), rounds, || {
        for packet in &packets {
            black_box(
                decoder
                    .decode(black_box(packet), &mut decoded)
                    .expect("decode"),
            );
        }
    });
    Costs {
        opus_encode,
        opus_decode,
    }
}

fn pcma_costs(rounds: u32) -> (Duration, Duration) {
    let pcm = speech(8_000);
    let params = CodecParams::new(CodecKind::Pcma);
    let mut encoder = Encoder::new(&params).expect("encoder");
    let mut decoder = Decoder::new(&params).expect("decoder");
    let mut payload = [0u8; 160];
    let mut decoded = [0i16; 160];
    let frames = pcm.len() / 160;
    let encode = per_frame(frames, rounds, || {
        for chunk in pcm.chunks_exact(160) {
            black_box(
                encoder
                    .encode(black_box(chunk), &mut payload)
                    .expect("encode"),
            );
        }
    });
    let payloads: Vec<[u8; 160]> = pcm
        .chunks_exact(160)
        .map(|chunk| {
            encoder.encode(chunk, &mut payload).expect("encode");
            payload
        })
        .collect();
    let decode = per_frame(frames, rounds, || {
        for p in &payloads {
            black_box(decoder.decode(black_box(p), &mut decoded).expect("decode"));
        }
    });
    (encode, decode)
}

fn criterion_groups(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec_20ms_frame");
    group.throughput(Throughput::Elements(1));
    let default = DEFAULT_OPUS_COMPLEXITY;
    for (rate, complexity) in [
        (8_000, default),
        (8_000, 0),
        (16_000, default),
        (48_000, default),
        (48_000, 0),
    ] {
        let pcm = speech(rate);
        let params = opus_params(rate, complexity);
        let mut encoder = Encoder::new(&params).expect("encoder");
        let frame = encoder.frame_samples();
        let packets = encode_all(&mut encoder, &pcm);
        let mut out = [0u8; MAX_OPUS_PAYLOAD];
        let mut i = 0;
        group.bench_function(format!("opus_encode_{}k_c{complexity}", rate / 1000), |b| {
            b.iter(|| {
                i = (i + 1) % packets.len();
                encoder.encode(black_box(&pcm[i * frame..(i + 1) * frame]), &mut out)
            })
        });
        if complexity == default {
            let mut decoder = Decoder::new(&params).expect("decoder");
            let mut decoded = vec![0i16; frame];
            let mut j = 0;
            group.bench_function(format!("opus_decode_{}k", rate / 1000), |b| {
                b.iter(|| {
                    j = (j + 1) % packets.len();
                    decoder.decode(black_box(&packets[j]), &mut decoded)
                })
            });
        }
    }
    for kind in [CodecKind::Pcma, CodecKind::Pcmu, CodecKind::G722] {
        let params = CodecParams::new(kind);
        let pcm = speech(params.sample_rate);
        let frame = params.frame_samples();
        let mut encoder = Encoder::new(&params).expect("encoder");
        let mut decoder = Decoder::new(&params).expect("decoder");
        let mut payload = vec![0u8; frame];
        let mut decoded = vec![0i16; frame];
        let name = kind.encoding_name().to_lowercase();
        group.bench_function(format!("{name}_encode"), |b| {
            b.iter(|| encoder.encode(black_box(&pcm[..frame]), &mut payload))
        });
        let len = encoder.encode(&pcm[..frame], &mut payload).expect("encode");
        group.bench_function(format!("{name}_decode"), |b| {
            b.iter(|| decoder.decode(black_box(&payload[..len]), &mut decoded))
        });
    }
    group.finish();
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    criterion_groups(&mut criterion);
    criterion.final_summary();

    let rounds = std::env::var("CODEC_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let (pcma_encode, pcma_decode) = pcma_costs(rounds * 10);
    println!();
    // Calls one core carries: each call codes 50 frames a second each way.
    let calls = |costs: &Costs| {
        let per_call = 50.0
            * (costs.opus_encode + costs.opus_decode + pcma_encode + pcma_decode).as_secs_f64();
        1.0 / per_call
    };
    let mut summary = Vec::new();
    for rate in [8_000, 16_000, 48_000] {
        let k = rate / 1000;
        let default = opus_costs(rate, DEFAULT_OPUS_COMPLEXITY, rounds);
        let fastest = opus_costs(rate, 0, rounds);
        println!(
            "opus encode 20ms@{k}k: {:.1} µs/frame (complexity {DEFAULT_OPUS_COMPLEXITY}), \
             {:.1} µs/frame (complexity 0)",
            micros(default.opus_encode),
            micros(fastest.opus_encode)
        );
        println!(
            "opus decode 20ms@{k}k: {:.1} µs/frame",
            micros(default.opus_decode)
        );
        summary.push((k, calls(&default), calls(&fastest)));
    }
    println!(
        "pcma encode/decode: {:.0} / {:.0} ns/frame",
        pcma_encode.as_secs_f64() * 1e9,
        pcma_decode.as_secs_f64() * 1e9
    );
    for (k, default, fastest) in summary {
        if k == 8 {
            println!(
                "transcoded Opus<->PCMA calls per core: {default:.0} \
                 (Opus at 8 kHz, complexity {DEFAULT_OPUS_COMPLEXITY}; complexity 0: {fastest:.0})"
            );
        } else {
            println!(
                "  with Opus at {k} kHz (resampling not counted): {default:.0} \
                 (complexity {DEFAULT_OPUS_COMPLEXITY}; complexity 0: {fastest:.0})"
            );
        }
    }
}
