//! switchyard-sdp: the Session Description Protocol (RFC 8866, formerly RFC 4566) and what a
//! B2BUA with anchored media needs of the RFC 3264 offer/answer model.
//!
//! Sans-IO: bytes in, bytes out. [`SessionDescription::parse`] is tolerant where real phones are
//! sloppy (LF-only line ends, trailing blank lines, unknown line types kept in order) and strict
//! where a wrong guess would send media to the wrong place (`v=`, `o=`, `s=`, `c=`, `m=`).
//!
//! The offer/answer helpers:
//! - [`anchor`] rewrites a peer's SDP so its media flows through our relay (one per direction).
//! - [`answer`] builds our own answer when we terminate media (echo test, IVR).
//! - [`check_answer`] validates a peer's answer against the offer we sent (RFC 3264 §6).
//! - [`OriginState`] keeps the `o=` line we present to one leg stable (RFC 3264 §8).
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};

/// Everything that can go wrong in this crate. Peer faults (`Malformed`, `MissingLine`,
/// `NotUtf8`, `AnswerMismatch`) are kept apart from negotiation outcomes (`NoAudio`,
/// `NoCommonCodec`, `UnsupportedTransport`), which a B2BUA answers with 488 Not Acceptable Here.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("SDP is not UTF-8")]
    NotUtf8,
    #[error("SDP line {line}: {reason}")]
    Malformed { line: usize, reason: &'static str },
    #[error("SDP lacks the required {0}= line")]
    MissingLine(char),
    #[error("SDP has no usable audio stream")]
    NoAudio,
    #[error("no audio codec in common")]
    NoCommonCodec,
    /// The audio stream's transport cannot be relayed or terminated here: DTLS-SRTP (its
    /// keys come from a handshake our relay does not pass), or SRTP where we answer ourselves.
    #[error("unsupported media transport {0}")]
    UnsupportedTransport(String),
    #[error("answer does not match the offer (RFC 3264 §6): {0}")]
    AnswerMismatch(String),
}

/// `o=` (RFC 8866 §5.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub session_id: String,
    pub session_version: u64,
    pub net_type: String,
    pub addr_type: String,
    pub address: String,
}

/// `c=` (RFC 8866 §5.7). `address` is kept as written, including any `/ttl` suffix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub net_type: String,
    /// `IP4` or `IP6`.
    pub addr_type: String,
    pub address: String,
}

impl Connection {
    /// `IN IP4|IP6 <ip>` for one of our addresses.
    pub fn for_ip(ip: IpAddr) -> Connection {
        Connection {
            net_type: "IN".into(),
            addr_type: addr_type(ip).into(),
            address: ip.to_string(),
        }
    }

    /// The unicast address, without a multicast `/ttl` or `/count` suffix. None if unparsable
    /// (an FQDN, which RFC 8866 allows but no phone we meet uses for media).
    pub fn ip(&self) -> Option<IpAddr> {
        let addr = self.address.split('/').next().unwrap_or("");
        addr.parse().ok()
    }

    /// RFC 2543 hold: `c=IN IP4 0.0.0.0` (RFC 3264 §8.4 still asks us to understand it).
    pub fn is_hold_address(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

/// `a=name[:value]` (RFC 8866 §5.13).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub value: Option<String>,
}

impl Attribute {
    pub fn flag(name: &str) -> Attribute {
        Attribute {
            name: name.into(),
            value: None,
        }
    }

