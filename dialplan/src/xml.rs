//! The FreeSWITCH-style XML front end:
//!
//! ```xml
//! <include>
//!   <context name="default">
//!     <extension name="local" continue="false">
//!       <condition field="destination_number" expression="^(10\d\d)$" break="on-false">
//!         <action application="set" data="dialed=$1" inline="true"/>
//!         <action application="bridge" data="user/$1"/>
//!         <anti-action application="log" data="not local"/>
//!       </condition>
//!     </extension>
//!   </context>
//! </include>
//! ```
//!
//! Every problem is collected as a [`Diagnostic`] with file:line:column; compiling never stops
//! at the first error, so `dialplan check` can show them all at once.

use std::path::Path;
use std::sync::Arc;

use crate::ir::{
    Action, BreakOn, Compiled, Condition, ConditionTest, Diagnostic, Dialplan, Extension,
    HOLIDAY_ATTRIBUTE, Location, Severity, compiled, merge_context, parse_flag, read_plan_files,
    sort_diagnostics,
};
use crate::timespec::TIME_ATTRIBUTES;

/// Applications that may run inline: only those whose effect hunting can apply itself.
pub const INLINE_APPLICATIONS: [&str; 3] = ["set", "export", "unset"];

/// Compiles one XML document.
pub fn load_str(file: &str, text: &str) -> Result<Compiled, Vec<Diagnostic>> {
    let mut builder = Builder::default();
    builder.add_document(Arc::from(file), text);
    builder.finish()
}

/// Compiles every `*.xml` file of `dir`, in file-name order, into one plan. A context that
/// appears in several files gathers their extensions in that order.
pub fn load_dir(dir: &Path) -> Result<Compiled, Vec<Diagnostic>> {
    let mut builder = Builder::default();
    builder.add_dir(dir);
    builder.finish()
}

/// Compiles every `*.xml` file of `dir` as [`load_dir`] does, but keeps going past errors:
/// the plan holds every element that compiled (a bad one is left out) and the diagnostics
/// are all of them, errors included. For `dialplan check`, which reports everything at once;
/// never serve calls from this plan.
pub fn compile_dir(dir: &Path) -> (Dialplan, Vec<Diagnostic>) {
    let mut builder = Builder::default();
    builder.add_dir(dir);
    builder.sorted()
}

/// Adds one XML document to a plan that other documents (of either form) also feed.
pub(crate) fn add_document(
    plan: &mut Dialplan,
    diagnostics: &mut Vec<Diagnostic>,
    file: Arc<str>,
    text: &str,
) {
    let mut builder = Builder {
        plan: std::mem::take(plan),
        diagnostics: std::mem::take(diagnostics),
    };
    builder.add_document(file, text);
    *plan = builder.plan;
    *diagnostics = builder.diagnostics;
}

#[derive(Default)]
struct Builder {
    plan: Dialplan,
    diagnostics: Vec<Diagnostic>,
}

/// One document being read: positions come from roxmltree's byte offsets.
struct Source<'a, 'input> {
    file: Arc<str>,
    doc: &'a roxmltree::Document<'input>,
}

impl Source<'_, '_> {
    fn at(&self, byte: usize) -> Location {
        let pos = self.doc.text_pos_at(byte);
        Location {
            file: self.file.clone(),
            line: pos.row,
            column: pos.col,
        }
    }

    fn node(&self, node: roxmltree::Node) -> Location {
        self.at(node.range().start)
    }

    fn attr(&self, attr: &roxmltree::Attribute) -> Location {
        self.at(attr.range().start)
    }
}

impl Builder {
    fn add_dir(&mut self, dir: &Path) {
        for (file, text) in read_plan_files(dir, &["xml"], &mut self.diagnostics) {
            self.add_document(file, &text);
        }
    }

    fn push(
        &mut self,
        severity: Severity,
        location: Location,
        message: String,
        hint: Option<String>,
    ) {
        self.diagnostics.push(Diagnostic {
            severity,
            location,
            message,
            hint,
        });
    }

    fn error(&mut self, location: Location, message: String, hint: Option<String>) {
        self.push(Severity::Error, location, message, hint);
    }

    fn sorted(mut self) -> (Dialplan, Vec<Diagnostic>) {
        sort_diagnostics(&mut self.diagnostics);
        (self.plan, self.diagnostics)
    }

    fn finish(self) -> Result<Compiled, Vec<Diagnostic>> {
        compiled(self.plan, self.diagnostics)
    }

