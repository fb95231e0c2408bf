//! The Firestore emulator's raw write ceiling, for `scripts/bench-firestore`.
//!
//! N documents of the native schema — built by the sink's own [`documents::create`], so
//! byte for byte what iclock-sync sends — go out as bare BatchWrite requests of 500
//! create-if-absent writes, CONCURRENCY requests in flight. No source, no cache, no
//! audit, no retries: what the sink's delivery costs with everything else taken away.
//! Prints one line: `<documents written> <seconds>`.
//!
//! Usage: `FIRESTORE_EMULATOR_HOST=127.0.0.1:PORT cargo run --release --example
//! firestore_ceiling -- PROJECT N [CONCURRENCY]`

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDate, TimeDelta};
use firestore::gcloud_sdk::google::firestore::v1::BatchWriteRequest;
use firestore::{FirestoreDb, FirestoreDbOptions};
use futures::StreamExt;
use iclock_sync::punch::{DeviceLabel, Punch, PunchId, SourceKind};
use iclock_sync::sink::firestore::Schema;
use iclock_sync::sink::firestore::documents;

const WRITES_PER_REQUEST: usize = 500;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage =
        "usage: firestore_ceiling PROJECT N [CONCURRENCY] (with FIRESTORE_EMULATOR_HOST set)";
    let project = args.next().ok_or(usage)?;
    let count: usize = args.next().ok_or(usage)?.parse()?;
    let concurrency: usize = args.next().map_or(Ok(8), |text| text.parse())?;
    if std::env::var_os("FIRESTORE_EMULATOR_HOST").is_none() {
        return Err(usage.into());
    }

    let db = FirestoreDb::with_options(FirestoreDbOptions::new(project.clone())).await?;
    let database = format!("projects/{project}/databases/(default)");
    let collection = format!("{database}/documents/attendancePunches");
    let device = Arc::new(DeviceLabel {
        name: "Ceiling".into(),
        timezone: chrono_tz::Asia::Kolkata,
    });
    let serial: Arc<str> = "CEILING".into();
    let terminal: Arc<str> = "".into();
    let start = NaiveDate::from_ymd_opt(2026, 1, 5)
        .and_then(|day| day.and_hms_opt(7, 0, 0))
        .ok_or("bad start time")?;
    let punches: Vec<Punch> = (0..count)
        .map(|n| {
            let local_time = start + TimeDelta::seconds(n as i64);
            let user_id = format!("{}", 1000 + n % 400);
            Punch {
                id: PunchId::native(&serial, &user_id, local_time, 0),
                device: Arc::clone(&device),
                serial: Arc::clone(&serial),
                terminal: Arc::clone(&terminal),
                user_id,
                local_time,
                state: 0,
                verify_mode: 1,
                work_code: "0".into(),
                source: SourceKind::Biotime,
                source_key: format!("ceiling#{n}"),
                received_at: None,
            }
        })
        .collect();

    let began = Instant::now();
    let mut requests = futures::stream::iter(punches.chunks(WRITES_PER_REQUEST).map(|chunk| {
        let writes = chunk
            .iter()
            .map(|punch| documents::create(punch, Schema::Native, &collection, punch.id.as_str()))
            .collect();
        let request = BatchWriteRequest {
            database: database.clone(),
            writes,
            labels: HashMap::new(),
            request_options: None,
        };
        let mut client = db.client().get();
        async move { client.batch_write(request).await }
    }))
    .buffer_unordered(concurrency);
    let mut written = 0usize;
    while let Some(answer) = requests.next().await {
        written += answer?
            .into_inner()
            .status
            .iter()
            .filter(|status| status.code == 0)
            .count();
    }
    println!("{written} {:.3}", began.elapsed().as_secs_f64());
    Ok(())
}
