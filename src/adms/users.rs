//! Who is who on a pushing terminal: the `USER` lines of an `OPERLOG` upload and the
//! lines of a `USERINFO` upload (the answer to `DATA QUERY USERINFO`), read for the
//! PIN, the name and the whole record (user control sends it back changed). Templates,
//! photos and the operation log's other lines are acknowledged and not kept.

/// A person as a terminal describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalUser {
    pub pin: String,
    pub name: String,
    /// The record's tab-separated `Key=value` fields as uploaded (`PIN=…⇥Name=…⇥Pri=…`);
    /// empty when it was too long to keep.
    pub record: String,
}

/// Longest name kept (terminals allow 24 characters; some firmware 64).
const NAME_KEPT: usize = 64;
/// Longest record kept (a real one is under 200 bytes).
const RECORD_KEPT: usize = 1024;

/// The users in an `OPERLOG` or `USERINFO` body: `USER PIN=…⇥Name=…` lines, or the
/// same without the `USER ` tag. Other lines (`OPLOG`, `FP`, `BIODATA`, …) are skipped.
pub fn users(body: &str) -> Vec<TerminalUser> {
    body.lines()
        .filter_map(|line| {
            let line = line.trim_end_matches('\r');
            let fields = line.strip_prefix("USER ").unwrap_or(line);
            if !fields.starts_with("PIN=") && !fields.starts_with("Pin=") {
                return None;
            }
            let mut pin = None;
            let mut name = String::new();
            for field in fields.split('\t') {
                match field.split_once('=') {
                    Some(("PIN" | "Pin", value)) => pin = Some(value.trim()),
                    Some(("Name", value)) => name = value.trim().chars().take(NAME_KEPT).collect(),
                    _ => {}
                }
            }
            let pin = pin.filter(|pin| !pin.is_empty() && pin.len() <= 24)?;
            Some(TerminalUser {
                pin: pin.to_owned(),
                name,
                record: if fields.len() <= RECORD_KEPT {
                    fields.to_owned()
                } else {
                    String::new()
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_read_from_operlog_and_userinfo_bodies() {
        let body = "OPLOG 4\t0\t2026-09-15 09:00:00\t0\t0\t0\t0\n\
                    USER PIN=1001\tName=Aishath Shifa\tPri=0\tPasswd=\tCard=[15CD5B07]\tGrp=1\tTZ=0000000100000000\tVerify=-1\r\n\
                    FP PIN=1001\tFID=6\tSize=1024\tValid=1\tTMP=AAAA\n\
                    PIN=0042\tName=Mohamed\tPri=14\n\
                    USER PIN=\tName=nobody\n\
                    USER Name=no pin\n";
        assert_eq!(
            users(body),
            vec![
                TerminalUser {
                    pin: "1001".into(),
                    name: "Aishath Shifa".into(),
                    record: "PIN=1001\tName=Aishath Shifa\tPri=0\tPasswd=\tCard=[15CD5B07]\tGrp=1\tTZ=0000000100000000\tVerify=-1".into()
                },
                TerminalUser {
                    pin: "0042".into(),
                    name: "Mohamed".into(),
                    record: "PIN=0042\tName=Mohamed\tPri=14".into()
                },
            ]
        );
    }
}
