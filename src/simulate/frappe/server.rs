//! The simulated site's HTTP side, answering as Frappe 15 does (see
//! `docs/frappe.md`): `token key:secret` (or Basic) auth with its 401 and
//! 403 bodies, the `{"message": …}` envelope of `/api/method` and the `{"data": …}` one
//! of `/api/resource`, `_server_messages` encoded twice, 417 for validation errors,
//! 500 for what crashes the server, and a missing method named as Frappe names it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value, json};

use super::filters;
use super::site::{Failure, NewCheckin, not_found};
use super::{Shared, SiteOptions};

const ADD_LOG: &str =
    "hr.doctype.employee_checkin.employee_checkin.add_log_based_on_employee_field";
const HR_ROLES: [&str; 3] = ["HR User", "HR Manager", "System Manager"];
const INSERT_MANY: &str = "frappe.client.insert_many";
/// Frappe's limit on `insert_many`.
const INSERT_MANY_LIMIT: usize = 200;

/// Who is calling.
struct Caller {
    user: String,
    roles: Vec<String>,
}

impl Caller {
    fn guest() -> Caller {
        Caller {
            user: "Guest".into(),
            roles: Vec::new(),
        }
    }

    fn may(&self, roles: &[&str], doctype: &str) -> Result<(), Failure> {
        if self.roles.iter().any(|role| roles.contains(&role.as_str())) {
            return Ok(());
        }
        let mut failure = Failure::new(
            403,
            "PermissionError",
            "frappe.exceptions",
            &format!(
                "User <strong>{}</strong> does not have doctype access via role permission for document <strong>{doctype}</strong>",
                self.user
            ),
        );
        failure.exception = String::new();
        Err(failure)
    }
}

pub(super) async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let options = shared.options.clone();
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    shared.record(|stats| {
        stats.requests += 1;
        stats.hosts.insert(host.clone());
    });
    if let Some(site) = &options.site_host
        && host.split(':').next() != Some(site.as_str())
    {
        // A bench serving several sites answers an unknown Host like this.
        return (StatusCode::NOT_FOUND, format!("{host} does not exist")).into_response();
    }
    if shared.take_unavailable() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "<html><body>503 Service Unavailable</body></html>",
        )
            .into_response();
    }
    let path = percent_decode(uri.path());
    let query: Vec<(String, String)> =
        form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    if path == "/api/method/ping" {
        return message(json!("pong"));
    }
    let Some(caller) = authenticate(&headers, &shared) else {
        let body = json!({
            "exc_type": "AuthenticationError",
            "exception": "frappe.exceptions.AuthenticationError",
            "exc": "[\"Traceback (most recent call last):\\n  frappe.exceptions.AuthenticationError\\n\"]",
        });
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    };
    let answer = route(&shared, &options, &method, &path, &query, &body, &caller).await;
    if !matches!(answer, Ok(Answer::Created(_))) {
        tokio::time::sleep(options.latency).await;
    }
    match answer {
        Ok(Answer::Message(value)) | Ok(Answer::Created(value))
            if path.starts_with("/api/method/") =>
        {
            message(value)
        }
        Ok(Answer::Message(value)) | Ok(Answer::Created(value)) => data(value),
        Err(failure) => error(&failure, options.tracebacks),
    }
}

enum Answer {
    Message(Value),
    /// A checkin was created (the latency was spent inside).
    Created(Value),
}