    fn add_document(&mut self, file: Arc<str>, text: &str) {
        let doc = match roxmltree::Document::parse(text) {
            Ok(doc) => doc,
            Err(e) => {
                let pos = e.pos();
                self.error(
                    Location {
                        file,
                        line: pos.row,
                        column: pos.col,
                    },
                    format!("malformed XML: {e}"),
                    None,
                );
                return;
            }
        };
        let src = Source { file, doc: &doc };
        let root = doc.root_element();
        match root.tag_name().name() {
            "include" => {
                self.check_attributes(&src, root, &[]);
                for child in self.element_children(&src, root) {
                    if child.tag_name().name() == "context" {
                        self.context(&src, child);
                    } else {
                        self.unknown_element(&src, child, "<include>", &["context"]);
                    }
                }
            }
            "context" => self.context(&src, root),
            _ => self.unknown_element(&src, root, "the document", &["include", "context"]),
        }
    }

    /// Child elements; stray text is reported (FreeSWITCH would silently ignore it).
    fn element_children<'a, 'input>(
        &mut self,
        src: &Source,
        node: roxmltree::Node<'a, 'input>,
    ) -> Vec<roxmltree::Node<'a, 'input>> {
        let mut out = Vec::new();
        for child in node.children() {
            if child.is_element() {
                out.push(child);
            } else if child.is_text() && child.text().is_some_and(|t| !t.trim().is_empty()) {
                self.error(
                    src.node(child),
                    format!("unexpected text inside <{}>", node.tag_name().name()),
                    Some("put values in attributes, e.g. data=\"...\"".into()),
                );
            }
        }
        out
    }

    fn unknown_element(
        &mut self,
        src: &Source,
        node: roxmltree::Node,
        parent: &str,
        known: &[&str],
    ) {
        let name = node.tag_name().name();
        let hint = if name == "action" || name == "anti-action" {
            Some(format!("<{name}> belongs inside a <condition>"))
        } else {
            Some(format!("expected one of: <{}>", known.join(">, <")))
        };
        self.error(
            src.node(node),
            format!("unknown element <{name}> in {parent}"),
            hint,
        );
    }

    fn check_attributes(&mut self, src: &Source, node: roxmltree::Node, known: &[&str]) {
        for attr in node.attributes() {
            let name = attr.name();
            if known.contains(&name) {
                continue;
            }
            let hint = if known.is_empty() {
                format!("<{}> takes no attributes", node.tag_name().name())
            } else {
                format!("<{}> accepts: {}", node.tag_name().name(), known.join(", "))
            };
            self.error(
                src.attr(&attr),
                format!("unknown attribute {name:?} on <{}>", node.tag_name().name()),
                Some(hint),
            );
        }
    }

    fn required_name(&mut self, src: &Source, node: roxmltree::Node) -> Option<String> {
        match node.attribute("name") {
            Some(name) if !name.trim().is_empty() => Some(name.to_owned()),
            _ => {
                self.error(
                    src.node(node),
                    format!("<{}> has no name", node.tag_name().name()),
                    Some("add name=\"...\"".into()),
                );
                None
            }
        }
    }

    fn context(&mut self, src: &Source, node: roxmltree::Node) {
        self.check_attributes(src, node, &["name"]);
        let name = self.required_name(src, node);
        let mut extensions = Vec::new();
        for child in self.element_children(src, node) {
            if child.tag_name().name() == "extension" {
                if let Some(extension) = self.extension(src, child) {
                    extensions.push(extension);
                }
            } else {
                self.unknown_element(src, child, "<context>", &["extension"]);
            }
        }
        let Some(name) = name else { return };
        let location = src.node(node);
        merge_context(
            &mut self.plan,
            name,
            location,
            extensions,
            &mut self.diagnostics,
        );
    }

    fn extension(&mut self, src: &Source, node: roxmltree::Node) -> Option<Extension> {
        self.check_attributes(src, node, &["name", "continue"]);
        let name = self.required_name(src, node);
        let continue_on_match = match node.attribute_node("continue") {
            None => false,
            Some(attr) => self.flag_attribute(src, &attr),
        };
        let conditions = self.conditions(src, node, "<extension>");
        Some(Extension {
            name: name?,
            continue_on_match,
            conditions,
            location: src.node(node),
        })
    }

    fn flag_attribute(&mut self, src: &Source, attr: &roxmltree::Attribute) -> bool {
        parse_flag(attr.value()).unwrap_or_else(|| {
            self.error(
                src.attr(attr),
                format!(
                    "{} must be true or false, not {:?}",
                    attr.name(),
                    attr.value()
                ),
                None,
            );
            false
        })
    }

