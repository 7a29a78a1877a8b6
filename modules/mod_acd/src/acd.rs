//! The routing state machine.

use crate::config::{AcdConfig, AgentConfig, OverflowTarget, QueueConfig, Strategy};
use crate::stats::{AgentStats, QueueStats};
use crate::{AcdError, AgentId, Channel, Interaction, InteractionId, Millis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// Overflow from queue to queue stops after this many hops (a loop A -> B -> A times out).
const MAX_OVERFLOW_HOPS: u8 = 8;

/// What drives the ACD. Each comes with `now` in [`Acd::handle_input`].
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Arrive(Interaction),
    /// The caller hung up while waiting (or ringing).
    Abandon(InteractionId),
    Login(AgentId),
    Logout(AgentId),
    Break {
        agent: AgentId,
        reason: String,
    },
    /// Back from break (or a login).
    Available(AgentId),
    OfferAnswered {
        interaction: InteractionId,
        agent: AgentId,
    },
    OfferNoAnswer {
        interaction: InteractionId,
        agent: AgentId,
    },
    /// The answered contact is over (either side hung up); wrap-up starts.
    ContactEnded(InteractionId),
    Tick,
    /// New queue and agent configuration: never logs an agent out, never drops an interaction.
    Reload(AcdConfig),
}

/// What the ACD asks of its surroundings, drained with [`Acd::poll_output`].
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Ring the agent with this interaction.
    Offer {
        interaction: InteractionId,
        agent: AgentId,
        queue: String,
    },
    /// Stop ringing the agent (answered elsewhere, caller gone, agent went away).
    CancelOffer {
        interaction: InteractionId,
        agent: AgentId,
    },
    /// The interaction leaves its queue for the target (queue targets are moved internally).
    Overflow {
        interaction: InteractionId,
        target: OverflowTarget,
    },
    /// The interaction waited too long (or found the queue full) with nowhere to overflow.
    Timeout {
        interaction: InteractionId,
        queue: String,
    },
    /// Tell the caller its position (1 = next) and the estimated wait, if known.
    Announce {
        interaction: InteractionId,
        position: usize,
        estimated_wait_ms: Option<Millis>,
    },
    /// One row of the queue log per state change.
    Log(QueueLogRow),
}

/// A queue-log row (Asterisk queue_log style).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLogRow {
    pub at: Millis,
    /// Empty for agent-only events.
    pub queue: String,
    pub interaction: Option<InteractionId>,
    pub agent: Option<AgentId>,
    pub event: QueueEvent,
}

/// The state changes the queue log records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueEvent {
    EnterQueue { caller: String },
    Offer,
    OfferCancelled,
    RingNoAnswer,
    Connect { waited_ms: Millis },
    Abandon { waited_ms: Millis },
    ExitWithTimeout { waited_ms: Millis },
    Overflow { target: OverflowTarget },
    Complete { talk_ms: Millis },
    AgentLogin,
    AgentLogout,
    AgentBreak { reason: String },
    AgentAvailable,
    WrapUpEnd,
}

