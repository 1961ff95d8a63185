//! Request counts and latency histograms by route and status, kept in memory
//! and written in the Prometheus text format together with per-queue gauges.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Request metrics.
#[derive(Default)]
pub struct Metrics {
    // (method, route template, status) → series
    series: Mutex<BTreeMap<(String, String, u16), Series>>,
}

impl Metrics {
    /// Records one answered request. `route` is the route's template (never
    /// the concrete path, which may hold ids or receipts).
    pub fn record(&self, method: &str, route: &str, status: u16, took: Duration) {
        let secs = took.as_secs_f64();
        let mut map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let s = map
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default();
        s.count += 1;
        s.sum += secs;
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                s.buckets[i] += 1;
            }
        }
    }

    /// The request series in the Prometheus text format.
    pub fn render_requests(&self, out: &mut String) {
        let map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str(
            "# HELP litebroker_http_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE litebroker_http_requests_total counter\n");
        for ((method, route, status), s) in map.iter() {
            let _ = writeln!(
                out,
                "litebroker_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {}",
                escape(route),
                s.count
            );
        }
        out.push_str("# HELP litebroker_http_request_duration_seconds Time to answer, by route and status.\n");
        out.push_str("# TYPE litebroker_http_request_duration_seconds histogram\n");
        for ((method, route, status), s) in map.iter() {
            let labels = format!(
                "method=\"{method}\",route=\"{}\",status=\"{status}\"",
                escape(route)
            );
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "litebroker_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "litebroker_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "litebroker_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "litebroker_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
    }
}

/// The group committer's counts: requests of each kind (queue writes,
/// takes: reads and leases, acks), and the transactions they took (fewer
/// commits than requests means they were grouped).
pub fn render_commits(out: &mut String, stats: &crate::commit::CommitStats) {
    use std::sync::atomic::Ordering;
    for (kind, what, counts) in [
        ("write", "Queue write requests", &stats.writes),
        ("take", "Queue read and lease requests", &stats.takes),
        ("ack", "Ack requests", &stats.acks),
    ] {
        let _ = writeln!(
            out,
            "# HELP litebroker_{kind}_requests_total {what} through the group committer."
        );
        let _ = writeln!(out, "# TYPE litebroker_{kind}_requests_total counter");
        let _ = writeln!(
            out,
            "litebroker_{kind}_requests_total {}",
            counts.requests.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP litebroker_{kind}_commits_total Transactions the group committer ran for them."
        );
        let _ = writeln!(out, "# TYPE litebroker_{kind}_commits_total counter");
        let _ = writeln!(
            out,
            "litebroker_{kind}_commits_total {}",
            counts.commits.load(Ordering::Relaxed)
        );
    }
}

/// Per-queue gauges from the queues' stats.
pub fn render_queues(out: &mut String, queues: &[litebroker::QueueStats]) {
    type Gauge = (
        &'static str,
        &'static str,
        fn(&litebroker::QueueStats) -> u64,
    );
    let gauges: [Gauge; 3] = [
        (
            "litebroker_queue_depth",
            "Visible messages per queue.",
            |q| q.pending,
        ),
        (
            "litebroker_queue_leased",
            "Leased messages per queue.",
            |q| q.leased,
        ),
        (
            "litebroker_queue_delayed",
            "Delayed messages per queue.",
            |q| q.delayed,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for q in queues {
            let _ = writeln!(out, "{name}{{queue=\"{}\"}} {}", escape(&q.name), value(q));
        }
    }
    // Dead letters: what waits in the queues configured as some queue's
    // dead-letter queue.
    let dlqs: std::collections::BTreeSet<&str> = queues
        .iter()
        .filter_map(|q| q.config.dead_letter.as_deref())
        .collect();
    let name = "litebroker_queue_dead_letters";
    let _ = writeln!(
        out,
        "# HELP {name} Messages in each dead-letter queue.\n# TYPE {name} gauge"
    );
    for dlq in dlqs {
        let n = queues
            .iter()
            .find(|q| q.name == dlq)
            .map_or(0, |q| q.pending + q.leased + q.delayed);
        let _ = writeln!(out, "{name}{{queue=\"{}\"}} {n}", escape(dlq));
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let m = Metrics::default();
        m.record("GET", "/health", 200, Duration::from_micros(200));
        m.record("GET", "/health", 200, Duration::from_millis(30));
        let mut out = String::new();
        m.render_requests(&mut out);
        assert!(out.contains(
            "litebroker_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 2"
        ));
        assert!(out.contains("status=\"200\",le=\"0.0005\"} 1"));
        assert!(out.contains("status=\"200\",le=\"0.05\"} 2"));
        assert!(out.contains("status=\"200\",le=\"+Inf\"} 2"));
    }
}
