//! `iclock-sync simulate …`: run a device simulator in the foreground until Ctrl-C.

use std::io::Write;

use tokio::net::TcpListener;

use crate::cli::Simulator;
use crate::exit::Exit;
use crate::simulate::biotime::{BiotimeSimulator, generate};

pub async fn run(simulator: Simulator) -> Exit {
    match simulator {
        Simulator::Biotime(args) => {
            let listener = match TcpListener::bind(&args.listen).await {
                Ok(listener) => listener,
                Err(error) => {
                    eprintln!(
                        "error: cannot listen on {}: {error} — pick another --listen address",
                        args.listen
                    );
                    return Exit::Configuration;
                }
            };
            let rows = generate(&args.dataset());
            let count = rows.len();
            let simulator = match BiotimeSimulator::start(listener, args.options(), rows).await {
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
    }
}
