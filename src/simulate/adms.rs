//! Simulated pushing terminals (`iclock-sync simulate adms`): K terminals that shake
//! hands with an ADMS server, upload their punches in batches as firmware does, and
//! send a batch again after any answer but `200 OK…`, waiting the `ErrorDelay` the
//! server gave them. For the tests, the demo and the benchmarks.
//!
//! Three firmware profiles take turns: push 1.x (no `pushver`, seven-field lines,
//! `Stamp`), push 2.4 (`pushver=2.4.1`, twelve-field lines with the UTC offset) and
//! Android firmware (eleven fields). Unlike the other simulators this one shares the
//! punch line with the receiver (`adms::attlog`): the line format is written once, and
//! a third-party client checks the receiver instead (see the tests).

use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};
use tokio::time::Instant;

use crate::adms::attlog::{AttlogLine, LineStyle, LineTime};

#[derive(Debug, Clone, clap::Args)]
pub struct AdmsSimulatorArgs {
    /// The server the terminals push to, e.g. http://127.0.0.1:8081.
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// How many terminals push at the same time.
    #[arg(long, default_value_t = 1)]
    pub terminals: u32,
    /// Punches each terminal holds.
    #[arg(long, default_value_t = 100)]
    pub punches: u64,
    /// Serial numbers are this and a number: SIM0001, SIM0002, …
    #[arg(long, default_value = "SIM")]
    pub serial_prefix: String,
    /// Punch lines per upload (firmware sends a few hundred).
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Wait this long between uploads, as a terminal sending punches as they happen
    /// (`--batch 5 --pause 5s`: five punches every five seconds); none by default.
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::parse_interval)]
    pub pause: Option<Duration>,
    /// After uploading, keep polling for commands (every `Delay` the server gives) this
    /// long, carrying out each: CHECK, INFO, LOG, REBOOT and DATA QUERY ATTLOG (its
    /// punches in the window uploaded again).
    /// Without it, one poll.
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::parse_interval)]
    pub poll_for: Option<Duration>,
    /// A terminal still not done after this long gives up (its punches stay unsent).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = crate::cli::parse_interval)]
    pub give_up_after: Duration,
}

/// One terminal's run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TerminalRun {
    pub serial: String,
    /// Punch lines acknowledged with `OK`.
    pub acknowledged: u64,
    /// Uploads sent again after a refusal or an error.
    pub resent: u64,
    /// The last refusal, if any.
    pub last_refusal: Option<String>,
    /// Commands received and answered.
    pub commands: u64,
    /// How long each command poll (`getrequest`) took to be answered.
    pub polls: Vec<Duration>,
}

/// The serial number of terminal `index` (0-based).
pub fn serial(prefix: &str, index: u32) -> String {
    format!("{prefix}{:04}", index + 1)
}

/// The punches terminal `index` holds: PINs 1001–1050 in turn, one every 37 seconds
/// from 1 September 2026 08:00, states in and out in turn.
pub fn punches(index: u32, count: u64) -> Vec<AttlogLine> {
    let start = NaiveDate::from_ymd_opt(2026, 9, 1)
        .and_then(|day| day.and_hms_opt(8, 0, 0))
        .unwrap_or(NaiveDateTime::MIN);
    (0..count)
        .map(|number| AttlogLine {
            pin: (1001 + (number + u64::from(index)) % 50).to_string(),
            time: LineTime::Wall(start + chrono::Duration::seconds(number as i64 * 37)),
            status: (number % 2) as i32,
            verify: 15,
            work_code: "0".into(),
            time_offset: Some(19_800),
        })
        .collect()
}

/// The firmware terminal `index` imitates: (`pushver`, line style).
fn profile(index: u32) -> (Option<&'static str>, LineStyle) {
    match index % 3 {
        0 => (None, LineStyle::Seven),
        1 => (Some("2.4.1"), LineStyle::Twelve),
        _ => (Some("2.4.1"), LineStyle::Android),
    }
}

