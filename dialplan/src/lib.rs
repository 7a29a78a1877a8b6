//! Call routing.
//!
//! Today this is the minimal extension table the calls foundation needs: an exact extension
//! number names an application (the 9196 echo test), a directory user, or a rejection, and any
//! number equal to a directory user id reaches that user. The dialplan language (XML and TOML
//! compiled to one IR) replaces the table behind the same [`Router::route`] entry point, so the
//! engine never learns which one it talks to.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};

pub mod check;
pub mod explain;
pub mod ir;
pub mod matcher;
pub mod pattern;
pub mod plan;
pub mod timespec;
pub mod toml_plan;
pub mod vars;
pub mod xml;
pub mod zone;

pub use plan::{LoadedPlan, compile_plan_dir, load_plan_dir};
pub use zone::LocalZone;

/// What the engine should do with a new call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteDecision {
    /// Bridge to every registered contact of a directory user.
    BridgeUser { user: String },
    /// Answer and send the caller's media back (the 9196 echo test).
    Echo,
    /// Refuse with this SIP status; `cause` is the Q.850-style name kept in the CDR.
    Reject { status: u16, cause: &'static str },
    /// Answer, play these prompts (names in the language's prompt set), hang up.
    Playback { prompts: Vec<String>, lang: String },
    /// Answer and play a call-progress tone (by name) or a tone spec, until the caller hangs up.
    Tone { tone: String },
    /// Answer and play music on hold until the caller hangs up.
    MusicOnHold,
    /// Answer and join a conference room.
    Conference { room: String },
}

/// One row of the table as configuration supplies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExtensionAction {
    Echo,
    User(String),
    Reject(u16),
    Playback { prompts: Vec<String>, lang: String },
    Tone(String),
    MusicOnHold,
    Conference(String),
}

/// The facts a routing decision may look at.
#[derive(Clone, Copy, Debug)]
pub struct RouteRequest<'a> {
    /// The dialled number: the user part of the Request-URI.
    pub destination: &'a str,
    /// The authenticated caller.
    pub caller: &'a str,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("extension {extension} routes to user {user}, who is not in the directory")]
    UnknownUser { extension: String, user: String },
    #[error("extension {extension}: {status} is not a final error status (400-699)")]
    BadRejectStatus { extension: String, status: u16 },
    #[error("timezone {setting:?}: {reason}")]
    TimeZone { setting: String, reason: String },
}

/// The extension table. Immutable once built: a reload builds a new one and swaps it in, so a
/// call keeps the router it started with.
#[derive(Clone, Debug, Default)]
pub struct Router {
    extensions: BTreeMap<String, ExtensionAction>,
    users: BTreeSet<String>,
}

impl Router {
    pub fn new(
        extensions: impl IntoIterator<Item = (String, ExtensionAction)>,
        users: impl IntoIterator<Item = String>,
    ) -> Result<Router, Error> {
        let users: BTreeSet<String> = users.into_iter().collect();
        let mut table = BTreeMap::new();
        for (extension, action) in extensions {
            match &action {
                ExtensionAction::User(user) if !users.contains(user) => {
                    return Err(Error::UnknownUser {
                        extension,
                        user: user.clone(),
                    });
                }
                ExtensionAction::Reject(status) if !(400..=699).contains(status) => {
                    return Err(Error::BadRejectStatus {
                        extension,
                        status: *status,
                    });
                }
                _ => {}
            }
            table.insert(extension, action);
        }
        Ok(Router {
            extensions: table,
            users,
        })
    }

