//! `switchyard`: the daemon (`run`), the operator console (`console`, `ctl`) and
//! administration (`user add`).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "switchyard", version, about = "Switchyard telephony appliance")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon in the foreground (SIGTERM or `shutdown` stops it gracefully).
    Run {
        /// Configuration directory (switchyard.toml, directory/, dialplan/, gateways.toml).
        #[arg(long, default_value = "conf")]
        conf: PathBuf,
        /// Data directory: the database, the console socket, recordings.
        #[arg(long, default_value = "data")]
        data: PathBuf,
    },
    /// Interactive console with line editing, history and tab completion.
    Console {
        #[command(flatten)]
        target: Target,
    },
    /// Run one console command and exit; the exit status is non-zero on error (like fs_cli -x).
    Ctl {
        #[command(flatten)]
        target: Target,
        /// The command, e.g. "show calls".
        #[arg(required = true, num_args = 1..)]
        command: Vec<String>,
    },
    /// Manage the user directory in conf/directory.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Call recordings: decrypt, make a master key.
    Recording {
        #[command(subcommand)]
        action: RecordingAction,
    },
    /// The dialplan in conf/dialplan (*.xml and/or *.toml): check it, or see what a call
    /// would do.
    Dialplan {
        #[command(subcommand)]
        action: DialplanAction,
    },
}

