//! Backoff and a retry budget.
//!
//! Why a budget and not only max attempts (tower's `retry::budget`): when a whole cluster is down, every
//! operation retrying N times multiplies the load by N exactly when the cluster can least take it. A budget
//! lets retries be at most a fraction (20%) of recent first attempts, plus a small reserve (10 per second)
//! so a quiet client can still retry. Backoff uses full jitter (AWS architecture blog, "Exponential Backoff
//! And Jitter"): a uniform delay in `[0, min(max, base * 2^attempt)]`.

use super::options::RetryOptions;

/// Tokens each first attempt adds.
const DEPOSIT: f64 = 0.2;
/// Tokens the reserve refills per second, and its cap.
const RESERVE_PER_SECOND: f64 = 10.0;
/// Most tokens the budget holds.
const MAX_TOKENS: f64 = 100.0;

/// A token bucket for retries.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    tokens: f64,
    last_refill_ms: Option<u64>,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget { tokens: RESERVE_PER_SECOND, last_refill_ms: None }
    }
}

impl RetryBudget {
    /// A first attempt was made.
    pub fn deposit(&mut self) {
        self.tokens = (self.tokens + DEPOSIT).min(MAX_TOKENS);
    }

    /// Takes a token for a retry; `false` means the budget is spent and the operation should fail now.
    pub fn withdraw(&mut self, now_ms: u64) -> bool {
        if let Some(last) = self.last_refill_ms {
            let refill = now_ms.saturating_sub(last) as f64 / 1000.0 * RESERVE_PER_SECOND;
            if self.tokens < RESERVE_PER_SECOND {
                self.tokens = (self.tokens + refill).min(RESERVE_PER_SECOND);
            }
        }
        self.last_refill_ms = Some(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Full-jitter delay before retry number `attempt` (1 for the first retry).
pub fn backoff_ms(options: &RetryOptions, attempt: u32, rng: &mut fastrand::Rng) -> u64 {
    let exp = options.base_delay_ms.saturating_mul(1u64 << attempt.min(20));
    let cap = exp.min(options.max_delay_ms);
    rng.u64(0..=cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_budget_refuses_retries_until_the_reserve_refills() {
        let mut b = RetryBudget::default();
        let granted = (0..50).filter(|_| b.withdraw(1000)).count();
        assert_eq!(granted, 10, "the reserve allows 10 retries at once");
        assert!(!b.withdraw(1000));
        assert!(b.withdraw(1200), "two tokens back after 200 ms");
        for _ in 0..10 {
            b.deposit();
        }
        assert!(b.withdraw(1200), "first attempts earn retries");
    }

    #[test]
    fn backoff_is_jittered_within_the_capped_exponential() {
        let o = RetryOptions { max_attempts: 5, base_delay_ms: 25, max_delay_ms: 1000 };
        let mut rng = fastrand::Rng::with_seed(7);
        for attempt in 1..10 {
            let cap = (25u64 << attempt).min(1000);
            for _ in 0..100 {
                assert!(backoff_ms(&o, attempt, &mut rng) <= cap);
            }
        }
    }
}
