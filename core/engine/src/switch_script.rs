//! The dialplan executor: each call runs the actions its hunt produced, in order, the way
//! FreeSWITCH's core runs a channel's extension. An action either finishes at once (`set`,
//! `log`, `answer`, `transfer`) or leaves the call waiting for an event (a prompt ending, a
//! digit, a timer, a bridge's outcome); the event handlers resume the script. A child module
//! of `switch`, so it works on the switch's own state.
//!
//! Action data is expanded when the action runs, so what `read`, `play_and_get_digits` or a
//! failed `bridge` put in a variable is seen by the actions after it.
//!
//! A call *held* by `park`, `moh` or an endless `tone`, or waiting in a `playback` or `sleep`,
//! can be handed another application from outside the plan: the console's
//! `uuid_exec UUID APP [DATA]` (what a queue module sends to play announcements and offer the
//! call to an agent). The prompt is cut, APP runs, and the call goes back into the held action
//! (re-run with its data); after an interrupted `playback` or `sleep` the plan goes on after
//! it. Echo and conferences are not interrupted. `uuid_break UUID` cuts the held action,
//! playback or sleep without going back (the plan goes on after it: a caller leaves a
//! queue), and `uuid_bridge_cancel UUID` cancels the bridge a call is ringing (the plan goes
//! on after the `bridge`, whatever `continue_on_fail` says).
//!
//! What modules see: a module application's `app.run` body is
//! `{"app","data","uuid","answered","variables","now_ms"}`; a failed bridge publishes
//! `bridge.failed` with `cause` (Q.850 name) and `status`; `${transfer_ringback}` is what an
//! answered caller hears while a bridge rings (FreeSWITCH's variable), instead of ringback.

use std::collections::VecDeque;
use std::sync::Arc;

use regex::Regex;
use switchyard_dialplan::check::CheckEnv;
use switchyard_dialplan::ir::{Diagnostic, Severity};
use switchyard_dialplan::matcher::{PlannedAction, apply_variable_application};
use switchyard_dialplan::vars::{Variables, expand};
use switchyard_media::{DtmfOptions, PlayItem, Player};

use super::*;

/// A `transfer` loop (an extension transferring to itself) ends here.
const MAX_TRANSFERS: u32 = 16;
/// Actions run back to back without waiting, per event: a plan that never waits (a `set`
/// loop through transfers) cannot hold the signalling thread.
const MAX_STEPS: usize = 1000;
/// Digits kept for the next collection while none runs.
const MAX_TYPED_AHEAD: usize = 32;
/// The default language of prompts when the channel has no `language` variable.
const DEFAULT_LANGUAGE: &str = "en";

/// The dialplan in force: what new calls hunt in, and what `reload dialplan` replaces. A call
/// holds the `Arc` it started with, so its transfers keep hunting in that plan.
pub type RoutingPlan = switchyard_dialplan::LoadedPlan;

/// Application names the executor runs itself; modules add theirs through
/// [`ModuleApplication`].
pub const CORE_APPLICATIONS: &[&str] = switchyard_dialplan::check::CORE_APPLICATIONS;

/// A dialplan application a module provides: it looks at the call and answers with the core
/// applications to run in its place (the hook the modules issue builds on).
pub trait ModuleApplication: Send + Sync {
    /// The module that provides it: `unload` counts the calls that used its applications.
    fn owner(&self) -> &str;
    /// The loaded module instance behind it, when it is a dynamic module's: a call keeps
    /// talking to the instance it started with (its other applications, its events).
    fn instance(&self) -> Option<Arc<switchyard_loader::Module>> {
        None
    }
    fn run(&self, call: &CallView<'_>, data: &str) -> Vec<(String, String)>;
}

/// What a module application may see of a call.
pub struct CallView<'a> {
    pub uuid: &'a str,
    pub variables: &'a Variables,
    pub answered: bool,
    /// Milliseconds on the switch's monotonic clock since it started: modules keep time by
    /// it and never read a clock of their own.
    pub now_ms: u64,
}

pub(super) struct Script {
    plan: Arc<RoutingPlan>,
    queue: VecDeque<PlannedAction>,
    pub(super) vars: Variables,
    wait: Wait,
    /// Bumped whenever the script starts waiting: a timer armed for an earlier wait finds
    /// a different epoch and is ignored.
    epoch: u64,
    transfers: u32,
    /// When the last prompt stopped being sent: a hang-up waits for the phone to play it.
    played_at: Option<Instant>,
    /// Digits pressed while a prompt played or the plan slept, for the next collection (a
    /// caller who knows the menu types ahead, as FreeSWITCH's DTMF queue allows).
    typed_ahead: String,
}

impl Script {
    pub(super) fn new(
        plan: Arc<RoutingPlan>,
        actions: Vec<PlannedAction>,
        vars: Variables,
    ) -> Self {
        Script {
            plan,
            queue: actions.into(),
            vars,
            wait: Wait::Running,
            epoch: 0,
            transfers: 0,
            played_at: None,
            typed_ahead: String::new(),
        }
    }

    /// A transfer from outside the plan (REFER, the console): the plan starts over with a
    /// `transfer` to `target` in `context`, whatever the script was waiting for.
    pub(super) fn reset_for_transfer(&mut self, target: &str, context: &str) {
        if context == "inline" {
            // FreeSWITCH's inline dialplan: the target is the actions themselves, their
            // variables expanded as each runs.
            self.queue = inline_actions(target);
        } else {
            let data = format!("{target} XML {context}");
            self.queue.clear();
            self.queue.push_back(PlannedAction {
                application: "transfer".into(),
                data: data.clone(),
                template: data,
                captures: Vec::new(),
                location: switchyard_dialplan::ir::Location {
                    file: Arc::from("(transfer)"),
                    line: 0,
                    column: 0,
                },
            });
        }
        self.wait = Wait::Running;
        self.epoch += 1;
        self.played_at = None;
    }

    /// The first fork of the bridge attempt in progress: older forks belong to failed groups.
    pub(super) fn group_start(&self) -> Option<usize> {
        match &self.wait {
            Wait::Bridge(run) => Some(run.first_fork),
            _ => None,
        }
    }

    pub(super) fn hangup_after_bridge(&self) -> bool {
        self.vars
            .get("hangup_after_bridge")
            .and_then(switchyard_dialplan::ir::parse_flag)
            .unwrap_or(true)
    }

    pub(super) fn current(&self) -> &'static str {
        match self.wait {
            Wait::Running => "running",
            Wait::Playback => "playback",
            Wait::Sleep => "sleep",
            Wait::Digits(_) => "collecting digits",
            Wait::Bridge(_) => "bridging",
            Wait::Bridged => "bridged",
            Wait::Forever | Wait::Held(_) => "parked",
            Wait::Originate => "originating",
        }
    }
}

enum Wait {
    Running,
    Playback,
    Sleep,
    Digits(Collect),
    Bridge(BridgeRun),
    Bridged,
    /// Echo, conference: only a hang-up ends it.
    Forever,
    /// Park, music on hold, an endless tone: only a hang-up ends it, but `uuid_exec` may run
    /// an application in between, after which the call goes back into this action.
    Held(PlannedAction),
    /// An originated call rings its target: the actions run once it answers.
    Originate,
}

/// `play_and_get_digits` and `read` in progress.
struct Collect {
    min: usize,
    max: usize,
    tries_left: u32,
    timeout: Duration,
    digit_timeout: Duration,
    terminators: String,
    prompt: String,
    invalid: String,
    variable: String,
    valid: Regex,
    digits: String,
    prompting: bool,
}

/// A `bridge` in progress: the group of targets being rung and the groups still to try.
struct BridgeRun {
    groups: VecDeque<Vec<Target>>,
    timeout: Duration,
    first_fork: usize,
    caller_id: (Option<String>, Option<String>),
    /// The most telling failure so far, for the caller and the CDR.
    last_failure: Option<(u16, String)>,
    /// Cancelled from outside (`uuid_bridge_cancel`): the plan goes on whatever
    /// `continue_on_fail` says, as the caller did not fail.
    cancelled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Target {
    User(String),
    Gateway {
        name: String,
        number: String,
    },
    /// A literal SIP URI on an IP address, rung directly over UDP (no registration, no DNS):
    /// how a queue reaches SIPp agents that share one port.
    Uri {
        user: String,
        addr: SocketAddr,
    },
}

/// A parsed `bridge` argument.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct BridgeSpec {
    pub(super) groups: Vec<Vec<Target>>,
    pub(super) variables: Vec<(String, String)>,
}

/// `{k=v,...}user/1001,user/1002|sofia/gateway/gw/123|sip:agent@10.0.0.5:5080`: `|`
/// separates groups tried in order, `,` targets rung at once.
pub(super) fn parse_bridge(data: &str) -> Result<BridgeSpec, String> {
    let mut rest = data.trim();
    let mut variables = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let close = body
            .find('}')
            .ok_or_else(|| "bridge: `{` without its `}`".to_owned())?;
        for pair in body[..close].split(',').filter(|p| !p.trim().is_empty()) {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("bridge: {pair:?} is not name=value"))?;
            variables.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        rest = body[close + 1..].trim();
    }
    let mut groups = Vec::new();
    for group in rest.split('|') {
        let mut targets = Vec::new();
        for target in group.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            targets.push(parse_target(target)?);
        }
        if !targets.is_empty() {
            groups.push(targets);
        }
    }
    if groups.is_empty() {
        return Err("bridge: no target".into());
    }
    Ok(BridgeSpec { groups, variables })
}

