//! Simulated terminal contents: a staff of users and their punches over the recent
//! past, plus (on request) the broken records real firmware produces.

use chrono::{Duration, NaiveDateTime};

use crate::simulate::random::Random;
use crate::source::zk::codec::attendance::{AttendanceLayout, AttendanceRecord, Identity};
use crate::source::zk::codec::time::DeviceTime;
use crate::source::zk::codec::users::{UserLayout, UserRecord};

#[derive(Debug, Clone)]
pub struct TerminalData {
    pub users: Vec<UserRecord>,
    pub records: Vec<AttendanceRecord>,
}

#[derive(Debug, Clone)]
pub struct TerminalSpec {
    pub users: u16,
    pub punches: u64,
    pub bad_records: u32,
    pub seed: u64,
    /// The simulated "now": no punch is later (except deliberately broken ones).
    pub anchor: NaiveDateTime,
    pub layout: AttendanceLayout,
}

/// PINs are `1000 + uid`; user 1 is the administrator.
pub fn generate(spec: &TerminalSpec) -> TerminalData {
    let user_layout = match spec.layout {
        AttendanceLayout::Pin { .. } => UserLayout::Tft72,
        _ => UserLayout::Old28,
    };
    let count = spec.users.max(1);
    let users: Vec<UserRecord> = (1..=count)
        .map(|uid| {
            let privilege = if uid == 1 { 14 } else { 0 };
            UserRecord::build(
                uid,
                &(1000 + u32::from(uid)).to_string(),
                &format!("Employee {uid}"),
                privilege,
                0,
                user_layout,
            )
        })
        .collect();
    let mut random = Random::new(spec.seed);
    // About two punches per user per working day, evenly spread up to the anchor with
    // some jitter; times strictly increase, so no two punches coincide.
    let days = (spec.punches / (u64::from(count) * 2)).max(1) as i64;
    let span = Duration::days(days).num_seconds();
    let step = (span / spec.punches.max(1) as i64).max(1);
    let start = spec.anchor - Duration::seconds(span);
    let mut last_state = vec![1u8; usize::from(count) + 1];
    let mut records = Vec::with_capacity(spec.punches as usize + spec.bad_records as usize);
    for index in 0..spec.punches as i64 {
        let time = start + Duration::seconds(index * step + random.between(0, step / 2));
        let uid = random.between(1, i64::from(count)) as u16;
        let state = 1 - last_state[usize::from(uid)];
        last_state[usize::from(uid)] = state;
        records.push(record(
            spec.layout,
            &users[usize::from(uid - 1)],
            time,
            state,
            &mut random,
        ));
    }
    for index in 0..spec.bad_records {
        records.push(bad_record(spec, &users[0], index, &mut random));
    }
    TerminalData { users, records }
}

fn record(
    layout: AttendanceLayout,
    user: &UserRecord,
    time: NaiveDateTime,
    state: u8,
    random: &mut Random,
) -> AttendanceRecord {
    let verify = match random.between(0, 9) {
        0..=5 => 1,
        6..=8 => 15,
        _ => 4,
    };
    AttendanceRecord {
        identity: match layout {
            AttendanceLayout::Compact { .. } => Identity::Index(user.uid),
            _ => Identity::Pin(user.user_id.clone()),
        },
        uid: Some(user.uid),
        time: DeviceTime::from_datetime(time),
        state,
        verify,
        work_code: 0,
    }
}

/// Broken records of the kinds the layout can express: an impossible date, a time far
/// in the future, and an empty PIN (40-byte records) or unknown user index (8-byte).
fn bad_record(
    spec: &TerminalSpec,
    user: &UserRecord,
    index: u32,
    random: &mut Random,
) -> AttendanceRecord {
    let when = spec.anchor - Duration::hours(1) + Duration::minutes(i64::from(index));
    let mut broken = record(spec.layout, user, when, 0, random);
    match index % 3 {
        0 => {
            broken.time = DeviceTime {
                month: 2,
                day: 30,
                ..broken.time
            }
        }
        1 => broken.time = DeviceTime::from_datetime(when + Duration::days(400)),
        _ => match spec.layout {
            AttendanceLayout::Pin { .. } => broken.identity = Identity::Pin(String::new()),
            AttendanceLayout::Compact { .. } => {
                broken.identity = Identity::Index(60_000);
                broken.uid = Some(60_000);
            }
            AttendanceLayout::Extended { .. } => {
                broken.time = DeviceTime {
                    day: 31,
                    month: 4,
                    ..broken.time
                }
            }
        },
    }
    broken
}