    fn conditions(&mut self, src: &Source, node: roxmltree::Node, parent: &str) -> Vec<Condition> {
        let mut out = Vec::new();
        for child in self.element_children(src, node) {
            if child.tag_name().name() == "condition" {
                if let Some(condition) = self.condition(src, child) {
                    out.push(condition);
                }
            } else {
                self.unknown_element(src, child, parent, &["condition"]);
            }
        }
        out
    }

    fn condition(&mut self, src: &Source, node: roxmltree::Node) -> Option<Condition> {
        let location = src.node(node);
        let mut ok = true;
        let mut break_on = BreakOn::OnFalse;
        let mut time_pairs: Vec<(&str, &str)> = Vec::new();
        for attr in node.attributes() {
            match attr.name() {
                "field" | "expression" => {}
                "break" => {
                    break_on = match attr.value() {
                        "on-false" => BreakOn::OnFalse,
                        "on-true" => BreakOn::OnTrue,
                        "always" => BreakOn::Always,
                        "never" => BreakOn::Never,
                        other => {
                            self.error(
                                src.attr(&attr),
                                format!("unknown break mode {other:?}"),
                                Some("use on-false, on-true, always or never".into()),
                            );
                            ok = false;
                            BreakOn::OnFalse
                        }
                    }
                }
                name if ConditionTest::is_time_attribute(name) => {
                    // Checked one by one so the error points at the attribute at fault.
                    match ConditionTest::time(&[(name, attr.value())]) {
                        Ok(_) => time_pairs.push((name, attr.value())),
                        Err(message) => {
                            let (message, hint) = split_hint(&message);
                            self.error(src.attr(&attr), format!("bad time spec: {message}"), hint);
                            ok = false;
                        }
                    }
                }
                name => {
                    self.error(
                        src.attr(&attr),
                        format!("unknown attribute {name:?} on <condition>"),
                        Some(format!(
                            "<condition> accepts: field, expression, break, {}, {HOLIDAY_ATTRIBUTE}",
                            TIME_ATTRIBUTES.join(", ")
                        )),
                    );
                    ok = false;
                }
            }
        }
        // Each attribute parsed alone and XML forbids repeats, so the whole set parses too.
        let time = if time_pairs.is_empty() {
            None
        } else {
            ConditionTest::time(&time_pairs).ok()
        };
        let test = match (
            node.attribute_node("field"),
            node.attribute_node("expression"),
        ) {
            (Some(field), Some(expression)) => {
                if !time_pairs.is_empty() {
                    self.error(
                        location.clone(),
                        "a condition tests either a field or a time, not both".into(),
                        Some("nest the time condition inside the field condition".into()),
                    );
                    ok = false;
                }
                let variable = self.field_variable(src, &field);
                let regex = match regex::Regex::new(expression.value()) {
                    Ok(regex) => Some(regex),
                    Err(e) => {
                        self.error(
                            src.attr(&expression),
                            format!("bad regex {:?}: {e}", expression.value()),
                            Some(
                                "the regex crate's syntax: no look-around or back-references"
                                    .into(),
                            ),
                        );
                        None
                    }
                };
                match (variable, regex) {
                    (Some(variable), Some(regex)) => Some(ConditionTest::Field { variable, regex }),
                    _ => None,
                }
            }
            (Some(_), None) => {
                self.error(
                    location.clone(),
                    "condition has a field but no expression".into(),
                    Some("add expression=\"^...$\"".into()),
                );
                None
            }
            (None, Some(_)) => {
                self.error(
                    location.clone(),
                    "condition has an expression but no field".into(),
                    Some("add field=\"destination_number\" or field=\"${variable}\"".into()),
                );
                None
            }
            (None, None) => Some(time.unwrap_or(ConditionTest::Always)),
        };
        let mut actions = Vec::new();
        let mut anti_actions = Vec::new();
        let mut children = Vec::new();
        for child in self.element_children(src, node) {
            match child.tag_name().name() {
                "action" => actions.extend(self.action(src, child)),
                "anti-action" => anti_actions.extend(self.action(src, child)),
                "condition" => children.extend(self.condition(src, child)),
                _ => self.unknown_element(
                    src,
                    child,
                    "<condition>",
                    &["action", "anti-action", "condition"],
                ),
            }
        }
        if !ok {
            return None;
        }
        Some(Condition {
            test: test?,
            break_on,
            actions,
            anti_actions,
            children,
            location,
        })
    }

