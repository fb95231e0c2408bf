//! Who a PIN is in Frappe: the Employee whose `employee_field` (default
//! `attendance_device_id`) holds it. Looked up in bulk — one request per hundred new
//! PINs — and remembered for the rest of the cycle; forgotten at the next, so that a PIN
//! mapped in Frappe meanwhile is found.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use serde_json::{Value, json};

use super::client::{CallError, FrappeClient};

/// PINs per lookup request (they travel in the URL).
const PINS_PER_LOOKUP: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Employee {
    /// `HR-EMP-00001`.
    pub name: String,
    pub employee_name: String,
    pub status: String,
    /// The linked Frappe User, if any.
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(Employee),
    Missing,
    /// Several employees carry the PIN: the record cannot be attributed.
    Ambiguous(Vec<String>),
}

pub struct Directory {
    field: String,
    known: Mutex<HashMap<String, Lookup>>,
}

impl Directory {
    pub fn new(field: &str) -> Directory {
        Directory {
            field: field.to_owned(),
            known: Mutex::new(HashMap::new()),
        }
    }

    pub fn field(&self) -> &str {
        &self.field
    }

    pub fn forget(&self) {
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    pub fn get(&self, pin: &str) -> Option<Lookup> {
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(pin)
            .cloned()
    }

    /// Looks up the PINs not known yet.
    pub async fn resolve<'a>(
        &self,
        client: &FrappeClient,
        pins: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), CallError> {
        let mut unknown: Vec<&str> = {
            let known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
            pins.into_iter()
                .filter(|pin| !known.contains_key(*pin))
                .collect()
        };
        unknown.sort_unstable();
        unknown.dedup();
        for chunk in unknown.chunks(PINS_PER_LOOKUP) {
            let rows = client
                .list(
                    "Employee",
                    &[
                        ("filters", json!([[self.field, "in", chunk]]).to_string()),
                        (
                            "fields",
                            json!(["name", "employee_name", "status", "user_id", self.field])
                                .to_string(),
                        ),
                        ("limit_page_length", "0".to_owned()),
                    ],
                )
                .await?;
            let mut found: HashMap<String, Vec<Employee>> = HashMap::new();
            for row in &rows {
                let text = |key: &str| match &row[key] {
                    Value::String(text) => Some(text.clone()),
                    Value::Null => None,
                    other => Some(other.to_string()),
                };
                let (Some(pin), Some(name)) = (text(&self.field), text("name")) else {
                    continue;
                };
                found.entry(pin).or_default().push(Employee {
                    name,
                    employee_name: text("employee_name").unwrap_or_default(),
                    status: text("status").unwrap_or_default(),
                    user_id: text("user_id").filter(|user| !user.is_empty()),
                });
            }
            let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
            for pin in chunk {
                let lookup = match found.remove(*pin) {
                    None => Lookup::Missing,
                    Some(mut employees) if employees.len() == 1 => {
                        Lookup::Found(employees.remove(0))
                    }
                    Some(employees) => {
                        Lookup::Ambiguous(employees.into_iter().map(|e| e.name).collect())
                    }
                };
                known.insert((*pin).to_owned(), lookup);
            }
        }
        Ok(())
    }
}
