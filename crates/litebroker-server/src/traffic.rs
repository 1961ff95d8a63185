//! Traffic for the dashboard: messages in and out of each queue over the
//! last minutes, whoever wrote or read them (this server, the CLI, another
//! host). The server samples the database every few seconds:
//!
//! - **in** is what the storage says arrived since the last sample (every
//!   message with a newer id, consumed or not: [`Backend::arrivals`]), or
//!   the rise in depth if that is more (messages moved or dead-lettered in
//!   keep their ids);
//! - **out** is in minus the change in depth (visible + leased + delayed),
//!   so reads, acks, moves away and purges all count.
//!
//! A sample costs one count of the queues (the same as an overview) and
//! one look at the newest ids. So the sampler keeps the usual pace only
//! while someone has looked at the dashboard in the last ten minutes (six
//! times slower otherwise, so the charts still cover the last half hour
//! when someone comes), and it always waits at least 200 times as long as
//! the last sample took (at most 12 times the usual pace): sampling costs
//! at most 0.5% of a core, however large the database. A message written and then removed by
//! `--vacuum` between two samples is not seen arriving (the vacuum removes
//! only consumed messages, and only when asked).
//!
//! [`Backend::arrivals`]: litebroker::backend::Backend::arrivals

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use litebroker::Broker;

use crate::error::ApiResult;
use crate::AppState;

/// Intervals kept (five minutes at the usual pace).
pub const SAMPLES: usize = 60;
/// The usual time between samples.
pub const EVERY: Duration = Duration::from_secs(5);
/// How much slower the sampler goes while nobody looks.
const UNWATCHED: u32 = 6;
/// How long after the last look the dashboard counts as watched.
const WATCHED_FOR: Duration = Duration::from_secs(600);
/// The least pause, in multiples of the last sample's time.
const COST: u32 = 200;

/// What one sample read.
struct Reading {
    now_ms: i64,
    mark: i64,
    arrived: HashMap<String, u64>,
    depth: HashMap<String, u64>,
}

/// In and out counts of one queue, one entry per kept interval (oldest first).
#[derive(Default, Clone)]
struct Counts {
    r#in: VecDeque<u64>,
    out: VecDeque<u64>,
}

/// The series so far.
#[derive(Default)]
pub struct Series {
    /// The newest id counted.
    mark: Option<i64>,
    /// Depth of each queue at the last sample.
    depth: HashMap<String, u64>,
    /// When the first kept interval began (database clock, Unix ms).
    start_ms: Option<i64>,
    /// When each kept interval ended.
    ends_ms: VecDeque<i64>,
    /// Per queue with traffic in some kept interval.
    queues: HashMap<String, Counts>,
}

/// One queue's traffic as the overview sends it: counts per interval.
#[derive(serde::Serialize, Clone, PartialEq, Debug, utoipa::ToSchema)]
pub struct QueueTraffic {
    /// Messages in, per interval.
    pub r#in: Vec<u64>,
    /// Messages out, per interval.
    pub out: Vec<u64>,
}

/// When the intervals were, as the overview sends them.
#[derive(serde::Serialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct Timeline {
    /// When the first interval began (Unix ms, database clock).
    pub start_ms: i64,
    /// When each interval ended; interval `i` began where `i - 1` ended.
    pub ends_ms: Vec<i64>,
}

impl Series {
    /// Adds one sample: the interval since the previous one.
    fn record(&mut self, r: Reading) {
        let Some(_) = self.mark else {
            // The first look only sets where counting starts.
            self.mark = Some(r.mark);
            self.depth = r.depth;
            self.start_ms = Some(r.now_ms);
            return;
        };
        // Every queue there now, there before, or written to in between.
        let names: std::collections::BTreeSet<&String> = r
            .depth
            .keys()
            .chain(self.depth.keys())
            .chain(r.arrived.keys())
            .collect();
        let width = self.ends_ms.len();
        for name in names {
            let before = self.depth.get(name).copied().unwrap_or(0) as i64;
            let after = r.depth.get(name).copied().unwrap_or(0) as i64;
            let rise = after - before;
            let arrived = r.arrived.get(name).copied().unwrap_or(0) as i64;
            let r#in = arrived.max(rise).max(0);
            let out = r#in - rise;
            if r#in == 0 && out == 0 && !self.queues.contains_key(name) {
                continue;
            }
            let c = self.queues.entry(name.clone()).or_insert_with(|| Counts {
                r#in: std::iter::repeat_n(0, width).collect(),
                out: std::iter::repeat_n(0, width).collect(),
            });
            c.r#in.push_back(r#in as u64);
            c.out.push_back(out as u64);
        }
        // Queues with no entry this time got none: pad them.
        for c in self.queues.values_mut() {
            if c.r#in.len() == width {
                c.r#in.push_back(0);
                c.out.push_back(0);
            }
        }
        self.ends_ms.push_back(r.now_ms);
        if self.ends_ms.len() > SAMPLES {
            let first_end = self.ends_ms.pop_front();
            self.start_ms = first_end.or(self.start_ms);
            self.queues.retain(|_, c| {
                c.r#in.pop_front();
                c.out.pop_front();
                c.r#in.iter().chain(&c.out).any(|&n| n > 0)
            });
        }
        self.mark = Some(r.mark);
        self.depth = r.depth;
    }

    /// When the kept intervals were (none before the second sample).
    pub fn timeline(&self) -> Option<Timeline> {
        Some(Timeline {
            start_ms: self.start_ms?,
            ends_ms: self.ends_ms.iter().copied().collect(),
        })
    }

    /// One queue's counts, if it had traffic in a kept interval.
    pub fn queue(&self, name: &str) -> Option<QueueTraffic> {
        self.queues.get(name).map(|c| QueueTraffic {
            r#in: c.r#in.iter().copied().collect(),
            out: c.out.iter().copied().collect(),
        })
    }
}