async fn route(
    shared: &Shared,
    options: &SiteOptions,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    body: &Bytes,
    caller: &Caller,
) -> Result<Answer, Failure> {
    if let Some(command) = path.strip_prefix("/api/method/") {
        return call(shared, options, command, query, body, caller).await;
    }
    let Some(resource) = path.strip_prefix("/api/resource/") else {
        return Err(not_found("Page", path));
    };
    let (doctype, name) = match resource.split_once('/') {
        Some((doctype, name)) => (doctype, Some(name)),
        None => (resource, None),
    };
    let parameter = |key: &str| query.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    match (method.as_str(), doctype, name) {
        ("GET", "Employee" | "Employee Checkin", None) => {
            caller.may(&HR_ROLES, doctype)?;
            let filters = match parameter("filters") {
                Some(text) => filters::parse(&text).map_err(|reason| {
                    Failure::new(417, "ValidationError", "frappe.exceptions", &reason)
                })?,
                None => Vec::new(),
            };
            let fields: Vec<String> = match parameter("fields") {
                Some(text) => serde_json::from_str(&text).map_err(|_| {
                    Failure::crash(
                        "JSONDecodeError",
                        "json.decoder.JSONDecodeError: fields".into(),
                    )
                })?,
                None => Vec::new(),
            };
            let number = |key: &str, default: usize| {
                parameter(key)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(default)
            };
            shared.record(|stats| match doctype {
                "Employee" => stats.employee_lookups += 1,
                _ => stats.checkin_lists += 1,
            });
            let rows = shared.site(|site| {
                site.list(
                    doctype,
                    &filters,
                    &fields,
                    number("limit_start", 0),
                    number("limit_page_length", 20),
                )
            })?;
            Ok(Answer::Message(Value::Array(rows)))
        }
        ("POST", "Employee Checkin", None) => {
            caller.may(&HR_ROLES, doctype)?;
            let document = request_object(body, query)?;
            let checkin = NewCheckin {
                employee: text(&document, "employee"),
                timestamp: text(&document, "time"),
                ..new_checkin(&document)
            };
            create(shared, options, checkin, caller, None).await
        }
        ("GET", "Employee", Some(name)) => {
            caller.may(&HR_ROLES, doctype)?;
            let rows = shared.site(|site| {
                let filter = filters::Filter {
                    field: "name".into(),
                    operator: "=".into(),
                    value: json!(name),
                };
                let fields = [
                    "name",
                    "employee_name",
                    "status",
                    "attendance_device_id",
                    "user_id",
                    "company",
                ];
                site.list("Employee", &[filter], &fields.map(String::from), 0, 1)
            })?;
            rows.into_iter()
                .next()
                .map(Answer::Message)
                .ok_or_else(|| not_found("Employee", name))
        }
        ("GET" | "PUT", "User", Some(name)) => {
            caller.may(&["System Manager"], doctype)?;
            let enabled = if method == Method::PUT {
                let document = request_object(body, query)?;
                document.get("enabled").map(|value| flag(value) != 0)
            } else {
                None
            };
            let user = shared.site(|site| {
                let user = site.users.get_mut(name)?;
                if let Some(enabled) = enabled {
                    user.enabled = enabled;
                }
                Some(user.clone())
            });
            let user = user.ok_or_else(|| not_found("User", name))?;
            if let Some(enabled) = enabled {
                shared.record(|stats| stats.user_updates.push((user.name.clone(), enabled)));
            }
            Ok(Answer::Message(json!({
                "name": user.name,
                "email": user.name,
                "enabled": i64::from(user.enabled),
                "roles": user.roles.iter().map(|role| json!({"role": role, "doctype": "Has Role"})).collect::<Vec<_>>(),
            })))
        }
        ("GET", "Shift Type", Some(name)) => {
            caller.may(&HR_ROLES, doctype)?;
            let shift = shared.site(|site| site.shift_types.get(name).cloned());
            let shift = shift.ok_or_else(|| not_found("Shift Type", name))?;
            Ok(Answer::Message(json!({
                "name": name,
                "last_sync_of_checkin": shift.last_sync_of_checkin,
            })))
        }
        ("PUT", "Shift Type", Some(name)) => {
            caller.may(&["HR Manager", "System Manager"], doctype)?;
            let document = request_object(body, query)?;
            let value = text(&document, "last_sync_of_checkin");
            let updated = shared.site(|site| {
                let shift = site.shift_types.get_mut(name)?;
                if let Some(value) = &value {
                    shift.last_sync_of_checkin = Some(value.clone());
                }
                Some(shift.clone())
            });
            let shift = updated.ok_or_else(|| not_found("Shift Type", name))?;
            if let Some(value) = value {
                shared.record(|stats| stats.shift_type_updates.push((name.to_owned(), value)));
            }
            Ok(Answer::Message(json!({
                "name": name,
                "last_sync_of_checkin": shift.last_sync_of_checkin,
            })))
        }
        _ => Err(not_found(doctype, name.unwrap_or_default())),
    }
}

