//! `BROKER_*` environment values: `Settings::from_lookup` (the Python
//! `int()`/`float()` ports, booleans, paths) and the watcher schedule built
//! from them (`watch`, `listen`, `run` all use it).
//!
//! Input: lines `<selector byte><value>`; the selector picks the variable.
//! Properties: never panics, neither while parsing nor while computing the
//! watcher's pauses from accepted settings (class of defect D5); accepted
//! values respect their documented ranges.
#![no_main]

use std::collections::HashMap;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use litebroker::location::validate_path_text;
use litebroker::backend::sqlite::feed::Schedule;
use litebroker::Settings;

const VARS: &[&str] = &[
    "BROKER_BUSY_TIMEOUT",
    "BROKER_CACHE_MB",
    "BROKER_SYNC_MODE",
    "BROKER_WAL_AUTOCHECKPOINT",
    "BROKER_READ_COMMIT_INTERVAL",
    "BROKER_GENERATOR_BATCH_SIZE",
    "BROKER_AUTO_VACUUM",
    "BROKER_AUTO_VACUUM_INTERVAL",
    "BROKER_VACUUM_THRESHOLD",
    "BROKER_VACUUM_BATCH_SIZE",
    "BROKER_VACUUM_LOCK_TIMEOUT",
    "BROKER_SKIP_IDLE_CHECK",
    "BROKER_JITTER_FACTOR",
    "BROKER_INITIAL_CHECKS",
    "BROKER_MAX_INTERVAL",
    "BROKER_BURST_SLEEP",
    "BROKER_DEBUG",
    "BROKER_LOGGING_ENABLED",
    "BROKER_DEFAULT_DB_LOCATION",
    "BROKER_DEFAULT_DB_NAME",
    "BROKER_PROJECT_SCOPE",
    "BROKER_MAX_MESSAGE_SIZE",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut env = HashMap::new();
    for line in text.split('\n') {
        let mut chars = line.chars();
        let Some(selector) = chars.next() else {
            continue;
        };
        let var = VARS[selector as usize % VARS.len()];
        env.insert(var, chars.as_str().to_owned());
    }
    for value in env.values() {
        let _ = validate_path_text(value, "fuzz");
    }
    let Ok(settings) = Settings::from_lookup(|k| env.get(k).cloned()) else {
        return;
    };
    if let Some(n) = settings.read_commit_interval {
        assert!(n >= 1, "read_commit_interval {n}");
    }
    let schedule = Schedule::from_settings(&settings);
    assert!((0.0..=1.0).contains(&schedule.jitter) || schedule.jitter.is_nan());
    let ceiling = Duration::from_secs(3600 * 2);
    for idle in [
        0,
        1,
        settings.poll.initial_checks,
        settings.poll.initial_checks.saturating_add(50),
        u64::MAX,
    ] {
        let pause = schedule.delay(idle);
        assert!(pause <= ceiling, "pause {pause:?} after {idle} idle checks");
    }
});
