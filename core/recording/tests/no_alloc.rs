//! `RecordingSink::push` runs on a media thread once per 20 ms frame: it must not allocate, and
//! neither may the recorder thread writing the blocks it hands over (plain and encrypted). A
//! counting global allocator wraps the system one for this whole test binary; after a warm-up,
//! every allocation in the process during the measured pushes is counted.
//!
//! The counter is `stats_alloc` (a dev-dependency): a `GlobalAlloc` impl needs `unsafe`, which
//! the workspace forbids in our own code, tests included. This binary holds one test on
//! purpose: the counter is process-wide.

mod common;

use std::alloc::System;

use common::{Harness, key, spec, tone};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use switchyard_recording::{Layout, POOL_BLOCKS};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn allocations() -> usize {
    let stats = ALLOCATOR.stats();
    stats.allocations + stats.reallocations
}

#[test]
fn pushing_frames_allocates_nothing_in_steady_state() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(Some(key()));
    let mut plain = h
        .recorder()
        .open(spec(
            "plain",
            Layout::Stereo,
            8000,
            dir.path().join("p.wav"),
            false,
        ))
        .unwrap();
    let mut sealed = h
        .recorder()
        .open(spec(
            "sealed",
            Layout::Mono,
            8000,
            dir.path().join("s.wav.enc"),
            true,
        ))
        .unwrap();
    // Frames prepared up front: the test's own buffers are not the code under test.
    let frames: Vec<(Vec<i16>, Vec<i16>)> = (0..50)
        .map(|f| {
            (
                tone(440.0, 8000, 9000.0, f, 160),
                tone(900.0, 8000, 9000.0, f, 160),
            )
        })
        .collect();
    // Each round pushes what the pool holds after a barrier (one block may be partly filled),
    // so no frame is dropped whatever the two threads' timing; the recorder thread writes the
    // handed-over blocks while we measure.
    let per_round = (POOL_BLOCKS - 1) * 50;
    let mut pushed = 0usize;
    let mut round = |measure: bool, n: usize| -> usize {
        let before = allocations();
        for _ in 0..per_round {
            let (caller, callee) = &frames[pushed % 50];
            plain.push(caller, callee);
            sealed.push(caller, callee);
            pushed += 1;
            // A pause toggled mid-block is a control event, but it must not cost an allocation
            // either while the span list has room.
            if pushed % 500 == 250 {
                plain.set_paused(true);
            } else if pushed % 500 == 260 {
                plain.set_paused(false);
            }
        }
        let spent = allocations() - before;
        if measure {
            assert_eq!(
                spent, 0,
                "round {n}: {spent} allocations for {per_round} frames"
            );
        }
        spent
    };
    // Warm-up: the first blocks through the recorder thread size hound's staging buffer, the
    // thread's channel wait list and the sealed writer's first chunk.
    for n in 0..3 {
        round(false, n);
        h.barrier(dir.path(), n);
    }
    for n in 3..23 {
        round(true, n);
        h.barrier(dir.path(), n);
    }
    // 20 measured rounds of 150 frames: 60 s of audio, 60 blocks per sink, and 27 sealed chunks.
    plain.finish();
    sealed.finish();
    let (a, b) = (h.next(), h.next());
    assert_eq!((a.frames_dropped, b.frames_dropped), (0, 0));
    assert_eq!(a.duration_ms, 23 * 150 * 20);
    assert_eq!(b.duration_ms, 23 * 150 * 20);
    assert_eq!(a.pauses.len(), 7);
    assert_eq!((a.error, b.error), (None, None));
}