#[derive(Subcommand)]
enum DialplanAction {
    /// Every error and warning with file:line:column and a hint; exit 1 if there are errors.
    Check {
        /// The dialplan directory (*.xml and *.toml files).
        #[arg(default_value = "conf/dialplan")]
        dir: PathBuf,
        /// The configuration whose [dialplan.globals], directory users and gateways the plan
        /// is checked against (default: the directory above DIR, when it holds
        /// switchyard.toml).
        #[arg(long)]
        conf: Option<PathBuf>,
    },
    /// Which extension a call matches and every action it would run, variables expanded;
    /// no call is placed.
    Test {
        /// The dialled number (destination_number).
        number: String,
        #[arg(long, default_value = "default")]
        context: String,
        /// The caller (caller_id_number).
        #[arg(long = "from", default_value = "")]
        caller: String,
        /// Local time of the call, "YYYY-MM-DD HH:MM[:SS]" (default: now, UTC plus --utc-offset).
        #[arg(long)]
        at: Option<String>,
        /// Offset of local time from UTC in minutes (e.g. 480 for China) when --at is absent.
        #[arg(long, default_value_t = 0)]
        utc_offset: i32,
        /// The zone of local time when --at is absent, as [dialplan] timezone takes it
        /// ("system", "Asia/Shanghai", "+08:00"); overrides --utc-offset.
        #[arg(long)]
        timezone: Option<String>,
        /// Extra channel variables, name=value (repeatable).
        #[arg(long = "var")]
        vars: Vec<String>,
        #[arg(long, default_value = "conf/dialplan")]
        dir: PathBuf,
        /// A holiday calendar (TOML); default: holidays.toml beside the dialplan directory.
        #[arg(long)]
        holidays: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RecordingAction {
    /// Writes the WAV of an encrypted recording (.wav.enc); refuses a tampered or truncated
    /// file, or the wrong key, and then writes nothing.
    Decrypt {
        input: PathBuf,
        /// Where to write the WAV (default: the input without ".enc").
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The master key file (64 hex characters, mode 0600).
        #[arg(long, default_value = "conf/recording.key")]
        key_file: PathBuf,
    },
    /// Creates a new master key file (mode 0600) for `[recording] encrypt = true`.
    Keygen {
        #[arg(long, default_value = "conf/recording.key")]
        key_file: PathBuf,
    },
}

#[derive(clap::Args)]
struct Target {
    /// The daemon's console socket (default: <conf's console.socket> inside --data).
    #[arg(long)]
    socket: Option<PathBuf>,
    #[arg(long, default_value = "conf")]
    conf: PathBuf,
    #[arg(long, default_value = "data")]
    data: PathBuf,
}

#[derive(Subcommand)]
enum UserAction {
    /// Create a user with a random password, printed once.
    Add {
        id: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long, default_value = "conf")]
        conf: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { conf, data } => {
            let _log_writer = init_logging();
            match switchyard_engine::run(switchyard_engine::RunOptions {
                conf_dir: conf,
                data_dir: data,
            }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!("{error}");
                    eprintln!("switchyard: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Console { target } => {
            let socket = socket_path(&target);
            match switchyard_console::interactive(&socket, switchyard_engine::COMMANDS) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => fail(&error),
            }
        }
        Command::Ctl { target, command } => {
            let socket = socket_path(&target);
            match switchyard_console::execute(&socket, &command.join(" ")) {
                Ok(reply) => {
                    print!("{reply}");
                    if !reply.is_empty() && !reply.ends_with('\n') {
                        println!();
                    }
                    ExitCode::SUCCESS
                }
                Err(error) => fail(&error),
            }
        }
        Command::User {
            action:
                UserAction::Add {
                    id,
                    display_name,
                    conf,
                },
        } => match switchyard_config::add_user(&conf, &id, display_name.as_deref()) {
            Ok(password) => {
                println!("user {id} created in {}", conf.join("directory").display());
                println!("password: {password}");
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error),
        },
        Command::Recording {
            action:
                RecordingAction::Decrypt {
                    input,
                    output,
                    key_file,
                },
        } => {
            let output = output.unwrap_or_else(|| input.with_extension(""));
            let outcome = switchyard_recording::MasterKey::load(&key_file)
                .and_then(|key| switchyard_recording::decrypt(&input, &key, &output));
            match outcome {
                Ok(()) => {
                    println!("decrypted {} to {}", input.display(), output.display());
                    ExitCode::SUCCESS
                }
                Err(error) => fail(&error),
            }
        }
        Command::Dialplan {
            action: DialplanAction::Check { dir, conf },
        } => dialplan_check(&dir, conf.as_deref()),
        Command::Dialplan {
            action:
                DialplanAction::Test {
                    number,
                    context,
                    caller,
                    at,
                    utc_offset,
                    timezone,
                    vars,
                    dir,
                    holidays,
                },
        } => dialplan_test(DialplanTest {
            number,
            context,
            caller,
            at,
            utc_offset,
            timezone,
            vars,
            dir,
            holidays,
        }),
        Command::Recording {
            action: RecordingAction::Keygen { key_file },
        } => match write_key_file(&key_file, &switchyard_recording::MasterKey::generate()) {
            Ok(()) => {
                println!(
                    "master key written to {} (mode 0600): back it up",
                    key_file.display()
                );
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error),
        },
    }
}

fn dialplan_check(dir: &std::path::Path, conf: Option<&std::path::Path>) -> ExitCode {
    use switchyard_dialplan::check::{CheckEnv, check_dir};
    use switchyard_dialplan::ir::Severity;
    if !dir.is_dir() {
        return fail(&format!("no dialplan directory at {}", dir.display()));
    }
    // The names the plan may use from the configuration: globals, users, gateways.
    let beside = dir
        .parent()
        .filter(|p| p.join(switchyard_config::MAIN_FILE).is_file());
    let config = match conf.or(beside) {
        Some(conf_dir) => match switchyard_config::load(conf_dir) {
            Ok(config) => {
                println!(
                    "checking against the configuration in {}",
                    conf_dir.display()
                );
                Some(config)
            }
            Err(error) => return fail(&error.to_string()),
        },
        None => None,
    };
    let globals: Vec<&str> = config.as_ref().map_or_else(Vec::new, |c| {
        c.dialplan.globals.keys().map(String::as_str).collect()
    });
    let users: Option<Vec<&str>> = config
        .as_ref()
        .map(|c| c.directory.users.keys().map(String::as_str).collect());
    let gateways: Option<Vec<&str>> = config
        .as_ref()
        .map(|c| c.gateways.keys().map(String::as_str).collect());
    // The applications of the configuration's modules join the core ones, found by loading
    // the modules as the daemon does.
    let module_apps = match &config {
        Some(config) => match switchyard_engine::module_applications(config) {
            Ok(names) => names,
            Err(error) => return fail(&error),
        },
        None => Vec::new(),
    };
    let mut applications: Vec<&str> = switchyard_dialplan::check::CORE_APPLICATIONS.to_vec();
    applications.extend(module_apps.iter().map(String::as_str));
    let env = CheckEnv {
        applications: &applications,
        globals: &globals,
        users: users.as_deref(),
        gateways: gateways.as_deref(),
        ..CheckEnv::core()
    };
    let diagnostics = check_dir(dir, &env);
    for diagnostic in &diagnostics {
        println!("{diagnostic}");
    }
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    println!("{}: {errors} errors, {warnings} warnings", dir.display());
    if errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

struct DialplanTest {
    number: String,
    context: String,
    caller: String,
    at: Option<String>,
    utc_offset: i32,
    timezone: Option<String>,
    vars: Vec<String>,
    dir: PathBuf,
    holidays: Option<PathBuf>,
}

fn dialplan_test(t: DialplanTest) -> ExitCode {
    use switchyard_dialplan::ir::HuntEnv;
    use switchyard_dialplan::timespec::{CivilTime, Holidays};
    use switchyard_dialplan::vars::Variables;
    // Both forms: *.xml and *.toml, in file-name order.
    let plan = match switchyard_dialplan::load_plan_dir(&t.dir) {
        Ok(compiled) => compiled.plan,
        Err(diagnostics) => {
            for diagnostic in &diagnostics {
                eprintln!("{diagnostic}");
            }
            return fail(&format!(
                "{} has errors: fix them first (`switchyard dialplan check`)",
                t.dir.display()
            ));
        }
    };
    // The configuration beside the plan, when there is one: its globals and time zone.
    let config = match t
        .dir
        .parent()
        .filter(|p| p.join(switchyard_config::MAIN_FILE).is_file())
        .map(switchyard_config::load)
    {
        Some(Ok(config)) => Some(config),
        Some(Err(error)) => return fail(&error.to_string()),
        None => None,
    };
    let zone_setting = t.timezone.clone().or_else(|| {
        // An explicit --utc-offset wins over the configuration's zone.
        (t.utc_offset == 0)
            .then(|| config.as_ref().map(|c| c.dialplan.timezone.clone()))
            .flatten()
    });
    let now = match &t.at {
        Some(text) => match parse_civil(text) {
            Some(time) => time,
            None => {
                return fail(&format!(
                    "--at {text:?}: expected \"YYYY-MM-DD HH:MM[:SS]\""
                ));
            }
        },
        None => {
            // The CLI is not a sans-IO core: it may read the clock.
            #[allow(clippy::disallowed_methods)]
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            match &zone_setting {
                Some(zone) => match switchyard_dialplan::LocalZone::parse(zone) {
                    Ok(zone) => zone.civil_time(secs),
                    Err(error) => return fail(&error.to_string()),
                },
                None => CivilTime::from_unix(secs, t.utc_offset * 60),
            }
        }
    };
    let holidays_path = t.holidays.clone().unwrap_or_else(|| {
        t.dir
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("holidays.toml")
    });
    let holidays = match std::fs::read_to_string(&holidays_path) {
        Ok(text) => match Holidays::parse(&text) {
            Ok(holidays) => holidays,
            Err(error) => return fail(&format!("{}: {error}", holidays_path.display())),
        },
        Err(_) if t.holidays.is_none() => Holidays::new(),
        Err(error) => return fail(&format!("{}: {error}", holidays_path.display())),
    };
    // A call starts with the [dialplan.globals] of the configuration beside the plan, as the
    // daemon's calls do.
    let mut vars = Variables::new();
    if let Some(config) = &config {
        for (name, value) in &config.dialplan.globals {
            vars.set(name.clone(), value.clone());
        }
    }
    vars.set("destination_number", t.number.clone());
    vars.set("caller_id_number", t.caller.clone());
    vars.set("context", t.context.clone());
    for pair in &t.vars {
        let Some((name, value)) = pair.split_once('=') else {
            return fail(&format!("--var {pair:?}: expected name=value"));
        };
        vars.set(name, value);
    }
    let env = HuntEnv {
        now,
        holidays: &holidays,
    };
    match switchyard_dialplan::explain::explain(&plan, &t.context, &vars, &env) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => fail(&error),
    }
}

/// "YYYY-MM-DD HH:MM" or "YYYY-MM-DD HH:MM:SS" (also with a T between date and time).
fn parse_civil(text: &str) -> Option<switchyard_dialplan::timespec::CivilTime> {
    let (date, time) = text.trim().split_once([' ', 'T'])?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let mut c = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hour, minute) = (c.next()??, c.next()??);
    let second = c.next().flatten().unwrap_or(0);
    switchyard_dialplan::timespec::CivilTime::from_civil(
        year.try_into().ok()?,
        month.try_into().ok()?,
        day.try_into().ok()?,
        hour.try_into().ok()?,
        minute.try_into().ok()?,
        second.try_into().ok()?,
    )
}

/// A new key file, readable by its owner only; an existing one is never overwritten (its
/// recordings would become unreadable).
fn write_key_file(
    path: &std::path::Path,
    key: &switchyard_recording::MasterKey,
) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{}", key.to_hex())
}

fn fail(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("-ERR {error}");
    ExitCode::FAILURE
}

/// The socket named on the command line, else the one the configuration names, else the default.
fn socket_path(target: &Target) -> PathBuf {
    if let Some(socket) = &target.socket {
        return socket.clone();
    }
    match switchyard_config::load(&target.conf) {
        Ok(config) => switchyard_engine::console_socket(&config, &target.data),
        Err(_) => default_socket(&target.data),
    }
}

fn default_socket(data: &Path) -> PathBuf {
    data.join("console.sock")
}

/// Logs go to stderr (journald under systemd) through a writer thread, so a slow pipe never
/// stalls the signalling reactor; under overload lines are dropped rather than calls. The
/// returned guard flushes what is queued when `run` returns.
fn init_logging() -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWITCHYARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .thread_name("log")
        .finish(std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(false)
        .init();
    guard
}
