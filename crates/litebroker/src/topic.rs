//! Topic names and subscription patterns, as in the PubSub seed.
//!
//! A topic is one or more dot-separated words of `[A-Za-z0-9-]`
//! (`orders.eu.created`). A pattern is a topic whose words may also be
//! wildcards: `=` matches exactly one word, `+` matches one or more words
//! (`logs.=.error`, `news.+`). Publishing goes to topics only; subscribing
//! takes patterns.

/// Longest topic or pattern, in bytes (a subscription's pattern is stored with it).
pub const MAX_TOPIC_LEN: usize = 512;

/// Why a topic or pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid {kind} '{text}': {reason}")]
pub struct TopicError {
    /// `topic` or `pattern`.
    pub kind: &'static str,
    /// The text as given (shortened).
    pub text: String,
    /// What is wrong.
    pub reason: &'static str,
}

fn refuse(kind: &'static str, text: &str, reason: &'static str) -> TopicError {
    TopicError {
        kind,
        text: text.chars().take(80).collect(),
        reason,
    }
}

fn is_word(w: &str) -> bool {
    !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn check_shape(kind: &'static str, text: &str) -> Result<(), TopicError> {
    if text.is_empty() {
        return Err(refuse(kind, text, "cannot be empty"));
    }
    if text.len() > MAX_TOPIC_LEN {
        return Err(refuse(kind, text, "exceeds 512 characters"));
    }
    if text.split('.').any(str::is_empty) {
        return Err(refuse(
            kind,
            text,
            "words cannot be empty (no leading, trailing or double dots)",
        ));
    }
    Ok(())
}

/// Checks a concrete topic (what `publish` takes).
pub fn validate_topic(topic: &str) -> Result<(), TopicError> {
    check_shape("topic", topic)?;
    if topic.split('.').any(|w| w == "=" || w == "+") {
        return Err(refuse(
            "topic",
            topic,
            "wildcards (= and +) are for subscriptions; publish to a concrete topic",
        ));
    }
    if !topic.split('.').all(is_word) {
        return Err(refuse(
            "topic",
            topic,
            "words may contain only letters, digits and hyphens, separated by dots",
        ));
    }
    Ok(())
}

/// Checks a subscription pattern.
pub fn validate_pattern(pattern: &str) -> Result<(), TopicError> {
    check_shape("pattern", pattern)?;
    if !pattern
        .split('.')
        .all(|w| w == "=" || w == "+" || is_word(w))
    {
        return Err(refuse(
            "pattern",
            pattern,
            "words may contain only letters, digits and hyphens, or be = (one word) or + (one or more)",
        ));
    }
    Ok(())
}

/// Whether a pattern has any wildcard (otherwise it names exactly one topic).
pub fn is_wildcard(pattern: &str) -> bool {
    pattern.split('.').any(|w| w == "=" || w == "+")
}

/// Whether `topic` matches `pattern` (both assumed valid).
pub fn matches(pattern: &str, topic: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let t: Vec<&str> = topic.split('.').collect();
    match_words(&p, &t)
}

/// Word-by-word matching in O(pattern words × topic words): after each
/// pattern word, which prefixes of the topic it can have matched. (Trying
/// every split of every `+` instead is exponential: a pattern of a dozen
/// `+` against a long topic would hold the publisher's write lock for ever.)
fn match_words(p: &[&str], t: &[&str]) -> bool {
    if !p.contains(&"+") {
        return p.len() == t.len() && p.iter().zip(t).all(|(w, word)| *w == "=" || w == word);
    }
    // at[j]: the pattern words so far can match exactly t[..j].
    let mut at = vec![false; t.len() + 1];
    at[0] = true;
    let mut next = vec![false; t.len() + 1];
    for w in p {
        next[0] = false;
        let mut earlier = false; // some at[k] with k < j
        for j in 1..=t.len() {
            next[j] = if *w == "+" {
                earlier |= at[j - 1];
                earlier
            } else {
                at[j - 1] && (*w == "=" || *w == t[j - 1])
            };
        }
        std::mem::swap(&mut at, &mut next);
        if !at.contains(&true) {
            return false;
        }
    }
    at[t.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_one_or_more_words_match_in_polynomial_time() {
        // Backtracking over every split of twelve `+` took for ever here.
        let pattern = format!("{}z", "+.".repeat(12));
        let long = vec!["w"; 60].join(".");
        assert!(!matches(&pattern, &long));
        assert!(matches(&pattern, &format!("{long}.z")));
        assert!(!matches(&pattern, "w.w.w"));
        assert!(matches("+.=.+", "a.b.c"));
        assert!(!matches("+.=.+", "a.b"));
    }

    #[test]
    fn valid_and_invalid_topics() {
        for ok in ["a", "news.sports", "orders.eu-west.created", "A1.b2", "x-y"] {
            validate_topic(ok).unwrap();
        }
        for bad in [
            "", ".a", "a.", "a..b", "a b", "a_b", "a/b", "news.=", "+", "é", "a.*",
        ] {
            assert!(validate_topic(bad).is_err(), "{bad:?}");
        }
        assert!(validate_topic(&"a".repeat(513)).is_err());
    }

    #[test]
    fn valid_and_invalid_patterns() {
        for ok in [
            "news.=",
            "news.+",
            "=",
            "+",
            "logs.=.error",
            "a.+.z",
            "plain",
        ] {
            validate_pattern(ok).unwrap();
        }
        for bad in ["", "news.*", "news.#", "a..b", "news.=x", "+a", "a b"] {
            assert!(validate_pattern(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn seed_examples() {
        assert!(matches("news.=", "news.sports"));
        assert!(matches("news.=", "news.tech"));
        assert!(!matches("news.=", "news.sports.football"));
        assert!(!matches("news.=", "news"));
        assert!(matches("news.+", "news.sports"));
        assert!(matches("news.+", "news.sports.football"));
        assert!(!matches("news.+", "news"));
        assert!(matches("logs.=.error", "logs.api.error"));
        assert!(!matches("logs.=.error", "logs.api.warn"));
        assert!(matches("a.+.z", "a.b.c.z"));
        assert!(!matches("a.+.z", "a.z"));
        assert!(matches("plain", "plain"));
        assert!(!matches("plain", "plainer"));
        assert!(matches("+", "anything.at.all"));
        assert!(matches("=.+", "a.b"));
        assert!(!matches("=.+", "a"));
        assert!(!matches("News", "news"), "case-sensitive");
    }

    #[test]
    fn wildcard_detection() {
        assert!(is_wildcard("a.="));
        assert!(is_wildcard("+"));
        assert!(!is_wildcard("a.b"));
    }
}
