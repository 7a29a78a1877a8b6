//! The switchboard: voice calls in and out of the routing core, through the host's messages.
//!
//! It stays sans-IO like the core: every host message comes in with the switch's `now_ms`,
//! and what the module must do is returned as [`Send`]s (console lines, queue-log rows,
//! events) that the SDK glue hands to the host. A caller in a queue is held by the core's
//! `moh` action; the switchboard drives the call with console lines:
//!
//! - an offer: `uuid_exec UUID bridge {call_timeout=T}AGENT[,AGENT...]`, the caller hearing
//!   the queue's music (`transfer_ringback`) while the agents ring; `bridge.failed` or
//!   `call.answered` tell the outcome;
//! - one more agent to ring (ring-progressively): `uuid_bridge_add UUID AGENT`; an agent
//!   taken back (logged out, its offer expired) while others ring: `uuid_bridge_remove UUID
//!   AGENT`; the last one: `uuid_bridge_cancel UUID`, then a new bridge with the agents the
//!   core offers by then;
//! - announcements and comfort prompts: `uuid_exec UUID playback ...`, then back to music;
//! - leaving the queue: the variables the queue set for its bridges are unset
//!   (`uuid_exec UUID unset ...`); at the maximum wait (once no phone rings for the caller)
//!   `uuid_exec UUID set queue_result=timeout` and `uuid_break UUID`, so the dialplan goes on
//!   after `queue` (FreeSWITCH's callcenter); on overflow `transfer UUID EXT`, or an IVR by
//!   the inline transfer `transfer UUID ivr:MENU inline`;
//! - callback: the caller presses the queue's key, hears the confirmation and leaves; the
//!   interaction keeps its place, and when an agent is offered it, the switch calls the agent
//!   (`originate {origination_uuid=...}`) and, once the agent answers, the customer. A
//!   customer who does not answer is queued again a minute later, three attempts in all.
//!
//! The switch's events can cross the module's lines (a 200 crossing a CANCEL): an answer
//! from an agent whose offer was just taken back still connects (the core's late answer), and
//! a bridge cancel never acknowledged puts the call back to waiting after a few seconds.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::queues_file::{QueuesFile, VoiceSettings};
use crate::{
    Acd, AcdError, AgentId, AgentState, Channel, Input, Interaction, InteractionId, Millis, Output,
    OverflowTarget, QueueEvent, QueueLogRow, SkillRequirement,
};

/// The dialplan applications the module registers, with their help.
pub const APPLICATIONS: [(&str, &str); 6] = [
    (
        "queue",
        "queue NAME: wait in queue NAME for an agent (music, announcements, callback)",
    ),
    ("callcenter", "callcenter NAME: the same as queue NAME"),
    (
        "agent_login",
        "agent_login [ID]: log the calling agent (or ID) in, available",
    ),
    (
        "agent_logout",
        "agent_logout [ID]: log the calling agent (or ID) out",
    ),
    (
        "agent_break",
        "agent_break [REASON]: the calling agent goes on break (again: back to available)",
    ),
    (
        "agent_available",
        "agent_available [ID]: the calling agent (or ID) is available again",
    ),
];

/// The console commands the module registers, with their help.
pub const COMMANDS: [(&str, &str); 3] = [
    (
        "queue",
        "queue show [NAME]: queues, their statistics and callers",
    ),
    (
        "agent",
        "agent show [ID] | agent login|logout|available ID | agent break ID [REASON]",
    ),
    (
        "acd",
        "acd reload: re-read queues.toml (nobody is logged out, no caller dropped)",
    ),
];

/// The events the module subscribes to.
pub const EVENTS: [&str; 6] = [
    "call.answered",
    "call.ended",
    "bridge.failed",
    "originate.failed",
    "dtmf",
    "tick",
];

/// A message for the host: `console` lines, `queue_log` rows, `event`s.
#[derive(Debug, Clone, PartialEq)]
pub struct Send {
    pub name: &'static str,
    pub body: Value,
}

impl Send {
    fn console(line: String) -> Send {
        Send {
            name: "console",
            body: json!({ "line": line }),
        }
    }
}

/// The outcome of one host message.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    pub reply: Value,
    pub sends: Vec<Send>,
}

/// Where a queued caller's call is, as far as the switch is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Held on music (or hearing a prompt): ready for the next command.
    Waiting,
    /// A bridge rings these agents.
    Ringing(Vec<AgentId>),
    /// We cancelled the bridge ringing these agents; its `bridge.failed` is still to come.
    Cancelling(Vec<AgentId>),
    /// An agent answered.
    Connected,
    /// Left the queue (timeout, overflow, callback): the call is no longer ours.
    Left,
}

#[derive(Debug, Clone)]
struct QueuedCall {
    interaction: InteractionId,
    language: String,
    phase: Phase,
    /// When the call entered its phase (a cancel is acknowledged at once by the switch).
    phase_since: Millis,
    next_comfort: Option<Millis>,
}

/// An interaction whose customer left to be called back.
#[derive(Debug, Clone)]
struct Callback {
    number: String,
    queue: String,
    /// The uuid of the call that asked for it (the queue log's rows carry it).
    origin: String,
    /// The agent legs the switch is placing, one per offer, named by us (origination_uuid).
    legs: BTreeMap<AgentId, String>,
    /// The agent leg that answered, and its agent.
    answered: Option<(String, AgentId)>,
    /// The customer answered the agent's leg.
    reached: bool,
    /// Attempts made so far, this one included.
    attempt: u32,
}

/// The channel variables `queue` sets for its bridges to agents, unset when the caller leaves.
const QUEUE_VARIABLES: [&str; 3] = [
    "continue_on_fail",
    "hangup_after_bridge",
    "transfer_ringback",
];

/// How long a bridge cancel may go unacknowledged before the call counts as not bridging.
const CANCEL_ACK_MS: Millis = 5_000;

/// The pause before a callback whose customer did not answer is queued again.
const CALLBACK_RETRY_DELAY_MS: Millis = 60_000;

/// A bridge that ran out of time with this much or less left on an agent's own offer
/// charges the agent a no-answer (the bridge's timeout is a second ahead of the offer's).
const OFFER_GRACE_MS: Millis = 2_000;

/// Callbacks whose customer does not answer are queued again this many times in all.
const CALLBACK_ATTEMPTS: u32 = 3;

#[derive(Debug, Default, Clone)]
struct Configured {
    voice: BTreeMap<String, VoiceSettings>,
    contacts: BTreeMap<AgentId, String>,
    /// The identity the switch reports as `callee` for each agent's contact.
    by_callee: HashMap<String, AgentId>,
}