    pub fn new(name: &str, value: impl Into<String>) -> Attribute {
        Attribute {
            name: name.into(),
            value: Some(value.into()),
        }
    }
}

/// One `m=` section (RFC 8866 §5.14) with its `c=`, `b=` and `a=` lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, `application`...
    pub media: String,
    pub port: u16,
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`...
    pub proto: String,
    /// Payload types (or other formats) as written.
    pub formats: Vec<String>,
    pub connection: Option<Connection>,
    /// `b=` values, without the `b=`.
    pub bandwidths: Vec<String>,
    pub attributes: Vec<Attribute>,
    /// Lines we do not model (`i=`, `k=`, unknown types), complete with their `x=` prefix, in
    /// the order they came. Written back where RFC 8866 §5 places them.
    pub other_lines: Vec<String>,
}

impl MediaDescription {
    /// The value of the first attribute called `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        find_attribute(&self.attributes, name)
    }

    fn direction_attribute(&self) -> Option<Direction> {
        direction_of(&self.attributes)
    }

    /// The codecs this stream offers, in format order (see [`SessionDescription::audio_codecs`]).
    pub fn codecs(&self) -> Vec<Codec> {
        self.formats.iter().filter_map(|f| self.codec(f)).collect()
    }

    /// The codec for one format: from its `a=rtpmap`, else the RFC 3551 static table.
    pub fn codec(&self, format: &str) -> Option<Codec> {
        let payload_type: u8 = format.parse().ok()?;
        // Only the canonical spelling: "00" or "+0" would not match "0" in rtpmap or answers.
        if payload_type > 127
            || format.len() != decimal_len(payload_type)
            || format.starts_with('+')
        {
            return None;
        }
        let fmtp = self.pt_attribute("fmtp", format).map(str::to_owned);
        if let Some(map) = self.pt_attribute("rtpmap", format) {
            // RFC 8866 §6.6: <encoding name>/<clock rate>[/<encoding parameters>]
            let mut parts = map.split('/');
            let name = parts.next()?.trim();
            let clock_rate = parts.next()?.trim().parse().ok()?;
            let channels = parts.next().and_then(|c| c.trim().parse().ok());
            if name.is_empty() {
                return None;
            }
            return Some(Codec {
                payload_type,
                name: name.into(),
                clock_rate,
                channels,
                fmtp,
            });
        }
        let (name, clock_rate) = static_payload_type(payload_type)?;
        Some(Codec {
            payload_type,
            name: name.into(),
            clock_rate,
            channels: None,
            fmtp,
        })
    }

    /// The rest of `a=<name>:<pt> <rest>` for the given payload type.
    fn pt_attribute(&self, name: &str, format: &str) -> Option<&str> {
        self.attributes
            .iter()
            .filter(|a| a.name.eq_ignore_ascii_case(name))
            .find_map(|a| {
                let value = a.value.as_deref()?;
                let (pt, rest) = value
                    .split_once(|c: char| c.is_ascii_whitespace())
                    .unwrap_or((value, ""));
                (pt == format).then(|| rest.trim())
            })
    }
}

fn decimal_len(n: u8) -> usize {
    match n {
        0..=9 => 1,
        10..=99 => 2,
        _ => 3,
    }
}

/// RFC 3551 §6 table 4: static audio payload types that need no `a=rtpmap`.
fn static_payload_type(pt: u8) -> Option<(&'static str, u32)> {
    Some(match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        8 => ("PCMA", 8000),
        // RFC 3551 §4.5.2: G.722's RTP clock rate is 8000 although it samples at 16 kHz.
        9 => ("G722", 8000),
        13 => ("CN", 8000),
        18 => ("G729", 8000),
        _ => return None,
    })
}

/// The stream direction attribute (RFC 3264 §5.1, §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_name(name: &str) -> Option<Direction> {
        Some(match name.to_ascii_lowercase().as_str() {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    /// What the answerer says for this offered direction (RFC 3264 §6.1).
    pub fn mirror(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// Whether the side that wrote this direction puts the other on hold (it will not receive).
    pub fn is_hold(self) -> bool {
        matches!(self, Direction::SendOnly | Direction::Inactive)
    }

    fn without_receive(self) -> Direction {
        match self {
            Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
            Direction::RecvOnly | Direction::Inactive => Direction::Inactive,
        }
    }
}

fn direction_of(attributes: &[Attribute]) -> Option<Direction> {
    attributes.iter().rev().find_map(|a| {
        if a.value.is_none() {
            Direction::from_name(&a.name)
        } else {
            None
        }
    })
}

fn find_attribute<'a>(attributes: &'a [Attribute], name: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
        .map(|a| a.value.as_deref().unwrap_or(""))
}

/// A codec of an audio stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Codec {
    pub payload_type: u8,
    pub name: String,
    pub clock_rate: u32,
    pub channels: Option<u8>,
    pub fmtp: Option<String>,
}

impl Codec {
    fn same_encoding(&self, other: &Codec) -> bool {
        self.name.eq_ignore_ascii_case(&other.name) && self.clock_rate == other.clock_rate
    }

    /// DTMF events (RFC 4733) and comfort noise (RFC 3389) ride along with a voice codec; they
    /// cannot carry a call by themselves.
    pub fn is_voice(&self) -> bool {
        !(self.name.eq_ignore_ascii_case("telephone-event") || self.name.eq_ignore_ascii_case("CN"))
    }
}

/// A parsed SDP body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin: Origin,
    pub session_name: String,
    pub connection: Option<Connection>,
    /// `b=` values, without the `b=`.
    pub bandwidths: Vec<String>,
    /// `t=` values, without the `t=`. Written as `t=0 0` if empty (RFC 8866 requires one).
    pub times: Vec<String>,
    pub attributes: Vec<Attribute>,
    pub media: Vec<MediaDescription>,
    /// Session-level lines we do not model (`i=`, `u=`, `e=`, `p=`, `r=`, `z=`, `k=`, unknown
    /// types), complete with their `x=` prefix, in the order they came.
    pub other_lines: Vec<String>,
}

