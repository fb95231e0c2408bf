//! Realistic simulated attendance for the BioTime simulator: a company's employees
//! clocking in and out at a few terminals over some days, some late uploads from a
//! terminal that was offline for weeks, and (on request) a few broken records.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};

use crate::simulate::random::Random;

/// One row in the simulated BioTime database.
#[derive(Debug, Clone, PartialEq)]
pub struct SimTransaction {
    pub id: i64,
    pub emp_code: String,
    /// As stored; broken records can hold impossible dates, so this is text.
    pub punch_time: String,
    /// Normally a number; broken records can hold text.
    pub punch_state: String,
    pub verify_type: i32,
    pub work_code: String,
    pub terminal_sn: String,
    pub terminal_alias: String,
    pub upload_time: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimTerminal {
    pub id: i64,
    pub sn: String,
    pub alias: String,
    pub ip_address: String,
}

#[derive(Debug, Clone)]
pub struct DatasetSpec {
    pub employees: u32,
    pub days: u32,
    /// Exactly this many regular punches (overrides `days`).
    pub punches: Option<u64>,
    /// Extra punches from about two months back, uploaded just before `anchor`.
    pub late_uploads: u32,
    /// Extra broken records (empty PIN, impossible date, 1999, far future, bad state).
    pub bad_records: u32,
    pub seed: u64,
    /// The simulated "now": no punch is later than this.
    pub anchor: NaiveDateTime,
}

pub fn terminals() -> Vec<SimTerminal> {
    [
        ("CLGY211460005", "Main gate"),
        ("CLGY211460006", "Staff room"),
        ("CLGY211460007", "Admin office"),
    ]
    .iter()
    .enumerate()
    .map(|(index, (sn, alias))| SimTerminal {
        id: index as i64 + 1,
        sn: (*sn).to_owned(),
        alias: (*alias).to_owned(),
        ip_address: format!("192.168.1.{}", 201 + index),
    })
    .collect()
}

const FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Generates the rows, ids assigned in upload order as BioTime does.
pub fn generate(spec: &DatasetSpec) -> Vec<SimTransaction> {
    let terminals = terminals();
    let mut random = Random::new(spec.seed);
    let employees = spec.employees.max(1);
    let mut rows = Vec::new();
    let last_day = spec.anchor.date();
    let mut day = last_day;
    let mut days_done = 0;
    loop {
        let enough = match spec.punches {
            Some(wanted) => rows.len() as u64 >= wanted,
            None => days_done >= spec.days,
        };
        if enough {
            break;
        }
        day_of_punches(
            day,
            employees,
            &terminals,
            spec.anchor,
            &mut random,
            &mut rows,
        );
        days_done += 1;
        day = day.pred_opt().unwrap_or(day);
    }
    if let Some(wanted) = spec.punches {
        // Keep the newest `wanted` punches.
        rows.sort_by(|a, b| b.punch_time.cmp(&a.punch_time));
        rows.truncate(wanted as usize);
    }
    for index in 0..spec.late_uploads {
        let punch_time = spec.anchor - Duration::days(60) + Duration::minutes(i64::from(index) * 7);
        let uploaded = spec.anchor - Duration::minutes(random.between(1, 50));
        let employee = random.between(1, i64::from(employees)) as u32;
        rows.push(row(
            employee,
            punch_time,
            index % 2,
            &terminals[2],
            uploaded,
            &mut random,
        ));
    }
    for index in 0..spec.bad_records {
        rows.push(bad_record(index, spec.anchor, &terminals[0], &mut random));
    }
    rows.sort_by(|a, b| {
        a.upload_time
            .cmp(&b.upload_time)
            .then(a.punch_time.cmp(&b.punch_time))
    });
    for (index, row) in rows.iter_mut().enumerate() {
        row.id = index as i64 + 1;
    }
    rows
}

fn day_of_punches(
    day: NaiveDate,
    employees: u32,
    terminals: &[SimTerminal],
    anchor: NaiveDateTime,
    random: &mut Random,
    rows: &mut Vec<SimTransaction>,
) {
    let at = |hour: u32, minute: u32| {
        day.and_time(NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or_default())
    };
    for employee in 1..=employees {
        if random.chance(5) {
            continue; // absent
        }
        let terminal = &terminals[(employee as usize) % terminals.len()];
        let arrive = at(7, 30) + Duration::seconds(random.between(-1200, 1500));
        let leave = at(16, 30) + Duration::seconds(random.between(-1800, 3600));
        let mut punches = vec![(arrive, 0)];
        if random.chance(10) {
            punches.push((at(12, 0) + Duration::seconds(random.between(-900, 900)), 2));
            punches.push((at(12, 45) + Duration::seconds(random.between(-900, 900)), 3));
        }
        punches.push((leave, 1));
        for (time, state) in punches {
            if time <= anchor {
                let uploaded = (time + Duration::seconds(random.between(1, 90))).min(anchor);
                rows.push(row(employee, time, state, terminal, uploaded, random));
            }
        }
    }
}

fn row(
    employee: u32,
    time: NaiveDateTime,
    state: u32,
    terminal: &SimTerminal,
    uploaded: NaiveDateTime,
    random: &mut Random,
) -> SimTransaction {
    let verify_type = match random.between(0, 99) {
        0..=54 => 1,
        55..=89 => 15,
        _ => 4,
    };
    SimTransaction {
        id: 0,
        emp_code: (1000 + employee).to_string(),
        punch_time: time.format(FORMAT).to_string(),
        punch_state: state.to_string(),
        verify_type,
        work_code: "0".into(),
        terminal_sn: terminal.sn.clone(),
        terminal_alias: terminal.alias.clone(),
        upload_time: uploaded,
    }
}

fn bad_record(
    index: u32,
    anchor: NaiveDateTime,
    terminal: &SimTerminal,
    random: &mut Random,
) -> SimTransaction {
    let uploaded = anchor - Duration::minutes(random.between(1, 600));
    let mut record = row(
        1,
        anchor - Duration::hours(2),
        0,
        terminal,
        uploaded,
        random,
    );
    record.emp_code = (9000 + index).to_string();
    match index % 5 {
        0 => record.emp_code = String::new(),
        1 => record.punch_time = format!("{}-02-30 10:15:00", anchor.format("%Y")),
        2 => record.punch_time = "1999-12-31 23:59:59".into(),
        3 => record.punch_time = (anchor + Duration::days(400)).format(FORMAT).to_string(),
        _ => record.punch_state = "IN".into(),
    }
    record
}