/// The module's state: the routing core and the calls it holds.
#[derive(Debug)]
pub struct Switchboard {
    acd: Acd,
    conf_dir: PathBuf,
    file: Option<PathBuf>,
    config: Configured,
    calls: HashMap<String, QueuedCall>,
    by_interaction: HashMap<InteractionId, String>,
    callbacks: HashMap<InteractionId, Callback>,
    next_interaction: u64,
    /// Interactions whose call ended, to forget once their last rows are logged.
    forgotten: Vec<InteractionId>,
    /// Presence changes that make an agent available, asked for from the agent's phone:
    /// applied when that call ends, so the first offer does not ring the phone still on it.
    deferred: HashMap<String, Input>,
    /// Names the agent legs of callbacks.
    next_leg: u64,
    /// Callbacks to queue again once their pause is over: (when, the new interaction).
    retries: Vec<(Millis, Interaction)>,
    now: Millis,
}

impl Default for Switchboard {
    fn default() -> Self {
        Switchboard::new()
    }
}

#[derive(Deserialize)]
struct HostInfo {
    #[serde(default)]
    conf_dir: String,
}

#[derive(Deserialize)]
struct ModuleConfig {
    #[serde(default = "default_file")]
    file: String,
}

fn default_file() -> String {
    "queues.toml".into()
}

#[derive(Deserialize)]
struct AppRun {
    app: String,
    #[serde(default)]
    data: String,
    uuid: String,
    #[serde(default)]
    now_ms: Option<Millis>,
    #[serde(default)]
    variables: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct Command {
    command: String,
    #[serde(default)]
    args: String,
    #[serde(default)]
    now_ms: Option<Millis>,
}

#[derive(Deserialize)]
struct Event {
    event: String,
    #[serde(default)]
    uuid: String,
    #[serde(default)]
    callee: String,
    #[serde(default)]
    bridged: bool,
    #[serde(default)]
    digit: Option<String>,
    /// `bridge.failed`: the Q.850 cause.
    #[serde(default)]
    cause: String,
    #[serde(default)]
    digits: Option<String>,
    #[serde(default)]
    now_ms: Option<Millis>,
    #[serde(default)]
    variables: BTreeMap<String, Value>,
}

impl Event {
    fn variable(&self, name: &str) -> Option<&str> {
        self.variables.get(name).and_then(Value::as_str)
    }
}

/// The identity the switch reports as `callee` when `contact` answers: the user of
/// `user/ID` and of a SIP URI, `NAME/NUMBER` for a gateway.
pub fn callee_of(contact: &str) -> String {
    let uri = contact.strip_prefix("sofia/internal/").unwrap_or(contact);
    if let Some(user) = uri.strip_prefix("user/") {
        return user.split('@').next().unwrap_or_default().to_owned();
    }
    if let Some(rest) = uri.strip_prefix("sip:") {
        return rest.split('@').next().unwrap_or_default().to_owned();
    }
    let gateway = uri
        .strip_prefix("sofia/gateway/")
        .or_else(|| uri.strip_prefix("gateway/"));
    gateway.unwrap_or(uri).to_owned()
}

impl Switchboard {
    /// No queue, no agent, until `module.config` names the file.
    pub fn new() -> Switchboard {
        Switchboard {
            acd: Acd::new(crate::AcdConfig::default(), 0x5eed).expect("the empty config is valid"),
            conf_dir: PathBuf::from("."),
            file: None,
            config: Configured::default(),
            calls: HashMap::new(),
            by_interaction: HashMap::new(),
            callbacks: HashMap::new(),
            next_interaction: 1,
            forgotten: Vec::new(),
            deferred: HashMap::new(),
            next_leg: 1,
            retries: Vec::new(),
            now: 0,
        }
    }

    pub fn acd(&self) -> &Acd {
        &self.acd
    }

    /// One host message.
    pub fn handle(&mut self, name: &str, body: &[u8]) -> Result<Handled, AcdError> {
        match name {
            "module.host" => {
                let host: HostInfo = parse(name, body)?;
                if !host.conf_dir.is_empty() {
                    self.conf_dir = PathBuf::from(host.conf_dir);
                }
                Ok(reply(json!({})))
            }
            "module.config" => {
                let config: ModuleConfig = parse(name, body)?;
                let path = self.conf_dir.join(&config.file);
                let sends = self.load(&path)?;
                self.file = Some(path);
                Ok(Handled {
                    reply: json!({}),
                    sends,
                })
            }
            "app.run" => {
                let run: AppRun = parse(name, body)?;
                self.advance(run.now_ms);
                self.app_run(run)
            }
            "command" => {
                let command: Command = parse(name, body)?;
                self.advance(command.now_ms);
                Ok(self.command(&command))
            }
            "event" => {
                let event: Event = parse(name, body)?;
                self.advance(event.now_ms);
                Ok(Handled {
                    reply: json!({}),
                    sends: self.event(&event),
                })
            }
            other => Err(AcdError::UnknownMessage(other.to_owned())),
        }
    }

    /// Time never goes back for the core, whatever order messages come in.
    fn advance(&mut self, now_ms: Option<Millis>) {
        if let Some(now) = now_ms {
            self.now = self.now.max(now);
        }
    }

    /// Reads `path` and applies it: the first time as the core's configuration, later as a
    /// reload that logs nobody out and drops no caller.
    fn load(&mut self, path: &Path) -> Result<Vec<Send>, AcdError> {
        let file = QueuesFile::load(path)?;
        let by_callee = file
            .contacts
            .iter()
            .map(|(&agent, contact)| (callee_of(contact), agent))
            .collect();
        self.acd.handle_input(self.now, Input::Reload(file.acd))?;
        self.config = Configured {
            voice: file.voice,
            contacts: file.contacts,
            by_callee,
        };
        Ok(self.drain())
    }

    // ----- dialplan applications -------------------------------------------------------------

    fn app_run(&mut self, run: AppRun) -> Result<Handled, AcdError> {
        let var = |name: &str| {
            run.variables
                .get(name)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
        };
        let agent_of = |data: &str| -> Option<AgentId> {
            let word = data
                .split_whitespace()
                .next()
                .or_else(|| var("user_name"))?;
            word.parse().ok().map(AgentId)
        };
        let agent_app = |input: fn(AgentId) -> Input, prompt: &str| (input, prompt.to_owned());
        let (input, prompt) = match run.app.as_str() {
            "queue" | "callcenter" => return Ok(self.enter_queue(&run)),
            "agent_login" => agent_app(Input::Login, "agent-logged-in"),
            "agent_logout" => agent_app(Input::Logout, "agent-logged-out"),
            "agent_available" => agent_app(Input::Available, "agent-logged-in"),
            "agent_break" => {
                // A break code pressed as *24 then the reason comes in the data; the same
                // code again while on break means "back".
                let Some(agent) = agent_of("") else {
                    return Ok(agent_refused(&run.app, "the caller is not an agent"));
                };
                let reason = run.data.trim();
                // From the presence, not the state shown: wrap-up hides a break under it.
                let on_break = self.acd.is_on_break(agent);
                let (input, prompt) = if on_break {
                    (Input::Available(agent), "agent-logged-in")
                } else {
                    let reason = if reason.is_empty() { "break" } else { reason };
                    (
                        Input::Break {
                            agent,
                            reason: reason.to_owned(),
                        },
                        "agent-on-break",
                    )
                };
                return Ok(self.agent_feature(&run, input, prompt));
            }
            other => return Err(AcdError::UnknownApplication(other.to_owned())),
        };
        let Some(agent) = agent_of(&run.data) else {
            return Ok(agent_refused(&run.app, "the caller is not an agent"));
        };
        Ok(self.agent_feature(&run, input(agent), &prompt))
    }