    /// `field="destination_number"` and `field="${destination_number}"` name the same
    /// variable; a template mixing text and variables is not supported.
    fn field_variable(&mut self, src: &Source, attr: &roxmltree::Attribute) -> Option<String> {
        let value = attr.value();
        let name = match value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
            Some(inner) => inner,
            None => value,
        };
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if valid {
            Some(name.to_owned())
        } else {
            self.error(
                src.attr(attr),
                format!("field {value:?} is not a variable name"),
                Some("write a name such as destination_number or ${sip_user_agent}".into()),
            );
            None
        }
    }

    fn action(&mut self, src: &Source, node: roxmltree::Node) -> Option<Action> {
        self.check_attributes(src, node, &["application", "data", "inline"]);
        self.element_children(src, node)
            .into_iter()
            .for_each(|child| self.unknown_element(src, child, "an action", &[]));
        let location = src.node(node);
        let inline = match node.attribute_node("inline") {
            None => false,
            Some(attr) => self.flag_attribute(src, &attr),
        };
        let application = match node.attribute("application") {
            Some(app) if !app.trim().is_empty() => app.to_owned(),
            _ => {
                self.error(
                    location,
                    format!("<{}> has no application", node.tag_name().name()),
                    Some("add application=\"...\"".into()),
                );
                return None;
            }
        };
        if inline && !INLINE_APPLICATIONS.contains(&application.as_str()) {
            self.error(
                location,
                format!("application {application:?} cannot run inline"),
                Some(format!(
                    "inline is supported for: {}",
                    INLINE_APPLICATIONS.join(", ")
                )),
            );
            return None;
        }
        Some(Action {
            application,
            data: node.attribute("data").unwrap_or_default().to_owned(),
            inline,
            location,
        })
    }
}

