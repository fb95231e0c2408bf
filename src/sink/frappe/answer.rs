//! What a Frappe error answer says, read the way `docs/frappe.md` describes: the
//! `exc_type`, and `_server_messages` — a JSON string holding a list of JSON strings,
//! each an object with a `message` — decoded twice and stripped of HTML, so that the
//! user reads "This employee already has a log with the same timestamp." and not a
//! wall of escapes. `exc` (the traceback) is never relied on.

use serde_json::Value;

/// A non-2xx answer from Frappe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorAnswer {
    pub status: u16,
    /// e.g. `ValidationError`; empty when the body was not Frappe's JSON (a proxy page).
    pub exc_type: String,
    /// The decoded messages, joined; else the `exception` line; else the status.
    pub message: String,
    /// The `exception` line, when the site sends it.
    pub exception: String,
}

impl ErrorAnswer {
    pub fn parse(status: u16, body: &str) -> ErrorAnswer {
        let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let exc_type = json["exc_type"].as_str().unwrap_or_default().to_owned();
        let exception = json["exception"].as_str().unwrap_or_default().to_owned();
        let mut messages = server_messages(&json);
        if messages.is_empty()
            && let Some(error) = json["_error_message"].as_str()
        {
            messages.push(strip_html(error));
        }
        let message = if !messages.is_empty() {
            messages.join(" ")
        } else if !exception.is_empty() {
            strip_html(&exception)
        } else if !exc_type.is_empty() {
            exc_type.clone()
        } else {
            format!("HTTP {status}")
        };
        ErrorAnswer {
            status,
            exc_type,
            message,
            exception,
        }
    }

    /// A redirect to `target`, which is not followed (the request carries the key).
    pub fn redirect(status: u16, base: &str, target: &str) -> ErrorAnswer {
        ErrorAnswer {
            status,
            exc_type: String::new(),
            message: format!(
                "{base} redirected to {target}; the API key is not sent to another address — set url in [sink.frappe] to where the site answers (with https:// if it redirects to HTTPS)"
            ),
            exception: String::new(),
        }
    }

    /// An answer longer than `limit` bytes, which was not read to its end.
    pub fn oversized(status: u16, limit: usize) -> ErrorAnswer {
        ErrorAnswer {
            status,
            exc_type: String::new(),
            message: format!(
                "the answer is larger than {} MB; stopped reading it",
                limit / (1024 * 1024)
            ),
            exception: String::new(),
        }
    }

    pub fn is_redirect(&self) -> bool {
        (300..400).contains(&self.status)
    }

    /// Frappe's duplicate rule (employee, time, log type) refused it: the punch is there.
    pub fn is_duplicate(&self) -> bool {
        self.status == 417
            && self
                .message
                .contains("already has a log with the same timestamp")
    }

    /// `add_log_based_on_employee_field` found nobody with the PIN.
    pub fn is_unknown_employee(&self) -> bool {
        self.status == 417 && self.message.contains("No Employee found")
    }

    pub fn is_inactive_employee(&self) -> bool {
        self.exc_type == "InactiveEmployeeStatusError" || self.message.contains("Inactive Employee")
    }

    /// The method path does not exist on this site (HRMS not installed, or ERPNext
    /// ≤ 13 where the method lives under `erpnext.`).
    pub fn is_missing_method(&self) -> bool {
        self.status == 404 || (self.status == 417 && self.message.contains("Failed to get method"))
    }

    /// A 500 that says the database or a lock was briefly unavailable, or a 500 that
    /// is not Frappe's JSON at all (a proxy's page): worth retrying. Other 500s are
    /// Frappe failing on this record. Sites that hide tracebacks (the production
    /// default) send only the `exc_type`, so that alone must be enough: a lock wait
    /// timeout, a deadlock, or a database error that says nothing more.
    pub fn is_transient_server_error(&self) -> bool {
        const PASSING_TYPES: [&str; 3] =
            ["QueryTimeoutError", "QueryDeadlockError", "InterfaceError"];
        if self.status >= 500
            && (PASSING_TYPES.contains(&self.exc_type.as_str())
                || (self.exc_type == "OperationalError" && self.exception.is_empty()))
        {
            return true;
        }
        const PASSING: [&str; 7] = [
            "(2003",
            "(2006",
            "(2013",
            "(1205",
            "(1213",
            "Lost connection",
            "Can't connect",
        ];
        self.status >= 500
            && (self.exc_type.is_empty()
                || PASSING.iter().any(|sign| self.exception.contains(sign)))
    }
}

