//! `[[device]] kind = "adms"`: a terminal that pushes to the receiver, known by its
//! serial number. It is never read: `serve` takes its punches as they arrive.

use std::any::Any;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::config::error::ConfigError;
use crate::config::section::Section;
use crate::punch::DeviceLabel;
use crate::source::{DeviceKind, Source, SourceConfig, SourceError, SourceErrorKind};

pub const KIND: DeviceKind = DeviceKind {
    name: "adms",
    describes: "a terminal that pushes to iclock-sync serve's [adms] receiver",
    parse,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmsDeviceConfig {
    /// The terminal's serial number (`SN` in its requests; on its label and in its
    /// System Info menu).
    pub serial: String,
}

fn parse(table: toml::Table, section: &Section) -> Result<Arc<dyn SourceConfig>, ConfigError> {
    let mut config: AdmsDeviceConfig = section.read(table)?;
    config.serial = config.serial.trim().to_owned();
    let plausible = !config.serial.is_empty()
        && config.serial.len() <= 64
        && config
            .serial
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-_.".contains(character));
    if !plausible {
        return Err(section.error(
            Some("serial"),
            format!("'{}' is not a serial number", config.serial),
            "copy the serial number from the terminal's label or its System Info menu, e.g. serial = \"CQZ7224460246\"",
        ));
    }
    Ok(Arc::new(config))
}

impl SourceConfig for AdmsDeviceConfig {
    fn kind(&self) -> &'static str {
        "adms"
    }

    fn location(&self) -> String {
        format!("ADMS terminal {}", self.serial)
    }

    fn pushes(&self) -> Option<&str> {
        Some(&self.serial)
    }

    fn user_control(&self) -> Result<&'static str, &'static str> {
        Ok(
            "their record queued back with an ended validity window; the terminal needs UserValidTimeFun=1",
        )
    }

    fn open(
        &self,
        label: Arc<DeviceLabel>,
        _cursor: Option<&Value>,
    ) -> Result<Box<dyn Source>, SourceError> {
        Err(SourceError::new(
            SourceErrorKind::Configuration,
            format!(
                "{} ({}) pushes its punches to `iclock-sync serve`; it cannot be read",
                label.name,
                self.location()
            ),
        ))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