/// Runs every terminal to the end; their runs, in order.
pub async fn run(args: &AdmsSimulatorArgs) -> Vec<TerminalRun> {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            return vec![TerminalRun {
                last_refusal: Some(format!("cannot build an HTTP client: {error}")),
                ..TerminalRun::default()
            }];
        }
    };
    let server = args.server.trim_end_matches('/');
    let deadline = Instant::now() + args.give_up_after;
    let terminals =
        (0..args.terminals).map(|index| terminal(&client, server, args, index, deadline));
    futures::future::join_all(terminals).await
}

async fn terminal(
    client: &reqwest::Client,
    server: &str,
    args: &AdmsSimulatorArgs,
    index: u32,
    deadline: Instant,
) -> TerminalRun {
    let serial = serial(&args.serial_prefix, index);
    let (push_version, style) = profile(index);
    let mut run = TerminalRun {
        serial: serial.clone(),
        ..TerminalRun::default()
    };
    let mut handshake = format!("{server}/iclock/cdata?SN={serial}&options=all&language=69");
    if let Some(version) = push_version {
        handshake.push_str(&format!("&pushver={version}"));
    }
    let mut error_delay = Duration::from_secs(30);
    let mut delay = Duration::from_secs(10);
    loop {
        match get(client, &handshake).await {
            Ok(options) => {
                if let Some(seconds) = option(&options, "ErrorDelay") {
                    error_delay = Duration::from_secs(seconds);
                }
                if let Some(seconds) = option(&options, "Delay") {
                    delay = Duration::from_secs(seconds);
                }
                break;
            }
            Err(refusal) => {
                run.last_refusal = Some(refusal);
                if !wait(error_delay, deadline).await {
                    return run;
                }
            }
        }
    }
    let lines = punches(index, args.punches);
    let uploader = Uploader {
        client,
        server,
        serial: &serial,
        style,
        batch: args.batch.max(1),
        pause: args.pause,
        error_delay,
        deadline,
    };
    if !uploader.upload(&lines, &mut run).await {
        return run;
    }
    // Polls, as the terminal makes after uploading, carrying out what it is given.
    let polling_ends = Instant::now() + args.poll_for.unwrap_or_default();
    if args.poll_for.is_some() {
        // Terminals switched on at different moments poll at different moments.
        tokio::time::sleep(delay * index / args.terminals.max(1)).await;
    }
    loop {
        let asked = Instant::now();
        let answer = get(client, &format!("{server}/iclock/getrequest?SN={serial}")).await;
        run.polls.push(asked.elapsed());
        if let Ok(commands) = answer {
            let mut results = Vec::new();
            for line in commands.lines() {
                let Some((id, command)) = line
                    .strip_prefix("C:")
                    .and_then(|rest| rest.split_once(':'))
                else {
                    continue;
                };
                run.commands += 1;
                results.push(uploader.carry_out(id, command, &lines, &mut run).await);
            }
            if !results.is_empty() {
                let _ = post(
                    client,
                    &format!("{server}/iclock/devicecmd?SN={serial}"),
                    &results.join("\n"),
                )
                .await;
            }
        }
        if Instant::now() + delay >= polling_ends.min(deadline) {
            return run;
        }
        tokio::time::sleep(delay).await;
    }
}

/// What a terminal needs to upload.
struct Uploader<'a> {
    client: &'a reqwest::Client,
    server: &'a str,
    serial: &'a str,
    style: LineStyle,
    batch: usize,
    /// Between uploads.
    pause: Option<Duration>,
    error_delay: Duration,
    deadline: Instant,
}

