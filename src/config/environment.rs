//! Where `${NAME}` and the `BIOTIME_*` / `DEVICE_*` keys are looked up: the process
//! environment first, then `.env` beside the configuration file (the working directory
//! when there is none).
//!
//! `.env` is read as python-dotenv reads it, because the Python iclock-sync's `.env`
//! must work unchanged: `KEY=value` lines (an `export` prefix is fine), `#` comments,
//! unquoted values that keep inner spaces and lose a trailing ` # comment`, single
//! quotes taken literally, double quotes with `\n \t \" \\` escapes (and line breaks),
//! and `${NAME}` / `${NAME:-default}` references in unquoted and double-quoted values.
//! A line that cannot be read is skipped with a warning, as python-dotenv does.

use std::collections::HashMap;
use std::path::Path;

use super::error::ConfigError;

/// `.env`'s entries, on top of the process environment. It holds passwords and keys,
/// so its `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct Environment {
    dotenv: HashMap<String, String>,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.dotenv.keys().collect();
        names.sort_unstable();
        f.debug_struct("Environment")
            .field("dotenv_names", &names)
            .finish_non_exhaustive()
    }
}

impl Environment {
    /// The process environment plus `.env` in `folder` (if present); also returns
    /// warnings about lines of `.env` that were skipped.
    pub fn load(folder: &Path) -> Result<(Environment, Vec<String>), ConfigError> {
        let path = folder.join(".env");
        if !path.exists() {
            return Ok((Environment::default(), Vec::new()));
        }
        let text = std::fs::read_to_string(&path).map_err(|error| {
            ConfigError::new(
                path.display().to_string(),
                format!("cannot be read: {error}"),
                "check the file's permissions, and that it is text (UTF-8)",
            )
        })?;
        let (entries, warnings) = parse(&text, &|name| std::env::var(name).ok());
        Ok((
            Environment {
                dotenv: entries.into_iter().collect(),
            },
            warnings,
        ))
    }

    /// An environment with these `.env` entries (for tests).
    pub fn with(entries: &[(&str, &str)]) -> Environment {
        Environment {
            dotenv: entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| self.dotenv.get(name).cloned())
    }
}

/// Parses `.env` text; `outside` looks up variables for `${NAME}` (the process
/// environment), which win over earlier entries of the file.
pub fn parse(
    text: &str,
    outside: &dyn Fn(&str) -> Option<String>,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut warnings = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut at = 0;
    let mut line = 1;
    while at < chars.len() {
        let (start, start_line) = (at, line);
        match entry(&chars, &mut at, &mut line) {
            Ok(None) => {}
            Ok(Some((key, value, expand))) => {
                let value = if expand {
                    let lookup = |name: &str| {
                        outside(name).or_else(|| {
                            entries
                                .iter()
                                .rev()
                                .find(|(key, _)| key == name)
                                .map(|(_, v)| v.clone())
                        })
                    };
                    interpolate(&value, &lookup)
                } else {
                    value
                };
                entries.push((key, value));
            }
            Err(problem) => {
                warnings.push(format!(
                    ".env line {start_line}: {problem}; the line is skipped"
                ));
                (at, line) = (start, start_line);
                while at < chars.len() && chars[at] != '\n' {
                    at += 1;
                }
            }
        }
        if at < chars.len() && chars[at] == '\n' {
            at += 1;
            line += 1;
        }
    }
    (entries, warnings)
}

/// Reads one line's entry starting at `at`: `Ok(None)` for blank and comment lines;
/// otherwise the key, the value, and whether `${...}` is expanded in it.
fn entry(
    chars: &[char],
    at: &mut usize,
    line: &mut usize,
) -> Result<Option<(String, String, bool)>, String> {
    let skip_blanks = |at: &mut usize| {
        while *at < chars.len() && matches!(chars[*at], ' ' | '\t' | '\r') {
            *at += 1;
        }
    };
    skip_blanks(at);
    if *at >= chars.len() || chars[*at] == '\n' {
        return Ok(None);
    }
    if chars[*at] == '#' {
        while *at < chars.len() && chars[*at] != '\n' {
            *at += 1;
        }
        return Ok(None);
    }
    let word = |at: &mut usize| {
        let start = *at;
        while *at < chars.len()
            && (chars[*at].is_ascii_alphanumeric() || matches!(chars[*at], '_' | '.' | '-'))
        {
            *at += 1;
        }
        chars[start..*at].iter().collect::<String>()
    };
    let mut key = word(at);
    if key == "export" && *at < chars.len() && matches!(chars[*at], ' ' | '\t') {
        skip_blanks(at);
        key = word(at);
    }
    if key.is_empty() {
        return Err("expected KEY=value".into());
    }
    skip_blanks(at);
    if *at >= chars.len() || chars[*at] == '\n' {
        // `KEY` alone: python-dotenv gives it no value.
        return Ok(None);
    }
    if chars[*at] != '=' {
        return Err(format!("expected '=' after {key}"));
    }
    *at += 1;
    skip_blanks(at);
    let (value, expand) = match chars.get(*at) {
        Some('\'') => (quoted(chars, at, line, '\'')?, false),
        Some('"') => (quoted(chars, at, line, '"')?, true),
        _ => {
            let start = *at;
            while *at < chars.len() && chars[*at] != '\n' {
                if chars[*at] == '#' && *at > start && matches!(chars[*at - 1], ' ' | '\t') {
                    break;
                }
                *at += 1;
            }
            let value: String = chars[start..*at].iter().collect();
            while *at < chars.len() && chars[*at] != '\n' {
                *at += 1;
            }
            return Ok(Some((key, value.trim_end().to_owned(), true)));
        }
    };
    skip_blanks(at);
    if *at < chars.len() && !matches!(chars[*at], '\n' | '#') {
        return Err(format!("unexpected text after the quoted value of {key}"));
    }
    while *at < chars.len() && chars[*at] != '\n' {
        *at += 1;
    }
    Ok(Some((key, value, expand)))
}

