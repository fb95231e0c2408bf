//! The simulated site's documents and the rules Frappe HR enforces on them, as
//! `docs/frappe.md` records: what makes a checkin a duplicate,
//! which employees are blocked, which timestamps crash the server, how long a device
//! id may be, and how lists are filtered.

use std::collections::BTreeMap;

use chrono::{NaiveDateTime, Timelike};
use serde_json::{Map, Value, json};

use super::filters::{self, Filter};

/// An error as Frappe answers it: status, `exc_type`, the messages of
/// `_server_messages`, and the `exception` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub status: u16,
    pub exc_type: String,
    pub exception: String,
    pub messages: Vec<String>,
    /// `title` of the messages ("Message" unless Frappe says otherwise).
    pub title: &'static str,
}

impl Failure {
    pub fn new(status: u16, exc_type: &str, module: &str, message: &str) -> Failure {
        Failure {
            status,
            exc_type: exc_type.to_owned(),
            exception: format!("{module}.{exc_type}: {message}"),
            messages: vec![message.to_owned()],
            title: "Message",
        }
    }

    /// A Python error with no message for the user (500s).
    pub fn crash(exc_type: &str, exception: String) -> Failure {
        Failure {
            status: 500,
            exc_type: exc_type.to_owned(),
            exception,
            messages: Vec::new(),
            title: "Message",
        }
    }

