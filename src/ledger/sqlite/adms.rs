//! What the ledger keeps for terminals that push (ADMS): the queue of commands for
//! them (`adms_commands`), who is who on each (`adms_users`), and what a person decided
//! about the ones nobody configured (`adms_decisions`).

use std::time::Duration;

use chrono::Utc;
use sqlx::{Row, SqlitePool};

use super::now_text;
use crate::adms::users::TerminalUser;
use crate::ledger::{AdmsCommand, TerminalDecision};
use crate::punch::utc_text;

pub async fn queue(pool: &SqlitePool, serial: &str, command: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO adms_commands (serial, command, queued_at) VALUES (?, ?, ?) RETURNING id",
    )
    .bind(serial)
    .bind(command)
    .bind(now_text())
    .fetch_one(pool)
    .await
}

/// Up to `limit` open commands for `serial` not handed over within `again_after`,
/// oldest first, marked as handed over now.
pub async fn to_send(
    pool: &SqlitePool,
    serial: &str,
    again_after: Duration,
    limit: usize,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let again = chrono::Duration::from_std(again_after).unwrap_or(chrono::Duration::MAX);
    let before = Utc::now()
        .checked_sub_signed(again)
        .map(utc_text)
        .unwrap_or_default();
    sqlx::query_as(
        "UPDATE adms_commands SET sent_at = ?1, sends = sends + 1 WHERE id IN \
         (SELECT id FROM adms_commands WHERE serial = ?2 AND result_at IS NULL \
          AND (sent_at IS NULL OR sent_at <= ?3) ORDER BY id LIMIT ?4) \
         RETURNING id, command",
    )
    .bind(now_text())
    .bind(serial)
    .bind(before)
    .bind(limit as i64)
    .fetch_all(pool)
    .await
    .map(|mut commands: Vec<(i64, String)>| {
        commands.sort_unstable();
        commands
    })
}

/// Records a command's result; whether the command was waiting for one.
pub async fn finish(
    pool: &SqlitePool,
    serial: &str,
    id: i64,
    return_code: Option<i64>,
    result: &str,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE adms_commands SET result_at = ?, return_code = ?, result = ? \
         WHERE id = ? AND serial = ? AND result_at IS NULL",
    )
    .bind(now_text())
    .bind(return_code)
    .bind(result)
    .bind(id)
    .bind(serial)
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() > 0)
}

/// The newest `limit` commands, of one terminal or all.
pub async fn list(
    pool: &SqlitePool,
    serial: Option<&str>,
    limit: usize,
) -> Result<Vec<AdmsCommand>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, serial, command, queued_at, sent_at, sends, result_at, return_code, result \
         FROM adms_commands WHERE ?1 IS NULL OR serial = ?1 ORDER BY id DESC LIMIT ?2",
    )
    .bind(serial)
    .bind(limit as i64)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AdmsCommand {
                id: row.try_get("id")?,
                serial: row.try_get("serial")?,
                command: row.try_get("command")?,
                queued_at: row.try_get("queued_at")?,
                sent_at: row.try_get("sent_at")?,
                sends: row.try_get::<i64, _>("sends")?.max(0) as u64,
                result_at: row.try_get("result_at")?,
                return_code: row.try_get("return_code")?,
                result: row.try_get("result")?,
            })
        })
        .collect()
}

/// Records the users a terminal described (a name changed on the terminal replaces the
/// one kept); how many.
pub async fn record_users(
    pool: &SqlitePool,
    serial: &str,
    users: &[TerminalUser],
) -> Result<u64, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    let now = now_text();
    for user in users {
        sqlx::query(
            "INSERT INTO adms_users (serial, pin, name, record, updated_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (serial, pin) DO UPDATE SET name = excluded.name, record = excluded.record, \
             updated_at = excluded.updated_at",
        )
        .bind(serial)
        .bind(&user.pin)
        .bind(&user.name)
        .bind(&user.record)
        .bind(&now)
        .execute(&mut *transaction)
        .await?;
    }
    transaction.commit().await?;
    Ok(users.len() as u64)
}

/// The users a terminal described, by PIN.
pub async fn users(pool: &SqlitePool, serial: &str) -> Result<Vec<TerminalUser>, sqlx::Error> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT pin, name, record FROM adms_users WHERE serial = ? ORDER BY pin")
            .bind(serial)
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(pin, name, record)| TerminalUser { pin, name, record })
        .collect())
}

/// Records a decision about a held terminal; an approval under another name drops the
/// terminal's "waiting for approval" device row (its punches carry the new name).
pub async fn decide(pool: &SqlitePool, decision: &TerminalDecision) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO adms_decisions (serial, decision, name, timezone, decided_at, decided_by) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (serial) DO UPDATE SET decision = excluded.decision, \
         name = excluded.name, timezone = excluded.timezone, decided_at = excluded.decided_at, \
         decided_by = excluded.decided_by",
    )
    .bind(&decision.serial)
    .bind(if decision.approved { "approved" } else { "rejected" })
    .bind(&decision.name)
    .bind(&decision.timezone)
    .bind(now_text())
    .bind(&decision.by)
    .execute(&mut *tx)
    .await?;
    let held = format!("ADMS {}", decision.serial);
    if !decision.approved || decision.name != held {
        sqlx::query("DELETE FROM devices WHERE name = ? AND kind = 'adms'")
            .bind(&held)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

pub async fn decisions(pool: &SqlitePool) -> Result<Vec<TerminalDecision>, sqlx::Error> {
    let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT serial, decision, name, timezone, decided_by FROM adms_decisions ORDER BY serial",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(serial, decision, name, timezone, by)| TerminalDecision {
            serial,
            approved: decision == "approved",
            name,
            timezone,
            by,
        })
        .collect())
}
