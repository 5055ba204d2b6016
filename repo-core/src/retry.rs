//! One retry policy: how many times an operation whose failure is transient (a cut connection,
//! a server error) is tried, and for how long at most. A failure that is not transient (a
//! content mismatch, a refusal) is never retried: the caller says which is which.
//!
//! The policy only decides; it does not sleep, so it works in any runtime and in tests.
//!
//! ```
//! use abos_repo_core::RetryPolicy;
//! let policy = RetryPolicy::attempts(3);
//! let mut tries = policy.start();
//! let mut calls = 0;
//! let result: Result<(), &str> = loop {
//!     calls += 1;
//!     match Err::<(), _>("connection reset") {
//!         Ok(v) => break Ok(v),
//!         Err(e) if tries.again(true) => continue,
//!         Err(e) => break Err(e),
//!     }
//! };
//! assert_eq!((calls, result), (3, Err("connection reset")));
//! ```

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// How often, and for how long, a transient failure is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all (the first one included); at least 1.
    pub attempts: NonZeroU32,
    /// No new try is started once this much time has passed since the first one.
    pub deadline: Option<Duration>,
}

impl Default for RetryPolicy {
    /// One try: no retry.
    fn default() -> Self {
        RetryPolicy {
            attempts: NonZeroU32::MIN,
            deadline: None,
        }
    }
}

impl RetryPolicy {
    /// Up to `n` tries in all (0 is taken as 1), with no deadline.
    pub fn attempts(n: u32) -> Self {
        RetryPolicy {
            attempts: NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN),
            deadline: None,
        }
    }

    /// The same policy with a deadline.
    pub fn with_deadline(self, deadline: Duration) -> Self {
        RetryPolicy {
            deadline: Some(deadline),
            ..self
        }
    }

    /// Starts counting the tries of one operation (call it just before the first try).
    pub fn start(&self) -> Tries {
        Tries {
            policy: *self,
            made: 1,
            started: Instant::now(),
        }
    }
}

/// The tries made so far of one operation under a [`RetryPolicy`].
#[derive(Debug, Clone)]
pub struct Tries {
    policy: RetryPolicy,
    made: u32,
    started: Instant,
}

impl Tries {
    /// After a failed try: true if another try should be made (and counts it). `transient`:
    /// whether the failure may go away on its own; a permanent one is never retried.
    pub fn again(&mut self, transient: bool) -> bool {
        let in_time = self
            .policy
            .deadline
            .is_none_or(|d| self.started.elapsed() < d);
        if transient && self.made < self.policy.attempts.get() && in_time {
            self.made += 1;
            true
        } else {
            false
        }
    }

    /// Tries made so far (the current one included).
    pub fn made(&self) -> u32 {
        self.made
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn transient_failures_are_retried_up_to_the_budget() {
        let mut tries = RetryPolicy::attempts(3).start();
        assert!(tries.again(true));
        assert!(tries.again(true));
        assert!(!tries.again(true), "three tries in all");
        assert_eq!(tries.made(), 3);
    }

    #[test]
    fn permanent_failures_are_never_retried() {
        let mut tries = RetryPolicy::attempts(5).start();
        assert!(!tries.again(false));
        assert_eq!(tries.made(), 1);
    }

    #[test]
    fn zero_attempts_means_one_and_default_never_retries() {
        assert_eq!(RetryPolicy::attempts(0).attempts.get(), 1);
        assert!(!RetryPolicy::attempts(0).start().again(true));
        assert!(!RetryPolicy::default().start().again(true));
    }

    #[test]
    fn no_retry_after_the_deadline() {
        let mut tries = RetryPolicy::attempts(100)
            .with_deadline(Duration::ZERO)
            .start();
        assert!(!tries.again(true));
        let mut tries = RetryPolicy::attempts(2)
            .with_deadline(Duration::from_secs(3600))
            .start();
        assert!(tries.again(true));
    }
}
