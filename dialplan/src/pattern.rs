//! Asterisk extension patterns (`_1XXX`, `_9NXXXXXX.`) for the TOML dialplan.
//!
//! Syntax, from the Asterisk documentation ("Configuration / Dialplan / Pattern Matching",
//! docs.asterisk.org) and `main/pbx.c` (`_extension_match_core`, `ext_cmp_pattern_pos`):
//!
//! | element  | matches                                                        |
//! |----------|----------------------------------------------------------------|
//! | `X` `x`  | one digit 0-9                                                  |
//! | `Z` `z`  | one digit 1-9                                                  |
//! | `N` `n`  | one digit 2-9                                                  |
//! | `[15-7]` | one character of the set: single characters and `a-b` ranges   |
//! | `.`      | one or more characters of anything (last element only)         |
//! | `!`      | zero or more characters of anything (last element only)        |
//! | `0`-`9` `*` `#` `+` | itself                                              |
//! | `-`      | nothing: Asterisk ignores it outside sets as "eye candy" (`_1-800-NXX`) |
//!
//! A pattern starts with `_`; anything else is an exact extension (`100`, `*98`, `s`) and
//! matches only itself. Matching is anchored: the whole number must match.
//!
//! Where we are stricter than Asterisk, so that a typo is reported instead of silently
//! matching nothing: an unclosed or empty set, a reversed range (`[5-2]`), a `-` in a set
//! that does not form a range, `.`/`!` before the end (Asterisk ignores the rest of the
//! pattern there), and any character outside the table above.
//!
//! [`compile`] gives a [`regex::Regex`] without capture groups (so callers may wrap it in
//! their own groups); [`ExtensionPattern`] keeps the parsed elements for
//! [`specificity_order`], Asterisk's sort order among patterns that match the same number.

use std::cmp::Ordering;

use regex::Regex;

/// Why a pattern was refused. `offset` is the byte offset in the pattern as written
/// (the leading `_` is byte 0).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    #[error("empty extension (hint: write a number such as 100, or a pattern such as _1XXX)")]
    Empty,
    #[error("byte {offset}: '[' is never closed (hint: end the set with ']', e.g. _[2-5]XX)")]
    UnclosedSet { offset: usize },
    #[error("byte {offset}: empty set '[]' matches nothing (hint: list digits, e.g. [15-7])")]
    EmptySet { offset: usize },
    #[error(
        "byte {offset}: range {first}-{last} is reversed (hint: write the lower end first, [{last}-{first}])"
    )]
    ReversedRange {
        offset: usize,
        first: char,
        last: char,
    },
    #[error(
        "byte {offset}: '-' inside a set must join two characters (hint: write a range such as [2-5])"
    )]
    DanglingDash { offset: usize },
    #[error(
        "byte {offset}: '{wildcard}' must be the last element (hint: '.' means one or more and '!' zero or more of anything, so nothing can follow)"
    )]
    WildcardNotLast { offset: usize, wildcard: char },
    #[error(
        "byte {offset}: '{character}' is not a pattern element (hint: use digits, * # +, X Z N, [set], . or !)"
    )]
    UnknownCharacter { offset: usize, character: char },
    #[error("byte {offset}: '_' alone is not a pattern (hint: follow it with elements, e.g. _X.)")]
    EmptyPattern { offset: usize },
}

impl PatternError {
    /// The byte offset the error points at, if it points anywhere.
    pub fn offset(&self) -> Option<usize> {
        match *self {
            PatternError::Empty => None,
            PatternError::UnclosedSet { offset }
            | PatternError::EmptySet { offset }
            | PatternError::ReversedRange { offset, .. }
            | PatternError::DanglingDash { offset }
            | PatternError::WildcardNotLast { offset, .. }
            | PatternError::UnknownCharacter { offset, .. }
            | PatternError::EmptyPattern { offset } => Some(offset),
        }
    }
}

/// One position of a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Element {
    /// One character out of a set; bit `127 - c` stands for ASCII `c`, so a set holding lower
    /// characters is the larger number (the order `ext_cmp_pattern` gets from `memcmp`).
    Set(u128),
    /// `.`: one or more of anything.
    OneOrMore,
    /// `!`: zero or more of anything.
    ZeroOrMore,
}

fn bit(c: u8) -> u128 {
    1u128 << (127 - u32::from(c))
}

fn range_bits(first: u8, last: u8) -> u128 {
    (first..=last).fold(0, |acc, c| acc | bit(c))
}

