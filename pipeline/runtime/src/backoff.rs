//! The one backoff policy of Herald: exponential (`backon`'s sequence), capped,
//! optionally with full jitter (AWS Architecture Blog, "Exponential Backoff And
//! Jitter", 2015: uniform in `[0, delay]`; backon's own jitter adds up to 100% instead).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Exponential backoff from `min`, doubling per attempt, at most `max`.
///
/// ```
/// use std::time::Duration;
/// use herald_runtime::backoff::Backoff;
/// let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
/// assert_eq!(b.delay(1), Duration::from_millis(100));
/// assert_eq!(b.delay(3), Duration::from_millis(400));
/// assert_eq!(b.delay(50), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    jitter: bool,
}

impl Backoff {
    /// A redelivered stage input waits `100 ms · 2^(delivery−1)`, at most 10 s.
    pub const STAGE: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));

    /// Doubling from `min` to `max`, no jitter.
    pub const fn new(min: Duration, max: Duration) -> Self {
        Backoff { min, max, jitter: false }
    }

    /// The same with full jitter: each delay is uniform in `[0, delay]`, so many clients
    /// that failed together do not retry together.
    pub const fn with_jitter(self) -> Self {
        Backoff { jitter: true, ..self }
    }

    fn builder(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .without_max_times()
    }

    /// The delay before attempt `attempt + 1`, after `attempt` failures (1 = the first).
    pub fn delay(&self, attempt: u32) -> Duration {
        let n = attempt.clamp(1, 64) as usize;
        self.delays().nth(n - 1).unwrap_or(self.max)
    }

    /// The delays in order, without end, to the millisecond (`backon` multiplies in
    /// floating point).
    pub fn delays(&self) -> impl Iterator<Item = Duration> {
        let (max, jitter) = (self.max, self.jitter);
        self.builder().build().map(move |d| {
            let d = Duration::from_millis((d.as_secs_f64() * 1000.0).round() as u64).min(max);
            match jitter {
                true => d.mul_f64(rand::random::<f64>()),
                false => d,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_jitters_below_the_cap() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        let first: Vec<_> = b.delays().take(4).collect();
        assert_eq!(first, [100, 200, 400, 800].map(Duration::from_millis));
        assert_eq!(b.delay(2), Duration::from_millis(200));
        let j = b.with_jitter();
        for n in 1..20 {
            assert!(j.delay(n) <= b.delay(n), "{n}: full jitter stays under the delay");
        }
        let spread: std::collections::HashSet<_> = (0..20).map(|_| j.delay(5)).collect();
        assert!(spread.len() > 1, "jitter varies the delay");
    }
}