pub(super) fn parse_target(target: &str) -> Result<Target, String> {
    if target.starts_with('[') {
        return Err(format!(
            "bridge: per-target variables ({target}) are not supported; use {{...}} before all targets"
        ));
    }
    if let Some(uri) = target
        .strip_prefix("sofia/internal/")
        .unwrap_or(target)
        .strip_prefix("sip:")
    {
        return sip_target(uri).ok_or_else(|| {
            format!(
                "bridge: {target:?} is not sip:USER@IP[:PORT] (an IPv4 or [IPv6] literal, no DNS)"
            )
        });
    }
    let parts: Vec<&str> = target.split('/').collect();
    match parts.as_slice() {
        ["user", user] if !user.is_empty() => Ok(Target::User(
            user.split('@').next().unwrap_or_default().to_owned(),
        )),
        ["sofia", "gateway", name, number] | ["gateway", name, number]
            if !name.is_empty() && !number.is_empty() =>
        {
            Ok(Target::Gateway {
                name: (*name).to_owned(),
                number: (*number).to_owned(),
            })
        }
        _ => Err(format!(
            "bridge: unknown target {target:?} (user/ID, sofia/gateway/NAME/NUMBER or [sofia/internal/]sip:USER@IP[:PORT])"
        )),
    }
}

/// `USER@IP[:PORT]` after `sip:`; the port defaults to 5060 (RFC 3261 §19.1.2). The user part
/// is kept to unreserved characters (RFC 3261 §25.1), so it cannot smuggle parameters or
/// headers into the Request-URI.
fn sip_target(uri: &str) -> Option<Target> {
    let (user, host) = uri.split_once('@')?;
    let unreserved = |c: char| c.is_ascii_alphanumeric() || "-_.!~*'()+".contains(c);
    if user.is_empty() || !user.chars().all(unreserved) {
        return None;
    }
    let addr = host
        .parse::<SocketAddr>()
        .ok()
        .or_else(|| {
            let ip = host.parse::<std::net::Ipv4Addr>().ok()?;
            Some(SocketAddr::from((ip, 5060)))
        })
        .or_else(|| {
            let ip = host.strip_prefix('[')?.strip_suffix(']')?;
            Some(SocketAddr::from((
                ip.parse::<std::net::Ipv6Addr>().ok()?,
                5060,
            )))
        })?;
    Some(Target::Uri {
        user: user.to_owned(),
        addr,
    })
}

/// FreeSWITCH's Q.850 cause names and the SIP status a caller gets for them before answer
/// (RFC 3398 §7.2.4.1).
pub(super) fn status_for_cause(cause: &str) -> u16 {
    match cause {
        "UNALLOCATED_NUMBER" | "NO_ROUTE_DESTINATION" | "NO_ROUTE_TRANSIT_NET" => 404,
        "USER_BUSY" => 486,
        "NO_USER_RESPONSE" | "NO_ANSWER" | "USER_NOT_REGISTERED" | "SUBSCRIBER_ABSENT" => 480,
        "CALL_REJECTED" => 403,
        "NUMBER_CHANGED" => 410,
        "INVALID_NUMBER_FORMAT" => 484,
        "NORMAL_CIRCUIT_CONGESTION" | "SWITCH_CONGESTION" | "NORMAL_TEMPORARY_FAILURE" => 503,
        "NETWORK_OUT_OF_ORDER" | "DESTINATION_OUT_OF_ORDER" => 502,
        "RECOVERY_ON_TIMER_EXPIRE" => 504,
        "INCOMPATIBLE_DESTINATION" => 488,
        "ORIGINATOR_CANCEL" => 487,
        "EXCHANGE_ROUTING_ERROR" => 483,
        "FACILITY_NOT_IMPLEMENTED" | "SERVICE_NOT_IMPLEMENTED" => 501,
        _ => 480,
    }
}

/// What a `playback` argument asks for.
enum Sound {
    Prompts(Vec<String>),
    File(std::path::PathBuf),
    Tone { spec: String, loops: i32 },
    Music,
    Silence(u32),
}

fn parse_sound(file: &str) -> Sound {
    if let Some(tone) = file.strip_prefix("tone_stream://") {
        let (spec, loops) = match tone.rsplit_once(";loops=") {
            Some((spec, loops)) => (spec, loops.trim().parse().unwrap_or(1)),
            None => (tone, 1),
        };
        return Sound::Tone {
            spec: spec.to_owned(),
            loops,
        };
    }
    if file.starts_with("local_stream://") {
        return Sound::Music;
    }
    if let Some(ms) = file.strip_prefix("silence_stream://") {
        return Sound::Silence(ms.trim().parse().unwrap_or(1000));
    }
    if file.starts_with('/') {
        return Sound::File(file.into());
    }
    Sound::Prompts(
        file.split('!')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

/// A duration from a plan (a variable may hold anything): at most a day, so that adding it
/// to the clock cannot overflow.
fn bounded_ms(ms: u64) -> Duration {
    Duration::from_millis(ms.min(86_400_000))
}

/// An action the engine itself puts in a script (not from a plan file).
fn engine_action(application: &str, data: &str, file: &str) -> PlannedAction {
    PlannedAction {
        application: application.into(),
        data: data.into(),
        template: data.into(),
        captures: Vec::new(),
        location: switchyard_dialplan::ir::Location {
            file: Arc::from(file),
            line: 0,
            column: 0,
        },
    }
}

/// The held action, kept so that the call can go back into it after a `uuid_exec`. Its data
/// was already expanded when it first ran: it runs again as it was.
fn held_action(application: &str, data: &str) -> PlannedAction {
    engine_action(application, data, HELD)
}

/// The "file" of a held action put back in the queue by `uuid_exec`.
const HELD: &str = "(held)";

/// `app:data,app:data` (FreeSWITCH's inline dialplan) as actions; an entry without `:` is an
/// application without data.
fn inline_actions(text: &str) -> VecDeque<PlannedAction> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (application, data) = entry.split_once(':').unwrap_or((entry, ""));
            PlannedAction {
                application: application.to_owned(),
                data: data.to_owned(),
                template: data.to_owned(),
                captures: Vec::new(),
                location: switchyard_dialplan::ir::Location {
                    file: Arc::from("(inline)"),
                    line: 0,
                    column: 0,
                },
            }
        })
        .collect()
}

fn split_args(data: &str) -> Vec<&str> {
    data.split_whitespace().collect()
}

impl Switch {
    /// The hunt for a new call: the context's actions and the variables it starts with.
    /// Time conditions see the plan's local time.
    pub(super) fn hunt_call(
        &self,
        plan: &RoutingPlan,
        context: &str,
        vars: &Variables,
        now: Now,
    ) -> Result<(Vec<PlannedAction>, Variables), String> {
        let found = plan
            .hunt(context, vars, now.unix_secs())
            .map_err(|e| e.to_string())?;
        Ok((found.actions, found.variables))
    }

    /// Runs the call's actions until one waits or the plan ends.
    pub(super) fn run_script(&mut self, now: Now, key: CallKey) {
        for _ in 0..MAX_STEPS {
            let Some(call) = self.calls.get_mut(&key) else {
                return;
            };
            let Some(script) = call.script.as_mut() else {
                return;
            };
            if !matches!(script.wait, Wait::Running) {
                return;
            }
            let Some(action) = script.queue.pop_front() else {
                // FreeSWITCH hangs a channel up when its extension runs out of actions; an
                // unanswered one with why its last bridge failed, if it tried one.
                if call.state != CallState::Answered
                    && let Some(cause) = script.vars.get("last_bridge_hangup_cause")
                {
                    let cause = cause.to_owned();
                    return self.finish_script(now, key, &cause);
                }
                let answered = call.state == CallState::Answered;
                return self.finish_script(
                    now,
                    key,
                    if answered {
                        "NORMAL_CLEARING"
                    } else {
                        "NO_ROUTE_DESTINATION"
                    },
                );
            };
            let data = expand(&action.template, &script.vars, &action.captures);
            debug!(
                uuid = call.uuid,
                app = action.application,
                data,
                "executing"
            );
            self.run_application(now, key, &action.application, &data);
        }
        warn!(
            call = key,
            "dialplan ran {MAX_STEPS} actions without waiting: hanging up"
        );
        self.hang_up(now, key, "EXCHANGE_ROUTING_ERROR", "system");
    }

    /// The call a console command names, and the script it runs.
    fn scripted_call(&mut self, uuid: &str) -> Result<(CallKey, &mut Call), String> {
        let key = self
            .call_by_uuid(uuid)
            .ok_or_else(|| format!("no such call: {uuid}"))?;
        let call = self
            .calls
            .get_mut(&key)
            .filter(|c| c.script.is_some())
            .ok_or_else(|| format!("{uuid} runs no dialplan"))?;
        Ok((key, call))
    }

    /// The bridge a console command acts on: refused with `what` ("no bridge to cancel")
    /// when the call is not ringing one.
    fn ringing_bridge(
        &mut self,
        uuid: &str,
        what: &str,
    ) -> Result<(CallKey, &mut BridgeRun), String> {
        let (key, call) = self.scripted_call(uuid)?;
        let script = call.script.as_mut().expect("scripted_call checked");
        let current = script.current();
        match &mut script.wait {
            Wait::Bridge(run) => Ok((key, run)),
            _ => Err(format!("{uuid} is {current}: {what}")),
        }
    }

    /// `uuid_exec UUID APP [DATA]`: runs APP in a call held by `park`, `moh` or an endless
    /// `tone` (then the call goes back into it) or waiting in a `playback` or `sleep` (cut
    /// short; the plan goes on after it). As FreeSWITCH's `uuid_broadcast`/`uuid_transfer`
    /// interrupt a parked channel. A call bridging, bridged, collecting digits, in echo or a
    /// conference is refused: its state is not a pause the plan can step out of.
    pub(super) fn uuid_exec(
        &mut self,
        now: Now,
        uuid: &str,
        application: &str,
        data: &str,
    ) -> Result<String, String> {
        let known =
            CORE_APPLICATIONS.contains(&application) || self.applications.contains_key(application);
        let (key, call) = self.scripted_call(uuid)?;
        if !known && !call.pinned_apps.contains_key(application) {
            return Err(format!("unknown application: {application}"));
        }
        // Our own prompt to the caller, if its media is ours (a parked call may be relayed).
        let caller = call
            .a_sdp
            .is_some()
            .then(|| call.media.endpoint(Side::A).map(|e| e.id))
            .flatten();
        let Some(script) = call.script.as_mut() else {
            return Err(format!("{uuid} runs no dialplan"));
        };
        let back = match &script.wait {
            Wait::Held(action) => Some(action.clone()),
            Wait::Playback | Wait::Sleep => None,
            Wait::Forever => {
                return Err(format!("{uuid} is in an echo test or a conference"));
            }
            _ => return Err(format!("{uuid} is {}", script.current())),
        };
        if let Some(action) = back {
            script.queue.push_front(action);
        }
        script
            .queue
            .push_front(engine_action(application, data, "(uuid_exec)"));
        if let Some(caller) = caller {
            self.media.stop_playback(caller);
        }
        info!(uuid, application, data, "uuid_exec");
        self.resume(now, key);
        Ok(format!("{uuid}: {application} started\n"))
    }

