//! Live statistics, with the standard contact-centre definitions.

use crate::Millis;

/// Per-queue counters since start (never reset by a reload).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Interactions waiting now (filled in by [`crate::Acd::queue_stats`]).
    pub waiting: usize,
    /// Longest current wait (filled in by [`crate::Acd::queue_stats`]).
    pub longest_wait_ms: Millis,
    /// Interactions that entered the queue.
    pub entered: u64,
    pub answered: u64,
    pub answered_within_sl: u64,
    pub abandoned: u64,
    /// Abandons shorter than `short_abandon_ms`, also counted in `abandoned`.
    pub short_abandoned: u64,
    pub timed_out: u64,
    pub overflowed: u64,
    /// Sum of the waits of answered interactions.
    pub answered_wait_ms: Millis,
    /// Contacts completed and their talk + wrap-up time.
    pub handled: u64,
    pub handle_ms: Millis,
}

impl QueueStats {
    /// Interactions that left the queue: answered, abandoned, timed out or overflowed.
    pub fn offered(&self) -> u64 {
        self.answered + self.abandoned + self.timed_out + self.overflowed
    }

    /// SL(T) = answered within T / offered, where short abandons are removed from offered
    /// (they hung up before anyone could reasonably answer). None before any interaction.
    pub fn service_level(&self) -> Option<f64> {
        let offered = self.offered() - self.short_abandoned;
        (offered > 0).then(|| self.answered_within_sl as f64 / offered as f64)
    }

    /// ASA: total wait of answered interactions / answered.
    pub fn average_speed_of_answer_ms(&self) -> Option<Millis> {
        (self.answered > 0).then(|| self.answered_wait_ms / self.answered)
    }

    /// AHT: (talk + after-contact work) / handled.
    pub fn average_handle_time_ms(&self) -> Option<Millis> {
        (self.handled > 0).then(|| self.handle_ms / self.handled)
    }

    /// Abandoned / offered.
    pub fn abandon_rate(&self) -> Option<f64> {
        let offered = self.offered();
        (offered > 0).then(|| self.abandoned as f64 / offered as f64)
    }
}

/// Per-agent counters since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentStats {
    pub answered: u64,
    pub no_answers: u64,
    pub talk_ms: Millis,
    /// Time on a contact or in wrap-up.
    pub handling_ms: Millis,
    /// Time available with nothing to do (ringing counts as idle).
    pub idle_ms: Millis,
}

impl AgentStats {
    /// Occupancy = handling / (handling + available idle).
    pub fn occupancy(&self) -> Option<f64> {
        let total = self.handling_ms + self.idle_ms;
        (total > 0).then(|| self.handling_ms as f64 / total as f64)
    }
}
