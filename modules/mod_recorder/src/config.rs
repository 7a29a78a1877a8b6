//! The `[module.config]` table of `mod_recorder` in conf/modules.toml, as the host hands it
//! over (`module.config`, JSON).
//!
//! ```toml
//! [[module]]
//! name = "mod_recorder"
//! [module.config]
//! mode = "on-demand"          # "off" | "all" | "on-demand" (default)
//! layout = "stereo"           # "stereo" (caller left, callee right, default) | "mono"
//! queue_variable = "queue"    # the channel variable naming a call's queue (default "queue")
//! queues = ["sales"]          # calls in these queues are recorded even in on-demand mode
//! exclude_callers = ["1000"]  # callers the policy never records on its own
//! ```

use serde::Deserialize;

use crate::RecorderError;

/// When the policy records a call by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Nothing is recorded through this module; `record_session` is refused.
    Off,
    /// Every answered, bridged call, plus `record_session`.
    All,
    /// Only calls of the configured queues, plus `record_session`.
    OnDemand,
}

impl Mode {
    /// The spelling in conf/modules.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::All => "all",
            Mode::OnDemand => "on-demand",
        }
    }
}

/// How the two directions of a call go into the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// Caller on the left channel, callee on the right.
    Stereo,
    /// Both directions mixed into one channel.
    Mono,
}

impl Layout {
    /// The spelling in conf/modules.toml and in `record_session`'s data.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Stereo => "stereo",
            Layout::Mono => "mono",
        }
    }

    /// `record_session`'s data: `mono` or `stereo` (any case), or nothing for `default`.
    pub fn parse_or(data: &str, default: Layout) -> Result<Layout, RecorderError> {
        let word = data.trim();
        if word.is_empty() {
            Ok(default)
        } else if word.eq_ignore_ascii_case("stereo") {
            Ok(Layout::Stereo)
        } else if word.eq_ignore_ascii_case("mono") {
            Ok(Layout::Mono)
        } else {
            Err(RecorderError::Layout(word.to_owned()))
        }
    }

    /// The core console's verb that starts a recording in this layout
    /// (`record start|mono UUID`).
    pub(crate) fn console_verb(self) -> &'static str {
        match self {
            Layout::Stereo => "start",
            Layout::Mono => "mono",
        }
    }
}

/// The recorder's configuration, checked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecorderConfig {
    pub mode: Mode,
    pub layout: Layout,
    pub queue_variable: String,
    pub queues: Vec<String>,
    pub exclude_callers: Vec<String>,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            mode: Mode::OnDemand,
            layout: Layout::Stereo,
            queue_variable: "queue".to_owned(),
            queues: Vec::new(),
            exclude_callers: Vec::new(),
        }
    }
}

impl RecorderConfig {
    /// Parses and checks the `module.config` body. `{}` (no table in modules.toml) gives the
    /// defaults; an unknown key or a bad value is refused with a message naming it.
    pub fn from_json(body: &[u8]) -> Result<RecorderConfig, RecorderError> {
        let bad = |e: serde_json::Error| RecorderError::Config(e.to_string());
        let value: serde_json::Value = serde_json::from_slice(body).map_err(bad)?;
        if !value.is_object() {
            return Err(RecorderError::Config(format!(
                "expected a table, got {value}"
            )));
        }
        let config: RecorderConfig = serde_json::from_value(value).map_err(bad)?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), RecorderError> {
        if !is_word(&self.queue_variable) {
            return Err(RecorderError::Config(format!(
                "queue_variable {:?} is not a variable name (one word, no spaces)",
                self.queue_variable
            )));
        }
        for (list, items) in [
            ("queues", &self.queues),
            ("exclude_callers", &self.exclude_callers),
        ] {
            if let Some(bad) = items.iter().find(|item| !is_word(item)) {
                return Err(RecorderError::Config(format!(
                    "{list}: {bad:?} is empty or has spaces"
                )));
            }
        }
        Ok(())
    }

    /// Whether the policy records calls from `caller` on its own.
    pub fn excludes(&self, caller: &str) -> bool {
        self.exclude_callers.iter().any(|c| c == caller)
    }