/// `/api/method/<command>`.
async fn call(
    shared: &Shared,
    options: &SiteOptions,
    command: &str,
    query: &[(String, String)],
    body: &Bytes,
    caller: &Caller,
) -> Result<Answer, Failure> {
    if command == "frappe.auth.get_logged_user" {
        return Ok(Answer::Message(json!(caller.user)));
    }
    if command == INSERT_MANY {
        return insert_many(shared, options, query, body, caller).await;
    }
    let served = match command.split_once('.') {
        Some(("hrms", rest)) if rest == ADD_LOG && !options.legacy_erpnext => true,
        Some(("erpnext", rest)) if rest == ADD_LOG && options.legacy_erpnext => true,
        _ => false,
    };
    if !served {
        let module = command
            .rsplit_once('.')
            .map_or(command, |(module, _)| module);
        let missing = module.split('.').take(2).collect::<Vec<_>>().join(".");
        return Err(Failure::new(
            417,
            "ValidationError",
            "frappe.exceptions",
            &format!("Failed to get method for command {command} with No module named '{missing}'"),
        ));
    }
    caller.may(&HR_ROLES, "Employee Checkin")?;
    let arguments = request_object(body, query)?;
    let field =
        text(&arguments, "employee_fieldname").unwrap_or_else(|| "attendance_device_id".into());
    let value = text(&arguments, "employee_field_value");
    shared.record(|stats| {
        if options.legacy_erpnext {
            stats.legacy_calls += 1;
        } else {
            stats.method_calls += 1;
        }
    });
    let employee = match &value {
        None => None,
        Some(value) => Some(shared.site(|site| {
            site.employee_by_field(&field, value)
                .map(|e| e.name.clone())
        })?),
    };
    let checkin = NewCheckin {
        employee,
        timestamp: text(&arguments, "timestamp"),
        ..new_checkin(&arguments)
    };
    if value.is_none() || checkin.timestamp.is_none() {
        let missing = if value.is_none() {
            "employee_field_value"
        } else {
            "timestamp"
        };
        return Err(Failure::crash(
            "TypeError",
            format!(
                "TypeError: add_log_based_on_employee_field() missing 1 required positional argument: '{missing}'"
            ),
        ));
    }
    create(shared, options, checkin, caller, value).await
}

/// Checks, waits (the server's work), then inserts — with no lock in between, as
/// Frappe has no unique index: two concurrent requests for one punch both land.
async fn create(
    shared: &Shared,
    options: &SiteOptions,
    checkin: NewCheckin,
    caller: &Caller,
    pin: Option<String>,
) -> Result<Answer, Failure> {
    shared.record(|stats| {
        stats.creates += 1;
        stats
            .timestamps
            .push(checkin.timestamp.clone().unwrap_or_default());
    });
    let faults = shared.faults();
    if let Some(pin) = &pin {
        if faults.crash_for_pin.as_deref() == Some(pin.as_str()) {
            return Err(Failure::crash(
                "TypeError",
                "TypeError: unsupported operand type(s) for -: 'NoneType' and 'datetime.datetime'"
                    .into(),
            ));
        }
        if faults.unavailable_for_pin.as_deref() == Some(pin.as_str()) {
            return Err(Failure {
                status: 503,
                exc_type: String::new(),
                exception: String::new(),
                messages: Vec::new(),
                title: "Message",
            });
        }
    }
    let time = shared.site(|site| site.check(&checkin))?;
    if let Some((exc_type, error)) = shared.take_database_failure() {
        tokio::time::sleep(options.latency).await;
        return Err(Failure::crash(
            exc_type,
            format!("frappe.exceptions.{exc_type}: {error}"),
        ));
    }
    let key = (checkin.employee.clone().unwrap_or_default(), time);
    shared.begin_create(&key);
    tokio::time::sleep(options.latency).await;
    shared.end_create(&key);
    let created = shared.site(|site| site.insert(checkin, &caller.user));
    shared.record(|stats| stats.created += 1);
    Ok(Answer::Created(created.document()))
}

