//! mod_acd: the contact centre's routing core, sans-IO.
//!
//! One [`Acd`] places every [`Interaction`] (voice now; chat, email, WeChat and SMS use the
//! same path with a per-channel agent capacity) on an agent. It reads no clock and does no
//! I/O: the caller passes `now` (milliseconds on any monotonic clock) with every
//! [`Input`], then drains [`Acd::poll_output`] until it returns `None` (str0m's drain rule).
//! Call [`Input::Tick`] at least once a second: it expires unanswered offers (so an agent
//! can never stay reserved without a live offer, FreeSWITCH's stuck "Reserved"), ends
//! wrap-up, applies maximum wait and overflow, widens skill rules and announces positions.
//!
//! ```
//! use mod_acd::{Acd, AcdConfig, AgentConfig, AgentId, Channel, Input, Interaction,
//!               InteractionId, Output, QueueConfig, Tier};
//! let config = AcdConfig {
//!     queues: vec![QueueConfig::new("sales")],
//!     agents: vec![AgentConfig { tiers: vec![Tier::new("sales", 1, 1)], ..AgentConfig::new(AgentId(1000)) }],
//! };
//! let mut acd = Acd::new(config, 7).unwrap();
//! acd.handle_input(0, Input::Login(AgentId(1000))).unwrap();
//! acd.handle_input(5, Input::Arrive(Interaction::new(InteractionId(1), Channel::Voice, "sales", "alice"))).unwrap();
//! let mut offered = None;
//! while let Some(out) = acd.poll_output() {
//!     if let Output::Offer { interaction, agent, .. } = out { offered = Some((interaction, agent)); }
//! }
//! assert_eq!(offered, Some((InteractionId(1), AgentId(1000))));
//! ```

#![forbid(unsafe_code)]

mod acd;
mod config;
pub mod module;
pub mod queues_file;
mod stats;
pub mod voice;

pub use acd::{Acd, AgentState, Input, Output, QueueEvent, QueueLogRow};
pub use config::{AcdConfig, AgentConfig, OverflowTarget, QueueConfig, SkillRule, Strategy, Tier};
pub use stats::{AgentStats, QueueStats};

use serde::{Deserialize, Serialize};

/// Milliseconds on the caller's monotonic clock: the only notion of time in this crate.
pub type Millis = u64;

/// An interaction's identifier, chosen by the caller (a call's id, a chat's id...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InteractionId(pub u64);

/// An agent's identifier (the agent number, e.g. 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AgentId(pub u32);

/// The medium of an interaction; an agent has a capacity per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Voice,
    Chat,
    Email,
    Wechat,
    Sms,
}

impl Channel {
    /// Every channel, in the order of [`AgentConfig::capacity`].
    pub const ALL: [Channel; 5] = [
        Channel::Voice,
        Channel::Chat,
        Channel::Email,
        Channel::Wechat,
        Channel::Sms,
    ];

    /// The channel's index in a per-channel array.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A skill an interaction needs, at a minimum level (0-100).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkillRequirement {
    pub skill: String,
    pub level: u8,
}

/// A customer contact to be placed on an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    pub id: InteractionId,
    pub channel: Channel,
    pub queue: String,
    /// Higher is served first; waiting time adds to it (see [`QueueConfig::ageing_ms`]).
    pub priority: i32,
    /// When the contact reached the system (reporting only; queue waits start at `Arrive`).
    pub arrived_at: Millis,
    pub skills: Vec<SkillRequirement>,
    /// The caller's identity (number, chat handle, address).
    pub caller: String,
}

impl Interaction {
    /// A priority-0 interaction needing no skill.
    pub fn new(id: InteractionId, channel: Channel, queue: &str, caller: &str) -> Self {
        Self {
            id,
            channel,
            queue: queue.to_owned(),
            priority: 0,
            arrived_at: 0,
            skills: Vec::new(),
            caller: caller.to_owned(),
        }
    }
}

/// What went wrong: the caller's misuse (unknown ids, wrong state), a bad configuration or
/// configuration file, or a host message the module cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AcdError {
    #[error("unknown queue {0:?}")]
    UnknownQueue(String),
    #[error("queue {0:?} is being removed and takes no new interactions")]
    QueueDraining(String),
    #[error("unknown agent {}", .0.0)]
    UnknownAgent(AgentId),
    #[error("unknown interaction {}", .0.0)]
    UnknownInteraction(InteractionId),
    #[error("interaction {0:?} is already in the ACD")]
    DuplicateInteraction(InteractionId),
    #[error("interaction {interaction:?} is not offered to agent {agent:?}")]
    NoSuchOffer {
        interaction: InteractionId,
        agent: AgentId,
    },
    #[error("interaction {0:?} is not waiting (already answered)")]
    NotWaiting(InteractionId),
    #[error("interaction {0:?} is not on a contact (still waiting)")]
    NotConnected(InteractionId),
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    #[error("invariant broken: {0}")]
    Invariant(String),
    /// `queues.toml` could not be read, or says something wrong (syntax errors name the
    /// line and column).
    #[error("{path}: {reason}")]
    QueuesFile { path: String, reason: String },
    /// A host message whose body is not what the module contract says.
    #[error("bad {message} body: {reason}")]
    BadMessage { message: String, reason: String },
    #[error("mod_acd has no application {0}")]
    UnknownApplication(String),
    #[error("mod_acd does not handle message {0}")]
    UnknownMessage(String),
}
