//! switchyard-config: loading `conf/`.
//!
//! Layout of a configuration directory:
//!
//! ```text
//! conf/switchyard.toml        [sip] [media] [calls] [auth] [console] [recording] [dialplan];
//!                             every key optional
//! conf/directory/<id>.toml    one user each: id, password, display_name, enabled, context,
//!                             caller_id_number, caller_id_name
//! conf/dialplan/              the dialplan: *.xml and/or *.toml ([dialplan] dir)
//! conf/gateways.toml          [gateway.NAME] SIP trunks: proxy, credentials, caller id, ACL
//! ```
//!
//! Every key has a default, so an empty `switchyard.toml` gives a working switch on
//! 127.0.0.1:5060. Unknown keys are errors, so a typo (`rtp_port_mn`) is reported with its file,
//! line and column instead of being silently ignored. This crate only loads: the dialplan crate
//! compiles `dialplan/`, and the engine decides what a call does.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

mod gateways;
mod modules;
pub use gateways::{Cidr, GATEWAYS_FILE, GatewayConfig, GatewayTransport};
pub use modules::{MODULES_FILE, ModuleEntry};

/// Reads `modules.toml` of `conf_dir` again (the console's `load` and `reload` take a module's
/// current path and config from it).
pub fn load_modules(conf_dir: &Path) -> Result<Vec<ModuleEntry>, Error> {
    modules::load(&conf_dir.join(MODULES_FILE))
}

/// Errors of configuration loading; each names the file at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax error, unknown key or wrong type.
    #[error("{}{}: {message}", path.display(), fmt_pos(*line, *column))]
    Parse {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    /// Well-formed TOML whose values make no sense (port range, listener listed twice, ...).
    #[error("{}{}: {message}", path.display(), fmt_pos(*line, None))]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error("user {id} already exists ({})", path.display())]
    UserExists { id: String, path: PathBuf },
    #[error("invalid user id {0:?}: use letters and digits only")]
    InvalidUserId(String),
}

fn fmt_pos(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

/// The whole configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub sip: SipConfig,
    pub media: MediaSection,
    pub calls: CallsConfig,
    pub auth: AuthConfig,
    pub console: ConsoleConfig,
    pub recording: RecordingConfig,
    pub dialplan: DialplanConfig,
    pub directory: Directory,
    /// `gateways.toml`: SIP trunks by name.
    pub gateways: BTreeMap<String, GatewayConfig>,
    /// `modules.toml`: the modules loaded at start, in order.
    pub modules: Vec<ModuleEntry>,
    /// The directory this configuration was loaded from.
    pub conf_dir: PathBuf,
}

/// `[sip]`: signalling listeners and transaction timers.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    /// Our SIP domain; also the realm of digest challenges (RFC 3261 §22.1).
    pub domain: String,
    /// Sent in User-Agent and Server headers.
    pub user_agent: String,
    /// RFC 3261 §17.1.1.1: RTT estimate, default 500 ms.
    pub t1_ms: u64,
    /// RFC 3261 §17.1.2.2: maximum retransmit interval for non-INVITE requests, default 4 s.
    pub t2_ms: u64,
    /// RFC 3261 §17.1.2.2: maximum time a message stays in the network, default 5 s.
    pub t4_ms: u64,
}

impl Default for SipConfig {
    fn default() -> Self {
        let lo = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060);
        SipConfig {
            udp: vec![lo],
            tcp: vec![lo],
            domain: "switchyard".into(),
            user_agent: concat!("Switchyard/", env!("CARGO_PKG_VERSION")).into(),
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
        }
    }
}

