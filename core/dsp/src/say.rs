//! Numbers and queue announcements as sequences of prompt names.
//!
//! A prompt name is a path relative to a language set, without ".wav": `"numbers/20"` is
//! `sounds/<lang>/<rate>/numbers/20.wav`. The names and their recordings are made by
//! `sounds/make-prompts`; `sounds/README.md` holds the naming contract. Languages are `"en"`
//! and `"zh"` (Mandarin); numbers go from 0 to 9999, which covers queue positions and waits in
//! minutes. Anything else gives `None`, so the caller can fall back to a fixed prompt.
//!
//! English is said the US way, without "and": 105 is "one hundred five", 1100 is "one
//! thousand one hundred".
//!
//! Chinese follows the usual rules:
//! - 10–19 at the head are 十, 十一 … 十九 (not 一十); after 百 or 千 the tens digit 1 is said,
//!   so 110 is 一百一十 and 115 is 一百一十五;
//! - one 零 stands for any run of zeros followed by a non-zero digit: 101 一百零一, 1005 一千零五,
//!   1010 一千零一十; trailing zeros are not said: 1100 一千一百;
//! - 2 is 两 when it counts something on its own (两分钟) and as the leading digit before 百
//!   or 千 (两百, 两千二百), and 二 everywhere else (十二, 二十二, 一千二百, 两千零二). Both
//!   二百 and 两百 are heard; 两千 is the more common, so 两 is used for both.
//! - ordinals (第 N 位) always use 二: 第二, 第二百.
//!
//! The Chinese prompts are single syllables or whole tens recorded on their own, so the tone
//! sandhi of 一 before 百 and 千 (yì bǎi, not yī bǎi) is not reproduced; espeak-ng does not
//! apply it either.

/// The two ways Chinese says a number; English does not distinguish them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// A count of something: 2 is 两 alone and before a leading 百 or 千.
    Cardinal,
    /// A rank after 第: 2 is always 二.
    Ordinal,
}

/// The language sets under `sounds/` that this module can compose sentences for.
const LANGUAGES: [&str; 2] = ["en", "zh"];

/// The largest number the prompt sets can say: they have no word for 10 000 (万).
const MAX: u32 = 9999;

/// The prompt names that say `n` in language `lang` (`"en"` or `"zh"`), as a count.
///
/// `None` for another language or for `n` above 9999.
pub fn number(lang: &str, n: u32) -> Option<Vec<String>> {
    say_number(lang, n, Reading::Cardinal)
}

/// "You are caller number N": the caller's position in a queue, from 1 to 9999.
///
/// English: `you-are-caller-number`, N. Chinese: `you-are-caller-number` (您现在排在第), N as
/// an ordinal, `caller-number-suffix` (位), "you are now in position N". `None` for position 0,
/// above 9999, or another language.
pub fn caller_position(lang: &str, n: u32) -> Option<Vec<String>> {
    if n == 0 || !LANGUAGES.contains(&lang) {
        return None;
    }
    let mut names = vec![name("you-are-caller-number")];
    names.extend(say_number(lang, n, Reading::Ordinal)?);
    if lang == "zh" {
        names.push(name("caller-number-suffix"));
    }
    Some(names)
}

/// "Your estimated wait time is N minutes", for 0 to 9999 minutes.
///
/// 0 says "less than one minute" and 1 takes the singular `minute` in English. Chinese:
/// `estimated-wait` (预计等待), N, `minutes` (分钟), or `less-than-one-minute` (不到一分钟)
/// for 0. `None` above 9999 minutes or for another language.
pub fn estimated_wait(lang: &str, minutes: u32) -> Option<Vec<String>> {
    if !LANGUAGES.contains(&lang) {
        return None;
    }
    let mut names = vec![name("estimated-wait")];
    if minutes == 0 {
        names.push(name("less-than-one-minute"));
        return Some(names);
    }
    names.extend(say_number(lang, minutes, Reading::Cardinal)?);
    let unit = if lang == "en" && minutes == 1 {
        "minute"
    } else {
        "minutes"
    };
    names.push(name(unit));
    Some(names)
}

fn say_number(lang: &str, n: u32, reading: Reading) -> Option<Vec<String>> {
    if n > MAX {
        return None;
    }
    match lang {
        "en" => Some(english(n)),
        "zh" => Some(chinese(n, reading)),
        _ => None,
    }
}

fn name(s: &str) -> String {
    s.to_owned()
}

fn digit(d: u32) -> String {
    format!("digits/{d}")
}

/// `numbers/10` … `numbers/19` and `numbers/20`, `numbers/30` … `numbers/90`.
fn tens_word(n: u32) -> String {
    format!("numbers/{n}")
}

