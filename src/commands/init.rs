//! `iclock-sync init`: writes an `iclock-sync.toml` for what the user has — their
//! terminals, their BioTime server, where punches should go — with every other key
//! present as a commented default, so nothing asks for a BioTime password in a school
//! that has only terminals. `iclock-sync.example.toml` is this command's output for one
//! terminal (a test keeps the two the same).

use std::path::PathBuf;

use crate::exit::Exit;
use crate::output::Output;

/// `iclock-sync init …`
#[derive(Debug, Clone, Default, clap::Args)]
#[command(group(
    clap::ArgGroup::new("devices").required(true).multiple(true).args(["zk", "biotime"])
))]
pub struct InitArgs {
    /// A terminal read over the ZK protocol: its address (`192.168.1.201`, or with a
    /// port, `192.168.1.201:4370`), optionally named: `"Main gate=192.168.1.201"`.
    /// Repeat for each terminal.
    #[arg(long, value_name = "[NAME=]ADDRESS")]
    pub zk: Vec<String>,
    /// A BioTime / ZKBioTime server's web address, e.g. http://192.168.1.20:8081.
    #[arg(long, value_name = "URL")]
    pub biotime: Option<String>,
    /// The devices' time zone [default: this computer's].
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,
    /// Also send punches to Google Firestore (key in config/firebase-key.json).
    #[arg(long)]
    pub firestore: bool,
    /// Also send punches to this Frappe HR / ERPNext site as Employee Checkins.
    #[arg(long, value_name = "URL")]
    pub frappe: Option<String>,
    /// Where to write [default: ./iclock-sync.toml].
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Replace the file if it exists.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: &InitArgs, output: &Output) -> Exit {
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_CONFIG_FILE));
    if path.exists() && !args.force {
        return output.error(
            &format!(
                "{} exists already — edit it, or pass --force to replace it (or --output PATH to write elsewhere)",
                path.display()
            ),
            Exit::Configuration,
        );
    }
    let timezone = match &args.timezone {
        Some(zone) => match zone.trim().parse::<chrono_tz::Tz>() {
            Ok(zone) => zone,
            Err(_) => {
                return output.error(
                    &format!(
                        "--timezone '{zone}' is not an IANA time zone — use a name such as \"Indian/Maldives\" or \"Asia/Kolkata\""
                    ),
                    Exit::Configuration,
                );
            }
        },
        None => crate::config::host_timezone(),
    };
    let text = render(args, timezone.name());
    if let Err(error) = crate::atomic_file::write(&path, text.as_bytes()) {
        return output.error(
            &format!("cannot write {}: {error}", path.display()),
            Exit::Incomplete,
        );
    }
    let mut next = vec![format!("Wrote {}.", path.display())];
    if args.biotime.is_some() {
        next.push(
            "Put BIOTIME_USERNAME and BIOTIME_PASSWORD in .env beside it (see .env.example)."
                .into(),
        );
    }
    if args.frappe.is_some() {
        next.push(
            "Put the API key in the file and FRAPPE_API_SECRET in .env (Frappe: User → Settings → API Access)."
                .into(),
        );
    }
    next.push(
        "Then: `iclock-sync devices` checks each device, `iclock-sync --dry-run` shows what would be delivered, `iclock-sync` delivers."
            .into(),
    );
    output.say(&next.join("\n"));
    Exit::Success
}