/// `frappe.client.insert_many`: every document is validated and inserted in order in one
/// transaction, so one failure (a duplicate, an Inactive employee) fails the request
/// and commits none of it, and the answer does not say which document failed. Costs
/// the site's per-document time for each.
async fn insert_many(
    shared: &Shared,
    options: &SiteOptions,
    query: &[(String, String)],
    body: &Bytes,
    caller: &Caller,
) -> Result<Answer, Failure> {
    caller.may(&HR_ROLES, "Employee Checkin")?;
    let arguments = request_object(body, query)?;
    let docs: Vec<Value> = match arguments.get("docs") {
        Some(Value::Array(docs)) => docs.clone(),
        Some(Value::String(text)) => serde_json::from_str(text).map_err(|_| {
            Failure::crash(
                "JSONDecodeError",
                "json.decoder.JSONDecodeError: docs".into(),
            )
        })?,
        _ => {
            return Err(Failure::crash(
                "TypeError",
                "TypeError: insert_many() missing 1 required positional argument: 'docs'".into(),
            ));
        }
    };
    if docs.len() > INSERT_MANY_LIMIT {
        return Err(Failure::new(
            417,
            "ValidationError",
            "frappe.exceptions",
            &format!("Only {INSERT_MANY_LIMIT} inserts allowed in one request"),
        ));
    }
    let checkins: Vec<NewCheckin> = docs
        .iter()
        .map(|doc| {
            let empty = Map::new();
            let doc = doc.as_object().unwrap_or(&empty);
            NewCheckin {
                employee: text(doc, "employee"),
                timestamp: text(doc, "time"),
                ..new_checkin(doc)
            }
        })
        .collect();
    shared.record(|stats| {
        stats.bulk_requests += 1;
        stats.creates += checkins.len() as u64;
        stats.timestamps.extend(
            checkins
                .iter()
                .map(|c| c.timestamp.clone().unwrap_or_default()),
        );
    });
    // A document that crashes the server crashes the whole request.
    let faults = shared.faults();
    if let Some(pin) = &faults.crash_for_pin {
        let employee = shared.site(|site| {
            site.employee_by_field("attendance_device_id", pin)
                .map(|employee| employee.name.clone())
                .ok()
        });
        if checkins
            .iter()
            .any(|c| c.employee.is_some() && c.employee == employee)
        {
            return Err(Failure::crash(
                "TypeError",
                "TypeError: unsupported operand type(s) for -: 'NoneType' and 'datetime.datetime'"
                    .into(),
            ));
        }
    }
    if let Some((exc_type, error)) = shared.take_database_failure() {
        tokio::time::sleep(options.latency).await;
        return Err(Failure::crash(
            exc_type,
            format!("frappe.exceptions.{exc_type}: {error}"),
        ));
    }
    if shared.take_raced_bulk_insert()
        && let Some(first) = checkins.first()
    {
        let first = first.clone();
        shared.site(|site| site.insert(first, "someone-else@example.com"));
    }
    tokio::time::sleep(options.document_cost * checkins.len() as u32).await;
    let names = shared.site(|site| {
        // In order, each seeing the ones before it; any failure rolls all back.
        let savepoint = site.savepoint();
        let names = checkins
            .into_iter()
            .map(|checkin| {
                site.check(&checkin)?;
                Ok(site.insert(checkin, &caller.user).name)
            })
            .collect::<Result<Vec<String>, Failure>>();
        if names.is_err() {
            site.roll_back(savepoint);
        }
        names
    })?;
    shared.record(|stats| stats.created += names.len() as u64);
    Ok(Answer::Message(json!(names)))
}

fn new_checkin(document: &Map<String, Value>) -> NewCheckin {
    let number = |key: &str| match document.get(key) {
        Some(Value::Number(n)) => n.as_f64().unwrap_or_default(),
        Some(Value::String(s)) => s.parse().unwrap_or_default(),
        _ => 0.0,
    };
    NewCheckin {
        employee: None,
        timestamp: None,
        log_type: text(document, "log_type"),
        device_id: text(document, "device_id"),
        skip_auto_attendance: document.get("skip_auto_attendance").map_or(0, flag),
        latitude: number("latitude"),
        longitude: number("longitude"),
    }
}