fn english(n: u32) -> Vec<String> {
    if n == 0 {
        return vec![digit(0)];
    }
    let mut names = Vec::new();
    let (thousands, hundreds, rest) = (n / 1000, n / 100 % 10, n % 100);
    if thousands > 0 {
        names.push(digit(thousands));
        names.push(name("numbers/thousand"));
    }
    if hundreds > 0 {
        names.push(digit(hundreds));
        names.push(name("numbers/hundred"));
    }
    match rest {
        0 => {}
        1..=9 => names.push(digit(rest)),
        10..=19 => names.push(tens_word(rest)),
        _ => {
            names.push(tens_word(rest / 10 * 10));
            if rest % 10 > 0 {
                names.push(digit(rest % 10));
            }
        }
    }
    names
}

fn chinese(n: u32, reading: Reading) -> Vec<String> {
    if n == 0 {
        return vec![digit(0)];
    }
    if n == 2 && reading == Reading::Cardinal {
        return vec![name("numbers/liang")];
    }
    let mut names = Vec::new();
    // Whether a higher place has been said, and whether a zero was skipped since then.
    let mut started = false;
    let mut zero_pending = false;
    for (d, unit) in [(n / 1000, "numbers/qian"), (n / 100 % 10, "numbers/bai")] {
        if d == 0 {
            zero_pending |= started;
            continue;
        }
        if zero_pending {
            names.push(name("numbers/ling"));
            zero_pending = false;
        }
        if d == 2 && !started && reading == Reading::Cardinal {
            names.push(name("numbers/liang"));
        } else {
            names.push(digit(d));
        }
        names.push(name(unit));
        started = true;
    }
    let (tens, units) = (n / 10 % 10, n % 10);
    match (tens, units) {
        (0, 0) => {}
        (0, u) => {
            // A zero in the tens place between a said place and the units: 一百零五.
            if started {
                names.push(name("numbers/ling"));
            }
            names.push(digit(u));
        }
        (t, u) => {
            if zero_pending {
                names.push(name("numbers/ling"));
            }
            if t == 1 {
                // 十五 alone, but 一百一十五 after a higher place.
                if started {
                    names.push(digit(1));
                }
                names.push(tens_word(10 + u));
            } else {
                names.push(tens_word(t * 10));
                if u > 0 {
                    names.push(digit(u));
                }
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    fn names(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn english_numbers() {
        let table = [
            (0, "digits/0"),
            (1, "digits/1"),
            (2, "digits/2"),
            (9, "digits/9"),
            (10, "numbers/10"),
            (11, "numbers/11"),
            (19, "numbers/19"),
            (20, "numbers/20"),
            (21, "numbers/20 digits/1"),
            (99, "numbers/90 digits/9"),
            (100, "digits/1 numbers/hundred"),
            (101, "digits/1 numbers/hundred digits/1"),
            (110, "digits/1 numbers/hundred numbers/10"),
            (115, "digits/1 numbers/hundred numbers/15"),
            (999, "digits/9 numbers/hundred numbers/90 digits/9"),
            (1000, "digits/1 numbers/thousand"),
            (1005, "digits/1 numbers/thousand digits/5"),
            (1010, "digits/1 numbers/thousand numbers/10"),
            (1100, "digits/1 numbers/thousand digits/1 numbers/hundred"),
            (2020, "digits/2 numbers/thousand numbers/20"),
            (
                9999,
                "digits/9 numbers/thousand digits/9 numbers/hundred numbers/90 digits/9",
            ),
        ];
        for (n, want) in table {
            assert_eq!(number("en", n), Some(names(want)), "en {n}");
        }
    }

    #[test]
    fn chinese_numbers() {
        let table = [
            (0, "digits/0"),                                       // 零
            (1, "digits/1"),                                       // 一
            (2, "numbers/liang"),                                  // 两
            (3, "digits/3"),                                       // 三
            (10, "numbers/10"),                                    // 十
            (11, "numbers/11"),                                    // 十一
            (12, "numbers/12"),                                    // 十二
            (20, "numbers/20"),                                    // 二十
            (22, "numbers/20 digits/2"),                           // 二十二
            (100, "digits/1 numbers/bai"),                         // 一百
            (101, "digits/1 numbers/bai numbers/ling digits/1"),   // 一百零一
            (102, "digits/1 numbers/bai numbers/ling digits/2"),   // 一百零二
            (110, "digits/1 numbers/bai digits/1 numbers/10"),     // 一百一十
            (115, "digits/1 numbers/bai digits/1 numbers/15"),     // 一百一十五
            (200, "numbers/liang numbers/bai"),                    // 两百
            (999, "digits/9 numbers/bai numbers/90 digits/9"),     // 九百九十九
            (1000, "digits/1 numbers/qian"),                       // 一千
            (1005, "digits/1 numbers/qian numbers/ling digits/5"), // 一千零五
            (
                1010,
                "digits/1 numbers/qian numbers/ling digits/1 numbers/10",
            ), // 一千零一十
            (1050, "digits/1 numbers/qian numbers/ling numbers/50"), // 一千零五十
            (1100, "digits/1 numbers/qian digits/1 numbers/bai"),  // 一千一百
            (1200, "digits/1 numbers/qian digits/2 numbers/bai"),  // 一千二百
            (2000, "numbers/liang numbers/qian"),                  // 两千
            (2002, "numbers/liang numbers/qian numbers/ling digits/2"), // 两千零二
            (2200, "numbers/liang numbers/qian digits/2 numbers/bai"), // 两千二百
            (
                3012,
                "digits/3 numbers/qian numbers/ling digits/1 numbers/12",
            ), // 三千零一十二
            (
                9999,
                "digits/9 numbers/qian digits/9 numbers/bai numbers/90 digits/9", // 九千九百九十九
            ),
        ];
        for (n, want) in table {
            assert_eq!(number("zh", n), Some(names(want)), "zh {n}");
        }
    }

    #[test]
    fn other_languages_and_out_of_range_are_none() {
        for lang in ["", "de", "EN", "zh-TW", "cmn"] {
            assert_eq!(number(lang, 5), None, "{lang:?}");
            assert_eq!(caller_position(lang, 5), None, "{lang:?}");
            assert_eq!(estimated_wait(lang, 0), None, "{lang:?}");
            assert_eq!(estimated_wait(lang, 5), None, "{lang:?}");
        }
        for lang in LANGUAGES {
            assert!(number(lang, MAX).is_some());
            assert_eq!(number(lang, MAX + 1), None);
            assert_eq!(number(lang, u32::MAX), None);
            assert_eq!(caller_position(lang, 0), None);
            assert_eq!(caller_position(lang, MAX + 1), None);
            assert_eq!(estimated_wait(lang, MAX + 1), None);
        }
    }

    #[test]
    fn caller_position_sentences() {
        let table = [
            ("en", 1, "you-are-caller-number digits/1"),
            ("en", 2, "you-are-caller-number digits/2"),
            ("en", 12, "you-are-caller-number numbers/12"),
            (
                "en",
                9999,
                "you-are-caller-number digits/9 numbers/thousand digits/9 numbers/hundred numbers/90 digits/9",
            ),
            // 您现在排在第一位
            (
                "zh",
                1,
                "you-are-caller-number digits/1 caller-number-suffix",
            ),
            // 第二位, not 第两位: ordinals keep 二.
            (
                "zh",
                2,
                "you-are-caller-number digits/2 caller-number-suffix",
            ),
            // 第二百位
            (
                "zh",
                200,
                "you-are-caller-number digits/2 numbers/bai caller-number-suffix",
            ),
            // 第二千零二位
            (
                "zh",
                2002,
                "you-are-caller-number digits/2 numbers/qian numbers/ling digits/2 caller-number-suffix",
            ),
            // 第十位
            (
                "zh",
                10,
                "you-are-caller-number numbers/10 caller-number-suffix",
            ),
        ];
        for (lang, n, want) in table {
            assert_eq!(caller_position(lang, n), Some(names(want)), "{lang} {n}");
        }
    }

    #[test]
    fn estimated_wait_sentences() {
        let table = [
            ("en", 0, "estimated-wait less-than-one-minute"),
            ("en", 1, "estimated-wait digits/1 minute"),
            ("en", 2, "estimated-wait digits/2 minutes"),
            ("en", 11, "estimated-wait numbers/11 minutes"),
            (
                "en",
                101,
                "estimated-wait digits/1 numbers/hundred digits/1 minutes",
            ),
            // 预计等待不到一分钟
            ("zh", 0, "estimated-wait less-than-one-minute"),
            // 预计等待一分钟: Chinese has no plural.
            ("zh", 1, "estimated-wait digits/1 minutes"),
            // 预计等待两分钟
            ("zh", 2, "estimated-wait numbers/liang minutes"),
            // 预计等待十二分钟
            ("zh", 12, "estimated-wait numbers/12 minutes"),
            // 预计等待两百分钟
            (
                "zh",
                200,
                "estimated-wait numbers/liang numbers/bai minutes",
            ),
        ];
        for (lang, n, want) in table {
            assert_eq!(estimated_wait(lang, n), Some(names(want)), "{lang} {n}");
        }
    }

    /// Every name the functions can return, over their whole range, is a recorded prompt in
    /// both rates of its language set.
    #[test]
    fn every_name_has_a_recording() {
        let sounds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sounds");
        for lang in LANGUAGES {
            let mut used = BTreeSet::new();
            for n in 0..=MAX {
                let said = [
                    number(lang, n),
                    caller_position(lang, n),
                    estimated_wait(lang, n),
                ];
                for names in said.into_iter().flatten() {
                    used.extend(names);
                }
            }
            // Sanity check of the sweep itself: the building blocks of each language appear.
            let expected: &[&str] = if lang == "en" {
                &["numbers/hundred", "numbers/thousand", "minute", "digits/0"]
            } else {
                &[
                    "numbers/bai",
                    "numbers/qian",
                    "numbers/liang",
                    "numbers/ling",
                ]
            };
            for e in expected {
                assert!(used.contains(*e), "{lang}: {e} never used");
            }
            for rate in ["8000", "16000"] {
                for name in &used {
                    let wav = sounds.join(lang).join(rate).join(format!("{name}.wav"));
                    assert!(wav.is_file(), "missing prompt {}", wav.display());
                }
            }
        }
    }
}