    /// `uuid_break UUID`: cuts the held action, `playback` or `sleep` the call is in, and the
    /// plan goes on after it without going back into a held action (FreeSWITCH's
    /// `uuid_break`, which mod_callcenter uses to let a caller leave the queue's music).
    pub(super) fn uuid_break(&mut self, now: Now, uuid: &str) -> Result<String, String> {
        let (key, call) = self.scripted_call(uuid)?;
        let caller = call
            .a_sdp
            .is_some()
            .then(|| call.media.endpoint(Side::A).map(|e| e.id))
            .flatten();
        let Some(script) = call.script.as_mut() else {
            return Err(format!("{uuid} runs no dialplan"));
        };
        match &script.wait {
            Wait::Held(_) | Wait::Playback | Wait::Sleep => {}
            Wait::Forever => {
                return Err(format!("{uuid} is in an echo test or a conference"));
            }
            _ => return Err(format!("{uuid} is {}: nothing to break", script.current())),
        }
        // A `uuid_exec` queued the way back into the held action: the break drops it.
        script.queue.retain(|a| &*a.location.file != HELD);
        if let Some(caller) = caller {
            self.media.stop_playback(caller);
        }
        info!(uuid, "uuid_break");
        self.resume(now, key);
        Ok(format!("{uuid}: broken out\n"))
    }

    /// `uuid_bridge_cancel UUID`: cancels the bridge the call is ringing (every target, every
    /// group left); `bridge.failed` tells it, with ORIGINATOR_CANCEL, and the plan goes on
    /// after the `bridge` (back into a held action it came from by `uuid_exec`), whatever
    /// `continue_on_fail` says. A queue re-offers a caller to other agents so.
    pub(super) fn uuid_bridge_cancel(&mut self, now: Now, uuid: &str) -> Result<String, String> {
        let (key, run) = self.ringing_bridge(uuid, "no bridge to cancel")?;
        run.groups.clear();
        run.cancelled = true;
        info!(uuid, "uuid_bridge_cancel");
        self.bridge_group_failed(now, key, 487, "ORIGINATOR_CANCEL");
        Ok(format!("{uuid}: bridge cancelled\n"))
    }

    /// `uuid_bridge_add UUID TARGET`: one more target rung by the bridge in progress, in its
    /// current group and until that group's timeout (a queue ringing one more agent, as
    /// ring-progressively does, without stopping the phones already ringing).
    pub(super) fn uuid_bridge_add(
        &mut self,
        now: Now,
        uuid: &str,
        target: &str,
    ) -> Result<String, String> {
        let target = parse_target(target.trim())?;
        let (key, run) = self.ringing_bridge(uuid, "no bridge to add to")?;
        let caller_id = run.caller_id.clone();
        match self.ring_target(now, key, &target, &caller_id) {
            0 => Err(format!(
                "{uuid}: {target:?} cannot be rung (not registered?)"
            )),
            forks => {
                info!(uuid, ?target, forks, "uuid_bridge_add");
                Ok(format!("{uuid}: ringing {forks} more\n"))
            }
        }
    }

    /// `uuid_bridge_remove UUID TARGET`: stops ringing one target of the bridge in progress;
    /// the others go on ringing (a queue taking an offer back from one agent of several).
    /// Refused when no other target still rings: `uuid_bridge_cancel` is for that.
    pub(super) fn uuid_bridge_remove(
        &mut self,
        now: Now,
        uuid: &str,
        target: &str,
    ) -> Result<String, String> {
        let callee = match parse_target(target.trim())? {
            Target::User(user) => user,
            Target::Uri { user, .. } => user,
            Target::Gateway { name, number } => format!("{name}/{number}"),
        };
        let (key, run) = self.ringing_bridge(uuid, "nothing to remove")?;
        let first = run.first_fork;
        let ringing: Vec<(usize, bool)> = self.calls[&key]
            .forks
            .iter()
            .enumerate()
            .skip(first)
            .filter(|(_, f)| !f.is_over() && f.state != ForkState::Answered)
            .map(|(i, f)| (i, f.callee == callee))
            .collect();
        let removed: Vec<usize> = ringing
            .iter()
            .filter(|(_, m)| *m)
            .map(|(i, _)| *i)
            .collect();
        if removed.is_empty() {
            return Err(format!("{uuid}: {callee} is not ringing in this bridge"));
        }
        if removed.len() == ringing.len() {
            return Err(format!(
                "{uuid}: {callee} is the last target ringing; use uuid_bridge_cancel"
            ));
        }
        for fork in &removed {
            self.cancel_fork(now, key, *fork);
        }
        info!(uuid, callee, forks = removed.len(), "uuid_bridge_remove");
        Ok(format!("{uuid}: {callee} no longer rung\n"))
    }

