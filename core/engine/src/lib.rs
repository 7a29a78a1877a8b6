//! The Switchyard engine: the signalling reactor and what it drives (registrar, digest
//! authentication, the B2BUA with anchored media, CDRs, the console command set).
//!
//! [`run`] wires the threads of ARCHITECTURE.md together: the signalling reactor (this crate),
//! the media reactors (switchyard-media), the storage thread (switchyard-store) and the console
//! listener (switchyard-console), and returns when a graceful shutdown completes.
#![forbid(unsafe_code)]

mod dialog;
mod gateway;
mod guard;
mod media_plan;
mod modules;
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod originate_tests;
#[cfg(test)]
mod queue_tests;
mod reactor;
mod registrar;
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod script_tests;
mod switch;
#[cfg(test)]
// The virtual clock's origin is read once; time then moves by hand.
#[allow(clippy::disallowed_methods)]
mod switch_tests;
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod transfer_tests;
mod transport;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use switchyard_config::Config;
use switchyard_media::{MediaConfig, MediaEngine};
use switchyard_recording::{MasterKey, Recorder, RecordingInfo};
use switchyard_store::Store;
use tracing::{info, warn};

pub use reactor::{Input, ReactorHandle};
pub use switch::{COMMANDS, CallView, ModuleApplication, RoutingPlan};

