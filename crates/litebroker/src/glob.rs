//! Case-sensitive fnmatch-style globs (`*`, `?`, `[seq]`, `[!seq]`), as Python's
//! `fnmatch.fnmatchcase`, used by `list --pattern` and `broadcast --pattern`.

/// Whether `name` matches `pattern`.
pub fn matches(pattern: &str, name: &str) -> bool {
    let pat: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = name.chars().collect();
    match_from(&pat, &text)
}

fn match_from(pat: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match step(pat, p, text[t]) {
            Step::Star => {
                backtrack = Some((p + 1, t));
                p += 1;
                continue;
            }
            Step::Matched(next) => {
                p = next;
                t += 1;
                continue;
            }
            Step::Failed => {}
        }
        match backtrack {
            Some((bp, bt)) => {
                p = bp;
                t = bt + 1;
                backtrack = Some((bp, bt + 1));
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|&c| c == '*')
}

enum Step {
    Star,
    Matched(usize),
    Failed,
}

/// Tries to match one character `c` at pattern position `p`.
fn step(pat: &[char], p: usize, c: char) -> Step {
    match pat.get(p) {
        None => Step::Failed,
        Some('*') => Step::Star,
        Some('?') => Step::Matched(p + 1),
        Some('[') => match class(pat, p) {
            Some((set_matches, end)) if set_matches(c) => Step::Matched(end),
            Some(_) => Step::Failed,
            None if c == '[' => Step::Matched(p + 1),
            None => Step::Failed,
        },
        Some(&lit) if lit == c => Step::Matched(p + 1),
        Some(_) => Step::Failed,
    }
}

/// Parses a `[...]` class starting at `p`; returns a matcher and the index after `]`.
/// An unterminated class is a literal `[`, as in Python.
fn class(pat: &[char], p: usize) -> Option<(impl Fn(char) -> bool + '_, usize)> {
    let mut i = p + 1;
    let negate = matches!(pat.get(i), Some('!'));
    if negate {
        i += 1;
    }
    let start = i;
    if pat.get(i) == Some(&']') {
        i += 1;
    }
    while pat.get(i)? != &']' {
        i += 1;
    }
    let body = &pat[start..i];
    let test = move |c: char| class_contains(body, c) != negate;
    Some((test, i + 1))
}

fn class_contains(body: &[char], c: char) -> bool {
    let mut i = 0;
    while i < body.len() {
        if i + 2 < body.len() && body[i + 1] == '-' {
            if body[i] <= c && c <= body[i + 2] {
                return true;
            }
            i += 3;
        } else {
            if body[i] == c {
                return true;
            }
            i += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn literals_and_wildcards() {
        assert!(matches("jobs-*", "jobs-1"));
        assert!(matches("jobs-*", "jobs-"));
        assert!(!matches("jobs-*", "job"));
        assert!(matches("q?", "q1"));
        assert!(!matches("q?", "q"));
        assert!(matches("*", ""));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        assert!(matches("*.log", "x.y.log"));
    }

    #[test]
    fn classes() {
        assert!(matches("q[0-9]", "q7"));
        assert!(!matches("q[0-9]", "qa"));
        assert!(matches("q[!0-9]", "qa"));
        assert!(!matches("q[!0-9]", "q1"));
        assert!(matches("[]]", "]"));
        assert!(matches("q[", "q["));
        assert!(matches("[a-]", "-"));
    }

    #[test]
    fn case_sensitive() {
        assert!(!matches("Q*", "q1"));
    }
}
