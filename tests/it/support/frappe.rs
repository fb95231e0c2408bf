//! The simulated Frappe site for the sink's tests: a small company whose people cover
//! every case the sink handles, and the `[sink.frappe]` that points at it.

use iclock_sync::simulate::frappe::{Employee, FrappeSimulator, Site, SiteOptions, User};

pub const SECRET: &str = "sync-secret";

/// Who works here: (name, PIN, status, linked user, System Manager).
const PEOPLE: [(&str, &str, &str, Option<&str>, bool); 7] = [
    ("Alice", "1001", "Active", Some("alice@example.com"), false),
    ("Bob", "1002", "Active", Some("bob@example.com"), true),
    (
        "Carol",
        "1003",
        "Inactive",
        Some("carol@example.com"),
        false,
    ),
    ("Dave", "1004", "Left", Some("dave@example.com"), false),
    ("Erin", "1005", "Active", None, false),
    ("Frank", "1006", "Active", Some("frank@example.com"), false),
    ("Grace", "1007", "Active", Some("grace@example.com"), false),
];

pub fn site() -> Site {
    let mut employees = Vec::new();
    let mut users = Vec::new();
    for (index, (name, pin, status, user, manager)) in PEOPLE.iter().enumerate() {
        employees.push(Employee {
            name: format!("HR-EMP-{:05}", index + 1),
            employee_name: (*name).into(),
            status: (*status).into(),
            attendance_device_id: Some((*pin).into()),
            user_id: user.map(str::to_owned),
            company: "Test Co".into(),
        });
        if let Some(user) = user {
            users.push(User {
                name: (*user).into(),
                enabled: true,
                roles: if *manager {
                    vec!["System Manager".into(), "Employee".into()]
                } else {
                    vec!["Employee".into()]
                },
            });
        }
    }
    Site::new(employees, users, &["Day Shift"])
}

/// The Employee name of a PIN in [`site`].
pub fn employee_of(pin: &str) -> String {
    let index = PEOPLE
        .iter()
        .position(|person| person.1 == pin)
        .expect("a PIN of the test company");
    format!("HR-EMP-{:05}", index + 1)
}

pub async fn start(site: Site, options: SiteOptions) -> FrappeSimulator {
    FrappeSimulator::start_local(site, options)
        .await
        .expect("the Frappe simulator starts")
}

/// `[sink.frappe]` for `frappe`, the secret from the environment, plus `extra` keys.
pub fn sink(frappe: &FrappeSimulator, extra: &str) -> String {
    format!(
        "[sink.frappe]\nurl = \"{}\"\napi_key = \"sync-key\"\napi_secret = \"${{FRAPPE_SECRET}}\"\n{extra}\n",
        frappe.url()
    )
}

/// A site where every PIN from `first` on, `count` of them, is an Active employee (the
/// BioTime simulator's generated punches use PINs 1001…1200).
pub fn everyone(first: u32, count: u32) -> Site {
    let employees = (0..count)
        .map(|index| Employee {
            name: format!("HR-EMP-{:05}", index + 1),
            employee_name: format!("Employee {}", first + index),
            status: "Active".into(),
            attendance_device_id: Some((first + index).to_string()),
            user_id: None,
            company: "Test Co".into(),
        })
        .collect();
    Site::new(employees, Vec::new(), &[])
}

/// Checkins per (employee, time, log type): more than one is a duplicate.
pub fn duplicates(frappe: &FrappeSimulator) -> usize {
    let mut seen = std::collections::BTreeSet::new();
    frappe
        .checkins()
        .iter()
        .filter(|checkin| {
            !seen.insert((
                checkin.employee.clone(),
                checkin.time,
                checkin.log_type.clone(),
            ))
        })
        .count()
}
