//! SIGKILL of `serve` at pseudo-random moments while 50 simulated terminals push to it,
//! each kill followed by a restart on the same port. The terminals re-send whatever was
//! not acknowledged (after the `ErrorDelay` they were given, 10 s); when they are done,
//! every punch they made is in the store exactly once and nothing waits in the ledger.
//! Two kills here; `scripts/bench-adms-kills` runs it with 20 or more
//! (`ICLOCK_SYNC_ADMS_KILL_ROUNDS`).

use std::time::Duration;

use crate::serve::{handshake, stop, stored_at_least};
use crate::support::Workspace;
use crate::support::firestore::free_port;

const TERMINALS: u64 = 50;
/// The `ErrorDelay` configured, after which a refused terminal sends again.
const ERROR_DELAY: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_while_fifty_terminals_push_lose_and_duplicate_nothing() {
    let rounds: u64 = std::env::var("ICLOCK_SYNC_ADMS_KILL_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(2);
    let workspace = Workspace::new();
    let port = free_port();
    let mut config = format!(
        "[adms]\nlisten = \"127.0.0.1:{port}\"\ndelay = 2\nerror_delay = {}\n",
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
    let mut serve = workspace.command(&["serve"]).spawn().unwrap();
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
        serve = workspace.command(&["serve"]).spawn().unwrap();
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
    eprintln!(
        "{rounds} SIGKILLs while {TERMINALS} terminals pushed; {total} punches, each once"
    );
}
