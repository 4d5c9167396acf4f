//! When a deferred recipient is tried again, and when it expires.
//!
//! Delays grow exponentially from `first` up to `max`, then stay there; each is spread by a random
//! fraction so that recipients deferred together (a receiving server that was down) do not all
//! come back in the same second. A recipient that has failed for `lifetime` since its message
//! arrived expires and is bounced, like Postfix's `maximal_queue_lifetime`; the last retry is
//! moved to that moment rather than past it, so a recipient is never kept longer than promised.

#[cfg(test)]
mod tests;

use std::time::Duration;

use time::OffsetDateTime;

/// The retry policy of the delivery workers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrySchedule {
    /// Delay after the first failed attempt.
    pub first: Duration,
    /// Each further failure multiplies the delay by this; 1 gives a fixed interval (0 counts as 1).
    pub factor: u32,
    /// Longest delay before jitter.
    pub max: Duration,
    /// Each delay is moved by up to this fraction either way (0.1 = ±10 %), clamped to 0..=1.
    pub jitter: f64,
    /// How long after arrival a recipient is still tried.
    pub lifetime: Duration,
}

impl Default for RetrySchedule {
    /// 5 min, 10, 20, 40, 80, 160, then every 4 h, ±10 %, for 5 days: about three dozen attempts.
    fn default() -> Self {
        Self {
            first: Duration::from_secs(5 * 60),
            factor: 2,
            max: Duration::from_secs(4 * 3600),
            jitter: 0.1,
            lifetime: Duration::from_secs(5 * 24 * 3600),
        }
    }
}

/// What to do with a recipient after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again at this time.
    Retry(OffsetDateTime),
    /// It has been failing for the whole lifetime: give up and bounce.
    Expired,
}

impl RetrySchedule {
    /// The delay before the next attempt after `attempts` failed ones (0 counts as 1):
    /// `first * factor^(attempts - 1)`, at most `max`, then jittered with `rng`. Saturates
    /// rather than overflowing for any attempt count.
    pub fn next_delay(&self, attempts: u32, rng: &mut fastrand::Rng) -> Duration {
        let base = self.base_delay(attempts);
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        // Uniform in [1 - jitter, 1 + jitter).
        let scale = 1.0 + jitter * (2.0 * rng.f64() - 1.0);
        Duration::try_from_secs_f64(base.as_secs_f64() * scale).unwrap_or(base)
    }

    /// Whether a recipient whose message arrived at `received_at` and has now failed `attempts`
    /// times is tried again, and when: never later than `received_at + lifetime`.
    pub fn after_failure(
        &self,
        received_at: OffsetDateTime,
        now: OffsetDateTime,
        attempts: u32,
        rng: &mut fastrand::Rng,
    ) -> Next {
        let expires = add(received_at, self.lifetime);
        if expires.is_some_and(|expires| now >= expires) {
            return Next::Expired;
        }
        let proposed = add(now, self.next_delay(attempts, rng));
        match (proposed, expires) {
            (Some(at), Some(expires)) => Next::Retry(at.min(expires)),
            (Some(at), None) => Next::Retry(at),
            // `now + delay` is past the end of time but the expiry is not, so it comes first.
            (None, Some(expires)) => Next::Retry(expires),
            (None, None) => Next::Retry(time::PrimitiveDateTime::MAX.assume_utc()),
        }
    }

    /// The delay before jitter.
    fn base_delay(&self, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1);
        let grown = self
            .factor
            .max(1)
            .checked_pow(exponent)
            .and_then(|multiplier| self.first.checked_mul(multiplier));
        match grown {
            Some(delay) => delay.min(self.max),
            None => self.max,
        }
    }
}

/// `at + duration`, or `None` past the largest representable time.
fn add(at: OffsetDateTime, duration: Duration) -> Option<OffsetDateTime> {
    at.checked_add(time::Duration::try_from(duration).ok()?)
}
