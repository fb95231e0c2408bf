//! `iclock-sync db migrate SINK`: creates or upgrades our table in a database sink,
//! for set-ups where the sink itself may not change the schema (`migrate = false`,
//! a user without CREATE) and a database administrator runs this once instead.

use std::path::PathBuf;

use clap::Subcommand;

use crate::config::Environment;
use crate::exit::Exit;
use crate::output::Output;
use crate::sink::sql::SqlConfig;

#[derive(Debug, Clone, Subcommand)]
pub enum DbAction {
    /// Create or upgrade our table in a database sink: `db migrate postgres` (its name).
    Migrate {
        /// The sink's name (its kind, e.g. `postgres`, unless `name = "…"` is set).
        sink: String,
    },
}

pub async fn run(
    action: &DbAction,
    config_path: Option<PathBuf>,
    environment: &Environment,
    output: &Output,
) -> Exit {
    let DbAction::Migrate { sink } = action;
    let config = match super::load_config(config_path, environment, false, output) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    let databases: Vec<&SqlConfig> = config
        .sinks
        .iter()
        .filter_map(|sink| sink.as_any().downcast_ref::<SqlConfig>())
        .collect();
    let Some(database) = databases.iter().find(|database| database.name == *sink) else {
        let names: Vec<&str> = databases
            .iter()
            .map(|database| database.name.as_str())
            .collect();
        let known = if names.is_empty() {
            "the configuration has no [sink.postgres] or [sink.mysql]".to_owned()
        } else {
            format!("the database sinks are: {}", names.join(", "))
        };
        return output.error(
            &format!("there is no database sink named \"{sink}\" — {known}"),
            Exit::Configuration,
        );
    };
    match crate::sink::sql::migrate_now(database).await {
        Ok(applied) if applied.is_empty() => {
            output.say(&format!(
                "Sink {sink}: our table is up to date; nothing to do."
            ));
            Exit::Success
        }
        Ok(applied) => {
            output.say(&format!(
                "Sink {sink}: applied {} to {}.",
                applied.join(", "),
                database.url.redacted()
            ));
            Exit::Success
        }
        Err(error) => {
            let exit = if error.outage {
                Exit::Incomplete
            } else {
                Exit::Configuration
            };
            output.error(&error.to_string(), exit)
        }
    }
}