    /// A feature code from an agent's phone: the state change, then a prompt saying it. A
    /// change that makes the agent available waits for the end of this call: offered at
    /// once, the next caller would ring the phone that is still hearing the prompt.
    fn agent_feature(&mut self, run: &AppRun, input: Input, prompt: &str) -> Handled {
        let app = run.app.as_str();
        let becomes_available = match &input {
            Input::Login(agent) | Input::Available(agent) => Some(*agent),
            _ => None,
        };
        if let Some(agent) = becomes_available {
            if self.acd.agent_state(agent, self.now).is_none() {
                return agent_refused(app, &AcdError::UnknownAgent(agent).to_string());
            }
            self.deferred.insert(run.uuid.clone(), input);
            return Handled {
                reply: actions(&[
                    ("answer", ""),
                    ("set", &format!("agent_result={prompt}")),
                    ("playback", prompt),
                ]),
                sends: Vec::new(),
            };
        }
        match self.acd.handle_input(self.now, input) {
            Ok(()) => Handled {
                reply: actions(&[
                    ("answer", ""),
                    ("set", &format!("agent_result={prompt}")),
                    ("playback", prompt),
                ]),
                sends: self.drain(),
            },
            Err(error) => agent_refused(app, &error.to_string()),
        }
    }

    /// `queue NAME`: the caller joins the queue and is held on its music; the plan goes on
    /// after `queue` only if the caller leaves it by timeout (`queue_result`).
    fn enter_queue(&mut self, run: &AppRun) -> Handled {
        let name = run.data.split(['@', ' ']).next().unwrap_or_default().trim();
        let refuse = |why: String| Handled {
            reply: actions(&[
                ("log", &format!("WARNING queue: {why}")),
                ("set", "queue_result=refused"),
            ]),
            sends: Vec::new(),
        };
        let Some(settings) = self.config.voice.get(name).cloned() else {
            return refuse(format!("no queue {name:?}"));
        };
        match self.calls.get(&run.uuid).map(|c| c.phase.clone()) {
            // Left one queue (timeout, overflow to an IVR...): it may join another.
            Some(Phase::Left) => {
                self.forget(&run.uuid);
            }
            Some(_) => return refuse(format!("{} is already in a queue", run.uuid)),
            None => {}
        }
        let var = |name: &str| run.variables.get(name).and_then(Value::as_str);
        // The caller's language, when the plan chose one we have prompts for.
        let language = var("language")
            .filter(|l| matches!(*l, "en" | "zh"))
            .unwrap_or(&settings.language)
            .to_owned();
        let caller = var("caller_id_number").unwrap_or_default();
        let id = InteractionId(self.next_interaction);
        self.next_interaction += 1;
        let mut interaction = Interaction::new(id, Channel::Voice, name, caller);
        interaction.arrived_at = self.now;
        interaction.priority = var("queue_priority")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0);
        // `queue_skills=english:50,billing:30`: what this caller needs.
        interaction.skills = var("queue_skills").map(parse_skills).unwrap_or_default();
        self.calls.insert(
            run.uuid.clone(),
            QueuedCall {
                interaction: id,
                language: language.clone(),
                phase: Phase::Waiting,
                phase_since: self.now,
                next_comfort: settings.comfort_every_ms.map(|every| self.now + every),
            },
        );
        self.by_interaction.insert(id, run.uuid.clone());
        if let Err(error) = self.acd.handle_input(self.now, Input::Arrive(interaction)) {
            self.forget(&run.uuid);
            return refuse(error.to_string());
        }
        let mut steps: Vec<(&str, String)> = vec![
            ("answer", String::new()),
            ("set", format!("queue={name}")),
            ("set", format!("language={language}")),
            ("set", "queue_result=".into()),
            ("set", "hangup_after_bridge=true".into()),
            ("set", "continue_on_fail=true".into()),
            ("set", format!("transfer_ringback={}", settings.moh)),
        ];
        if !settings.greeting.is_empty() {
            steps.push(("playback", settings.greeting.clone()));
        }
        steps.push(("moh", settings.moh.clone()));
        let refs: Vec<(&str, &str)> = steps.iter().map(|(a, d)| (*a, d.as_str())).collect();
        Handled {
            reply: actions(&refs),
            sends: self.drain(),
        }
    }

    // ----- events ------------------------------------------------------------------------------

