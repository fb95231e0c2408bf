//! Logging in to BioTime: both token schemes, JWT expiry, 401 handling, and the
//! failures a person must fix (wrong password, missing licence, wrong URL).

use std::time::Duration;

use crate::support::{Workspace, options, punches, simulator, wait_for_pages};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_jwt_is_refreshed_mid_pagination() {
    let mut sim_options = options();
    sim_options.jwt_ttl = Duration::from_secs(2);
    sim_options.page_delay = Duration::from_millis(120);
    let sim = simulator(sim_options, punches(3000, 1)).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "page_size = 100", "");

    let run = workspace.sync(&[], 0).await;

    assert_eq!(run.device(0)["delivered"], 3000);
    let stats = sim.stats();
    assert!(stats.transaction_pages >= 30, "{stats:?}");
    // 30 pages at 120 ms outlive a 2 s token: the client logged in again on its own,
    // before the server had to refuse anything.
    assert!(stats.logins >= 2, "expected a refresh, got {stats:?}");
    assert_eq!(stats.unauthorized, 0, "{stats:?}");
    assert_eq!(workspace.stored_punches().await.len(), 3000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_leads_to_exactly_one_new_login_and_a_retry() {
    let mut sim_options = options();
    sim_options.page_delay = Duration::from_millis(100);
    let sim = simulator(sim_options, punches(2000, 2)).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "page_size = 100", "");

    let child = workspace.command(&["--json"]).spawn().expect("spawn");
    wait_for_pages(&sim, 5).await;
    sim.expire_tokens();
    let output = child.wait_with_output().await.expect("run");

    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stats = sim.stats();
    assert_eq!(stats.unauthorized, 1, "{stats:?}");
    assert_eq!(stats.logins, 2, "{stats:?}");
    assert_eq!(workspace.stored_punches().await.len(), 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_a_clear_configuration_error_without_retries() {
    let mut sim_options = options();
    sim_options.password = "the-real-one".into();
    let sim = simulator(sim_options, punches(10, 3)).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "", "");

    let run = workspace.run(&[]).await;

    assert_eq!(run.code, Some(2), "{}", run.all_output());
    let output = run.all_output();
    assert!(output.contains("device 'Device 1'"), "{output}");
    assert!(output.contains("wrong username/password"), "{output}");
    assert!(
        output.contains("Unable to log in with provided credentials."),
        "{output}"
    );
    assert_eq!(sim.stats().failed_logins, 1, "exactly one login attempt");
    assert!(!workspace.database().exists() || workspace.stored_punches().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_loop_a_refused_login_is_not_retried_every_cycle() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut sim_options = options();
    sim_options.password = "the-real-one".into();
    let sim = simulator(sim_options, punches(10, 9)).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "", "");
    let mut child = workspace
        .command(&["--json", "--loop", "1s"])
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut errors = Vec::new();
    for _ in 0..3 {
        let line = lines.next_line().await.unwrap().unwrap();
        let summary: serde_json::Value = serde_json::from_str(&line).unwrap();
        errors.push(
            summary["devices"][0]["error"]["message"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    child.kill().await.unwrap();

    assert_eq!(
        sim.stats().failed_logins,
        1,
        "three cycles, one login attempt"
    );
    assert!(errors[0].contains("wrong username/password"), "{errors:?}");
    assert!(errors[1].contains("not trying again"), "{errors:?}");
    assert!(errors[2].contains("not trying again"), "{errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_scheme_works_and_a_missing_jwt_route_falls_back_to_it() {
    let sim = simulator(options(), punches(50, 4)).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "auth = \"token\"", "");
    workspace.sync(&[], 0).await;
    assert_eq!(workspace.stored_punches().await.len(), 50);

    let mut token_only = options();
    token_only.jwt_route = false;
    let sim = simulator(token_only, punches(40, 5)).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "", "");
    workspace.sync(&[], 0).await;
    assert_eq!(workspace.stored_punches().await.len(), 40);
    assert_eq!(sim.stats().logins, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_api_licence_is_named() {
    let mut sim_options = options();
    sim_options.no_licence = true;
    let sim = simulator(sim_options, punches(10, 6)).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "", "");

    let run = workspace.run(&[]).await;

    assert_eq!(run.code, Some(2), "{}", run.all_output());
    assert!(
        run.all_output().contains("BioTime API licence is missing"),
        "{}",
        run.all_output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_that_serves_web_pages_is_not_mistaken_for_the_api() {
    let sim = simulator(options(), punches(10, 7)).await;
    let workspace = Workspace::new();
    // Unknown paths on BioTime 9.5 answer 200 with an HTML page.
    workspace.configure(&[format!("{}/biotime", sim.url())], "", "");

    let run = workspace.run(&[]).await;

    assert_eq!(run.code, Some(2), "{}", run.all_output());
    assert!(
        run.all_output().contains("not the BioTime API"),
        "{}",
        run.all_output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_output_even_when_verbose() {
    let mut sim_options = options();
    sim_options.password = "s3cret-Pa55".into();
    let sim = simulator(sim_options, punches(20, 8)).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "", "");
    std::fs::write(
        workspace.path("iclock-sync.toml"),
        workspace
            .read("iclock-sync.toml")
            .replace("password = \"admin\"", "password = \"${BT_PASSWORD}\""),
    )
    .unwrap();

    let good = workspace
        .run_with_env(&["-vv"], &[("BT_PASSWORD", "s3cret-Pa55")])
        .await;
    assert_eq!(good.code, Some(0), "{}", good.all_output());
    let bad = workspace
        .run_with_env(&["-vv"], &[("BT_PASSWORD", "wrong-s3cret")])
        .await;
    assert_eq!(bad.code, Some(2), "{}", bad.all_output());
    for run in [&good, &bad] {
        let output = run.all_output();
        assert!(!output.contains("s3cret-Pa55"), "{output}");
        assert!(!output.contains("wrong-s3cret"), "{output}");
        assert!(!output.contains("eyJ"), "a token leaked: {output}");
    }
}
