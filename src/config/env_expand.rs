//! `${NAME}` in config strings is replaced by the environment variable `NAME` (after
//! `.env` is loaded), so credentials can stay out of the TOML file. `$$` is a literal `$`.

use toml::Value;

/// Where an unresolved variable was found, and its name.
#[derive(Debug, PartialEq, Eq)]
pub struct Unresolved {
    pub key_path: Vec<String>,
    pub variable: String,
}

/// Expands every string in `value`. Strings under a top-level table named in
/// `lenient_tables` keep unresolved references as written (dry runs never use sink
/// credentials, so they must not require them).
pub fn expand(
    value: &mut Value,
    lenient_tables: &[&str],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Unresolved> {
    let mut path = Vec::new();
    walk(value, &mut path, lenient_tables, lookup)
}

fn walk(
    value: &mut Value,
    path: &mut Vec<String>,
    lenient_tables: &[&str],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Unresolved> {
    match value {
        Value::String(text) => {
            let lenient = path
                .first()
                .is_some_and(|top| lenient_tables.contains(&top.as_str()));
            match expand_str(text, lookup) {
                Ok(expanded) => *text = expanded,
                Err(_) if lenient => {}
                Err(variable) => {
                    return Err(Unresolved {
                        key_path: path.clone(),
                        variable,
                    });
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                path.push(index.to_string());
                walk(item, path, lenient_tables, lookup)?;
                path.pop();
            }
        }
        Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                path.push(key.clone());
                walk(item, path, lenient_tables, lookup)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

/// Expands one string; on failure returns the name of the first unset variable.
pub fn expand_str(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(close) = body.find('}') else {
                out.push_str(&rest[dollar..]);
                return Ok(out);
            };
            let name = &body[..close];
            match lookup(name) {
                Some(value) => out.push_str(&value),
                None => return Err(name.to_owned()),
            }
            rest = &body[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "USER" => Some("admin".into()),
            "PASS" => Some("s3cret".into()),
            _ => None,
        }
    }

    #[test]
    fn variables_are_replaced_and_dollars_escaped() {
        assert_eq!(expand_str("${USER}:${PASS}", &env).unwrap(), "admin:s3cret");
        assert_eq!(
            expand_str("cost $$5 and $x", &env).unwrap(),
            "cost $5 and $x"
        );
        assert_eq!(expand_str("${MISSING}", &env).unwrap_err(), "MISSING");
    }

    #[test]
    fn unresolved_names_their_key_unless_lenient() {
        let mut value: Value = toml::from_str(
            "[[device]]\nname = \"a\"\npassword = \"${NOPE}\"\n[sink.x]\nkey = \"${ALSO_NOPE}\"\n",
        )
        .unwrap();
        let error = expand(&mut value.clone(), &[], &env).unwrap_err();
        assert_eq!(error.key_path, vec!["device", "0", "password"]);
        assert_eq!(error.variable, "NOPE");
        value["device"][0]["password"] = Value::String("ok".into());
        expand(&mut value, &["sink"], &env).unwrap();
        assert_eq!(value["sink"]["x"]["key"].as_str(), Some("${ALSO_NOPE}"));
    }
}
