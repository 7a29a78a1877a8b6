//! The loader against real shared objects: mod_skel (the workspace's cdylib), a module in C
//! built here with the `cc` crate from nothing but switchyard_module.h, C modules the loader
//! must refuse, and a Rust module that panics.
//!
//! Where the .so files come from: the test binary lives in `<target>/<profile>/deps/`, so
//! `<target>/<profile>/libmod_skel.so` is mod_skel's cdylib when the workspace was built
//! (CI builds it first); if it is missing or older than its sources the test builds it into
//! `<target>/loader-fixtures/mod_skel` (see `mod_skel()`). C fixtures are compiled into a temporary directory per test; mod_panic is
//! built with `cargo build --manifest-path` into `<target>/loader-fixtures/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde_json::{Value, json};
use switchyard_loader::{CallError, Host, InterfaceKind, Library, LoadError, LogLevel};

/// Everything a module asked of the host, in order.
#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Register(String, InterfaceKind, String),
    Send(String, String, Vec<u8>),
    Log(String, LogLevel, String),
}

/// A host that records, and refuses to register names listed in `taken`.
#[derive(Default)]
struct RecordingHost {
    seen: Mutex<Vec<Seen>>,
    taken: Vec<String>,
}

impl RecordingHost {
    fn seen(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn push(&self, seen: Seen) {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(seen);
    }

    fn logs(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter_map(|s| match s {
                Seen::Log(_, _, line) => Some(line),
                _ => None,
            })
            .collect()
    }
}

impl Host for RecordingHost {
    fn register(
        &self,
        module: &str,
        kind: InterfaceKind,
        name: &str,
        _help: &str,
    ) -> Result<(), String> {
        if self.taken.iter().any(|t| t == name) {
            return Err(format!("{name} is taken"));
        }
        self.push(Seen::Register(module.into(), kind, name.into()));
        Ok(())
    }

    fn send(&self, module: &str, name: &str, body: &[u8]) {
        self.push(Seen::Send(module.into(), name.into(), body.to_vec()));
    }

    fn log(&self, module: &str, level: LogLevel, message: &str) {
        self.push(Seen::Log(module.into(), level, message.into()));
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `<target>/<profile>`: the directory holding this test's `deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>/deps/<test>")
        .to_owned()
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs a `cargo build` for a fixture, failing the test with cargo's output if it fails.
fn cargo_build(args: &[&str], target_dir: &Path) {
    let profile = profile_dir();
    let mut command = cargo();
    command
        .current_dir(workspace_root())
        .arg("build")
        .args(args)
        .arg("--target-dir")
        .arg(target_dir);
    if profile.file_name().is_some_and(|name| name == "release") {
        command.arg("--release");
    }
    let output = command.output().expect("run cargo");
    assert!(
        output.status.success(),
        "cargo build {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The newest modification time of the files under `paths` (recursively).
fn newest_change(paths: &[PathBuf]) -> std::time::SystemTime {
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    let mut stack = paths.to_vec();
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            let entries = std::fs::read_dir(&path).expect("read a source dir");
            stack.extend(entries.map(|e| e.expect("a dir entry").path()));
        } else if let Ok(modified) = meta.modified() {
            newest = newest.max(modified);
        }
    }
    newest
}

/// mod_skel's cdylib. The workspace build (CI runs `cargo build --workspace --all-targets`
/// first) leaves it at `<target>/<profile>/libmod_skel.so`; it is used when newer than the
/// sources of mod_skel and switchyard-abi. Otherwise (e.g. `cargo test -p
/// switchyard-loader` after an edit) it is built into `<target>/loader-fixtures/mod_skel`, so
/// the workspace's own artifacts, built with the whole workspace's features, stay untouched.
fn mod_skel() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let profile = profile_dir();
        let built = profile.join("libmod_skel.so");
        let root = workspace_root();
        let sources = newest_change(&[
            root.join("modules/mod_skel"),
            root.join("core/abi/src"),
            root.join("core/abi/Cargo.toml"),
        ]);
        let fresh = std::fs::metadata(&built)
            .and_then(|m| m.modified())
            .is_ok_and(|built_at| built_at >= sources);
        if fresh {
            return built;
        }
        let target = profile
            .parent()
            .expect("<target>")
            .join("loader-fixtures/mod_skel");
        cargo_build(&["-p", "mod_skel"], &target);
        let path = target
            .join(profile.file_name().expect("profile"))
            .join("libmod_skel.so");
        assert!(path.exists(), "{} was not built", path.display());
        path
    })
}

