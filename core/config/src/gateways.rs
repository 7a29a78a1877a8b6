//! `conf/gateways.toml`: SIP trunks to providers, as FreeSWITCH's sofia gateways.
//!
//! ```toml
//! [gateway.provider1]
//! proxy = "sip.provider1.example:5060"   # IP or hostname (resolved at load), port 5060 default
//! username = "4420712345678"
//! password = "secret"
//! ```
//!
//! Each `[gateway.NAME]` table is one trunk: where its proxy is, the credentials we register
//! with (RFC 3261 §10.2), what a call out presents as caller id, and which source addresses
//! may send us calls as that trunk (the proxy's own address always may). The file is
//! optional; without it there are no gateways.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::str::FromStr;

use serde::Deserialize;

use crate::{Error, line_col, parse_file};

/// The file name inside a configuration directory.
pub const GATEWAYS_FILE: &str = "gateways.toml";

/// The transport a trunk's signalling uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayTransport {
    #[default]
    Udp,
    Tcp,
}

/// An address block of `inbound_acl`: `203.0.113.0/24`, `2001:db8::/32`, or a bare address
/// (the whole address: /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    /// The network address, host bits cleared.
    pub network: IpAddr,
    pub prefix_len: u8,
}

impl Cidr {
    /// Is `addr` inside this block? An IPv4-mapped IPv6 source (`::ffff:192.0.2.1`, what a
    /// dual-stack socket reports) matches the IPv4 block it maps.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, addr.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u32::from(a) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(net)
            }
            _ => false,
        }
    }

    /// The block holding exactly `addr`.
    pub fn host(addr: IpAddr) -> Cidr {
        let addr = addr.to_canonical();
        Cidr {
            network: addr,
            prefix_len: if addr.is_ipv4() { 32 } else { 128 },
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address or address/prefix"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len = match len {
            None => max,
            Some(l) => match l.trim().parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{s:?}: the prefix length must be 0-{max}")),
            },
        };
        // Keep the network address canonical so Display shows what is matched.
        let network = match addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(prefix_len))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(prefix_len))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        Ok(Cidr {
            network,
            prefix_len,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

/// One `[gateway.NAME]` table, defaults applied and the proxy resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayConfig {
    /// The table name: what `sofia/gateway/NAME/NUMBER` and `gateway/NAME/NUMBER` name.
    pub name: String,
    /// The proxy's address, resolved at load.
    pub proxy: SocketAddr,
    /// The proxy's host as written (a hostname or an IP literal, without brackets or port).
    pub proxy_host: String,
    pub transport: GatewayTransport,
    /// The account: the digest username and, unless `from_user` says otherwise, the user part
    /// of the address we register and call from.
    pub username: String,
    pub password: String,
    /// When set, only challenges of this realm are answered: the password is never given to
    /// another realm.
    pub realm: Option<String>,
    /// Register with the proxy (RFC 3261 §10.2); false for trunks that authenticate by address.
    pub register: bool,
    /// The registration expiry we ask for, seconds (default 600).
    pub expires_secs: u32,
    /// The first retry after a failed registration, seconds (default 30); doubled after each
    /// further failure up to `max_retry_secs` (default 600).
    pub retry_secs: u64,
    pub max_retry_secs: u64,
    /// The user part of our address of record (default `username`).
    pub from_user: String,
    /// The host part of our address of record and the Request-URI of REGISTER (default the
    /// proxy host).
    pub from_domain: String,
    /// Fixed caller id for calls out through this trunk (e.g. the trunk's DID).
    pub caller_id_number: Option<String>,
    pub caller_id_name: Option<String>,
    /// Put the caller id number in the From user part of calls out (default true); otherwise
    /// From carries `from_user` and only the display name shows the caller id.
    pub caller_id_in_from: bool,
    /// Source addresses whose INVITEs are calls from this trunk, besides the proxy's own.
    pub inbound_acl: Vec<Cidr>,
    /// The dialplan context of calls from this trunk (default: `[dialplan] public_context`,
    /// itself "public" by default).
    pub inbound_context: String,
    /// A disabled gateway neither registers nor carries calls.
    pub enabled: bool,
    /// The line of the `[gateway.NAME]` header, for messages.
    pub line: Option<usize>,
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct GatewaysFile {
    gateway: BTreeMap<String, toml::Spanned<GatewayFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewayFile {
    proxy: String,
    #[serde(default)]
    transport: GatewayTransport,
    username: String,
    #[serde(default)]
    password: String,
    realm: Option<String>,
    #[serde(default = "crate::yes")]
    register: bool,
    #[serde(default = "default_expires")]
    expires: u32,
    #[serde(default = "default_retry")]
    retry_secs: u64,
    #[serde(default = "default_max_retry")]
    max_retry_secs: u64,
    from_user: Option<String>,
    from_domain: Option<String>,
    caller_id_number: Option<String>,
    caller_id_name: Option<String>,
    #[serde(default = "crate::yes")]
    caller_id_in_from: bool,
    #[serde(default)]
    inbound_acl: Vec<String>,
    inbound_context: Option<String>,
    #[serde(default = "crate::yes")]
    enabled: bool,
}

fn default_expires() -> u32 {
    600
}
fn default_retry() -> u64 {
    30
}
fn default_max_retry() -> u64 {
    600
}

/// Shortest and longest registration expiry accepted in the file. Registrars commonly refuse
/// less than 60 s with 423 (RFC 3261 §10.3 step 7); a day is far beyond any provider's maximum.
const MIN_EXPIRES: u32 = 60;
const MAX_EXPIRES: u32 = 86_400;

/// Loads `path` (absent = no gateways). `public_context` is the context of a gateway that
/// names no `inbound_context`.
pub(crate) fn load(
    path: &Path,
    public_context: &str,
) -> Result<BTreeMap<String, GatewayConfig>, Error> {
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    let (text, file) = parse_file::<GatewaysFile>(path)?;
    let mut gateways = BTreeMap::new();
    for (name, spanned) in file.gateway {
        let header_line = line_col(&text, spanned.span().start).0;
        let gateway = gateway_from_file(
            path,
            &text,
            header_line,
            name.clone(),
            spanned.into_inner(),
            public_context,
        )?;
        gateways.insert(name, gateway);
    }
    Ok(gateways)
}

fn gateway_from_file(
    path: &Path,
    text: &str,
    header_line: usize,
    name: String,
    g: GatewayFile,
    public_context: &str,
) -> Result<GatewayConfig, Error> {
    let invalid = |key: &str, message: String| Error::Invalid {
        path: path.to_path_buf(),
        line: Some(key_line_in_table(text, header_line, key).unwrap_or(header_line)),
        message: format!("[gateway.{name}] {message}"),
    };
    if !valid_gateway_name(&name) {
        return Err(invalid(
            "",
            "invalid gateway name: use letters, digits, '-', '_' and '.'".into(),
        ));
    }
    let (proxy_host, port) =
        split_host_port(&g.proxy).map_err(|m| invalid("proxy", format!("proxy: {m}")))?;
    let proxy = resolve(&proxy_host, port)
        .map_err(|m| invalid("proxy", format!("proxy {:?}: {m}", g.proxy)))?;

    if !valid_user_part(&g.username) {
        return Err(invalid(
            "username",
            format!(
                "username {:?}: must be non-empty letters, digits and + - _ . * # only",
                g.username
            ),
        ));
    }
    if g.register && g.password.is_empty() {
        return Err(invalid(
            "password",
            "register = true needs a password (set register = false for a trunk that authenticates by address)".into(),
        ));
    }
    if g.realm.as_deref().is_some_and(|r| r.trim().is_empty()) {
        return Err(invalid("realm", "realm must not be empty when set".into()));
    }
    if !(MIN_EXPIRES..=MAX_EXPIRES).contains(&g.expires) {
        return Err(invalid(
            "expires",
            format!(
                "expires {} is outside {MIN_EXPIRES}-{MAX_EXPIRES} seconds",
                g.expires
            ),
        ));
    }
    if g.retry_secs == 0 {
        return Err(invalid("retry_secs", "retry_secs must be > 0".into()));
    }
    if g.max_retry_secs < g.retry_secs {
        return Err(invalid(
            "max_retry_secs",
            format!(
                "max_retry_secs {} is below retry_secs {}",
                g.max_retry_secs, g.retry_secs
            ),
        ));
    }
    let from_user = g.from_user.unwrap_or_else(|| g.username.clone());
    if !valid_user_part(&from_user) {
        return Err(invalid(
            "from_user",
            format!("from_user {from_user:?}: use letters, digits and + - _ . * # only"),
        ));
    }
    let from_domain = g.from_domain.unwrap_or_else(|| proxy_host.clone());
    if !valid_host(&from_domain) {
        return Err(invalid(
            "from_domain",
            format!("from_domain {from_domain:?} is not a host name or address"),
        ));
    }
    if let Some(n) = &g.caller_id_number
        && !valid_user_part(n)
    {
        return Err(invalid(
            "caller_id_number",
            format!("caller_id_number {n:?}: use digits, letters and + - _ . * # only"),
        ));
    }
    if let Some(n) = &g.caller_id_name
        && n.chars().any(char::is_control)
    {
        return Err(invalid(
            "caller_id_name",
            "caller_id_name must not hold control characters".into(),
        ));
    }
    let mut inbound_acl = Vec::with_capacity(g.inbound_acl.len());
    for entry in &g.inbound_acl {
        inbound_acl.push(
            entry
                .parse::<Cidr>()
                .map_err(|m| invalid("inbound_acl", format!("inbound_acl: {m}")))?,
        );
    }
    let inbound_context = g
        .inbound_context
        .unwrap_or_else(|| public_context.to_owned());
    if !crate::valid_context(&inbound_context) {
        return Err(invalid(
            "inbound_context",
            format!(
                "inbound_context {inbound_context:?}: use letters, digits, -, _ and . (a context name of the plan)"
            ),
        ));
    }
    Ok(GatewayConfig {
        name,
        proxy,
        proxy_host,
        transport: g.transport,
        username: g.username,
        password: g.password,
        realm: g.realm,
        register: g.register,
        expires_secs: g.expires,
        retry_secs: g.retry_secs,
        max_retry_secs: g.max_retry_secs,
        from_user,
        from_domain,
        caller_id_number: g.caller_id_number,
        caller_id_name: g.caller_id_name,
        caller_id_in_from: g.caller_id_in_from,
        inbound_acl,
        inbound_context,
        enabled: g.enabled,
        line: Some(header_line),
    })
}

/// The line of `key =` inside the table whose header is on `header_line` (up to the next
/// table header).
fn key_line_in_table(text: &str, header_line: usize, key: &str) -> Option<usize> {
    if key.is_empty() {
        return None;
    }
    text.lines()
        .enumerate()
        .skip(header_line)
        .take_while(|(_, l)| !l.trim_start().starts_with('['))
        .find(|(_, l)| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|(i, _)| i + 1)
}

/// The name appears in `sofia/gateway/NAME/NUMBER`: no '/', no spaces.
fn valid_gateway_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A URI user part we write unescaped (RFC 3261 §25.1 `user` allows these and more).
fn valid_user_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'_' | b'.' | b'*' | b'#')
        })
}