/// The sampler's results, shared with the dashboard's routes.
#[derive(Default)]
pub struct Traffic {
    series: Mutex<Series>,
    /// When the dashboard last asked for an overview.
    viewed: Mutex<Option<Instant>>,
    /// Wakes the sampler when someone comes back after a while.
    wake: tokio::sync::Notify,
}

impl Traffic {
    /// Someone is looking at the dashboard: sample at the usual pace.
    pub fn viewed(&self) {
        let now = Instant::now();
        let before = self
            .viewed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(now);
        if before.is_none_or(|t| now.duration_since(t) >= WATCHED_FOR) {
            self.wake.notify_one();
        }
    }

    fn watched(&self) -> bool {
        self.viewed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|t| t.elapsed() < WATCHED_FOR)
    }

    /// Reads the series.
    pub fn with<T>(&self, f: impl FnOnce(&Series) -> T) -> T {
        f(&self.series.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn record(&self, r: Reading) {
        self.series
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(r);
    }

    fn mark(&self) -> Option<i64> {
        self.with(|s| s.mark)
    }
}

fn read(b: &mut Broker, mark: Option<i64>) -> ApiResult<Reading> {
    let start = match mark {
        Some(m) => m,
        None => b.last_id()?,
    };
    let arrivals = b.backend().arrivals(start)?;
    let queues = b.list()?;
    let now_ms = b.now_ns()?.div_euclid(1_000_000);
    Ok(Reading {
        now_ms,
        mark: arrivals.last_id,
        arrived: arrivals.queues.into_iter().collect(),
        depth: queues
            .into_iter()
            .map(|q| (q.name, q.pending + q.leased + q.delayed))
            .collect(),
    })
}

/// Samples, about every `every`, until the server stops. A failed sample
/// (the database away) is skipped: the next one covers the whole gap.
pub async fn run(state: AppState, every: Duration) {
    let mut stopping = state.stopping.clone();
    loop {
        let began = Instant::now();
        let mark = state.traffic.mark();
        match state.pool.run(move |b| read(b, mark)).await {
            Ok(r) => state.traffic.record(r),
            Err(e) => tracing::debug!("traffic sample skipped: {}", e.message),
        }
        // The first sample opens a connection: its time says nothing.
        let took = if mark.is_some() {
            began.elapsed()
        } else {
            Duration::ZERO
        };
        let pace = if state.traffic.watched() {
            every
        } else {
            every * UNWATCHED
        };
        let pause = pace.max(took * COST).min(every * 12);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = state.traffic.wake.notified() => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(now_ms: i64, mark: i64, arrived: &[(&str, u64)], depth: &[(&str, u64)]) -> Reading {
        let map = |v: &[(&str, u64)]| v.iter().map(|(n, c)| (n.to_string(), *c)).collect();
        Reading {
            now_ms,
            mark,
            arrived: map(arrived),
            depth: map(depth),
        }
    }

    #[test]
    fn in_is_arrivals_and_out_is_what_left() {
        let mut s = Series::default();
        s.record(reading(1_000, 10, &[], &[("a", 5), ("idle", 2)]));
        assert!(
            s.timeline().unwrap().ends_ms.is_empty(),
            "one look is no interval"
        );
        // 4 arrived at a, depth 5 -> 6: 3 left.
        s.record(reading(6_000, 14, &[("a", 4)], &[("a", 6), ("idle", 2)]));
        assert_eq!(
            s.timeline().unwrap(),
            Timeline {
                start_ms: 1_000,
                ends_ms: vec![6_000]
            }
        );
        assert_eq!(s.queue("a").unwrap().r#in, [4]);
        assert_eq!(s.queue("a").unwrap().out, [3]);
        assert!(s.queue("idle").is_none(), "no traffic, no series");
        // A dead-letter queue grows by moves (no new ids): in is the rise.
        s.record(reading(
            11_000,
            14,
            &[],
            &[("a", 4), ("dlq", 2), ("idle", 2)],
        ));
        assert_eq!(s.queue("a").unwrap().out, [3, 2]);
        assert_eq!(
            s.queue("dlq").unwrap().r#in,
            [0, 2],
            "padded before it began"
        );
        assert_eq!(s.queue("dlq").unwrap().out, [0, 0]);
        // A purged queue vanishes: its depth left.
        s.record(reading(16_000, 14, &[], &[("dlq", 2), ("idle", 2)]));
        assert_eq!(s.queue("a").unwrap().out, [3, 2, 4]);
        assert_eq!(s.queue("a").unwrap().r#in, [4, 0, 0]);
        assert_eq!(s.queue("dlq").unwrap().r#in, [0, 2, 0]);
    }

    #[test]
    fn only_the_last_intervals_are_kept_and_quiet_queues_drop_out() {
        let mut s = Series::default();
        s.record(reading(0, 0, &[], &[]));
        s.record(reading(5, 1, &[("a", 1)], &[("a", 1)]));
        for i in 2..(SAMPLES as i64 + 2) {
            s.record(reading(i * 5, 1, &[], &[("a", 1)]));
        }
        let t = s.timeline().unwrap();
        assert_eq!(t.ends_ms.len(), SAMPLES);
        assert_eq!(t.start_ms, 5, "the first interval's end is the next start");
        assert!(s.queue("a").is_none(), "its one arrival has aged out");
    }
}
