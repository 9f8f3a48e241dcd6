//! A one-line progress bar on stderr, drawn only when stderr is a terminal (`table
//! optimize`, `produce`).

use std::io::{IsTerminal, Write as _};
use std::time::{Duration, Instant};

/// Redraws at most every 100 ms; [`ProgressBar::clear`] removes it.
pub struct ProgressBar {
    enabled: bool,
    last: Option<Instant>,
}

impl ProgressBar {
    const WIDTH: usize = 30;
    const EVERY: Duration = Duration::from_millis(100);

    /// A bar that draws when stderr is a terminal.
    pub fn on_terminal() -> Self {
        ProgressBar {
            enabled: std::io::stderr().is_terminal(),
            last: None,
        }
    }

    /// Draws `fraction` (0..=1; `None` when the total is unknown) and `text`; `last`
    /// draws even within 100 ms of the previous one.
    pub fn show(&mut self, fraction: Option<f64>, text: &str, last: bool) {
        if !self.enabled || (!last && self.last.is_some_and(|t| t.elapsed() < Self::EVERY)) {
            return;
        }
        self.last = Some(Instant::now());
        let bar = match fraction {
            Some(fraction) => {
                let fraction = fraction.clamp(0.0, 1.0);
                let filled = ((fraction * Self::WIDTH as f64) as usize).min(Self::WIDTH);
                format!(
                    "[{}{}] {:3.0}% ",
                    "#".repeat(filled),
                    "-".repeat(Self::WIDTH - filled),
                    fraction * 100.0
                )
            }
            None => String::new(),
        };
        let _ = write!(std::io::stderr().lock(), "\r\x1b[2K{bar}{text}");
    }

    /// Removes the bar, if one was drawn.
    pub fn clear(&self) {
        if self.enabled && self.last.is_some() {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        }
    }
}