impl SessionDescription {
    /// Parses an SDP body. Accepts CRLF or LF line ends; rejects a body without `v=0`, `o=` and
    /// `s=`, and any malformed `o=`, `c=` or `m=` line. A missing `t=` is tolerated.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let text = std::str::from_utf8(body).map_err(|_| Error::NotUtf8)?;
        let mut version_seen = false;
        let mut origin = None;
        let mut session_name = None;
        let mut connection = None;
        let mut bandwidths = Vec::new();
        let mut times = Vec::new();
        let mut attributes = Vec::new();
        let mut other_lines = Vec::new();
        let mut media: Vec<MediaDescription> = Vec::new();

        for (index, raw) in text.split('\n').enumerate() {
            let line_no = index + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.trim().is_empty() {
                continue;
            }
            let malformed = |reason| Error::Malformed {
                line: line_no,
                reason,
            };
            let bytes = line.as_bytes();
            // RFC 8866 §5: <type>=<value>, type exactly one character, no spaces around '='.
            if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_alphabetic() {
                return Err(malformed("not a <type>=<value> line"));
            }
            let kind = bytes[0] as char;
            let value = &line[2..];
            if !version_seen {
                if kind != 'v' || value.trim() != "0" {
                    return Err(malformed("the first line must be v=0"));
                }
                version_seen = true;
                continue;
            }
            match (kind, media.last_mut()) {
                ('v', _) => return Err(malformed("repeated v= line")),
                ('o', None) => {
                    if origin.is_some() {
                        return Err(malformed("repeated o= line"));
                    }
                    origin = Some(parse_origin(value).ok_or(malformed("bad o= line"))?);
                }
                ('s', None) => {
                    if session_name.is_some() {
                        return Err(malformed("repeated s= line"));
                    }
                    session_name = Some(value.to_owned());
                }
                ('c', None) => {
                    connection = Some(parse_connection(value).ok_or(malformed("bad c= line"))?)
                }
                ('b', None) => bandwidths.push(value.to_owned()),
                ('t', None) => times.push(value.to_owned()),
                ('a', None) => attributes.push(parse_attribute(value)),
                ('m', _) => {
                    if origin.is_none() {
                        return Err(Error::MissingLine('o'));
                    }
                    if session_name.is_none() {
                        return Err(Error::MissingLine('s'));
                    }
                    media.push(parse_media(value).ok_or(malformed("bad m= line"))?);
                }
                ('c', Some(m)) => {
                    m.connection = Some(parse_connection(value).ok_or(malformed("bad c= line"))?)
                }
                ('b', Some(m)) => m.bandwidths.push(value.to_owned()),
                ('a', Some(m)) => m.attributes.push(parse_attribute(value)),
                ('o' | 's' | 't', Some(_)) => return Err(malformed("session-level line after m=")),
                (_, None) => other_lines.push(line.to_owned()),
                (_, Some(m)) => m.other_lines.push(line.to_owned()),
            }
        }
        if !version_seen {
            return Err(Error::MissingLine('v'));
        }
        let origin = origin.ok_or(Error::MissingLine('o'))?;
        let session_name = session_name.ok_or(Error::MissingLine('s'))?;
        Ok(SessionDescription {
            origin,
            session_name,
            connection,
            bandwidths,
            times,
            attributes,
            media,
            other_lines,
        })
    }

    /// Serializes with CRLF line ends, lines in the order RFC 8866 §5 prescribes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(512);
        let o = &self.origin;
        let _ = write!(
            out,
            "v=0\r\no={} {} {} {} {} {}\r\ns={}\r\n",
            o.username,
            o.session_id,
            o.session_version,
            o.net_type,
            o.addr_type,
            o.address,
            self.session_name
        );
        let is_one_of =
            |line: &String, kinds: &str| line.chars().next().is_some_and(|k| kinds.contains(k));
        // i= u= e= p= come before c=; r= z= k= and unknown types after t=.
        for line in self.other_lines.iter().filter(|l| is_one_of(l, "iuep")) {
            push_line(&mut out, line);
        }
        if let Some(c) = &self.connection {
            write_connection(&mut out, c);
        }
        for b in &self.bandwidths {
            let _ = write!(out, "b={b}\r\n");
        }
        if self.times.is_empty() {
            out.push_str("t=0 0\r\n");
        }
        for t in &self.times {
            let _ = write!(out, "t={t}\r\n");
        }
        for line in self.other_lines.iter().filter(|l| !is_one_of(l, "iuep")) {
            push_line(&mut out, line);
        }
        write_attributes(&mut out, &self.attributes);
        for m in &self.media {
            let _ = write!(out, "m={} {}", m.media, m.port);
            if let Some(count) = m.port_count {
                let _ = write!(out, "/{count}");
            }
            let _ = write!(out, " {}", m.proto);
            for f in &m.formats {
                let _ = write!(out, " {f}");
            }
            out.push_str("\r\n");
            for line in m.other_lines.iter().filter(|l| l.starts_with('i')) {
                push_line(&mut out, line);
            }
            if let Some(c) = &m.connection {
                write_connection(&mut out, c);
            }
            for b in &m.bandwidths {
                let _ = write!(out, "b={b}\r\n");
            }
            for line in m.other_lines.iter().filter(|l| !l.starts_with('i')) {
                push_line(&mut out, line);
            }
            write_attributes(&mut out, &m.attributes);
        }
        out.into_bytes()
    }

    /// The first `m=audio` stream, whatever its port. See [`active_audio`](Self::active_audio)
    /// for the one media flows on.
    pub fn audio(&self) -> Option<&MediaDescription> {
        self.media
            .iter()
            .find(|m| m.media.eq_ignore_ascii_case("audio"))
    }

    /// The audio stream media flows on: the first `m=audio` whose port is not 0 (a port of 0
    /// rejects or disables a stream, RFC 3264 §5.1, §8.2). Every audio helper of this crate
    /// uses this one.
    pub fn active_audio(&self) -> Option<&MediaDescription> {
        self.media.get(self.active_audio_index()?)
    }

    fn active_audio_index(&self) -> Option<usize> {
        self.media
            .iter()
            .position(|m| m.media.eq_ignore_ascii_case("audio") && m.port != 0)
    }

    /// The active audio stream's RTP destination: its `c=` (else the session's) and its port.
    /// None if there is no audio stream with a port other than 0, the address is not an IP
    /// literal, or it is the RFC 2543 hold address 0.0.0.0 (nothing may be sent there).
    pub fn audio_destination(&self) -> Option<SocketAddr> {
        let audio = self.active_audio()?;
        let ip = self.audio_connection(audio)?.ip()?;
        if ip.is_unspecified() {
            return None;
        }
        Some(SocketAddr::new(ip, audio.port))
    }

    fn audio_connection<'a>(&'a self, audio: &'a MediaDescription) -> Option<&'a Connection> {
        audio.connection.as_ref().or(self.connection.as_ref())
    }

    /// The direction of the active audio stream, as the writer of this SDP means it: the media
    /// attribute, else the session attribute, else sendrecv (RFC 3264 §5.1). RFC 2543 hold
    /// (`c=0.0.0.0`, RFC 3264 §8.4) removes the receive half: sendrecv becomes sendonly and
    /// recvonly becomes inactive. No audio stream with a port other than 0 is inactive.
    pub fn audio_direction(&self) -> Direction {
        let Some(audio) = self.active_audio() else {
            return Direction::Inactive;
        };
        let declared = audio
            .direction_attribute()
            .or_else(|| direction_of(&self.attributes))
            .unwrap_or(Direction::SendRecv);
        match self.audio_connection(audio) {
            Some(c) if c.is_hold_address() => declared.without_receive(),
            _ => declared,
        }
    }

    /// Codecs of the active audio stream, in the writer's order of preference, as (payload type,
    /// encoding name, clock rate) from `a=rtpmap`, falling back to the RFC 3551 static table
    /// (0 PCMU, 3 GSM, 4 G723, 8 PCMA, 9 G722, 13 CN, 18 G729). Formats that are neither are
    /// left out.
    pub fn audio_codecs(&self) -> Vec<Codec> {
        self.active_audio()
            .map(MediaDescription::codecs)
            .unwrap_or_default()
    }
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line);
    out.push_str("\r\n");
}

