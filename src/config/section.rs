//! One section of the configuration file (`[sync]`, a `[[device]]`, a `[sink.NAME]`),
//! as every source and sink reads its own: typed keys with errors a person can act on.
//!
//! An error names the file, the line, the section and the key, says what is wrong in
//! plain words ("\"1234\" is text where a number is expected") and what to write
//! instead ("write comm_key = 1234, without quotes"); a misspelt key gets the nearest
//! real one suggested. Relative paths in the file are resolved against the file's own
//! folder, so `--config /srv/school/iclock-sync.toml` works from anywhere.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::error::ConfigError;

/// The configuration file (or `.env`, for a configuration from the environment alone).
#[derive(Debug, Clone, Default)]
pub struct Document {
    /// Its name in messages: `iclock-sync.toml`, `/srv/school/iclock-sync.toml`, `.env`.
    pub origin: String,
    /// Its text, for line numbers (empty when there is no file).
    text: String,
    /// Where relative paths in it start from: the file's folder.
    base_dir: PathBuf,
}

impl Document {
    pub fn new(origin: &str, text: &str, base_dir: &Path) -> Document {
        Document {
            origin: origin.to_owned(),
            text: text.to_owned(),
            base_dir: base_dir.to_path_buf(),
        }
    }

    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The section under the `occurrence`-th (0-based) header `header` (`[sync]`,
    /// `[[device]]`, `[sink.frappe]`), called `title` in messages.
    pub fn section(&self, header: &str, occurrence: usize, title: &str) -> Section<'_> {
        Section {
            document: self,
            header: header.to_owned(),
            occurrence,
            title: title.to_owned(),
            shared_keys: &[],
        }
    }

    /// The 1-based line of `key` in the given section, when it can be found.
    fn line_of(&self, header: &str, occurrence: usize, key: Option<&str>) -> Option<usize> {
        let compact = |line: &str| line.split_whitespace().collect::<String>();
        let lines: Vec<&str> = self.text.lines().collect();
        // The top level (no header) runs from the first line to the first header.
        let first = if header.is_empty() {
            0
        } else {
            let start = lines
                .iter()
                .enumerate()
                .filter(|(_, line)| compact(line) == header)
                .map(|(index, _)| index)
                .nth(occurrence)?;
            if key.is_none() {
                return Some(start + 1);
            }
            start + 1
        };
        let key = key?;
        lines
            .iter()
            .enumerate()
            .skip(first)
            .take_while(|(_, line)| !line.trim_start().starts_with('['))
            .find(|(_, line)| {
                line.trim_start()
                    .strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            })
            .map(|(index, _)| index + 1)
    }
}

/// One section of a [`Document`].
#[derive(Debug, Clone)]
pub struct Section<'a> {
    document: &'a Document,
    header: String,
    occurrence: usize,
    /// `[[device]] 'Gate'`, `[sink.frappe]`, ...
    title: String,
    /// Keys of the section read by someone else (a device's `name`, `timezone`, …),
    /// offered as suggestions for a misspelt key too.
    shared_keys: &'static [&'static str],
}

impl Section<'_> {
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The same section under another title (once a device's name is known).
    pub fn titled(&self, title: String) -> Section<'_> {
        Section {
            title,
            ..self.clone()
        }
    }

    /// The same section, where `keys` are read by the caller.
    pub fn sharing(&self, keys: &'static [&'static str]) -> Section<'_> {
        Section {
            shared_keys: keys,
            ..self.clone()
        }
    }

    /// Where `key` (or the section itself) is, for messages.
    pub fn at(&self, key: Option<&str>) -> String {
        let line = self
            .document
            .line_of(&self.header, self.occurrence, key)
            .map(|line| format!(" line {line}"))
            .unwrap_or_default();
        let key = key.map(|key| format!(" key `{key}`")).unwrap_or_default();
        format!("{}{line}: {}{key}", self.document.origin, self.title)
    }

    pub fn error(
        &self,
        key: Option<&str>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        ConfigError::new(self.at(key), problem, fix)
    }

    /// `path` as written in the file, resolved against the file's folder.
    pub fn path(&self, path: &Path) -> PathBuf {
        self.document.base_dir.join(path)
    }

    /// `tls_cert` and `tls_key` (PEM files, resolved against the file's folder): both,
    /// or neither for plain HTTP.
    pub fn tls_files(
        &self,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> Result<Option<(PathBuf, PathBuf)>, ConfigError> {
        match (cert, key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some((self.path(&cert), self.path(&key)))),
            (Some(_), None) | (None, Some(_)) => Err(self.error(
                Some("tls_cert"),
                "tls_cert and tls_key go together",
                "give both: tls_cert = \"server.pem\" (the certificate chain) and tls_key = \"server.key\" (its private key), or neither for plain HTTP",
            )),
        }
    }

    /// The section's table (`[sink.sqlite] = 5` is not one).
    pub fn table(&self, value: toml::Value) -> Result<toml::Table, ConfigError> {
        match value {
            toml::Value::Table(table) => Ok(table),
            _ => Err(self.error(
                None,
                "is not a section",
                format!(
                    "write {} on a line of its own, with its keys below it",
                    self.header
                ),
            )),
        }
    }

    /// The section's keys as `T`.
    pub fn read<T: DeserializeOwned>(&self, table: toml::Table) -> Result<T, ConfigError> {
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|error| {
            let key = error
                .path()
                .iter()
                .next()
                .map(|segment| segment.to_string())
                .filter(|key| !key.is_empty() && key != "?");
            let message = error.inner().message().trim().to_owned();
            let (key, problem, fix) = explain(&message, key, self.shared_keys);
            self.error(key.as_deref(), problem, fix)
        })
    }
}