    /// Ends the call from the script (`hangup`, the end of the plan), letting the phone play
    /// what it was last sent first.
    fn finish_script(&mut self, now: Now, key: CallKey, cause: &str) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if let Some(script) = call.script.as_mut()
            && let Some(played) = script.played_at.take()
            && now.mono < played + PLAYOUT_DRAIN
        {
            // The phone still holds our last packets in its jitter buffer.
            script.queue.push_front(PlannedAction {
                application: "hangup".into(),
                data: cause.into(),
                template: cause.into(),
                captures: Vec::new(),
                location: switchyard_dialplan::ir::Location {
                    file: Arc::from("(engine)"),
                    line: 0,
                    column: 0,
                },
            });
            let epoch = self.wait(key, Wait::Sleep);
            self.timers
                .push(Reverse((played + PLAYOUT_DRAIN, Timer::Script(key, epoch))));
            return;
        }
        if call.state == CallState::Answered {
            self.hang_up(now, key, cause, "system");
        } else {
            self.fail_unanswered_with_side(now, key, status_for_cause(cause), cause, "system");
        }
    }

    /// Puts the script in `wait` and returns the new epoch for its timers.
    fn wait(&mut self, key: CallKey, wait: Wait) -> u64 {
        let Some(script) = self.calls.get_mut(&key).and_then(|c| c.script.as_mut()) else {
            return 0;
        };
        if !matches!(wait, Wait::Running) {
            // A plan that waits is not looping: an IVR may send callers back to its menu
            // any number of times.
            script.transfers = 0;
        }
        script.wait = wait;
        script.epoch += 1;
        script.epoch
    }

    /// Waits for the caller to hang up (`wait` is `Held` for park and endless music). A call
    /// not answered yet is given up after the no-answer time: an INVITE transaction that only
    /// sent provisional responses never times out by itself, and a vanished caller would
    /// otherwise hold the call forever.
    fn wait_forever(&mut self, now: Now, key: CallKey, wait: Wait) {
        let epoch = self.wait(key, wait);
        if self
            .calls
            .get(&key)
            .is_some_and(|c| c.state != CallState::Answered)
        {
            self.timers.push(Reverse((
                now.mono + self.settings.no_answer,
                Timer::Script(key, epoch),
            )));
        }
    }

    fn resume(&mut self, now: Now, key: CallKey) {
        self.wait(key, Wait::Running);
        self.run_script(now, key);
    }

    /// An originated call's script waits for its target to answer, for `timeout` at most.
    pub(super) fn wait_for_origination(&mut self, now: Now, key: CallKey, timeout: Duration) {
        let epoch = self.wait(key, Wait::Originate);
        self.timers.push(Reverse((
            now.mono + bounded_ms(timeout.as_millis() as u64),
            Timer::Script(key, epoch),
        )));
    }

    /// The target of an originated call answered: its script runs `actions` (the hunt of its
    /// extension, or its one application) with `vars`, as an inbound call the dialplan
    /// answered would.
    pub(super) fn start_originated_script(
        &mut self,
        now: Now,
        key: CallKey,
        actions: Vec<PlannedAction>,
        vars: Variables,
    ) {
        let Some(script) = self.calls.get_mut(&key).and_then(|c| c.script.as_mut()) else {
            return;
        };
        script.queue = actions.into();
        script.vars = vars;
        self.resume(now, key);
    }

    fn set_var(&mut self, key: CallKey, name: &str, value: &str) {
        if let Some(script) = self.calls.get_mut(&key).and_then(|c| c.script.as_mut()) {
            script.vars.set(name, value);
        }
    }

    fn var(&self, key: CallKey, name: &str) -> Option<String> {
        self.calls
            .get(&key)
            .and_then(|c| c.script.as_ref())
            .and_then(|s| s.vars.get(name))
            .map(str::to_owned)
    }

    fn run_application(&mut self, now: Now, key: CallKey, application: &str, data: &str) {
        match application {
            "set" | "export" | "unset" => {
                if let Some(script) = self.calls.get_mut(&key).and_then(|c| c.script.as_mut()) {
                    apply_variable_application(application, data, &mut script.vars);
                }
            }
            "log" => {
                let uuid = self
                    .calls
                    .get(&key)
                    .map(|c| c.uuid.clone())
                    .unwrap_or_default();
                let text = match data.split_once(' ') {
                    Some((level, text))
                        if matches!(
                            level.to_ascii_uppercase().as_str(),
                            "DEBUG" | "INFO" | "NOTICE" | "WARNING" | "ERR" | "CRIT" | "ALERT"
                        ) =>
                    {
                        text
                    }
                    _ => data,
                };
                info!(uuid, "dialplan log: {text}");
            }
            "ring_ready" => self.ring_ready(now, key),
            "pre_answer" => {
                if let Err((_, cause)) = self.own_media(now, key, None) {
                    return self.finish_script(now, key, cause);
                }
                self.send_early_media(now, key);
            }
            "answer" => {
                if let Err((_, cause)) = self.answer_locally(now, key, None) {
                    self.finish_script(now, key, cause);
                }
            }
            "playback" => self.start_playback(now, key, data, Wait::Playback),
            // `moh [SOUND]`: the music of sounds/music, or SOUND looped (a queue's own music).
            "moh" => {
                let sound = match data.trim() {
                    "" => "local_stream://moh",
                    sound => sound,
                };
                self.start_playback(now, key, sound, Wait::Held(held_action("moh", data)))
            }
            "tone" => {
                let spec = format!("tone_stream://{data};loops=-1");
                self.start_playback(now, key, &spec, Wait::Held(held_action("tone", data)))
            }
            "sleep" => {
                let ms: u64 = data.trim().parse().unwrap_or(0);
                let epoch = self.wait(key, Wait::Sleep);
                self.timers.push(Reverse((
                    now.mono + bounded_ms(ms),
                    Timer::Script(key, epoch),
                )));
            }
            "play_and_get_digits" => self.start_collect(now, key, data, false),
            "read" => self.start_collect(now, key, data, true),
            "bridge" => self.start_bridge(now, key, data),
            "transfer" => self.transfer(now, key, data),
            "hangup" => {
                let cause = data.trim();
                let cause = if cause.is_empty() {
                    "NORMAL_CLEARING"
                } else {
                    cause
                };
                self.finish_script(now, key, cause);
            }
            "echo" => self.start_echo(now, key),
            "park" => self.wait_forever(now, key, Wait::Held(held_action("park", data))),
            "conference" => self.join_room(now, key, data),
            other => {
                // A call keeps the module instance it first used: a reload serves new calls
                // with the new code, and this one goes on with the code it started with.
                let pinned = self.calls.get(&key).and_then(|c| {
                    c.pinned_apps.get(other).cloned().or_else(|| {
                        // Another application of the same module already ran in this call:
                        // this one goes to that same instance.
                        let owner = self.applications.get(other)?.owner();
                        let instance = c
                            .pinned_apps
                            .values()
                            .find(|a| a.owner() == owner)?
                            .instance()?;
                        let app: Arc<dyn ModuleApplication> = Arc::new(crate::modules::ModuleApp {
                            module: instance,
                            app: other.to_owned(),
                        });
                        Some(app)
                    })
                });
                let Some(module) = pinned.or_else(|| self.applications.get(other).cloned()) else {
                    warn!(application = other, "unknown dialplan application: skipped");
                    return;
                };
                let now_ms = self.now_ms(now);
                let Some(call) = self.calls.get_mut(&key) else {
                    return;
                };
                call.pinned_apps
                    .entry(other.to_owned())
                    .or_insert_with(|| Arc::clone(&module));
                let call = &*call;
                let Some(script) = call.script.as_ref() else {
                    return;
                };
                let view = CallView {
                    uuid: &call.uuid,
                    variables: &script.vars,
                    answered: call.state == CallState::Answered,
                    now_ms,
                };
                let steps = module.run(&view, data);
                let location = switchyard_dialplan::ir::Location {
                    file: Arc::from(format!("(module application {other})")),
                    line: 0,
                    column: 0,
                };
                if let Some(script) = self.calls.get_mut(&key).and_then(|c| c.script.as_mut()) {
                    for (application, data) in steps.into_iter().rev() {
                        script.queue.push_front(PlannedAction {
                            application,
                            data: data.clone(),
                            template: data,
                            captures: Vec::new(),
                            location: location.clone(),
                        });
                    }
                }
            }
        }
    }

    fn ring_ready(&mut self, now: Now, key: CallKey) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if call.state == CallState::Answered || call.early {
            return;
        }
        let Some(tx) = call.a.invite_tx else { return };
        let tag = call.a.dialog.local_tag.clone();
        let contact = contact_value(call.a.dialog.peer.transport, call.a.dialog.local_addr);
        self.respond(now, tx, 180, &[("Contact", contact)], Some(&tag), None);
    }

    /// Terminates the caller's leg here with a codec of its offer, once: the SDP answer is
    /// kept for the 183 and the 200. `rate` is the Opus rate (conference rate for rooms).
    pub(super) fn own_media(
        &mut self,
        _now: Now,
        key: CallKey,
        rate: Option<u32>,
    ) -> Result<(), (u16, &'static str)> {
        let caller_mode = self
            .calls
            .get(&key)
            .map(|c| self.dtmf_mode_of(&c.caller))
            .unwrap_or_default();
        let codecs: Vec<String> = self.settings.codecs.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return Err((500, "NORMAL_TEMPORARY_FAILURE"));
        };
        if call.a_sdp.is_some() {
            return Ok(());
        }
        if call.state == CallState::Answered {
            // Answered by a bridge or the echo: its media is not ours to reshape.
            return Err((500, "NORMAL_TEMPORARY_FAILURE"));
        }
        let a = call
            .media
            .endpoint(Side::A)
            .cloned()
            .ok_or((500, "NORMAL_TEMPORARY_FAILURE"))?;
        let offer = call
            .a_offer
            .clone()
            .ok_or((488, "INCOMPATIBLE_DESTINATION"))?;
        let names: Vec<&str> = codecs
            .iter()
            .map(String::as_str)
            .chain(["telephone-event"])
            .collect();
        let answer = switchyard_sdp::answer(&offer, a.local, &mut call.a.origin, &names)
            .map_err(|_| (488, "INCOMPATIBLE_DESTINATION"))?;
        let chosen = answer
            .chosen_codec()
            .ok_or((488, "INCOMPATIBLE_DESTINATION"))?;
        let te = answer.telephone_event(chosen.clock_rate);
        let codec = media_plan::leg_codec(&chosen, te, rate.unwrap_or(16_000))
            .ok_or((488, "INCOMPATIBLE_DESTINATION"))?;
        let dtmf = LegDtmf::resolve(caller_mode, te.is_some());
        call.a_plan = Some(LegPlan {
            dtmf,
            codec: chosen.name.clone(),
        });
        call.a_rate = codec.sample_rate;
        call.a_sdp = Some(answer.to_bytes());
        call.a_leg_codec = Some(codec.clone());
        self.media.terminate(
            a.id,
            codec,
            DtmfOptions {
                detect_inband: dtmf == LegDtmf::Inband,
                mute_detected: false,
            },
        );
        self.media.solo(a.id);
        Ok(())
    }

    /// `answer`: our own media towards the caller, and a 200 OK.
    fn answer_locally(
        &mut self,
        now: Now,
        key: CallKey,
        rate: Option<u32>,
    ) -> Result<(), (u16, &'static str)> {
        if self
            .calls
            .get(&key)
            .is_some_and(|c| c.state == CallState::Answered)
        {
            return Ok(());
        }
        self.own_media(now, key, rate)?;
        let sdp = self
            .calls
            .get(&key)
            .and_then(|c| c.a_sdp.clone())
            .ok_or((500, "NORMAL_TEMPORARY_FAILURE"))?;
        self.answer_a(now, key, sdp);
        Ok(())
    }

    fn send_early_media(&mut self, now: Now, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.state == CallState::Answered || call.early {
            return;
        }
        let Some(sdp) = call.a_sdp.clone() else {
            return;
        };
        let Some(tx) = call.a.invite_tx else { return };
        call.early = true;
        let tag = call.a.dialog.local_tag.clone();
        let contact = contact_value(call.a.dialog.peer.transport, call.a.dialog.local_addr);
        self.respond(
            now,
            tx,
            183,
            &[("Contact", contact)],
            Some(&tag),
            Some((SDP, &sdp)),
        );
    }

    /// Our media towards the caller, answering if it has neither been answered nor given
    /// early media yet (FreeSWITCH's playback does the same).
    fn media_ready(&mut self, now: Now, key: CallKey) -> bool {
        let Some(call) = self.calls.get(&key) else {
            return false;
        };
        let ready = call.a_sdp.is_some() && (call.early || call.state == CallState::Answered);
        if ready {
            return true;
        }
        if let Err((_, cause)) = self.answer_locally(now, key, None) {
            self.finish_script(now, key, cause);
            return false;
        }
        true
    }

    /// What a sound argument plays, at the caller leg's rate.
    fn player_for(&mut self, key: CallKey, file: &str, forever: bool) -> Result<Player, String> {
        let (rate, lang) = match self.calls.get(&key) {
            Some(call) => (
                call.a_rate,
                call.script
                    .as_ref()
                    .and_then(|s| s.vars.get("language"))
                    .filter(|l| !l.is_empty())
                    .unwrap_or(DEFAULT_LANGUAGE)
                    .to_owned(),
            ),
            None => return Err("no such call".into()),
        };
        let (items, looping) = match parse_sound(file) {
            Sound::Prompts(names) if names.is_empty() => return Err("nothing to play".into()),
            Sound::Prompts(names) => (
                self.sounds
                    .prompts(&lang, &names, rate)
                    .map_err(|e| e.to_string())?,
                forever,
            ),
            Sound::File(path) => (
                vec![PlayItem::Clip(
                    self.sounds.file(path).map_err(|e| e.to_string())?,
                )],
                forever,
            ),
            Sound::Music => (
                self.sounds.music_on_hold(rate).map_err(|e| e.to_string())?,
                true,
            ),
            Sound::Silence(ms) => (vec![PlayItem::Silence { ms }], forever),
            Sound::Tone { spec, loops } => {
                let tone = self.sounds.tone(&spec).map_err(|e| e.to_string())?;
                let repeat = usize::try_from(loops).unwrap_or(1).clamp(1, 100);
                (vec![PlayItem::Tone(tone); repeat], forever || loops < 0)
            }
        };
        Player::new(items, rate, looping).map_err(|e| e.to_string())
    }

    fn start_playback(&mut self, now: Now, key: CallKey, file: &str, wait: Wait) {
        if !self.media_ready(now, key) {
            return;
        }
        let forever = matches!(wait, Wait::Forever | Wait::Held(_));
        match self.player_for(key, file, forever) {
            Ok(player) => {
                let Some(a) = self
                    .calls
                    .get(&key)
                    .and_then(|c| c.media.endpoint(Side::A))
                    .map(|e| e.id)
                else {
                    return;
                };
                self.media.play(a, player);
                if forever {
                    self.wait_forever(now, key, wait);
                } else if matches!(parse_sound(file), Sound::Music) {
                    // `playback local_stream://moh` never ends: held like `moh`.
                    self.wait_forever(now, key, Wait::Held(held_action("playback", file)));
                } else {
                    self.wait(key, wait);
                }
            }
            Err(error) => {
                // FreeSWITCH logs a missing file and goes on with the next action.
                warn!(%error, file, "playback");
                self.set_var(key, "playback_status", "FILE_NOT_FOUND");
            }
        }
    }

    /// A prompt or tone that `playback` or a digit collection started has ended.
    pub(super) fn script_playback_done(&mut self, now: Now, key: CallKey) {
        let Some(script) = self.calls.get_mut(&key).and_then(|c| c.script.as_mut()) else {
            return;
        };
        script.played_at = Some(now.mono);
        match &mut script.wait {
            Wait::Playback => self.resume(now, key),
            Wait::Digits(collect) if collect.prompting => {
                collect.prompting = false;
                let timeout = if collect.digits.is_empty() {
                    collect.timeout
                } else {
                    collect.digit_timeout
                };
                let epoch = script.epoch;
                self.timers
                    .push(Reverse((now.mono + timeout, Timer::Script(key, epoch))));
            }
            _ => {}
        }
    }

    /// `play_and_get_digits MIN MAX TRIES TIMEOUT TERMINATORS FILE INVALID VAR REGEX [DIGIT_TIMEOUT]`
    /// or `read MIN MAX FILE VAR TIMEOUT TERMINATORS`.
    fn start_collect(&mut self, now: Now, key: CallKey, data: &str, read: bool) {
        let args = split_args(data);
        let parsed = if read {
            match args.as_slice() {
                [min, max, file, var, timeout, rest @ ..] => Some((
                    *min,
                    *max,
                    "1",
                    *timeout,
                    rest.first().copied().unwrap_or("#"),
                    *file,
                    "",
                    *var,
                    ".*",
                    None,
                )),
                _ => None,
            }
        } else {
            match args.as_slice() {
                [
                    min,
                    max,
                    tries,
                    timeout,
                    term,
                    file,
                    invalid,
                    var,
                    regex,
                    rest @ ..,
                ] => Some((
                    *min,
                    *max,
                    *tries,
                    *timeout,
                    *term,
                    *file,
                    *invalid,
                    *var,
                    *regex,
                    rest.first().copied(),
                )),
                _ => None,
            }
        };
        let usage = if read {
            "read MIN MAX FILE VAR TIMEOUT_MS TERMINATORS"
        } else {
            "play_and_get_digits MIN MAX TRIES TIMEOUT_MS TERMINATORS FILE INVALID_FILE VAR REGEX [DIGIT_TIMEOUT_MS]"
        };
        let Some((min, max, tries, timeout, term, file, invalid, var, regex, digit_timeout)) =
            parsed
        else {
            warn!(data, "bad arguments, expected: {usage}");
            return;
        };
        let number = |s: &str| s.parse::<u64>().ok();
        let (Some(min), Some(max), Some(tries), Some(timeout)) =
            (number(min), number(max), number(tries), number(timeout))
        else {
            warn!(data, "bad numbers, expected: {usage}");
            return;
        };
        let Ok(valid) = Regex::new(regex) else {
            warn!(regex, "play_and_get_digits: bad regex");
            return;
        };
        let timeout = bounded_ms(timeout);
        let digit_timeout = digit_timeout.and_then(number).map_or(timeout, bounded_ms);
        if !self.media_ready(now, key) {
            return;
        }
        let terminators = if term == "none" {
            String::new()
        } else {
            term.to_owned()
        };
        let collect = Collect {
            min: min as usize,
            max: (max as usize).clamp(1, 128),
            tries_left: (tries as u32).max(1),
            timeout,
            digit_timeout,
            terminators,
            prompt: file.to_owned(),
            invalid: if invalid == "silence_stream://0" {
                String::new()
            } else {
                invalid.to_owned()
            },
            variable: var.to_owned(),
            valid,
            digits: String::new(),
            prompting: false,
        };
        let typed_ahead = match self.calls.get_mut(&key).and_then(|c| c.script.as_mut()) {
            Some(script) => {
                script.vars.unset(var);
                std::mem::take(&mut script.typed_ahead)
            }
            None => return,
        };
        self.prompt_for_digits(now, key, collect, false);
        // What the caller typed ahead counts as pressed now (it also cuts the prompt short).
        for digit in typed_ahead.chars() {
            if !self.script_digit(now, key, digit) {
                break;
            }
        }
    }

    /// Plays the prompt (after the invalid-entry sound on a retry) and waits for digits.
    fn prompt_for_digits(&mut self, now: Now, key: CallKey, mut collect: Collect, retry: bool) {
        collect.digits.clear();
        let sound = match (retry, collect.invalid.is_empty()) {
            (true, false) => format!("{}!{}", collect.invalid, collect.prompt),
            _ => collect.prompt.clone(),
        };
        let player = if sound.is_empty() || sound.starts_with("silence_stream://") {
            None
        } else {
            match self.player_for(key, &sound, false) {
                Ok(player) => Some(player),
                Err(error) => {
                    warn!(%error, sound, "digit collection prompt");
                    None
                }
            }
        };
        collect.prompting = player.is_some();
        let timeout = collect.timeout;
        let epoch = self.wait(key, Wait::Digits(collect));
        match player {
            Some(player) => {
                if let Some(a) = self.calls.get(&key).and_then(|c| c.media.endpoint(Side::A)) {
                    self.media.play(a.id, player);
                }
            }
            None => self
                .timers
                .push(Reverse((now.mono + timeout, Timer::Script(key, epoch)))),
        }
    }

    /// A digit from the caller: consumed when the script is collecting digits.
    pub(super) fn script_digit(&mut self, now: Now, key: CallKey, digit: char) -> bool {
        let Some(call) = self.calls.get_mut(&key) else {
            return false;
        };
        let a = call.media.endpoint(Side::A).map(|e| e.id);
        let Some(script) = call.script.as_mut() else {
            return false;
        };
        let Wait::Digits(collect) = &mut script.wait else {
            if matches!(script.wait, Wait::Playback | Wait::Sleep)
                && script.typed_ahead.len() < MAX_TYPED_AHEAD
            {
                script.typed_ahead.push(digit);
                return true;
            }
            return false;
        };
        if collect.prompting {
            // Barge-in: the caller knows what to press.
            collect.prompting = false;
            if let Some(a) = a {
                self.media.stop_playback(a);
            }
        }
        let terminated = collect.terminators.contains(digit);
        if !terminated {
            collect.digits.push(digit);
        }
        let complete = terminated || collect.digits.len() >= collect.max;
        script.epoch += 1;
        let epoch = script.epoch;
        if complete {
            self.digits_complete(now, key);
        } else {
            let timeout = collect.digit_timeout;
            self.timers
                .push(Reverse((now.mono + timeout, Timer::Script(key, epoch))));
        }
        true
    }

    /// The collection ended (terminator, enough digits, or a timeout): check and go on.
    fn digits_complete(&mut self, now: Now, key: CallKey) {
        let Some(script) = self.calls.get_mut(&key).and_then(|c| c.script.as_mut()) else {
            return;
        };
        let Wait::Digits(mut collect) = std::mem::replace(&mut script.wait, Wait::Running) else {
            return;
        };
        let valid = collect.digits.len() >= collect.min
            && collect
                .valid
                .find(&collect.digits)
                .is_some_and(|m| m.start() == 0 && m.end() == collect.digits.len());
        let uuid = self
            .calls
            .get(&key)
            .map(|c| c.uuid.clone())
            .unwrap_or_default();
        if valid {
            info!(
                uuid,
                digits = collect.digits,
                variable = collect.variable,
                "digits collected"
            );
            let (variable, digits) = (collect.variable.clone(), collect.digits.clone());
            self.set_var(key, &variable, &digits);
            self.set_var(key, "read_result", "success");
            return self.resume(now, key);
        }
        collect.tries_left -= 1;
        if collect.tries_left == 0 {
            info!(uuid, digits = collect.digits, "no valid digits");
            let result = if collect.digits.is_empty() {
                "timeout"
            } else {
                "failure"
            };
            self.set_var(key, "read_result", result);
            return self.resume(now, key);
        }
        self.prompt_for_digits(now, key, collect, true);
    }

    /// A timer armed by the script fired.
    pub(super) fn script_timer(&mut self, now: Now, key: CallKey, epoch: u64) {
        let Some(script) = self.calls.get_mut(&key).and_then(|c| c.script.as_mut()) else {
            return;
        };
        if script.epoch != epoch {
            return;
        }
        match &script.wait {
            Wait::Sleep => self.resume(now, key),
            Wait::Digits(collect) if !collect.prompting => self.digits_complete(now, key),
            Wait::Bridge(_) => {
                info!(call = key, "bridge: no answer within call_timeout");
                self.bridge_group_failed(now, key, 480, "NO_ANSWER");
            }
            Wait::Forever | Wait::Held(_) => {
                info!(
                    call = key,
                    "parked without an answer for the no-answer time"
                );
                self.finish_script(now, key, "NO_ANSWER");
            }
            Wait::Originate => self.originate_timed_out(now, key),
            _ => {}
        }
    }

    /// `echo`: before an answer, the caller's own codec is echoed untouched (a relay); after,
    /// the endpoint is switched to echo what it receives.
    fn start_echo(&mut self, now: Now, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(a) = call.media.endpoint(Side::A).cloned() else {
            return;
        };
        if call.a_sdp.is_none() && call.state != CallState::Answered {
            let Some(offer) = call.a_offer.clone() else {
                return;
            };
            match switchyard_sdp::answer(&offer, a.local, &mut call.a.origin, ECHO_CODECS) {
                Ok(answer) => {
                    // The echo relays whatever the caller sends: a re-INVITE is answered in
                    // the same codec.
                    call.a_plan = answer.chosen_codec().map(|codec| LegPlan {
                        dtmf: LegDtmf::Rfc4733,
                        codec: codec.name,
                    });
                    call.app = Some(App::Echo);
                    self.media.echo(a.id);
                    self.answer_a(now, key, answer.to_bytes());
                }
                Err(_) => return self.finish_script(now, key, "INCOMPATIBLE_DESTINATION"),
            }
        } else {
            call.app = Some(App::Echo);
            self.media.echo(a.id);
            if call.state != CallState::Answered
                && let Some(sdp) = call.a_sdp.clone()
            {
                self.answer_a(now, key, sdp);
            }
        }
        self.wait(key, Wait::Forever);
    }

    /// `conference ROOM[@profile]`.
    fn join_room(&mut self, now: Now, key: CallKey, data: &str) {
        let room = data.split('@').next().unwrap_or_default().trim().to_owned();
        if room.is_empty() {
            warn!("conference: no room");
            return;
        }
        let rate = self.settings.conference_rate;
        if self
            .calls
            .get(&key)
            .is_some_and(|c| c.a_sdp.is_none() && c.state != CallState::Answered)
            && let Err((_, cause)) = self.own_media(now, key, Some(rate))
        {
            return self.finish_script(now, key, cause);
        }
        let Some(a) = self
            .calls
            .get(&key)
            .and_then(|c| c.media.endpoint(Side::A))
            .map(|e| e.id)
        else {
            return;
        };
        let id = self.room(&room, a);
        let a = if a.thread() == id.thread() {
            a
        } else {
            // A room lives on one media thread and this call's leg is on another: the leg
            // moves to a new endpoint beside the room.
            match self.move_caller_leg(now, key, id) {
                Some(moved) => moved,
                None => {
                    warn!(
                        room,
                        "conference: the call's media cannot move to the room's thread"
                    );
                    if self.rooms.get(&room).is_some_and(|r| r.members == 0)
                        && let Some(r) = self.rooms.remove(&room)
                    {
                        self.media.close_conference(r.id);
                    }
                    return self.finish_script(now, key, "NORMAL_TEMPORARY_FAILURE");
                }
            }
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.app = Some(App::Conference(room.clone()));
        if let Some(r) = self.rooms.get_mut(&room) {
            r.members += 1;
        }
        let tone = Player::new(
            vec![PlayItem::Tone(Sounds::conference_tone(true))],
            self.settings.conference_rate,
            false,
        )
        .ok();
        self.media.join_conference(id, a, false, false, tone);
        info!(uuid = call.uuid, room, "joined conference");
        let answered = call.state == CallState::Answered;
        let sdp = call.a_sdp.clone();
        if !answered && let Some(sdp) = sdp {
            self.answer_a(now, key, sdp);
        }
        self.wait(key, Wait::Forever);
    }

    /// Moves the caller's terminated leg to a new endpoint on `room`'s media thread. An
    /// answered caller is sent a re-INVITE with the new address (RFC 3264 §8.3.1, same codec);
    /// one that has not had our SDP yet simply gets the new address in it. None when the leg
    /// is not ours or only early media was given (no re-INVITE in an early dialog).
    fn move_caller_leg(
        &mut self,
        now: Now,
        key: CallKey,
        room: switchyard_media::ConferenceId,
    ) -> Option<switchyard_media::EndpointId> {
        let call = self.calls.get(&key)?;
        if call.early && call.state != CallState::Answered {
            return None;
        }
        let codec = call.a_leg_codec.clone()?;
        let old = call.media.endpoint(Side::A)?.clone();
        let remote = call.a_offer.as_ref().and_then(|o| o.audio_destination());
        let our_sdp = SessionDescription::parse(call.a_sdp.as_deref()?).ok()?;
        let dtmf = call.a_plan.as_ref().map_or(LegDtmf::Rfc4733, |p| p.dtmf);
        let answered = call.state == CallState::Answered;
        let new = self
            .media
            .allocate_for(room)
            .map_err(|error| warn!(%error, "no media ports to move the caller's leg"))
            .ok()?;
        if let Some(remote) = remote {
            self.media.set_remote(new.id, remote);
        }
        self.media.terminate(
            new.id,
            codec,
            DtmfOptions {
                detect_inband: dtmf == LegDtmf::Inband,
                mute_detected: false,
            },
        );
        self.media.release(old.id);
        self.endpoint_calls.remove(&old.id);
        self.endpoint_calls.insert(new.id, key);
        let user_agent = self.settings.user_agent.clone();
        let call = self.calls.get_mut(&key)?;
        let sdp = switchyard_sdp::anchor(&our_sdp, new.local, &mut call.a.origin, None)
            .ok()?
            .to_bytes();
        call.a_sdp = Some(sdp.clone());
        call.a.last_sdp = Some(sdp.clone());
        call.media = Media::Single { a: new.clone() };
        info!(
            uuid = call.uuid,
            "caller leg moved to the conference's media thread"
        );
        if answered {
            let dialog = &mut call.a.dialog;
            let bytes = dialog.request(
                Method::Invite,
                None,
                &new_branch(),
                &user_agent,
                Some((SDP, &sdp)),
            );
            let peer = dialog.peer;
            let request = parse_own(bytes)?;
            let tx = self.transactions.send_request(now.mono, request, peer);
            self.client_roles
                .insert(tx, ClientRole::Reoffer { call: key });
        }
        Some(new.id)
    }

    /// The caller's answer to our re-INVITE: ACKed (RFC 3261 §13.2.2.4); a refusal leaves the
    /// caller sending to an address we no longer hold, so the call ends.
    pub(super) fn on_reoffer_response(&mut self, now: Now, key: CallKey, msg: &Message) {
        let status = msg.status().unwrap_or_default();
        let user_agent = self.settings.user_agent.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if (200..300).contains(&status) {
            let dialog = &mut call.a.dialog;
            let ack = dialog.acknowledge(msg.cseq().0, &new_branch(), &user_agent);
            self.transactions.send_stateless(dialog.peer, ack);
            if let (Ok(answer), Some(a)) = (
                SessionDescription::parse(msg.body()),
                call.media.endpoint(Side::A).map(|e| e.id),
            ) && let Some(remote) = answer.audio_destination()
            {
                self.media.set_remote(a, remote);
            }
        } else if status >= 300 {
            warn!(uuid = call.uuid, status, "the caller refused our re-INVITE");
            self.hang_up(now, key, "NORMAL_TEMPORARY_FAILURE", "system");
        }
    }

    /// `transfer EXTENSION [DIALPLAN [CONTEXT]]`: hunts again in the plan the call started
    /// with; the call keeps its legs and variables.
    fn transfer(&mut self, now: Now, key: CallKey, data: &str) {
        let args = split_args(data);
        let Some(extension) = args.first().map(|e| (*e).to_owned()) else {
            warn!("transfer: no extension");
            return;
        };
        let Some(script) = self.calls.get_mut(&key).and_then(|c| c.script.as_mut()) else {
            return;
        };
        if args.get(1) == Some(&"inline") {
            // The inline dialplan is for the console and modules only: in a plan, a variable a
            // caller controls could otherwise become applications (a bridge to a trunk).
            warn!(
                extension,
                "transfer: `inline` is a console form, not a dialplan one"
            );
            return self.finish_script(now, key, "NO_ROUTE_DESTINATION");
        }
        script.transfers += 1;
        if script.transfers > MAX_TRANSFERS {
            warn!(call = key, "too many transfers: a dialplan loop");
            return self.finish_script(now, key, "EXCHANGE_ROUTING_ERROR");
        }
        let context = args
            .get(2)
            .map(|c| (*c).to_owned())
            .or_else(|| script.vars.get("context").map(str::to_owned))
            .unwrap_or_else(|| "default".into());
        script.vars.set("destination_number", extension.clone());
        script.vars.set("context", context.clone());
        let plan = Arc::clone(&script.plan);
        let vars = script.vars.clone();
        match self.hunt_call(&plan, &context, &vars, now) {
            Ok((actions, vars)) => {
                let Some(call) = self.calls.get_mut(&key) else {
                    return;
                };
                // The CDR keeps the number dialled; the log tells where it went.
                info!(uuid = call.uuid, extension, context, "transfer");
                if let Some(script) = call.script.as_mut() {
                    script.queue = actions.into();
                    script.vars = vars;
                }
            }
            Err(error) => {
                warn!(%error, "transfer");
                self.finish_script(now, key, "NO_ROUTE_DESTINATION");
            }
        }
    }

    // ----- bridge ---------------------------------------------------------------------------

    fn start_bridge(&mut self, now: Now, key: CallKey, data: &str) {
        let spec = match parse_bridge(data) {
            Ok(spec) => spec,
            Err(error) => {
                warn!(%error, "bridge");
                self.set_var(key, "originate_disposition", "INVALID_NUMBER_FORMAT");
                return self.after_bridge_failure(now, key, 484, "INVALID_NUMBER_FORMAT".into());
            }
        };
        let var = |name: &str| {
            spec.variables
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .or_else(|| self.var(key, name))
                .filter(|v| !v.is_empty())
        };
        let timeout = var("call_timeout")
            .and_then(|t| t.parse::<u64>().ok())
            .map_or(self.settings.no_answer, |secs| {
                bounded_ms(secs.saturating_mul(1000))
            });
        let caller_id = (
            var("origination_caller_id_number").or_else(|| var("effective_caller_id_number")),
            var("origination_caller_id_name").or_else(|| var("effective_caller_id_name")),
        );
        let first_fork = self.calls.get(&key).map_or(0, |c| c.forks.len());
        self.wait(
            key,
            Wait::Bridge(BridgeRun {
                groups: spec.groups.into(),
                timeout,
                first_fork,
                caller_id,
                last_failure: None,
                cancelled: false,
            }),
        );
        self.next_bridge_group(now, key);
    }

    /// Rings the next group of targets, or gives up when none is left.
    fn next_bridge_group(&mut self, now: Now, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let first_fork = call.forks.len();
        let Some(Wait::Bridge(run)) = call.script.as_mut().map(|s| &mut s.wait) else {
            return;
        };
        let Some(group) = run.groups.pop_front() else {
            let (status, cause) = run
                .last_failure
                .clone()
                .unwrap_or((480, "NO_ROUTE_DESTINATION".into()));
            return self.after_bridge_failure(now, key, status, cause);
        };
        run.first_fork = first_fork;
        let (timeout, caller_id) = (run.timeout, run.caller_id.clone());
        if let Err((status, cause)) = self.prepare_b_leg(now, key) {
            return self.bridge_group_failed(now, key, status, cause);
        }
        let mut rung = 0;
        for target in &group {
            rung += self.ring_target(now, key, target, &caller_id);
        }
        if rung == 0 {
            let (status, cause) = match group.as_slice() {
                [Target::User(_)] | [] => (480, "USER_NOT_REGISTERED"),
                _ => (480, "NO_ROUTE_DESTINATION"),
            };
            return self.bridge_group_failed(now, key, status, cause);
        }
        // A new epoch: the call_timeout of an earlier group must not cut this one short.
        let Some(script) = self.calls.get_mut(&key).and_then(|c| c.script.as_mut()) else {
            return;
        };
        script.epoch += 1;
        let epoch = script.epoch;
        self.timers
            .push(Reverse((now.mono + timeout, Timer::Script(key, epoch))));
    }

    /// Allocates the callee-side endpoint beside the caller's and works out the offer the
    /// callees get. When the caller's media is still untouched, the offer is the caller's,
    /// anchored (so the call can stay a relay); when we already answered it ourselves, the
    /// callee is offered the caller's codecs and ours and the legs are connected terminated.
    fn prepare_b_leg(&mut self, _now: Now, key: CallKey) -> Result<(), (u16, &'static str)> {
        let Some(call) = self.calls.get_mut(&key) else {
            return Err((500, "NORMAL_TEMPORARY_FAILURE"));
        };
        if let Media::Single { a } = &call.media {
            let a = a.clone();
            let b = self.media.allocate_beside(a.id).map_err(|error| {
                warn!(%error, "no media ports for the callee leg");
                (503, "NORMAL_CIRCUIT_CONGESTION")
            })?;
            self.endpoint_calls.insert(b.id, key);
            call.media = Media::Bridge { a, b };
        }
        let offer = call
            .a_offer
            .clone()
            .ok_or((488, "INCOMPATIBLE_DESTINATION"))?;
        let b = call
            .media
            .endpoint(Side::B(0))
            .cloned()
            .ok_or((500, "NORMAL_TEMPORARY_FAILURE"))?;
        let mut b_offer = switchyard_sdp::anchor(&offer, b.local, &mut call.b_origin, None)
            .map_err(|_| (488, "INCOMPATIBLE_DESTINATION"))?;
        let terminated_here = call.a_sdp.is_some();
        // What we can transcode to goes after the caller's own codecs, so a callee that
        // shares one with the caller picks it and the call stays a relay.
        if media_plan::plain_rtp(&offer)
            && offer
                .active_audio()
                .is_some_and(|m| m.codecs().iter().any(media_plan::decodable))
        {
            switchyard_sdp::add_codecs(&mut b_offer, &self.settings.transcodable);
        } else if terminated_here {
            return Err((488, "INCOMPATIBLE_DESTINATION"));
        }
        call.b_offer = Some(b_offer);
        if terminated_here {
            // The caller hears ringback from us while the callees ring; an answered caller
            // hears ${transfer_ringback} instead when set (FreeSWITCH: a queue's music goes
            // on while an agent rings).
            let answered = call.state == CallState::Answered;
            let chosen = answered
                .then(|| self.var(key, "transfer_ringback"))
                .flatten()
                .filter(|v| !v.trim().is_empty());
            let wanted = chosen.as_deref().unwrap_or("tone_stream://ringback").trim();
            let (sound, player) = match self.player_for(key, wanted, true) {
                Ok(player) => (wanted, Ok(player)),
                Err(error) => {
                    warn!(%error, sound = wanted, "transfer_ringback: playing ringback instead");
                    let ringback = "tone_stream://ringback";
                    (ringback, self.player_for(key, ringback, true))
                }
            };
            if let Ok(player) = player
                && let Some(a) = self.calls.get(&key).and_then(|c| c.media.endpoint(Side::A))
            {
                info!(
                    uuid = self.calls[&key].uuid,
                    sound, "ringback while the bridge rings"
                );
                self.media.play(a.id, player);
            }
        }
        Ok(())
    }

    /// Starts the forks of one target; returns how many.
    fn ring_target(
        &mut self,
        now: Now,
        key: CallKey,
        target: &Target,
        caller_id: &(Option<String>, Option<String>),
    ) -> usize {
        let Some(call) = self.calls.get(&key) else {
            return 0;
        };
        let Some(offer) = call.b_offer.as_ref().map(SessionDescription::to_bytes) else {
            return 0;
        };
        let caller = call.caller.clone();
        let max_forwards = call.max_forwards;
        // Who the user and URI targets see calling (a gateway presents its own caller id).
        let number = caller_id.0.clone().unwrap_or(caller);
        let display = caller_id.1.clone().or_else(|| {
            self.directory
                .users
                .get(&number)
                .and_then(|u| u.display_name.clone())
        });
        match target {
            Target::User(user) => {
                let contacts: Vec<(String, Peer)> = self
                    .registrar
                    .contacts(user, now.unix_secs())
                    .into_iter()
                    .map(|b| (strip_uri_headers(&b.contact).to_owned(), b.flow))
                    .collect();
                if contacts.is_empty() {
                    info!(user, "callee not registered");
                    return 0;
                }
                if let Some(c) = self.calls.get_mut(&key) {
                    c.callee = user.clone();
                }
                let domain = self.settings.domain.clone();
                let count = contacts.len();
                for (contact, flow) in contacts {
                    self.start_fork(
                        now,
                        key,
                        ForkTarget {
                            callee: user,
                            from_user: &number,
                            display: display.as_deref(),
                            from_uri: None,
                            to_uri: &format!("<sip:{user}@{domain}>"),
                            request_uri: &contact,
                            flow,
                        },
                        &offer,
                        max_forwards,
                    );
                }
                count
            }
            Target::Gateway { name, number } => {
                self.ring_gateway(now, key, name, number, caller_id, &offer, max_forwards)
            }
            Target::Uri { user, addr } => {
                // Request-URI and To from the URI itself; the callee is its user, as for
                // user/ID, so a module that offered the call to it recognises the answer.
                let uri = format!("sip:{user}@{addr}");
                if let Some(c) = self.calls.get_mut(&key) {
                    c.callee = user.clone();
                }
                let started = self.start_fork(
                    now,
                    key,
                    ForkTarget {
                        callee: user,
                        from_user: &number,
                        display: display.as_deref(),
                        from_uri: None,
                        to_uri: &format!("<{uri}>"),
                        request_uri: &uri,
                        flow: Peer {
                            transport: TransportKind::Udp,
                            addr: *addr,
                        },
                    },
                    &offer,
                    max_forwards,
                );
                usize::from(started.is_some())
            }
        }
    }

    /// Every fork of the current group failed (or the group timed out): try the next group.
    pub(super) fn bridge_group_failed(&mut self, now: Now, key: CallKey, status: u16, cause: &str) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(Wait::Bridge(run)) = call.script.as_mut().map(|s| &mut s.wait) else {
            return;
        };
        let first = run.first_fork;
        // As FreeSWITCH's originate_disposition: the cause of the last attempt (within a
        // group, check_group_over already chose its most telling status).
        run.last_failure = Some((status, cause.to_owned()));
        let count = call.forks.len();
        for fork in first..count {
            self.cancel_fork(now, key, fork);
        }
        self.next_bridge_group(now, key);
    }

    /// No group answered: record why, then go on with the plan if `continue_on_fail` allows,
    /// else end the call with the cause.
    fn after_bridge_failure(&mut self, now: Now, key: CallKey, status: u16, cause: String) {
        info!(call = key, status, cause, "bridge failed");
        self.set_var(key, "originate_disposition", &cause);
        self.set_var(key, "last_bridge_hangup_cause", &cause);
        // Before the call goes on or ends: a queue puts its agent back (or to break) on it.
        self.publish_call(
            now,
            "bridge.failed",
            key,
            serde_json::json!({ "cause": cause, "status": status }),
        );
        if let Some(call) = self.calls.get_mut(&key) {
            call.b_final = Some(status);
            if let Some(a) = call.media.endpoint(Side::A).map(|e| e.id)
                && call.a_sdp.is_some()
            {
                self.media.stop_playback(a);
            }
        }
        let cancelled = self
            .calls
            .get(&key)
            .and_then(|c| c.script.as_ref())
            .is_some_and(|s| matches!(&s.wait, Wait::Bridge(run) if run.cancelled));
        let carry_on = cancelled
            || self
                .var(key, "continue_on_fail")
                .is_some_and(|value| match value.trim() {
                    "true" | "yes" | "on" => true,
                    list => list.split(',').any(|c| c.trim() == cause),
                });
        if carry_on {
            // The callee-side endpoint goes back until the next bridge.
            if let Some(call) = self.calls.get_mut(&key)
                && let Media::Bridge { a, b } = &call.media
            {
                let (a, b) = (a.clone(), b.id);
                self.media.release(b);
                self.endpoint_calls.remove(&b);
                call.media = Media::Single { a };
                call.b_offer = None;
            }
            return self.resume(now, key);
        }
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if call.state == CallState::Answered {
            self.hang_up(now, key, &cause, "callee");
        } else {
            // RFC 3261 §16.7: a 408 from the callee side reaches the caller as 480.
            let status = if status == 408 { 480 } else { status };
            self.fail_unanswered(now, key, status, &cause);
        }
    }

    /// The callee answered: the script waits for the bridge to end.
    pub(super) fn script_bridged(&mut self, now: Now, key: CallKey) {
        // Whether to record it is mod_recorder's decision, on this event.
        self.wait(key, Wait::Bridged);
        self.publish_call(now, "call.answered", key, serde_json::json!({}));
    }

    /// The callee answered a bridge whose caller leg we already terminate (after an IVR, or
    /// early media of our own): its leg is terminated in the codec it chose and connected.
    pub(super) fn connect_late(
        &mut self,
        key: CallKey,
        fork: usize,
        b_answer: &SessionDescription,
    ) -> bool {
        let Some(callee) = self.calls.get(&key).map(|c| c.callee.clone()) else {
            return false;
        };
        let callee_mode = self.dtmf_mode_of(&callee);
        let Some(call) = self.calls.get_mut(&key) else {
            return false;
        };
        let Media::Bridge { a, b } = &call.media else {
            return false;
        };
        let (a, b) = (a.id, b.id);
        let Some(b_codec) = b_answer.chosen_codec() else {
            return false;
        };
        let b_te = b_answer.telephone_event(b_codec.clock_rate);
        let Some(mut b_leg) = media_plan::leg_codec(&b_codec, b_te, call.a_rate) else {
            return false;
        };
        if let Some(remote) = b_answer.audio_destination() {
            self.media.set_remote(b, remote);
        }
        // A callee that numbered the codec its own way still sends it with our number.
        let ours = call
            .b_offer
            .as_ref()
            .and_then(SessionDescription::active_audio)
            .and_then(|m| {
                m.codecs().into_iter().find(|c| {
                    c.name.eq_ignore_ascii_case(&b_codec.name) && c.clock_rate == b_codec.clock_rate
                })
            })
            .map(|c| c.payload_type);
        b_leg.also_receives = ours.filter(|pt| *pt != b_leg.payload_type);
        let a_dtmf = call.a_plan.as_ref().map_or(LegDtmf::Rfc4733, |p| p.dtmf);
        let b_dtmf = LegDtmf::resolve(callee_mode, b_te.is_some());
        call.transcoded = call
            .a_plan
            .as_ref()
            .is_none_or(|p| !p.codec.eq_ignore_ascii_case(&b_codec.name));
        call.b_plan = Some(LegPlan {
            dtmf: b_dtmf,
            codec: b_codec.name.clone(),
        });
        call.terminated = true;
        call.b_leg_codec = Some(b_leg.clone());
        info!(
            uuid = call.uuid,
            fork,
            callee_codec = b_leg.label(),
            "connecting to our caller leg"
        );
        self.media.stop_playback(a);
        self.media.terminate(
            b,
            b_leg,
            DtmfOptions {
                detect_inband: b_dtmf == LegDtmf::Inband,
                mute_detected: b_dtmf == LegDtmf::Inband && a_dtmf != LegDtmf::Inband,
            },
        );
        self.media.connect(a, b);
        true
    }

    /// The callee hung up a bridge with `hangup_after_bridge=false`: the caller's leg is
    /// ours again and its plan goes on after the `bridge`. False when the caller's media
    /// cannot be taken over (then the call ends as usual).
    pub(super) fn continue_after_bridge(&mut self, now: Now, key: CallKey, fork: usize) -> bool {
        if self
            .calls
            .get(&key)
            .is_none_or(|c| c.winner != Some(fork) || c.state != CallState::Answered)
        {
            return false;
        }
        self.detach_fork(key, fork);
        if self.adopt_caller(key).is_err() {
            if let Some(call) = self.calls.get_mut(&key) {
                call.winner = Some(fork);
            }
            return false;
        }
        info!(
            call = key,
            "callee hung up; the plan goes on (hangup_after_bridge=false)"
        );
        self.resume(now, key);
        true
    }

    /// Adds a module's application to the registry; the core's names cannot be taken.
    // The module loader (the modules issue) is the caller; until then the tests are.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn register_application(
        &mut self,
        name: &str,
        application: Arc<dyn ModuleApplication>,
    ) -> Result<(), String> {
        if CORE_APPLICATIONS.contains(&name) {
            return Err(format!("{name} is a core application"));
        }
        if self.applications.contains_key(name) {
            return Err(format!("{name} is already registered"));
        }
        self.applications.insert(name.to_owned(), application);
        Ok(())
    }

    /// Removes a module's application (when its module unloads).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn unregister_application(&mut self, name: &str) -> bool {
        self.applications.remove(name).is_some()
    }

    // ----- reload ---------------------------------------------------------------------------

    /// `reload dialplan`: new calls hunt in the new plan; calls in progress keep theirs. A
    /// plan with errors (it does not compile, or `dialplan check` finds an error against the
    /// live registry, directory and gateways) is refused and the old one keeps serving.
    pub(super) fn reload_dialplan(&mut self) -> Result<String, String> {
        let mut applications: Vec<&str> = CORE_APPLICATIONS.to_vec();
        applications.extend(self.applications.keys().map(String::as_str));
        let users: Vec<&str> = self.directory.users.keys().map(String::as_str).collect();
        let gateways = self.gateways.names();
        let globals: Vec<&str> = self
            .settings
            .globals
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        let env = CheckEnv {
            applications: &applications,
            known_variables: switchyard_dialplan::check::CHANNEL_VARIABLES,
            globals: &globals,
            users: Some(&users),
            gateways: Some(&gateways),
        };
        let (plan, warnings) = load_routing_plan(
            &self.settings.dialplan_dir,
            self.settings.holidays.as_deref(),
            self.plan.zone.clone(),
            &env,
        )
        .map_err(|errors| {
            format!("dialplan not reloaded; the old plan keeps serving:\n{errors}")
        })?;
        let (contexts, extensions) = plan.size();
        self.plan = Arc::new(plan);
        info!(contexts, extensions, "dialplan reloaded");
        let mut out = format!("dialplan reloaded: {contexts} contexts, {extensions} extensions\n");
        for warning in warnings {
            let _ = writeln!(out, "{warning}");
        }
        Ok(out)
    }
}