fn write_connection(out: &mut String, c: &Connection) {
    let _ = write!(out, "c={} {} {}\r\n", c.net_type, c.addr_type, c.address);
}

fn write_attributes(out: &mut String, attributes: &[Attribute]) {
    for a in attributes {
        match &a.value {
            Some(v) => {
                let _ = write!(out, "a={}:{}\r\n", a.name, v);
            }
            None => {
                let _ = write!(out, "a={}\r\n", a.name);
            }
        }
    }
}

fn parse_origin(value: &str) -> Option<Origin> {
    let mut f = value.split_ascii_whitespace();
    let origin = Origin {
        username: f.next()?.into(),
        session_id: f.next()?.into(),
        session_version: f.next()?.parse().ok()?,
        net_type: f.next()?.into(),
        addr_type: f.next()?.into(),
        address: f.next()?.into(),
    };
    if f.next().is_some() {
        return None;
    }
    Some(origin)
}

fn parse_connection(value: &str) -> Option<Connection> {
    let mut f = value.split_ascii_whitespace();
    let c = Connection {
        net_type: f.next()?.into(),
        addr_type: f.next()?.into(),
        address: f.next()?.into(),
    };
    if f.next().is_some() {
        return None;
    }
    // An IP address must parse as the family it claims; an FQDN is allowed by RFC 8866.
    let looks_numeric = c
        .address
        .split('/')
        .next()?
        .chars()
        .all(|ch| ch.is_ascii_digit() || ch == '.' || ch == ':');
    if c.net_type == "IN" && looks_numeric {
        match (c.addr_type.as_str(), c.ip()?) {
            ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => {}
            _ => return None,
        }
    }
    Some(c)
}

