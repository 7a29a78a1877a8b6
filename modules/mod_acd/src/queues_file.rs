//! `conf/queues.toml`: the queues and agents an operator edits, read into the routing core's
//! [`AcdConfig`] plus what only voice calls need (music, prompts, callback, the agent's phone).
//! Times are seconds in the file (as FreeSWITCH's callcenter.conf) and milliseconds inside.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::{
    AcdConfig, AcdError, AgentConfig, AgentId, OverflowTarget, QueueConfig, SkillRule, Strategy,
    Tier,
};

/// Everything `queues.toml` says: the routing configuration and the voice settings.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuesFile {
    pub acd: AcdConfig,
    /// Per queue name.
    pub voice: BTreeMap<String, VoiceSettings>,
    /// How each agent is rung: a bridge target (`user/1000`, `sip:2001@127.0.0.1:5090`).
    pub contacts: BTreeMap<AgentId, String>,
}

/// What a queue does to a waiting caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceSettings {
    /// Prompt language when the call has no `language` variable (`en`, `zh`).
    pub language: String,
    /// What the caller hears while waiting and while an agent rings.
    pub moh: String,
    /// A prompt played once on entry (`please-hold`); empty: none.
    pub greeting: String,
    /// Every this often, `comfort_prompt` is played; None: never.
    pub comfort_every_ms: Option<u64>,
    pub comfort_prompt: String,
    /// The key a waiting caller presses to leave and be called back; None: no callback.
    pub callback_digit: Option<char>,
    /// The bridge target that calls a customer back, `{number}` replaced by the caller's
    /// number (`user/{number}`, `sofia/gateway/pstn/{number}`).
    pub callback_dial: String,
}