/// The configuration text for `args`, devices in `timezone`.
pub fn render(args: &InitArgs, timezone: &str) -> String {
    let mut out = String::from(HEADER);
    out.push_str(SYNC);
    out.push_str(&ADMS.replace("{timezone}", timezone));
    for (index, zk) in args.zk.iter().enumerate() {
        let (name, address) = match zk.split_once('=') {
            Some((name, address)) => (name.trim().to_owned(), address.trim()),
            None if args.zk.len() == 1 => ("Main gate".to_owned(), zk.trim()),
            None => (format!("Terminal {}", index + 1), zk.trim()),
        };
        out.push_str(
            "\n# A terminal read directly over the ZK protocol (port 4370).\n[[device]]\n",
        );
        out.push_str(&setting(
            "name",
            &name,
            "any label; shown in summaries, keys the cursor",
        ));
        out.push_str("kind = \"zk\"\n");
        out.push_str(&setting(
            "address",
            address,
            "host or host:port (default port 4370)",
        ));
        out.push_str(&setting("timezone", timezone, "the terminal's time zone"));
        out.push_str(ZK_DEFAULTS);
    }
    match &args.biotime {
        Some(url) => {
            out.push_str("\n# A BioTime / ZKBioTime server.\n[[device]]\nname = \"Head office\"\nkind = \"biotime\"\n");
            out.push_str(&setting("url", url, "the BioTime web address"));
            out.push_str(
                "username = \"${BIOTIME_USERNAME}\"\npassword = \"${BIOTIME_PASSWORD}\"\n",
            );
            out.push_str(&setting("timezone", timezone, "the terminals' time zone"));
            out.push_str(BIOTIME_DEFAULTS);
        }
        None => {
            out.push_str("\n# A BioTime / ZKBioTime server, if you have one: remove the leading \"# \".\n# [[device]]\n# name = \"Head office\"\n# kind = \"biotime\"\n");
            out.push_str(&setting(
                "# url",
                "http://192.168.1.20:8081",
                "the BioTime web address",
            ));
            out.push_str(
                "# username = \"${BIOTIME_USERNAME}\"\n# password = \"${BIOTIME_PASSWORD}\"\n",
            );
            out.push_str(&setting("# timezone", timezone, "the terminals' time zone"));
            out.push_str(BIOTIME_DEFAULTS);
        }
    }
    out.push_str(SQLITE);
    out.push_str(&if args.firestore {
        uncomment(FIRESTORE, &[])
    } else {
        FIRESTORE.to_owned()
    });
    out.push_str(&match &args.frappe {
        Some(url) => uncomment(FRAPPE, &["url", "api_key", "api_secret"])
            .replace("https://hr.example.com", url),
        None => FRAPPE.to_owned(),
    });
    out.push_str(DATABASES);
    out
}

/// `key = "value"`, its comment in the column the defaults' comments use.
fn setting(key: &str, value: &str, comment: &str) -> String {
    let assignment = format!("{key} = {}", toml::Value::String(value.to_owned()));
    let padding = 37usize.saturating_sub(assignment.chars().count()).max(1);
    format!("{assignment}{}# {comment}\n", " ".repeat(padding))
}

