//! Long-polling: look, and if nothing is there, wait for the change feed
//! (or the next leased/delayed message's own time) and look again, until
//! the client's `wait` runs out or the server stops.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::commit::Take;

use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Parses a client's `wait=` (a litebroker duration: `5s`, `500ms`, `20`),
/// refusing more than the server's maximum.
pub fn parse_wait(state: &AppState, text: Option<&str>) -> ApiResult<Duration> {
    let Some(text) = text else {
        return Ok(Duration::ZERO);
    };
    let d =
        litebroker::duration::parse_duration(text).map_err(|e| ApiError::invalid(e.to_string()))?;
    if d > state.max_wait {
        return Err(ApiError::invalid(format!(
            "wait cannot be longer than {}",
            litebroker::duration::format_duration(state.max_wait)
        )));
    }
    Ok(d)
}

/// Runs `look` until it finds something or `wait` passes. `look` returns
/// what it found and, if nothing, how long until a leased or delayed
/// message of the queue becomes visible by itself. It runs its library
/// calls itself (on the blocking pool, or through the group committer).
pub async fn poll<T, F, Fut>(state: &AppState, wait: Duration, look: F) -> ApiResult<Vec<T>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ApiResult<(Vec<T>, Option<Duration>)>>,
{
    if wait.is_zero() {
        return Ok(look().await?.0);
    }
    let deadline = Instant::now() + wait;
    let _watching = state.changes.watch().await;
    let mut stopping = state.stopping.clone();
    loop {
        let notified = state.changes.notify().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (found, next_visible) = look().await?;
        let now = Instant::now();
        if !found.is_empty() || now >= deadline || *stopping.borrow() {
            return Ok(found);
        }
        let until = next_visible.map_or(deadline, |d| deadline.min(now + d));
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(until.into()) => {}
            _ = stopping.changed() => {}
        }
    }
}

/// [`poll`] for a take through the group committer.
pub async fn poll_take(
    state: &AppState,
    wait: Duration,
    queue: &str,
    how: Take,
    limit: usize,
) -> ApiResult<Vec<litebroker::Message>> {
    poll(state, wait, || async {
        let taken = state.commits.take(queue.to_owned(), how, limit).await?;
        Ok((taken.messages, taken.next_visible))
    })
    .await
}
