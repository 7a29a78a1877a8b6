//! The switch's side of dynamic modules: their applications in the dialplan registry, their
//! console commands, the events they subscribed to, the messages they send, and the
//! console's `load` / `unload` / `reload` / `show modules`, and media taps (`tap start|stop
//! UUID MODULE`: a call's audio as 20 ms frames to a module's `on_frame`). A child module of
//! `switch`.
//!
//! What a module can do, by message (`send(NAME, BODY)`, queued to the signalling thread):
//! - `console` `{"line":"..."}`: runs a console line, e.g. `uuid_exec UUID APP DATA` to play
//!   to a held call or bridge it to an agent, `uuid_break UUID`, `uuid_bridge_cancel UUID`,
//!   `uuid_kill UUID`, `transfer UUID EXT [CONTEXT]`.
//! - `event` `{"event":"acd.agent",...}`: published to the *other* modules subscribed to that
//!   name, and logged at info (target `event`) for operators. The core's own names
//!   (`call.*`, `bridge.*`, `dtmf`, `tick`) are refused: no module speaks for the core.
//! - `queue_log` `{"queue","call_uuid","agent","event","data":{..}}`: one row of the
//!   `queue_log` table, stamped with the switch's wall clock (`show queue_log [N]`).
//!
//! What a module hears, by subscription: `call.new`, `call.answered` (`callee`: the user
//! rung, for a bridge), `call.ended` (`cause`, `side`), `dtmf` (`digit`, `leg`, `via`),
//! `bridge.failed` (`cause`, `status`), and `tick` once a second. Every event body has
//! `event` and `now_ms` (the switch's monotonic milliseconds since start; modules keep time
//! by it), and call events `uuid`, `caller`, `callee`, `destination`, `answered`, `bridged`,
//! `variables`. `command` bodies carry `now_ms` too.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::{Value, json};
use switchyard_loader::{CallError, InterfaceKind, Module};
use switchyard_media::TapReceiver;

use crate::modules::{ModuleApp, command_result, report_call_error};

use super::*;

/// Stream ids for `on_frame`, unique for the daemon's life.
static NEXT_STREAM: AtomicU64 = AtomicU64::new(1);

/// A module's media tap on a call: a worker thread pops the call's frames and hands them to
/// the module, so the module's code runs neither on a media thread nor on this one.
pub(super) struct ModuleTap {
    pub(super) module: String,
    caller: EndpointId,
    stream: u64,
    stop: Arc<AtomicBool>,
    /// Set by the worker as it ends (the tap gone, the module disabled).
    done: Arc<AtomicBool>,
}

impl ModuleTap {
    /// Stops the worker: the flag for a frame in flight, the untap for a worker waiting on
    /// the ring (its receiver reports the end at once).
    fn end(&self, media: &MediaEngine) {
        self.stop.store(true, Ordering::Relaxed);
        media.untap(self.caller);
    }
}

/// The worker: frames until the tap ends (untap, the call's release, the leg leaving its
/// node), `stop` is set, or the module is disabled by a panic.
fn feed_module(module: Arc<Module>, frames: TapReceiver, stream: u64, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) && !module.is_disabled() {
        let Ok(frame) = frames.recv() else {
            break;
        };
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if let Err(error) = module.frame(stream, frame.stereo(), frame.rate(), 2) {
            report_call_error(&error);
            if matches!(
                error,
                CallError::Panicked { .. } | CallError::Disabled { .. }
            ) {
                break;
            }
        }
    }
    debug!(
        module = module.name(),
        stream,
        dropped = frames.dropped(),
        "media tap ended"
    );
}

impl Switch {
    /// `tap start|stop UUID MODULE`.
    pub(super) fn tap_command(
        &mut self,
        action: &str,
        uuid: &str,
        module: &str,
    ) -> Result<String, String> {
        let Some(key) = self.call_by_uuid(uuid) else {
            return Err(format!("no such call: {uuid}"));
        };
        match action {
            "start" => self
                .start_tap(key, module)
                .map(|stream| format!("tapping {uuid} to {module} (stream {stream})\n")),
            "stop" => {
                let call = self.calls.get_mut(&key).ok_or("no such call")?;
                match call.module_tap.take() {
                    Some(tap) if tap.module == module => {
                        tap.end(&self.media);
                        Ok(format!("tap of {uuid} to {module} stopped\n"))
                    }
                    other => {
                        call.module_tap = other;
                        Err(format!("{uuid} is not tapped to {module}"))
                    }
                }
            }
            _ => Err("usage: tap start|stop <uuid> <module>".into()),
        }
    }