fn text(document: &Map<String, Value>, key: &str) -> Option<String> {
    match document.get(key)? {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

fn flag(value: &Value) -> i64 {
    match value {
        Value::Bool(true) => 1,
        Value::Number(n) => n.as_i64().unwrap_or_default(),
        Value::String(s) => s.parse().unwrap_or_default(),
        _ => 0,
    }
}

/// The request's arguments: a JSON body, a form body (its `data` may hold JSON), or
/// the query string.
fn request_object(body: &Bytes, query: &[(String, String)]) -> Result<Map<String, Value>, Failure> {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    if trimmed.starts_with('{') {
        return match serde_json::from_str::<Value>(trimmed) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(Failure::crash(
                "JSONDecodeError",
                "json.decoder.JSONDecodeError: Expecting value: line 1 column 13 (char 12)".into(),
            )),
        };
    }
    let mut map = Map::new();
    let form: Vec<(String, String)> = form_urlencoded::parse(trimmed.as_bytes())
        .into_owned()
        .collect();
    for (key, value) in form.iter().chain(query) {
        if key == "data"
            && let Ok(Value::Object(inner)) = serde_json::from_str::<Value>(value)
        {
            map.extend(inner);
        } else {
            map.insert(key.clone(), Value::String(value.clone()));
        }
    }
    Ok(map)
}

/// The caller, or `None` for a key that is refused (401).
fn authenticate(headers: &HeaderMap, shared: &Shared) -> Option<Caller> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Some(Caller::guest());
    };
    let value = value.to_str().unwrap_or_default().trim();
    let pair = if let Some(rest) = value
        .strip_prefix("token ")
        .or_else(|| value.strip_prefix("Token "))
    {
        Some(rest.trim().to_owned())
    } else if let Some(rest) = value.strip_prefix("Basic ") {
        base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
    } else {
        None
    };
    let (key, secret) = pair?
        .split_once(':')
        .map(|(k, s)| (k.to_owned(), s.to_owned()))?;
    shared.key(&key, &secret)
}

impl Shared {
    fn key(&self, key: &str, secret: &str) -> Option<Caller> {
        if self.revoked() {
            return None;
        }
        self.options
            .keys
            .iter()
            .find(|api| api.key == key && api.secret == secret)
            .map(|api| Caller {
                user: api.user.clone(),
                roles: api.roles.clone(),
            })
    }
}

fn message(value: Value) -> Response {
    axum::Json(json!({ "message": value })).into_response()
}

fn data(value: Value) -> Response {
    axum::Json(json!({ "data": value })).into_response()
}

/// A failure as Frappe serializes it.
fn error(failure: &Failure, tracebacks: bool) -> Response {
    let status = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if failure.exc_type.is_empty() {
        return (status, "<html><body>Service Unavailable</body></html>").into_response();
    }
    let mut body = Map::new();
    body.insert("exc_type".into(), json!(failure.exc_type));
    if !failure.exception.is_empty() && tracebacks {
        body.insert("exception".into(), json!(failure.exception));
    }
    if !failure.messages.is_empty() {
        let encoded: Vec<String> = failure
            .messages
            .iter()
            .map(|message| {
                let mut one = json!({"message": message, "title": failure.title});
                if failure.status == 417 {
                    one["indicator"] = json!("red");
                    one["raise_exception"] = json!(1);
                }
                one.to_string()
            })
            .collect();
        body.insert(
            "_server_messages".into(),
            json!(serde_json::to_string(&encoded).unwrap_or_default()),
        );
    }
    if failure.status == 403 {
        body.insert(
            "_error_message".into(),
            json!(failure.messages.first().cloned().unwrap_or_default()),
        );
    }
    if tracebacks && !failure.exception.is_empty() {
        let trace = format!(
            "Traceback (most recent call last):\n  File \"apps/frappe/frappe/app.py\", line 115, in application\n{}\n",
            failure.exception
        );
        body.insert(
            "exc".into(),
            json!(serde_json::to_string(&vec![trace]).unwrap_or_default()),
        );
    }
    (status, axum::Json(Value::Object(body))).into_response()
}

fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let Some(hex) = path.get(index + 1..index + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