fn parse_attribute(value: &str) -> Attribute {
    match value.split_once(':') {
        Some((name, v)) => Attribute {
            name: name.into(),
            value: Some(v.into()),
        },
        None => Attribute {
            name: value.into(),
            value: None,
        },
    }
}

fn parse_media(value: &str) -> Option<MediaDescription> {
    let mut f = value.split_ascii_whitespace();
    let media = f.next()?.to_owned();
    let port_field = f.next()?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((p, n)) => (p.parse().ok()?, Some(n.parse().ok()?)),
        None => (port_field.parse().ok()?, None),
    };
    let proto = f.next()?.to_owned();
    let formats: Vec<String> = f.map(str::to_owned).collect();
    // RFC 8866 §5.14: at least one format.
    if formats.is_empty() {
        return None;
    }
    Some(MediaDescription {
        media,
        port,
        port_count,
        proto,
        formats,
        connection: None,
        bandwidths: Vec::new(),
        attributes: Vec::new(),
        other_lines: Vec::new(),
    })
}

fn addr_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

/// The `o=` line we present to one call leg. RFC 3264 §8: the session id stays the same for the
/// life of the session, and the version increases by one each time the SDP we send changes
/// (and only then: a re-sent identical body keeps its version).
#[derive(Clone, Debug)]
pub struct OriginState {
    session_id: u64,
    version: u64,
    last_body: Option<u64>,
}

impl OriginState {
    pub fn new(session_id: u64) -> Self {
        OriginState {
            session_id,
            version: 0,
            last_body: None,
        }
    }

    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// The version of the last SDP stamped (0 before the first).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Writes our `o=` into `sdp`: username `switchyard`, our session id, and a version bumped
    /// only if the rest of the body differs from the last one stamped.
    pub fn stamp(&mut self, sdp: &mut SessionDescription, address: IpAddr) {
        sdp.origin = Origin {
            username: "switchyard".into(),
            session_id: self.session_id.to_string(),
            session_version: 0,
            net_type: "IN".into(),
            addr_type: addr_type(address).into(),
            address: address.to_string(),
        };
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        sdp.to_bytes().hash(&mut hasher);
        let body = hasher.finish();
        if self.last_body != Some(body) {
            self.version += 1;
            self.last_body = Some(body);
        }
        sdp.origin.session_version = self.version;
    }
}

/// Attributes that cannot survive a media relay: ICE (RFC 8839) would let the peers find each
/// other around us, DTLS keying (RFC 8842) needs a handshake our relay does not pass (it relays
/// RTP and RTCP only), and RTCP multiplexing (RFC 5761) is off because we relay RTCP on
/// port + 1. SDES keys (`a=crypto`, RFC 4568) stay: the relay passes SRTP and SRTCP untouched,
/// so the two phones' keys work end to end.
fn is_relay_hostile(attribute: &Attribute) -> bool {
    let name = attribute.name.to_ascii_lowercase();
    name.starts_with("ice-")
        || matches!(
            name.as_str(),
            "candidate"
                | "remote-candidates"
                | "end-of-candidates"
                | "fingerprint"
                | "setup"
                | "rtcp-mux"
        )
        || (name == "group"
            && attribute
                .value
                .as_deref()
                .is_some_and(|v| v.starts_with("BUNDLE")))
}

/// Attributes tied to one payload type (`a=rtpmap:<pt> ...`, `a=fmtp:<pt> ...`, `a=rtcp-fb:<pt> ...`).
fn payload_type_of(attribute: &Attribute) -> Option<&str> {
    let name = attribute.name.to_ascii_lowercase();
    if !matches!(name.as_str(), "rtpmap" | "fmtp" | "rtcp-fb") {
        return None;
    }
    let value = attribute.value.as_deref()?;
    Some(value.split_ascii_whitespace().next().unwrap_or(""))
}