/// A hostname or an IP literal (IPv6 in brackets or bare).
fn valid_host(s: &str) -> bool {
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    if bare.parse::<IpAddr>().is_ok() {
        return true;
    }
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
}

/// "host", "host:port", "192.0.2.1:5080", "[2001:db8::1]:5080", "2001:db8::1". The port
/// defaults to 5060 (RFC 3261 §19.1.2).
fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty".into());
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "unclosed '[' in an IPv6 address".to_string())?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{host:?} is not an IPv6 address"));
        }
        let port = match after {
            "" => 5060,
            p => parse_port(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("unexpected {p:?} after ']'"))?,
            )?,
        };
        return Ok((host.to_owned(), port));
    }
    // A bare IPv6 address has several colons and no port.
    if s.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok((s.to_owned(), 5060));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, parse_port(p)?),
        None => (s, 5060),
    };
    if !valid_host(host) {
        return Err(format!("{host:?} is not a host name or address"));
    }
    Ok((host.to_owned(), port))
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!("{p:?} is not a port (1-65535)")),
    }
}

/// An IP literal as is; a hostname through the system resolver, IPv4 preferred (the
/// listeners we send from are most often IPv4).
fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{host} has no address"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn load_text(text: &str) -> Result<BTreeMap<String, GatewayConfig>, Error> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(GATEWAYS_FILE);
        std::fs::write(&path, text).unwrap();
        load(&path, "public")
    }

    fn error_text(text: &str) -> String {
        load_text(text).unwrap_err().to_string()
    }

    #[test]
    fn an_absent_file_means_no_gateways() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            load(&dir.path().join(GATEWAYS_FILE), "public")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_shipped_file_loads_with_every_gateway_disabled() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/gateways.toml");
        let gateways = load(&path, "public").unwrap();
        assert_eq!(
            gateways.keys().collect::<Vec<_>>(),
            ["provider1", "provider2"]
        );
        assert!(gateways.values().all(|g| !g.enabled));
        assert_eq!(gateways["provider2"].transport, GatewayTransport::Tcp);
        assert!(!gateways["provider2"].register);
    }

    #[test]
    fn defaults_follow_sofia() {
        let g = load_text(
            "[gateway.provider1]\nproxy = \"192.0.2.10\"\nusername = \"4420\"\npassword = \"pw\"\n",
        )
        .unwrap()
        .remove("provider1")
        .unwrap();
        assert_eq!(g.name, "provider1");
        assert_eq!(g.proxy, "192.0.2.10:5060".parse().unwrap());
        assert_eq!(g.proxy_host, "192.0.2.10");
        assert_eq!(g.transport, GatewayTransport::Udp);
        assert!(g.register && g.enabled && g.caller_id_in_from);
        assert_eq!(g.expires_secs, 600);
        assert_eq!((g.retry_secs, g.max_retry_secs), (30, 600));
        assert_eq!(g.from_user, "4420");
        assert_eq!(g.from_domain, "192.0.2.10");
        assert_eq!(g.inbound_context, "public");
        assert_eq!(g.realm, None);
        assert!(g.inbound_acl.is_empty());
        assert_eq!(g.line, Some(1));
    }

    #[test]
    fn every_key_is_read() {
        let g = load_text(
            r#"
[gateway.p2]
proxy = "[2001:db8::5]:5080"
transport = "tcp"
username = "acct"
password = "pw"
realm = "sip.example"
register = false
expires = 3600
retry_secs = 5
max_retry_secs = 40
from_user = "+4420"
from_domain = "trunk.example"
caller_id_number = "+442071234567"
caller_id_name = "Acme Ltd"
caller_id_in_from = false
inbound_acl = ["203.0.113.0/24", "198.51.100.7", "2001:db8:1::/48"]
inbound_context = "from-p2"
enabled = false
"#,
        )
        .unwrap()
        .remove("p2")
        .unwrap();
        assert_eq!(g.proxy, "[2001:db8::5]:5080".parse().unwrap());
        assert_eq!(g.proxy_host, "2001:db8::5");
        assert_eq!(g.transport, GatewayTransport::Tcp);
        assert_eq!(g.realm.as_deref(), Some("sip.example"));
        assert!(!g.register && !g.enabled && !g.caller_id_in_from);
        assert_eq!(g.expires_secs, 3600);
        assert_eq!((g.retry_secs, g.max_retry_secs), (5, 40));
        assert_eq!(g.from_user, "+4420");
        assert_eq!(g.from_domain, "trunk.example");
        assert_eq!(g.caller_id_number.as_deref(), Some("+442071234567"));
        assert_eq!(g.caller_id_name.as_deref(), Some("Acme Ltd"));
        assert_eq!(g.inbound_context, "from-p2");
        let acl: Vec<String> = g.inbound_acl.iter().map(ToString::to_string).collect();
        assert_eq!(
            acl,
            ["203.0.113.0/24", "198.51.100.7/32", "2001:db8:1::/48"]
        );
        assert_eq!(g.line, Some(2));
    }

    #[test]
    fn a_hostname_is_resolved_at_load() {
        let g = load_text(
            "[gateway.local]\nproxy = \"localhost:5090\"\nusername = \"u\"\npassword = \"p\"\n",
        )
        .unwrap()
        .remove("local")
        .unwrap();
        assert!(g.proxy.ip().is_loopback(), "{}", g.proxy);
        assert_eq!(g.proxy.port(), 5090);
        assert_eq!(g.proxy_host, "localhost");
        assert_eq!(g.from_domain, "localhost");
    }

    #[test]
    fn errors_name_the_file_and_line_of_the_key() {
        let text = "[gateway.a]\nproxy = \"192.0.2.1\"\nusername = \"u\"\npassword = \"p\"\n\n\
                    [gateway.b]\nproxy = \"192.0.2.2\"\nusername = \"u\"\npassword = \"p\"\nexpires = 5\n";
        let e = error_text(text);
        assert!(e.contains("gateways.toml:10: [gateway.b] expires 5"), "{e}");

        let e =
            error_text("[gateway.a]\nproxy = \"192.0.2.1\"\nusername = \"u\"\npasword = \"p\"\n");
        assert!(e.contains("gateways.toml:4:1"), "{e}");
        assert!(e.contains("unknown field `pasword`"), "{e}");

        let e = error_text(
            "[gateway.a]\nproxy = \"192.0.2.1\"\nusername = \"u\"\ntransport = \"sctp\"\n",
        );
        assert!(e.contains("gateways.toml:4"), "{e}");

        let e = error_text("[gateway.a]\nproxy = \"192.0.2.1\"\nusername = \"u\"\n");
        assert!(
            e.contains("gateways.toml:1: [gateway.a] register = true needs a password"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let base = |extra: &str| {
            format!(
                "[gateway.g]\nproxy = \"192.0.2.1\"\nusername = \"u\"\npassword = \"p\"\n{extra}"
            )
        };
        for (extra, needle) in [
            ("retry_secs = 0\n", "retry_secs must be > 0"),
            ("max_retry_secs = 20\n", "below retry_secs"),
            ("expires = 100000\n", "outside 60-86400"),
            (
                "inbound_acl = [\"10.0.0.0/33\"]\n",
                "prefix length must be 0-32",
            ),
            ("inbound_acl = [\"ten\"]\n", "not an address"),
            ("caller_id_number = \"12 34\"\n", "caller_id_number"),
            ("caller_id_name = \"a\\r\\nVia: x\"\n", "control characters"),
            ("from_domain = \"a b\"\n", "from_domain"),
            ("inbound_context = \"\"\n", "inbound_context"),
            ("inbound_context = \"a b\"\n", "a context name"),
            ("realm = \" \"\n", "realm"),
        ] {
            let e = error_text(&base(extra));
            assert!(e.contains(needle), "{extra}: {e}");
            assert!(e.contains("gateways.toml:5"), "{extra}: {e}");
        }
        for (proxy, needle) in [
            ("", "empty"),
            ("192.0.2.1:0", "not a port"),
            ("192.0.2.1:x", "not a port"),
            ("[2001:db8::1", "unclosed"),
            ("bad host:5060", "not a host name"),
            ("no-such-host.invalid", "cannot resolve"),
        ] {
            let e = error_text(&format!(
                "[gateway.g]\nusername = \"u\"\nregister = false\nproxy = \"{proxy}\"\n"
            ));
            assert!(
                e.contains(needle) && e.contains("gateways.toml:4"),
                "{proxy}: {e}"
            );
        }
        let e = error_text(
            "[gateway.\"a/b\"]\nproxy = \"192.0.2.1\"\nusername = \"u\"\nregister = false\n",
        );
        assert!(
            e.contains("gateways.toml:1") && e.contains("invalid gateway name"),
            "{e}"
        );
        let e = error_text(
            "[gateway.g]\nproxy = \"192.0.2.1\"\nusername = \"a@b\"\nregister = false\n",
        );
        assert!(
            e.contains("gateways.toml:3") && e.contains("username"),
            "{e}"
        );
    }

    #[test]
    fn the_inbound_context_defaults_to_the_public_context() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(GATEWAYS_FILE);
        std::fs::write(
            &path,
            "[gateway.a]\nproxy = \"192.0.2.1\"\nusername = \"u\"\nregister = false\n\n\
             [gateway.b]\nproxy = \"192.0.2.2\"\nusername = \"u\"\nregister = false\ninbound_context = \"trunk-b\"\n",
        )
        .unwrap();
        let g = load(&path, "from-trunks").unwrap();
        assert_eq!(g["a"].inbound_context, "from-trunks");
        assert_eq!(g["b"].inbound_context, "trunk-b");
    }

    #[test]
    fn a_trunk_without_registration_needs_no_password() {
        let g =
            load_text("[gateway.ip]\nproxy = \"192.0.2.1\"\nusername = \"u\"\nregister = false\n")
                .unwrap()
                .remove("ip")
                .unwrap();
        assert!(!g.register);
        assert_eq!(g.password, "");
    }

    #[test]
    fn cidrs_match_their_block_only() {
        let net: Cidr = "203.0.113.77/24".parse().unwrap();
        assert_eq!(net.to_string(), "203.0.113.0/24");
        assert!(net.contains("203.0.113.1".parse().unwrap()));
        assert!(net.contains("::ffff:203.0.113.200".parse().unwrap()));
        assert!(!net.contains("203.0.114.1".parse().unwrap()));
        assert!(!net.contains("2001:db8::1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8))));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        let host = Cidr::host("192.0.2.9".parse().unwrap());
        assert!(host.contains("192.0.2.9".parse().unwrap()));
        assert!(!host.contains("192.0.2.10".parse().unwrap()));
        assert_eq!("::ffff:192.0.2.9".parse::<Cidr>().unwrap(), host);
    }

    #[test]
    fn proxies_split_into_host_and_port() {
        assert_eq!(
            split_host_port("h.example").unwrap(),
            ("h.example".into(), 5060)
        );
        assert_eq!(
            split_host_port("h.example:5080").unwrap(),
            ("h.example".into(), 5080)
        );
        assert_eq!(
            split_host_port("2001:db8::1").unwrap(),
            ("2001:db8::1".into(), 5060)
        );
        assert_eq!(
            split_host_port("[2001:db8::1]").unwrap(),
            ("2001:db8::1".into(), 5060)
        );
        assert!(split_host_port("[2001:db8::1]5080").is_err());
    }
}