    fn event(&mut self, event: &Event) -> Vec<Send> {
        let mut sends = Vec::new();
        let result = match event.event.as_str() {
            "tick" => self.tick(&mut sends),
            "call.answered" => self.answered(event, &mut sends),
            "call.ended" => self.ended(event, &mut sends),
            "bridge.failed" => self.bridge_failed(event, &mut sends),
            "originate.failed" => self.callback_leg_failed(event),
            "dtmf" => {
                self.digit(event, &mut sends);
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(error) = result {
            // The core refused an input that no longer applies (a race between the switch
            // and the core's own expiry); its state is unchanged and still consistent.
            sends.push(log_send("warn", &format!("{}: {error}", event.event)));
        }
        sends.extend(self.drain());
        sends
    }

    fn tick(&mut self, sends: &mut Vec<Send>) -> Result<(), AcdError> {
        self.acd.handle_input(self.now, Input::Tick)?;
        self.requeue_callbacks(sends);
        // The switch answers `uuid_bridge_cancel` with `bridge.failed` at once. A call still
        // waiting for it had no bridge to cancel (the `uuid_exec ... bridge` line was
        // refused): it goes back to waiting, or it would never be offered again.
        let stuck: Vec<InteractionId> = self
            .calls
            .values_mut()
            .filter(|c| {
                matches!(c.phase, Phase::Cancelling(_)) && c.phase_since + CANCEL_ACK_MS <= self.now
            })
            .map(|c| {
                c.phase = Phase::Waiting;
                c.phase_since = self.now;
                c.interaction
            })
            .collect();
        for id in stuck {
            sends.push(log_send(
                "warn",
                &format!(
                    "interaction {}: the bridge cancel was never acknowledged",
                    id.0
                ),
            ));
            self.ring(id, sends);
        }
        // Comfort prompts: only to callers held on music (not while an agent rings).
        let now = self.now;
        let mut due = Vec::new();
        for (uuid, call) in &mut self.calls {
            let Some(at) = call.next_comfort.filter(|&at| at <= now) else {
                continue;
            };
            let Some(queue) = self.acd.queue_of(call.interaction) else {
                continue;
            };
            let Some(settings) = self.config.voice.get(queue) else {
                continue;
            };
            let every = settings.comfort_every_ms.unwrap_or(u64::MAX / 4);
            call.next_comfort = Some(at.max(now.saturating_sub(every)) + every);
            if call.phase == Phase::Waiting {
                let mut prompt = settings.comfort_prompt.clone();
                if settings.callback_digit.is_some() {
                    prompt.push_str("!leave-callback");
                }
                due.push((uuid.clone(), prompt));
            }
        }
        due.sort();
        for (uuid, prompt) in due {
            sends.push(Send::console(format!("uuid_exec {uuid} playback {prompt}")));
        }
        Ok(())
    }

    fn answered(&mut self, event: &Event, sends: &mut Vec<Send>) -> Result<(), AcdError> {
        if let Some(id) = self.callback_of(event) {
            return self.callback_answered(id, event, sends);
        }
        let Some(call) = self.calls.get_mut(&event.uuid) else {
            return Ok(());
        };
        if !event.bridged || !matches!(call.phase, Phase::Ringing(_) | Phase::Cancelling(_)) {
            return Ok(());
        }
        call.phase = Phase::Connected;
        let interaction = call.interaction;
        let agent = self.config.by_callee.get(&event.callee).copied();
        let taken = agent.map(|agent| {
            self.acd
                .handle_input(self.now, Input::OfferAnswered { interaction, agent })
        });
        if let Some(Ok(())) = taken {
            return Ok(());
        }
        // Somebody the core cannot credit answered (not an agent, or an agent already on
        // another call): the caller is talking to a person, so the interaction leaves the
        // queue rather than being offered again under it.
        sends.push(log_send(
            "warn",
            &format!(
                "{} answered by {:?}, whom the ACD cannot credit ({}): it leaves the queue",
                event.uuid,
                event.callee,
                match taken {
                    Some(Err(error)) => error.to_string(),
                    _ => "no agent".into(),
                }
            ),
        ));
        self.acd.handle_input(self.now, Input::Abandon(interaction))
    }

    /// A callback's agent leg answered (the agent, then the customer on the same leg).
    fn callback_answered(
        &mut self,
        id: InteractionId,
        event: &Event,
        sends: &mut Vec<Send>,
    ) -> Result<(), AcdError> {
        let Some(callback) = self.callbacks.get_mut(&id) else {
            return Ok(());
        };
        if let Some((leg, _)) = &callback.answered {
            if *leg == event.uuid && event.bridged {
                callback.reached = true;
            }
            return Ok(());
        }
        let Some((&agent, _)) = callback.legs.iter().find(|(_, leg)| **leg == event.uuid) else {
            return Ok(());
        };
        callback.legs.remove(&agent);
        match self.acd.handle_input(
            self.now,
            Input::OfferAnswered {
                interaction: id,
                agent,
            },
        ) {
            Ok(()) => {
                if let Some(callback) = self.callbacks.get_mut(&id) {
                    callback.answered = Some((event.uuid.clone(), agent));
                }
                Ok(())
            }
            Err(error) => {
                // The offer is gone and the agent cannot take it late: drop the leg before
                // it calls the customer.
                sends.push(Send::console(format!("uuid_kill {}", event.uuid)));
                Err(error)
            }
        }
    }

    fn ended(&mut self, event: &Event, sends: &mut Vec<Send>) -> Result<(), AcdError> {
        if let Some(input) = self.deferred.remove(&event.uuid) {
            // The agent hung up after the feature code: now available.
            self.acd.handle_input(self.now, input)?;
        }
        if let Some(id) = self.callback_of(event) {
            return self.callback_leg_ended(id, event, sends);
        }
        let Some(call) = self.forget(&event.uuid) else {
            return Ok(());
        };
        let id = call.interaction;
        match call.phase {
            Phase::Connected if self.acd.is_answered(id) => {
                self.acd.handle_input(self.now, Input::ContactEnded(id))
            }
            // The customer hung up after asking for a callback: the place is kept.
            _ if self.callbacks.contains_key(&id) => Ok(()),
            Phase::Left => Ok(()),
            _ if self.acd.queue_of(id).is_some() => {
                let _ = sends;
                self.acd.handle_input(self.now, Input::Abandon(id))
            }
            _ => Ok(()),
        }
    }

    fn bridge_failed(&mut self, event: &Event, sends: &mut Vec<Send>) -> Result<(), AcdError> {
        let Some(call) = self.calls.get_mut(&event.uuid) else {
            return Ok(());
        };
        let id = call.interaction;
        let (rung, ours) = match std::mem::replace(&mut call.phase, Phase::Waiting) {
            Phase::Ringing(agents) => (agents, false),
            // The bridge may have failed on its own before our cancel reached it.
            Phase::Cancelling(agents) => (agents, event.cause == "ORIGINATOR_CANCEL"),
            other => {
                call.phase = other;
                return Ok(());
            }
        };
        // A cancel we sent ourselves leaves the core's offers alone: they ring again below.
        let rung = if ours { Vec::new() } else { rung };
        // The agents still offered that we rang did not answer. When the bridge simply ran
        // out of time, only those whose own offer rang (nearly) its whole time are charged:
        // an agent added later (ring-progressively) is rung again for what it has left.
        let ran_out = matches!(
            event.cause.as_str(),
            "NO_ANSWER" | "NO_USER_RESPONSE" | "RECOVERY_ON_TIMER_EXPIRE"
        );
        let live = self.acd.offered_to(id);
        for agent in rung.into_iter().filter(|a| live.contains(a)) {
            let time_left = self
                .acd
                .offer_deadline_of(id, agent)
                .map_or(0, |deadline| deadline.saturating_sub(self.now));
            if ran_out && time_left > OFFER_GRACE_MS {
                continue;
            }
            self.acd.handle_input(
                self.now,
                Input::OfferNoAnswer {
                    interaction: id,
                    agent,
                },
            )?;
        }
        // Offers still live (the bridge we cancelled to add an agent) ring again now; new
        // ones come through the drain.
        self.ring(id, sends);
        Ok(())
    }

    fn digit(&mut self, event: &Event, sends: &mut Vec<Send>) {
        let Some(digit) = event
            .digit
            .as_deref()
            .or(event.digits.as_deref())
            .and_then(|d| d.chars().next())
        else {
            return;
        };
        let Some(call) = self.calls.get_mut(&event.uuid) else {
            return;
        };
        let id = call.interaction;
        let Some(queue) = self.acd.queue_of(id).map(str::to_owned) else {
            return;
        };
        let Some(settings) = self.config.voice.get(&queue) else {
            return;
        };
        if settings.callback_digit != Some(digit) || call.phase != Phase::Waiting {
            return;
        }
        let number = event
            .variable("caller_id_number")
            .unwrap_or_default()
            .to_owned();
        // The number goes into an `originate` line: a caller-supplied value with anything
        // but letters, digits and `+` (a From user part may hold `}`, `,` or spaces) could
        // change what the line says, so such a caller is not offered the callback.
        if number.is_empty()
            || !number
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+')
        {
            return;
        }
        call.phase = Phase::Left;
        self.callbacks.insert(
            id,
            Callback {
                number: number.clone(),
                queue: queue.clone(),
                origin: event.uuid.clone(),
                legs: BTreeMap::new(),
                answered: None,
                reached: false,
                attempt: 1,
            },
        );
        sends.push(queue_log(
            &queue,
            &event.uuid,
            None,
            "CALLBACK",
            json!({ "number": number }),
        ));
        sends.push(Send::console(format!(
            "transfer {} playback:callback-confirmed,hangup inline",
            event.uuid
        )));
    }

    fn callback_of(&self, event: &Event) -> Option<InteractionId> {
        event
            .variable("acd_callback")
            .and_then(|id| id.parse().ok())
            .map(InteractionId)
            .filter(|id| self.callbacks.contains_key(id))
    }

    /// A callback's agent leg ended. The answered one ends the contact; when the customer
    /// was never reached on it, the callback joins the queue again (up to
    /// [`CALLBACK_ATTEMPTS`]), keeping its origin so the log rows still join up.
    fn callback_leg_ended(
        &mut self,
        id: InteractionId,
        event: &Event,
        sends: &mut Vec<Send>,
    ) -> Result<(), AcdError> {
        let Some(callback) = self.callbacks.get(&id) else {
            return Ok(());
        };
        if callback.answered.as_ref().map(|(leg, _)| leg) != Some(&event.uuid) {
            // A leg that never answered: originate.failed said what it had to.
            if let Some(callback) = self.callbacks.get_mut(&id) {
                callback.legs.retain(|_, leg| *leg != event.uuid);
            }
            return Ok(());
        }
        let callback = self.callbacks.remove(&id).expect("checked");
        self.acd.handle_input(self.now, Input::ContactEnded(id))?;
        if callback.reached {
            self.forgotten.push(id);
            return Ok(());
        }
        let event_name = if callback.attempt < CALLBACK_ATTEMPTS {
            "CALLBACK_RETRY"
        } else {
            "CALLBACK_FAILED"
        };
        sends.push(queue_log(
            &callback.queue,
            &callback.origin,
            None,
            event_name,
            json!({ "number": callback.number, "attempt": callback.attempt }),
        ));
        self.forgotten.push(id);
        if callback.attempt >= CALLBACK_ATTEMPTS {
            return Ok(());
        }
        // Back in line after a pause (the customer may be busy a minute), ahead of new
        // callers (one priority step).
        let retry = InteractionId(self.next_interaction);
        self.next_interaction += 1;
        let mut interaction =
            Interaction::new(retry, Channel::Voice, &callback.queue, &callback.number);
        interaction.arrived_at = self.now;
        interaction.priority = 1;
        self.by_interaction.insert(retry, callback.origin.clone());
        self.callbacks.insert(
            retry,
            Callback {
                legs: BTreeMap::new(),
                answered: None,
                reached: false,
                attempt: callback.attempt + 1,
                ..callback
            },
        );
        self.retries
            .push((self.now + CALLBACK_RETRY_DELAY_MS, interaction));
        Ok(())
    }

    /// Callback retries whose pause is over join their queue.
    fn requeue_callbacks(&mut self, sends: &mut Vec<Send>) {
        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retries)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.retries = later;
        for (_, mut interaction) in due {
            let retry = interaction.id;
            interaction.arrived_at = now;
            if let Err(error) = self.acd.handle_input(now, Input::Arrive(interaction)) {
                // The queue went away (a reload removed it): the callback cannot be queued.
                let Some(callback) = self.callbacks.remove(&retry) else {
                    continue;
                };
                self.by_interaction.remove(&retry);
                sends.push(queue_log(
                    &callback.queue,
                    &callback.origin,
                    None,
                    "CALLBACK_FAILED",
                    json!({ "number": callback.number, "attempt": callback.attempt,
                            "reason": error.to_string() }),
                ));
            }
        }
    }

    fn callback_leg_failed(&mut self, event: &Event) -> Result<(), AcdError> {
        let Some(id) = self.callback_of(event) else {
            return Ok(());
        };
        let Some(agent) = event
            .variable("acd_agent")
            .and_then(|a| a.parse().ok())
            .map(AgentId)
        else {
            return Ok(());
        };
        let Some(callback) = self.callbacks.get_mut(&id) else {
            return Ok(());
        };
        if callback.legs.get(&agent) != Some(&event.uuid) && !event.uuid.is_empty() {
            return Ok(());
        }
        callback.legs.remove(&agent);
        if self.acd.offered_to(id).contains(&agent) {
            return self.acd.handle_input(
                self.now,
                Input::OfferNoAnswer {
                    interaction: id,
                    agent,
                },
            );
        }
        Ok(())
    }

    /// The call is gone; its uuid stays known until the next drain has logged the rows of
    /// its end (ABANDON, COMPLETE) under it.
    fn forget(&mut self, uuid: &str) -> Option<QueuedCall> {
        let call = self.calls.remove(uuid)?;
        self.forgotten.push(call.interaction);
        Some(call)
    }

    // ----- what the core decided -------------------------------------------------------------

    /// Drains the core and turns its outputs into messages for the host.
    fn drain(&mut self) -> Vec<Send> {
        let mut sends = Vec::new();
        let mut offered: Vec<InteractionId> = Vec::new();
        let mut withdrawn: Vec<(InteractionId, AgentId)> = Vec::new();
        while let Some(output) = self.acd.poll_output() {
            match output {
                Output::Offer { interaction, .. } => {
                    if !offered.contains(&interaction) {
                        offered.push(interaction);
                    }
                }
                Output::CancelOffer { interaction, agent } => {
                    withdrawn.push((interaction, agent));
                }
                Output::Overflow {
                    interaction,
                    target,
                } => self.overflow(interaction, &target, &mut sends),
                Output::Timeout { interaction, .. } => self.time_out(interaction, &mut sends),
                Output::Announce {
                    interaction,
                    position,
                    estimated_wait_ms,
                } => self.announce(interaction, position, estimated_wait_ms, &mut sends),
                Output::Log(row) => self.log_row(&row, &mut sends),
            }
        }
        for (interaction, agent) in withdrawn {
            self.withdraw(interaction, agent, &mut sends);
        }
        for interaction in offered {
            self.ring(interaction, &mut sends);
        }
        for id in std::mem::take(&mut self.forgotten) {
            // A callback keeps its place after its caller hung up.
            if !self.callbacks.contains_key(&id) {
                self.by_interaction.remove(&id);
            }
        }
        sends
    }

    /// Rings the agents the core offers `interaction` to, if the call can take a command.
    fn ring(&mut self, id: InteractionId, sends: &mut Vec<Send>) {
        let agents = self.acd.offered_to(id);
        if agents.is_empty() {
            return;
        }
        if self.callbacks.contains_key(&id) {
            return self.ring_callback(id, &agents, sends);
        }
        let Some(uuid) = self.by_interaction.get(&id).cloned() else {
            return;
        };
        let Some(queue) = self.acd.queue_of(id).map(str::to_owned) else {
            return;
        };
        let timeout_s = self.bridge_timeout_s(id, &queue);
        let Some(call) = self.calls.get_mut(&uuid) else {
            return;
        };
        match &call.phase {
            Phase::Waiting => {
                let targets: Vec<&str> = agents
                    .iter()
                    .filter_map(|a| self.config.contacts.get(a).map(String::as_str))
                    .collect();
                if targets.is_empty() {
                    return;
                }
                sends.push(Send::console(format!(
                    "uuid_exec {uuid} bridge {{call_timeout={timeout_s},acd_queue={queue}}}{}",
                    targets.join(",")
                )));
                call.phase = Phase::Ringing(agents);
                call.phase_since = self.now;
            }
            Phase::Ringing(rung) if agents.iter().any(|a| !rung.contains(a)) => {
                // One more agent to ring (ring-progressively, or an agent free during a
                // ring-all): added to the bridge, the phones already ringing go on ringing.
                let added: Vec<AgentId> = agents
                    .iter()
                    .filter(|a| !rung.contains(a))
                    .copied()
                    .collect();
                for agent in &added {
                    if let Some(contact) = self.config.contacts.get(agent) {
                        sends.push(Send::console(format!("uuid_bridge_add {uuid} {contact}")));
                    }
                }
                let mut rung = rung.clone();
                rung.extend(added);
                call.phase = Phase::Ringing(rung);
            }
            _ => {}
        }
    }

    /// The bridge's own timeout fires a second before the core would expire the oldest offer
    /// it rings (a bridge placed again keeps the time its first agent has left), so the
    /// switch reports the no-answer and the core's expiry stays a safety net.
    fn bridge_timeout_s(&self, id: InteractionId, queue: &str) -> u64 {
        let offer_ms = self
            .acd
            .queue_config(queue)
            .map_or(20_000, |q| q.offer_timeout_ms);
        let left_ms = self
            .acd
            .offer_deadline(id)
            .map_or(offer_ms, |deadline| deadline.saturating_sub(self.now));
        (left_ms / 1000).saturating_sub(1).max(1)
    }

    fn ring_callback(&mut self, id: InteractionId, agents: &[AgentId], sends: &mut Vec<Send>) {
        let timeout_s = self
            .acd
            .queue_of(id)
            .map(|q| self.bridge_timeout_s(id, q))
            .unwrap_or(19);
        let Some(callback) = self.callbacks.get_mut(&id) else {
            return;
        };
        // The queue it is in now: an overflow to another queue may have moved it.
        if let Some(queue) = self.acd.queue_of(id) {
            queue.clone_into(&mut callback.queue);
        }
        let Some(settings) = self.config.voice.get(&callback.queue) else {
            return;
        };
        let dial = settings.callback_dial.replace("{number}", &callback.number);
        for agent in agents {
            if callback.legs.contains_key(agent) || callback.answered.is_some() {
                continue;
            }
            let Some(contact) = self.config.contacts.get(agent) else {
                continue;
            };
            // Named by us, so a withdrawn offer can hang up its leg before any event came.
            let leg = format!("acd-callback-{}-{}-{}", id.0, agent.0, self.next_leg);
            self.next_leg += 1;
            sends.push(Send::console(format!(
                "originate {{origination_uuid={leg},acd_callback={},acd_agent={},acd_queue={},origination_caller_id_number={},originate_timeout={timeout_s},hangup_after_bridge=true}}{contact} &bridge({dial})",
                id.0, agent.0, callback.queue, callback.number
            )));
            callback.legs.insert(*agent, leg);
        }
    }

    /// The core took an offer back: stop the agent's phone ringing.
    fn withdraw(&mut self, id: InteractionId, agent: AgentId, sends: &mut Vec<Send>) {
        if let Some(callback) = self.callbacks.get_mut(&id) {
            if let Some(leg) = callback.legs.remove(&agent) {
                sends.push(Send::console(format!("uuid_kill {leg}")));
            }
            return;
        }
        let Some(uuid) = self.by_interaction.get(&id) else {
            return;
        };
        let Some(call) = self.calls.get_mut(uuid) else {
            return;
        };
        let Phase::Ringing(rung) = &call.phase else {
            return;
        };
        if !rung.contains(&agent) {
            return;
        }
        // Other agents still ring for this caller: only this one's phone stops.
        let live = self.acd.offered_to(id);
        let others: Vec<AgentId> = rung
            .iter()
            .filter(|a| **a != agent && live.contains(a))
            .copied()
            .collect();
        if let (false, Some(contact)) = (others.is_empty(), self.config.contacts.get(&agent)) {
            sends.push(Send::console(format!(
                "uuid_bridge_remove {uuid} {contact}"
            )));
            call.phase = Phase::Ringing(rung.iter().filter(|a| **a != agent).copied().collect());
            return;
        }
        sends.push(Send::console(format!("uuid_bridge_cancel {uuid}")));
        call.phase = Phase::Cancelling(rung.clone());
        call.phase_since = self.now;
    }

    fn overflow(&mut self, id: InteractionId, target: &OverflowTarget, sends: &mut Vec<Send>) {
        if matches!(target, OverflowTarget::Queue(_)) {
            // The core moved it; the caller stays on hold (a callback keeps its place there).
            return;
        }
        if let Some(callback) = self.callbacks.remove(&id) {
            // The customer already hung up: there is nobody to send elsewhere.
            return self.callback_expired(id, callback, sends);
        }
        let Some(uuid) = self.leave(id, sends) else {
            return;
        };
        match target {
            OverflowTarget::Extension(extension) => {
                sends.push(Send::console(format!("transfer {uuid} {extension}")))
            }
            OverflowTarget::Ivr(menu) => {
                sends.push(Send::console(format!("transfer {uuid} ivr:{menu} inline")))
            }
            OverflowTarget::Queue(_) => {}
        }
    }

    /// Nobody could take the callback in time (or the queue sent it away): it is dropped,
    /// and said so in the log.
    fn callback_expired(&mut self, id: InteractionId, callback: Callback, sends: &mut Vec<Send>) {
        for leg in callback.legs.values() {
            sends.push(Send::console(format!("uuid_kill {leg}")));
        }
        sends.push(queue_log(
            &callback.queue,
            &callback.origin,
            None,
            "CALLBACK_EXPIRED",
            json!({ "number": callback.number }),
        ));
        self.by_interaction.remove(&id);
    }

    /// The caller leaves the queue (timeout, overflow): a bridge still ringing agents is
    /// cancelled first, which puts the call back on hold, where the next console line finds
    /// it. Returns the call's uuid.
    fn leave(&mut self, id: InteractionId, sends: &mut Vec<Send>) -> Option<String> {
        let uuid = self.by_interaction.get(&id).cloned()?;
        let call = self.calls.get_mut(&uuid)?;
        if matches!(call.phase, Phase::Ringing(_) | Phase::Cancelling(_)) {
            sends.push(Send::console(format!("uuid_bridge_cancel {uuid}")));
        }
        call.phase = Phase::Left;
        // What the queue set for its own bridges must not steer the plan's next ones.
        for variable in QUEUE_VARIABLES {
            sends.push(Send::console(format!("uuid_exec {uuid} unset {variable}")));
        }
        Some(uuid)
    }

    fn time_out(&mut self, id: InteractionId, sends: &mut Vec<Send>) {
        if let Some(callback) = self.callbacks.remove(&id) {
            return self.callback_expired(id, callback, sends);
        }
        let Some(uuid) = self.leave(id, sends) else {
            return;
        };
        sends.push(Send::console(format!(
            "uuid_exec {uuid} set queue_result=timeout"
        )));
        sends.push(Send::console(format!("uuid_break {uuid}")));
    }

    fn announce(
        &mut self,
        id: InteractionId,
        position: usize,
        estimated_wait_ms: Option<Millis>,
        sends: &mut Vec<Send>,
    ) {
        let Some(uuid) = self.by_interaction.get(&id) else {
            return;
        };
        let Some(call) = self.calls.get(uuid) else {
            return;
        };
        if call.phase != Phase::Waiting {
            return;
        }
        let language = call.language.as_str();
        let mut prompts = u32::try_from(position)
            .ok()
            .and_then(|p| switchyard_dsp::say::caller_position(language, p))
            .unwrap_or_default();
        if let Some(wait) = estimated_wait_ms {
            // Whole minutes, rounded to the nearest; under half a minute is "less than one".
            let minutes = u32::try_from((wait + 30_000) / 60_000).unwrap_or(u32::MAX);
            prompts
                .extend(switchyard_dsp::say::estimated_wait(language, minutes).unwrap_or_default());
        }
        if prompts.is_empty() {
            return;
        }
        // The prompts come from the call's language set (`language`, set on entry).
        sends.push(Send::console(format!(
            "uuid_exec {uuid} playback {}",
            prompts.join("!")
        )));
    }

    /// A queue-log row for the store, and the state it changed as an event.
    fn log_row(&self, row: &QueueLogRow, sends: &mut Vec<Send>) {
        let uuid = row
            .interaction
            .and_then(|id| self.by_interaction.get(&id))
            .cloned()
            .unwrap_or_default();
        let (event, data) = queue_event(&row.event);
        let agent = row.agent.map(|a| a.0.to_string());
        sends.push(queue_log(&row.queue, &uuid, agent.as_deref(), event, data));
        if let Some(agent) = row.agent
            && let Some(state) = self.acd.agent_state(agent, self.now)
        {
            sends.push(Send {
                name: "event",
                body: json!({
                    "event": "acd.agent",
                    "agent": agent.0,
                    "state": state_name(&state),
                    "queue": row.queue,
                    "change": event,
                }),
            });
        }
        if !row.queue.is_empty()
            && let Some(stats) = self.acd.queue_stats(&row.queue, self.now)
        {
            sends.push(Send {
                name: "event",
                body: json!({
                    "event": "acd.queue",
                    "queue": row.queue,
                    "change": event,
                    "waiting": stats.waiting,
                    "longest_wait_ms": stats.longest_wait_ms,
                    "answered": stats.answered,
                    "abandoned": stats.abandoned,
                    "service_level": stats.service_level(),
                }),
            });
        }
    }

    // ----- console ---------------------------------------------------------------------------

    fn command(&mut self, command: &Command) -> Handled {
        let words: Vec<&str> = command.args.split_whitespace().collect();
        let result = match (command.command.as_str(), words.as_slice()) {
            ("queue", [] | ["show"] | ["list"]) => Ok(self.queue_text(None)),
            ("queue", ["show", name]) => {
                if self.acd.queue_names().any(|q| q == *name) {
                    Ok(self.queue_text(Some(name)))
                } else {
                    Err(format!("no queue {name}"))
                }
            }
            ("agent", [] | ["show"] | ["list"]) => Ok(self.agent_text(None)),
            ("agent", ["show", id]) => match id.parse().map(AgentId) {
                Ok(agent) if self.acd.agent_state(agent, self.now).is_some() => {
                    Ok(self.agent_text(Some(agent)))
                }
                _ => Err(format!("no agent {id}")),
            },
            (
                "agent",
                [
                    verb @ ("login" | "logout" | "available" | "break"),
                    id,
                    reason @ ..,
                ],
            ) => match id.parse().map(AgentId) {
                Ok(agent) => {
                    let input = match *verb {
                        "login" => Input::Login(agent),
                        "logout" => Input::Logout(agent),
                        "available" => Input::Available(agent),
                        _ => Input::Break {
                            agent,
                            reason: if reason.is_empty() {
                                "break".into()
                            } else {
                                reason.join(" ")
                            },
                        },
                    };
                    self.acd
                        .handle_input(self.now, input)
                        .map(|()| {
                            let state = self
                                .acd
                                .agent_state(agent, self.now)
                                .map(|s| state_name(&s))
                                .unwrap_or_default();
                            format!("agent {} {state}\n", agent.0)
                        })
                        .map_err(|e| e.to_string())
                }
                Err(_) => Err(format!("agent id {id:?} is not a number")),
            },
            ("acd", ["reload"]) => match self.file.clone() {
                Some(path) => match self.load(&path) {
                    Ok(sends) => {
                        let text = format!(
                            "{} reloaded: {} queue(s), {} agent(s); nobody logged out\n",
                            path.display(),
                            self.config.voice.len(),
                            self.config.contacts.len()
                        );
                        return Handled {
                            reply: json!({ "ok": true, "text": text }),
                            sends,
                        };
                    }
                    Err(error) => Err(format!("{error}; the previous configuration stays")),
                },
                None => Err("mod_acd has no configuration file".into()),
            },
            ("queue", _) => Err(COMMANDS[0].1.replace(": ", " — ")),
            ("agent", _) => Err(format!("usage: {}", COMMANDS[1].1)),
            ("acd", _) => Err("usage: acd reload".into()),
            (other, _) => Err(format!("mod_acd has no command {other}")),
        };
        let reply = match result {
            Ok(text) => json!({ "ok": true, "text": text }),
            Err(error) => json!({ "ok": false, "error": error }),
        };
        Handled {
            reply,
            sends: self.drain(),
        }
    }

    fn queue_text(&self, only: Option<&str>) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<12} {:<26} {:>7} {:>8} {:>8} {:>9} {:>9} {:>6} {:>6} {:>6}",
            "queue",
            "strategy",
            "waiting",
            "longest",
            "answered",
            "abandoned",
            "overflow",
            "SL%",
            "ASA",
            "AHT"
        );
        let names: Vec<&str> = self
            .acd
            .queue_names()
            .filter(|n| only.is_none_or(|o| o == *n))
            .collect();
        for name in &names {
            let (Some(stats), Some(cfg)) = (
                self.acd.queue_stats(name, self.now),
                self.acd.queue_config(name),
            ) else {
                continue;
            };
            let strategy = serde_json::to_value(cfg.strategy)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let pct = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.1}", v * 100.0));
            let secs = |v: Option<Millis>| v.map_or("-".into(), |v| format!("{}s", v / 1000));
            let _ = writeln!(
                out,
                "{:<12} {:<26} {:>7} {:>8} {:>8} {:>9} {:>9} {:>6} {:>6} {:>6}",
                name,
                strategy,
                stats.waiting,
                format!("{}s", stats.longest_wait_ms / 1000),
                stats.answered,
                stats.abandoned,
                stats.overflowed,
                pct(stats.service_level()),
                secs(stats.average_speed_of_answer_ms()),
                secs(stats.average_handle_time_ms()),
            );
        }
        if let Some(name) = only {
            for (position, id) in self.acd.waiting(name).into_iter().enumerate() {
                let uuid = match self.callbacks.get(&id) {
                    Some(callback) => format!("(callback) {}", callback.number),
                    None => self.by_interaction.get(&id).cloned().unwrap_or_default(),
                };
                let ringing: Vec<String> = self
                    .acd
                    .offered_to(id)
                    .iter()
                    .map(|a| a.0.to_string())
                    .collect();
                let _ = writeln!(
                    out,
                    "  {:>3}. {uuid}{}",
                    position + 1,
                    if ringing.is_empty() {
                        String::new()
                    } else {
                        format!(" ringing {}", ringing.join(","))
                    }
                );
            }
        }
        let _ = writeln!(out, "{} queue(s)", names.len());
        out
    }

    fn agent_text(&self, only: Option<AgentId>) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<6} {:<24} {:<30} {:>7} {:>9} {:>9} {:>9}",
            "agent", "state", "contact", "handled", "no-answer", "talk", "occupancy"
        );
        let ids: Vec<AgentId> = self
            .acd
            .agent_ids()
            .filter(|a| only.is_none_or(|o| o == *a))
            .collect();
        for id in &ids {
            let (Some(state), Some(stats)) = (
                self.acd.agent_state(*id, self.now),
                self.acd.agent_stats(*id, self.now),
            ) else {
                continue;
            };
            let _ = writeln!(
                out,
                "{:<6} {:<24} {:<30} {:>7} {:>9} {:>8}s {:>9}",
                id.0,
                state_name(&state),
                self.config.contacts.get(id).map_or("-", String::as_str),
                stats.answered,
                stats.no_answers,
                stats.talk_ms / 1000,
                stats
                    .occupancy()
                    .map_or("-".into(), |o| format!("{:.1}%", o * 100.0)),
            );
        }
        let _ = writeln!(out, "{} agent(s)", ids.len());
        out
    }
}