/// Media anchoring for a B2BUA: the same SDP with every `c=` pointing at `relay`'s IP, the
/// active audio stream's ([`SessionDescription::active_audio`]) port set to `relay`'s port (RTCP
/// on port + 1), our `o=` from `origin`, ICE and DTLS attributes dropped, and every other stream
/// rejected with port 0 (RFC 3264 §6; the m= lines stay so the answer lines up with the offer).
/// With `allowed`, the audio formats are narrowed to those codec names (case-insensitive), with
/// their rtpmap/fmtp/rtcp-fb.
///
/// The stream's direction is written out when it is not sendrecv, so hold survives the rewrite:
/// RFC 2543 hold (`c=0.0.0.0`) becomes `a=sendonly` (or `a=inactive`) on our address.
///
/// SRTP: SDES (`RTP/SAVP(F)` with `a=crypto`, RFC 4568) passes through, keys included, since the
/// relay forwards SRTP and SRTCP untouched. DTLS-SRTP (`UDP/TLS/RTP/SAVP(F)`, or `RTP/SAVP(F)`
/// with no `a=crypto`, keyed by `a=fingerprint`) is refused with
/// [`Error::UnsupportedTransport`]: its keys come from a DTLS handshake on the media ports,
/// which the relay drops as neither RTP nor RTCP, and which needs ICE we strip.
///
/// With no audio stream but rejected ones (port 0), every stream stays rejected. Errors: no
/// audio stream at all, DTLS-SRTP, or no voice codec left after filtering.
pub fn anchor(
    sdp: &SessionDescription,
    relay: SocketAddr,
    origin: &mut OriginState,
    allowed: Option<&[&str]>,
) -> Result<SessionDescription, Error> {
    if sdp.audio().is_none() {
        return Err(Error::NoAudio);
    }
    let audio_index = sdp.active_audio_index();
    let direction = sdp.audio_direction();
    if let Some(index) = audio_index {
        let audio = &sdp.media[index];
        let proto = audio.proto.to_ascii_uppercase();
        let sdes = audio
            .attributes
            .iter()
            .any(|a| a.name.eq_ignore_ascii_case("crypto"));
        if proto.contains("TLS") || (proto.contains("SAVP") && !sdes) {
            return Err(Error::UnsupportedTransport(audio.proto.clone()));
        }
    }
    let mut out = sdp.clone();
    let ours = Connection::for_ip(relay.ip());
    out.connection = Some(ours.clone());
    out.attributes.retain(|a| !is_relay_hostile(a));
    for (index, m) in out.media.iter_mut().enumerate() {
        if m.connection.is_some() {
            m.connection = Some(ours.clone());
        }
        m.attributes.retain(|a| !is_relay_hostile(a));
        if Some(index) != audio_index {
            m.port = 0;
            m.port_count = None;
            m.attributes
                .retain(|a| !a.name.eq_ignore_ascii_case("rtcp"));
            continue;
        }
        m.port = relay.port();
        // RFC 3264 §5.1: the direction we present must be the one the writer meant; hold by
        // c=0.0.0.0 (RFC 3264 §8.4) is lost once we replace the address with ours.
        if direction != Direction::SendRecv {
            m.attributes
                .retain(|a| a.value.is_some() || Direction::from_name(&a.name).is_none());
            m.attributes.push(Attribute::flag(direction.as_str()));
        }
        m.port_count = None;
        // RFC 3605: say where our RTCP is, replacing the peer's (which would bypass the relay).
        for a in m
            .attributes
            .iter_mut()
            .filter(|a| a.name.eq_ignore_ascii_case("rtcp"))
        {
            a.value = Some(relay.port().wrapping_add(1).to_string());
        }
        if let Some(allowed) = allowed {
            let keep: Vec<String> = m
                .formats
                .iter()
                .filter(|f| {
                    m.codec(f)
                        .is_some_and(|c| allowed.iter().any(|n| n.eq_ignore_ascii_case(&c.name)))
                })
                .cloned()
                .collect();
            if !keep
                .iter()
                .any(|f| m.codec(f).is_some_and(|c| c.is_voice()))
            {
                return Err(Error::NoCommonCodec);
            }
            m.attributes.retain(|a| {
                payload_type_of(a).is_none_or(|pt| pt == "*" || keep.iter().any(|k| k == pt))
            });
            m.formats = keep;
        }
    }
    origin.stamp(&mut out, relay.ip());
    Ok(out)
}