/// The mod_panic fixture, plain or with `panic_in_load`, each in its own target dir.
fn mod_panic(panic_in_load: bool) -> PathBuf {
    static BUILDS: Mutex<()> = Mutex::new(());
    let _one_build_at_a_time = BUILDS.lock().unwrap_or_else(PoisonError::into_inner);
    let variant = if panic_in_load {
        "panic_in_load"
    } else {
        "plain"
    };
    let target = profile_dir()
        .parent()
        .expect("<target>")
        .join("loader-fixtures")
        .join(variant);
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/modules/mod_panic/Cargo.toml");
    let manifest = manifest.to_str().expect("UTF-8 path");
    let mut args = vec!["--manifest-path", manifest];
    if panic_in_load {
        args.extend(["--features", "panic_in_load"]);
    }
    cargo_build(&args, &target);
    let profile = profile_dir();
    target
        .join(profile.file_name().expect("profile"))
        .join("libmod_panic.so")
}

/// The host's target triple, which `cc` needs outside a build script.
fn target_triple() -> &'static str {
    if cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        "x86_64-unknown-linux-gnu"
    } else if cfg!(all(target_arch = "aarch64", target_os = "linux")) {
        "aarch64-unknown-linux-gnu"
    } else {
        panic!("add this target's triple to the loader tests")
    }
}

/// Compiles `tests/c_module/<source>` into `<dir>/<file_name>` as a shared object, with the
/// compiler and flags the `cc` crate picks, warnings as errors (the header must compile
/// cleanly for vendors).
fn build_c_module(source: &str, dir: &Path, file_name: &str, defines: &[(&str, &str)]) -> PathBuf {
    let compiler = cc::Build::new()
        .target(target_triple())
        .host(target_triple())
        .opt_level(0)
        .cargo_metadata(false)
        .pic(true)
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .try_get_compiler()
        .expect("a C compiler");
    let out = dir.join(file_name);
    let mut command = compiler.to_command();
    command
        .arg("-std=c11")
        .arg("-shared")
        .arg("-o")
        .arg(&out)
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/c_module")
                .join(source),
        );
    for (name, value) in defines {
        command.arg(format!("-D{name}={value}"));
    }
    let output = command.output().expect("run the C compiler");
    assert!(
        output.status.success(),
        "compiling {source} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("a JSON reply")
}

fn host() -> Arc<RecordingHost> {
    Arc::new(RecordingHost::default())
}

