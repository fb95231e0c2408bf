//! User control on a terminal: a person is switched off by rewriting their user
//! record with the disabled bit set (as the vendor SDK does), and on by clearing it.
//! Every other byte of the record stays as the terminal sent it, and only records
//! whose state actually changes are written and logged.

use super::ZkSource;
use crate::source::zk::client::ZkError;
use crate::user_control::{SwitchLog, SwitchRecord, SwitchTally, Target, UserSwitch};

impl ZkSource {
    /// Applies `switches` over one connection, logging each change (as an undo when
    /// `undo`).
    pub async fn switch(
        &self,
        switches: &[UserSwitch],
        log: &SwitchLog,
        undo: bool,
    ) -> Result<SwitchTally, String> {
        let mut connection = self.connect().await.map_err(|error| error.message)?;
        let result = async {
            let counters = connection.counters().await?;
            let (_, users) = connection.users(counters.users).await?;
            let mut tally = SwitchTally::default();
            for switch in switches {
                let Some(user) = users.iter().find(|user| user.user_id == switch.user_id) else {
                    tally.unknown.push(switch.user_id.clone());
                    continue;
                };
                if user.enabled() == switch.enable {
                    continue;
                }
                connection
                    .write_user(&user.with_enabled(switch.enable))
                    .await?;
                let mut record = SwitchRecord::new(
                    Target::Device,
                    &self.label.name,
                    &switch.user_id,
                    switch.enable,
                    user.enabled(),
                    &switch.because,
                );
                record.undo = undo;
                if let Err(error) = log.append(&record) {
                    tracing::error!(
                        "user {} on {} was switched, but {} cannot be written: {error}",
                        switch.user_id,
                        self.label.name,
                        log.path().display()
                    );
                }
                if switch.enable {
                    tally.switched_on += 1;
                } else {
                    tally.switched_off += 1;
                }
            }
            Ok::<_, ZkError>(tally)
        }
        .await;
        connection.close().await;
        result.map_err(|error| self.error(error).message)
    }
}
