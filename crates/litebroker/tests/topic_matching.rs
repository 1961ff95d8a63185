//! Property tests of the topic matcher: every generated pattern is checked
//! against an independent definition of `=` and `+`.

use litebroker::topic::{matches, validate_pattern, validate_topic};
use proptest::prelude::*;

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        "[a-z0-9-]{1,3}"
    ]
}

fn topic() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(word(), 1..6)
}

fn pattern() -> impl Strategy<Value = Vec<String>> {
    let part = prop_oneof![word(), Just("=".to_string()), Just("+".to_string())];
    prop::collection::vec(part, 1..5)
}

/// The definition, written independently: the set of word counts each
/// pattern prefix can consume, advanced one pattern word at a time.
fn reference_match(p: &[String], t: &[String]) -> bool {
    let mut reachable = vec![false; t.len() + 1];
    reachable[0] = true;
    for w in p {
        let mut next = vec![false; t.len() + 1];
        for (i, _) in reachable.iter().enumerate().filter(|(_, r)| **r) {
            match w.as_str() {
                "+" => (i + 1..=t.len()).for_each(|j| next[j] = true),
                "=" if i < t.len() => next[i + 1] = true,
                lit if i < t.len() && t[i] == lit => next[i + 1] = true,
                _ => {}
            }
        }
        reachable = next;
    }
    reachable[t.len()]
}

proptest! {
    #[test]
    fn agrees_with_the_definition(p in pattern(), t in topic()) {
        let (ps, ts) = (p.join("."), t.join("."));
        prop_assert!(validate_pattern(&ps).is_ok());
        prop_assert!(validate_topic(&ts).is_ok());
        prop_assert_eq!(matches(&ps, &ts), reference_match(&p, &t));
    }

    #[test]
    fn a_topic_matches_itself_and_only_itself_as_a_pattern(t in topic(), other in topic()) {
        let (ts, os) = (t.join("."), other.join("."));
        prop_assert!(matches(&ts, &ts));
        prop_assert_eq!(matches(&ts, &os), ts == os);
    }

    #[test]
    fn replacing_a_word_with_eq_still_matches(t in topic(), i in 0usize..6) {
        let i = i % t.len();
        let mut p = t.clone();
        p[i] = "=".into();
        prop_assert!(matches(&p.join("."), &t.join(".")));
        // `=` takes exactly one word: one more or one fewer word no longer matches.
        let mut longer = t.clone();
        longer.insert(i, "x".into());
        prop_assert!(!matches(&p.join("."), &longer.join(".")));
    }

    #[test]
    fn replacing_a_run_of_words_with_plus_still_matches(t in topic(), a in 0usize..6, b in 0usize..6) {
        let (a, b) = (a % t.len(), b % t.len());
        let (start, end) = (a.min(b), a.max(b));
        let mut p: Vec<String> = t[..start].to_vec();
        p.push("+".into());
        p.extend_from_slice(&t[end + 1..]);
        prop_assert!(matches(&p.join("."), &t.join(".")));
        // `+` needs at least one word.
        let mut without: Vec<String> = t[..start].to_vec();
        without.extend_from_slice(&t[end + 1..]);
        if !without.is_empty() {
            prop_assert!(!matches(&p.join("."), &without.join(".")));
        }
    }
}
