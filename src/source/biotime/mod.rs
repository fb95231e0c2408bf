//! The BioTime connector: punches from a BioTime / ZKBioTime server's REST API
//! (`GET /iclock/api/transactions/`), read incrementally by upload time so that late
//! uploads from offline terminals are not missed (see [`cursor`]).

mod client;
mod config;
pub mod cursor;
pub mod transactions;

use std::collections::HashSet;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use serde_json::Value;
use tokio::sync::mpsc;

pub use client::jwt_lifetime;
pub use config::{AuthScheme, BiotimeConfig, KIND};

use self::client::{Answer, BiotimeClient};
use self::cursor::{Admission, Scan, ScanMode, Watermark};
use self::transactions::{loose_field, parse_page, parse_row};
use crate::punch::{DeviceLabel, WALL_TIME_FORMAT};
use crate::source::{
    DeviceCheck, FetchEnd, FetchPlan, Fetched, Settlement, Source, SourceError, SourceErrorKind,
};

const TRANSACTIONS: &str = "/iclock/api/transactions/";
const TERMINALS: &str = "/iclock/api/terminals/";
/// A scan that needs more pages than this is a server paging in circles.
const MAX_PAGES: u64 = 100_000;

pub struct BiotimeSource {
    label: Arc<DeviceLabel>,
    config: BiotimeConfig,
    client: BiotimeClient,
    key_prefix: String,
    watermark: Watermark,
    scan: Option<Scan>,
}

impl BiotimeSource {
    /// `cursor` is what [`Source::settle`] returned in an earlier run.
    pub fn new(
        label: Arc<DeviceLabel>,
        config: &BiotimeConfig,
        cursor: Option<&Value>,
    ) -> Result<BiotimeSource, SourceError> {
        let client = BiotimeClient::new(&label.name, config)?;
        let watermark = cursor
            .and_then(|value| serde_json::from_value::<Watermark>(value.clone()).ok())
            .filter(|watermark| watermark.url == config.url)
            .unwrap_or_else(|| Watermark {
                url: config.url.clone(),
                ..Watermark::default()
            });
        Ok(BiotimeSource {
            key_prefix: format!("biotime:{}", config.url),
            label,
            config: config.clone(),
            client,
            watermark,
            scan: None,
        })
    }

    fn first_query(&self, mode: ScanMode, plan: &FetchPlan) -> String {
        let size = self.config.page_size;
        let mut query = format!("?page_size={size}&limit={size}");
        match mode {
            ScanMode::Descending => query.push_str("&ordering=-upload_time"),
            ScanMode::Full => {}
            ScanMode::Window => {
                query.push_str("&ordering=punch_time");
                if let Some(since) = plan.since {
                    let now = Utc::now().with_timezone(&self.label.timezone).naive_local();
                    let since = chrono::Duration::from_std(since)
                        .ok()
                        .and_then(|since| now.checked_sub_signed(since))
                        .unwrap_or(now);
                    query.push_str("&start_time=");
                    query.push_str(
                        &since
                            .format(WALL_TIME_FORMAT)
                            .to_string()
                            .replace(' ', "%20"),
                    );
                }
            }
        }
        query
    }

