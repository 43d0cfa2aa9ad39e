//! Reconnection delays: exponential with "equal jitter".
//!
//! Pure, so that the schedule is tested without sleeping; the link task supplies the random
//! number.

use std::time::Duration;

/// Returns the delay before reconnection attempt `attempt` (0 for the first retry after a
/// failure). The base delay doubles from `initial` up to `max`; `jitter_unit` in `[0, 1)` then
/// picks a delay in `[base / 2, base)`, so that many nodes that lost the same peer at the same
/// moment do not all reconnect in lockstep, while no delay falls below half the schedule.
pub fn backoff_delay(attempt: u32, initial: Duration, max: Duration, jitter_unit: f64) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
    let base = initial.saturating_mul(factor).min(max);
    let jitter_unit = jitter_unit.clamp(0.0, 1.0);
    base / 2 + base.mul_f64(jitter_unit / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INITIAL: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    #[test]
    fn doubles_until_the_cap() {
        let delays: Vec<u128> = (0..10)
            .map(|attempt| backoff_delay(attempt, INITIAL, MAX, 1.0).as_millis())
            .collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
    }

    #[test]
    fn jitter_stays_within_half_and_whole() {
        assert_eq!(
            backoff_delay(2, INITIAL, MAX, 0.0),
            Duration::from_millis(20)
        );
        assert_eq!(
            backoff_delay(2, INITIAL, MAX, 0.5),
            Duration::from_millis(30)
        );
        assert_eq!(
            backoff_delay(40, INITIAL, MAX, 0.0),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn huge_attempts_do_not_overflow() {
        assert_eq!(backoff_delay(u32::MAX, INITIAL, MAX, 1.0), MAX);
        let huge = Duration::from_secs(u64::MAX / 4);
        assert_eq!(
            backoff_delay(u32::MAX, huge, Duration::MAX, 1.0),
            Duration::MAX
        );
    }
}