impl Element {
    /// Asterisk's score for one position (`ext_cmp_pattern_pos`): the number of characters
    /// the position accepts, then its lowest character; `.` sorts after any set, `!` after
    /// `.`, and the end of the pattern after everything.
    fn score(&self) -> u32 {
        match *self {
            Element::Set(bits) => {
                let lowest = bits.leading_zeros(); // = ASCII code of the lowest member
                (bits.count_ones() << 8) | lowest
            }
            Element::OneOrMore => 0x18000,
            Element::ZeroOrMore => 0x28000,
        }
    }

    fn bits(&self) -> u128 {
        match *self {
            Element::Set(bits) => bits,
            _ => 0,
        }
    }
}

/// End of pattern in [`Element::score`]'s scale.
const END_SCORE: u32 = 0x30000;

/// A parsed extension: an exact number or an Asterisk pattern.
#[derive(Clone, Debug)]
pub struct ExtensionPattern {
    source: String,
    /// `None` for an exact extension.
    elements: Option<Vec<Element>>,
    regex: Regex,
}

impl ExtensionPattern {
    /// Parses `source`: a pattern when it starts with `_`, otherwise an exact extension.
    pub fn parse(source: &str) -> Result<Self, PatternError> {
        if source.is_empty() {
            return Err(PatternError::Empty);
        }
        let (elements, regex_source) = match source.strip_prefix('_') {
            Some(body) => {
                let elements = parse_elements(body)?;
                let regex_source = regex_source(&elements);
                (Some(elements), regex_source)
            }
            None => (None, format!(r"\A{}\z", regex::escape(source))),
        };
        // Every element translates to a fixed, valid regex fragment.
        let regex = Regex::new(&regex_source).expect("generated regex is valid");
        Ok(ExtensionPattern {
            source: source.to_owned(),
            elements,
            regex,
        })
    }

    /// The extension as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True for a `_` pattern, false for an exact extension.
    pub fn is_pattern(&self) -> bool {
        self.elements.is_some()
    }

    /// The anchored regex equivalent to this extension (no capture groups).
    pub fn regex(&self) -> &Regex {
        &self.regex
    }

    /// Whether the dialled `number` matches, whole.
    pub fn matches(&self, number: &str) -> bool {
        self.regex.is_match(number)
    }
}

/// Compiles an extension (pattern or exact) into an anchored regex without capture groups.
pub fn compile(pattern: &str) -> Result<Regex, PatternError> {
    ExtensionPattern::parse(pattern).map(|p| p.regex)
}

/// Asterisk's order among extensions that could match the same number: the first one in this
/// order wins. Follows `ext_cmp` in Asterisk `main/pbx.c`, which the documentation page
/// "Pattern Matching" summarises as "the more specific pattern wins":
///
/// 1. exact extensions before any pattern (between exact ones: byte order);
/// 2. patterns are compared position by position; at the first position that differs, the
///    one accepting fewer characters comes first (`1` < `N` (8) < `Z` (9) < `X` (10)), then
///    the one whose set starts with the lower character, then the set holding lower
///    characters; `.` comes after any set and `!` after `.`;
/// 3. a pattern that ends comes after one that goes on (so `_X.` < `_X!`, and `_XX` < `_X.`
///    because at the second position `X` < `.`).
pub fn specificity_order(a: &ExtensionPattern, b: &ExtensionPattern) -> Ordering {
    match (&a.elements, &b.elements) {
        (None, None) => a.source.cmp(&b.source),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(left), Some(right)) => {
            let mut left = left.iter();
            let mut right = right.iter();
            loop {
                let (l, r) = (left.next(), right.next());
                let score = |e: Option<&Element>| e.map_or(END_SCORE, Element::score);
                let order = score(l).cmp(&score(r)).then_with(|| {
                    // Same size and lowest member: the set with lower characters first.
                    let bits = |e: Option<&Element>| e.map_or(0, Element::bits);
                    bits(r).cmp(&bits(l))
                });
                if order != Ordering::Equal || (l.is_none() && r.is_none()) {
                    return order;
                }
            }
        }
    }
}

