//! Exactly once while terminals push through faults: `serve` SIGKILLed at pseudo-random
//! moments (the terminals re-send what was not acknowledged, after the `ErrorDelay` they
//! were given), and a sink's database down while they push (their punches are
//! acknowledged from the ledger and reach the database once it is back).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use sqlx::{Connection, PgConnection};

use crate::serve::{handshake, spawn_serve, stop, stored_at_least};
use crate::support::Workspace;
use crate::support::databases::PgSchema;
use crate::support::firestore::free_port;
use crate::support::proxy::Relay;

const TERMINALS: u64 = 50;
/// The `ErrorDelay` configured, after which a refused terminal sends again.
const ERROR_DELAY: Duration = Duration::from_secs(10);

/// SIGKILL of `serve` while 50 terminals push, each kill followed by a restart on the
/// same port; when the terminals are done, every punch they made is in the store once
/// and nothing waits in the ledger. Two kills here; `scripts/bench-adms-kills` runs it
/// with 20 or more (`ICLOCK_SYNC_ADMS_KILL_ROUNDS`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_while_fifty_terminals_push_lose_and_duplicate_nothing() {
    let rounds: u64 = std::env::var("ICLOCK_SYNC_ADMS_KILL_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(2);
    let workspace = Workspace::new();
    let port = free_port();
    let mut config = format!(
        "[serve]\nlisten = \"127.0.0.1:0\"\n\n[adms]\nlisten = \"127.0.0.1:{port}\"\ndelay = 2\nerror_delay = {}\n",
        ERROR_DELAY.as_secs()
    );
    for index in 1..=TERMINALS {
        config.push_str(&format!(
            "\n[[device]]\nname = \"SIM{index:04}\"\nkind = \"adms\"\nserial = \"SIM{index:04}\"\ntimezone = \"Asia/Kolkata\"\n"
        ));
    }
    workspace.write("iclock-sync.toml", &config);
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut serve = spawn_serve(&workspace);
    handshake(&client, &url, "SIM0001").await;

    // Enough punches, in small uploads, that the terminals are still pushing at the
    // last kill: each round lets them push for up to 2.5 s.
    let per_terminal = 250 * (rounds + 1);
    let mut simulator = workspace
        .command(&[
            "simulate",
            "adms",
            "--server",
            &url,
            "--terminals",
            &TERMINALS.to_string(),
            "--punches",
            &per_terminal.to_string(),
            "--batch",
            "10",
            "--give-up-after",
            "20m",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    let mut random = 0x9e37_79b9_7f4a_7c15_u64;
    for round in 0..rounds {
        // xorshift: a moment anywhere in the 2.5 s after the terminals resume.
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let moment = Duration::from_millis(200 + random % 2_500);
        let resume = if round == 0 {
            Duration::ZERO
        } else {
            ERROR_DELAY
        };
        tokio::time::sleep(resume + moment).await;
        assert!(
            simulator.try_wait().unwrap().is_none(),
            "the terminals finished before kill {} of {rounds}: give them more punches",
            round + 1
        );
        serve.start_kill().unwrap();
        serve.wait().await.unwrap();
        serve = spawn_serve(&workspace);
        handshake(&client, &url, "SIM0001").await;
    }

    let pushed = tokio::time::timeout(Duration::from_secs(600), simulator.wait_with_output())
        .await
        .expect("the terminals finish within 10 minutes")
        .unwrap();
    let summary = String::from_utf8_lossy(&pushed.stdout);
    let total = TERMINALS * per_terminal;
    assert!(
        summary.contains(&format!("{total} punches acknowledged")),
        "{summary}"
    );
    let stored = stored_at_least(&workspace, total as usize).await;
    // Anything stored twice would come with the same cycles: give them time to.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop(&mut serve, Duration::from_secs(30)).await;
    let ids = workspace.stored_ids().await;
    assert_eq!(ids.len() as u64, total, "{} rows read", stored.len());
    assert_eq!(workspace.ledger_ids().await, ids);
    assert_eq!(
        workspace
            .ledger_number("SELECT COUNT(*) FROM deliveries WHERE state <= 1")
            .await,
        0,
        "something still waits"
    );
    eprintln!("{rounds} SIGKILLs while {TERMINALS} terminals pushed; {total} punches, each once");
}

/// PostgreSQL unreachable (a relay refusing every connection) while three terminals
/// push: every upload is still acknowledged, the embedded store gets the punches, and
/// `status` says the database sink has them waiting; once it is reachable again `serve`
/// delivers them there by itself, each once.
#[tokio::test]
async fn punches_pushed_while_a_sink_is_down_reach_it_once_when_it_is_back() {
    let schema = PgSchema::new().await;
    let relay = Relay::start(SocketAddr::from(([127, 0, 0, 1], 5432))).await;
    relay.go_down();
    let workspace = Workspace::new();
    let port = free_port();
    let mut config = format!(
        "[serve]\nlisten = \"127.0.0.1:0\"\n\n[adms]\nlisten = \"127.0.0.1:{port}\"\ndelay = 2\n\n[sink.sqlite]\n\n\
         [sink.postgres]\nurl = \"{}\"\n",
        schema.url.replace(":5432/", &format!(":{}/", relay.port))
    );
    for index in 1..=3 {
        config.push_str(&format!(
            "\n[[device]]\nname = \"SIM{index:04}\"\nkind = \"adms\"\nserial = \"SIM{index:04}\"\ntimezone = \"Asia/Kolkata\"\n"
        ));
    }
    workspace.write("iclock-sync.toml", &config);
    let url = format!("http://127.0.0.1:{port}");
    let mut serve = spawn_serve(&workspace);
    handshake(&reqwest::Client::new(), &url, "SIM0001").await;

    let pushed = workspace
        .run(&[
            "simulate",
            "adms",
            "--server",
            &url,
            "--terminals",
            "3",
            "--punches",
            "300",
            "--batch",
            "50",
        ])
        .await;
    assert!(
        pushed
            .stdout
            .contains("900 punches acknowledged, 0 upload(s) sent again"),
        "{}",
        pushed.all_output()
    );
    assert_eq!(stored_at_least(&workspace, 900).await.len(), 900);
    // The cycles the uploads woke are over: only a retry can deliver them now.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let status = workspace.run(&["status"]).await.all_output();
    assert!(
        status
            .lines()
            .any(|line| line.contains("postgres") && line.contains("900")),
        "{status}"
    );

    relay.restore();
    let mut ids = Vec::new();
    for _ in 0..600 {
        if let Ok(mut db) = PgConnection::connect(&schema.url).await {
            ids = sqlx::query_scalar::<_, String>("SELECT id FROM iclock_punches")
                .fetch_all(&mut db)
                .await
                .unwrap_or_default();
        }
        if ids.len() >= 900 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        ids.len(),
        900,
        "delivered within a minute of coming back: {}",
        std::fs::read_to_string(workspace.path("serve.log")).unwrap_or_default()
    );
    let ids: BTreeSet<String> = ids.into_iter().collect();
    assert_eq!(
        ids,
        workspace.stored_ids().await,
        "the same punches, once each"
    );
    stop(&mut serve, Duration::from_secs(30)).await;
}
