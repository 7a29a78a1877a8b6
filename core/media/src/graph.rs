//! The media graph of one media thread: what terminated legs are connected to, run once per
//! 20 ms tick.
//!
//! A node is one of: a bridge of two legs (relayed, where the node only taps frames for the
//! recorder, or terminated, where frames cross and are resampled when the rates differ), a
//! single leg (playback, tones, music on hold, IVR), or a conference (N legs, each hearing the
//! sum of the others). Nodes refer to legs by slot key; the reactor owns the slots.

use switchyard_dsp::play::Player;
use switchyard_dsp::resample::Resampler;
use switchyard_recording::RecordingSink;

use crate::tap::FrameTap;

/// A resampler when the rates differ, plus its output buffer.
pub(crate) struct RateBridge {
    resampler: Option<Resampler>,
    buffer: Box<[i16]>,
}

impl RateBridge {
    pub(crate) fn new(from: u32, to: u32) -> Result<RateBridge, crate::Error> {
        let resampler = if from == to {
            None
        } else {
            Some(Resampler::new(from, to).map_err(crate::Error::Dsp)?)
        };
        Ok(RateBridge {
            resampler,
            buffer: vec![0; to as usize / 50].into_boxed_slice(),
        })
    }

    /// One 20 ms frame converted; the returned slice lives until the next call.
    pub(crate) fn convert<'a>(&'a mut self, input: &'a [i16]) -> &'a [i16] {
        match &mut self.resampler {
            None => input,
            Some(resampler) => {
                let n = resampler.process(input, &mut self.buffer).unwrap_or(0);
                self.buffer[n..].fill(0);
                &self.buffer
            }
        }
    }
}

/// The recorder's view of a call: caller and callee frames at the recording's rate.
pub(crate) struct RecorderTap {
    pub(crate) sink: RecordingSink,
    pub(crate) caller: RateBridge,
    pub(crate) callee: RateBridge,
}

impl RecorderTap {
    pub(crate) fn push(&mut self, caller: &[i16], callee: &[i16]) {
        let a = self.caller.convert(caller);
        let b = self.callee.convert(callee);
        self.sink.push(a, b);
    }
}

pub(crate) struct BridgeNode {
    /// Slot keys: `a` is the caller's leg (left channel of a stereo recording).
    pub(crate) a: usize,
    pub(crate) b: usize,
    /// Frames cross the node (transcoding, DTMF conversion); false: the packets are relayed
    /// and the node only decodes them for the recorder.
    pub(crate) terminated: bool,
    /// a's rate → b's rate, and back.
    pub(crate) a_to_b: RateBridge,
    pub(crate) b_to_a: RateBridge,
    pub(crate) recorder: Option<RecorderTap>,
    /// A media tap (crate::tap), independent of the recorder.
    pub(crate) frame_tap: Option<FrameTap>,
}

pub(crate) struct SoloNode {
    pub(crate) leg: usize,
    pub(crate) recorder: Option<RecorderTap>,
    pub(crate) frame_tap: Option<FrameTap>,
}

pub(crate) struct Member {
    pub(crate) leg: usize,
    pub(crate) muted: bool,
    pub(crate) deaf: bool,
    pub(crate) into_mix: RateBridge,
    pub(crate) out_of_mix: RateBridge,
}

pub(crate) struct ConferenceNode {
    pub(crate) generation: u32,
    pub(crate) rate: u32,
    pub(crate) members: Vec<Member>,
    /// Each member's frame at the mixing rate, one after the other (frame × members).
    pub(crate) inputs: Vec<i16>,
    /// The sum of every unmuted input, in 32 bits so it cannot overflow before the minus.
    pub(crate) sum: Box<[i32]>,
    /// Join and leave tones, mixed into everyone's output.
    pub(crate) announcement: Option<Player>,
    pub(crate) announcement_frame: Box<[i16]>,
}

impl ConferenceNode {
    pub(crate) fn new(generation: u32, rate: u32) -> ConferenceNode {
        let frame = rate as usize / 50;
        ConferenceNode {
            generation,
            rate,
            members: Vec::new(),
            inputs: Vec::new(),
            sum: vec![0; frame].into_boxed_slice(),
            announcement: None,
            announcement_frame: vec![0; frame].into_boxed_slice(),
        }
    }

    pub(crate) fn frame(&self) -> usize {
        self.rate as usize / 50
    }

    /// Sums the unmuted inputs (already in `inputs`) into `sum`, with the announcement.
    pub(crate) fn mix(&mut self) {
        let frame = self.frame();
        self.sum.fill(0);
        for (index, member) in self.members.iter().enumerate() {
            if member.muted {
                continue;
            }
            let input = &self.inputs[index * frame..(index + 1) * frame];
            for (acc, &s) in self.sum.iter_mut().zip(input) {
                *acc += i32::from(s);
            }
        }
        if let Some(player) = &mut self.announcement {
            if !player.next_frame(&mut self.announcement_frame) {
                self.announcement = None;
            }
            for (acc, &s) in self.sum.iter_mut().zip(self.announcement_frame.iter()) {
                *acc += i32::from(s);
            }
        }
    }

    /// What member `index` hears: everyone but itself (mix-minus), saturated to 16 bits.
    pub(crate) fn mix_minus(&self, index: usize, out: &mut [i16]) {
        let frame = self.frame();
        let muted = self.members[index].muted;
        let own = &self.inputs[index * frame..(index + 1) * frame];
        for ((o, &total), &mine) in out.iter_mut().zip(self.sum.iter()).zip(own) {
            let value = if muted {
                total
            } else {
                total - i32::from(mine)
            };
            *o = value.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
        }
    }
}

// A node lives in the thread's node table for a whole call and is visited every 20 ms:
// keeping it inline saves a pointer chase per tick for a few hundred bytes of table.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Node {
    Bridge(BridgeNode),
    Solo(SoloNode),
    Conference(ConferenceNode),
}

impl Node {
    /// The slot keys of the legs in this node.
    pub(crate) fn legs(&self) -> impl Iterator<Item = usize> + '_ {
        let (fixed, members): ([Option<usize>; 2], &[Member]) = match self {
            Node::Bridge(b) => ([Some(b.a), Some(b.b)], &[]),
            Node::Solo(s) => ([Some(s.leg), None], &[]),
            Node::Conference(c) => ([None, None], &c.members),
        };
        fixed
            .into_iter()
            .flatten()
            .chain(members.iter().map(|m| m.leg))
    }
}
