//! A database's raw insert ceiling for the rows iclock-sync wrote, for
//! `scripts/bench-databases`.
//!
//! Reads back every row the sink stored in our table (or collection) and times
//! inserting them again into a fresh copy with the same columns and indexes, the
//! plainest fast way each database offers: PostgreSQL an `INSERT … SELECT FROM
//! UNNEST(…)` of 5,000 rows at a time, MySQL/MariaDB multi-row `INSERT … VALUES` of
//! 1,000 rows, MongoDB `insert_many` of 1,000 documents. No ledger, no checks, no
//! outcome per row: what writing them costs with everything else taken away.
//! Prints one line: `<rows written> <seconds>`.
//!
//! Usage: `cargo run --release --example database_ceiling -- postgres|mysql|mongodb URL`

use std::time::Instant;

use futures::TryStreamExt;
use mongodb::bson::{Document, doc};
use sqlx::{AssertSqlSafe, Connection, Executor, MySqlConnection, PgConnection, QueryBuilder, Row};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: database_ceiling postgres|mysql|mongodb URL";
    let kind = args.next().ok_or(usage)?;
    let url = args.next().ok_or(usage)?;
    let (rows, seconds) = match kind.as_str() {
        "postgres" => postgres(&url).await?,
        "mysql" => mysql(&url).await?,
        "mongodb" => mongodb(&url).await?,
        _ => return Err(usage.into()),
    };
    println!("{rows} {seconds:.3}");
    Ok(())
}

const COLUMNS: &str = "id, device_name, device_serial, user_id, local_time, utc_time, timezone, \
                       punch_state, verify_mode, work_code, source, source_key, received_at, delivered_at";

async fn postgres(url: &str) -> Result<(usize, f64), Box<dyn std::error::Error>> {
    let mut db = PgConnection::connect(url).await?;
    db.execute("DROP TABLE IF EXISTS ceiling").await?;
    db.execute("CREATE TABLE ceiling (LIKE iclock_punches INCLUDING ALL)")
        .await?;
    let rows = sqlx::query(
        "SELECT id, device_name, device_serial, user_id, local_time::text, utc_time::text, timezone, \
         punch_state, verify_mode, work_code, source, source_key, received_at::text, delivered_at::text \
         FROM iclock_punches",
    )
    .fetch_all(&mut db)
    .await?;
    let text = |index: usize| -> Vec<String> { rows.iter().map(|row| row.get(index)).collect() };
    let number = |index: usize| -> Vec<i32> { rows.iter().map(|row| row.get(index)).collect() };
    let columns = (
        text(0),
        text(1),
        text(2),
        text(3),
        text(4),
        text(5),
        text(6),
        number(7),
        number(8),
        text(9),
        text(10),
        text(11),
        text(12),
        text(13),
    );
    let started = Instant::now();
    for start in (0..rows.len()).step_by(5000) {
        let end = (start + 5000).min(rows.len());
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO ceiling ({COLUMNS}) SELECT a, b, c, d, e::timestamp, f::timestamptz, g, h, i, j, k, l, \
             m::timestamptz, n::timestamptz FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], \
             $5::text[], $6::text[], $7::text[], $8::int4[], $9::int4[], $10::text[], $11::text[], $12::text[], \
             $13::text[], $14::text[]) AS t(a, b, c, d, e, f, g, h, i, j, k, l, m, n)"
        )))
        .bind(&columns.0[start..end])
        .bind(&columns.1[start..end])
        .bind(&columns.2[start..end])
        .bind(&columns.3[start..end])
        .bind(&columns.4[start..end])
        .bind(&columns.5[start..end])
        .bind(&columns.6[start..end])
        .bind(&columns.7[start..end])
        .bind(&columns.8[start..end])
        .bind(&columns.9[start..end])
        .bind(&columns.10[start..end])
        .bind(&columns.11[start..end])
        .bind(&columns.12[start..end])
        .bind(&columns.13[start..end])
        .execute(&mut db)
        .await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    db.execute("DROP TABLE ceiling").await?;
    Ok((rows.len(), seconds))
}

async fn mysql(url: &str) -> Result<(usize, f64), Box<dyn std::error::Error>> {
    let mut db = MySqlConnection::connect(url).await?;
    db.execute("DROP TABLE IF EXISTS ceiling").await?;
    db.execute("CREATE TABLE ceiling LIKE iclock_punches")
        .await?;
    let rows = sqlx::query(
        "SELECT id, device_name, device_serial, user_id, CAST(local_time AS CHAR), CAST(`utc_time` AS CHAR), \
         timezone, punch_state, verify_mode, work_code, source, source_key, CAST(received_at AS CHAR), \
         CAST(delivered_at AS CHAR) FROM iclock_punches",
    )
    .fetch_all(&mut db)
    .await?;
    let started = Instant::now();
    for chunk in rows.chunks(1000) {
        let mut insert = QueryBuilder::new(
            "INSERT INTO ceiling (id, device_name, device_serial, user_id, local_time, `utc_time`, timezone, \
             punch_state, verify_mode, work_code, source, source_key, received_at, delivered_at) ",
        );
        insert.push_values(chunk, |mut values, row| {
            for index in 0..14 {
                if index == 7 || index == 8 {
                    values.push_bind(row.get::<i32, _>(index));
                } else {
                    values.push_bind(row.get::<String, _>(index));
                }
            }
        });
        insert.build().execute(&mut db).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    db.execute("DROP TABLE ceiling").await?;
    Ok((rows.len(), seconds))
}

async fn mongodb(url: &str) -> Result<(usize, f64), Box<dyn std::error::Error>> {
    let client = mongodb::Client::with_uri_str(url).await?;
    let database = client
        .default_database()
        .ok_or("the URL names no database")?;
    let documents: Vec<Document> = database
        .collection::<Document>("punches")
        .find(doc! {})
        .await?
        .try_collect()
        .await?;
    let ceiling = database.collection::<Document>("ceiling");
    ceiling.drop().await?;
    for keys in [
        doc! { "user_id": 1, "local_time": 1 },
        doc! { "device_name": 1, "local_time": 1 },
    ] {
        ceiling
            .create_index(mongodb::IndexModel::builder().keys(keys).build())
            .await?;
    }
    let started = Instant::now();
    for chunk in documents.chunks(1000) {
        ceiling.insert_many(chunk.to_vec()).ordered(false).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    ceiling.drop().await?;
    client.shutdown().await;
    Ok((documents.len(), seconds))
}