    async fn scan_pages(
        &mut self,
        scan: &mut Scan,
        plan: &FetchPlan,
        out: &mpsc::Sender<Vec<Fetched>>,
    ) -> Result<FetchEnd, SourceError> {
        let mut query = self.first_query(scan.mode, plan);
        let mut visited = HashSet::new();
        // Pages by the rows they hold: a server whose `next` links count on for ever
        // while sending the same rows is caught at the first repeat.
        let mut page_rows = HashSet::new();
        let mut pages: u64 = 0;
        let mut rows_read: u64 = 0;
        let mut shutdown = plan.shutdown.clone();
        loop {
            if shutdown.is_requested() {
                return Ok(FetchEnd::Interrupted);
            }
            if pages >= MAX_PAGES {
                return Err(self.protocol_error(format!(
                    "BioTime kept sending pages ({MAX_PAGES}); stopped reading"
                )));
            }
            if !visited.insert(query.clone()) {
                return Err(self.protocol_error(format!(
                    "BioTime sent the page '{query}' twice (a pagination loop); stopped reading"
                )));
            }
            let path = format!("{TRANSACTIONS}{query}");
            let answer = tokio::select! {
                answer = self.client.get(&path) => answer?,
                () = shutdown.requested() => return Ok(FetchEnd::Interrupted),
                () = tokio::time::sleep_until(plan.deadline) => {
                    return Err(plan.overran(&format!(
                        "device '{}' ({})",
                        self.label.name,
                        self.client.base()
                    )));
                }
            };
            let body = match answer {
                Answer::Json(answer) => answer.body,
                // Rows were deleted while paging: offset paging may then have skipped
                // some, so the scan must not count as complete (the cursor stays).
                Answer::NotFound(_) if pages > 0 => {
                    return Err(self.protocol_error(
                        "the transaction list shrank while it was being read (rows deleted on the server?); what was read is delivered, the rest is read next cycle",
                    ));
                }
                Answer::NotFound(detail) => {
                    return Err(SourceError::new(
                        SourceErrorKind::Configuration,
                        format!(
                            "device '{}' ({}): there is no transactions API at {TRANSACTIONS} ({detail}) — check the URL",
                            self.label.name,
                            self.client.base()
                        ),
                    ));
                }
            };
            let page = parse_page(&body).map_err(|problem| {
                self.protocol_error(format!("cannot read a transactions page: {problem}"))
            })?;
            pages += 1;
            let page_was_empty = page.rows.is_empty();
            rows_read += page.rows.len() as u64;
            // Only a full or windowed scan reads as many rows as the count says.
            let total = page.count.filter(|_| scan.mode != ScanMode::Descending);
            plan.progress.report(rows_read, total, "rows");

            let mut batch = Vec::with_capacity(page.rows.len());
            let mut reached_floor = false;
            let mut out_of_order = false;
            let mut fingerprint = DefaultHasher::new();
            for row in page.rows {
                let (fetched, position) = parse_row(&self.key_prefix, row);
                (position.id, position.upload_time).hash(&mut fingerprint);
                if !scan.keeps_order(position.upload_time) {
                    out_of_order = true;
                    break;
                }
                match scan.admit(position, &self.watermark) {
                    Admission::Send => batch.push(fetched),
                    Admission::Skip => {}
                    Admission::BelowFloor => reached_floor = true,
                }
            }
            if !page_was_empty && !page_rows.insert(fingerprint.finish()) {
                return Err(self.protocol_error(format!(
                    "BioTime sent rows it had already sent (page {pages} repeats an earlier one: its next-page links go on while the rows do not change); stopped reading — what was read is delivered"
                )));
            }
            if !batch.is_empty() && out.send(batch).await.is_err() {
                return Ok(FetchEnd::Interrupted);
            }
            if out_of_order {
                tracing::warn!(
                    device = %self.label.name,
                    "BioTime ignores ordering=-upload_time; reading every transaction instead (slower, still correct)"
                );
                scan.fall_back_to_full();
                query = self.first_query(ScanMode::Full, plan);
                visited.clear();
                page_rows.clear();
                rows_read = 0;
                pages = 0;
                continue;
            }
            if reached_floor && scan.mode == ScanMode::Descending {
                return Ok(FetchEnd::Complete);
            }
            let Some(next) = page.next else {
                return Ok(FetchEnd::Complete);
            };
            if page_was_empty {
                return Err(self.protocol_error(
                    "BioTime sent an empty page that points to a further page; stopped reading to avoid a loop",
                ));
            }
            query = query_string(&next).ok_or_else(|| {
                self.protocol_error(format!("cannot follow the next-page link '{next}'"))
            })?;
        }
    }

    fn protocol_error(&self, problem: impl AsRef<str>) -> SourceError {
        SourceError::new(
            SourceErrorKind::Protocol,
            format!(
                "device '{}' ({}): {}",
                self.label.name,
                self.client.base(),
                problem.as_ref()
            ),
        )
    }
}

/// The `?query` part of a `next` link. Servers build `next` from their own idea of
/// their address (often an internal host), so only the query is used, against the
/// configured base URL.
fn query_string(next: &str) -> Option<String> {
    let query = next.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    (!query.is_empty()).then(|| format!("?{query}"))
}

#[async_trait]
impl Source for BiotimeSource {
    fn label(&self) -> &Arc<DeviceLabel> {
        &self.label
    }

