//! The configured sinks as the engine holds them: open, or down and tried again at the
//! start of each cycle. A sink that cannot be reached when the tool starts is a failing
//! sink — reading and the other sinks go on, its punches wait in the ledger — while a
//! definite configuration fault (a refused key, an unknown database) stops the start.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::ledger::{Ledger, LedgerError, RegisteredSink, SinkId, SinkRegistration};
use crate::sink::{self, Sink, SinkConfig, SinkContext, SinkError};

/// One configured sink.
pub(super) struct SinkSlot {
    config: Arc<dyn SinkConfig>,
    /// The ledger's number for it.
    pub id: SinkId,
    pub state: SinkState,
}

pub(super) enum SinkState {
    Open(Box<dyn Sink>),
    /// It could not be reached; why.
    Down(SinkError),
}

impl SinkSlot {
    pub fn name(&self) -> &str {
        self.config.name()
    }

    pub fn target(&self) -> String {
        match &self.state {
            SinkState::Open(sink) => sink.target(),
            SinkState::Down(error) => error.target.clone(),
        }
    }

    pub fn sink(&self) -> Option<&dyn Sink> {
        match &self.state {
            SinkState::Open(sink) => Some(sink.as_ref()),
            SinkState::Down(_) => None,
        }
    }
}

/// Opens every configured sink (none configured: the embedded SQLite store).
pub(super) async fn open(
    config: &Config,
    context: &SinkContext<'_>,
) -> Result<Vec<SinkSlot>, SinkError> {
    let mut configs = config.sinks.clone();
    if configs.is_empty() {
        configs.push(Arc::new(sink::sqlite::SqliteConfig::default()));
    }
    let mut slots = Vec::new();
    for config in configs {
        let state = open_one(config.as_ref(), context).await?;
        slots.push(SinkSlot {
            config,
            id: 0,
            state,
        });
    }
    Ok(slots)
}

async fn open_one(
    config: &dyn SinkConfig,
    context: &SinkContext<'_>,
) -> Result<SinkState, SinkError> {
    match config.open(context).await {
        Ok(sink) => Ok(SinkState::Open(sink)),
        Err(error) if error.outage => {
            tracing::warn!("{error}; its punches wait in the ledger, it is tried again each cycle");
            Ok(SinkState::Down(error))
        }
        Err(error) => Err(error),
    }
}

/// Tries again to open the sinks that are down; returns what stands in the way of
/// those whose configuration is now refused.
pub(super) async fn reopen(slots: &mut [SinkSlot], context: &SinkContext<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    for slot in slots.iter_mut() {
        if let SinkState::Down(_) = slot.state {
            match open_one(slot.config.as_ref(), context).await {
                Ok(state) => slot.state = state,
                // Its configuration was good when the tool started; say what changed.
                Err(error) => problems.push(error.to_string()),
            }
        }
    }
    problems
}

/// Registers the sinks with the ledger (recording each store's identity) and sets
/// their numbers; returns what registering queued.
pub(super) async fn register(
    slots: &mut [SinkSlot],
    ledger: &dyn Ledger,
    backfill: Option<Duration>,
) -> Result<Vec<RegisteredSink>, LedgerError> {
    let mut registrations = Vec::new();
    for slot in slots.iter() {
        let identity = match slot.sink() {
            Some(sink) => sink.identity().await,
            None => None,
        };
        registrations.push(SinkRegistration {
            name: slot.name().to_owned(),
            target: slot.target(),
            identity,
        });
    }
    let registered = ledger.register_sinks(&registrations, backfill).await?;
    for (slot, registered) in slots.iter_mut().zip(&registered) {
        slot.id = registered.id;
    }
    Ok(registered)
}

/// Whether any sink is down.
pub(super) fn any_down(slots: &[SinkSlot]) -> bool {
    slots
        .iter()
        .any(|slot| matches!(slot.state, SinkState::Down(_)))
}