/// Turns serde's wording into a problem and a fix a person can act on; returns the key
/// the problem is about.
fn explain(
    message: &str,
    key: Option<String>,
    shared_keys: &[&str],
) -> (Option<String>, String, String) {
    let reference = "see the configuration reference in README.md".to_owned();
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let field = between_backticks(rest).unwrap_or_default();
        let known: Vec<&str> = rest
            .split('`')
            .skip(3)
            .step_by(2)
            .chain(shared_keys.iter().copied())
            .collect();
        let suggestion = known
            .iter()
            .map(|candidate| (strsim::jaro_winkler(field, candidate), *candidate))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, candidate)| format!("did you mean `{candidate}`? "))
            .unwrap_or_default();
        let mut listed = known.clone();
        listed.sort_unstable();
        listed.dedup();
        let fix = format!("{suggestion}the keys here are {}", listed.join(", "));
        return (
            Some(field.to_owned()),
            format!("`{field}` is not a key here"),
            fix,
        );
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        let field = between_backticks(rest).unwrap_or_default().to_owned();
        let fix = format!("add {field} = … ({reference})");
        return (None, format!("`{field}` is missing"), fix);
    }
    let Some(rest) = message.strip_prefix("invalid type: ") else {
        return (key, message.to_owned(), reference);
    };
    let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
    let name = key.clone().unwrap_or_else(|| "the key".into());
    let number = [
        "u8", "u16", "u32", "u64", "usize", "i32", "i64", "f64", "integer",
    ]
    .iter()
    .any(|kind| expected.contains(kind));
    let (what, fix) = if number {
        let quoted = found
            .strip_prefix("string ")
            .map(|text| text.trim_matches('"'))
            .filter(|text| text.parse::<f64>().is_ok());
        let example = quoted.unwrap_or("10");
        (
            "a number",
            format!("write {name} = {example}, without quotes"),
        )
    } else if expected.contains("bool") {
        (
            "true or false",
            format!("write {name} = true or {name} = false"),
        )
    } else if expected.contains("string")
        || expected.contains("variant")
        || expected.contains("duration")
    {
        let bare = found
            .split_once(' ')
            .map(|(_, value)| value.trim_matches('`'))
            .unwrap_or("…");
        (
            "text",
            format!("put the value in quotes: {name} = \"{bare}\""),
        )
    } else if expected.contains("sequence") {
        ("a list", format!("write a list: {name} = [\"…\"]"))
    } else {
        (expected, reference)
    };
    let found = found
        .replace("string ", "")
        .replace("integer ", "the number ")
        .replace('`', "");
    (
        key,
        format!("{found} is given where {what} is expected"),
        fix,
    )
}

fn between_backticks(text: &str) -> Option<&str> {
    text.split('`').nth(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Terminal {
        address: String,
        #[serde(default)]
        comm_key: u32,
        #[serde(default)]
        clear_after_sync: bool,
    }

    const TEXT: &str = "[sync]\nid_scheme = \"native\"\n\n[[device]]\nname = \"Gate\"\n\n[[device]]\nname = \"Office\"\nkind = \"zk\"\naddress = \"10.0.0.2\"\ncomm_key = \"1234\"\ntimezon = \"UTC\"\n";

    fn read(table: &str) -> ConfigError {
        let document = Document::new("iclock-sync.toml", TEXT, Path::new("/srv/school"));
        let section = document.section("[[device]]", 1, "[[device]] 'Office'");
        section
            .sharing(&["name", "kind", "timezone"])
            .read::<Terminal>(toml::from_str(table).unwrap())
            .unwrap_err()
    }

    #[test]
    fn a_wrong_type_names_the_line_the_key_and_what_to_write() {
        let error = read("address = \"10.0.0.2\"\ncomm_key = \"1234\"").to_string();
        assert!(
            error.starts_with("iclock-sync.toml line 11: [[device]] 'Office' key `comm_key`"),
            "{error}"
        );
        assert!(
            error.contains("\"1234\" is given where a number is expected"),
            "{error}"
        );
        assert!(
            error.contains("write comm_key = 1234, without quotes"),
            "{error}"
        );
        let error = read("address = \"10.0.0.2\"\nclear_after_sync = \"yes\"").to_string();
        assert!(error.contains("write clear_after_sync = true"), "{error}");
        let error = read("address = 5").to_string();
        assert!(
            error.contains("put the value in quotes: address = \"5\""),
            "{error}"
        );
    }

    #[test]
    fn a_misspelt_key_is_matched_against_every_key_of_the_section() {
        let error = read("address = \"x\"\ntimezon = \"UTC\"").to_string();
        assert!(error.contains("line 12"), "{error}");
        assert!(error.contains("did you mean `timezone`?"), "{error}");
        let error = read("comm_key = 1").to_string();
        assert!(error.contains("`address` is missing"), "{error}");
    }

    #[test]
    fn relative_paths_start_from_the_files_folder() {
        let document = Document::new("x.toml", "", Path::new("/srv/school"));
        let section = document.section("[sync]", 0, "[sync]");
        assert_eq!(
            section.path(Path::new("cache")),
            Path::new("/srv/school/cache")
        );
        assert_eq!(
            section.path(Path::new("/var/lib/x")),
            Path::new("/var/lib/x")
        );
    }
}