/// A quoted value starting at the opening quote; double quotes understand escapes.
fn quoted(chars: &[char], at: &mut usize, line: &mut usize, quote: char) -> Result<String, String> {
    *at += 1;
    let mut value = String::new();
    while let Some(&c) = chars.get(*at) {
        *at += 1;
        match c {
            c if c == quote => return Ok(value),
            '\\' if quote == '"' => {
                let escaped = chars.get(*at).copied().unwrap_or('\\');
                *at += 1;
                match escaped {
                    'n' => value.push('\n'),
                    't' => value.push('\t'),
                    'r' => value.push('\r'),
                    '"' | '\\' => value.push(escaped),
                    other => {
                        value.push('\\');
                        value.push(other);
                    }
                }
            }
            '\\' if matches!(chars.get(*at), Some('\'') | Some('\\')) => {
                value.push(chars[*at]);
                *at += 1;
            }
            '\n' => {
                *line += 1;
                value.push('\n');
            }
            c => value.push(c),
        }
    }
    Err(format!("the {quote} quote is never closed"))
}

/// `${NAME}` and `${NAME:-default}`; an unknown name becomes empty, as in python-dotenv.
fn interpolate(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let Some(length) = rest[start + 2..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let inner = &rest[start + 2..start + 2 + length];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        match lookup(name).filter(|value| !value.is_empty()) {
            Some(found) => out.push_str(&found),
            None => out.push_str(default.unwrap_or_default()),
        }
        rest = &rest[start + 3 + length..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (HashMap<String, String>, Vec<String>) {
        let outside = |name: &str| (name == "HOME").then(|| "/home/school".to_owned());
        let (entries, warnings) = parse(text, &outside);
        (entries.into_iter().collect(), warnings)
    }

    #[test]
    fn the_python_tools_env_reads_as_python_dotenv_reads_it() {
        let (env, warnings) = read(
            "# iClock-Sync\nDEVICE_IPS=192.168.1.201,192.168.1.202\nDEVICE_NAMES=Main Office,Staff Room   # two clocks\nexport DEVICE_PORT = 4370\nFIREBASE_KEY=config/firebase-key.json\nEMPTY=\nBARE\n",
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(env["DEVICE_NAMES"], "Main Office,Staff Room");
        assert_eq!(env["DEVICE_PORT"], "4370");
        assert_eq!(env["FIREBASE_KEY"], "config/firebase-key.json");
        assert_eq!(env["EMPTY"], "");
        assert!(!env.contains_key("BARE"));
    }

    #[test]
    fn quotes_escapes_and_references_follow_python_dotenv() {
        let (env, warnings) = read(concat!(
            "A='literal ${HOME} \\n # not a comment'\n",
            "B=\"tab\\tquote\\\" ${HOME}/key.json\"\n",
            "C=\"two\nlines\" # comment\n",
            "D=${MISSING:-fallback}-${A_UNSET}\n",
            "E=ends with hash#kept\n",
            "F=${B}\n",
        ));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(env["A"], "literal ${HOME} \\n # not a comment");
        assert_eq!(env["B"], "tab\tquote\" /home/school/key.json");
        assert_eq!(env["C"], "two\nlines");
        assert_eq!(env["D"], "fallback-");
        assert_eq!(env["E"], "ends with hash#kept");
        assert_eq!(env["F"], env["B"]);
    }

    #[test]
    fn its_debug_form_shows_names_never_values() {
        let environment = Environment::with(&[("BIOTIME_PASSWORD", "hunter2")]);
        let shown = format!("{environment:?} {environment:#?}");
        assert!(shown.contains("BIOTIME_PASSWORD"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn unreadable_lines_are_skipped_with_their_line_number() {
        let (env, warnings) = read("GOOD=1\nthis is not a setting\nQ=\"never closed\nALSO=2\n");
        assert_eq!(env.get("GOOD").map(String::as_str), Some("1"));
        assert_eq!(env.get("ALSO").map(String::as_str), Some("2"));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].starts_with(".env line 2: expected '=' after this"),
            "{warnings:?}"
        );
        assert!(warnings[1].starts_with(".env line 3:"), "{warnings:?}");
    }
}