fn parse_elements(body: &str) -> Result<Vec<Element>, PatternError> {
    let bytes = body.as_bytes();
    let mut elements = Vec::with_capacity(bytes.len());
    let mut i = 0;
    // Offsets in errors count the leading '_'.
    let at = |i: usize| i + 1;
    while i < bytes.len() {
        let c = bytes[i];
        if let Some(last) = elements.last()
            && matches!(last, Element::OneOrMore | Element::ZeroOrMore)
        {
            let wildcard = if *last == Element::OneOrMore {
                '.'
            } else {
                '!'
            };
            // Point at the wildcard itself: that is what the engineer must move.
            let offset = body[..i].rfind(wildcard).map_or(at(i), at);
            return Err(PatternError::WildcardNotLast { offset, wildcard });
        }
        match c {
            b'X' | b'x' => elements.push(Element::Set(range_bits(b'0', b'9'))),
            b'Z' | b'z' => elements.push(Element::Set(range_bits(b'1', b'9'))),
            b'N' | b'n' => elements.push(Element::Set(range_bits(b'2', b'9'))),
            b'.' => elements.push(Element::OneOrMore),
            b'!' => elements.push(Element::ZeroOrMore),
            b'-' => {} // pbx.c: "Ignore '-' chars as eye candy fluff."
            b'0'..=b'9' | b'*' | b'#' | b'+' => elements.push(Element::Set(bit(c))),
            b'[' => {
                let close = bytes[i + 1..]
                    .iter()
                    .position(|&b| b == b']')
                    .map(|p| p + i + 1)
                    .ok_or(PatternError::UnclosedSet { offset: at(i) })?;
                let bits = parse_set(&body[i + 1..close], at(i + 1))?;
                if bits == 0 {
                    return Err(PatternError::EmptySet { offset: at(i) });
                }
                elements.push(Element::Set(bits));
                i = close;
            }
            _ => {
                let character = body[i..].chars().next().unwrap_or('?');
                return Err(PatternError::UnknownCharacter {
                    offset: at(i),
                    character,
                });
            }
        }
        i += 1;
    }
    if elements.is_empty() {
        return Err(PatternError::EmptyPattern { offset: 0 });
    }
    Ok(elements)
}

/// The inside of `[...]`; `base` is the offset of its first byte.
fn parse_set(set: &str, base: usize) -> Result<u128, PatternError> {
    let inner = set.as_bytes();
    let allowed = |c: u8| c.is_ascii_digit() || matches!(c, b'*' | b'#' | b'+');
    // Every byte before `j` was ASCII, so `j` is a character boundary.
    let unknown = |j: usize| PatternError::UnknownCharacter {
        offset: base + j,
        character: set[j..].chars().next().unwrap_or('?'),
    };
    let mut bits = 0;
    let mut j = 0;
    while j < inner.len() {
        let first = inner[j];
        if first == b'-' {
            return Err(PatternError::DanglingDash { offset: base + j });
        }
        if !allowed(first) {
            return Err(unknown(j));
        }
        // pbx.c: "a-b" is a range when a character follows the '-' inside the set.
        if j + 1 < inner.len() && inner[j + 1] == b'-' {
            if j + 2 >= inner.len() {
                return Err(PatternError::DanglingDash {
                    offset: base + j + 1,
                });
            }
            let last = inner[j + 2];
            if !allowed(last) {
                return Err(if last == b'-' {
                    PatternError::DanglingDash {
                        offset: base + j + 2,
                    }
                } else {
                    unknown(j + 2)
                });
            }
            if last < first {
                return Err(PatternError::ReversedRange {
                    offset: base + j,
                    first: char::from(first),
                    last: char::from(last),
                });
            }
            bits |= range_bits(first, last);
            j += 3;
        } else {
            bits |= bit(first);
            j += 1;
        }
    }
    Ok(bits)
}

