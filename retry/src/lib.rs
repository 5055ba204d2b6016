//! One retry policy: how many times an operation whose failure is transient (a cut connection,
//! a server error) is tried, how long to wait between tries (exponential backoff, capped), and
//! for how long at most without progress. A failure that is not transient (a content mismatch,
//! a refusal) is never retried: the caller says which is which.
//!
//! The policy only decides and hands back the delay; it does not sleep, so it works in any
//! runtime and in tests: updog's HTTP client (its `RetryBudget` adds the deadline cut of a running
//! attempt on top) and repo-tools' mirror both count tries with it (tries counted since the last
//! progress, a deadline window that progress restarts, doubling backoff).
//!
//! ```
//! use abos_retry::RetryPolicy;
//! let policy = RetryPolicy::attempts(3);
//! let mut tries = policy.start();
//! let mut calls = 0;
//! let result: Result<(), &str> = loop {
//!     calls += 1;
//!     match Err::<(), _>("connection reset") {
//!         Ok(v) => break Ok(v),
//!         // A real caller sleeps for `delay` (zero here: no backoff configured).
//!         Err(_) if tries.again(true).is_some() => continue,
//!         Err(e) => break Err(e),
//!     }
//! };
//! assert_eq!((calls, result), (3, Err("connection reset")));
//! ```

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// How often, how far apart, and for how long a transient failure is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all without progress (the first one included); at least 1.
    pub attempts: NonZeroU32,
    /// No new try is started once this much time has passed without progress.
    pub deadline: Option<Duration>,
    /// Wait before the first retry; doubled for each further one.
    pub backoff: Duration,
    /// The longest wait between tries.
    pub backoff_max: Duration,
}

impl Default for RetryPolicy {
    /// One try: no retry.
    fn default() -> Self {
        RetryPolicy {
            attempts: NonZeroU32::MIN,
            deadline: None,
            backoff: Duration::ZERO,
            backoff_max: Duration::ZERO,
        }
    }
}

impl RetryPolicy {
    /// Up to `n` tries in all (0 is taken as 1), back to back, with no deadline.
    pub fn attempts(n: u32) -> Self {
        RetryPolicy {
            attempts: NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN),
            ..Default::default()
        }
    }

    /// The same policy with a deadline.
    pub fn with_deadline(self, deadline: Duration) -> Self {
        RetryPolicy {
            deadline: Some(deadline),
            ..self
        }
    }

    /// The same policy with a backoff: `first` before the first retry, doubling, at most `max`.
    pub fn with_backoff(self, first: Duration, max: Duration) -> Self {
        RetryPolicy {
            backoff: first,
            backoff_max: max.max(first),
            ..self
        }
    }

    /// Starts counting the tries of one operation (call it just before the first try).
    pub fn start(&self) -> Tries {
        Tries {
            policy: *self,
            failures: 0,
            window_start: Instant::now(),
        }
    }
}

/// The tries made so far of one operation under a [`RetryPolicy`].
#[derive(Debug, Clone)]
pub struct Tries {
    policy: RetryPolicy,
    failures: u32,
    window_start: Instant,
}

impl Tries {
    /// After a failed try: the wait before the next one, or `None` to give up (a permanent
    /// failure, the tries spent, or the deadline reached before the wait would end).
    /// `transient`: whether the failure may go away on its own.
    pub fn again(&mut self, transient: bool) -> Option<Duration> {
        if !transient {
            return None;
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures >= self.policy.attempts.get() {
            return None;
        }
        let factor = 1u32
            .checked_shl(self.failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let delay = self
            .policy
            .backoff
            .saturating_mul(factor)
            .min(self.policy.backoff_max);
        match self.remaining() {
            Some(left) if delay >= left => None,
            _ => Some(delay),
        }
    }

    /// Progress was made (bytes arrived): the try count and the deadline window start again.
    pub fn progress(&mut self) {
        self.failures = 0;
        self.window_start = Instant::now();
    }

    /// Time left before the deadline (`None`: no deadline).
    pub fn remaining(&self) -> Option<Duration> {
        self.policy
            .deadline
            .map(|d| d.saturating_sub(self.window_start.elapsed()))
    }

    /// Tries made since the last progress (the current one included).
    pub fn made(&self) -> u32 {
        self.failures.saturating_add(1)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn transient_failures_are_retried_up_to_the_budget() {
        let mut tries = RetryPolicy::attempts(3).start();
        assert_eq!(tries.again(true), Some(Duration::ZERO));
        assert_eq!(tries.again(true), Some(Duration::ZERO));
        assert_eq!(tries.made(), 3);
        assert_eq!(tries.again(true), None, "three tries in all");
    }

    #[test]
    fn permanent_failures_are_never_retried() {
        let mut tries = RetryPolicy::attempts(5).start();
        assert_eq!(tries.again(false), None);
        assert_eq!(tries.made(), 1);
    }

    #[test]
    fn zero_attempts_means_one_and_default_never_retries() {
        assert_eq!(RetryPolicy::attempts(0).attempts.get(), 1);
        assert_eq!(RetryPolicy::attempts(0).start().again(true), None);
        assert_eq!(RetryPolicy::default().start().again(true), None);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let s = Duration::from_secs;
        let mut tries = RetryPolicy::attempts(6).with_backoff(s(1), s(5)).start();
        let delays: Vec<_> = std::iter::from_fn(|| tries.again(true)).collect();
        assert_eq!(delays, [s(1), s(2), s(4), s(5), s(5)]);
    }

    #[test]
    fn progress_restores_the_budget() {
        let mut tries = RetryPolicy::attempts(2).start();
        assert!(tries.again(true).is_some());
        assert_eq!(tries.again(true), None);
        tries.progress();
        assert_eq!(tries.made(), 1);
        assert!(tries.again(true).is_some());
    }

    #[test]
    fn no_retry_that_would_end_past_the_deadline() {
        let s = Duration::from_secs;
        let mut tries = RetryPolicy::attempts(100).with_deadline(s(0)).start();
        assert_eq!(tries.again(true), None);
        // A wait longer than the time left is not started either.
        let mut tries = RetryPolicy::attempts(100)
            .with_deadline(s(3600))
            .with_backoff(s(7200), s(7200))
            .start();
        assert_eq!(tries.again(true), None);
        let mut tries = RetryPolicy::attempts(2).with_deadline(s(3600)).start();
        assert_eq!(tries.again(true), Some(Duration::ZERO));
        assert!(tries.remaining().is_some_and(|r| r <= s(3600)));
    }
}