/// An agent's one state across channels, as shown to supervisors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentState {
    Offline,
    Available,
    /// Ringing with a live offer.
    Reserved(InteractionId),
    OnContact(InteractionId),
    WrapUp {
        until: Millis,
    },
    Break(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Presence {
    Offline,
    Available,
    Break(String),
}

#[derive(Debug, Clone)]
struct Contact {
    interaction: InteractionId,
    channel: Channel,
    /// None while ringing.
    answered_at: Option<Millis>,
}

#[derive(Debug, Clone)]
struct Agent {
    cfg: AgentConfig,
    /// The capacity in force: a lowered capacity waits for contacts to end.
    capacity: [u8; 5],
    presence: Presence,
    contacts: Vec<Contact>,
    wrap_up_until: Option<Millis>,
    /// After a no-answer the agent is not offered anything until then (FreeSWITCH's
    /// no_answer_delay_time): an unregistered phone fails at once, and would otherwise be
    /// offered the same caller again in a tight loop.
    resting_until: Option<Millis>,
    idle_since: Millis,
    no_answers_in_row: u32,
    stats: AgentStats,
    accounted_to: Millis,
}

impl Agent {
    fn new(cfg: AgentConfig) -> Self {
        Self {
            capacity: cfg.capacity,
            cfg,
            presence: Presence::Offline,
            contacts: Vec::new(),
            wrap_up_until: None,
            resting_until: None,
            idle_since: 0,
            no_answers_in_row: 0,
            stats: AgentStats::default(),
            accounted_to: 0,
        }
    }

    fn load(&self, channel: Channel) -> usize {
        self.contacts
            .iter()
            .filter(|c| c.channel == channel)
            .count()
    }

    fn in_wrap_up(&self, now: Millis) -> bool {
        self.wrap_up_until.is_some_and(|until| until > now)
    }

    fn accepts(&self, channel: Channel, now: Millis) -> bool {
        self.presence == Presence::Available
            && !self.in_wrap_up(now)
            && self.resting_until.is_none_or(|until| until <= now)
            && self.load(channel) < usize::from(self.capacity[channel.index()])
    }

    fn accepts_any(&self, now: Millis) -> bool {
        Channel::ALL
            .iter()
            .any(|&channel| self.accepts(channel, now))
    }

    fn state(&self, now: Millis) -> AgentState {
        if let Some(c) = self.contacts.iter().find(|c| c.answered_at.is_some()) {
            return AgentState::OnContact(c.interaction);
        }
        if let Some(c) = self.contacts.first() {
            return AgentState::Reserved(c.interaction);
        }
        if let Some(until) = self.wrap_up_until.filter(|&until| until > now) {
            return AgentState::WrapUp { until };
        }
        match &self.presence {
            Presence::Offline => AgentState::Offline,
            Presence::Available => AgentState::Available,
            Presence::Break(reason) => AgentState::Break(reason.clone()),
        }
    }

    /// Adds the time since the last change to the bucket of the state it was spent in;
    /// called before every change of the agent.
    fn account(&mut self, now: Millis) {
        let from = self.accounted_to;
        if now <= from {
            return;
        }
        let busy = self.contacts.iter().any(|c| c.answered_at.is_some());
        let wrap_end = self.wrap_up_until.unwrap_or(0).clamp(from, now);
        let (handling, rest) = if busy {
            (now - from, 0)
        } else {
            (wrap_end - from, now - wrap_end)
        };
        self.stats.handling_ms += handling;
        if self.presence == Presence::Available {
            self.stats.idle_ms += rest;
        }
        self.accounted_to = now;
    }

    fn settle_capacity(&mut self) {
        for channel in Channel::ALL {
            let load = self.load(channel).min(usize::from(u8::MAX)) as u8;
            self.capacity[channel.index()] = self.cfg.capacity[channel.index()].max(load);
        }
    }
}

/// Whether the agent may take the interaction now: available, out of wrap-up at `at`, below
/// capacity on its channel, and skilled enough with the rule set widened to `widened`.
fn can_take(agent: &Agent, interaction: &Interaction, widened: Option<u8>, at: Millis) -> bool {
    agent.accepts(interaction.channel, at)
        && interaction.skills.iter().all(|req| {
            let need = widened.map_or(req.level, |w| w.min(req.level));
            agent.cfg.skill(&req.skill).is_some_and(|have| have >= need)
        })
}

/// The entry waited its queue's maximum: it is offered no more, and leaves at the next tick
/// once no phone rings for it.
fn past_max_wait(cfg: &QueueConfig, entry: &Entry, now: Millis) -> bool {
    cfg.max_wait_ms
        .is_some_and(|max| now >= entry.entered_at + max)
}

/// How a candidate agent ranks, lowest first: declined this interaction already, tier level,
/// penalty, the strategy's own key, tier position, agent id (a total order: no ties).
type CandidateKey = (u8, u32, u32, i128, u32, AgentId);

/// A waiting interaction's rank in its queue, best first.
type WaitKey = (Reverse<i128>, u64, InteractionId);

#[derive(Debug)]
struct Entry {
    spec: Interaction,
    queue: String,
    entered_at: Millis,
    key: WaitKey,
    /// (agent index, offered at)
    offers: Vec<(usize, Millis)>,
    /// The live offers were made by a ring strategy, so there may be several; survives a
    /// reload that changes the strategy while they ring.
    ring_group: bool,
    declined: Vec<AgentId>,
    /// Agents whose offer of it was taken back (cancelled, expired): a late answer from one
    /// of them is believed, from anyone else it is a mistake.
    withdrawn: Vec<AgentId>,
    last_offer_at: Millis,
    sequence_last: Option<(u32, AgentId)>,
    answered: Option<(usize, Millis)>,
    next_announce: Option<Millis>,
    hops: u8,
}

#[derive(Debug, Clone, Copy)]
struct Member {
    agent: usize,
    level: u32,
    position: u32,
}

#[derive(Debug)]
struct Queue {
    cfg: QueueConfig,
    waiting: BTreeSet<WaitKey>,
    members: Vec<Member>,
    round_robin_last: Option<(u32, AgentId)>,
    /// Removed by a reload but still holding interactions: routes them, takes no new ones.
    draining: bool,
    stats: QueueStats,
}

/// The ACD: queues, agents, waiting interactions. See the crate docs for the driving loop.
#[derive(Debug)]
pub struct Acd {
    queues: BTreeMap<String, Queue>,
    agents: Vec<Agent>,
    agent_index: HashMap<AgentId, usize>,
    entries: HashMap<InteractionId, Entry>,
    outputs: VecDeque<Output>,
    rng: StdRng,
    sequence: u64,
    free: Vec<Member>,
    /// What the current input may have made routable: routing looks only there, so an idle
    /// agent who matches nothing costs nothing per input (ticks and reloads look everywhere).
    touched_agents: Vec<usize>,
    touched_interactions: Vec<InteractionId>,
    route_everything: bool,
    routed_all_at: Millis,
}

impl Acd {
    /// A new ACD with every agent offline; `seed` drives the random strategy.
    pub fn new(config: AcdConfig, seed: u64) -> Result<Self, AcdError> {
        let mut acd = Self {
            queues: BTreeMap::new(),
            agents: Vec::new(),
            agent_index: HashMap::new(),
            entries: HashMap::new(),
            outputs: VecDeque::new(),
            rng: StdRng::seed_from_u64(seed),
            sequence: 0,
            free: Vec::new(),
            touched_agents: Vec::new(),
            touched_interactions: Vec::new(),
            route_everything: false,
            routed_all_at: 0,
        };
        acd.reload(0, config)?;
        Ok(acd)
    }

    /// Applies one input at `now`, then routes; drain [`Acd::poll_output`] afterwards.
    /// An error leaves the state unchanged.
    pub fn handle_input(&mut self, now: Millis, input: Input) -> Result<(), AcdError> {
        match input {
            Input::Arrive(interaction) => self.arrive(now, interaction)?,
            Input::Abandon(id) => self.abandon(now, id)?,
            Input::Login(agent) | Input::Available(agent) => {
                self.set_presence(now, agent, Presence::Available)?
            }
            Input::Logout(agent) => self.set_presence(now, agent, Presence::Offline)?,
            Input::Break { agent, reason } => {
                self.set_presence(now, agent, Presence::Break(reason))?
            }
            Input::OfferAnswered { interaction, agent } => self.answer(now, interaction, agent)?,
            Input::OfferNoAnswer { interaction, agent } => {
                self.no_answer(now, interaction, agent)?
            }
            Input::ContactEnded(id) => self.contact_ended(now, id)?,
            Input::Tick => {
                self.route_everything = true;
                self.tick(now);
            }
            Input::Reload(config) => {
                self.route_everything = true;
                self.reload(now, config)?;
            }
        }
        self.route(now);
        Ok(())
    }

    /// The next output, oldest first.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// An agent's state, or None for an unknown agent.
    pub fn agent_state(&self, agent: AgentId, now: Millis) -> Option<AgentState> {
        self.agent_index
            .get(&agent)
            .map(|&i| self.agents[i].state(now))
    }

    /// Whether the agent's presence is a break, whatever it does now (a wrap-up shows first).
    pub fn is_on_break(&self, agent: AgentId) -> bool {
        self.agent_index
            .get(&agent)
            .is_some_and(|&i| matches!(self.agents[i].presence, Presence::Break(_)))
    }

    /// An agent's counters, accounted up to `now`.
    pub fn agent_stats(&self, agent: AgentId, now: Millis) -> Option<AgentStats> {
        let &i = self.agent_index.get(&agent)?;
        // Account on a copy: a query must not change the state.
        let mut copy = self.agents[i].clone();
        copy.account(now);
        Some(copy.stats)
    }

    /// A queue's counters with its current waiting count and longest wait.
    pub fn queue_stats(&self, queue: &str, now: Millis) -> Option<QueueStats> {
        let q = self.queues.get(queue)?;
        let mut stats = q.stats.clone();
        stats.waiting = q.waiting.len();
        stats.longest_wait_ms = q
            .waiting
            .iter()
            .map(|&(_, _, id)| now.saturating_sub(self.entries[&id].entered_at))
            .max()
            .unwrap_or(0);
        Some(stats)
    }

    /// When the next [`Input::Tick`] has work (an offer expires, a wrap-up ends, a maximum
    /// wait is reached, a skill rule widens, a ring-progressively step or an announcement is
    /// due); None when nothing is pending. A reactor may tick then instead of every second.
    pub fn next_timeout(&self) -> Option<Millis> {
        let mut next: Option<Millis> = None;
        let mut at = |t: Millis| next = Some(next.map_or(t, |n| n.min(t)));
        for agent in &self.agents {
            if let Some(until) = agent.wrap_up_until {
                at(until);
            }
            if let Some(until) = agent.resting_until {
                at(until);
            }
        }
        for queue in self.queues.values() {
            let cfg = &queue.cfg;
            for &(_, _, id) in &queue.waiting {
                let entry = &self.entries[&id];
                for &(_, offered_at) in &entry.offers {
                    at(offered_at + cfg.offer_timeout_ms);
                }
                if cfg.strategy == Strategy::RingProgressively && !entry.offers.is_empty() {
                    at(entry.last_offer_at + cfg.ring_progressively_ms);
                }
                if let Some(max) = cfg.max_wait_ms {
                    at(entry.entered_at + max);
                }
                if let Some(announce) = entry.next_announce {
                    at(announce);
                }
                let widen = cfg
                    .skill_rules
                    .iter()
                    .map(|rule| entry.entered_at + rule.after_ms)
                    .filter(|&t| t > self.routed_all_at)
                    .min();
                if let (Some(t), false) = (widen, entry.spec.skills.is_empty()) {
                    at(t);
                }
            }
        }
        next
    }

    /// Interactions waiting in a queue, best first.
    pub fn waiting(&self, queue: &str) -> Vec<InteractionId> {
        self.queues
            .get(queue)
            .map(|q| q.waiting.iter().map(|&(_, _, id)| id).collect())
            .unwrap_or_default()
    }

    /// The agents an interaction is offered to right now (ringing), in offer order; empty
    /// when it waits unoffered, is answered, or is unknown.
    pub fn offered_to(&self, id: InteractionId) -> Vec<AgentId> {
        self.entries.get(&id).map_or_else(Vec::new, |entry| {
            entry
                .offers
                .iter()
                .map(|&(a, _)| self.agents[a].cfg.id)
                .collect()
        })
    }

    /// When the live offer of an interaction to `agent` expires (None: no such offer).
    pub fn offer_deadline_of(&self, id: InteractionId, agent: AgentId) -> Option<Millis> {
        let entry = self.entries.get(&id)?;
        let timeout = self.queues.get(&entry.queue)?.cfg.offer_timeout_ms;
        let &a = self.agent_index.get(&agent)?;
        entry
            .offers
            .iter()
            .find(|&&(x, _)| x == a)
            .map(|&(_, at)| at + timeout)
    }

    /// When the oldest live offer of an interaction expires (None: not offered).
    pub fn offer_deadline(&self, id: InteractionId) -> Option<Millis> {
        let entry = self.entries.get(&id)?;
        let timeout = self.queues.get(&entry.queue)?.cfg.offer_timeout_ms;
        entry.offers.iter().map(|&(_, at)| at + timeout).min()
    }

    /// The queue an interaction is in (its current one after a queue overflow).
    pub fn queue_of(&self, id: InteractionId) -> Option<&str> {
        self.entries.get(&id).map(|entry| entry.queue.as_str())
    }

    /// Whether an agent answered the interaction (it is on a contact, no longer waiting).
    pub fn is_answered(&self, id: InteractionId) -> bool {
        self.entries
            .get(&id)
            .is_some_and(|entry| entry.answered.is_some())
    }

    /// A queue's configuration in force.
    pub fn queue_config(&self, queue: &str) -> Option<&QueueConfig> {
        self.queues.get(queue).map(|q| &q.cfg)
    }

    /// The queues' names, in order (including ones draining after a reload removed them).
    pub fn queue_names(&self) -> impl Iterator<Item = &str> {
        self.queues.keys().map(String::as_str)
    }

    /// The agents' ids, in configuration order.
    pub fn agent_ids(&self) -> impl Iterator<Item = AgentId> + '_ {
        self.agents.iter().map(|agent| agent.cfg.id)
    }

    /// Number of interactions in the ACD (waiting or on a contact).
    pub fn interaction_count(&self) -> usize {
        self.entries.len()
    }

    /// Checks every invariant the design promises; the simulation calls it after each step.
    pub fn check_invariants(&self, now: Millis) -> Result<(), AcdError> {
        let broken = |what: String| Err(AcdError::Invariant(what));
        for agent in &self.agents {
            let id = agent.cfg.id;
            for channel in Channel::ALL {
                if agent.load(channel) > usize::from(agent.capacity[channel.index()]) {
                    return broken(format!("agent {id:?} over capacity on {channel:?}"));
                }
            }
            for contact in &agent.contacts {
                let Some(entry) = self.entries.get(&contact.interaction) else {
                    return broken(format!("agent {id:?} holds gone {:?}", contact.interaction));
                };
                let i = self.agent_index[&id];
                match contact.answered_at {
                    None => {
                        if !entry.offers.iter().any(|&(a, _)| a == i) {
                            return broken(format!("agent {id:?} reserved without a live offer"));
                        }
                        if agent.presence != Presence::Available {
                            return broken(format!("agent {id:?} ringing while not available"));
                        }
                    }
                    Some(_) => {
                        if entry.answered.map(|(a, _)| a) != Some(i) {
                            return broken(format!("agent {id:?} on a contact not answered by it"));
                        }
                    }
                }
            }
        }
        for (id, entry) in &self.entries {
            let Some(queue) = self.queues.get(&entry.queue) else {
                if entry.answered.is_none() {
                    return broken(format!("{id:?} waits in a missing queue"));
                }
                continue;
            };
            let waiting = queue.waiting.contains(&entry.key);
            if waiting == entry.answered.is_some() {
                return broken(format!("{id:?} waiting set disagrees with its state"));
            }
            if entry.answered.is_some() && !entry.offers.is_empty() {
                return broken(format!("{id:?} answered but still offered"));
            }
            if entry.offers.len() > 1 && !entry.ring_group {
                return broken(format!(
                    "{id:?} offered to {} agents at once",
                    entry.offers.len()
                ));
            }
            for &(a, _) in &entry.offers {
                let has = self.agents[a]
                    .contacts
                    .iter()
                    .any(|c| c.interaction == *id && c.answered_at.is_none());
                if !has {
                    return broken(format!("{id:?} offer to an agent who does not hold it"));
                }
            }
            if let Some((a, _)) = entry.answered {
                let has = self.agents[a]
                    .contacts
                    .iter()
                    .any(|c| c.interaction == *id && c.answered_at.is_some());
                if !has {
                    return broken(format!("{id:?} answered by an agent who does not hold it"));
                }
            }
        }
        let waiting: usize = self.queues.values().map(|q| q.waiting.len()).sum();
        let unanswered = self
            .entries
            .values()
            .filter(|e| e.answered.is_none())
            .count();
        if waiting != unanswered {
            return broken(format!("{waiting} in queues but {unanswered} unanswered"));
        }
        // Routing looks only where an input changed something (see `route`); prove it
        // missed nothing: no free agent may match a waiting interaction nobody is offered,
        // judged with the skill rules and wrap-ups as of the last full routing (a tick),
        // since widening and wrap-up ends take effect at ticks.
        let at = self.routed_all_at.min(now);
        for (name, queue) in &self.queues {
            for &(_, _, id) in &queue.waiting {
                let entry = &self.entries[&id];
                if !entry.offers.is_empty() || past_max_wait(&queue.cfg, entry, now) {
                    continue;
                }
                let widened = queue.cfg.widened_level(at.saturating_sub(entry.entered_at));
                if let Some(m) = queue
                    .members
                    .iter()
                    .find(|m| can_take(&self.agents[m.agent], &entry.spec, widened, at))
                {
                    let agent = self.agents[m.agent].cfg.id;
                    return broken(format!(
                        "{agent:?} free and able, {id:?} left waiting in {name}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// An interaction leaves `queue` for `target`: counted, logged, and told to the caller.
    fn overflowed(&mut self, now: Millis, queue: &str, id: InteractionId, target: OverflowTarget) {
        if let Some(q) = self.queues.get_mut(queue) {
            q.stats.overflowed += 1;
        }
        self.log(
            now,
            queue,
            Some(id),
            None,
            QueueEvent::Overflow {
                target: target.clone(),
            },
        );
        self.outputs.push_back(Output::Overflow {
            interaction: id,
            target,
        });
    }

    fn log(
        &mut self,
        at: Millis,
        queue: &str,
        interaction: Option<InteractionId>,
        agent: Option<AgentId>,
        event: QueueEvent,
    ) {
        self.outputs.push_back(Output::Log(QueueLogRow {
            at,
            queue: queue.to_owned(),
            interaction,
            agent,
            event,
        }));
    }

    fn agent_idx(&self, agent: AgentId) -> Result<usize, AcdError> {
        self.agent_index
            .get(&agent)
            .copied()
            .ok_or(AcdError::UnknownAgent(agent))
    }

    fn wait_key(
        &mut self,
        cfg: &QueueConfig,
        priority: i32,
        entered_at: Millis,
        id: InteractionId,
    ) -> WaitKey {
        // Ageing: with a step of S ms, priority p entered at t ranks by p*S - t, so waiting S
        // longer is worth one priority step; the key does not change with time.
        let step = cfg.ageing_ms.unwrap_or(1 << 44);
        self.sequence += 1;
        (
            Reverse(i128::from(priority) * i128::from(step) - i128::from(entered_at)),
            self.sequence,
            id,
        )
    }

    fn arrive(&mut self, now: Millis, interaction: Interaction) -> Result<(), AcdError> {
        if self.entries.contains_key(&interaction.id) {
            return Err(AcdError::DuplicateInteraction(interaction.id));
        }
        match self.queues.get(&interaction.queue) {
            None => return Err(AcdError::UnknownQueue(interaction.queue)),
            Some(q) if q.draining => return Err(AcdError::QueueDraining(interaction.queue)),
            Some(_) => {}
        }
        let queue = interaction.queue.clone();
        let entry = Entry {
            queue: String::new(),
            entered_at: now,
            key: (Reverse(0), 0, interaction.id),
            offers: Vec::new(),
            ring_group: false,
            declined: Vec::new(),
            withdrawn: Vec::new(),
            last_offer_at: now,
            sequence_last: None,
            answered: None,
            next_announce: None,
            hops: 0,
            spec: interaction,
        };
        self.enqueue(now, entry, &queue);
        Ok(())
    }

    /// Puts an entry into a queue (arrival or overflow), or overflows / times it out if full.
    fn enqueue(&mut self, now: Millis, mut entry: Entry, queue_name: &str) {
        let id = entry.spec.id;
        let q = &self.queues[queue_name];
        let cfg = q.cfg.clone();
        let full = cfg.max_length.is_some_and(|max| q.waiting.len() >= max);
        entry.queue = queue_name.to_owned();
        entry.entered_at = now;
        entry.last_offer_at = now;
        entry.declined.clear();
        entry.sequence_last = None;
        entry.next_announce = cfg.announce_every_ms.map(|every| now + every);
        entry.key = self.wait_key(&cfg, entry.spec.priority, now, id);
        let caller = entry.spec.caller.clone();
        self.log(
            now,
            queue_name,
            Some(id),
            None,
            QueueEvent::EnterQueue { caller },
        );
        let q = self
            .queues
            .get_mut(queue_name)
            .expect("queue checked by the caller");
        q.stats.entered += 1;
        if full {
            self.leave(now, entry);
        } else {
            q.waiting.insert(entry.key);
            self.touched_interactions.push(id);
            self.entries.insert(id, entry);
        }
    }

    /// The entry (no longer in `entries` nor its queue's waiting set, offers cancelled) waited
    /// too long or found the queue full: overflow it or time it out.
    fn leave(&mut self, now: Millis, mut entry: Entry) {
        let id = entry.spec.id;
        let queue_name = entry.queue.clone();
        let waited_ms = now - entry.entered_at;
        let cfg = &self.queues[&queue_name].cfg;
        let target = cfg.overflow.clone();
        match target {
            Some(OverflowTarget::Queue(next))
                if entry.hops < MAX_OVERFLOW_HOPS
                    && self.queues.get(&next).is_some_and(|q| !q.draining) =>
            {
                self.overflowed(now, &queue_name, id, OverflowTarget::Queue(next.clone()));
                entry.hops += 1;
                self.enqueue(now, entry, &next);
            }
            Some(target @ (OverflowTarget::Extension(_) | OverflowTarget::Ivr(_))) => {
                self.overflowed(now, &queue_name, id, target);
            }
            _ => {
                self.queues
                    .get_mut(&queue_name)
                    .expect("queue exists")
                    .stats
                    .timed_out += 1;
                self.log(
                    now,
                    &queue_name,
                    Some(id),
                    None,
                    QueueEvent::ExitWithTimeout { waited_ms },
                );
                self.outputs.push_back(Output::Timeout {
                    interaction: id,
                    queue: queue_name,
                });
            }
        }
    }

    /// Removes a waiting entry from the ACD, cancelling its offers.
    fn take_waiting(&mut self, now: Millis, id: InteractionId) -> Entry {
        let mut entry = self.entries.remove(&id).expect("caller checked");
        if let Some(q) = self.queues.get_mut(&entry.queue) {
            q.waiting.remove(&entry.key);
        }
        for (a, _) in std::mem::take(&mut entry.offers) {
            self.drop_offer(now, a, id, &entry.queue);
        }
        entry
    }

    /// Takes the ringing contact off the agent and tells the phone to stop.
    /// Takes back every offer ringing agent `a` (on `channel` only, when given).
    fn take_back_ringing(&mut self, now: Millis, a: usize, channel: Option<Channel>) {
        let ringing: Vec<InteractionId> = self.agents[a]
            .contacts
            .iter()
            .filter(|c| c.answered_at.is_none() && channel.is_none_or(|ch| c.channel == ch))
            .map(|c| c.interaction)
            .collect();
        for id in ringing {
            let entry = self
                .entries
                .get_mut(&id)
                .expect("offers point at live entries");
            entry.offers.retain(|&(x, _)| x != a);
            let queue = entry.queue.clone();
            self.drop_offer(now, a, id, &queue);
        }
    }

    fn drop_offer(&mut self, now: Millis, a: usize, id: InteractionId, queue: &str) {
        let agent_id = self.agents[a].cfg.id;
        if let Some(entry) = self.entries.get_mut(&id)
            && !entry.withdrawn.contains(&agent_id)
        {
            entry.withdrawn.push(agent_id);
        }
        self.touched_agents.push(a);
        self.touched_interactions.push(id);
        let agent = &mut self.agents[a];
        agent.account(now);
        agent
            .contacts
            .retain(|c| !(c.interaction == id && c.answered_at.is_none()));
        agent.settle_capacity();
        let agent_id = agent.cfg.id;
        self.outputs.push_back(Output::CancelOffer {
            interaction: id,
            agent: agent_id,
        });
        self.log(
            now,
            queue,
            Some(id),
            Some(agent_id),
            QueueEvent::OfferCancelled,
        );
    }

    fn abandon(&mut self, now: Millis, id: InteractionId) -> Result<(), AcdError> {
        let entry = self
            .entries
            .get(&id)
            .ok_or(AcdError::UnknownInteraction(id))?;
        if entry.answered.is_some() {
            return Err(AcdError::NotWaiting(id));
        }
        let entry = self.take_waiting(now, id);
        let waited_ms = now - entry.entered_at;
        let q = self
            .queues
            .get_mut(&entry.queue)
            .expect("waiting entries have a queue");
        q.stats.abandoned += 1;
        if waited_ms < q.cfg.short_abandon_ms {
            q.stats.short_abandoned += 1;
        }
        self.log(
            now,
            &entry.queue,
            Some(id),
            None,
            QueueEvent::Abandon { waited_ms },
        );
        self.remove_drained(&entry.queue);
        Ok(())
    }

    fn set_presence(
        &mut self,
        now: Millis,
        agent: AgentId,
        presence: Presence,
    ) -> Result<(), AcdError> {
        let a = self.agent_idx(agent)?;
        if self.agents[a].presence == presence {
            // "Available" again from an available agent resting after a no-answer: ready now.
            if presence == Presence::Available && self.agents[a].resting_until.take().is_some() {
                self.touched_agents.push(a);
            }
            return Ok(());
        }
        // Leaving "available" takes back every ringing offer: a phone left ringing for an
        // agent on break is how the peers' agents got stuck in Reserved.
        if presence != Presence::Available {
            self.take_back_ringing(now, a, None);
        }
        let agent_ref = &mut self.agents[a];
        agent_ref.account(now);
        let was_offline = agent_ref.presence == Presence::Offline;
        if presence == Presence::Available {
            agent_ref.idle_since = now;
            agent_ref.no_answers_in_row = 0;
            // Saying "available" again means ready now.
            agent_ref.resting_until = None;
        }
        let event = match &presence {
            Presence::Offline => QueueEvent::AgentLogout,
            Presence::Available if was_offline => QueueEvent::AgentLogin,
            Presence::Available => QueueEvent::AgentAvailable,
            Presence::Break(reason) => QueueEvent::AgentBreak {
                reason: reason.clone(),
            },
        };
        agent_ref.presence = presence;
        self.touched_agents.push(a);
        self.log(now, "", None, Some(agent), event);
        Ok(())
    }

    fn answer(&mut self, now: Millis, id: InteractionId, agent: AgentId) -> Result<(), AcdError> {
        let a = self.agent_idx(agent)?;
        let entry = self
            .entries
            .get(&id)
            .ok_or(AcdError::UnknownInteraction(id))?;
        if entry.answered.is_some() {
            return Err(AcdError::NotWaiting(id));
        }
        if !entry.offers.iter().any(|&(x, _)| x == a) {
            self.take_late_answer(now, id, a)?;
        }
        let entry = self.entries.get_mut(&id).expect("checked");
        let others: Vec<usize> = entry
            .offers
            .iter()
            .map(|&(x, _)| x)
            .filter(|&x| x != a)
            .collect();
        entry.offers.clear();
        entry.answered = Some((a, now));
        let queue_name = entry.queue.clone();
        let (key, waited_ms) = (entry.key, now - entry.entered_at);
        for other in others {
            self.drop_offer(now, other, id, &queue_name);
        }
        let q = self
            .queues
            .get_mut(&queue_name)
            .expect("waiting entries have a queue");
        q.waiting.remove(&key);
        q.stats.answered += 1;
        q.stats.answered_wait_ms += waited_ms;
        if waited_ms <= q.cfg.service_level_ms {
            q.stats.answered_within_sl += 1;
        }
        let agent_ref = &mut self.agents[a];
        agent_ref.account(now);
        agent_ref.no_answers_in_row = 0;
        agent_ref.stats.answered += 1;
        for c in agent_ref
            .contacts
            .iter_mut()
            .filter(|c| c.interaction == id)
        {
            c.answered_at = Some(now);
        }
        self.log(
            now,
            &queue_name,
            Some(id),
            Some(agent),
            QueueEvent::Connect { waited_ms },
        );
        Ok(())
    }

    /// The agent's phone answered an interaction no longer offered to it: the 200 crossed the
    /// CANCEL of a withdrawn offer. The agent is talking to the caller, so the answer stands:
    /// the agent's other ringing offers on that channel are dropped and the interaction is
    /// taken as offered now. Refused when the interaction was never offered to the agent, or
    /// the agent already has as many answered contacts on the channel as it may hold.
    fn take_late_answer(
        &mut self,
        now: Millis,
        id: InteractionId,
        a: usize,
    ) -> Result<(), AcdError> {
        let entry = &self.entries[&id];
        let channel = entry.spec.channel;
        let agent = &self.agents[a];
        let id_of_agent = agent.cfg.id;
        if !entry.withdrawn.contains(&id_of_agent) && !entry.declined.contains(&id_of_agent) {
            return Err(AcdError::NoSuchOffer {
                interaction: id,
                agent: id_of_agent,
            });
        }
        let answered = agent
            .contacts
            .iter()
            .filter(|c| c.channel == channel && c.answered_at.is_some())
            .count();
        if answered >= usize::from(agent.cfg.capacity[channel.index()].max(1)) {
            return Err(AcdError::NoSuchOffer {
                interaction: id,
                agent: agent.cfg.id,
            });
        }
        self.take_back_ringing(now, a, Some(channel));
        let agent = &mut self.agents[a];
        agent.account(now);
        agent.contacts.push(Contact {
            interaction: id,
            channel,
            answered_at: None,
        });
        agent.settle_capacity();
        self.entries
            .get_mut(&id)
            .expect("checked by the caller")
            .offers
            .push((a, now));
        Ok(())
    }

    fn no_answer(
        &mut self,
        now: Millis,
        id: InteractionId,
        agent: AgentId,
    ) -> Result<(), AcdError> {
        let a = self.agent_idx(agent)?;
        let entry = self
            .entries
            .get_mut(&id)
            .ok_or(AcdError::UnknownInteraction(id))?;
        let Some(pos) = entry.offers.iter().position(|&(x, _)| x == a) else {
            return Err(AcdError::NoSuchOffer {
                interaction: id,
                agent,
            });
        };
        entry.offers.remove(pos);
        entry.declined.push(agent);
        self.touched_agents.push(a);
        self.touched_interactions.push(id);
        let queue = entry.queue.clone();
        let agent_ref = &mut self.agents[a];
        agent_ref.account(now);
        agent_ref
            .contacts
            .retain(|c| !(c.interaction == id && c.answered_at.is_none()));
        agent_ref.settle_capacity();
        agent_ref.no_answers_in_row += 1;
        if agent_ref.cfg.no_answer_delay_ms > 0 {
            agent_ref.resting_until = Some(now + agent_ref.cfg.no_answer_delay_ms);
        }
        agent_ref.stats.no_answers += 1;
        let max = agent_ref.cfg.max_no_answer;
        let exhausted = max > 0 && agent_ref.no_answers_in_row >= max;
        self.outputs.push_back(Output::CancelOffer {
            interaction: id,
            agent,
        });
        self.log(now, &queue, Some(id), Some(agent), QueueEvent::RingNoAnswer);
        if exhausted {
            self.set_presence(now, agent, Presence::Break("max-no-answer".into()))?;
        }
        Ok(())
    }

    fn contact_ended(&mut self, now: Millis, id: InteractionId) -> Result<(), AcdError> {
        let entry = self
            .entries
            .get(&id)
            .ok_or(AcdError::UnknownInteraction(id))?;
        let Some((a, answered_at)) = entry.answered else {
            return Err(AcdError::NotConnected(id));
        };
        let entry = self.entries.remove(&id).expect("checked");
        let talk_ms = now - answered_at;
        let wrap_up_ms = self
            .queues
            .get(&entry.queue)
            .map_or(0, |q| q.cfg.wrap_up_ms);
        let agent = &mut self.agents[a];
        agent.account(now);
        agent.contacts.retain(|c| c.interaction != id);
        agent.settle_capacity();
        agent.stats.talk_ms += talk_ms;
        if wrap_up_ms > 0 {
            let until = now + wrap_up_ms;
            agent.wrap_up_until = Some(agent.wrap_up_until.map_or(until, |u| u.max(until)));
        }
        agent.idle_since = now + wrap_up_ms;
        self.touched_agents.push(a);
        let agent_id = agent.cfg.id;
        if let Some(q) = self.queues.get_mut(&entry.queue) {
            q.stats.handled += 1;
            q.stats.handle_ms += talk_ms + wrap_up_ms;
        }
        self.log(
            now,
            &entry.queue,
            Some(id),
            Some(agent_id),
            QueueEvent::Complete { talk_ms },
        );
        self.remove_drained(&entry.queue);
        Ok(())
    }

    /// A queue removed by a reload goes once nothing refers to it.
    fn remove_drained(&mut self, queue: &str) {
        let drained = self
            .queues
            .get(queue)
            .is_some_and(|q| q.draining && q.waiting.is_empty());
        if drained && !self.entries.values().any(|e| e.queue == queue) {
            self.queues.remove(queue);
        }
    }

    fn tick(&mut self, now: Millis) {
        // Offers that rang too long: a lost no-answer event cannot leave an agent reserved.
        let mut expired = Vec::new();
        for q in self.queues.values() {
            for &(_, _, id) in &q.waiting {
                for &(a, at) in &self.entries[&id].offers {
                    if now >= at + q.cfg.offer_timeout_ms {
                        expired.push((id, self.agents[a].cfg.id));
                    }
                }
            }
        }
        for (id, agent) in expired {
            // Cannot fail: the offer was just seen, and only this loop changes offers here.
            let _ = self.no_answer(now, id, agent);
        }
        for agent in &mut self.agents {
            if agent.resting_until.is_some_and(|until| until <= now) {
                agent.resting_until = None;
            }
        }
        for a in 0..self.agents.len() {
            if self.agents[a]
                .wrap_up_until
                .is_some_and(|until| until <= now)
            {
                let agent = &mut self.agents[a];
                agent.account(now);
                agent.wrap_up_until = None;
                let id = agent.cfg.id;
                self.log(now, "", None, Some(id), QueueEvent::WrapUpEnd);
            }
        }
        let mut too_long = Vec::new();
        for q in self.queues.values() {
            if let Some(max) = q.cfg.max_wait_ms {
                for &(_, _, id) in &q.waiting {
                    let entry = &self.entries[&id];
                    // A phone still ringing may be answered: the caller leaves only once it
                    // stops, or the agent answering would talk to a caller the ACD let go.
                    if now >= entry.entered_at + max && entry.offers.is_empty() {
                        too_long.push(id);
                    }
                }
            }
        }
        for id in too_long {
            let entry = self.take_waiting(now, id);
            let queue = entry.queue.clone();
            self.leave(now, entry);
            self.remove_drained(&queue);
        }
        self.announce(now);
    }

    fn announce(&mut self, now: Millis) {
        for q in self.queues.values() {
            let Some(every) = q.cfg.announce_every_ms else {
                continue;
            };
            let staffed = q
                .members
                .iter()
                .filter(|m| self.agents[m.agent].presence != Presence::Offline)
                .count() as u64;
            let handle = q
                .stats
                .average_handle_time_ms()
                .unwrap_or(q.cfg.default_handle_ms);
            let mut position = 0;
            for &(_, _, id) in &q.waiting {
                let entry = self.entries.get_mut(&id).expect("waiting entries are live");
                // A caller whose agent's phone rings is no longer in line.
                if !entry.offers.is_empty() {
                    continue;
                }
                position += 1;
                if entry.next_announce.is_some_and(|at| at <= now) {
                    entry.next_announce = Some(now + every);
                    // Erlang-free estimate: the callers ahead share the staffed agents.
                    let estimated_wait_ms =
                        (staffed > 0).then(|| position as u64 * handle / staffed);
                    self.outputs.push_back(Output::Announce {
                        interaction: id,
                        position,
                        estimated_wait_ms,
                    });
                }
            }
        }
    }

    fn reload(&mut self, now: Millis, config: AcdConfig) -> Result<(), AcdError> {
        config.validate()?;
        let AcdConfig { queues, agents } = config;
        let names: BTreeSet<String> = queues.iter().map(|q| q.name.clone()).collect();
        for cfg in queues {
            match self.queues.get_mut(&cfg.name) {
                Some(q) => {
                    let rekey = q.cfg.ageing_ms != cfg.ageing_ms;
                    q.cfg = cfg;
                    q.draining = false;
                    if rekey {
                        let name = q.cfg.name.clone();
                        self.rekey(&name);
                    }
                }
                None => {
                    let q = Queue {
                        cfg,
                        waiting: BTreeSet::new(),
                        members: Vec::new(),
                        round_robin_last: None,
                        draining: false,
                        stats: QueueStats::default(),
                    };
                    self.queues.insert(q.cfg.name.clone(), q);
                }
            }
        }
        let gone: Vec<String> = self
            .queues
            .keys()
            .filter(|n| !names.contains(*n))
            .cloned()
            .collect();
        for name in gone {
            self.queues.get_mut(&name).expect("listed").draining = true;
            self.remove_drained(&name);
        }
        let listed: BTreeSet<AgentId> = agents.iter().map(|a| a.id).collect();
        for cfg in agents {
            match self.agent_index.get(&cfg.id) {
                Some(&a) => {
                    let agent = &mut self.agents[a];
                    agent.account(now);
                    agent.cfg = cfg;
                    agent.settle_capacity();
                }
                None => {
                    let mut agent = Agent::new(cfg);
                    agent.accounted_to = now;
                    self.agent_index.insert(agent.cfg.id, self.agents.len());
                    self.agents.push(agent);
                }
            }
        }
        // An agent dropped from the configuration keeps its state and contacts (no forced
        // logout) but leaves every queue, so it is offered nothing new.
        for agent in self
            .agents
            .iter_mut()
            .filter(|a| !listed.contains(&a.cfg.id))
        {
            agent.cfg.tiers.clear();
        }
        for q in self.queues.values_mut() {
            q.members.clear();
        }
        for (a, agent) in self.agents.iter().enumerate() {
            for tier in &agent.cfg.tiers {
                if let Some(q) = self.queues.get_mut(&tier.queue) {
                    q.members.push(Member {
                        agent: a,
                        level: tier.level,
                        position: tier.position,
                    });
                }
            }
        }
        for q in self.queues.values_mut() {
            q.members
                .sort_by_key(|m| (m.level, m.position, self.agents[m.agent].cfg.id));
        }
        Ok(())
    }

    fn rekey(&mut self, queue: &str) {
        let ids: Vec<InteractionId> = self.queues[queue]
            .waiting
            .iter()
            .map(|&(_, _, id)| id)
            .collect();
        let cfg = self.queues[queue].cfg.clone();
        let mut waiting = BTreeSet::new();
        for id in ids {
            let (priority, entered_at) = {
                let e = &self.entries[&id];
                (e.spec.priority, e.entered_at)
            };
            let key = self.wait_key(&cfg, priority, entered_at, id);
            self.entries
                .get_mut(&id)
                .expect("waiting entries are live")
                .key = key;
            waiting.insert(key);
        }
        self.queues.get_mut(queue).expect("exists").waiting = waiting;
    }

    /// Routes what the input touched. Before an input no free agent matches a waiting
    /// interaction (the previous routing offered every match), so a new match needs an agent
    /// or an interaction the input touched; time-driven matches (widening rules, wrap-up end,
    /// ring-progressively) come with the tick, which routes everything.
    fn route(&mut self, now: Millis) {
        let agents = std::mem::take(&mut self.touched_agents);
        let interactions = std::mem::take(&mut self.touched_interactions);
        if std::mem::take(&mut self.route_everything) {
            self.routed_all_at = now;
            self.dispatch(now, None, None);
        } else {
            // Touched interactions first, against every free agent, so the strategy still
            // ranks all of them (a no-answer agent must not get the same call straight back).
            for &id in &interactions {
                let key = self
                    .entries
                    .get(&id)
                    .filter(|e| e.answered.is_none())
                    .map(|e| e.key);
                if let Some(key) = key {
                    self.dispatch(now, None, Some(key));
                }
            }
            if !agents.is_empty() {
                self.dispatch(now, Some(&agents), None);
            }
        }
        self.touched_agents = agents;
        self.touched_agents.clear();
        self.touched_interactions = interactions;
        self.touched_interactions.clear();
    }

    /// Offers waiting interactions to free agents, queue by queue, best first; limited to
    /// some agents or one interaction when given.
    fn dispatch(&mut self, now: Millis, only_agents: Option<&[usize]>, only: Option<WaitKey>) {
        let Self {
            queues,
            agents,
            entries,
            outputs,
            rng,
            free,
            ..
        } = self;
        for (name, queue) in queues.iter_mut() {
            if only.is_some_and(|key| !queue.waiting.contains(&key)) {
                continue;
            }
            free.clear();
            free.extend(queue.members.iter().filter(|m| {
                only_agents.is_none_or(|only| only.contains(&m.agent))
                    && agents[m.agent].accepts_any(now)
            }));
            if free.is_empty() || queue.waiting.is_empty() {
                continue;
            }
            let cfg = &queue.cfg;
            let range = match &only {
                Some(key) => queue.waiting.range(key..=key),
                None => queue.waiting.range(..),
            };
            for &(_, _, id) in range {
                let entry = entries.get_mut(&id).expect("waiting entries are live");
                // Past its maximum wait: no new offer; the tick times it out once the phones
                // ringing for it stop.
                if past_max_wait(cfg, entry, now) {
                    continue;
                }
                let wanted = match cfg.strategy {
                    Strategy::RingAll if entry.offers.is_empty() => usize::MAX,
                    Strategy::RingProgressively
                        if entry.offers.is_empty()
                            || now >= entry.last_offer_at + cfg.ring_progressively_ms =>
                    {
                        1
                    }
                    _ if entry.offers.is_empty() => 1,
                    _ => 0,
                };
                if wanted == 0 {
                    continue;
                }
                let widened = cfg.widened_level(now - entry.entered_at);
                let eligible = |m: &Member| {
                    can_take(&agents[m.agent], &entry.spec, widened, now)
                        && !entry.offers.iter().any(|&(a, _)| a == m.agent)
                };
                let mut picked: Vec<Member> = Vec::new();
                if wanted == usize::MAX {
                    picked.extend(free.iter().filter(|m| eligible(m)));
                } else {
                    let mut best: Option<(CandidateKey, Member)> = None;
                    for m in free.iter().filter(|m| eligible(m)) {
                        let agent = &agents[m.agent];
                        let id = agent.cfg.id;
                        let after = |last: Option<(u32, AgentId)>| {
                            i128::from(last.is_some_and(|l| (m.position, id) <= l))
                        };
                        let strategy_key: i128 = match cfg.strategy {
                            Strategy::LongestIdleAgent => i128::from(agent.idle_since),
                            Strategy::RoundRobin => after(queue.round_robin_last),
                            Strategy::SequentiallyByAgentOrder => after(entry.sequence_last),
                            Strategy::TopDown | Strategy::RingProgressively | Strategy::RingAll => {
                                0
                            }
                            Strategy::AgentWithLeastTalkTime => i128::from(agent.stats.talk_ms),
                            Strategy::AgentWithFewestCalls => i128::from(agent.stats.answered),
                            Strategy::Random => i128::from(rng.random::<u32>()),
                            Strategy::SkillsBased => {
                                let score: i128 = entry
                                    .spec
                                    .skills
                                    .iter()
                                    .map(|req| i128::from(agent.cfg.skill(&req.skill).unwrap_or(0)))
                                    .sum();
                                // Best match first, then longest idle.
                                -score * (1i128 << 64) + i128::from(agent.idle_since)
                            }
                        };
                        let declined = u8::from(entry.declined.contains(&id));
                        let key = (
                            declined,
                            m.level,
                            agent.cfg.penalty,
                            strategy_key,
                            m.position,
                            id,
                        );
                        if best.as_ref().is_none_or(|(k, _)| key < *k) {
                            best = Some((key, *m));
                        }
                    }
                    picked.extend(best.map(|(_, m)| m));
                }
                let ring = matches!(
                    cfg.strategy,
                    Strategy::RingAll | Strategy::RingProgressively
                );
                entry.ring_group = ring || (entry.ring_group && !entry.offers.is_empty());
                for m in picked {
                    let agent = &mut agents[m.agent];
                    agent.account(now);
                    agent.contacts.push(Contact {
                        interaction: id,
                        channel: entry.spec.channel,
                        answered_at: None,
                    });
                    entry.offers.push((m.agent, now));
                    entry.last_offer_at = now;
                    entry.sequence_last = Some((m.position, agent.cfg.id));
                    queue.round_robin_last = Some((m.position, agent.cfg.id));
                    outputs.push_back(Output::Offer {
                        interaction: id,
                        agent: agent.cfg.id,
                        queue: name.clone(),
                    });
                    outputs.push_back(Output::Log(QueueLogRow {
                        at: now,
                        queue: name.clone(),
                        interaction: Some(id),
                        agent: Some(agent.cfg.id),
                        event: QueueEvent::Offer,
                    }));
                }
                free.retain(|m| agents[m.agent].accepts_any(now));
                if free.is_empty() {
                    break;
                }
            }
        }
    }
}
