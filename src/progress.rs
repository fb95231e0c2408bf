//! A live count of delivered punches on long uploads, drawn only when stderr is a
//! terminal (never into logs, pipes or `--json` output).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// `wanted` is false for `--quiet` and `--json`.
    pub fn new(wanted: bool) -> Progress {
        let bar = (wanted && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style =
                ProgressStyle::with_template("{spinner} {human_pos} punches delivered ({rate})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner())
                    .with_key(
                        "rate",
                        |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                            let _ = write!(out, "{:.0}/s", state.per_sec());
                        },
                    );
            bar.set_style(style);
            bar
        });
        Progress { bar }
    }

    pub fn hidden() -> Progress {
        Progress { bar: None }
    }

    pub fn delivered(&self, count: u64) {
        if let Some(bar) = self.bar.as_ref().filter(|_| count > 0) {
            if bar.is_finished() {
                bar.reset();
            }
            if bar.position() == 0 {
                bar.enable_steady_tick(Duration::from_millis(120));
            }
            bar.inc(count);
        }
    }

    /// Clears the line so the summary prints cleanly; the next cycle starts afresh.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.disable_steady_tick();
            bar.finish_and_clear();
        }
    }
}
