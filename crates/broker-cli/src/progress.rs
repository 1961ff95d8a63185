//! Progress on stderr for long operations, shown only when stderr is a terminal
//! (never in pipes, logs or tests).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress indicator that is a no-op when stderr is not a terminal.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A running count ("moving 12000 messages").
    pub fn counter(label: &str) -> Self {
        Self::make(label, "{spinner} {msg} {pos} messages ({per_sec})")
    }

    /// An elapsed-time spinner for work that cannot count.
    pub fn spinner(label: &str) -> Self {
        Self::make(label, "{spinner} {msg} {elapsed}")
    }

    fn make(label: &str, template: &str) -> Self {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::new_spinner().with_message(label.to_owned());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.tick(); // draw at once, however short the operation turns out to be
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Progress { bar: Some(bar) }
    }

    /// Sets the count.
    pub fn set(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(n);
        }
    }

    /// Adds one to the count.
    pub fn inc(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Removes the indicator.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