use crate::reactor::Reactor;
use crate::registrar::Registrar;
use crate::switch::{LocalAddrs, Switch, SwitchParts};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Config(#[from] switchyard_config::Error),
    #[error("dialplan {dir}:\n{errors}")]
    Dialplan { dir: String, errors: String },
    #[error("database: {0}")]
    Store(#[from] switchyard_store::Error),
    #[error("media: {0}")]
    Media(#[from] switchyard_media::Error),
    #[error("console: {0}")]
    Console(#[from] switchyard_console::Error),
    #[error("recording: {0}")]
    Recording(#[from] switchyard_recording::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("no SIP listener configured: set sip.udp or sip.tcp in switchyard.toml")]
    NoListener,
    /// A required module of modules.toml did not load.
    #[error("{0}")]
    Module(String),
}

fn io_context(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// Where `switchyard run` keeps its state.
pub struct RunOptions {
    pub conf_dir: PathBuf,
    pub data_dir: PathBuf,
}

pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join("switchyard.db")
}

/// The console socket: `console.socket` in switchyard.toml, relative to the data directory.
pub fn console_socket(config: &Config, data_dir: &Path) -> PathBuf {
    if config.console.socket.is_absolute() {
        config.console.socket.clone()
    } else {
        data_dir.join(&config.console.socket)
    }
}

/// Runs the daemon in the foreground until a graceful shutdown completes.
pub fn run(options: RunOptions) -> Result<(), Error> {
    let config = switchyard_config::load(&options.conf_dir)?;
    if config.sip.udp.is_empty() && config.sip.tcp.is_empty() {
        return Err(Error::NoListener);
    }
    std::fs::create_dir_all(&options.data_dir).map_err(io_context(format!(
        "creating data directory {}",
        options.data_dir.display()
    )))?;
    let mut reactor = Reactor::new().map_err(io_context("creating the signalling reactor"))?;
    let bound = reactor
        .bind(&config.sip.udp, &config.sip.tcp)
        .map_err(io_context("binding SIP listeners"))?;
    reactor
        .watch_signals()
        .map_err(io_context("installing signal handlers"))?;
    let handle = reactor.handle();

    // Modules load before the plan is checked: the plan may use their applications.
    let mut modules = modules::Modules::new(
        modules::EngineHost::new(Some(handle.clone())),
        config.modules.clone(),
        &options.conf_dir,
        modules::Modules::default_search(),
    );
    let mut module_apps: Vec<String> = Vec::new();
    for entry in config.modules.clone() {
        match modules.load(&entry.name) {
            Ok(loaded) => module_apps.extend(
                loaded
                    .interfaces
                    .iter()
                    .filter(|r| r.kind == switchyard_loader::InterfaceKind::Application)
                    .map(|r| r.name.clone()),
            ),
            Err(error) if entry.required => return Err(Error::Module(error)),
            Err(error) => warn!(module = entry.name, "optional module not loaded: {error}"),
        }
    }
    let dialplan_dir = config.dialplan.dir_path(&options.conf_dir);
    let holidays = config.dialplan.holidays_path(&options.conf_dir);
    let zone = switchyard_dialplan::LocalZone::parse(&config.dialplan.timezone).map_err(|e| {
        Error::Dialplan {
            dir: dialplan_dir.display().to_string(),
            errors: e.to_string(),
        }
    })?;
    // Checked against the core applications and the loaded modules' ones, the directory,
    // the gateways and the globals.
    let users: Vec<&str> = config.directory.users.keys().map(String::as_str).collect();
    let gateways: Vec<&str> = config.gateways.keys().map(String::as_str).collect();
    let globals: Vec<&str> = config.dialplan.globals.keys().map(String::as_str).collect();
    let mut applications: Vec<&str> = switchyard_dialplan::check::CORE_APPLICATIONS.to_vec();
    applications.extend(module_apps.iter().map(String::as_str));
    let env = switchyard_dialplan::check::CheckEnv {
        applications: &applications,
        known_variables: switchyard_dialplan::check::CHANNEL_VARIABLES,
        globals: &globals,
        users: Some(&users),
        gateways: Some(&gateways),
    };
    let (plan, warnings) =
        switch::load_routing_plan(&dialplan_dir, holidays.as_deref(), zone, &env).map_err(
            |errors| Error::Dialplan {
                dir: dialplan_dir.display().to_string(),
                errors,
            },
        )?;
    for warning in warnings {
        warn!("dialplan: {warning}");
    }
    if options.conf_dir.join("routes.toml").exists() {
        warn!(
            "conf/routes.toml is no longer read: routing is the dialplan in {}",
            dialplan_dir.display()
        );
    }

    let (store, store_thread) = Store::open(&database_path(&options.data_dir))?;
    let media_handle = handle.clone();
    let media = MediaEngine::start(
        MediaConfig {
            ip: config.media.rtp_ip,
            port_min: config.media.rtp_port_min,
            port_max: config.media.rtp_port_max,
            rtp_timeout: Duration::from_secs(config.media.rtp_timeout_secs),
            threads: if config.media.threads == 0 {
                std::thread::available_parallelism().map_or(1, |n| n.get())
            } else {
                config.media.threads
            },
            realtime_priority: (config.media.realtime_priority > 0)
                .then_some(config.media.realtime_priority),
        },
        Box::new(move |event| media_handle.send(Input::Media(event))),
    )?;

    let now = reactor::now();
    let registrar = Registrar::from_stored(store.load_bindings()?, now.unix_ms / 1000);
    let nonce_secret = load_or_create_secret(&options.data_dir.join("nonce.key"))?;
    let socket_path = console_socket(&config, &options.data_dir);
    let local = LocalAddrs {
        udp: bound.udp.first().copied(),
        tcp: bound.tcp.first().copied(),
    };
    info!(
        registrations = registrar.len(),
        users = config.directory.users.len(),
        "loaded configuration from {}",
        options.conf_dir.display()
    );
    let (recorder, recordings_dir) = start_recorder(&config, &options, &store)?;
    let mut switch = Switch::new(
        SwitchParts {
            config,
            plan,
            dialplan_dir,
            holidays,
            modules,
            local,
            media: media.clone(),
            store: store.clone(),
            registrar,
            nonce_secret,
            recorder,
            recordings_dir,
        },
        now,
    );

    let console_handle = handle.clone();
    let console = switchyard_console::serve(
        &socket_path,
        Arc::new(move |line: &str| console_handle.execute(line)),
    )?;

    info!(
        udp = ?bound.udp,
        tcp = ?bound.tcp,
        console = %socket_path.display(),
        "switchyard ready"
    );
    let outcome = reactor
        .run(&mut switch)
        .map_err(io_context("signalling reactor"));
    reactor.flush_remaining(&mut switch);
    drop(console);
    drop(switch);
    media.shutdown();
    store.shutdown();
    store_thread.join();
    info!("switchyard stopped");
    outcome
}

/// The recording writer thread, with the master key when recordings are encrypted. Its index
/// rows go to the store as each file is finished.
fn start_recorder(
    config: &Config,
    options: &RunOptions,
    store: &Store,
) -> Result<(Option<Recorder>, PathBuf), Error> {
    let recording = &config.recording;
    let dir = if recording.dir.is_absolute() {
        recording.dir.clone()
    } else {
        options.data_dir.join(&recording.dir)
    };
    std::fs::create_dir_all(&dir).map_err(io_context(format!(
        "creating recordings directory {}",
        dir.display()
    )))?;
    let key = if recording.encrypt {
        let path = if recording.key_file.is_absolute() {
            recording.key_file.clone()
        } else {
            options.conf_dir.join(&recording.key_file)
        };
        Some(MasterKey::load(&path)?)
    } else {
        None
    };
    let store = store.clone();
    let recorder = Recorder::start(
        key,
        Box::new(move |info: RecordingInfo| {
            if let Some(error) = &info.error {
                tracing::error!(path = %info.path.display(), error, "recording failed");
            }
            store.insert_recording(recording_row(info));
        }),
    )?;
    Ok((Some(recorder), dir))
}

/// The index row of a finished recording.
fn recording_row(info: RecordingInfo) -> switchyard_store::Recording {
    // The recorder thread's callback stamps the row as a reactor would: it runs on its own
    // thread, outside the sans-IO cores.
    #[allow(clippy::disallowed_methods)]
    let created_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    switchyard_store::Recording {
        call_uuid: info.call_uuid,
        path: info.path.display().to_string(),
        layout: match info.layout {
            switchyard_recording::Layout::Mono => "mono".into(),
            _ => "stereo".into(),
        },
        sample_rate: info.sample_rate,
        duration_ms: info.duration_ms as i64,
        bytes: info.bytes as i64,
        encrypted: info.encrypted,
        paused_ms: info.paused_ms as i64,
        frames_dropped: info.frames_dropped as i64,
        created_ms,
        error: info.error,
    }
}

/// The dialplan applications the modules of `config` (modules.toml) register, found by
/// loading them as the daemon would (for `dialplan check`). A required module that does not
/// load is an error; an optional one is left out.
pub fn module_applications(config: &Config) -> Result<Vec<String>, String> {
    let mut modules = modules::Modules::new(
        modules::EngineHost::new(None),
        config.modules.clone(),
        &config.conf_dir,
        modules::Modules::default_search(),
    );
    let mut names = Vec::new();
    for entry in &config.modules {
        match modules.load(&entry.name) {
            Ok(loaded) => names.extend(
                loaded
                    .interfaces
                    .iter()
                    .filter(|r| r.kind == switchyard_loader::InterfaceKind::Application)
                    .map(|r| r.name.clone()),
            ),
            Err(error) if entry.required => return Err(error),
            Err(_) => {}
        }
    }
    Ok(names)
}

/// The key that signs digest nonces. Kept on disk so nonces handed out before a restart are
/// still recognised (as stale at worst) instead of looking forged.
fn load_or_create_secret(path: &Path) -> Result<[u8; 32], Error> {
    if let Ok(bytes) = std::fs::read(path)
        && let Ok(secret) = <[u8; 32]>::try_from(bytes.as_slice())
    {
        return Ok(secret);
    }
    let secret: [u8; 32] = rand::random();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(io_context(format!("writing {}", path.display())))?;
    file.write_all(&secret)
        .map_err(io_context(format!("writing {}", path.display())))?;
    Ok(secret)
}