    pub fn route(&self, request: &RouteRequest<'_>) -> RouteDecision {
        match self.extensions.get(request.destination) {
            Some(ExtensionAction::Echo) => RouteDecision::Echo,
            Some(ExtensionAction::User(user)) => RouteDecision::BridgeUser { user: user.clone() },
            Some(ExtensionAction::Reject(status)) => RouteDecision::Reject {
                status: *status,
                cause: cause_for_status(*status),
            },
            Some(ExtensionAction::Playback { prompts, lang }) => RouteDecision::Playback {
                prompts: prompts.clone(),
                lang: lang.clone(),
            },
            Some(ExtensionAction::Tone(tone)) => RouteDecision::Tone { tone: tone.clone() },
            Some(ExtensionAction::MusicOnHold) => RouteDecision::MusicOnHold,
            Some(ExtensionAction::Conference(room)) => {
                RouteDecision::Conference { room: room.clone() }
            }
            None if self.users.contains(request.destination) => RouteDecision::BridgeUser {
                user: request.destination.to_owned(),
            },
            None => RouteDecision::Reject {
                status: 404,
                cause: "UNALLOCATED_NUMBER",
            },
        }
    }
}

/// RFC 3398 §8.2 / FreeSWITCH's table, read backwards: the cause an operator expects in a CDR
/// for a SIP failure.
pub fn cause_for_status(status: u16) -> &'static str {
    match status {
        404 | 484 | 485 | 604 => "UNALLOCATED_NUMBER",
        403 | 401 | 407 | 603 => "CALL_REJECTED",
        408 | 504 => "RECOVERY_ON_TIMER_EXPIRE",
        410 => "NUMBER_CHANGED",
        480 => "NO_USER_RESPONSE",
        486 | 600 => "USER_BUSY",
        487 => "ORIGINATOR_CANCEL",
        488 | 606 => "INCOMPATIBLE_DESTINATION",
        500 => "NORMAL_TEMPORARY_FAILURE",
        502 => "NETWORK_OUT_OF_ORDER",
        503 => "NORMAL_CIRCUIT_CONGESTION",
        _ => "NORMAL_UNSPECIFIED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        Router::new(
            [
                ("9196".to_owned(), ExtensionAction::Echo),
                ("100".to_owned(), ExtensionAction::User("1001".to_owned())),
                ("666".to_owned(), ExtensionAction::Reject(403)),
                (
                    "3000".to_owned(),
                    ExtensionAction::Conference("3000".to_owned()),
                ),
                ("9664".to_owned(), ExtensionAction::MusicOnHold),
            ],
            ["1000".to_owned(), "1001".to_owned()],
        )
        .unwrap()
    }

    fn route(destination: &str) -> RouteDecision {
        router().route(&RouteRequest {
            destination,
            caller: "1000",
        })
    }

    #[test]
    fn table_entries_win_over_user_ids() {
        assert_eq!(route("9196"), RouteDecision::Echo);
        assert_eq!(
            route("100"),
            RouteDecision::BridgeUser {
                user: "1001".into()
            }
        );
        assert_eq!(
            route("666"),
            RouteDecision::Reject {
                status: 403,
                cause: "CALL_REJECTED"
            }
        );
    }

    #[test]
    fn media_applications_route_to_their_decision() {
        assert_eq!(
            route("3000"),
            RouteDecision::Conference {
                room: "3000".into()
            }
        );
        assert_eq!(route("9664"), RouteDecision::MusicOnHold);
    }

    #[test]
    fn directory_users_are_reachable_by_their_id() {
        assert_eq!(
            route("1000"),
            RouteDecision::BridgeUser {
                user: "1000".into()
            }
        );
    }

    #[test]
    fn unknown_numbers_are_unallocated() {
        assert_eq!(
            route("5555"),
            RouteDecision::Reject {
                status: 404,
                cause: "UNALLOCATED_NUMBER"
            }
        );
    }

    #[test]
    fn table_naming_a_missing_user_is_refused() {
        let err = Router::new(
            [("7".to_owned(), ExtensionAction::User("42".to_owned()))],
            [],
        )
        .unwrap_err();
        assert!(err.to_string().contains("user 42"), "{err}");
        let err = Router::new([("7".to_owned(), ExtensionAction::Reject(200))], []).unwrap_err();
        assert!(err.to_string().contains("200"), "{err}");
    }
}
