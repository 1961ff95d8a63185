//! Topic names and subscription patterns (`publish`, `subscribe`, `listen`,
//! `topic config`), and the matcher every `publish` runs per subscription.
//!
//! Input: `pattern \n topic`. Properties: never panics; every valid topic is
//! a valid pattern that matches itself; `+` matches every topic; `matches`
//! agrees with a simple dynamic-programming oracle (and, being run under
//! libFuzzer's `-timeout`, finishes quickly on any valid pair).
#![no_main]

use libfuzzer_sys::fuzz_target;
use litebroker::topic::{is_wildcard, matches, validate_pattern, validate_topic};

/// `ok[i][j]`: the first `i` pattern words match the first `j` topic words.
fn oracle(pattern: &str, topic: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let t: Vec<&str> = topic.split('.').collect();
    let mut ok = vec![vec![false; t.len() + 1]; p.len() + 1];
    ok[0][0] = true;
    for i in 1..=p.len() {
        for j in 1..=t.len() {
            ok[i][j] = match p[i - 1] {
                "+" => (0..j).any(|k| ok[i - 1][k]),
                "=" => ok[i - 1][j - 1],
                w => w == t[j - 1] && ok[i - 1][j - 1],
            };
        }
    }
    ok[p.len()][t.len()]
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, topic) = text.split_once('\n').unwrap_or((text, text));
    let topic_ok = validate_topic(topic).is_ok();
    let pattern_ok = validate_pattern(pattern).is_ok();
    if topic_ok {
        validate_pattern(topic).expect("a topic is a pattern");
        assert!(!is_wildcard(topic));
        assert!(matches(topic, topic));
        assert!(matches("+", topic));
    }
    if topic_ok && pattern_ok {
        assert_eq!(
            matches(pattern, topic),
            oracle(pattern, topic),
            "{pattern:?} vs {topic:?}"
        );
    }
});
