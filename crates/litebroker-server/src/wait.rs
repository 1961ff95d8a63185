//! Long-polling: look, and if nothing is there, wait for the change feed
//! (or the next leased/delayed message's own time) and look again, until
//! the client's `wait` runs out or the server stops.

use std::time::{Duration, Instant};

use litebroker::Broker;

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

/// Runs `look` (on the blocking pool) until it finds something or `wait`
/// passes. `look` returns what it found and, if nothing, how long until a
/// leased or delayed message of the queue becomes visible by itself.
pub async fn poll<T, F>(state: &AppState, wait: Duration, look: F) -> ApiResult<Vec<T>>
where
    T: Send + 'static,
    F: Fn(&mut Broker) -> ApiResult<(Vec<T>, Option<Duration>)> + Clone + Send + 'static,
{
    if wait.is_zero() {
        return Ok(state.pool.run(move |b| look(b)).await?.0);
    }
    let deadline = Instant::now() + wait;
    let _watching = state.changes.watch().await;
    let mut stopping = state.stopping.clone();
    loop {
        let notified = state.changes.notify().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let f = look.clone();
        let (found, next_visible) = state.pool.run(move |b| f(b)).await?;
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