impl Default for VoiceSettings {
    fn default() -> Self {
        Self {
            language: "en".into(),
            moh: "local_stream://moh".into(),
            greeting: String::new(),
            comfort_every_ms: None,
            comfort_prompt: "call-important".into(),
            callback_digit: None,
            callback_dial: "user/{number}".into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    queue: Vec<QueueEntry>,
    #[serde(default)]
    agent: Vec<AgentEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueEntry {
    name: String,
    #[serde(default)]
    strategy: Strategy,
    #[serde(default)]
    wrap_up: Option<u64>,
    #[serde(default)]
    offer_timeout: Option<u64>,
    #[serde(default)]
    ring_progressively: Option<u64>,
    #[serde(default)]
    max_wait: Option<u64>,
    #[serde(default)]
    max_length: Option<usize>,
    #[serde(default)]
    overflow: Option<OverflowTarget>,
    #[serde(default)]
    service_level: Option<u64>,
    #[serde(default)]
    short_abandon: Option<u64>,
    #[serde(default)]
    ageing: Option<u64>,
    #[serde(default)]
    skill_rules: Vec<RuleEntry>,
    #[serde(default)]
    announce_every: Option<u64>,
    #[serde(default)]
    default_handle_time: Option<u64>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    moh: Option<String>,
    #[serde(default)]
    greeting: Option<String>,
    #[serde(default)]
    comfort_every: Option<u64>,
    #[serde(default)]
    comfort_prompt: Option<String>,
    #[serde(default)]
    callback_digit: Option<String>,
    #[serde(default)]
    callback_dial: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    after: u64,
    max_level: u8,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentEntry {
    id: u32,
    #[serde(default)]
    contact: Option<String>,
    #[serde(default)]
    skills: BTreeMap<String, u8>,
    #[serde(default)]
    tiers: Vec<TierEntry>,
    #[serde(default)]
    penalty: u32,
    #[serde(default)]
    max_no_answer: Option<u32>,
    /// Seconds an agent rests after an unanswered offer (FreeSWITCH's no_answer_delay_time).
    #[serde(default)]
    no_answer_delay: Option<u64>,
    /// Simultaneous contacts per channel: `{ voice = 1, chat = 3 }`.
    #[serde(default)]
    capacity: BTreeMap<String, u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TierEntry {
    queue: String,
    #[serde(default = "one")]
    level: u32,
    #[serde(default = "one")]
    position: u32,
}

fn one() -> u32 {
    1
}

const SECOND: u64 = 1000;
/// An unregistered phone fails at once: without a rest it would be offered the same caller
/// again and again until max_no_answer.
const DEFAULT_NO_ANSWER_DELAY_S: u64 = 5;

impl QueuesFile {
    /// Reads and checks the file.
    pub fn load(path: &Path) -> Result<QueuesFile, AcdError> {
        let text = std::fs::read_to_string(path).map_err(|e| AcdError::QueuesFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        QueuesFile::parse(&path.display().to_string(), &text)
    }

    /// Parses and checks `text`; `path` names it in errors.
    pub fn parse(path: &str, text: &str) -> Result<QueuesFile, AcdError> {
        let file: File = toml::from_str(text).map_err(|e| AcdError::QueuesFile {
            path: path.to_owned(),
            reason: e.to_string().trim_end().to_owned(),
        })?;
        let invalid = |reason: String| AcdError::QueuesFile {
            path: path.to_owned(),
            reason,
        };
        let mut acd = AcdConfig::default();
        let mut voice = BTreeMap::new();
        for entry in file.queue {
            let (config, settings) = entry.into_config().map_err(&invalid)?;
            voice.insert(config.name.clone(), settings);
            acd.queues.push(config);
        }
        let mut contacts: BTreeMap<AgentId, String> = BTreeMap::new();
        for entry in file.agent {
            let id = AgentId(entry.id);
            for tier in &entry.tiers {
                if !acd.queues.iter().any(|q| q.name == tier.queue) {
                    return Err(invalid(format!(
                        "agent {}: tier names unknown queue {:?}",
                        entry.id, tier.queue
                    )));
                }
            }
            if contacts.contains_key(&id) {
                return Err(invalid(format!("agent {} defined twice", entry.id)));
            }
            let contact = entry
                .contact
                .clone()
                .unwrap_or_else(|| format!("user/{}", entry.id));
            if !is_bridge_target(&contact) {
                return Err(invalid(format!(
                    "agent {}: contact {contact:?} is not one bridge target (user/ID, \
                     sip:USER@IP:PORT, sofia/gateway/NAME/NUMBER)",
                    entry.id
                )));
            }
            // The switch reports who answered by this identity: two agents sharing it could
            // not be told apart.
            let callee = crate::voice::callee_of(&contact);
            if let Some((other, _)) = contacts
                .iter()
                .find(|(_, c)| crate::voice::callee_of(c.as_str()) == callee)
            {
                return Err(invalid(format!(
                    "agent {}: contact {contact:?} answers as {callee:?}, as agent {}'s does",
                    entry.id, other.0
                )));
            }
            contacts.insert(id, contact);
            acd.agents.push(entry.into_config().map_err(&invalid)?);
        }
        for queue in &acd.queues {
            if let Some(OverflowTarget::Queue(target)) = &queue.overflow
                && !acd.queues.iter().any(|q| &q.name == target)
            {
                return Err(invalid(format!(
                    "queue {}: overflow to unknown queue {target:?}",
                    queue.name
                )));
            }
        }
        acd.validate().map_err(|e| invalid(e.to_string()))?;
        Ok(QueuesFile {
            acd,
            voice,
            contacts,
        })
    }
}

impl QueueEntry {
    fn into_config(self) -> Result<(QueueConfig, VoiceSettings), String> {
        let defaults = QueueConfig::default();
        let ms = |secs: Option<u64>, default: u64| secs.map_or(default, |s| s * SECOND);
        let name = self.name;
        // The name goes into console lines and bridge variables (`{acd_queue=NAME}`).
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "queue name {name:?} must be one word of letters, digits, _ and -"
            ));
        }
        let config = QueueConfig {
            strategy: self.strategy,
            wrap_up_ms: ms(self.wrap_up, defaults.wrap_up_ms),
            offer_timeout_ms: ms(self.offer_timeout, defaults.offer_timeout_ms),
            ring_progressively_ms: ms(self.ring_progressively, defaults.ring_progressively_ms),
            max_wait_ms: self.max_wait.map(|s| s * SECOND),
            max_length: self.max_length,
            overflow: self.overflow,
            service_level_ms: ms(self.service_level, defaults.service_level_ms),
            short_abandon_ms: ms(self.short_abandon, defaults.short_abandon_ms),
            ageing_ms: self.ageing.map(|s| s * SECOND),
            skill_rules: self
                .skill_rules
                .into_iter()
                .map(|rule| SkillRule {
                    after_ms: rule.after * SECOND,
                    max_level: rule.max_level,
                })
                .collect(),
            announce_every_ms: self.announce_every.map(|s| s * SECOND),
            default_handle_ms: ms(self.default_handle_time, defaults.default_handle_ms),
            name: name.clone(),
        };
        if config.offer_timeout_ms < 2 * SECOND {
            return Err(format!("queue {name}: offer_timeout must be at least 2 s"));
        }
        let base = VoiceSettings::default();
        let language = self.language.unwrap_or(base.language);
        if !matches!(language.as_str(), "en" | "zh") {
            return Err(format!("queue {name}: language {language:?} (en or zh)"));
        }
        let callback_digit = match self.callback_digit.as_deref() {
            None | Some("") => None,
            Some(d) if d.len() == 1 && "0123456789*#".contains(d) => d.chars().next(),
            Some(d) => {
                return Err(format!(
                    "queue {name}: callback_digit {d:?} is not one of 0-9 * #"
                ));
            }
        };
        let callback_dial = self.callback_dial.unwrap_or(base.callback_dial);
        if callback_digit.is_some() && !callback_dial.contains("{number}") {
            return Err(format!(
                "queue {name}: callback_dial {callback_dial:?} has no {{number}}"
            ));
        }
        if !is_bridge_target(&callback_dial.replace("{number}", "1")) {
            return Err(format!(
                "queue {name}: callback_dial {callback_dial:?} is not one bridge target"
            ));
        }
        // Sounds reach the switch in dialplan actions and console lines: one word each.
        for (key, value) in [
            ("moh", &self.moh),
            ("greeting", &self.greeting),
            ("comfort_prompt", &self.comfort_prompt),
        ] {
            if let Some(value) = value
                && value.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(format!("queue {name}: {key} {value:?} must be one word"));
            }
        }
        let settings = VoiceSettings {
            language,
            moh: self.moh.unwrap_or(base.moh),
            greeting: self.greeting.unwrap_or_default(),
            comfort_every_ms: self.comfort_every.filter(|&s| s > 0).map(|s| s * SECOND),
            comfort_prompt: self.comfort_prompt.unwrap_or(base.comfort_prompt),
            callback_digit,
            callback_dial,
        };
        Ok((config, settings))
    }
}

/// One bridge target of the switch's grammar, without what could reshape a console line or
/// the bridge string around it (`,` `|` `{` `}` `&` `(` `)`, spaces).
fn is_bridge_target(target: &str) -> bool {
    let word = |text: &str, extra: &str| {
        !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    if let Some(user) = target.strip_prefix("user/") {
        return match user.split_once('@') {
            Some((id, domain)) => word(id, "") && word(domain, ".-"),
            None => word(user, ""),
        };
    }
    let sip = target.strip_prefix("sofia/internal/").unwrap_or(target);
    if let Some(uri) = sip.strip_prefix("sip:") {
        return match uri.split_once('@') {
            Some((user, host)) => word(user, "._~+-") && word(host, ".:[]"),
            None => false,
        };
    }
    let gateway = target
        .strip_prefix("sofia/gateway/")
        .or_else(|| target.strip_prefix("gateway/"));
    match gateway.and_then(|rest| rest.split_once('/')) {
        Some((name, number)) => word(name, "_.-") && word(number, "+*#"),
        None => false,
    }
}

impl AgentEntry {
    fn into_config(self) -> Result<AgentConfig, String> {
        let mut capacity = AgentConfig::default().capacity;
        for (channel, count) in &self.capacity {
            let index = crate::Channel::ALL
                .iter()
                .position(|c| {
                    serde_json::to_value(c)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        == Some(channel.clone())
                })
                .ok_or_else(|| {
                    format!(
                        "agent {}: unknown channel {channel:?} (voice, chat, email, wechat, sms)",
                        self.id
                    )
                })?;
            capacity[index] = *count;
        }
        Ok(AgentConfig {
            id: AgentId(self.id),
            capacity,
            skills: self.skills.into_iter().collect(),
            tiers: self
                .tiers
                .into_iter()
                .map(|t| Tier::new(&t.queue, t.level, t.position))
                .collect(),
            penalty: self.penalty,
            max_no_answer: self
                .max_no_answer
                .unwrap_or(AgentConfig::default().max_no_answer),
            no_answer_delay_ms: self.no_answer_delay.unwrap_or(DEFAULT_NO_ANSWER_DELAY_S) * SECOND,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[[queue]]
name = "sales"
strategy = "ring-all"
wrap_up = 10
offer_timeout = 15
max_wait = 300
overflow = { extension = "5100" }
announce_every = 30
comfort_every = 45
callback_digit = "*"
skill_rules = [{ after = 30, max_level = 50 }]

[[queue]]
name = "zh"
language = "zh"
overflow = { queue = "sales" }

[[agent]]
id = 1000
skills = { english = 80 }
tiers = [{ queue = "sales" }, { queue = "zh", level = 2, position = 3 }]

[[agent]]
id = 2001
contact = "sip:2001@127.0.0.1:5090"
max_no_answer = 0
capacity = { voice = 1, chat = 3 }
tiers = [{ queue = "zh" }]
"#;

    #[test]
    fn a_sample_file_reads_into_the_core_config_in_milliseconds() {
        let file = QueuesFile::parse("queues.toml", SAMPLE).unwrap();
        let sales = &file.acd.queues[0];
        assert_eq!(sales.strategy, Strategy::RingAll);
        assert_eq!(sales.wrap_up_ms, 10_000);
        assert_eq!(sales.offer_timeout_ms, 15_000);
        assert_eq!(sales.max_wait_ms, Some(300_000));
        assert_eq!(
            sales.overflow,
            Some(OverflowTarget::Extension("5100".into()))
        );
        assert_eq!(sales.announce_every_ms, Some(30_000));
        assert_eq!(
            sales.skill_rules,
            [SkillRule {
                after_ms: 30_000,
                max_level: 50
            }]
        );
        let zh = &file.acd.queues[1];
        assert_eq!(zh.strategy, Strategy::LongestIdleAgent);
        assert_eq!(zh.offer_timeout_ms, 20_000);
        assert_eq!(file.voice["zh"].language, "zh");
        assert_eq!(file.voice["sales"].callback_digit, Some('*'));
        assert_eq!(file.voice["sales"].comfort_every_ms, Some(45_000));
        assert_eq!(file.voice["zh"].callback_digit, None);
        assert_eq!(file.contacts[&AgentId(1000)], "user/1000");
        assert_eq!(file.contacts[&AgentId(2001)], "sip:2001@127.0.0.1:5090");
        let agent = &file.acd.agents[0];
        assert_eq!(agent.skills, [("english".to_owned(), 80)]);
        assert_eq!(agent.tiers[1], Tier::new("zh", 2, 3));
        assert_eq!(agent.max_no_answer, 3);
        assert_eq!(file.acd.agents[1].capacity, [1, 3, 0, 0, 0]);
        assert_eq!(file.acd.agents[1].max_no_answer, 0);
        assert_eq!(agent.no_answer_delay_ms, 5_000);
    }

    #[test]
    fn mistakes_are_refused_with_the_file_and_what_is_wrong() {
        let cases = [
            (
                "[[queue]]\nname = \"a\"\nstrategy = \"fastest\"\n",
                "fastest",
            ),
            ("[[queue]]\nname = \"a\"\nwrapup = 3\n", "wrapup"),
            (
                "[[queue]]\nname = \"a\"\nlanguage = \"fr\"\n",
                "language \"fr\"",
            ),
            (
                "[[queue]]\nname = \"a\"\noffer_timeout = 1\n",
                "at least 2 s",
            ),
            ("[[queue]]\nname = \"a b\"\n", "one word"),
            ("[[queue]]\nname = \"a,b\"\n", "one word"),
            (
                "[[agent]]\nid = 1\ncontact = \"sip:7@127.0.0.1:5\"\n[[agent]]\nid = 2\ncontact = \"sip:7@127.0.0.2:5\"\n",
                "as agent 1's does",
            ),
            (
                "[[queue]]\nname = \"a\"\ncallback_digit = \"x\"\n",
                "callback_digit",
            ),
            (
                "[[queue]]\nname = \"a\"\ncallback_digit = \"*\"\ncallback_dial = \"user/1\"\n",
                "{number}",
            ),
            (
                "[[queue]]\nname = \"a\"\noverflow = { queue = \"b\" }\n",
                "unknown queue \"b\"",
            ),
            (
                "[[agent]]\nid = 1\ntiers = [{ queue = \"nope\" }]\n",
                "unknown queue \"nope\"",
            ),
            (
                "[[agent]]\nid = 1\ncapacity = { fax = 1 }\n",
                "unknown channel",
            ),
            (
                "[[agent]]\nid = 1\ncapacity = { voice = 2 }\n",
                "voice capacity",
            ),
            (
                "[[agent]]\nid = 1\ncontact = \"user/1,user/2\"\n",
                "one bridge target",
            ),
            (
                "[[agent]]\nid = 1\ncontact = \"user/1|user/2\"\n",
                "one bridge target",
            ),
            (
                "[[agent]]\nid = 1\ncontact = \"sip:1@h}&park(\"\n",
                "one bridge target",
            ),
            (
                "[[agent]]\nid = 1\ncontact = \"pstn/1\"\n",
                "one bridge target",
            ),
            (
                "[[queue]]\nname = \"a\"\ncallback_digit = \"*\"\ncallback_dial = \"user/{number}|user/9\"\n",
                "not one bridge target",
            ),
            (
                "[[queue]]\nname = \"a\"\ncomfort_prompt = \"x y\"\n",
                "must be one word",
            ),
            ("[[agent]]\nid = 1\n[[agent]]\nid = 1\n", "defined twice"),
            (
                "[[queue]]\nname = \"a\"\n[[queue]]\nname = \"a\"\n",
                "defined twice",
            ),
        ];
        for (text, needle) in cases {
            let error = QueuesFile::parse("conf/queues.toml", text)
                .unwrap_err()
                .to_string();
            assert!(error.starts_with("conf/queues.toml: "), "{error}");
            assert!(error.contains(needle), "{text:?}: {error}");
        }
    }

    #[test]
    fn the_shipped_and_the_test_queues_files_load() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let shipped = QueuesFile::load(&root.join("conf/queues.toml")).unwrap();
        assert_eq!(shipped.voice.len(), 2);
        assert_eq!(shipped.contacts.len(), 4);
        assert_eq!(shipped.voice["support_zh"].language, "zh");
        let tests = QueuesFile::load(&root.join("tests/conf/acd/queues.toml")).unwrap();
        assert_eq!(tests.contacts.len(), 52);
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let error = QueuesFile::parse("q.toml", "[[queue]]\nname = \"a\"\nwrap_up = = 3\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 3"), "{error}");
    }
}