/// Splits `problem (hint: fix)`, the form [`ConditionTest::time`] reports in, into the two
/// parts of a [`Diagnostic`].
fn split_hint(message: &str) -> (String, Option<String>) {
    match message
        .strip_suffix(')')
        .and_then(|m| m.rsplit_once(" (hint: "))
    {
        Some((problem, hint)) => (problem.to_owned(), Some(hint.to_owned())),
        None => (message.to_owned(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        load_str("bad.xml", text)
            .unwrap_err()
            .iter()
            .map(|d| format!("{}:{} {}", d.location.line, d.location.column, d.message))
            .collect()
    }

    #[test]
    fn compiles_the_ir_with_locations() {
        let text = "<include>\n  <context name=\"default\">\n    <extension name=\"local\" continue=\"true\">\n      <condition field=\"${destination_number}\" expression=\"^(10\\d\\d)$\" break=\"never\">\n        <action application=\"set\" data=\"x=$1\" inline=\"yes\"/>\n        <anti-action application=\"log\" data=\"no\"/>\n        <condition wday=\"2-6\" hour=\"9-17\" holiday=\"no\"/>\n      </condition>\n      <condition/>\n    </extension>\n  </context>\n</include>\n";
        let compiled = load_str("plan.xml", text).unwrap();
        assert!(compiled.warnings.is_empty());
        let context = &compiled.plan.contexts["default"];
        assert_eq!((context.location.line, context.location.column), (2, 3));
        let extension = &context.extensions[0];
        assert_eq!(extension.name, "local");
        assert!(extension.continue_on_match);
        assert_eq!(extension.location.to_string(), "plan.xml:3:5");
        let first = &extension.conditions[0];
        assert_eq!(first.break_on, BreakOn::Never);
        match &first.test {
            ConditionTest::Field { variable, regex } => {
                assert_eq!(variable, "destination_number");
                assert_eq!(regex.as_str(), "^(10\\d\\d)$");
            }
            other => panic!("expected a field test, got {other:?}"),
        }
        assert_eq!(first.actions[0].application, "set");
        assert_eq!(first.actions[0].data, "x=$1");
        assert!(first.actions[0].inline);
        assert_eq!(first.actions[0].location.line, 5);
        assert_eq!(first.anti_actions[0].data, "no");
        match &first.children[0].test {
            ConditionTest::Time { spec, holiday } => {
                assert_eq!(
                    *spec,
                    crate::timespec::TimeSpec::parse(&[("wday", "2-6"), ("hour", "9-17")]).unwrap()
                );
                assert_eq!(*holiday, Some(false));
            }
            other => panic!("expected a time test, got {other:?}"),
        }
        assert!(matches!(
            extension.conditions[1].test,
            ConditionTest::Always
        ));
        assert_eq!(extension.conditions[1].break_on, BreakOn::OnFalse);
    }

    #[test]
    fn malformed_xml_points_at_the_position() {
        let errs = errors("<include>\n  <context name=\"a\">\n</include>");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("3:1 malformed XML"), "{errs:?}");
    }

    #[test]
    fn collects_every_error() {
        let text = r#"<include>
<context>
  <extension name="e" colour="red" continue="maybe">
    <condition field="destination_number" expression="^(1$" break="sometimes">
      <action data="no application"/>
      <action application="bridge" data="x" inline="true"/>
      <bogus/>
    </condition>
    <condition field="a"/>
    <condition expression="^1$"/>
    <condition hour="25" yday="3" hours="3" holiday="maybe"/>
    <condition field="a" expression="x" wday="1"/>
    <condition field="${a}-${b}" expression="x"/>
    <action application="log"/>
  </extension>
</context>
<dialplan/>
</include>"#;
        let errs = errors(text);
        let expect = [
            "4:43 bad regex",
            "4:61 unknown break mode",
            "5:7 <action> has no application",
            "6:7 application \"bridge\" cannot run inline",
            "7:7 unknown element <bogus>",
            "9:5 condition has a field but no expression",
            "10:5 condition has an expression but no field",
            "11:16 bad time spec: hour=\"25\", byte 0: 25 is out of range 0-23",
            "11:35 unknown attribute \"hours\" on <condition>",
            "11:45 bad time spec: holiday=\"maybe\": not yes or no",
            "12:5 a condition tests either a field or a time",
            "13:16 field \"${a}-${b}\" is not a variable name",
            "14:5 unknown element <action> in <extension>",
            "3:23 unknown attribute \"colour\"",
            "3:36 continue must be true or false",
            "2:1 <context> has no name",
            "17:1 unknown element <dialplan> in <include>",
        ];
        for e in expect {
            assert!(
                errs.iter().any(|got| got.starts_with(e)),
                "missing {e:?} in {errs:#?}"
            );
        }
        assert_eq!(errs.len(), expect.len(), "{errs:#?}");
        let diagnostics = load_str("bad.xml", text).unwrap_err();
        let lines: Vec<u32> = diagnostics.iter().map(|d| d.location.line).collect();
        assert!(
            lines.is_sorted(),
            "diagnostics come in source order: {lines:?}"
        );
        let regex = diagnostics
            .iter()
            .find(|d| d.message.starts_with("bad regex"))
            .unwrap();
        assert!(
            regex.message.contains("unclosed group"),
            "{}",
            regex.message
        );
        assert!(regex.hint.is_some());
    }

    #[test]
    fn unknown_root_and_missing_extension_name() {
        assert_eq!(
            errors("<section/>")[0],
            "1:1 unknown element <section> in the document"
        );
        assert_eq!(
            errors("<context name=\"c\"><extension><condition/></extension></context>"),
            ["1:19 <extension> has no name"]
        );
    }

    #[test]
    fn duplicate_extension_names_warn_across_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("00_a.xml"),
            "<include><context name=\"c\"><extension name=\"x\"/></context></include>",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("10_b.xml"),
            "<context name=\"c\">\n<extension name=\"y\"/>\n<extension name=\"x\"/></context>",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "<not xml").unwrap();
        let compiled = load_dir(dir.path()).unwrap();
        let names: Vec<_> = compiled.plan.contexts["c"]
            .extensions
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(names, ["x", "y", "x"]);
        assert_eq!(compiled.warnings.len(), 1);
        let warning = &compiled.warnings[0];
        assert_eq!(warning.severity, Severity::Warning);
        assert!(warning.location.file.ends_with("10_b.xml"));
        assert_eq!(warning.location.line, 3);
        assert!(warning.hint.as_deref().unwrap().contains("00_a.xml:1:28"));
    }

    #[test]
    fn errors_from_several_files_are_all_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.xml"), "<include><oops/></include>").unwrap();
        std::fs::write(dir.path().join("b.xml"), "<include>").unwrap();
        let errs = load_dir(dir.path()).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(errs[0].location.file.ends_with("a.xml"));
        assert!(errs[1].location.file.ends_with("b.xml"));
        let missing = load_dir(&dir.path().join("absent")).unwrap_err();
        assert!(
            missing[0]
                .message
                .starts_with("cannot read dialplan directory")
        );
    }
}