#[test]
fn mod_skel_loads_answers_unloads_and_loads_again() {
    let path = mod_skel();
    for round in 0..2 {
        let recording = host();
        let library = Library::open(path).expect("mod_skel passes the checks");
        assert_eq!(library.name(), "mod_skel");
        assert_eq!(library.version(), "0.1.0");
        assert_eq!(library.build_hash(), "0.1.0+abi1.0");
        assert_eq!(library.abi(), (1, 0));
        assert!(recording.seen().is_empty(), "open runs no module code");

        let module = library.start(recording.clone()).expect("mod_skel starts");
        assert_eq!((module.name(), module.version()), ("mod_skel", "0.1.0"));
        let registered: Vec<(InterfaceKind, String)> = recording
            .seen()
            .into_iter()
            .filter_map(|s| match s {
                Seen::Register(m, kind, name) if m == "mod_skel" => Some((kind, name)),
                _ => None,
            })
            .collect();
        assert_eq!(
            registered,
            vec![
                (InterfaceKind::Application, "skel_say".into()),
                (InterfaceKind::Command, "skel".into()),
                (InterfaceKind::Subscription, "call.ended".into()),
                (InterfaceKind::ConfigSection, "mod_skel".into()),
            ]
        );
        assert!(recording.logs().contains(&"mod_skel loaded".to_owned()));

        let config = module
            .request("module.config", br#"{"greeting":"ivr/ivr-welcome"}"#)
            .expect("config");
        assert_eq!(json_of(&config), json!({}));
        let run = module
            .request(
                "app.run",
                br#"{"app":"skel_say","data":"","uuid":"u1","answered":true,"variables":{}}"#,
            )
            .expect("app.run");
        assert_eq!(
            json_of(&run),
            json!({"actions":[["log","INFO skel_say:  on u1"],["playback","ivr/ivr-welcome"]]})
        );
        let ended = br#"{"event":"call.ended","uuid":"u1","cause":"NORMAL_CLEARING"}"#;
        assert_eq!(
            json_of(&module.request("event", ended).expect("event")),
            json!({})
        );
        assert!(
            recording
                .logs()
                .contains(&"call u1 ended (NORMAL_CLEARING), 1 so far".to_owned())
        );
        // The counter is per load: a fresh load starts from call 1 again.
        let reply = json_of(
            &module
                .request("command", br#"{"command":"skel","args":"status"}"#)
                .expect("command"),
        );
        assert_eq!(reply["ok"], json!(true), "round {round}");
        let text = reply["text"].as_str().expect("text");
        assert!(
            text.starts_with("skel: call 1 (args \"status\")") && text.contains("ivr/ivr-welcome"),
            "{text}"
        );
        assert!(text.ends_with("calls ended: 1"), "{text}");

        let unknown = module
            .request("no.such.message", b"{}")
            .expect_err("unknown");
        assert!(
            matches!(unknown, CallError::UnknownMessage { ref message, .. } if message == "no.such.message")
        );
        let bad = module
            .request("app.run", b"not json")
            .expect_err("bad input");
        assert!(matches!(bad, CallError::Failed { code: -3, .. }), "{bad:?}");
        assert!(
            bad.to_string().contains("module mod_skel failed app.run"),
            "{bad}"
        );

        // Media: the SDK's default frame handler takes 20 ms of stereo 8 kHz.
        module.frame(1, &[0; 320], 8000, 2).expect("a frame");
        let odd = module
            .frame(1, &[0; 321], 8000, 2)
            .expect_err("321 samples are not stereo");
        assert!(matches!(odd, CallError::Failed { .. }));
        assert!(!module.is_disabled());
        drop(module);
    }
}

#[test]
fn a_module_in_c_registers_runs_and_unloads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = build_c_module("hello.c", dir.path(), "libc_hello.so", &[]);
    let recording = host();
    let library = Library::open(&path).expect("the C module passes the checks");
    assert_eq!(
        (library.name(), library.version(), library.abi()),
        ("c_hello", "0.1.0", (1, 0))
    );
    assert_eq!(library.build_hash(), "c_hello 0.1.0 abi1.0");
    let module = library.start(recording.clone()).expect("c_hello starts");
    assert_eq!(
        recording.seen()[..2],
        [
            Seen::Register(
                "c_hello".into(),
                InterfaceKind::Application,
                "c_hello".into()
            ),
            Seen::Register("c_hello".into(), InterfaceKind::Command, "c_hello".into()),
        ]
    );
    let run = module
        .request(
            "app.run",
            br#"{"app":"c_hello","data":"","uuid":"u9","answered":false,"variables":{}}"#,
        )
        .expect("app.run");
    assert_eq!(
        json_of(&run),
        json!({"actions":[["log","INFO hello from C"],["hangup","CALL_REJECTED"]]})
    );
    assert!(recording.seen().contains(&Seen::Send(
        "c_hello".into(),
        "console".into(),
        br#"{"line":"show calls"}"#.to_vec()
    )));
    let command = module
        .request("command", br#"{"command":"c_hello","args":""}"#)
        .expect("command");
    assert_eq!(json_of(&command), json!({"ok":true,"text":"hello from C"}));
    let frame = module
        .frame(1, &[0; 160], 8000, 1)
        .expect_err("c_hello takes no media");
    assert!(matches!(frame, CallError::UnknownMessage { ref message, .. } if message == "frame"));
    drop(module);
    assert_eq!(recording.logs(), ["c_hello loaded", "c_hello unloaded"]);
}

#[test]
fn a_refused_registration_refuses_the_load() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = build_c_module("hello.c", dir.path(), "libc_hello.so", &[]);
    let recording = Arc::new(RecordingHost {
        taken: vec!["c_hello".into()],
        ..RecordingHost::default()
    });
    let error = Library::open(&path)
        .expect("checks pass")
        .start(recording.clone())
        .expect_err("name taken");
    assert!(
        matches!(error, LoadError::LoadFailed { ref module, code: -1 } if module == "c_hello"),
        "{error:?}"
    );
    assert!(
        recording
            .logs()
            .iter()
            .any(|l| l.contains("registering Application c_hello refused: c_hello is taken")),
        "{:?}",
        recording.logs()
    );
}

/// Builds refused.c with `defines`, opens it, and returns the result and whether its
/// `load` ran (the marker file).
fn open_refused(
    file_name: &str,
    defines: &[(&str, &str)],
) -> (Result<Library, LoadError>, PathBuf, bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("load-ran");
    let quoted = format!("\"{}\"", marker.display());
    let mut all = vec![("MARKER_PATH", quoted.as_str())];
    all.extend_from_slice(defines);
    let path = build_c_module("refused.c", dir.path(), file_name, &all);
    let opened = Library::open(&path);
    let ran = marker.exists();
    // The temp dir (and the .so) go when `dir` drops; dlopen keeps its mapping.
    (opened, path, ran)
}

#[test]
fn the_refusal_fixture_loads_and_runs_when_nothing_is_wrong() {
    // The control for the tests below: the same source, unmodified, passes and its load()
    // writes the marker, so an absent marker does mean "no module code ran".
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("load-ran");
    let quoted = format!("\"{}\"", marker.display());
    let path = build_c_module(
        "refused.c",
        dir.path(),
        "libmod_refused.so",
        &[("MARKER_PATH", &quoted)],
    );
    let library = Library::open(&path).expect("a well-formed entry");
    assert!(!marker.exists(), "open() runs no module code");
    let module = library.start(host()).expect("starts");
    assert!(marker.exists(), "start() ran load()");
    assert!(matches!(
        module.request("command", b"{}"),
        Err(CallError::UnknownMessage { .. })
    ));
}

#[test]
fn a_module_built_for_abi_major_2_is_refused_before_any_of_its_code_runs() {
    let (opened, _, ran) = open_refused("libmod_old.so", &[("SY_ABI_MAJOR_OVERRIDE", "2")]);
    let error = opened.expect_err("major 2 is refused");
    assert!(
        matches!(error, LoadError::AbiMajor { ref module, module_major: 2, host_major: 1 } if module == "mod_old"),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("module mod_old was built for ABI 2.x, this switchyard speaks 1.0"),
        "{error}"
    );
    assert!(!ran, "the refused module's load() ran");
}

#[test]
fn a_module_of_a_newer_minor_is_refused_by_name() {
    let (opened, _, ran) = open_refused("libmod_new.so", &[("MODULE_ABI_MINOR", "7")]);
    let error = opened.expect_err("minor 7 is refused");
    assert!(
        matches!(error, LoadError::AbiMinor { ref module, module_minor: 7, host_minor: 0 } if module == "mod_refused")
    );
    assert!(
        error
            .to_string()
            .contains("module mod_refused was built for ABI 1.7"),
        "{error}"
    );
    assert!(!ran);
}

#[test]
fn bad_magic_truncated_entry_and_null_name_are_refused() {
    let (opened, path, ran) = open_refused("libmod_magic.so", &[("MODULE_MAGIC", "0x464F4F21")]);
    let error = opened.expect_err("bad magic");
    assert!(
        matches!(
            error,
            LoadError::BadMagic {
                found: 0x464F_4F21,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
    assert!(!ran);

    let (opened, _, ran) = open_refused("libmod_short.so", &[("TRUNCATED", "1")]);
    let error = opened.expect_err("a header-only entry");
    assert!(
        matches!(error, LoadError::EntryTooSmall { ref module, size: 12, expected: 72 } if module == "mod_short"),
        "{error:?}"
    );
    assert!(!ran);

    let (opened, _, ran) = open_refused("libmod_anon.so", &[("MODULE_NAME", "NULL")]);
    let error = opened.expect_err("a null name");
    assert!(
        matches!(error, LoadError::BadString { field: "name", .. }),
        "{error:?}"
    );
    assert!(!ran);
}

#[test]
fn a_library_without_an_entry_is_refused() {
    let error = Library::open(Path::new("libm.so.6")).expect_err("libm is no module");
    assert!(matches!(error, LoadError::NoEntry { .. }), "{error:?}");
    assert!(
        error.to_string().contains("exports no `switchyard_module`"),
        "{error}"
    );
}

#[test]
fn a_panicking_module_is_disabled_and_the_process_carries_on() {
    let path = mod_panic(false);
    let recording = host();
    let module = Library::open(&path)
        .expect("checks")
        .start(recording.clone())
        .expect("starts");
    assert_eq!(
        json_of(
            &module
                .request("command", b"{}")
                .expect("answers before the panic")
        ),
        json!({"ok":true,"text":"still here"})
    );
    let error = module
        .request("app.run", br#"{"app":"panic_now"}"#)
        .expect_err("it panics");
    assert!(
        matches!(error, CallError::Panicked { ref module } if module == "mod_panic"),
        "{error:?}"
    );
    assert!(module.is_disabled());
    assert!(
        recording
            .logs()
            .iter()
            .any(|l| l.contains("panicked in app.run: mod_panic panics in app.run")),
        "{:?}",
        recording.logs()
    );
    // Not entered again, even for a message it would answer.
    let error = module.request("command", b"{}").expect_err("disabled");
    assert!(matches!(error, CallError::Disabled { .. }), "{error:?}");
    assert!(matches!(
        module.frame(1, &[0; 160], 8000, 1),
        Err(CallError::Disabled { .. })
    ));
    drop(module);

    // And other modules still load and run in this process.
    let skel = Library::open(mod_skel())
        .expect("checks")
        .start(host())
        .expect("starts");
    assert!(skel.request("module.reload", b"{}").is_ok());
}

#[test]
fn a_module_that_panics_in_load_is_refused() {
    let path = mod_panic(true);
    let recording = host();
    let error = Library::open(&path)
        .expect("checks")
        .start(recording.clone())
        .expect_err("load panics");
    assert!(
        matches!(error, LoadError::Panicked { ref module } if module == "mod_panic"),
        "{error:?}"
    );
    assert!(
        recording
            .logs()
            .iter()
            .any(|l| l.contains("mod_panic told to panic in load"))
    );
}

#[test]
fn module_is_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<switchyard_loader::Module>();
    shared::<Library>();
}

#[test]
fn misuse_of_the_host_table_is_answered_with_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = build_c_module("misbehave.c", dir.path(), "libmod_misbehave.so", &[]);
    let recording = host();
    let module = Library::open(&path)
        .expect("checks")
        .start(recording.clone())
        .expect("starts");
    let reply = module.request("codes", b"{}").expect("codes");
    // The second write replaced the first.
    assert_eq!(
        json_of(&reply),
        json!({"bad_kind": -3, "null_name": -3, "late": -1, "send_null": -3})
    );
    let seen = recording.seen();
    assert!(
        !seen
            .iter()
            .any(|s| matches!(s, Seen::Register(..) | Seen::Send(..))),
        "{seen:?}"
    );
    let logs = recording.logs();
    assert!(
        logs.contains(&"bad byte \u{fffd} here".to_owned()),
        "{logs:?}"
    );
    assert!(
        logs.contains(&"cannot register Command late after load".to_owned()),
        "{logs:?}"
    );
}
