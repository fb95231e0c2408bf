//! The command line's view of a running cycle: a progress line on stderr while devices
//! are read and punches delivered — how far each read has come, with its total and an
//! estimate of the time left where the device says how much there is — and the summary
//! when the cycle ends. The line is drawn only when stderr is a terminal (never into
//! logs, pipes or `--json` output).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::duration;
use crate::output::Output;
use crate::report::CycleReport;
use crate::report::text::thousands;
use crate::sync::CycleObserver;

pub struct TerminalObserver {
    output: Output,
    bar: Option<ProgressBar>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    reads: BTreeMap<String, Read>,
    delivered: u64,
    delivering_since: Option<Instant>,
}

struct Read {
    done: u64,
    total: Option<u64>,
    unit: &'static str,
    started: Instant,
}

impl TerminalObserver {
    pub fn new(output: Output) -> TerminalObserver {
        let wanted = !output.json && !output.quiet && std::io::stderr().is_terminal();
        let bar = wanted.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        });
        TerminalObserver {
            output,
            bar,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn redraw(&self, state: &State) {
        let Some(bar) = &self.bar else {
            return;
        };
        if bar.is_finished() {
            bar.reset();
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message(line(state));
    }
}

/// `reading Gate 54% of 120,004 bytes, about 2 s left · 10,345 punches delivered (5,100/s)`.
fn line(state: &State) -> String {
    let mut parts: Vec<String> = state
        .reads
        .iter()
        .filter(|(_, read)| read.total.is_none_or(|total| read.done < total))
        .map(
            |(device, read)| match read.total.filter(|total| *total > 0) {
                Some(total) => {
                    let share = read.done as f64 / total as f64;
                    let left = (share > 0.0)
                        .then(|| read.started.elapsed().mul_f64((1.0 - share) / share));
                    format!(
                        "reading {device} {:.0}% of {} {}{}",
                        share * 100.0,
                        thousands(total),
                        read.unit,
                        left.map(|left| format!(", about {} left", duration::display(left)))
                            .unwrap_or_default()
                    )
                }
                None => format!("reading {device}: {} {}", thousands(read.done), read.unit),
            },
        )
        .collect();
    if state.delivered > 0 {
        let rate = state
            .delivering_since
            .map(|since| state.delivered as f64 / since.elapsed().as_secs_f64().max(0.001))
            .unwrap_or_default();
        parts.push(format!(
            "{} punches delivered ({:.0}/s)",
            thousands(state.delivered),
            rate
        ));
    }
    parts.join(" · ")
}

impl CycleObserver for TerminalObserver {
    fn reading(&self, device: &str, done: u64, total: Option<u64>, unit: &'static str) {
        let mut state = self.state();
        let read = state.reads.entry(device.to_owned()).or_insert(Read {
            done,
            total,
            unit,
            started: Instant::now(),
        });
        (read.done, read.total, read.unit) = (done, total, unit);
        self.redraw(&state);
    }

    fn delivered(&self, count: u64) {
        let mut state = self.state();
        state.delivering_since.get_or_insert_with(Instant::now);
        state.delivered += count;
        self.redraw(&state);
    }

    /// Clears the line, prints the summary; the next cycle starts afresh.
    fn finished(&self, report: &CycleReport) {
        if let Some(bar) = &self.bar {
            bar.disable_steady_tick();
            bar.finish_and_clear();
        }
        *self.state() = State::default();
        self.output.report(report);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_each_read_with_its_total_and_time_left() {
        let mut state = State::default();
        state.reads.insert(
            "Gate".into(),
            Read {
                done: 60_000,
                total: Some(120_004),
                unit: "bytes",
                started: Instant::now() - Duration::from_secs(2),
            },
        );
        state.reads.insert(
            "Office".into(),
            Read {
                done: 1_200,
                total: None,
                unit: "rows",
                started: Instant::now(),
            },
        );
        state.delivered = 10_345;
        state.delivering_since = Some(Instant::now() - Duration::from_secs(2));
        let line = line(&state);
        assert!(
            line.starts_with("reading Gate 50% of 120,004 bytes, about 2."),
            "{line}"
        );
        assert!(line.contains("reading Office: 1,200 rows"), "{line}");
        assert!(line.contains("10,345 punches delivered ("), "{line}");
    }
}
