//! Menus in FreeSWITCH's `ivr.conf` XML, as FreeSWITCH writes them:
//!
//! ```xml
//! <configuration name="ivr.conf">
//!   <menus>
//!     <menu name="main" language="en" greet-long="welcome!press-1-sales" timeout="5000">
//!       <entry action="menu-exec-app" digits="1" param="transfer 9197 XML default"/>
//!       <entry action="menu-sub" digits="9" param="more"/>
//!     </menu>
//!   </menus>
//! </configuration>
//! ```
//!
//! Every `<menu>` of the document is read, whatever wraps it. `language` is ours;
//! FreeSWITCH attributes we do not run (confirm-key, tts-engine, ...) are warned about.

use roxmltree::{Document, Node};

use crate::menu::{Diagnostic, Location, RawEntry, RawMenu, Written, error, location, warning};

const MENU_ATTRIBUTES: [&str; 11] = [
    "name",
    "language",
    "greet-long",
    "greet-short",
    "invalid-sound",
    "exit-sound",
    "timeout",
    "inter-digit-timeout",
    "max-failures",
    "max-timeouts",
    "digit-len",
];

/// FreeSWITCH menu attributes that mean something there but not here.
const IGNORED_ATTRIBUTES: [&str; 11] = [
    "description",
    "confirm-macro",
    "confirm-key",
    "confirm-attempts",
    "tts-engine",
    "tts-voice",
    "exec-on-max-failures",
    "exec-on-max-timeouts",
    "pin",
    "pin-file",
    "bad-pin-file",
];

struct Reader<'a, 'd> {
    file: &'a str,
    doc: &'a Document<'d>,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl Reader<'_, '_> {
    fn at(&self, byte: usize) -> Location {
        let pos = self.doc.text_pos_at(byte);
        location(self.file, pos.row, pos.col)
    }

    fn attribute(&self, node: Node, name: &str) -> Option<Written<String>> {
        node.attribute_node(name).map(|a| Written {
            value: a.value().to_owned(),
            location: self.at(a.range_value().start),
        })
    }

    fn number(&mut self, node: Node, name: &str) -> Option<Written<u64>> {
        let text = self.attribute(node, name)?;
        match text.value.trim().parse::<u64>() {
            Ok(value) => Some(Written {
                value,
                location: text.location,
            }),
            Err(_) => {
                self.diagnostics.push(error(
                    text.location,
                    format!("{name} {:?} is not a number", text.value),
                    Some("a whole number (milliseconds for timeouts)".into()),
                ));
                None
            }
        }
    }

    fn check_attributes(&mut self, node: Node, accepted: &[&str]) {
        for attribute in node.attributes() {
            let name = attribute.name();
            let at = self.at(attribute.range().start);
            if accepted.contains(&name) {
                continue;
            }
            if node.has_tag_name("menu") && IGNORED_ATTRIBUTES.contains(&name) {
                self.diagnostics
                    .push(warning(at, format!("attribute {name:?} is ignored"), None));
            } else {
                self.diagnostics.push(error(
                    at,
                    format!("unknown attribute {name:?} on <{}>", node.tag_name().name()),
                    Some(format!("accepted: {}", accepted.join(", "))),
                ));
            }
        }
    }

    fn menu(&mut self, node: Node) -> RawMenu {
        self.check_attributes(node, &MENU_ATTRIBUTES);
        let mut entries = Vec::new();
        for child in node.children().filter(Node::is_element) {
            let at = self.at(child.range().start);
            if !child.has_tag_name("entry") {
                self.diagnostics.push(error(
                    at,
                    format!("unexpected <{}> in a menu", child.tag_name().name()),
                    Some("a menu holds <entry/> elements".into()),
                ));
                continue;
            }
            self.check_attributes(child, &["action", "digits", "param"]);
            entries.push(RawEntry {
                digits: self.attribute(child, "digits"),
                action: self.attribute(child, "action"),
                param: self.attribute(child, "param"),
                location: at,
            });
        }
        RawMenu {
            name: self.attribute(node, "name"),
            language: self.attribute(node, "language"),
            greet_long: self.attribute(node, "greet-long"),
            greet_short: self.attribute(node, "greet-short"),
            invalid_sound: self.attribute(node, "invalid-sound"),
            exit_sound: self.attribute(node, "exit-sound"),
            timeout: self.number(node, "timeout"),
            inter_digit_timeout: self.number(node, "inter-digit-timeout"),
            max_failures: self.number(node, "max-failures"),
            max_timeouts: self.number(node, "max-timeouts"),
            digit_len: self.number(node, "digit-len"),
            entries,
            location: Some(self.at(node.range().start)),
        }
    }
}

/// The menus of one document as written; a document that does not parse yields none and
/// one diagnostic at the offending line.
pub(crate) fn read(file: &str, text: &str, diagnostics: &mut Vec<Diagnostic>) -> Vec<RawMenu> {
    let doc = match Document::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let pos = e.pos();
            // roxmltree ends its message with the position, which the location shows.
            let message = e.to_string();
            let suffix = format!(" at {}:{}", pos.row, pos.col);
            let message = message.strip_suffix(&suffix).unwrap_or(&message);
            diagnostics.push(error(
                location(file, pos.row, pos.col),
                format!("malformed XML: {message}"),
                None,
            ));
            return Vec::new();
        }
    };
    let mut reader = Reader {
        file,
        doc: &doc,
        diagnostics,
    };
    let menus: Vec<Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name("menu"))
        .collect();
    menus.into_iter().map(|node| reader.menu(node)).collect()
}
