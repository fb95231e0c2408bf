//! `iclock-sync token new|list|revoke` and `iclock-sync password`: the credentials of
//! `serve`'s API and dashboard, written into the configuration file's `[serve]` as
//! hashes only. A new token is printed once, here, and never again; the password is
//! read without echo (or from standard input when it is not a terminal).
//!
//! The file is edited in place of its text (comments and layout kept) and replaced
//! atomically with its owner and mode; when it cannot be written, the lines to add are
//! printed instead. A running `serve` takes them within seconds (it watches the file).

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, value};

use crate::config::serve::Scope;
use crate::config::{self, Environment, LoadOptions};
use crate::exit::Exit;
use crate::output::Output;
use crate::web::secrets;

#[derive(Debug, Clone, Subcommand)]
pub enum TokenAction {
    /// Make an API token and print it once: `token new --scope read --name payroll`.
    New(NewToken),
    /// The tokens configured (names and scopes; tokens themselves are not kept).
    List,
    /// Remove a token: `token revoke payroll`.
    Revoke {
        /// Its name.
        name: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct NewToken {
    /// read (look only) or admin (look and act: retry, backfill, commands).
    #[arg(long, value_parser = parse_scope)]
    pub scope: Scope,
    /// A name to know it by (who uses it).
    #[arg(long)]
    pub name: Option<String>,
}

fn parse_scope(text: &str) -> Result<Scope, String> {
    Scope::parse(text).ok_or_else(|| format!("'{text}' is not read or admin"))
}

/// The configuration file and its text as an editable document.
struct ConfigFile {
    path: PathBuf,
    document: DocumentMut,
}

impl ConfigFile {
    fn open(
        path: Option<PathBuf>,
        environment: &Environment,
        output: &Output,
    ) -> Result<ConfigFile, Exit> {
        let options = LoadOptions {
            path,
            dry_run: true,
        };
        // Refuse to add to a file that does not load: the message says what to fix.
        let loaded = config::load(&options, environment)
            .map_err(|error| output.error(&error.to_string(), Exit::Configuration))?;
        let path = PathBuf::from(&loaded.document.origin);
        if path.extension().is_none_or(|extension| extension != "toml") {
            return Err(output.error(
                &format!(
                    "the configuration comes from {}, not a configuration file: credentials go in iclock-sync.toml's [serve] — create one with `iclock-sync init`, or pass --config",
                    loaded.document.origin
                ),
                Exit::Configuration,
            ));
        }
        let document = loaded
            .document
            .text()
            .parse::<DocumentMut>()
            .map_err(|error| {
                output.error(&format!("{}: {error}", path.display()), Exit::Configuration)
            })?;
        Ok(ConfigFile { path, document })
    }

    fn serve(&mut self) -> &mut Table {
        let serve = self
            .document
            .entry("serve")
            .or_insert_with(|| Item::Table(Table::new()));
        if !serve.is_table() {
            *serve = Item::Table(Table::new());
        }
        serve.as_table_mut().expect("made a table above")
    }

    fn tokens(&mut self) -> &mut ArrayOfTables {
        let tokens = self
            .serve()
            .entry("token")
            .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()));
        if !tokens.is_array_of_tables() {
            *tokens = Item::ArrayOfTables(ArrayOfTables::new());
        }
        tokens
            .as_array_of_tables_mut()
            .expect("made an array above")
    }

    /// Writes the file back; on failure says what to add by hand (`lines`).
    fn save(&self, lines: &str, output: &Output) -> Result<(), Exit> {
        replace_keeping_owner(&self.path, self.document.to_string().as_bytes()).map_err(|error| {
            output.error(
                &format!(
                    "cannot write {}: {error} — run this as its owner (sudo), or add these lines to its [serve] section yourself:\n{lines}",
                    self.path.display()
                ),
                Exit::Incomplete,
            )
        })
    }
}

/// Replaces `path` atomically, the new file with the old one's mode and owner.
fn replace_keeping_owner(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path)?;
    let mut temp = crate::atomic_file::TempFile::create_beside(path)?;
    temp.file.set_permissions(metadata.permissions())?;
    // Only root can give a file away; anyone else writes their own file anyway.
    let _ = std::os::unix::fs::fchown(&temp.file, Some(metadata.uid()), Some(metadata.gid()));
    temp.file.write_all(contents)?;
    temp.commit()
}