/// Our own answer when we terminate the media (the echo test, IVRs): for the active audio
/// stream, the first codec in the OFFER's order whose name is in `supported` (RFC 3264 §6.1:
/// the offerer's preference wins), plus telephone-event if offered at the codec's clock rate
/// (RFC 4733 §2.1), the offered ptime, the mirrored direction; every other stream rejected with
/// port 0. We do not do SRTP: an audio stream whose transport is not plain RTP (`RTP/AVP`,
/// `RTP/AVPF`) is [`Error::UnsupportedTransport`].
pub fn answer(
    offer: &SessionDescription,
    relay: SocketAddr,
    origin: &mut OriginState,
    supported: &[&str],
) -> Result<SessionDescription, Error> {
    let audio_index = offer.active_audio_index().ok_or(Error::NoAudio)?;
    let offered = &offer.media[audio_index];
    if !matches!(
        offered.proto.to_ascii_uppercase().as_str(),
        "RTP/AVP" | "RTP/AVPF"
    ) {
        return Err(Error::UnsupportedTransport(offered.proto.clone()));
    }
    let codecs = offered.codecs();
    let chosen = codecs
        .iter()
        .find(|c| c.is_voice() && supported.iter().any(|s| s.eq_ignore_ascii_case(&c.name)))
        .ok_or(Error::NoCommonCodec)?;
    // RFC 4733 §2.1: events use the clock rate of the audio codec; at another rate, none.
    let event = codecs.iter().find(|c| {
        c.name.eq_ignore_ascii_case("telephone-event") && c.clock_rate == chosen.clock_rate
    });

    let mut attributes = Vec::new();
    let mut formats = Vec::new();
    for codec in std::iter::once(chosen).chain(event) {
        formats.push(codec.payload_type.to_string());
        let mut map = format!("{} {}/{}", codec.payload_type, codec.name, codec.clock_rate);
        if let Some(ch) = codec.channels {
            let _ = write!(map, "/{ch}");
        }
        attributes.push(Attribute::new("rtpmap", map));
        if let Some(fmtp) = &codec.fmtp {
            attributes.push(Attribute::new(
                "fmtp",
                format!("{} {}", codec.payload_type, fmtp),
            ));
        }
    }
    if let Some(ptime) = offered.attribute("ptime") {
        attributes.push(Attribute::new("ptime", ptime));
    }
    attributes.push(Attribute::flag(offer.audio_direction().mirror().as_str()));

    let media = offer
        .media
        .iter()
        .enumerate()
        .map(|(index, m)| {
            if index == audio_index {
                MediaDescription {
                    media: m.media.clone(),
                    port: relay.port(),
                    port_count: None,
                    proto: m.proto.clone(),
                    formats: formats.clone(),
                    connection: None,
                    bandwidths: Vec::new(),
                    attributes: attributes.clone(),
                    other_lines: Vec::new(),
                }
            } else {
                // RFC 3264 §6: a rejected stream keeps its m= line with port 0.
                MediaDescription {
                    media: m.media.clone(),
                    port: 0,
                    port_count: None,
                    proto: m.proto.clone(),
                    formats: m.formats.clone(),
                    connection: None,
                    bandwidths: Vec::new(),
                    attributes: Vec::new(),
                    other_lines: Vec::new(),
                }
            }
        })
        .collect();

    let mut out = SessionDescription {
        origin: offer.origin.clone(),
        session_name: "switchyard".into(),
        connection: Some(Connection::for_ip(relay.ip())),
        bandwidths: Vec::new(),
        // RFC 3264 §6: the t= line in the answer must equal the offer's.
        times: offer.times.clone(),
        attributes: Vec::new(),
        media,
        other_lines: Vec::new(),
    };
    origin.stamp(&mut out, relay.ip());
    Ok(out)
}

/// RFC 3264 §6: an answer has exactly as many m= lines as the offer, of the same media type, in
/// the same order; a stream rejected in the offer stays rejected; an accepted stream lists at
/// least one format, each of them offered (static payload types by number, dynamic ones by
/// encoding name and clock rate, since §6.1 lets the answerer pick its own dynamic numbers).
pub fn check_answer(offer: &SessionDescription, answer: &SessionDescription) -> Result<(), Error> {
    let mismatch = |reason: String| Err(Error::AnswerMismatch(reason));
    if offer.media.len() != answer.media.len() {
        return mismatch(format!(
            "{} m= lines offered, {} answered",
            offer.media.len(),
            answer.media.len()
        ));
    }
    for (index, (o, a)) in offer.media.iter().zip(&answer.media).enumerate() {
        let stream = index + 1;
        if !o.media.eq_ignore_ascii_case(&a.media) {
            return mismatch(format!(
                "m= line {stream}: {} offered, {} answered",
                o.media, a.media
            ));
        }
        if a.port == 0 {
            continue;
        }
        if o.port == 0 {
            return mismatch(format!(
                "m= line {stream}: accepted a stream the offer disabled"
            ));
        }
        if !o.proto.eq_ignore_ascii_case(&a.proto) {
            return mismatch(format!(
                "m= line {stream}: transport {} offered, {} answered",
                o.proto, a.proto
            ));
        }
        let is_rtp = o.proto.to_ascii_uppercase().contains("RTP");
        for format in &a.formats {
            let offered = match format.parse::<u8>() {
                Ok(pt) if is_rtp && pt >= 96 => {
                    let offered_codecs = o.codecs();
                    match a.codec(format) {
                        Some(codec) => offered_codecs.iter().any(|c| c.same_encoding(&codec)),
                        // No rtpmap in the answer: the offer's mapping for that number applies.
                        None => o.formats.contains(format) && o.codec(format).is_some(),
                    }
                }
                _ => o.formats.contains(format),
            };
            if !offered {
                return mismatch(format!("m= line {stream}: format {format} was not offered"));
            }
        }
    }
    Ok(())
}

/// A codec we can add to an offer: the encoding name, clock rate, channels and fmtp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodecOffer<'a> {
    pub name: &'a str,
    pub clock_rate: u32,
    pub channels: Option<u8>,
    /// The static payload type, if the codec has one (RFC 3551 table 4).
    pub static_payload_type: Option<u8>,
    pub fmtp: Option<&'a str>,
}