impl Uploader<'_> {
    /// Uploads `lines` in batches, each sent again until acknowledged; false if the
    /// deadline came first.
    async fn upload(&self, lines: &[AttlogLine], run: &mut TerminalRun) -> bool {
        for (number, batch) in lines.chunks(self.batch).enumerate() {
            if let Some(pause) = self.pause.filter(|_| number > 0)
                && !wait(pause, self.deadline).await
            {
                return false;
            }
            let mut body = batch
                .iter()
                .map(|line| line.write(self.style))
                .collect::<Vec<_>>()
                .join("\n");
            body.push('\n');
            let url = format!(
                "{}/iclock/cdata?SN={}&table=ATTLOG&Stamp={}",
                self.server,
                self.serial,
                number + 1
            );
            loop {
                match post(self.client, &url, &body).await {
                    Ok(answer) if answer.starts_with("OK") => {
                        run.acknowledged += batch.len() as u64;
                        break;
                    }
                    Ok(answer) => run.last_refusal = Some(answer),
                    Err(refusal) => run.last_refusal = Some(refusal),
                }
                run.resent += 1;
                if !wait(self.error_delay, self.deadline).await {
                    return false;
                }
            }
        }
        true
    }

    /// Carries out one command; its result line.
    async fn carry_out(
        &self,
        id: &str,
        command: &str,
        lines: &[AttlogLine],
        run: &mut TerminalRun,
    ) -> String {
        let verb = command.split([' ', '\t']).next().unwrap_or("");
        match verb {
            "CHECK" | "LOG" | "REBOOT" => format!("ID={id}&Return=0&CMD={verb}"),
            "INFO" => format!(
                "ID={id}&Return=0&CMD=INFO\n~DeviceName=iclock-sync simulator\nFWVersion=Ver 6.60 Sim\nUserCount=50\nAttLogCount={}",
                lines.len()
            ),
            "DATA" if command.starts_with("DATA QUERY ATTLOG") => {
                let field = |name: &str| {
                    command
                        .split(['\t'])
                        .find_map(|part| {
                            part.split_once(&format!("{name}=")).map(|(_, value)| value)
                        })
                        .and_then(|value| {
                            NaiveDateTime::parse_from_str(value.trim(), "%Y-%m-%d %H:%M:%S").ok()
                        })
                };
                let (Some(from), Some(to)) = (field("StartTime"), field("EndTime")) else {
                    return format!("ID={id}&Return=-1&CMD=DATA");
                };
                let window: Vec<AttlogLine> = lines
                    .iter()
                    .filter(|line| matches!(line.time, LineTime::Wall(time) if time >= from && time <= to))
                    .cloned()
                    .collect();
                if window.is_empty() {
                    return format!("ID={id}&Return=-1&CMD=DATA");
                }
                let before = run.acknowledged;
                self.upload(&window, run).await;
                // Re-uploaded punches are not new acknowledgements of the terminal's log.
                run.acknowledged = before;
                format!("ID={id}&Return=0&CMD=DATA")
            }
            _ => format!("ID={id}&Return=-1002&CMD={verb}"),
        }
    }
}

/// `Key=Value` from an option block.
fn option(block: &str, key: &str) -> Option<u64> {
    block
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .and_then(|value| value.trim().parse().ok())
}

/// Sleeps `delay` unless that passes `deadline`; whether there is time left.
async fn wait(delay: Duration, deadline: Instant) -> bool {
    if Instant::now() + delay >= deadline {
        return false;
    }
    tokio::time::sleep(delay).await;
    true
}

async fn get(client: &reqwest::Client, url: &str) -> Result<String, String> {
    answer(client.get(url).send().await).await
}

async fn post(client: &reqwest::Client, url: &str, body: &str) -> Result<String, String> {
    answer(client.post(url).body(body.to_owned()).send().await).await
}

async fn answer(sent: reqwest::Result<reqwest::Response>) -> Result<String, String> {
    let response = sent.map_err(|error| format!("no answer: {error}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|error| format!("answer cut: {error}"))?;
    if status.is_success() {
        Ok(text)
    } else {
        Err(format!("HTTP {}: {}", status.as_u16(), text.trim()))
    }
}
