//! A plan directory as the switch loads it: the XML and TOML forms side by side, the holiday
//! calendar and the time zone, bundled in one [`LoadedPlan`] the engine holds in an `Arc`
//! and swaps on `reload dialplan` (a call keeps the plan it started with).
//!
//! A directory may hold `*.xml` files, `*.toml` files, or both. Files are compiled in
//! file-name order whatever their form, so `00_globals.toml` before `10_default.xml` before
//! `20_default.toml`; a context written in several files gathers their extensions in that
//! order, and one extension name used twice in a context is a warning, across forms too.

use std::path::Path;
use std::sync::Arc;

use crate::ir::{
    Compiled, Diagnostic, Dialplan, HuntEnv, Location, Severity, compiled, read_plan_files,
    sort_diagnostics,
};
use crate::matcher::{Hunt, HuntError, hunt};
use crate::timespec::{CivilTime, Holidays};
use crate::vars::Variables;
use crate::zone::LocalZone;
use crate::{toml_plan, xml};

/// The file extensions a plan directory is read for.
pub const PLAN_EXTENSIONS: [&str; 2] = ["xml", "toml"];

/// Compiles every `*.xml` and `*.toml` file of `dir`, in file-name order, into one plan; the
/// plan with its warnings, or every diagnostic when any is an error.
pub fn load_plan_dir(dir: &Path) -> Result<Compiled, Vec<Diagnostic>> {
    let (plan, diagnostics) = build(dir);
    compiled(plan, diagnostics)
}

/// As [`load_plan_dir`], but keeps going past errors: the plan holds every element that
/// compiled and the diagnostics are all of them, in source order. For `dialplan check`;
/// never serve calls from this plan.
pub fn compile_plan_dir(dir: &Path) -> (Dialplan, Vec<Diagnostic>) {
    let (plan, mut diagnostics) = build(dir);
    sort_diagnostics(&mut diagnostics);
    (plan, diagnostics)
}

fn build(dir: &Path) -> (Dialplan, Vec<Diagnostic>) {
    let mut plan = Dialplan::default();
    let mut diagnostics = Vec::new();
    for (file, text) in read_plan_files(dir, &PLAN_EXTENSIONS, &mut diagnostics) {
        if file.ends_with(".toml") {
            toml_plan::add_document(&mut plan, &mut diagnostics, file, &text);
        } else {
            xml::add_document(&mut plan, &mut diagnostics, file, &text);
        }
    }
    (plan, diagnostics)
}

/// Reads a holiday calendar file; an unreadable or invalid one is an error diagnostic
/// naming the file.
pub fn load_holidays(path: &Path) -> Result<Holidays, Diagnostic> {
    let at_file = |message: String| Diagnostic {
        severity: Severity::Error,
        location: Location {
            file: Arc::from(path.display().to_string()),
            line: 0,
            column: 0,
        },
        message,
        hint: None,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| at_file(format!("cannot read holiday calendar: {e}")))?;
    Holidays::parse(&text).map_err(|e| at_file(e.to_string()))
}

/// Everything a call hunts with: the plan, the holiday calendar and the zone its time
/// conditions are read in. Immutable; a reload builds a new one.
#[derive(Clone, Debug)]
pub struct LoadedPlan {
    pub dialplan: Dialplan,
    pub holidays: Holidays,
    pub zone: LocalZone,
    /// What compiling the plan warned about, for the log.
    pub warnings: Vec<Diagnostic>,
}

impl LoadedPlan {
    /// Loads the plan directory and, when given, the holiday calendar; all the errors of both
    /// at once when either fails.
    pub fn load(
        dir: &Path,
        holidays: Option<&Path>,
        zone: LocalZone,
    ) -> Result<LoadedPlan, Vec<Diagnostic>> {
        let plan = load_plan_dir(dir);
        let calendar = holidays.map(load_holidays).transpose();
        match (plan, calendar) {
            (Ok(compiled), Ok(holidays)) => Ok(LoadedPlan {
                dialplan: compiled.plan,
                holidays: holidays.unwrap_or_default(),
                zone,
                warnings: compiled.warnings,
            }),
            (plan, calendar) => {
                let mut errors = plan.err().unwrap_or_default();
                errors.extend(calendar.err());
                Err(errors)
            }
        }
    }

    /// The local time of Unix time `unix_secs` in the plan's zone.
    pub fn civil_time(&self, unix_secs: i64) -> CivilTime {
        self.zone.civil_time(unix_secs)
    }

