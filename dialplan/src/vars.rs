//! Channel variables and the `${var}` / `$1` template expansion FreeSWITCH applies to
//! action data.

use std::collections::BTreeMap;

/// A channel's variables, by name. Caller-profile fields (`destination_number`,
/// `caller_id_number`, `context`, …) live here too: conditions read both the same way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Variables {
    values: BTreeMap<String, String>,
}

impl Variables {
    pub fn new() -> Variables {
        Variables::default()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.values.insert(name.into(), value.into());
    }

    pub fn unset(&mut self, name: &str) -> Option<String> {
        self.values.remove(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Variables {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Variables {
        Variables {
            values: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

/// Expands `template` in one pass: `${name}` becomes the variable (empty when unset),
/// `${name:-fallback}` the fallback when the variable is unset or empty, and `$0`..`$9` the
/// regex captures of the condition that produced the action. With no captures (a time
/// condition, or an expression without groups) `$N` stays literal, as in FreeSWITCH, which
/// substitutes only when the expression holds a group. One pass means text a caller
/// controls (a capture, a variable's value) is never expanded again.
pub fn expand(template: &str, vars: &Variables, captures: &[Option<String>]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(body) = after.strip_prefix('{') {
            if let Some(close) = body.find('}') {
                let inner = &body[..close];
                let (name, fallback) = match inner.split_once(":-") {
                    Some((name, fallback)) => (name, Some(fallback)),
                    None => (inner, None),
                };
                match (vars.get(name), fallback) {
                    (Some(""), Some(fallback)) => out.push_str(fallback),
                    (Some(value), _) => out.push_str(value),
                    (None, Some(fallback)) => out.push_str(fallback),
                    (None, None) => {}
                }
                rest = &body[close + 1..];
                continue;
            }
            // An unterminated `${` is kept as written.
            out.push_str(&rest[dollar..]);
            return out;
        }
        match after.as_bytes().first() {
            Some(digit @ b'0'..=b'9') if !captures.is_empty() => {
                let index = usize::from(digit - b'0');
                if let Some(Some(text)) = captures.get(index) {
                    out.push_str(text);
                }
                rest = &after[1..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// One `${name}` or `${name:-fallback}` of a template, as [`expand`] reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VariableReference<'t> {
    pub name: &'t str,
    /// The template says what to use when the variable is unset (`${name:-fallback}`).
    pub has_fallback: bool,
}

/// The variables `template` refers to, in order, parsed exactly as [`expand`] does.
pub fn references(template: &str) -> Vec<VariableReference<'_>> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("${") {
        let body = &rest[open + 2..];
        let Some(close) = body.find('}') else { break };
        let inner = &body[..close];
        let (name, has_fallback) = match inner.split_once(":-") {
            Some((name, _)) => (name, true),
            None => (inner, false),
        };
        out.push(VariableReference { name, has_fallback });
        rest = &body[close + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Variables {
        [("a", "one"), ("empty", "")].into_iter().collect()
    }

    fn caps() -> Vec<Option<String>> {
        vec![Some("1001".into()), Some("01".into()), None]
    }

    #[test]
    fn variables_and_defaults() {
        let v = vars();
        assert_eq!(expand("x${a}y", &v, &[]), "xoney");
        assert_eq!(expand("${missing}|", &v, &[]), "|");
        assert_eq!(expand("${missing:-dflt}", &v, &[]), "dflt");
        assert_eq!(expand("${empty:-dflt}", &v, &[]), "dflt");
        assert_eq!(expand("${a:-dflt}", &v, &[]), "one");
        assert_eq!(
            expand("cost $5 ${unterminated", &v, &[]),
            "cost $5 ${unterminated"
        );
        assert_eq!(expand("trailing $", &v, &[]), "trailing $");
    }

    #[test]
    fn captures_substitute_only_when_present() {
        let v = vars();
        assert_eq!(expand("user/$1@$0", &v, &caps()), "user/01@1001");
        assert_eq!(expand("[$2][$7]", &v, &caps()), "[][]");
        assert_eq!(expand("user/$1", &v, &[]), "user/$1");
    }

    #[test]
    fn expansion_is_single_pass() {
        let v: Variables = [("evil", "${a}")].into_iter().collect();
        assert_eq!(expand("${evil}", &v, &[]), "${a}");
        let caps = vec![Some("${a}".to_owned()), Some("${a}".to_owned())];
        assert_eq!(expand("$1", &v, &caps), "${a}");
    }

    #[test]
    fn references_follow_expand() {
        let refs = references("user/$1@${domain:-x} ${uuid}${open");
        assert_eq!(
            refs,
            [
                VariableReference {
                    name: "domain",
                    has_fallback: true
                },
                VariableReference {
                    name: "uuid",
                    has_fallback: false
                },
            ]
        );
        assert!(references("no variables $1").is_empty());
    }

    #[test]
    fn set_get_unset() {
        let mut v = Variables::new();
        v.set("k", "v");
        assert_eq!(v.get("k"), Some("v"));
        assert_eq!(v.iter().collect::<Vec<_>>(), vec![("k", "v")]);
        assert_eq!(v.unset("k"), Some("v".to_owned()));
        assert_eq!(v.get("k"), None);
    }
}