fn regex_source(elements: &[Element]) -> String {
    let mut out = String::from(r"\A");
    for element in elements {
        match *element {
            Element::OneOrMore => out.push_str("(?s:.+)"),
            Element::ZeroOrMore => out.push_str("(?s:.*)"),
            Element::Set(bits) if bits.count_ones() == 1 => {
                let c = char::from(bits.leading_zeros() as u8);
                out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
            }
            Element::Set(bits) => {
                out.push('[');
                for c in 0u8..128 {
                    if bits & bit(c) != 0 {
                        out.push_str(&regex::escape(char::from(c).encode_utf8(&mut [0; 4])));
                    }
                }
                out.push(']');
            }
        }
    }
    out.push_str(r"\z");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (pattern, numbers that match, numbers that do not)
    const TABLE: &[(&str, &[&str], &[&str])] = &[
        (
            "_1XXX",
            &["1000", "1999", "1234"],
            &["100", "10000", "2000", "1a00", "", "x1000"],
        ),
        (
            "_9NXXXXXX.",
            &["921255512", "9212555123456", "9912345678"],
            &["92125551", "911255512", "901255512", "8212555123"],
        ),
        (
            "_NXXNXXXXXX",
            &["2125551234", "9999999999", "2002000000"],
            &[
                "1125551234",
                "2121551234",
                "212555123",
                "21255512345",
                "0125551234",
            ],
        ),
        (
            "_[2-5]XX!",
            &["200", "599", "3001", "499123456"],
            &["199", "600", "20", "2", ""],
        ),
        ("_011.", &["0114420", "0111"], &["011", "012123", "1011123"]),
        ("_X.", &["12", "0123456789", "9*"], &["1", "", "*1"]),
        ("100", &["100"], &["1000", "10", "_100", "101"]),
        ("*98", &["*98"], &["98", "*981", "x98"]),
        ("_[15-7]", &["1", "5", "6", "7"], &["2", "4", "8", "15"]),
        ("_[*#]X", &["*1", "#9"], &["11", "**"]),
        ("_+XX!", &["+44", "+4420", "+1234"], &["44", "+4", "++44"]),
        ("_zZ", &["11", "99"], &["01", "10"]),
        (
            "_1-800-NXX",
            &["1800200", "1800999"],
            &["1-800-200", "1800100"],
        ),
        ("_X!", &["1", "12"], &[""]),
    ];

    #[test]
    fn match_table() {
        for (pattern, good, bad) in TABLE {
            let p = ExtensionPattern::parse(pattern).unwrap();
            let regex = compile(pattern).unwrap();
            for number in *good {
                assert!(p.matches(number), "{pattern} should match {number:?}");
                assert!(
                    regex.is_match(number),
                    "{pattern} regex should match {number:?}"
                );
            }
            for number in *bad {
                assert!(!p.matches(number), "{pattern} should not match {number:?}");
                assert!(
                    !regex.is_match(number),
                    "{pattern} regex should not match {number:?}"
                );
            }
        }
    }

    #[test]
    fn regex_source_is_plain_and_capture_free() {
        let p = ExtensionPattern::parse("_[2-5]XX!").unwrap();
        assert_eq!(
            p.regex().as_str(),
            r"\A[2345][0123456789][0123456789](?s:.*)\z"
        );
        assert_eq!(p.regex().captures_len(), 1); // only the implicit whole-match group
        let p = ExtensionPattern::parse("_+*#.").unwrap();
        assert_eq!(p.regex().as_str(), r"\A\+\*\#(?s:.+)\z");
        assert_eq!(compile("*98").unwrap().as_str(), r"\A\*98\z");
    }

    #[test]
    fn kinds() {
        assert!(ExtensionPattern::parse("_1XXX").unwrap().is_pattern());
        let exact = ExtensionPattern::parse("s").unwrap();
        assert!(!exact.is_pattern());
        assert_eq!(exact.as_str(), "s");
        assert!(exact.matches("s"));
    }

    #[test]
    fn errors() {
        let cases: &[(&str, PatternError, &str)] = &[
            (
                "",
                PatternError::Empty,
                "empty extension (hint: write a number such as 100, or a pattern such as _1XXX)",
            ),
            (
                "_",
                PatternError::EmptyPattern { offset: 0 },
                "byte 0: '_' alone is not a pattern (hint: follow it with elements, e.g. _X.)",
            ),
            (
                "_1[2-5",
                PatternError::UnclosedSet { offset: 2 },
                "byte 2: '[' is never closed (hint: end the set with ']', e.g. _[2-5]XX)",
            ),
            (
                "_1[]X",
                PatternError::EmptySet { offset: 2 },
                "byte 2: empty set '[]' matches nothing (hint: list digits, e.g. [15-7])",
            ),
            (
                "_[5-2]X",
                PatternError::ReversedRange {
                    offset: 2,
                    first: '5',
                    last: '2',
                },
                "byte 2: range 5-2 is reversed (hint: write the lower end first, [2-5])",
            ),
            (
                "_[-5]",
                PatternError::DanglingDash { offset: 2 },
                "byte 2: '-' inside a set must join two characters (hint: write a range such as [2-5])",
            ),
            (
                "_[5-]",
                PatternError::DanglingDash { offset: 3 },
                "byte 3: '-' inside a set must join two characters (hint: write a range such as [2-5])",
            ),
            (
                "_[1-2-3]",
                PatternError::DanglingDash { offset: 5 },
                "byte 5: '-' inside a set must join two characters (hint: write a range such as [2-5])",
            ),
            (
                "_9.X",
                PatternError::WildcardNotLast {
                    offset: 2,
                    wildcard: '.',
                },
                "byte 2: '.' must be the last element (hint: '.' means one or more and '!' zero or more of anything, so nothing can follow)",
            ),
            (
                "_9!1",
                PatternError::WildcardNotLast {
                    offset: 2,
                    wildcard: '!',
                },
                "byte 2: '!' must be the last element (hint: '.' means one or more and '!' zero or more of anything, so nothing can follow)",
            ),
            (
                "_9..",
                PatternError::WildcardNotLast {
                    offset: 2,
                    wildcard: '.',
                },
                "byte 2: '.' must be the last element (hint: '.' means one or more and '!' zero or more of anything, so nothing can follow)",
            ),
            (
                "_1XYX",
                PatternError::UnknownCharacter {
                    offset: 3,
                    character: 'Y',
                },
                "byte 3: 'Y' is not a pattern element (hint: use digits, * # +, X Z N, [set], . or !)",
            ),
            (
                "_[1a]",
                PatternError::UnknownCharacter {
                    offset: 3,
                    character: 'a',
                },
                "byte 3: 'a' is not a pattern element (hint: use digits, * # +, X Z N, [set], . or !)",
            ),
            (
                "_1é",
                PatternError::UnknownCharacter {
                    offset: 2,
                    character: 'é',
                },
                "byte 2: 'é' is not a pattern element (hint: use digits, * # +, X Z N, [set], . or !)",
            ),
            (
                "_[1é]",
                PatternError::UnknownCharacter {
                    offset: 3,
                    character: 'é',
                },
                "byte 3: 'é' is not a pattern element (hint: use digits, * # +, X Z N, [set], . or !)",
            ),
            (
                "_[1-é]",
                PatternError::UnknownCharacter {
                    offset: 4,
                    character: 'é',
                },
                "byte 4: 'é' is not a pattern element (hint: use digits, * # +, X Z N, [set], . or !)",
            ),
        ];
        for (pattern, error, message) in cases {
            let got = ExtensionPattern::parse(pattern).unwrap_err();
            assert_eq!(&got, error, "{pattern}");
            assert_eq!(got.to_string(), *message, "{pattern}");
            assert_eq!(compile(pattern).unwrap_err(), got);
        }
        assert_eq!(PatternError::Empty.offset(), None);
        assert_eq!(PatternError::UnclosedSet { offset: 4 }.offset(), Some(4));
    }

    fn sorted(list: &[&str]) -> Vec<String> {
        let mut parsed: Vec<ExtensionPattern> = list
            .iter()
            .map(|s| ExtensionPattern::parse(s).unwrap())
            .collect();
        parsed.sort_by(specificity_order);
        parsed.iter().map(|p| p.as_str().to_owned()).collect()
    }

    #[test]
    fn asterisk_order() {
        // Each row is already in Asterisk's order; sorting any permutation must restore it.
        let rows: &[&[&str]] = &[
            // exact before patterns, even a pattern that matches only that number
            &["1234", "_1234", "_1XXX"],
            // fewer matching characters at the first differing position
            &["_1XXX", "_NXXX", "_ZXXX", "_XXXX"],
            &["_[2-5]XX!", "_NXX", "_XXX"],
            // '.' after any set, '!' after '.', an ending pattern after one that goes on
            &["_XX", "_X.", "_X!"],
            &["_011XXXX", "_011.", "_0XX."],
            // same size: the set starting lower, then the set holding lower characters
            &["_[13]", "_[14]", "_[24]"],
            &["_[#*]", "_[01]"],
            &["*98", "100", "101"],
        ];
        for row in rows {
            let want: Vec<String> = row.iter().map(|s| (*s).to_owned()).collect();
            let mut reversed: Vec<&str> = row.to_vec();
            reversed.reverse();
            assert_eq!(sorted(&reversed), want);
            let mut rotated: Vec<&str> = row.to_vec();
            rotated.rotate_left(1);
            assert_eq!(sorted(&rotated), want);
        }
        let a = ExtensionPattern::parse("_1-XX").unwrap();
        let b = ExtensionPattern::parse("_1XX").unwrap();
        assert_eq!(specificity_order(&a, &b), Ordering::Equal);
    }
}