    /// Taps the call's audio to `module`: the call must be answered and its media terminated
    /// here, or relayed with a codec we decode (then both legs are terminated for decoding
    /// only, as for a recording; the packets pass untouched). Returns the stream id.
    fn start_tap(&mut self, key: CallKey, name: &str) -> Result<u64, String> {
        let module = match self.modules.get(name) {
            Some(loaded) if loaded.module.is_disabled() => {
                return Err(format!("module {name} is disabled"));
            }
            Some(loaded) => Arc::clone(&loaded.module),
            None => return Err(format!("module {name} is not loaded")),
        };
        let call = self.calls.get_mut(&key).ok_or("no such call")?;
        if call.state != CallState::Answered {
            return Err("the call is not answered yet".into());
        }
        if call
            .module_tap
            .as_ref()
            .is_some_and(|t| !t.done.load(Ordering::Relaxed))
        {
            return Err("already tapped".into());
        }
        let caller = match (&call.media, &call.app) {
            (_, Some(App::Conference(_))) => {
                return Err("conference members are not tapped one by one".into());
            }
            (_, Some(App::Echo)) => return Err("the echo test is not tapped".into()),
            (Media::Bridge { a, b }, _) => {
                if !call.terminated && !call.tapped {
                    let Some(codec) = call.relay_codec.clone() else {
                        return Err("the call's codec is not one we decode, or it is SRTP".into());
                    };
                    // Decoded copies, as `start_recording` does; the packets still pass.
                    let dtmf =
                        |plan: &Option<LegPlan>| plan.as_ref().map_or(LegDtmf::Rfc4733, |p| p.dtmf);
                    let (a_dtmf, b_dtmf) = (dtmf(&call.a_plan), dtmf(&call.b_plan));
                    super::media_setup::terminate_pair(
                        &self.media,
                        a,
                        b,
                        codec.clone(),
                        codec,
                        a_dtmf,
                        b_dtmf,
                    );
                    call.tapped = true;
                }
                a.id
            }
            (Media::Single { a }, _) => a.id,
        };
        // Wideband calls are tapped wideband; the rest at the telephone rate.
        let rate = if call.a_rate >= 16000 { 16000 } else { 8000 };
        let frames = self.media.tap(caller, rate).map_err(|e| e.to_string())?;
        let stream = NEXT_STREAM.fetch_add(1, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let (worker_stop, worker_done) = (Arc::clone(&stop), Arc::clone(&done));
        let spawned = std::thread::Builder::new()
            .name(format!("tap-{stream}"))
            .spawn(move || {
                feed_module(module, frames, stream, &worker_stop);
                worker_done.store(true, Ordering::Relaxed);
            });
        if let Err(error) = spawned {
            self.media.untap(caller);
            return Err(format!("cannot start the tap's thread: {error}"));
        }
        info!(uuid = call.uuid, module = name, stream, rate, "media tap");
        call.module_tap = Some(ModuleTap {
            module: name.to_owned(),
            caller,
            stream,
            stop,
            done,
        });
        Ok(stream)
    }

    /// Ends the call's media tap, if any (the call ends or leaves).
    pub(super) fn end_module_tap(&self, tap: Option<ModuleTap>) {
        if let Some(tap) = tap {
            debug!(
                module = tap.module,
                stream = tap.stream,
                "media tap stopped"
            );
            tap.end(&self.media);
        }
    }

    /// Ends every media tap to module `name` (unloaded or reloaded).
    fn end_module_taps(&mut self, name: &str) {
        let taps: Vec<ModuleTap> = self
            .calls
            .values_mut()
            .filter(|c| c.module_tap.as_ref().is_some_and(|t| t.module == name))
            .filter_map(|c| c.module_tap.take())
            .collect();
        for tap in taps {
            self.end_module_tap(Some(tap));
        }
    }

    /// Puts module `name`'s applications into the registry in place of the ones it had
    /// (none when it is gone). A call that used the old ones keeps them (pinned).
    pub(super) fn sync_module_apps(&mut self, name: &str) {
        self.applications.retain(|_, app| app.owner() != name);
        let Some(loaded) = self.modules.get(name) else {
            return;
        };
        let apps: Vec<(String, Arc<dyn ModuleApplication>)> = loaded
            .interfaces
            .iter()
            .filter(|r| r.kind == InterfaceKind::Application)
            .map(|r| {
                let app: Arc<dyn ModuleApplication> = Arc::new(ModuleApp {
                    module: Arc::clone(&loaded.module),
                    app: r.name.clone(),
                });
                (r.name.clone(), app)
            })
            .collect();
        for (app_name, app) in apps {
            if let Err(error) = self.register_application(&app_name, app) {
                warn!(module = name, application = app_name, %error, "application not registered");
            }
        }
    }

    /// The calls holding one of module `name`'s applications.
    pub(super) fn module_in_use(&self, name: &str) -> usize {
        self.calls
            .values()
            .filter(|c| c.pinned_apps.values().any(|app| app.owner() == name))
            .count()
    }

    /// `load` / `unload` / `reload NAME` and `show modules`; a module's own commands.
    pub(super) fn module_command(
        &mut self,
        now: Now,
        words: &[&str],
        line: &str,
    ) -> Option<Result<String, String>> {
        let result = match words {
            ["load", name] => self
                .modules
                .reread_entries()
                .and_then(|()| self.modules.load(name).map(|_| ()))
                .map(|()| {
                    self.sync_module_apps(name);
                    format!("module {name} loaded\n")
                }),
            ["unload", name] => {
                let in_use = self.module_in_use(name);
                self.modules.unload(name, in_use).map(|_| {
                    self.end_module_taps(name);
                    self.sync_module_apps(name);
                    format!("module {name} unloaded\n")
                })
            }
            ["reload", name] => self
                .modules
                .reread_entries()
                .and_then(|()| self.modules.reload(name).map(|_| ()))
                .map(|()| {
                    // Taps end with the code they fed; `tap start` again feeds the new one.
                    self.end_module_taps(name);
                    self.sync_module_apps(name);
                    let held = self.module_in_use(name);
                    format!("module {name} reloaded; {held} call(s) finish on the previous code\n")
                }),
            ["show", "modules"] | ["module", "list"] => {
                let counts: HashMap<String, usize> = self
                    .modules
                    .iter()
                    .map(|(name, _)| (name.clone(), self.module_in_use(name)))
                    .collect();
                Ok(self
                    .modules
                    .status_text(|name| counts.get(name).copied().unwrap_or(0)))
            }
            [command, ..] => {
                let module = self.modules.command_owner(command)?;
                let args = line
                    .trim_start()
                    .strip_prefix(command)
                    .unwrap_or_default()
                    .trim();
                let body = json!({ "command": command, "args": args, "now_ms": self.now_ms(now) })
                    .to_string();
                match module.request("command", body.as_bytes()) {
                    Ok(reply) => command_result(&reply),
                    Err(error) => {
                        report_call_error(&error);
                        Err(error.to_string())
                    }
                }
            }
            [] => return None,
        };
        Some(result)
    }

    /// Tells the modules subscribed to `event` about it; a module that served this call
    /// earlier (`pinned`) hears it on that instance, even after a reload.
    pub(super) fn publish(
        &self,
        now: Now,
        event: &str,
        fields: Value,
        pinned: &[Arc<switchyard_loader::Module>],
    ) {
        self.deliver(now, event, fields, pinned, None);
    }

    /// [`Switch::publish`], but not to `except` (the module that raised the event).
    fn deliver(
        &self,
        now: Now,
        event: &str,
        mut fields: Value,
        pinned: &[Arc<switchyard_loader::Module>],
        except: Option<&str>,
    ) {
        let subscribers = self.modules.subscribers(event);
        if subscribers.is_empty() && !cfg!(test) {
            return;
        }
        if let Some(map) = fields.as_object_mut() {
            map.insert("event".into(), Value::String(event.into()));
            map.insert("now_ms".into(), json!(self.now_ms(now)));
        }
        #[cfg(test)]
        self.published.borrow_mut().push(fields.clone());
        let body = fields.to_string();
        for (name, current) in subscribers {
            if except == Some(name.as_str()) {
                continue;
            }
            let module = pinned
                .iter()
                .find(|m| m.name() == name)
                .cloned()
                .unwrap_or(current);
            if let Err(error) = module.request("event", body.as_bytes()) {
                report_call_error(&error);
            }
        }
    }

    /// The events of a call, with what a module needs to decide on it.
    pub(super) fn publish_call(&self, now: Now, event: &str, key: CallKey, extra: Value) {
        if self.modules.iter().next().is_none() && !cfg!(test) {
            return;
        }
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let variables: serde_json::Map<String, Value> = call
            .script
            .as_ref()
            .map(|s| {
                s.vars
                    .iter()
                    .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let mut fields = json!({
            "uuid": call.uuid,
            "caller": call.caller,
            "callee": call.callee,
            "destination": call.destination,
            "answered": call.state == CallState::Answered,
            "bridged": call.winner.is_some(),
            "variables": variables,
        });
        if let (Some(map), Value::Object(more)) = (fields.as_object_mut(), extra) {
            map.extend(more);
        }
        let pinned: Vec<_> = call
            .pinned_apps
            .values()
            .filter_map(|app| app.instance())
            .collect();
        self.publish(now, event, fields, &pinned);
    }

    /// A message a module sent the host (from any of its threads, queued to this one).
    pub fn handle_module_message(&mut self, now: Now, module: &str, name: &str, body: &[u8]) {
        // A line queued by a module since unloaded or disabled (a panic) is not acted on.
        if self
            .modules
            .get(module)
            .is_none_or(|l| l.module.is_disabled())
        {
            debug!(
                module,
                message = name,
                "message from a module no longer running: dropped"
            );
            return;
        }
        match name {
            "console" => {
                let line = serde_json::from_slice::<Value>(body)
                    .ok()
                    .and_then(|v| v.get("line").and_then(Value::as_str).map(str::to_owned));
                let Some(line) = line else {
                    warn!(module, "console message without a \"line\"");
                    return;
                };
                match self.execute(now, &line) {
                    Ok(out) => debug!(module, line, out = out.trim_end(), "module console line"),
                    Err(error) => warn!(module, line, %error, "module console line failed"),
                }
            }
            "event" => self.module_event(now, module, body),
            "queue_log" => self.module_queue_log(now, module, body),
            other => warn!(module, message = other, "unknown message from a module"),
        }
    }

    /// `event` from a module: logged, then published to the other modules subscribed to it.
    pub(crate) fn module_event(&mut self, now: Now, module: &str, body: &[u8]) {
        let fields = match serde_json::from_slice::<Value>(body) {
            Ok(fields @ Value::Object(_)) => fields,
            _ => return warn!(module, "event message that is not a JSON object: dropped"),
        };
        let Some(event) = fields
            .get("event")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return warn!(module, "event message without an \"event\" name: dropped");
        };
        if is_core_event(&event) {
            return warn!(module, event, "a module cannot raise a core event: dropped");
        }
        info!(target: "event", module, event, body = %fields, "module event");
        self.deliver(now, &event, fields, &[], Some(module));
    }

    /// `queue_log` from a module: a row for the store, stamped with the switch's wall clock.
    pub(crate) fn module_queue_log(&mut self, now: Now, module: &str, body: &[u8]) {
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
            return warn!(
                module,
                "queue_log message that is not a JSON object: dropped"
            );
        };
        let text = |name: &str| {
            fields
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (queue, event) = (text("queue"), text("event"));
        // An agent's own change (log in, break) belongs to no queue: it names the agent.
        if event.is_empty() || (queue.is_empty() && text("agent").is_empty()) {
            return warn!(
                module,
                "queue_log message without \"event\", or without both \"queue\" and \"agent\": dropped"
            );
        }
        let data = fields.get("data").cloned().unwrap_or_else(|| json!({}));
        self.store
            .insert_queue_log(switchyard_store::QueueLogEntry {
                at_unix_ms: now.unix_ms,
                queue,
                call_uuid: text("call_uuid"),
                agent: text("agent"),
                event,
                data: data.to_string(),
            });
    }
}

/// Names only the core publishes.
fn is_core_event(event: &str) -> bool {
    event.starts_with("call.") || event.starts_with("bridge.") || matches!(event, "dtmf" | "tick")
}
