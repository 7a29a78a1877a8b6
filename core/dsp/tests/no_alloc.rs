//! The per-frame calls must not allocate once set up (the media reactors call them every
//! 20 ms for every leg). One test per binary: the allocation counter is process-wide.

use std::alloc::System;
use std::sync::Arc;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use switchyard_dsp::dtmf::{DtmfDetector, DtmfGenerator};
use switchyard_dsp::mix::{add_saturating, mix_minus, rms_dbfs, scale_db};
use switchyard_dsp::play::{PlayItem, Player};
use switchyard_dsp::resample::Resampler;
use switchyard_dsp::tone::{ToneGenerator, ToneKind, ToneSpec, country_tone};
use switchyard_dsp::wav::Clip;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn hot_paths_do_not_allocate() {
    // Set-up: allocation allowed.
    let pairs = [
        (48000u32, 8000u32),
        (8000, 16000),
        (44100, 8000),
        (8000, 44100),
        (16000, 16000),
    ];
    let mut resamplers: Vec<(Resampler, Vec<i16>, Vec<i16>)> = pairs
        .iter()
        .map(|&(f, t)| {
            (
                Resampler::new(f, t).unwrap(),
                vec![1000i16; f as usize / 50],
                vec![0i16; t as usize / 50],
            )
        })
        .collect();

    let mut gen8 = DtmfGenerator::new(8000);
    gen8.queue_digits("1234567890*#ABCD1234567890*#ABCD", 60, 60)
        .unwrap();
    let mut det8 = DtmfDetector::new(8000);
    let mut det16 = DtmfDetector::new(16000);
    let mut events = 0usize;

    let mut tone = ToneGenerator::new(
        &ToneSpec::parse(country_tone("gb", ToneKind::Ringback).unwrap()).unwrap(),
        8000,
    );

    let clip = Clip {
        sample_rate: 16000,
        samples: Arc::from(vec![3000i16; 16000 * 3 / 10 + 7]),
    };
    let mut player = Player::new(
        vec![
            PlayItem::Clip(clip),
            PlayItem::Tone(ToneSpec::parse("L=1;%(100,30,425)").unwrap()),
            PlayItem::Silence { ms: 50 },
        ],
        8000,
        true,
    )
    .unwrap();

    let inputs: Vec<Vec<i16>> = (0..5).map(|i| vec![i * 100; 160]).collect();
    let mut outputs: Vec<Vec<i16>> = vec![vec![0; 160]; 5];
    let ins: Vec<&[i16]> = inputs.iter().map(Vec::as_slice).collect();
    let mut outs: Vec<&mut [i16]> = outputs.iter_mut().map(Vec::as_mut_slice).collect();

    let mut frame8 = vec![0i16; 160];
    let mut frame16 = vec![0i16; 320];
    let mut sink = 0i64;

    // The counter is process-wide: the test harness's own threads may allocate once inside
    // a window (a thread handle made the first time one parks). That happens once, whereas a
    // hot path that allocates does so every frame: one clean window out of three proves the
    // frames allocate nothing.
    let mut windows = Vec::new();
    for _ in 0..3 {
        let region = Region::new(GLOBAL);
        // 200 frames = 4 s: covers digit starts and ends, clip/tone/silence transitions, loops.
        for _ in 0..200 {
            for (r, input, output) in &mut resamplers {
                r.process(input, output).unwrap();
            }
            gen8.fill(&mut frame8);
            det8.process(&frame8, &mut |_| events += 1);
            frame16.fill(0);
            det16.process(&frame16, &mut |_| events += 1);
            tone.fill(&mut frame8);
            player.next_frame(&mut frame8);
            mix_minus(&ins, &mut outs);
            add_saturating(&mut frame8, ins[0]);
            scale_db(&mut frame8, -3.0);
            sink += rms_dbfs(&frame8).max(-200.0) as i64;
        }
        let stats = region.change();
        windows.push(stats);
        if stats.allocations == 0 && stats.reallocations == 0 {
            break;
        }
    }
    assert!(
        windows
            .iter()
            .any(|s| s.allocations == 0 && s.reallocations == 0),
        "every window allocated: {windows:#?}"
    );
    assert_eq!(
        events,
        2 * 32,
        "every generated digit was detected, start and end"
    );
    assert!(sink != 0);
}