/// An agent's state as the console and events name it.
pub fn state_name(state: &AgentState) -> String {
    match state {
        AgentState::Offline => "offline".into(),
        AgentState::Available => "available".into(),
        AgentState::Reserved(_) => "reserved".into(),
        AgentState::OnContact(_) => "on-contact".into(),
        AgentState::WrapUp { .. } => "wrap-up".into(),
        AgentState::Break(reason) => format!("break({reason})"),
    }
}

/// A queue-log event's name (Asterisk queue_log style) and its details.
fn queue_event(event: &QueueEvent) -> (&'static str, Value) {
    match event {
        QueueEvent::EnterQueue { caller } => ("ENTERQUEUE", json!({ "caller": caller })),
        QueueEvent::Offer => ("OFFER", json!({})),
        QueueEvent::OfferCancelled => ("OFFERCANCELLED", json!({})),
        QueueEvent::RingNoAnswer => ("RINGNOANSWER", json!({})),
        QueueEvent::Connect { waited_ms } => ("CONNECT", json!({ "waited_ms": waited_ms })),
        QueueEvent::Abandon { waited_ms } => ("ABANDON", json!({ "waited_ms": waited_ms })),
        QueueEvent::ExitWithTimeout { waited_ms } => {
            ("EXITWITHTIMEOUT", json!({ "waited_ms": waited_ms }))
        }
        QueueEvent::Overflow { target } => ("OVERFLOW", json!({ "target": target })),
        QueueEvent::Complete { talk_ms } => ("COMPLETE", json!({ "talk_ms": talk_ms })),
        QueueEvent::AgentLogin => ("AGENTLOGIN", json!({})),
        QueueEvent::AgentLogout => ("AGENTLOGOFF", json!({})),
        QueueEvent::AgentBreak { reason } => ("PAUSE", json!({ "reason": reason })),
        QueueEvent::AgentAvailable => ("UNPAUSE", json!({})),
        QueueEvent::WrapUpEnd => ("WRAPUPEND", json!({})),
    }
}

