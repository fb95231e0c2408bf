//! Frappe's list filters as the REST API takes them (`filters=` JSON): a list of
//! `[field, operator, value]` (or `[doctype, field, operator, value]`), or an object
//! `{field: value}`. The operators a sync client uses are supported.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub field: String,
    pub operator: String,
    pub value: Value,
}

/// Parses the `filters` parameter; `Err` carries the reason.
pub fn parse(text: &str) -> Result<Vec<Filter>, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|error| format!("filters are not JSON: {error}"))?;
    match value {
        Value::Object(map) => Ok(map
            .into_iter()
            .map(|(field, value)| Filter {
                field,
                operator: "=".into(),
                value,
            })
            .collect()),
        Value::Array(items) => items
            .into_iter()
            .map(|item| {
                let parts = item.as_array().cloned().unwrap_or_default();
                let parts = match parts.len() {
                    4 => parts[1..].to_vec(),
                    3 => parts,
                    _ => return Err(format!("a filter must be [field, operator, value]: {item}")),
                };
                Ok(Filter {
                    field: parts[0].as_str().unwrap_or_default().to_owned(),
                    operator: parts[1].as_str().unwrap_or_default().to_lowercase(),
                    value: parts[2].clone(),
                })
            })
            .collect(),
        other => Err(format!("filters must be a list or an object: {other}")),
    }
}

/// Whether a record's `actual` value passes `filter`. Values compare as text, as
/// MariaDB compares these columns (times are `YYYY-MM-DD HH:MM:SS`).
pub fn matches(filter: &Filter, actual: Option<Value>) -> bool {
    let actual = actual.unwrap_or(Value::Null);
    let text = |value: &Value| match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let actual_text = text(&actual);
    let wanted = text(&filter.value);
    let list = || -> Vec<String> {
        match &filter.value {
            Value::Array(items) => items.iter().map(text).collect(),
            Value::String(joined) => joined.split(',').map(|s| s.trim().to_owned()).collect(),
            other => vec![text(other)],
        }
    };
    match filter.operator.as_str() {
        "=" => actual_text == wanted,
        "!=" => actual_text != wanted,
        "in" => list().contains(&actual_text),
        "not in" => !list().contains(&actual_text),
        ">" => actual_text > wanted,
        "<" => actual_text < wanted,
        ">=" => actual_text >= wanted,
        "<=" => actual_text <= wanted,
        "between" => {
            let bounds = list();
            bounds.len() == 2 && actual_text >= bounds[0] && actual_text <= bounds[1]
        }
        "is" => match wanted.as_str() {
            "set" => !actual_text.is_empty(),
            "not set" => actual_text.is_empty(),
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_filter_shapes_parse() {
        let list = parse(r#"[["Employee Checkin","time",">=","2026-03-02 00:00:00"],["employee","in",["A","B"]]]"#).unwrap();
        assert_eq!(list[0].field, "time");
        assert!(matches(&list[0], Some(json!("2026-03-02 08:00:00"))));
        assert!(!matches(&list[0], Some(json!("2026-03-01 23:59:59"))));
        assert!(matches(&list[1], Some(json!("B"))));
        let object = parse(r#"{"status": "Active"}"#).unwrap();
        assert!(matches(&object[0], Some(json!("Active"))));
        assert!(parse("[1]").is_err());
    }
}
