//! `iclock-sync demo`: the whole job, end to end, with nothing to configure. Starts a
//! simulated ZKTeco terminal and a simulated BioTime server on loopback ports, with a
//! realistic company's punches (including late uploads and a few broken records), lets
//! two simulated terminals push theirs to an ADMS receiver (as `serve` runs it), and
//! syncs all of them into `output/demo/attendance.db`.
//!
//! The simulated data is pinned by `cache/demo/dataset.json` (seed and "now"), so a
//! second `demo` finds exactly the same punches and delivers nothing new.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::adms::device::AdmsDeviceConfig;
use crate::atomic_file;
use crate::cli::DemoArgs;
use crate::commands::serve::start_receiver;
use crate::commands::signals;
use crate::config::adms::AdmsSettings;
use crate::config::section::Document;
use crate::config::{self, Config, Environment, LedgerSettings, Secret, SyncSettings};
use crate::exit::Exit;
use crate::output::Output;
use crate::punch::IdScheme;
use crate::simulate::adms::{self, AdmsSimulatorArgs};
use crate::simulate::biotime::{
    BiotimeSimulator, DatasetSpec, SimOptions, SimTransaction, generate, now_local,
};
use crate::simulate::zk::{self, TerminalProfile, TerminalSpec, ZkSimulator};
use crate::sink::sqlite::SqliteConfig;
use crate::source::DeviceConfig;
use crate::source::biotime::BiotimeConfig;
use crate::source::zk::{TransportChoice, TransportKind, ZkConfig};
use crate::sync::Engine;

const CACHE_DIR: &str = "cache/demo";
const OUTPUT_DIR: &str = "output/demo";
/// Tried first so the device URL (and so its cursor) stays the same between runs.
const PREFERRED_PORT: u16 = 47_381;
const LATE_UPLOADS: u32 = 25;
const TERMINAL_USERS: u16 = 40;
const TERMINAL_SERIAL: &str = "DEMO2026K40";
const BAD_RECORDS: u32 = 5;
/// The terminals that push: serials DEMO-GATE0001 and DEMO-GATE0002.
const PUSHING_PREFIX: &str = "DEMO-GATE";
const PUSHING_TERMINALS: u32 = 2;
const PUSHED_PUNCHES: u64 = 60;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct PinnedDataset {
    seed: u64,
    employees: u32,
    days: u32,
    anchor: NaiveDateTime,
}

pub async fn run(args: &DemoArgs, output: &Output) -> Exit {
    let pinned = pin_dataset(Path::new(CACHE_DIR), args);
    let spec = DatasetSpec {
        employees: pinned.employees,
        days: pinned.days,
        punches: None,
        late_uploads: LATE_UPLOADS,
        bad_records: BAD_RECORDS,
        seed: pinned.seed,
        anchor: pinned.anchor,
    };
    let rows = generate(&spec);
    let count = rows.len();
    let simulator = match start_simulator(rows).await {
        Ok(simulator) => simulator,
        Err(error) => {
            return output.error(
                &format!("cannot start the BioTime simulator on 127.0.0.1: {error}"),
                Exit::Incomplete,
            );
        }
    };
    let terminal_data = zk::generate(&TerminalSpec {
        users: TERMINAL_USERS,
        punches: u64::from(TERMINAL_USERS) * 2 * u64::from(pinned.days),
        bad_records: 0,
        seed: pinned.seed,
        anchor: pinned.anchor,
        layout: zk::layout_of(40),
    });
    let terminal_punches = terminal_data.records.len();
    let profile = TerminalProfile {
        serial: TERMINAL_SERIAL.into(),
        comm_key: 0,
        layout: zk::layout_of(40),
        fail_after_chunks: None,
        chunk_fault: None,
    };
    let terminal = match ZkSimulator::start_local(TransportKind::Tcp, profile, terminal_data).await
    {
        Ok(terminal) => terminal,
        Err(error) => {
            return output.error(
                &format!("cannot start the terminal simulator on 127.0.0.1: {error}"),
                Exit::Incomplete,
            );
        }
    };
    output.say(&format!(
        "Demo: a simulated BioTime server at {} holds {count} punches by {} employees over {} days,\n\
         including {LATE_UPLOADS} late uploads from an offline terminal and {BAD_RECORDS} broken records;\n\
         a simulated ZKTeco terminal at {} (ZK protocol, TCP) holds {terminal_punches} punches by {TERMINAL_USERS} staff;\n\
         {PUSHING_TERMINALS} simulated terminals push {PUSHED_PUNCHES} punches each to an ADMS receiver on 127.0.0.1 (as `iclock-sync serve` receives them).\n",
        simulator.url(),
        pinned.employees,
        pinned.days,
        terminal.address(),
    ));
    let database = PathBuf::from(OUTPUT_DIR).join("attendance.db");
    let mut demo_config = Config {
        document: Document::new("demo", "", Path::new("")),
        sync: SyncSettings {
            id_scheme: IdScheme::Native,
            cache_dir: CACHE_DIR.into(),
            output_dir: OUTPUT_DIR.into(),
            ..SyncSettings::default()
        },
        ledger: LedgerSettings::default(),
        adms: Some(AdmsSettings::on(SocketAddr::from(([127, 0, 0, 1], 0)))),
        serve: config::serve::ServeSettings::default(),
        devices: vec![
            DeviceConfig {
                name: "Demo terminal".into(),
                timezone: config::host_timezone(),
                enabled: true,
                interval: None,
                coordinates: None,
                max_read_time: crate::source::DEFAULT_MAX_READ_TIME,
                source: Arc::new(ZkConfig {
                    transport: TransportChoice::Tcp,
                    ..ZkConfig::at(terminal.address().to_string())
                }),
            },
            DeviceConfig {
                name: "Demo BioTime".into(),
                timezone: config::host_timezone(),
                enabled: true,
                interval: None,
                coordinates: None,
                max_read_time: crate::source::DEFAULT_MAX_READ_TIME,
                source: Arc::new(BiotimeConfig::at(
                    simulator.url(),
                    "admin",
                    Secret::new("admin"),
                )),
            },
        ],
        sinks: vec![Arc::new(SqliteConfig {
            path: Some(database.clone()),
        })],
        environment: Environment::default(),
    };
    demo_config
        .devices
        .extend((0..PUSHING_TERMINALS).map(|index| DeviceConfig {
            name: format!("Demo gate {}", index + 1),
            timezone: chrono_tz::Asia::Kolkata,
            enabled: true,
            interval: None,
            coordinates: None,
            max_read_time: crate::source::DEFAULT_MAX_READ_TIME,
            source: Arc::new(AdmsDeviceConfig {
                serial: adms::serial(PUSHING_PREFIX, index),
            }),
        }));
    let exit = sync_with_pushing_terminals(&demo_config, output).await;
    output.say(&format!(
        "\nThe punches are in {db}. Look at them with, for example:\n  \
         sqlite3 {db} \"SELECT user_id, local_time, punch_state, device_serial FROM punches ORDER BY utc_time DESC LIMIT 5\"\n\
         Refused records and why: {OUTPUT_DIR}/quarantine.jsonl. Run `iclock-sync demo` again: nothing new is delivered.\n\
         To sync your own terminals or BioTime server, copy iclock-sync.example.toml to iclock-sync.toml and edit it.",
        db = database.display(),
    ));
    exit
}