/// Loads a plan directory and checks it against `env`: the errors, one per line with
/// file:line:column, when it does not compile or the check finds an error. Warnings (of
/// both) come back with the plan.
pub(crate) fn load_routing_plan(
    dir: &std::path::Path,
    holidays: Option<&std::path::Path>,
    zone: switchyard_dialplan::LocalZone,
    env: &CheckEnv<'_>,
) -> Result<(RoutingPlan, Vec<String>), String> {
    let lines = |diagnostics: &[Diagnostic]| {
        diagnostics
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let plan = RoutingPlan::load(dir, holidays, zone).map_err(|d| lines(&d))?;
    let found = switchyard_dialplan::check::check(&plan.dialplan, env);
    let errors: Vec<Diagnostic> = found
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .cloned()
        .collect();
    if !errors.is_empty() {
        return Err(lines(&errors));
    }
    let warnings = plan
        .warnings
        .iter()
        .chain(&found)
        .map(ToString::to_string)
        .collect();
    Ok((plan, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_strings() {
        let spec = parse_bridge("{call_timeout=20,origination_caller_id_number=123}user/1001,user/1002@example.com|sofia/gateway/gw1/5551234").unwrap();
        assert_eq!(
            spec.groups,
            vec![
                vec![Target::User("1001".into()), Target::User("1002".into())],
                vec![Target::Gateway {
                    name: "gw1".into(),
                    number: "5551234".into()
                }]
            ]
        );
        assert_eq!(
            spec.variables,
            vec![
                ("call_timeout".into(), "20".into()),
                ("origination_caller_id_number".into(), "123".into())
            ]
        );
        assert_eq!(
            parse_bridge("gateway/a/1|gateway/b/1")
                .unwrap()
                .groups
                .len(),
            2
        );
        for bad in [
            "",
            "{call_timeout=1",
            "sip:foo",
            "sip:agent@example.com",
            "sip:@127.0.0.1",
            "sip:a;transport=tcp@127.0.0.1",
            "sofia/internal/1000@127.0.0.1",
            "user/",
            "[x=1]user/1",
            "gateway/a",
        ] {
            assert!(parse_bridge(bad).is_err(), "{bad}");
        }
        assert!(
            parse_bridge("sip:a@example.com")
                .unwrap_err()
                .contains("sip:USER@IP[:PORT]")
        );
        let uri = |user: &str, addr: &str| Target::Uri {
            user: user.into(),
            addr: addr.parse().unwrap(),
        };
        assert_eq!(
            parse_bridge("sofia/internal/sip:agent1@127.0.0.1:5090,sip:agent2@10.0.0.2|sip:a3@[::1]:5070|sip:a4@[2001:db8::1]")
                .unwrap()
                .groups,
            vec![
                vec![
                    uri("agent1", "127.0.0.1:5090"),
                    uri("agent2", "10.0.0.2:5060")
                ],
                vec![uri("a3", "[::1]:5070")],
                vec![uri("a4", "[2001:db8::1]:5060")],
            ]
        );
    }

    #[test]
    fn causes_map_to_statuses() {
        assert_eq!(status_for_cause("USER_BUSY"), 486);
        assert_eq!(status_for_cause("CALL_REJECTED"), 403);
        assert_eq!(status_for_cause("UNALLOCATED_NUMBER"), 404);
        assert_eq!(status_for_cause("NORMAL_TEMPORARY_FAILURE"), 503);
        assert_eq!(status_for_cause("WHATEVER"), 480);
    }

    #[test]
    fn sounds() {
        assert!(
            matches!(parse_sound("welcome!please-hold"), Sound::Prompts(p) if p == ["welcome", "please-hold"])
        );
        assert!(
            matches!(parse_sound("tone_stream://busy;loops=3"), Sound::Tone { spec, loops: 3 } if spec == "busy")
        );
        assert!(matches!(
            parse_sound("tone_stream://%(1000,0,440)"),
            Sound::Tone { loops: 1, .. }
        ));
        assert!(matches!(parse_sound("local_stream://moh"), Sound::Music));
        assert!(matches!(
            parse_sound("silence_stream://250"),
            Sound::Silence(250)
        ));
        assert!(matches!(parse_sound("/tmp/a.wav"), Sound::File(_)));
    }
}
