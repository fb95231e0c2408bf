//! `iclock-sync simulate …`: run a device simulator in the foreground until Ctrl-C.

use std::io::Write;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::cli::Simulator;
use crate::exit::Exit;
use crate::simulate::adms::{self, AdmsSimulatorArgs};
use crate::simulate::biotime::{BiotimeSimulator, generate};
use crate::simulate::frappe::{FrappeSimulator, FrappeSimulatorArgs, company};
use crate::simulate::zk::{ZkSimulator, ZkSimulatorArgs};

pub async fn run(simulator: Simulator) -> Exit {
    match simulator {
        Simulator::Biotime(args) => {
            let Some(listener) = listen(&args.listen).await else {
                return Exit::Configuration;
            };
            let tls = match args.tls.server_tls() {
                Ok(tls) => tls,
                Err(problem) => {
                    eprintln!("error: --tls-cert / --tls-key: {problem}");
                    return Exit::Configuration;
                }
            };
            let rows = generate(&args.dataset());
            let count = rows.len();
            let started = BiotimeSimulator::start_with_tls(listener, tls, args.options(), rows);
            let simulator = match started.await {
                Ok(simulator) => simulator,
                Err(error) => {
                    eprintln!("error: cannot start the simulator: {error}");
                    return Exit::Incomplete;
                }
            };
            // The first line is machine-read by the bench script: keep its shape.
            println!("BioTime simulator listening on {}", simulator.url());
            println!(
                "  {count} transactions; log in as {} / {}; JWT lifetime {} s; Ctrl-C stops it",
                args.username,
                args.password,
                args.jwt_ttl.as_secs()
            );
            let _ = std::io::stdout().flush();
            let _ = tokio::signal::ctrl_c().await;
            Exit::Success
        }
        Simulator::Zk(args) => run_zk(args).await,
        Simulator::Frappe(args) => run_frappe(args).await,
        Simulator::Adms(args) => run_adms(args).await,
    }
}

/// Pushes every terminal's punches, then prints what was acknowledged (the last line
/// is machine-read by the bench script: keep its shape).
async fn run_adms(args: AdmsSimulatorArgs) -> Exit {
    let started = std::time::Instant::now();
    let runs = adms::run(&args).await;
    let seconds = started.elapsed().as_secs_f64();
    let mut complete = true;
    for run in &runs {
        let done = run.acknowledged == args.punches;
        complete &= done;
        if !done || run.resent > 0 {
            println!(
                "  {}: {} of {} acknowledged, {} upload(s) sent again{}",
                run.serial,
                run.acknowledged,
                args.punches,
                run.resent,
                run.last_refusal
                    .as_ref()
                    .map(|refusal| format!("; last refusal: {refusal}"))
                    .unwrap_or_default()
            );
        }
    }
    let mut polls: Vec<Duration> = runs.iter().flat_map(|run| run.polls.clone()).collect();
    if !polls.is_empty() {
        polls.sort_unstable();
        let at = |share: f64| {
            let index = ((polls.len() as f64 * share).ceil() as usize).clamp(1, polls.len());
            polls[index - 1].as_secs_f64() * 1000.0
        };
        println!(
            "{} command poll(s) answered in: median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            polls.len(),
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
    let acknowledged: u64 = runs.iter().map(|run| run.acknowledged).sum();
    let resent: u64 = runs.iter().map(|run| run.resent).sum();
    println!(
        "{} terminal(s): {acknowledged} punches acknowledged, {resent} upload(s) sent again, in {seconds:.2} s ({:.0} punches/s)",
        runs.len(),
        acknowledged as f64 / seconds.max(0.001)
    );
    if complete {
        Exit::Success
    } else {
        Exit::Incomplete
    }
}

async fn run_frappe(args: FrappeSimulatorArgs) -> Exit {
    let Some(listener) = listen(&args.listen).await else {
        return Exit::Configuration;
    };
    let tls = match args.tls.server_tls() {
        Ok(tls) => tls,
        Err(problem) => {
            eprintln!("error: --tls-cert / --tls-key: {problem}");
            return Exit::Configuration;
        }
    };
    let site = company(args.employees);
    let started = FrappeSimulator::start_with_tls(listener, tls, site, args.options());
    let simulator = match started.await {
        Ok(simulator) => simulator,
        Err(error) => {
            eprintln!("error: cannot start the simulator: {error}");
            return Exit::Incomplete;
        }
    };
    // The first line is machine-read by the bench script: keep its shape.
    println!("Frappe simulator listening on {}", simulator.url());
    println!(
        "  {} employees (PINs 1000…{}); API key {} / secret {}; {} per request; Ctrl-C stops it",
        args.employees,
        1000 + args.employees.saturating_sub(1),
        args.api_key,
        args.api_secret,
        crate::duration::display(args.latency)
    );
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
    let stats = simulator.stats();
    println!(
        "  {} requests, {} checkins created, at most {} creates at once",
        stats.requests, stats.created, stats.max_in_flight
    );
    Exit::Success
}

async fn run_zk(args: ZkSimulatorArgs) -> Exit {
    let data = args.data();
    let count = data.records.len();
    let started = if args.udp {
        match tokio::net::UdpSocket::bind(&args.listen).await {
            Ok(socket) => ZkSimulator::start_udp(socket, args.profile(), data).await,
            Err(error) => Err(error),
        }
    } else {
        match TcpListener::bind(&args.listen).await {
            Ok(listener) => ZkSimulator::start_tcp(listener, args.profile(), data).await,
            Err(error) => Err(error),
        }
    };
    let simulator = match started {
        Ok(simulator) => simulator,
        Err(error) => {
            cannot_listen(&args.listen, &error);
            return Exit::Configuration;
        }
    };
    // The first line is machine-read by the bench script: keep its shape.
    println!(
        "ZK terminal simulator listening on {} ({})",
        simulator.address(),
        simulator.kind().name()
    );
    println!(
        "  serial {}, {count} punches in {}-byte records, {} users, comm key {}; Ctrl-C stops it",
        args.serial, args.record_size, args.users, args.comm_key
    );
    let _ = std::io::stdout().flush();
    match args.punch_every {
        Some(every) => {
            let mut ticker = tokio::time::interval(every);
            ticker.tick().await;
            let mut state = 0;
            loop {
                tokio::select! {
                    _ = ticker.tick() => {
                        simulator.punch("1001", state, 1);
                        state = 1 - state;
                    }
                    _ = tokio::signal::ctrl_c() => return Exit::Success,
                }
            }
        }
        None => {
            let _ = tokio::signal::ctrl_c().await;
            Exit::Success
        }
    }
}

/// A TCP listener on `address`, or `None` after saying why not.
async fn listen(address: &str) -> Option<TcpListener> {
    TcpListener::bind(address)
        .await
        .map_err(|error| cannot_listen(address, &error))
        .ok()
}

fn cannot_listen(address: &str, error: &std::io::Error) {
    eprintln!("error: cannot listen on {address}: {error} — pick another --listen address");
}