pub fn token(
    action: &TokenAction,
    config_path: Option<PathBuf>,
    environment: &Environment,
    output: &Output,
) -> Exit {
    let mut file = match ConfigFile::open(config_path, environment, output) {
        Ok(file) => file,
        Err(exit) => return exit,
    };
    let names: Vec<String> = file
        .tokens()
        .iter()
        .filter_map(|token| token.get("name")?.as_str().map(str::to_owned))
        .collect();
    match action {
        TokenAction::List => {
            if names.is_empty() {
                output.say("No API tokens. Make one with `iclock-sync token new --scope read`.");
            }
            for token in file.tokens().iter() {
                let text = |key: &str| {
                    token
                        .get(key)
                        .and_then(|item| item.as_str())
                        .unwrap_or("?")
                        .to_owned()
                };
                output.say(&format!("{}  scope {}", text("name"), text("scope")));
            }
            Exit::Success
        }
        TokenAction::Revoke { name } => {
            let Some(index) = names.iter().position(|known| known == name) else {
                return output.error(
                    &format!(
                        "no token is called '{name}' in {}; `iclock-sync token list` shows them",
                        file.path.display()
                    ),
                    Exit::Configuration,
                );
            };
            file.tokens().remove(index);
            if let Err(exit) = file.save(
                &format!("(remove the [[serve.token]] named '{name}')"),
                output,
            ) {
                return exit;
            }
            output.say(&format!("Token '{name}' removed from {}; a running `iclock-sync serve` refuses it within seconds.", file.path.display()));
            Exit::Success
        }
        TokenAction::New(args) => {
            let name = args.name.clone().unwrap_or_else(|| {
                (1..)
                    .map(|n| format!("token-{n}"))
                    .find(|name| !names.contains(name))
                    .unwrap_or_default()
            });
            if names.contains(&name) {
                return output.error(
                    &format!("a token is already called '{name}'; choose another --name, or `iclock-sync token revoke {name}` first"),
                    Exit::Configuration,
                );
            }
            let token = match secrets::new_token() {
                Ok(token) => token,
                Err(problem) => return output.error(&problem, Exit::Incomplete),
            };
            let hash = secrets::token_hash(&token);
            let mut entry = Table::new();
            entry.insert("name", value(name.as_str()));
            entry.insert("scope", value(args.scope.name()));
            entry.insert("hash", value(hash.as_str()));
            file.tokens().push(entry);
            let lines = format!(
                "[[serve.token]]\nname = \"{name}\"\nscope = \"{}\"\nhash = \"{hash}\"",
                args.scope.name()
            );
            if let Err(exit) = file.save(&lines, output) {
                // The token is printed anyway: the lines above make it work.
                println!("{token}");
                return exit;
            }
            eprintln!(
                "API token '{name}' ({} scope) added to {} (its hash only). It is shown this once — copy it now (a running `iclock-sync serve` takes it within seconds):",
                args.scope.name(),
                file.path.display()
            );
            println!("{token}");
            Exit::Success
        }
    }
}

pub fn password(config_path: Option<PathBuf>, environment: &Environment, output: &Output) -> Exit {
    let mut file = match ConfigFile::open(config_path, environment, output) {
        Ok(file) => file,
        Err(exit) => return exit,
    };
    let password = match read_password() {
        Ok(password) => password,
        Err(problem) => return output.error(&problem, Exit::Configuration),
    };
    let hash = match secrets::hash_password(&password) {
        Ok(hash) => hash,
        Err(problem) => return output.error(&problem, Exit::Incomplete),
    };
    file.serve().insert("password_hash", value(hash.as_str()));
    if let Err(exit) = file.save(&format!("password_hash = \"{hash}\""), output) {
        return exit;
    }
    output.say(&format!(
        "The dashboard password is set ({} [serve] password_hash, an argon2 hash). A running `iclock-sync serve` takes it within seconds and signs everyone out.",
        file.path.display()
    ));
    Exit::Success
}

/// Twice without echo at a terminal; one line from standard input otherwise.
fn read_password() -> Result<String, String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New dashboard password: ")
            .map_err(|error| error.to_string())?;
        let again =
            rpassword::prompt_password("The same again: ").map_err(|error| error.to_string())?;
        if first != again {
            return Err("the two passwords differ; nothing was changed".into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|error| format!("cannot read the password from standard input: {error}"))?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.chars().count() < 8 {
        return Err(
            "the password is shorter than 8 characters; choose a longer one (nothing was changed)"
                .into(),
        );
    }
    Ok(password)
}