    fn validation(message: &str) -> Failure {
        Failure::new(417, "ValidationError", "frappe.exceptions", message)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Employee {
    /// `HR-EMP-00001`.
    pub name: String,
    pub employee_name: String,
    /// Active, Inactive, Suspended or Left.
    pub status: String,
    pub attendance_device_id: Option<String>,
    /// The linked Frappe User (an e-mail address).
    pub user_id: Option<String>,
    pub company: String,
}

impl Employee {
    fn field(&self, field: &str) -> Option<Value> {
        let text = |value: &Option<String>| value.clone().map_or(Value::Null, Value::String);
        Some(match field {
            "name" | "employee" => json!(self.name),
            "employee_name" | "first_name" => json!(self.employee_name),
            "status" => json!(self.status),
            "attendance_device_id" => text(&self.attendance_device_id),
            "user_id" => text(&self.user_id),
            "company" => json!(self.company),
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The e-mail address, which names the User.
    pub name: String,
    pub enabled: bool,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Checkin {
    /// `EMP-CKIN-11-2026-000001`.
    pub name: String,
    pub employee: String,
    pub employee_name: String,
    pub time: NaiveDateTime,
    /// "", "IN" or "OUT".
    pub log_type: String,
    pub device_id: Option<String>,
    pub skip_auto_attendance: i64,
    pub latitude: f64,
    pub longitude: f64,
    /// The User that created it.
    pub owner: String,
}

impl Checkin {
    fn field(&self, field: &str) -> Option<Value> {
        Some(match field {
            "name" => json!(self.name),
            "employee" => json!(self.employee),
            "employee_name" => json!(self.employee_name),
            "time" => json!(self.time.format("%Y-%m-%d %H:%M:%S").to_string()),
            "log_type" => json!(self.log_type),
            "device_id" => self.device_id.clone().map_or(Value::Null, Value::String),
            "skip_auto_attendance" => json!(self.skip_auto_attendance),
            "latitude" => json!(self.latitude),
            "longitude" => json!(self.longitude),
            "owner" => json!(self.owner),
            "shift" => Value::Null,
            "doctype" => json!("Employee Checkin"),
            _ => return None,
        })
    }

    /// The whole document, as the create calls return it.
    pub fn document(&self) -> Value {
        let mut document = Map::new();
        for field in [
            "name",
            "owner",
            "employee",
            "employee_name",
            "log_type",
            "time",
            "device_id",
            "skip_auto_attendance",
            "latitude",
            "longitude",
            "doctype",
        ] {
            if let Some(value) = self.field(field) {
                document.insert(field.to_owned(), value);
            }
        }
        document.insert("docstatus".into(), json!(0));
        document.insert("offshift".into(), json!(1));
        Value::Object(document)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShiftType {
    pub last_sync_of_checkin: Option<String>,
}

/// A checkin to create, as a request carries it.
#[derive(Debug, Clone, Default)]
pub struct NewCheckin {
    /// The Employee's name (REST) — unchecked, as v15 skips link validation here.
    pub employee: Option<String>,
    pub timestamp: Option<String>,
    pub log_type: Option<String>,
    pub device_id: Option<String>,
    pub skip_auto_attendance: i64,
    pub latitude: f64,
    pub longitude: f64,
}

/// Everything the site holds.
#[derive(Debug, Clone, Default)]
pub struct Site {
    pub employees: Vec<Employee>,
    pub users: BTreeMap<String, User>,
    pub checkins: Vec<Checkin>,
    pub shift_types: BTreeMap<String, ShiftType>,
    /// Shown in links of error messages.
    pub host: String,
    next_checkin: u64,
}

impl Site {
    pub fn new(employees: Vec<Employee>, users: Vec<User>, shift_types: &[&str]) -> Site {
        Site {
            employees,
            users: users
                .into_iter()
                .map(|user| (user.name.clone(), user))
                .collect(),
            checkins: Vec::new(),
            shift_types: shift_types
                .iter()
                .map(|name| ((*name).to_owned(), ShiftType::default()))
                .collect(),
            host: "hr.localhost:8000".into(),
            next_checkin: 1,
        }
    }

    /// The employee whose `field` equals `value`, as HRMS's
    /// `add_log_based_on_employee_field` finds it.
    pub fn employee_by_field(&self, field: &str, value: &str) -> Result<&Employee, Failure> {
        if empty().field(field).is_none() {
            return Err(Failure::crash(
                "OperationalError",
                format!(
                    "pymysql.err.OperationalError: (1054, \"Unknown column '{field}' in 'where clause'\")"
                ),
            ));
        }
        self.employees
            .iter()
            .find(|employee| employee.field(field).as_ref().and_then(Value::as_str) == Some(value))
            .ok_or_else(|| {
                Failure::validation(&format!(
                    "No Employee found for the given employee field value. '{field}': {value}"
                ))
            })
    }

    /// `add_log_based_on_employee_field(employee_field_value, timestamp, …)`.
    pub fn add_log(
        &mut self,
        field: &str,
        value: Option<&str>,
        mut checkin: NewCheckin,
        owner: &str,
    ) -> Result<Checkin, Failure> {
        let Some(value) = value else {
            return Err(missing_argument("employee_field_value"));
        };
        if checkin.timestamp.is_none() {
            return Err(missing_argument("timestamp"));
        }
        let employee = self.employee_by_field(field, value)?.name.clone();
        checkin.employee = Some(employee);
        self.check(&checkin)?;
        Ok(self.insert(checkin, owner))
    }

    /// Validates a new checkin as `EmployeeCheckin.insert()` does; `Ok` means it would
    /// be inserted.
    pub fn check(&self, checkin: &NewCheckin) -> Result<NaiveDateTime, Failure> {
        let Some(employee) = checkin.employee.as_deref().filter(|e| !e.is_empty()) else {
            let mut failure = Failure::new(
                417,
                "MandatoryError",
                "frappe.exceptions",
                "Error: Value missing for Employee Checkin: Employee",
            );
            failure.exception =
                "frappe.exceptions.MandatoryError: [Employee Checkin]: employee".into();
            return Err(failure);
        };
        let time = parse_timestamp(checkin.timestamp.as_deref().unwrap_or_default())?;
        let log_type = checkin.log_type.as_deref().unwrap_or_default();
        if !["", "IN", "OUT"].contains(&log_type) {
            return Err(Failure::validation(&format!(
                " Log Type cannot be \"{log_type}\". It should be one of \"\", \"IN\", \"OUT\""
            )));
        }
        if let Some(device_id) = &checkin.device_id
            && device_id.chars().count() > 140
        {
            let mut failure = Failure::new(
                417,
                "CharacterLengthExceededError",
                "frappe.exceptions",
                &format!(
                    "Employee Checkin {}: '<strong>Location / Device ID</strong>' ({device_id}) will get truncated, as max characters allowed is 140",
                    self.next_name()
                ),
            );
            failure.title = "Value too big";
            return Err(failure);
        }
        // v15 skips link validation for this doctype: an unknown employee is stored.
        let known = self.employees.iter().find(|e| e.name == employee);
        if let Some(known) = known
            && known.status == "Inactive"
        {
            return Err(Failure::new(
                417,
                "InactiveEmployeeStatusError",
                "erpnext.setup.doctype.employee.employee",
                &format!(
                    "Transactions cannot be created for an Inactive Employee <a href=\"http://{}/app/employee/{employee}\">{employee}</a>.",
                    self.host
                ),
            ));
        }
        if let Some(existing) = self
            .checkins
            .iter()
            .find(|c| c.employee == employee && c.time == time && c.log_type == log_type)
        {
            return Err(Failure::validation(&format!(
                "This employee already has a log with the same timestamp.<Br><a href=\"/app/Form/Employee Checkin/{}\" style=\"font-weight: bold;\">Employee Checkin {}</a>",
                existing.name, existing.employee_name
            )));
        }
        Ok(time)
    }

    /// Inserts without checking (the caller checked, possibly a while ago: there is
    /// no unique index, so concurrent inserts of one punch both land).
    pub fn insert(&mut self, checkin: NewCheckin, owner: &str) -> Checkin {
        let employee = checkin.employee.unwrap_or_default();
        let employee_name = self
            .employees
            .iter()
            .find(|e| e.name == employee)
            .map(|e| e.employee_name.clone())
            .unwrap_or_default();
        let time = checkin
            .timestamp
            .as_deref()
            .and_then(|text| parse_timestamp(text).ok())
            .unwrap_or_default();
        let created = Checkin {
            name: self.next_name(),
            employee,
            employee_name,
            time,
            log_type: checkin.log_type.unwrap_or_default(),
            device_id: checkin.device_id,
            skip_auto_attendance: checkin.skip_auto_attendance,
            latitude: checkin.latitude,
            longitude: checkin.longitude,
            owner: owner.to_owned(),
        };
        self.next_checkin += 1;
        self.checkins.push(created.clone());
        created
    }

    /// Where the checkins stand now, to go back to if a transaction fails.
    pub fn savepoint(&self) -> (usize, u64) {
        (self.checkins.len(), self.next_checkin)
    }

    /// Undoes every insert since `savepoint`.
    pub fn roll_back(&mut self, (checkins, next_checkin): (usize, u64)) {
        self.checkins.truncate(checkins);
        self.next_checkin = next_checkin;
    }

    fn next_name(&self) -> String {
        format!("EMP-CKIN-11-2026-{:06}", self.next_checkin)
    }

    /// `GET /api/resource/<doctype>` for Employee and Employee Checkin.
    pub fn list(
        &self,
        doctype: &str,
        filters: &[Filter],
        fields: &[String],
        start: usize,
        page_length: usize,
    ) -> Result<Vec<Value>, Failure> {
        let (rows, known): (Vec<Map<String, Value>>, &[&str]) = match doctype {
            "Employee" => (
                self.employees
                    .iter()
                    .map(|e| record(|f| e.field(f), EMPLOYEE_FIELDS))
                    .collect(),
                EMPLOYEE_FIELDS,
            ),
            "Employee Checkin" => (
                self.checkins
                    .iter()
                    .map(|c| record(|f| c.field(f), CHECKIN_FIELDS))
                    .collect(),
                CHECKIN_FIELDS,
            ),
            _ => return Err(not_found(doctype, "")),
        };
        for name in filters
            .iter()
            .map(|f| f.field.as_str())
            .chain(fields.iter().map(String::as_str))
        {
            if name != "*" && !known.contains(&name) {
                let mut failure = Failure::new(
                    417,
                    "DataError",
                    "frappe.exceptions",
                    &format!("Field not permitted in query: {name}"),
                );
                failure.exception =
                    format!("frappe.exceptions.DataError: Field not permitted in query: {name}");
                return Err(failure);
            }
        }
        let fields: Vec<String> = if fields.is_empty() {
            vec!["name".into()]
        } else {
            fields.to_vec()
        };
        let matching = rows.iter().filter(|row| {
            filters
                .iter()
                .all(|filter| filters::matches(filter, row.get(&filter.field).cloned()))
        });
        let limit = if page_length == 0 {
            usize::MAX
        } else {
            page_length
        };
        Ok(matching
            .skip(start)
            .take(limit)
            .map(|row| {
                let mut object = Map::new();
                for field in &fields {
                    if let Some(value) = row.get(field) {
                        object.insert(field.clone(), value.clone());
                    }
                }
                Value::Object(object)
            })
            .collect())
    }
}

const EMPLOYEE_FIELDS: &[&str] = &[
    "name",
    "employee",
    "employee_name",
    "first_name",
    "status",
    "attendance_device_id",
    "user_id",
    "company",
];
const CHECKIN_FIELDS: &[&str] = &[
    "name",
    "employee",
    "employee_name",
    "time",
    "log_type",
    "device_id",
    "skip_auto_attendance",
    "latitude",
    "longitude",
    "owner",
    "shift",
];

fn record(field: impl Fn(&str) -> Option<Value>, names: &[&str]) -> Map<String, Value> {
    names
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), field(name)?)))
        .collect()
}

fn empty() -> Employee {
    Employee {
        name: String::new(),
        employee_name: String::new(),
        status: String::new(),
        attendance_device_id: None,
        user_id: None,
        company: String::new(),
    }
}

pub fn not_found(doctype: &str, name: &str) -> Failure {
    let what = if name.is_empty() {
        doctype.to_owned()
    } else {
        format!("{doctype} {name}")
    };
    let mut failure = Failure::new(
        404,
        "DoesNotExistError",
        "frappe.exceptions",
        &format!("{what} not found"),
    );
    failure.exception = String::new();
    failure
}

fn missing_argument(argument: &str) -> Failure {
    Failure::crash(
        "TypeError",
        format!(
            "TypeError: add_log_based_on_employee_field() missing 1 required positional argument: '{argument}'"
        ),
    )
}

/// `frappe.utils.get_datetime` followed by the database: naive times (microseconds
/// dropped) are stored; a time with an offset parses but MariaDB refuses it (500);
/// anything else does not parse (500).
pub fn parse_timestamp(text: &str) -> Result<NaiveDateTime, Failure> {
    let trimmed = text.trim();
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(time) = NaiveDateTime::parse_from_str(trimmed, format) {
            return Ok(time.with_nanosecond(0).unwrap_or(time));
        }
    }
    if chrono::DateTime::parse_from_rfc3339(trimmed).is_ok()
        || chrono::DateTime::parse_from_str(trimmed, "%Y-%m-%d %H:%M:%S%:z").is_ok()
    {
        return Err(Failure::crash(
            "OperationalError",
            format!(
                "pymysql.err.OperationalError: (1292, \"Incorrect datetime value: '{}' for column `tabEmployee Checkin`.`time` at row 1\")",
                trimmed.replace('T', " ").replace('Z', "+00:00")
            ),
        ));
    }
    Err(Failure::crash(
        "ParserError",
        format!("dateutil.parser._parser.ParserError: Unknown string format: {trimmed}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        let employee = |n: u32, status: &str, pin: &str| Employee {
            name: format!("HR-EMP-{n:05}"),
            employee_name: format!("Person {n}"),
            status: status.into(),
            attendance_device_id: Some(pin.into()),
            user_id: None,
            company: "Test Co".into(),
        };
        Site::new(
            vec![
                employee(1, "Active", "1001"),
                employee(2, "Inactive", "1002"),
                employee(3, "Left", "1003"),
            ],
            vec![],
            &[],
        )
    }

    fn at(time: &str, log_type: &str) -> NewCheckin {
        NewCheckin {
            timestamp: Some(time.into()),
            log_type: Some(log_type.into()),
            ..NewCheckin::default()
        }
    }

    #[test]
    fn the_duplicate_rule_is_employee_time_and_log_type_with_seconds_truncated() {
        let mut site = site();
        let field = "attendance_device_id";
        site.add_log(field, Some("1001"), at("2026-03-02 08:30:00", "IN"), "u")
            .unwrap();
        site.add_log(field, Some("1001"), at("2026-03-02 08:30:00", "OUT"), "u")
            .unwrap();
        let again = site
            .add_log(
                field,
                Some("1001"),
                at("2026-03-02 08:30:00.250000", "IN"),
                "u",
            )
            .unwrap_err();
        assert_eq!(
            (again.status, again.exc_type.as_str()),
            (417, "ValidationError")
        );
        assert!(
            again.messages[0]
                .starts_with("This employee already has a log with the same timestamp.")
        );
        site.add_log(field, Some("1001"), at("2026-03-02 09:00:00", ""), "u")
            .unwrap();
        let twice = site.add_log(field, Some("1001"), at("2026-03-02 09:00:00", ""), "u");
        assert!(
            twice.is_err(),
            "two empty log types at one time are duplicates"
        );
    }

    #[test]
    fn only_inactive_employees_are_blocked() {
        let mut site = site();
        let field = "attendance_device_id";
        let inactive = site
            .add_log(field, Some("1002"), at("2026-03-02 08:30:00", "IN"), "u")
            .unwrap_err();
        assert_eq!(inactive.exc_type, "InactiveEmployeeStatusError");
        assert!(
            site.add_log(field, Some("1003"), at("2026-03-02 08:30:00", "IN"), "u")
                .is_ok()
        );
        let unknown = site
            .add_log(field, Some("9999"), at("2026-03-02 08:30:00", "IN"), "u")
            .unwrap_err();
        assert_eq!(
            unknown.messages[0],
            "No Employee found for the given employee field value. 'attendance_device_id': 9999"
        );
    }

    #[test]
    fn the_resource_route_skips_link_validation_but_not_mandatory_fields() {
        let mut site = site();
        let orphan = NewCheckin {
            employee: Some("HR-EMP-99999".into()),
            ..at("2026-03-03 08:00:00", "IN")
        };
        assert!(
            site.check(&orphan).is_ok(),
            "v15 stores a checkin for nobody"
        );
        let created = site.insert(orphan, "u");
        assert_eq!(
            (created.employee.as_str(), created.employee_name.as_str()),
            ("HR-EMP-99999", "")
        );
        let missing = site.check(&at("2026-03-03 08:00:00", "IN")).unwrap_err();
        assert_eq!(missing.exc_type, "MandatoryError");
        assert_eq!(
            missing.messages[0],
            "Error: Value missing for Employee Checkin: Employee"
        );
    }

    #[test]
    fn timestamps_with_an_offset_or_garbage_crash_the_server() {
        let crash = parse_timestamp("2026-03-02T11:00:00+03:00").unwrap_err();
        assert_eq!(
            (crash.status, crash.exc_type.as_str()),
            (500, "OperationalError")
        );
        assert!(crash.exception.contains("'2026-03-02 11:00:00+03:00'"));
        assert_eq!(
            parse_timestamp("not-a-date").unwrap_err().exc_type,
            "ParserError"
        );
        assert!(parse_timestamp("2026-03-02 11:00:00").is_ok());
    }

    #[test]
    fn lists_filter_and_refuse_unknown_fields() {
        let site = site();
        let filters = filters::parse(r#"[["attendance_device_id","in",["1001","1003"]]]"#).unwrap();
        let rows = site
            .list(
                "Employee",
                &filters,
                &["name".into(), "status".into()],
                0,
                0,
            )
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["status"], "Left");
        let bad = filters::parse(r#"[["no_such_field","=","1"]]"#).unwrap();
        let refused = site.list("Employee", &bad, &[], 0, 20).unwrap_err();
        assert_eq!(
            refused.messages[0],
            "Field not permitted in query: no_such_field"
        );
    }
}
