//! Call routing.
//!
//! The dialplan: FreeSWITCH-style XML ([`xml`]) and the same language in TOML ([`toml_plan`])
//! compile to one IR ([`ir`]); [`load_plan_dir`] reads a directory holding either form or
//! both, [`LoadedPlan`] bundles the plan with its holiday calendar and time zone
//! ([`LocalZone`]) for the engine, [`matcher::hunt`] finds what a call runs, [`check`] finds
//! what a plan would route wrongly and [`explain`] shows a hunt step by step.
//!
//! The engine loads a [`LoadedPlan`], hunts it for each new call and executes what the hunt
//! finds (answer, playback, bridge, transfer, ...); a reload compiles a new plan and swaps it
//! in, so a call keeps the plan it started with.
#![forbid(unsafe_code)]

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

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("timezone {setting:?}: {reason}")]
    TimeZone { setting: String, reason: String },
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

    #[test]
    fn sip_failures_map_to_the_causes_a_cdr_names() {
        // RFC 3398 §8.2.6.1 maps these causes to these statuses; we read the table backwards.
        assert_eq!(cause_for_status(404), "UNALLOCATED_NUMBER");
        assert_eq!(cause_for_status(603), "CALL_REJECTED");
        assert_eq!(cause_for_status(486), "USER_BUSY");
        assert_eq!(cause_for_status(480), "NO_USER_RESPONSE");
        assert_eq!(cause_for_status(487), "ORIGINATOR_CANCEL");
        assert_eq!(cause_for_status(503), "NORMAL_CIRCUIT_CONGESTION");
        assert_eq!(cause_for_status(408), "RECOVERY_ON_TIMER_EXPIRE");
        // A status with no entry gets the catch-all cause, never a wrong specific one.
        assert_eq!(cause_for_status(499), "NORMAL_UNSPECIFIED");
    }
}
