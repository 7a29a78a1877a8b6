//! Queue and agent configuration: what [`crate::Acd::new`] and [`crate::Input::Reload`] take.

use crate::{AcdError, AgentId, Millis};
use serde::{Deserialize, Serialize};

/// How a queue picks agents (FreeSWITCH mod_callcenter's names, plus skills-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Offer to every eligible agent at once; the first answer cancels the others.
    RingAll,
    /// The agent free for the longest time (mod_callcenter's default).
    #[default]
    LongestIdleAgent,
    /// The next agent after the last one offered, by tier position (Asterisk rrmemory).
    RoundRobin,
    /// Always the first free agent by tier level and position.
    TopDown,
    AgentWithLeastTalkTime,
    AgentWithFewestCalls,
    /// By tier level and position, each retry of one interaction moving on past the agents
    /// already tried for it instead of starting at the top again.
    SequentiallyByAgentOrder,
    /// Uniformly among the best tier (seeded, so runs are reproducible).
    Random,
    /// Top-down order, adding one more ringing agent every `ring_progressively_ms`.
    RingProgressively,
    /// The best skill match (sum of the agent's levels on the required skills), then the
    /// longest idle.
    SkillsBased,
}

/// Where an interaction goes when it waited too long or the queue is full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverflowTarget {
    /// Another queue: the ACD moves the interaction itself.
    Queue(String),
    /// An extension: the interaction leaves the ACD.
    Extension(String),
    /// An IVR menu: the interaction leaves the ACD.
    Ivr(String),
}

/// A widening step of a skill rule set (as Wazo's): once an interaction has waited
/// `after_ms` in the queue, every skill requirement is lowered to at most `max_level`
/// (0: any agent who has the skill at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkillRule {
    pub after_ms: Millis,
    pub max_level: u8,
}

/// One queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueConfig {
    pub name: String,
    pub strategy: Strategy,
    /// After-contact work time given to the agent after each contact of this queue.
    pub wrap_up_ms: Millis,
    /// Time an offer rings before it counts as a no-answer.
    pub offer_timeout_ms: Millis,
    /// Ring-progressively: how long before one more agent is added.
    pub ring_progressively_ms: Millis,
    /// Longest wait before overflow (or timeout without a target); None: no limit.
    pub max_wait_ms: Option<Millis>,
    /// Most interactions waiting; an arrival beyond overflows (or times out).
    pub max_length: Option<usize>,
    pub overflow: Option<OverflowTarget>,
    /// T of the service level SL(T); 20 s by default (80/20 target).
    pub service_level_ms: Millis,
    /// Abandons shorter than this leave the service-level denominator.
    pub short_abandon_ms: Millis,
    /// Waiting this long is worth one priority step (ageing); None: priority strictly first.
    pub ageing_ms: Option<Millis>,
    /// Skill rule set, widening with the time waited in this queue.
    pub skill_rules: Vec<SkillRule>,
    /// Period of position / estimated-wait announcements; None: no announcement.
    pub announce_every_ms: Option<Millis>,
    /// Handle time assumed for estimated wait before the queue has answered anything.
    pub default_handle_ms: Millis,
}

impl QueueConfig {
    /// A longest-idle-agent queue with the defaults.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }

    /// The highest skill level required after waiting `waited` (None: no rule applies yet).
    pub fn widened_level(&self, waited: Millis) -> Option<u8> {
        self.skill_rules
            .iter()
            .filter(|rule| rule.after_ms <= waited)
            .max_by_key(|rule| rule.after_ms)
            .map(|rule| rule.max_level)
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            strategy: Strategy::default(),
            wrap_up_ms: 0,
            offer_timeout_ms: 20_000,
            ring_progressively_ms: 10_000,
            max_wait_ms: None,
            max_length: None,
            overflow: None,
            service_level_ms: 20_000,
            short_abandon_ms: 5_000,
            ageing_ms: None,
            skill_rules: Vec::new(),
            announce_every_ms: None,
            default_handle_ms: 180_000,
        }
    }
}

/// An agent's membership of a queue: lower levels are tried first, then lower positions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    pub queue: String,
    pub level: u32,
    pub position: u32,
}

impl Tier {
    pub fn new(queue: &str, level: u32, position: u32) -> Self {
        Self {
            queue: queue.to_owned(),
            level,
            position,
        }
    }
}

/// One agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentConfig {
    pub id: AgentId,
    /// Simultaneous contacts per channel, indexed by [`crate::Channel::index`]; voice at most 1.
    pub capacity: [u8; 5],
    /// Skill name and level 0-100.
    pub skills: Vec<(String, u8)>,
    pub tiers: Vec<Tier>,
    /// Asterisk's member penalty: a lower penalty is tried first within a tier level.
    pub penalty: u32,
    /// Consecutive unanswered offers that send the agent to break; 0: never.
    pub max_no_answer: u32,
    /// After an unanswered offer, the agent rests this long before the next offer.
    pub no_answer_delay_ms: Millis,
}

impl AgentConfig {
    /// A voice-only agent (capacity 1 voice) without skills or tiers.
    pub fn new(id: AgentId) -> Self {
        Self {
            id,
            ..Self::default()
        }
    }

    pub(crate) fn skill(&self, name: &str) -> Option<u8> {
        self.skills
            .iter()
            .find(|(skill, _)| skill == name)
            .map(|&(_, level)| level)
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            id: AgentId(0),
            capacity: [1, 0, 0, 0, 0],
            skills: Vec::new(),
            tiers: Vec::new(),
            penalty: 0,
            max_no_answer: 3,
            no_answer_delay_ms: 0,
        }
    }
}

/// The whole ACD configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AcdConfig {
    pub queues: Vec<QueueConfig>,
    pub agents: Vec<AgentConfig>,
}

impl AcdConfig {
    /// Rejects duplicate names, skill levels above 100 and a voice capacity above 1.
    pub fn validate(&self) -> Result<(), AcdError> {
        let bad = |reason: String| Err(AcdError::InvalidConfig(reason));
        for (i, queue) in self.queues.iter().enumerate() {
            if queue.name.is_empty() {
                return bad("a queue has no name".into());
            }
            if self.queues[..i].iter().any(|q| q.name == queue.name) {
                return bad(format!("queue {:?} defined twice", queue.name));
            }
            if queue.ageing_ms == Some(0) {
                return bad(format!("queue {:?}: ageing_ms must be > 0", queue.name));
            }
            if queue.skill_rules.iter().any(|rule| rule.max_level > 100) {
                return bad(format!("queue {:?}: skill level above 100", queue.name));
            }
        }
        for (i, agent) in self.agents.iter().enumerate() {
            if self.agents[..i].iter().any(|a| a.id == agent.id) {
                return bad(format!("agent {:?} defined twice", agent.id));
            }
            if agent.capacity[0] > 1 {
                return bad(format!("agent {:?}: voice capacity above 1", agent.id));
            }
            if agent.skills.iter().any(|&(_, level)| level > 100) {
                return bad(format!("agent {:?}: skill level above 100", agent.id));
            }
        }
        Ok(())
    }
}