/// Appends `extra` codecs to the active audio stream of `sdp` (after the offerer's own, which
/// keep their preference), skipping those already offered. Static payload types are used where
/// free; dynamic ones take the lowest free number in 96–127 (RFC 3551 §3). This is how a B2BUA
/// offers the callee what it can transcode to when the caller's codecs are not enough.
pub fn add_codecs(sdp: &mut SessionDescription, extra: &[CodecOffer<'_>]) {
    let Some(index) = sdp.active_audio_index() else {
        return;
    };
    let m = &mut sdp.media[index];
    for codec in extra {
        let offered = m
            .codecs()
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(codec.name) && c.clock_rate == codec.clock_rate);
        if offered {
            continue;
        }
        let taken = |pt: u8, m: &MediaDescription| m.formats.iter().any(|f| f == &pt.to_string());
        let pt = match codec.static_payload_type {
            Some(pt) if !taken(pt, m) => pt,
            _ => match (96u8..=127).find(|pt| !taken(*pt, m)) {
                Some(pt) => pt,
                None => return,
            },
        };
        m.formats.push(pt.to_string());
        let mut map = format!("{pt} {}/{}", codec.name, codec.clock_rate);
        if let Some(ch) = codec.channels {
            let _ = write!(map, "/{ch}");
        }
        // Insert our rtpmap before the stream's direction/ptime lines, after its own rtpmaps.
        let at = m
            .attributes
            .iter()
            .rposition(|a| {
                a.name.eq_ignore_ascii_case("rtpmap") || a.name.eq_ignore_ascii_case("fmtp")
            })
            .map_or(0, |i| i + 1);
        m.attributes.insert(at, Attribute::new("rtpmap", map));
        if let Some(fmtp) = codec.fmtp {
            m.attributes
                .insert(at + 1, Attribute::new("fmtp", format!("{pt} {fmtp}")));
        }
    }
}

impl SessionDescription {
    /// The codec the answerer chose: the first voice codec of the active audio stream.
    pub fn chosen_codec(&self) -> Option<Codec> {
        self.active_audio()?
            .codecs()
            .into_iter()
            .find(Codec::is_voice)
    }

    /// The RFC 4733 telephone-event payload type at `clock_rate` on the active audio stream.
    pub fn telephone_event(&self, clock_rate: u32) -> Option<u8> {
        self.active_audio()?
            .codecs()
            .into_iter()
            .find(|c| c.name.eq_ignore_ascii_case("telephone-event") && c.clock_rate == clock_rate)
            .map(|c| c.payload_type)
    }

    /// Whether the active audio stream offers this encoding (name and clock rate).
    pub fn offers(&self, codec: &Codec) -> bool {
        self.active_audio()
            .is_some_and(|m| m.codecs().iter().any(|c| c.same_encoding(codec)))
    }
}

#[cfg(test)]
mod add_codecs_tests {
    use super::*;

    #[test]
    fn appends_what_is_missing_with_free_payload_types() {
        let mut sdp = SessionDescription::parse(
            b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 96 101\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\n\
a=rtpmap:101 telephone-event/48000\r\na=sendrecv\r\n",
        )
        .unwrap();
        add_codecs(
            &mut sdp,
            &[
                CodecOffer {
                    name: "opus",
                    clock_rate: 48000,
                    channels: Some(2),
                    static_payload_type: None,
                    fmtp: None,
                },
                CodecOffer {
                    name: "PCMA",
                    clock_rate: 8000,
                    channels: None,
                    static_payload_type: Some(8),
                    fmtp: None,
                },
                CodecOffer {
                    name: "telephone-event",
                    clock_rate: 8000,
                    channels: None,
                    static_payload_type: None,
                    fmtp: Some("0-16"),
                },
            ],
        );
        let audio = sdp.active_audio().unwrap();
        assert_eq!(audio.formats, ["96", "101", "8", "97"]);
        let names: Vec<_> = audio
            .codecs()
            .into_iter()
            .map(|c| (c.payload_type, c.name, c.clock_rate))
            .collect();
        assert_eq!(names[2], (8, "PCMA".to_owned(), 8000));
        assert_eq!(names[3], (97, "telephone-event".to_owned(), 8000));
        assert_eq!(audio.codec("97").unwrap().fmtp.as_deref(), Some("0-16"));
        // The direction attribute stays last.
        assert_eq!(audio.attributes.last().unwrap().name, "sendrecv");
        assert_eq!(sdp.chosen_codec().unwrap().name, "opus");
        assert_eq!(sdp.telephone_event(48000), Some(101));
        assert_eq!(sdp.telephone_event(8000), Some(97));
        let reparsed = SessionDescription::parse(&sdp.to_bytes()).unwrap();
        assert_eq!(reparsed, sdp);
    }
}
