//! Brute-force protection: a source that keeps failing digest authentication is ignored for a
//! while, the way fail2ban would block it, but without leaving the process.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct AuthGuard {
    max_failures: u32,
    window: Duration,
    block_for: Duration,
    sources: HashMap<IpAddr, SourceRecord>,
}

#[derive(Debug)]
struct SourceRecord {
    window_start: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
}

/// What recording a failure did, so the caller can log the moment a block starts.
#[derive(Debug, PartialEq, Eq)]
pub enum FailureVerdict {
    Counted { failures: u32 },
    Blocked { failures: u32, for_secs: u64 },
}

impl AuthGuard {
    pub fn new(max_failures: u32, window: Duration, block_for: Duration) -> AuthGuard {
        AuthGuard {
            max_failures: max_failures.max(1),
            window,
            block_for,
            sources: HashMap::new(),
        }
    }

    pub fn is_blocked(&self, now: Instant, source: IpAddr) -> bool {
        self.sources
            .get(&source)
            .and_then(|record| record.blocked_until)
            .is_some_and(|until| now < until)
    }

    pub fn record_failure(&mut self, now: Instant, source: IpAddr) -> FailureVerdict {
        let record = self.sources.entry(source).or_insert(SourceRecord {
            window_start: now,
            failures: 0,
            blocked_until: None,
        });
        if now.duration_since(record.window_start) > self.window {
            record.window_start = now;
            record.failures = 0;
        }
        record.failures += 1;
        if record.failures >= self.max_failures {
            record.blocked_until = Some(now + self.block_for);
            let failures = record.failures;
            record.failures = 0;
            record.window_start = now;
            return FailureVerdict::Blocked {
                failures,
                for_secs: self.block_for.as_secs(),
            };
        }
        FailureVerdict::Counted {
            failures: record.failures,
        }
    }

    /// A successful login clears the slate: a user who mistyped once is not punished later.
    pub fn record_success(&mut self, source: IpAddr) {
        if let Some(record) = self.sources.get_mut(&source)
            && record.blocked_until.is_none()
        {
            self.sources.remove(&source);
        }
    }

    /// Forget records whose window and block are both over, so the map cannot grow without bound.
    pub fn sweep(&mut self, now: Instant) {
        let window = self.window;
        self.sources.retain(|_, record| {
            record.blocked_until.is_some_and(|until| now < until)
                || now.duration_since(record.window_start) <= window
        });
    }

    pub fn blocked_sources(&self, now: Instant) -> usize {
        self.sources
            .values()
            .filter(|r| r.blocked_until.is_some_and(|until| now < until))
            .count()
    }
}

#[cfg(test)]
// Tests read the clock once for the virtual clock's origin; time then moves by hand.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_within_window_and_unblocks_later() {
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let mut guard = AuthGuard::new(3, Duration::from_secs(60), Duration::from_secs(300));
        assert_eq!(
            guard.record_failure(t0, ip),
            FailureVerdict::Counted { failures: 1 }
        );
        assert_eq!(
            guard.record_failure(t0, ip),
            FailureVerdict::Counted { failures: 2 }
        );
        assert!(!guard.is_blocked(t0, ip));
        assert_eq!(
            guard.record_failure(t0, ip),
            FailureVerdict::Blocked {
                failures: 3,
                for_secs: 300
            }
        );
        assert!(guard.is_blocked(t0 + Duration::from_secs(299), ip));
        assert!(!guard.is_blocked(t0 + Duration::from_secs(300), ip));
        assert!(!guard.is_blocked(t0, "192.0.2.8".parse().unwrap()));
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let mut guard = AuthGuard::new(2, Duration::from_secs(10), Duration::from_secs(60));
        guard.record_failure(t0, ip);
        assert_eq!(
            guard.record_failure(t0 + Duration::from_secs(11), ip),
            FailureVerdict::Counted { failures: 1 }
        );
        guard.sweep(t0 + Duration::from_secs(30));
        assert!(guard.sources.is_empty());
    }
}