/// A commented block's section header and `keys` switched on; the rest stays a
/// commented option.
fn uncomment(block: &str, keys: &[&str]) -> String {
    block
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(setting)
                if (setting.starts_with("[sink.") && !setting.starts_with("[[sink."))
                    || keys
                        .iter()
                        .any(|key| setting.starts_with(&format!("{key} = "))) =>
            {
                setting.to_owned()
            }
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

const HEADER: &str = r##"# iclock-sync configuration (`iclock-sync init` writes one for your devices).
# Every key is described in README.md ("Configuration reference"); lines starting
# with "# " are defaults or options — remove the "# " to use one. ${NAME} is replaced
# by the environment variable NAME (also read from .env beside this file), so
# passwords can stay out of it. Relative paths start from this file's folder.
"##;

const SYNC: &str = r##"
[sync]
# id_scheme = "native"               # or "legacy-md5": the Python iclock-sync's IDs (keep
#                                    # it when moving an existing installation over)
# cache_dir = "cache"
# output_dir = "output"
# max_future_skew = "1d"             # punches further ahead than this are quarantined
# parallel_devices = 4               # devices read at the same time
# audit_retention = "183d"           # audit files older than this are deleted, or "forever"

# The ledger (cache/ledger.db): every punch read and where each went.
# [ledger]
# backfill = "30d"                   # a sink new to this setup gets the punches read in
#                                    # this window before it ("none": only new ones)
# retain = "forever"                 # or e.g. "400d": delivered punches older are pruned
"##;

const ADMS: &str = r##"
# `iclock-sync serve` only: the receiver terminals push their punches to (ADMS,
# "Cloud Server Setting" on the terminal). Off without this section.
# [adms]
# listen = "0.0.0.0:8081"            # address:port the terminals connect to
# allow = ["192.168.1.0/24"]         # who may connect (default: anyone)
# unknown_devices = "hold"           # a serial not listed below: "hold" (it keeps its
#                                    # punches until added), "accept" or "reject"
# prefix = ""                        # e.g. "/attendance" if the server address has a path
# max_body_mb = 20                   # larger uploads are refused
# delay = 10                         # seconds between the terminals' polls
# error_delay = 30                   # seconds before a terminal retries a failed upload
# tls_cert = "server.pem"            # HTTPS (newer firmware only): certificate chain
# tls_key = "server.key"             # and its private key

# A terminal that pushes to the [adms] receiver, known by its serial number.
# [[device]]
# name = "Branch office"
# kind = "adms"
# serial = "CQZ7224460246"           # on its label, or Menu → System Info
# timezone = "{timezone}"
"##;

const ZK_DEFAULTS: &str = r##"# transport = "auto"                 # "tcp", "udp", or "auto" (TCP, then UDP)
# comm_key = 0                       # the terminal's Comm Key (System → Comm), 0 = none
# timeout = "10s"                    # per answer
# max_read_time = "30m"              # a whole read, at most
# disable_while_reading = true       # lock the keypad while reading; always unlocked after
# clear_after_sync = false           # clear the log once all of it is delivered (opt-in)
# serial = "CKJT214960123"           # only for terminals that do not report their serial
# record16 = "pyzk"                  # 16-byte records: "pyzk" or "vendor" byte order
# interval = "15m"                   # with --loop: read this terminal every 15 minutes
# latitude = 4.1755                  # where it stands (sent with Frappe checkins)
# longitude = 73.5093
# enabled = true
"##;

const BIOTIME_DEFAULTS: &str = r##"# auth = "jwt"                       # "jwt" or "token"
# page_size = 1000
# timeout = "30s"
# max_read_time = "30m"
# overlap = "30m"
# accept_invalid_certs = false       # true for a self-signed https certificate
# ca_file = "ca.pem"                 # trust a private CA
# enabled = true
"##;

const SQLITE: &str = r##"
# Where punches go. With no [sink.*] section, the embedded SQLite store is used.
# [sink.sqlite]
# path = "output/attendance.db"
"##;

const FIRESTORE: &str = r##"
# Google Firestore (Firebase). The key comes from key_file, else FIREBASE_KEY (also
# from .env), else config/firebase-key.json; the project from the key. To keep a
# local copy as well, add an empty [sink.sqlite] section.
# [sink.firestore]
# schema = "native"                  # or "schoolsync": the Python iclock-sync's documents
#                                    # (then also id_scheme = "legacy-md5" in [sync])
# key_file = "config/firebase-key.json"
# project_id = "my-school-app"       # default: the key's project
# collection = "attendancePunches"   # default: attendancePunches / staffAttendanceLogs
# concurrency = 8                    # batch writes (up to 500 documents) in flight
# retry_for = "60s"                  # then left for the next cycle
"##;

const FRAPPE: &str = r##"
# Frappe HR / ERPNext: each punch becomes an Employee Checkin. The API user needs the
# HR User role; the PIN goes in the Employee's Attendance Device ID.
# [sink.frappe]
# url = "https://hr.example.com"
# api_key = "0123456789abcde"
# api_secret = "${FRAPPE_API_SECRET}"
# timezone = "Indian/Maldives"       # the site's zone (default: the device's)
# employee_field = "attendance_device_id"
# log_types = { 2 = "skip", 3 = "skip" }  # by punch state; defaults 0/3/4 IN, 1/2/5 OUT
# device_id = "{terminal}"           # or "{serial}", "{device}", "{location}"
# skip_auto_attendance = false
# concurrency = 4                    # requests at once
# batch_size = 100                   # checkins per insert_many request; 1 = one by one
# retry_for = "60s"
# user_control = []                  # ["frappe_user"], ["device"]: on at IN, off at OUT
#
# [[sink.frappe.shift_type]]         # keep a Shift Type's last_sync_of_checkin current
# name = "Day Shift"
# devices = ["Main gate"]
"##;

const DATABASES: &str = r##"
# PostgreSQL: one row per punch in our table iclock_punches, created on first use.
# TLS and the rest go in the URL (sslmode=require / verify-full, sslrootcert=ca.pem).
# [sink.postgres]
# url = "postgres://sync:${PGPASSWORD}@db.school.example:5432/attendance?sslmode=require"
# name = "postgres"                  # two of a kind: [[sink.postgres]] with names
# migrate = true                     # false: never change the schema (`iclock-sync db migrate`)
# pool_size = 4
# batch_size = 5000                  # rows per statement, one commit each

# MySQL 8 / MariaDB 10.6+, here into a table of yours shaped like BioTime's
# iclock_transaction: it needs a unique key on (emp_code, punch_time, terminal_sn),
# and iclock-sync prints the statement that adds one if it is missing.
# [sink.mysql]
# url = "mysql://sync:${MYSQL_PASSWORD}@10.0.0.5:3306/hr?ssl-mode=required"
# name = "payroll"
# table = "iclock_transaction"       # without it: our own table iclock_punches
#
# [sink.mysql.columns]               # our field = your column
# user_id = "emp_code"
# local_time = "punch_time"
# punch_state = "punch_state"
# verify_mode = "verify_type"
# work_code = "work_code"
# device_serial = "terminal_sn"
# device_name = "terminal_alias"
# delivered_at = "upload_time"

# MongoDB: one document per punch, its _id the punch ID.
# [sink.mongodb]
# url = "mongodb://sync:${MONGO_PASSWORD}@mongo.school.example:27017/attendance?tls=true"
# collection = "punches"
"##;

#[cfg(test)]
mod tests {
    use super::*;

    fn parses(text: &str) -> crate::config::Config {
        let variables = |name: &str| Some(format!("value of {name}"));
        crate::config::parse("iclock-sync.toml", text, false, &variables)
            .unwrap_or_else(|error| panic!("{error}\n{text}"))
    }

    /// The example shipped in the repository is `init`'s output for one terminal.
    #[test]
    fn the_example_is_what_init_writes_for_one_terminal() {
        let args = InitArgs {
            zk: vec!["192.168.1.201".into()],
            ..InitArgs::default()
        };
        assert_eq!(
            render(&args, "Indian/Maldives"),
            include_str!("../../iclock-sync.example.toml")
        );
    }

    #[test]
    fn what_init_writes_parses_with_exactly_the_devices_and_sinks_asked_for() {
        let terminals = InitArgs {
            zk: vec!["Main gate=192.168.1.201".into(), "10.0.0.7:4370".into()],
            ..InitArgs::default()
        };
        let config = parses(&render(&terminals, "Asia/Kolkata"));
        let names: Vec<&str> = config.devices.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["Main gate", "Terminal 2"]);
        assert!(config.sinks.is_empty(), "the default store");
        assert_eq!(config.devices[1].timezone, chrono_tz::Asia::Kolkata);

        let everything = InitArgs {
            zk: vec!["192.168.1.201".into()],
            biotime: Some("http://10.0.0.5:8081".into()),
            firestore: true,
            frappe: Some("https://hr.school.example".into()),
            ..InitArgs::default()
        };
        let text = render(&everything, "UTC");
        let config = parses(&text);
        assert_eq!(config.devices.len(), 2);
        let kinds: Vec<&str> = config.sinks.iter().map(|sink| sink.kind()).collect();
        assert_eq!(kinds, ["firestore", "frappe"]);
        assert!(
            text.contains("url = \"https://hr.school.example\""),
            "{text}"
        );
    }
}