/// `[media]`: the RTP relay.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaSection {
    /// The address RTP sockets bind to and that our SDP advertises (c= line).
    pub rtp_ip: IpAddr,
    /// First RTP port; even (RFC 3550 §11: RTP on even ports, RTCP on the next odd one).
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    /// Hang up a call after this many seconds without RTP from either side; 0 disables.
    pub rtp_timeout_secs: u64,
    /// Media reactor threads; 0 = one per core.
    pub threads: usize,
    /// Codecs we terminate and transcode, in our order of preference: offered to a callee
    /// after the caller's own when the caller's are not enough. PCMU, PCMA, G722, opus.
    pub codecs: Vec<String>,
    /// The rate conferences mix at (8000, 16000 or 48000).
    pub conference_rate: u32,
    /// Where the prompt sets (en/, zh/) and music/ live; relative paths are taken from the
    /// directory the daemon runs in.
    pub sounds_dir: PathBuf,
    /// The country whose call-progress tones we play (cn, us...).
    pub tone_country: String,
    /// SCHED_FIFO priority of the media threads (1-99); 0 = normal scheduling.
    pub realtime_priority: u8,
}

impl Default for MediaSection {
    fn default() -> Self {
        MediaSection {
            rtp_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            rtp_port_min: 16384,
            rtp_port_max: 32767,
            rtp_timeout_secs: 60,
            threads: 0,
            codecs: vec!["PCMU".into(), "PCMA".into(), "G722".into(), "opus".into()],
            conference_rate: 16000,
            sounds_dir: PathBuf::from("sounds"),
            tone_country: "us".into(),
            realtime_priority: 0,
        }
    }
}

/// `[recording]`: call recording.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingConfig {
    /// Refused when set: which calls are recorded is mod_recorder's policy now (its
    /// `[module.config] mode` in modules.toml). Kept to say so instead of "unknown key".
    #[serde(rename = "mode")]
    pub legacy_mode: Option<String>,
    /// Where recordings go; relative to the data directory. Default: recordings/.
    pub dir: PathBuf,
    /// 8000 or 16000.
    pub sample_rate: u32,
    /// Encrypt at rest (AES-256-GCM) with the master key in `key_file`.
    pub encrypt: bool,
    /// 64 hex characters, mode 0600; relative to the conf directory.
    pub key_file: PathBuf,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            legacy_mode: None,
            dir: PathBuf::from("recordings"),
            sample_rate: 8000,
            encrypt: false,
            key_file: PathBuf::from("recording.key"),
        }
    }
}

/// `[dialplan]`: where the plan lives and what every call starts with.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DialplanConfig {
    /// The plan directory (`*.xml` and/or `*.toml`); relative to the conf directory.
    pub dir: PathBuf,
    /// A holiday calendar (TOML, `[[holiday]]` tables) for `holiday="yes"` conditions;
    /// relative to the conf directory. Not inside `dir`, where it would be read as a plan.
    pub holidays: Option<PathBuf>,
    /// The zone time conditions are read in: "system", an IANA name ("Asia/Shanghai") or a
    /// fixed offset ("+08:00").
    pub timezone: String,
    /// The context of a directory user who names none.
    pub default_context: String,
    /// The context of calls accepted from a gateway that names no `inbound_context`.
    pub public_context: String,
    /// `[dialplan.globals]`: variables every call starts with (FreeSWITCH vars.xml).
    pub globals: BTreeMap<String, String>,
}

impl Default for DialplanConfig {
    fn default() -> Self {
        DialplanConfig {
            dir: PathBuf::from("dialplan"),
            holidays: None,
            timezone: "system".into(),
            default_context: "default".into(),
            public_context: "public".into(),
            globals: BTreeMap::new(),
        }
    }
}

impl DialplanConfig {
    /// The plan directory, a relative `dir` taken from `conf_dir`.
    pub fn dir_path(&self, conf_dir: &Path) -> PathBuf {
        conf_dir.join(&self.dir)
    }

    /// The holiday calendar file, a relative path taken from `conf_dir`.
    pub fn holidays_path(&self, conf_dir: &Path) -> Option<PathBuf> {
        self.holidays.as_ref().map(|h| conf_dir.join(h))
    }
}

/// `[calls]`: call limits and timers.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallsConfig {
    /// Cancel an unanswered outgoing leg after this many seconds (cause NO_ANSWER).
    pub no_answer_timeout_secs: u64,
    /// Refuse new calls with 503 beyond this many; 0 = unlimited.
    pub max_calls: usize,
    /// On shutdown, wait this long for calls to end before hanging them up.
    pub shutdown_grace_secs: u64,
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            no_answer_timeout_secs: 60,
            max_calls: 0,
            shutdown_grace_secs: 30,
        }
    }
}