/// `_server_messages`, decoded twice, each message without its HTML.
fn server_messages(json: &Value) -> Vec<String> {
    let Some(outer) = json["_server_messages"].as_str() else {
        return Vec::new();
    };
    let Ok(items) = serde_json::from_str::<Vec<String>>(outer) else {
        return vec![strip_html(outer)];
    };
    items
        .iter()
        .map(|item| match serde_json::from_str::<Value>(item) {
            Ok(Value::Object(object)) => object
                .get("message")
                .and_then(Value::as_str)
                .map(strip_html)
                .unwrap_or_default(),
            _ => strip_html(item),
        })
        .filter(|message| !message.is_empty())
        .collect()
}

/// Tags removed, `<br>` as a space, entities for `&<>"'` decoded, spaces collapsed.
pub fn strip_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    let mut tag = String::new();
    for c in text.chars() {
        match (in_tag, c) {
            (false, '<') => {
                in_tag = true;
                tag.clear();
            }
            (true, '>') => {
                in_tag = false;
                if tag.trim().eq_ignore_ascii_case("br") || tag.trim().eq_ignore_ascii_case("br/") {
                    out.push(' ');
                }
            }
            (true, c) => tag.push(c),
            (false, c) => out.push(c),
        }
    }
    let decoded = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a real site answered to a duplicate add_log call.
    const DUPLICATE: &str = r#"{"exc_type": "ValidationError", "exception": "frappe.exceptions.ValidationError: This employee already has a log with the same timestamp.", "_server_messages": "[\"{\\\"message\\\": \\\"This employee already has a log with the same timestamp.<Br><a href=\\\\\\\"/app/Form/Employee Checkin/EMP-CKIN-11-2026-000001\\\\\\\" style=\\\\\\\"font-weight: bold;\\\\\\\">Employee Checkin Alice</a>\\\", \\\"title\\\": \\\"Message\\\", \\\"indicator\\\": \\\"red\\\", \\\"raise_exception\\\": 1}\"]"}"#;

    #[test]
    fn server_messages_are_decoded_twice_and_stripped() {
        let answer = ErrorAnswer::parse(417, DUPLICATE);
        assert_eq!(
            answer.message,
            "This employee already has a log with the same timestamp. Employee Checkin Alice"
        );
        assert!(answer.is_duplicate());
        assert!(!answer.is_unknown_employee());
    }

    #[test]
    fn answers_without_messages_fall_back_to_the_exception_or_the_status() {
        let crash = ErrorAnswer::parse(
            500,
            r#"{"exc_type": "TypeError", "exception": "TypeError: add_log_based_on_employee_field() missing 1 required positional argument: 'timestamp'"}"#,
        );
        assert!(crash.message.starts_with("TypeError: add_log"));
        assert!(!crash.is_transient_server_error());
        let bare = ErrorAnswer::parse(500, r#"{"exc_type": "TypeError"}"#);
        assert_eq!(bare.message, "TypeError");
        let proxy = ErrorAnswer::parse(502, "<html>Bad Gateway</html>");
        assert_eq!(proxy.message, "HTTP 502");
        assert!(proxy.is_transient_server_error());
        let database = ErrorAnswer::parse(
            500,
            r#"{"exc_type": "OperationalError", "exception": "pymysql.err.OperationalError: (2013, 'Lost connection to MySQL server during query')"}"#,
        );
        assert!(database.is_transient_server_error());
        // Tracebacks hidden (the production default): the type alone must do.
        for exc_type in [
            "QueryTimeoutError",
            "QueryDeadlockError",
            "OperationalError",
        ] {
            let hidden = ErrorAnswer::parse(500, &format!(r#"{{"exc_type": "{exc_type}"}}"#));
            assert!(hidden.is_transient_server_error(), "{exc_type}");
        }
    }

    #[test]
    fn a_missing_method_is_recognised_in_both_forms() {
        let old_site = ErrorAnswer::parse(
            417,
            r#"{"exc_type": "ValidationError", "_server_messages": "[\"{\\\"message\\\": \\\"Failed to get method for command hrms.hr.doctype.employee_checkin.employee_checkin.add_log_based_on_employee_field with No module named 'hrms'\\\"}\"]"}"#,
        );
        assert!(old_site.is_missing_method());
        assert!(ErrorAnswer::parse(404, "{}").is_missing_method());
    }

    #[test]
    fn html_is_removed_and_entities_decoded() {
        assert_eq!(
            strip_html(
                "User <strong>norole@example.com</strong> does not have access &amp; more<br>next"
            ),
            "User norole@example.com does not have access & more next"
        );
    }
}