/// One cycle, after the pushing terminals have sent their punches to a receiver
/// started for them (and stopped once they are done).
async fn sync_with_pushing_terminals(config: &Config, output: &Output) -> Exit {
    let mut engine = match Engine::open(config, false).await {
        Ok(engine) => engine,
        Err(error) => return output.error(&error.to_string(), error.exit()),
    };
    if let Some(settings) = &config.adms {
        let (stop, stopped) = crate::shutdown::channel();
        match start_receiver(config, settings, &engine, &stopped, None).await {
            Ok(running) => {
                let pushed = adms::run(&AdmsSimulatorArgs {
                    server: format!("http://{}", running.address),
                    terminals: PUSHING_TERMINALS,
                    punches: PUSHED_PUNCHES,
                    serial_prefix: PUSHING_PREFIX.into(),
                    batch: 25,
                    pause: None,
                    poll_for: None,
                    give_up_after: Duration::from_secs(60),
                })
                .await;
                for run in pushed
                    .iter()
                    .filter(|run| run.acknowledged < PUSHED_PUNCHES)
                {
                    tracing::warn!(
                        "demo terminal {} pushed only {} of {PUSHED_PUNCHES} punches: {}",
                        run.serial,
                        run.acknowledged,
                        run.last_refusal.as_deref().unwrap_or("no answer")
                    );
                }
                stop.trigger();
                let _ = running.server.await;
                running.receiver.record_contacts().await;
            }
            Err(problem) => tracing::warn!("the demo's ADMS receiver did not start: {problem}"),
        }
    }
    let shutdown = signals::stop_on_signals();
    let report = engine
        .run_cycle(None, None, &shutdown, &output.observer())
        .await;
    engine.close().await;
    report.exit()
}

async fn start_simulator(rows: Vec<SimTransaction>) -> std::io::Result<BiotimeSimulator> {
    let listener = match TcpListener::bind(("127.0.0.1", PREFERRED_PORT)).await {
        Ok(listener) => listener,
        Err(_) => TcpListener::bind(("127.0.0.1", 0)).await?,
    };
    BiotimeSimulator::start(listener, SimOptions::default(), rows).await
}

/// The dataset's seed and "now", fixed on the first run so later runs see the same data.
fn pin_dataset(cache_dir: &Path, args: &DemoArgs) -> PinnedDataset {
    let path = cache_dir.join("dataset.json");
    let stored = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<PinnedDataset>(&bytes).ok())
        .filter(|pinned| pinned.employees == args.employees && pinned.days == args.days);
    if let Some(pinned) = stored {
        return pinned;
    }
    let pinned = PinnedDataset {
        seed: 2026,
        employees: args.employees,
        days: args.days,
        anchor: now_local(),
    };
    if let Ok(bytes) = serde_json::to_vec_pretty(&pinned)
        && let Err(error) = atomic_file::write(&path, &bytes)
    {
        tracing::warn!("cannot pin the demo data in {}: {error}", path.display());
    }
    pinned
}
