//! The switch's side of dynamic modules: their applications in the dialplan registry, their
//! console commands, the events they subscribed to, the console lines they send, and the
//! console's `load` / `unload` / `reload` / `show modules`. A child module of `switch`.

use serde_json::{Value, json};
use switchyard_loader::InterfaceKind;

use crate::modules::{ModuleApp, command_result, report_call_error};

use super::*;

impl Switch {
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
                    self.sync_module_apps(name);
                    format!("module {name} unloaded\n")
                })
            }
            ["reload", name] => self
                .modules
                .reread_entries()
                .and_then(|()| self.modules.reload(name).map(|_| ()))
                .map(|()| {
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
                let body = json!({ "command": command, "args": args }).to_string();
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
        event: &str,
        mut fields: Value,
        pinned: &[Arc<switchyard_loader::Module>],
    ) {
        let subscribers = self.modules.subscribers(event);
        if subscribers.is_empty() {
            return;
        }
        if let Some(map) = fields.as_object_mut() {
            map.insert("event".into(), Value::String(event.into()));
        }
        let body = fields.to_string();
        for (name, current) in subscribers {
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
    pub(super) fn publish_call(&self, event: &str, key: CallKey, extra: Value) {
        if self.modules.iter().next().is_none() {
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
        self.publish(event, fields, &pinned);
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
            other => warn!(module, message = other, "unknown message from a module"),
        }
    }
}
