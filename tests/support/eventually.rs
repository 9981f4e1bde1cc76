//! Revocation reaches the bearer endpoints within `revocation.max_staleness`,
//! not at once: tests poll for it against a deadline instead of sleeping.

use std::future::Future;
use std::time::{Duration, Instant};

/// Calls `probe` until it yields something, for at most `limit`; what it
/// yielded and how long that took, or `None` past the deadline.
pub async fn within<T, F, Fut>(limit: Duration, mut probe: F) -> Option<(T, Duration)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(found) = probe().await {
            return Some((found, started.elapsed()));
        }
        if started.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