fn queue_log(queue: &str, uuid: &str, agent: Option<&str>, event: &str, data: Value) -> Send {
    Send {
        name: "queue_log",
        body: json!({
            "queue": queue,
            "call_uuid": uuid,
            "agent": agent.unwrap_or_default(),
            "event": event,
            "data": data,
        }),
    }
}

fn log_send(level: &str, message: &str) -> Send {
    Send {
        name: "log",
        body: json!({ "level": level, "message": message }),
    }
}

fn parse_skills(text: &str) -> Vec<SkillRequirement> {
    text.split(',')
        .filter_map(|pair| {
            let (skill, level) = pair.split_once(':').unwrap_or((pair, "0"));
            let skill = skill.trim();
            (!skill.is_empty()).then(|| SkillRequirement {
                skill: skill.to_owned(),
                level: level.trim().parse().unwrap_or(0).min(100),
            })
        })
        .collect()
}

fn actions(steps: &[(&str, &str)]) -> Value {
    json!({ "actions": steps.iter().map(|(a, d)| json!([a, d])).collect::<Vec<_>>() })
}

fn reply(value: Value) -> Handled {
    Handled {
        reply: value,
        sends: Vec::new(),
    }
}

/// A feature code the caller may not use: said in the log and with the invalid prompt.
fn agent_refused(app: &str, why: &str) -> Handled {
    Handled {
        reply: actions(&[
            ("log", &format!("WARNING {app}: {why}")),
            ("set", "agent_result=refused"),
            ("answer", ""),
            ("playback", "invalid-option"),
        ]),
        sends: Vec::new(),
    }
}

fn parse<'a, T: Deserialize<'a>>(message: &str, body: &'a [u8]) -> Result<T, AcdError> {
    serde_json::from_slice(body).map_err(|e| AcdError::BadMessage {
        message: message.to_owned(),
        reason: e.to_string(),
    })
}