/// `[auth]`: digest authentication and registration limits.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// A nonce older than this is answered with `stale=true` (RFC 2617 §3.2.1).
    pub nonce_ttl_secs: u64,
    /// After this many failed authentications from one source within `failure_window_secs`,
    /// the source is blocked for `block_secs`.
    pub max_failures: u32,
    pub failure_window_secs: u64,
    pub block_secs: u64,
    /// RFC 3261 §10.3 step 7: the registrar may shorten a requested expiry.
    pub max_register_expires: u32,
    /// RFC 3261 §10.3 step 7: shorter requests get 423 Interval Too Brief with Min-Expires.
    pub min_register_expires: u32,
    /// Used when a REGISTER carries neither an Expires header nor an expires parameter.
    pub default_register_expires: u32,
    /// Digest algorithms offered, one challenge each, in this order (RFC 8760 §2.4: a client
    /// takes the first it supports). The default is MD5 alone, as FreeSWITCH and Asterisk
    /// default: SIPp reads only the first challenge and baresip 1.0 refuses a 401 that holds
    /// any challenge it cannot answer. List "SHA-256" where every phone supports it.
    pub digest_algorithms: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            nonce_ttl_secs: 300,
            max_failures: 10,
            failure_window_secs: 60,
            block_secs: 300,
            max_register_expires: 3600,
            min_register_expires: 60,
            default_register_expires: 3600,
            digest_algorithms: vec!["MD5".to_owned()],
        }
    }
}

/// `[console]`: the operator console socket.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Unix socket path; a relative path is inside the data directory.
    pub socket: PathBuf,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            socket: PathBuf::from("console.sock"),
        }
    }
}

impl ConsoleConfig {
    /// The socket path, resolving a relative one against `data_dir`.
    pub fn socket_path(&self, data_dir: &Path) -> PathBuf {
        if self.socket.is_absolute() {
            self.socket.clone()
        } else {
            data_dir.join(&self.socket)
        }
    }
}

/// The users of `conf/directory/`, keyed by id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Directory {
    pub users: BTreeMap<String, User>,
}

