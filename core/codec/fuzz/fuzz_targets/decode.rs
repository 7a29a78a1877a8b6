//! `cargo fuzz run decode -s none` (from core/codec): a peer's payload bytes into every decoder,
//! as the media threads feed them (the first byte picks codec and rate), then FEC from the same
//! bytes and a concealed frame. Errors are fine; panics and out-of-bounds writes are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_codec::{CodecKind, CodecParams, Decoder};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let kind = CodecKind::ALL[usize::from(selector) % CodecKind::ALL.len()];
    let rate = match kind {
        CodecKind::Opus => [8000, 12000, 16000, 24000, 48000][usize::from(selector >> 4) % 5],
        other => other.default_sample_rate(),
    };
    let params = CodecParams::new(kind).with_sample_rate(rate);
    let mut decoder = Decoder::new(&params).expect("supported rate");
    let mut pcm = vec![0i16; 48_000 * 120 / 1000];
    if let Ok(n) = decoder.decode(payload, &mut pcm) {
        assert!(n <= pcm.len());
    }
    let frame = rate as usize / 50;
    let _ = decoder.decode_fec(payload, &mut pcm[..frame]);
    assert!(decoder.conceal(&mut pcm[..frame]) <= frame);
});