    fn kind(&self) -> &'static str {
        "biotime"
    }

    fn location(&self) -> String {
        self.config.url.clone()
    }

    async fn fetch(
        &mut self,
        plan: &FetchPlan,
        out: &mpsc::Sender<Vec<Fetched>>,
    ) -> Result<FetchEnd, SourceError> {
        let mode = if plan.since.is_some() {
            ScanMode::Window
        } else {
            ScanMode::Descending
        };
        let mut scan = Scan::new(mode, &self.watermark, self.config.overlap);
        let result = self.scan_pages(&mut scan, plan, out).await;
        self.scan = Some(scan);
        result
    }

    fn settle(&mut self, settlement: &Settlement) -> Option<Value> {
        let scan = self.scan.take()?;
        self.watermark = scan.settle(&self.watermark, settlement, self.config.overlap)?;
        serde_json::to_value(&self.watermark).ok()
    }

    async fn check(&mut self) -> DeviceCheck {
        let mut check = DeviceCheck::default();
        if let Err(error) = self.client.login().await {
            check.reachable = error.kind != SourceErrorKind::Unreachable;
            check.auth_ok = (error.kind == SourceErrorKind::Credentials).then_some(false);
            check.error = Some(error);
            return check;
        }
        check.reachable = true;
        check.auth_ok = Some(true);
        let auth = match (self.client.scheme(), self.client.token_lifetime()) {
            (AuthScheme::Jwt, Some(lifetime)) => {
                format!("JWT (token valid for {} s)", lifetime.as_secs())
            }
            (scheme, _) => format!("{} token", scheme.header_prefix()),
        };
        check.facts.push(("auth".into(), auth));
        let newest = format!("{TRANSACTIONS}?page_size=1&limit=1&ordering=-upload_time");
        let asked = std::time::Instant::now();
        let answer = self.client.get(&newest).await;
        let elapsed = asked.elapsed();
        match answer {
            Ok(Answer::Json(answer)) => {
                check.facts.push((
                    "response time".into(),
                    format!("{} ms", elapsed.as_millis()),
                ));
                if let Some(server_time) = answer.server_time {
                    check.clock_drift = Some(server_time - Utc::now());
                    check.device_clock = Some(
                        server_time
                            .with_timezone(&self.label.timezone)
                            .naive_local(),
                    );
                }
                match parse_page(&answer.body) {
                    Ok(page) => {
                        check.punches = page.count;
                        let newest = page
                            .rows
                            .first()
                            .map(|row| parse_row(&self.key_prefix, row).1);
                        if let Some(upload) = newest.and_then(|position| position.upload_time) {
                            check.facts.push((
                                "newest upload".into(),
                                upload.format(WALL_TIME_FORMAT).to_string(),
                            ));
                        }
                    }
                    Err(problem) => check.error = Some(self.protocol_error(problem)),
                }
            }
            Ok(Answer::NotFound(detail)) => {
                check.error = Some(self.protocol_error(format!("no transactions API ({detail})")));
            }
            Err(error) => check.error = Some(error),
        }
        let terminals = format!("{TERMINALS}?page_size=100&limit=100");
        if let Ok(Answer::Json(answer)) = self.client.get(&terminals).await
            && let Ok(page) = parse_page(&answer.body)
        {
            let text = |row, name| loose_field(row, name).text();
            check.facts.push((
                "terminals".into(),
                page.count.unwrap_or(page.rows.len() as u64).to_string(),
            ));
            for (index, row) in page.rows.iter().enumerate() {
                check.facts.push((
                    format!("  terminal {}", index + 1),
                    format!(
                        "{} \"{}\" (last seen {})",
                        text(row, "sn").unwrap_or_default(),
                        text(row, "alias").unwrap_or_default(),
                        text(row, "last_activity").unwrap_or_else(|| "never".into()),
                    ),
                ));
            }
        }
        check
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_keep_only_their_query() {
        assert_eq!(
            query_string("http://127.0.0.1:8081/iclock/api/transactions/?page=2&page_size=10"),
            Some("?page=2&page_size=10".into())
        );
        assert_eq!(
            query_string("/iclock/api/transactions/?page=3"),
            Some("?page=3".into())
        );
        assert_eq!(query_string("http://x/iclock/api/transactions/"), None);
    }
}