    /// Whether calls of `queue` are recorded in on-demand mode.
    pub fn records_queue(&self, queue: &str) -> bool {
        self.queues.iter().any(|q| q == queue)
    }
}

/// One non-empty token without whitespace or control characters.
pub(crate) fn is_word(text: &str) -> bool {
    !text.is_empty() && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(json: &str) -> String {
        match RecorderConfig::from_json(json.as_bytes()) {
            Err(RecorderError::Config(message)) => message,
            other => panic!("{json} was not refused: {other:?}"),
        }
    }

    #[test]
    fn an_empty_table_gives_the_defaults() {
        let config = RecorderConfig::from_json(b"{}").unwrap();
        assert_eq!(config, RecorderConfig::default());
        assert_eq!(config.mode, Mode::OnDemand);
        assert_eq!(config.layout, Layout::Stereo);
        assert_eq!(config.queue_variable, "queue");
    }

    #[test]
    fn every_field_is_read() {
        let config = RecorderConfig::from_json(
            br#"{"mode":"all","layout":"mono","queue_variable":"acd_queue",
                 "queues":["sales","support"],"exclude_callers":["1000"]}"#,
        )
        .unwrap();
        assert_eq!(config.mode, Mode::All);
        assert_eq!(config.layout, Layout::Mono);
        assert_eq!(config.queue_variable, "acd_queue");
        assert!(config.records_queue("support"));
        assert!(!config.records_queue("billing"));
        assert!(config.excludes("1000"));
        assert!(!config.excludes("1001"));
        for (text, mode) in [("off", Mode::Off), ("on-demand", Mode::OnDemand)] {
            let json = format!(r#"{{"mode":"{text}"}}"#);
            let config = RecorderConfig::from_json(json.as_bytes()).unwrap();
            assert_eq!(config.mode, mode);
            assert_eq!(mode.as_str(), text);
        }
    }

    #[test]
    fn bad_values_are_refused_naming_what_is_wrong() {
        let message = refused(r#"{"mode":"always"}"#);
        assert!(
            message.contains("always") && message.contains("on-demand"),
            "{message}"
        );
        let message = refused(r#"{"layout":"quad"}"#);
        assert!(
            message.contains("quad") && message.contains("stereo"),
            "{message}"
        );
        let message = refused(r#"{"mdoe":"all"}"#);
        assert!(message.contains("mdoe"), "{message}");
        let message = refused(r#"{"queues":"sales"}"#);
        assert!(message.contains("sequence"), "{message}");
        let message = refused(r#"{"queues":["sales",""]}"#);
        assert!(
            message.contains("queues") && message.contains("empty"),
            "{message}"
        );
        let message = refused(r#"{"exclude_callers":["10 00"]}"#);
        assert!(message.contains("exclude_callers"), "{message}");
        let message = refused(r#"{"queue_variable":""}"#);
        assert!(message.contains("queue_variable"), "{message}");
        let message = refused("[1]");
        assert!(message.contains("expected a table"), "{message}");
        let message = refused("{");
        assert!(message.contains("EOF"), "{message}");
        // The error shown by the loader names the module.
        let error = RecorderConfig::from_json(br#"{"mode":1}"#).unwrap_err();
        assert!(
            error.to_string().starts_with("mod_recorder config: "),
            "{error}"
        );
    }

    #[test]
    fn record_session_data_names_a_layout() {
        assert_eq!(Layout::parse_or("", Layout::Mono).unwrap(), Layout::Mono);
        assert_eq!(
            Layout::parse_or("  ", Layout::Stereo).unwrap(),
            Layout::Stereo
        );
        assert_eq!(
            Layout::parse_or("MONO", Layout::Stereo).unwrap(),
            Layout::Mono
        );
        assert_eq!(
            Layout::parse_or(" stereo ", Layout::Mono).unwrap(),
            Layout::Stereo
        );
        let error = Layout::parse_or("surround", Layout::Stereo).unwrap_err();
        assert!(matches!(error, RecorderError::Layout(ref w) if w == "surround"));
        assert!(error.to_string().contains("mono or stereo"), "{error}");
    }
}