impl Directory {
    pub fn get(&self, id: &str) -> Option<&User> {
        self.users.get(id)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: String,
    pub password: String,
    pub display_name: Option<String>,
    /// A disabled user cannot register or call and is not reachable.
    pub enabled: bool,
    /// How this user's phone sends and expects DTMF.
    pub dtmf: DtmfMode,
    /// The dialplan context this user's calls hunt in (`[dialplan] default_context` when the
    /// file names none).
    pub context: String,
    /// The caller id this user presents on calls out (effective_caller_id_number / _name);
    /// `None`: the id the phone sent.
    pub caller_id_number: Option<String>,
    pub caller_id_name: Option<String>,
}

/// How a phone carries DTMF.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DtmfMode {
    /// RFC 4733 events when the phone negotiates telephone-event, else tones in the audio.
    #[default]
    Auto,
    /// RFC 4733 events only.
    Rfc4733,
    /// SIP INFO (application/dtmf-relay).
    Info,
    /// Tones in the audio (detected with Goertzel filters, generated as tones).
    Inband,
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct MainFile {
    sip: SipConfig,
    media: MediaSection,
    calls: CallsConfig,
    auth: AuthConfig,
    console: ConsoleConfig,
    recording: RecordingConfig,
    dialplan: DialplanConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFile {
    id: Option<String>,
    password: String,
    display_name: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    dtmf: DtmfMode,
    context: Option<String>,
    caller_id_number: Option<String>,
    caller_id_name: Option<String>,
}

fn yes() -> bool {
    true
}

/// File names inside a configuration directory.
pub const MAIN_FILE: &str = "switchyard.toml";
pub const DIRECTORY_DIR: &str = "directory";

/// Loads and validates the configuration in `conf_dir`. `switchyard.toml` must exist (possibly
/// empty); `directory/` and `gateways.toml` are optional.
pub fn load(conf_dir: &Path) -> Result<Config, Error> {
    let main_path = conf_dir.join(MAIN_FILE);
    let (text, main) = parse_file::<MainFile>(&main_path)?;
    validate_main(&main_path, &text, &main)?;

    let directory = load_directory(
        &conf_dir.join(DIRECTORY_DIR),
        &main.dialplan.default_context,
    )?;

    let gateways = gateways::load(&conf_dir.join(GATEWAYS_FILE), &main.dialplan.public_context)?;
    let modules = modules::load(&conf_dir.join(MODULES_FILE))?;

    Ok(Config {
        sip: main.sip,
        media: main.media,
        calls: main.calls,
        auth: main.auth,
        console: main.console,
        recording: main.recording,
        dialplan: main.dialplan,
        directory,
        gateways,
        modules,
        conf_dir: conf_dir.to_path_buf(),
    })
}

fn read(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn parse_file<T: DeserializeOwned>(path: &Path) -> Result<(String, T), Error> {
    let text = read(path)?;
    match toml::from_str::<T>(&text) {
        Ok(v) => Ok((text, v)),
        Err(e) => {
            let (line, column) = match e.span() {
                Some(span) => {
                    let (l, c) = line_col(&text, span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            Err(Error::Parse {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().trim().to_owned(),
            })
        }
    }
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Line of the first occurrence of `key =` at the start of a line, for validation messages.
fn key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

fn validate_main(path: &Path, text: &str, m: &MainFile) -> Result<(), Error> {
    let invalid = |key: &str, message: String| Error::Invalid {
        path: path.to_path_buf(),
        line: key_line(text, key),
        message,
    };
    let sip = &m.sip;
    if sip.udp.is_empty() && sip.tcp.is_empty() {
        return Err(invalid(
            "udp",
            "[sip] needs at least one udp or tcp listener".into(),
        ));
    }
    for (key, addrs) in [("udp", &sip.udp), ("tcp", &sip.tcp)] {
        for (i, a) in addrs.iter().enumerate() {
            if a.port() == 0 {
                return Err(invalid(
                    key,
                    format!("[sip] {key} listener {a}: port 0 is not a SIP port"),
                ));
            }
            if addrs[..i].contains(a) {
                return Err(invalid(
                    key,
                    format!("[sip] {key} listener {a} is listed twice"),
                ));
            }
            // Our Via and Contact carry the listener's address; 0.0.0.0 there would send
            // every ACK and BYE nowhere.
            if a.ip().is_unspecified() {
                return Err(invalid(
                    key,
                    format!(
                        "[sip] {key} listener {a}: name the address phones reach (e.g. the server's LAN address), not a wildcard"
                    ),
                ));
            }
        }
    }
    if sip.domain.trim().is_empty() {
        return Err(invalid("domain", "[sip] domain must not be empty".into()));
    }
    if sip.t1_ms == 0 || sip.t2_ms < sip.t1_ms || sip.t4_ms == 0 {
        return Err(invalid(
            "t1_ms",
            format!(
                "[sip] timers need t1_ms > 0, t2_ms >= t1_ms, t4_ms > 0 (got {}, {}, {})",
                sip.t1_ms, sip.t2_ms, sip.t4_ms
            ),
        ));
    }

    let media = &m.media;
    const CODECS: [&str; 4] = ["PCMU", "PCMA", "G722", "opus"];
    if media.codecs.is_empty() {
        return Err(invalid(
            "codecs",
            "[media] codecs must name at least one codec".into(),
        ));
    }
    if let Some(bad) = media
        .codecs
        .iter()
        .find(|c| !CODECS.iter().any(|k| k.eq_ignore_ascii_case(c)))
    {
        return Err(invalid(
            "codecs",
            format!("[media] codecs: unknown codec {bad:?}: use PCMU, PCMA, G722 or opus"),
        ));
    }
    if ![8000, 16000, 48000].contains(&media.conference_rate) {
        return Err(invalid(
            "conference_rate",
            format!(
                "[media] conference_rate {} is not 8000, 16000 or 48000",
                media.conference_rate
            ),
        ));
    }
    if media.realtime_priority > 99 {
        return Err(invalid(
            "realtime_priority",
            "[media] realtime_priority is 0 (off) or 1-99".into(),
        ));
    }
    let recording = &m.recording;
    if let Some(mode) = &recording.legacy_mode {
        return Err(invalid(
            "mode",
            format!(
                "[recording] mode = {mode:?}: which calls are recorded is now the policy of \
                 mod_recorder; load it in modules.toml with [module.config] mode = \"all\" \
                 (layout = \"stereo\"|\"mono\") and remove this line"
            ),
        ));
    }
    if ![8000, 16000].contains(&recording.sample_rate) {
        return Err(invalid(
            "sample_rate",
            format!(
                "[recording] sample_rate {} is not 8000 or 16000",
                recording.sample_rate
            ),
        ));
    }
    if media.rtp_ip.is_unspecified() {
        return Err(invalid(
            "rtp_ip",
            format!(
                "[media] rtp_ip {} is advertised in SDP; give an address peers can reach",
                media.rtp_ip
            ),
        ));
    }
    if media.rtp_port_min < 1024 {
        return Err(invalid(
            "rtp_port_min",
            format!("[media] rtp_port_min {} is below 1024", media.rtp_port_min),
        ));
    }
    if !media.rtp_port_min.is_multiple_of(2) {
        // RFC 3550 §11: RTP uses an even port, RTCP the next odd one.
        return Err(invalid(
            "rtp_port_min",
            format!("[media] rtp_port_min {} must be even", media.rtp_port_min),
        ));
    }
    if media.rtp_port_min >= media.rtp_port_max {
        return Err(invalid(
            "rtp_port_max",
            format!(
                "[media] rtp_port_min {} must be below rtp_port_max {}",
                media.rtp_port_min, media.rtp_port_max
            ),
        ));
    }

    let auth = &m.auth;
    if auth.nonce_ttl_secs == 0 {
        return Err(invalid(
            "nonce_ttl_secs",
            "[auth] nonce_ttl_secs must be > 0".into(),
        ));
    }
    if auth.min_register_expires == 0
        || auth.min_register_expires > auth.max_register_expires
        || !(auth.min_register_expires..=auth.max_register_expires)
            .contains(&auth.default_register_expires)
    {
        return Err(invalid(
            "default_register_expires",
            format!(
                "[auth] need 0 < min_register_expires <= default_register_expires <= max_register_expires (got {} <= {} <= {})",
                auth.min_register_expires, auth.default_register_expires, auth.max_register_expires
            ),
        ));
    }
    if auth.digest_algorithms.is_empty()
        || auth
            .digest_algorithms
            .iter()
            .any(|a| a != "MD5" && a != "SHA-256")
    {
        return Err(invalid(
            "digest_algorithms",
            format!(
                "[auth] digest_algorithms must list \"MD5\" and/or \"SHA-256\" (got {:?})",
                auth.digest_algorithms
            ),
        ));
    }
    if m.console.socket.as_os_str().is_empty() {
        return Err(invalid(
            "socket",
            "[console] socket must not be empty".into(),
        ));
    }
    validate_dialplan(path, text, &m.dialplan)
}

fn validate_dialplan(path: &Path, text: &str, d: &DialplanConfig) -> Result<(), Error> {
    let invalid = |section: &str, key: &str, message: String| Error::Invalid {
        path: path.to_path_buf(),
        line: section_key_line(text, section, key),
        message,
    };
    if d.dir.as_os_str().is_empty() {
        return Err(invalid(
            "dialplan",
            "dir",
            "[dialplan] dir must not be empty".into(),
        ));
    }
    if let Some(holidays) = &d.holidays {
        // `./dialplan/x.toml` and `dialplan/x.toml` are the same place.
        let plain = |p: &Path| -> PathBuf {
            p.components()
                .filter(|c| *c != std::path::Component::CurDir)
                .collect()
        };
        let in_plan_dir = holidays.parent().is_some_and(|p| plain(p) == plain(&d.dir));
        let plan_form = holidays
            .extension()
            .is_some_and(|e| e == "toml" || e == "xml");
        if holidays.as_os_str().is_empty() || (in_plan_dir && plan_form) {
            return Err(invalid(
                "dialplan",
                "holidays",
                format!(
                    "[dialplan] holidays {:?}: give a file outside the plan directory {:?}, where every *.toml is read as a plan (e.g. \"holidays.toml\")",
                    holidays, d.dir
                ),
            ));
        }
    }
    if let Err(problem) = check_timezone(&d.timezone) {
        return Err(invalid(
            "dialplan",
            "timezone",
            format!("[dialplan] timezone {:?}: {problem}", d.timezone),
        ));
    }
    for (key, context) in [
        ("default_context", &d.default_context),
        ("public_context", &d.public_context),
    ] {
        if !valid_context(context) {
            return Err(invalid(
                "dialplan",
                key,
                format!(
                    "[dialplan] {key} {context:?}: use letters, digits, -, _ and . (a context name of the plan)"
                ),
            ));
        }
    }
    for (name, value) in &d.globals {
        if !valid_variable(name) {
            return Err(invalid(
                "dialplan.globals",
                name,
                format!(
                    "[dialplan.globals] {name:?}: a variable name is letters, digits and _ (as ${{name}} expands it)"
                ),
            ));
        }
        if value.contains('\n') {
            return Err(invalid(
                "dialplan.globals",
                name,
                format!("[dialplan.globals] {name}: a value is one line"),
            ));
        }
    }
    Ok(())
}

/// The shape of a `[dialplan] timezone`: "system", "UTC", an offset `+HH:MM`, `+HHMM` or
/// `+HH` (up to ±14:00),
/// or a zone name (IANA `Area/City`, or a POSIX TZ string). Whether the name is in the
/// machine's zone database is known when the dialplan resolves it.
fn check_timezone(zone: &str) -> Result<(), String> {
    let hint = "write \"system\", an IANA name like \"Asia/Shanghai\" or an offset like \"+08:00\"";
    if zone.is_empty() {
        return Err(format!("empty ({hint})"));
    }
    if let Some(rest) = zone.strip_prefix(['+', '-']) {
        let (hours, minutes) = match rest.split_once(':') {
            Some(parts) => parts,
            None if rest.len() == 4 => rest.split_at(2),
            None => (rest, "00"),
        };
        let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !two_digits(hours) || !two_digits(minutes) {
            return Err(format!("not an offset ({hint})"));
        }
        let (h, m): (u32, u32) = (hours.parse().unwrap_or(99), minutes.parse().unwrap_or(99));
        if h > 14 || m > 59 || (h == 14 && m > 0) {
            return Err(format!("offset beyond ±14:00, which no zone uses ({hint})"));
        }
        return Ok(());
    }
    let name_byte = |b: u8| b.is_ascii_alphanumeric() || b"/_-+,.:<>".contains(&b);
    if !zone.bytes().all(name_byte) || zone.starts_with('/') || zone.contains("..") {
        return Err(format!("not a zone name ({hint})"));
    }
    Ok(())
}

/// A dialplan context name: what `transfer EXT XML CONTEXT` can name in one word.
fn valid_context(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A channel variable name `${name}` can expand.
fn valid_variable(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The line of `key =` inside `[section]` (up to the next table header), for messages about
/// keys whose names other sections share (`dir`).
fn section_key_line(text: &str, section: &str, key: &str) -> Option<usize> {
    let header = format!("[{section}]");
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.starts_with('[') {
            inside = line.split('#').next().is_some_and(|h| h.trim() == header);
            continue;
        }
        if inside
            && line
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return Some(i + 1);
        }
    }
    // `[dialplan] dir = ...` may also be written as `dialplan.dir = ...` at the top.
    key_line(text, &format!("{section}.{key}"))
}

/// What a user presents as caller id: digits with an optional leading +, or `*#`.
fn valid_caller_number(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or(number);
    !digits.is_empty()
        && digits.len() <= 32
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
}

/// User ids are what phones put in the URI user part and what the file is named after:
/// letters and digits only keeps both safe.
fn valid_user_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn load_directory(dir: &Path, default_context: &str) -> Result<Directory, Error> {
    let mut users = BTreeMap::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Directory { users }),
        Err(source) => {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // README.md, editor backups and dot files are not users.
        if name.starts_with('.') || path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        paths.push(path);
    }
    paths.sort();
    for path in paths {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (text, file) = parse_file::<UserFile>(&path)?;
        let id = file.id.unwrap_or_else(|| stem.clone());
        let invalid = |key: &str, message: String| Error::Invalid {
            path: path.clone(),
            line: key_line(&text, key),
            message,
        };
        if !valid_user_id(&id) {
            return Err(invalid(
                "id",
                format!("invalid user id {id:?}: use letters and digits only"),
            ));
        }
        if id != stem {
            return Err(invalid(
                "id",
                format!("user id {id:?} does not match the file name {stem}.toml"),
            ));
        }
        if file.password.is_empty() {
            return Err(invalid(
                "password",
                format!("user {id} has an empty password"),
            ));
        }
        if let Some(context) = &file.context
            && !valid_context(context)
        {
            return Err(invalid(
                "context",
                format!("user {id}: context {context:?}: use letters, digits, -, _ and ."),
            ));
        }
        if let Some(number) = &file.caller_id_number
            && !valid_caller_number(number)
        {
            return Err(invalid(
                "caller_id_number",
                format!(
                    "user {id}: caller_id_number {number:?}: use digits, with an optional leading + (e.g. \"+861088886666\")"
                ),
            ));
        }
        if let Some(name) = &file.caller_id_name
            && (name.trim().is_empty() || name.contains(['"', '\r', '\n']))
        {
            // The name goes into a From display-name (RFC 3261 §25.1 quoted-string).
            return Err(invalid(
                "caller_id_name",
                format!(
                    "user {id}: caller_id_name {name:?}: give a name without quotes or line breaks"
                ),
            ));
        }
        users.insert(
            id.clone(),
            User {
                id,
                password: file.password,
                display_name: file.display_name,
                enabled: file.enabled,
                dtmf: file.dtmf,
                context: file.context.unwrap_or_else(|| default_context.to_owned()),
                caller_id_number: file.caller_id_number,
                caller_id_name: file.caller_id_name,
            },
        );
    }
    Ok(Directory { users })
}

/// `switchyard user add <id>`: writes `conf_dir/directory/<id>.toml` with a random
/// 16-character alphanumeric password, mode 0600, and returns the password.
/// Refuses an existing user and invalid ids.
pub fn add_user(conf_dir: &Path, id: &str, display_name: Option<&str>) -> Result<String, Error> {
    use rand::Rng;
    use std::os::unix::fs::OpenOptionsExt;

    if !valid_user_id(id) {
        return Err(Error::InvalidUserId(id.to_owned()));
    }
    let dir = conf_dir.join(DIRECTORY_DIR);
    fs::create_dir_all(&dir).map_err(|source| Error::Io {
        path: dir.clone(),
        source,
    })?;
    let path = dir.join(format!("{id}.toml"));
    // 62^16 ≈ 2^95: far beyond online guessing, even without the failure blocking in [auth].
    let password: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(16)
        .map(char::from)
        .collect();
    let mut text = format!(
        "# Written by `switchyard user add {id}`.\nid = {}\npassword = {}\n",
        toml_string(id),
        toml_string(&password)
    );
    if let Some(name) = display_name {
        text.push_str(&format!("display_name = {}\n", toml_string(name)));
    }
    // create_new: O_EXCL, so two concurrent `user add` of the same id cannot both succeed.
    let mut file = match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::UserExists {
                id: id.to_owned(),
                path,
            });
        }
        Err(source) => return Err(Error::Io { path, source }),
    };
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
    Ok(password)
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let t = "a = 1\nbé = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 6 + "bé ".len()), (2, 4));
    }

    #[test]
    fn key_line_finds_assignment_not_prefix() {
        let t = "[media]\nrtp_port_minimum_x = 3\nrtp_port_min = 5\n";
        assert_eq!(key_line(t, "rtp_port_min"), Some(3));
        assert_eq!(key_line(t, "absent"), None);
    }

    #[test]
    fn toml_string_round_trips() {
        for s in ["Ann \"A\"", "it's", "a\\b\n\"'", "日本"] {
            let v: toml::Table = toml::from_str(&format!("x = {}", toml_string(s))).unwrap();
            assert_eq!(v["x"].as_str(), Some(s));
        }
    }
}
