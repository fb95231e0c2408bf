//! Which devices a `--loop` cycle reads: each device on its own `interval` (default:
//! the loop's), so a BioTime server can be asked every minute while a far terminal is
//! read hourly. Every device is due at the start.

use std::time::Duration;

use tokio::time::Instant;

pub struct Schedule {
    intervals: Vec<Duration>,
    next: Vec<Instant>,
}

impl Schedule {
    pub fn new(intervals: Vec<Duration>, start: Instant) -> Schedule {
        let next = vec![start; intervals.len()];
        Schedule { intervals, next }
    }

    /// Which devices are due at `now`.
    pub fn due(&self, now: Instant) -> Vec<bool> {
        self.next.iter().map(|next| *next <= now).collect()
    }

    /// The due devices ran in a cycle that started at `started`.
    pub fn ran(&mut self, due: &[bool], started: Instant) {
        for ((next, interval), due) in self.next.iter_mut().zip(&self.intervals).zip(due) {
            if *due {
                *next = started + *interval;
            }
        }
    }

    /// When the next device is due.
    pub fn next_wake(&self) -> Option<Instant> {
        self.next.iter().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_device_runs_on_its_own_interval() {
        let start = Instant::now();
        let minute = Duration::from_secs(60);
        let mut schedule = Schedule::new(vec![minute, 3 * minute], start);
        assert_eq!(schedule.due(start), vec![true, true]);
        schedule.ran(&[true, true], start);
        assert_eq!(schedule.next_wake(), Some(start + minute));
        let at = |minutes: u32| start + minute * minutes;
        let mut ran = Vec::new();
        for tick in 1..=6 {
            let due = schedule.due(at(tick));
            schedule.ran(&due, at(tick));
            ran.push(due);
        }
        let slow: Vec<bool> = ran.iter().map(|due| due[1]).collect();
        assert_eq!(slow, vec![false, false, true, false, false, true]);
        assert!(ran.iter().all(|due| due[0]));
    }
}