    /// What time conditions see for a call at `unix_secs`.
    pub fn hunt_env(&self, unix_secs: i64) -> HuntEnv<'_> {
        HuntEnv {
            now: self.civil_time(unix_secs),
            holidays: &self.holidays,
        }
    }

    /// Hunts `context` for a call placed at Unix time `unix_secs`.
    pub fn hunt(&self, context: &str, vars: &Variables, unix_secs: i64) -> Result<Hunt, HuntError> {
        hunt(&self.dialplan, context, vars, &self.hunt_env(unix_secs))
    }

    /// How many contexts and extensions the plan holds, for the log and the console.
    pub fn size(&self) -> (usize, usize) {
        let extensions = self
            .dialplan
            .contexts
            .values()
            .map(|c| c.extensions.len())
            .sum();
        (self.dialplan.contexts.len(), extensions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    const XML: &str = r#"<include><context name="default">
  <extension name="echo"><condition field="destination_number" expression="^9196$">
    <action application="echo"/></condition></extension>
</context></include>"#;

    const TOML: &str = r#"[[context]]
name = "default"
  [[context.extension]]
  name = "moh"
  pattern = "9664"
  actions = ["moh"]
[[context]]
name = "public"
  [[context.extension]]
  name = "did"
  pattern = "_X."
  actions = ["transfer 9196 XML default"]
"#;

    fn vars(destination: &str) -> Variables {
        [("destination_number", destination)].into_iter().collect()
    }

    fn apps(plan: &LoadedPlan, context: &str, destination: &str) -> Vec<String> {
        plan.hunt(context, &vars(destination), 0)
            .unwrap()
            .actions
            .iter()
            .map(|a| {
                format!("{} {}", a.application, a.data)
                    .trim_end()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn both_forms_merge_in_file_name_order() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "20_more.toml", TOML);
        write(dir.path(), "10_base.xml", XML);
        write(dir.path(), "README.md", "not a plan");
        let plan = LoadedPlan::load(dir.path(), None, LocalZone::utc()).unwrap();
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
        assert_eq!(plan.size(), (2, 3));
        let names: Vec<&str> = plan.dialplan.contexts["default"]
            .extensions
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(names, ["echo", "moh"]);
        assert_eq!(apps(&plan, "default", "9664"), ["moh"]);
        assert_eq!(
            apps(&plan, "public", "5551000"),
            ["transfer 9196 XML default"]
        );
    }

    #[test]
    fn a_name_used_in_both_forms_is_a_duplicate_warning() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.xml", XML);
        write(
            dir.path(),
            "b.toml",
            "[[context]]\nname = \"default\"\n[[context.extension]]\nname = \"echo\"\npattern = \"9197\"\nactions = [\"echo\"]\n",
        );
        let compiled = load_plan_dir(dir.path()).unwrap();
        assert_eq!(compiled.warnings.len(), 1, "{:?}", compiled.warnings);
        let warning = compiled.warnings[0].to_string();
        assert!(
            warning.contains("b.toml:3:1: warning: extension \"echo\" is defined twice"),
            "{warning}"
        );
        assert!(warning.contains("a.xml:2:3"), "{warning}");
    }

    #[test]
    fn errors_of_every_file_and_the_calendar_come_together() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.xml", "<include><context name=\"x\">");
        write(dir.path(), "b.toml", "[[context]]\nname = 3\n");
        // Not in the plan directory: a calendar there would be read as a TOML plan.
        let elsewhere = tempfile::tempdir().unwrap();
        let calendar = elsewhere.path().join("holidays.toml");
        std::fs::write(&calendar, "[[holiday]]\nname = \"x\"\n").unwrap();
        let errors = LoadedPlan::load(dir.path(), Some(&calendar), LocalZone::utc()).unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:#?}");
        assert!(text[0].contains("a.xml:") && text[0].contains("error: malformed XML"));
        assert!(text[1].contains("b.toml:2:"), "{}", text[1]);
        assert!(
            text[2].contains("holidays.toml:0:0: error: holiday \"x\": has no date"),
            "{}",
            text[2]
        );
        // The check form keeps what compiled.
        let (plan, diagnostics) = compile_plan_dir(dir.path());
        assert!(plan.contexts.is_empty());
        assert_eq!(diagnostics.len(), 2);
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let errors = load_plan_dir(&dir.path().join("nope")).unwrap_err();
        assert!(
            errors[0]
                .message
                .starts_with("cannot read dialplan directory")
        );
    }

    #[test]
    fn hunting_reads_time_in_the_plans_zone() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "a.toml",
            "[[context]]\nname = \"c\"\n[[context.extension]]\nname = \"open\"\nhour = \"9-17\"\nactions = [\"answer\"]\n",
        );
        let shanghai =
            LoadedPlan::load(dir.path(), None, LocalZone::parse("+08:00").unwrap()).unwrap();
        let utc = LoadedPlan {
            zone: LocalZone::utc(),
            ..shanghai.clone()
        };
        // 2026-11-24 02:00 UTC is 10:00 in UTC+8.
        let t = 1_795_485_600;
        assert_eq!(shanghai.civil_time(t).hour, 10);
        assert_eq!(
            shanghai
                .hunt("c", &Variables::new(), t)
                .unwrap()
                .actions
                .len(),
            1
        );
        assert!(
            utc.hunt("c", &Variables::new(), t)
                .unwrap()
                .actions
                .is_empty()
        );
        assert!(shanghai.hunt("nope", &Variables::new(), t).is_err());
    }
}
