//! A live count of delivered punches on long uploads, drawn only when stderr is a
//! terminal (never into logs, pipes or `--json` output).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// `wanted` is false for `--quiet` and `--json`.
    pub fn new(wanted: bool) -> Progress {
        let bar = (wanted && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {human_pos} punches delivered ({per_sec}) {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        });
        Progress { bar }
    }

    pub fn hidden() -> Progress {
        Progress { bar: None }
    }

    pub fn delivered(&self, count: u64) {
        if let Some(bar) = &self.bar {
            if bar.position() == 0 && count > 0 {
                bar.enable_steady_tick(Duration::from_millis(120));
            }
            bar.inc(count);
        }
    }

    /// Clears the line so the summary prints cleanly; ready for the next cycle.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            bar.reset();
        }
    }
}
