//! ADMS, the iclock PUSH protocol: terminals that send their punches to us over HTTP
//! instead of waiting to be read on port 4370 (see `docs/adms.md`).
//!
//! The terminal is always the client. It shakes hands (`GET /iclock/cdata?options=all`),
//! uploads tables (`POST /iclock/cdata?table=ATTLOG`), polls for commands
//! (`GET /iclock/getrequest`) and posts their results (`POST /iclock/devicecmd`). It
//! keeps its data until an upload is answered `OK`, so an answer is only given once
//! what it acknowledges is durable.
//!
//! | module | what |
//! |---|---|
//! | `attlog` | the punch line, read by the receiver and written by the simulator |
//! | `device` | `[[device]] kind = "adms"`: a terminal known by its serial number |
//! | `options` | the handshake's option block: stamps, delays, time zone |
//! | `users` | who is who on a terminal, from its `USER` / `USERINFO` uploads |
//! | `receiver` | the HTTP endpoints: handshake, uploads journaled before `OK`, polls |
//! | this file | which endpoint a request path is, and the query's keys |

/// Sets a terminal's clock: queued as is, its value (the terminal's local time, packed
/// as the ZK protocol packs times) added when it is handed over. Terminals also follow
/// the handshake's `TimeZone` and the answers' `Date` header.
pub const SET_CLOCK: &str = "SET OPTION DateTime";

pub mod attlog;
pub mod check;
pub mod device;
pub mod options;
pub mod receiver;
pub mod user_control;
pub mod users;

/// The endpoints attendance terminals use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Handshake (GET) and table uploads (POST).
    Cdata,
    /// Command poll and heartbeat.
    GetRequest,
    /// Command results.
    DeviceCmd,
    /// Keep-alive during long uploads.
    Ping,
    /// Anything else under `/iclock/`: answered `OK` so that the terminal does not
    /// retry it forever.
    Other,
}

impl Endpoint {
    /// The endpoint of `path` (after any configured prefix): `/iclock/cdata`,
    /// `/iclock/cdata.aspx` and `/iclock/cdata/` are one; `None` outside `/iclock/`.
    pub fn of(path: &str) -> Option<Endpoint> {
        let rest = path.strip_prefix("/iclock/")?;
        let name = rest.trim_end_matches('/');
        let name = name.strip_suffix(".aspx").unwrap_or(name);
        Some(match name.to_ascii_lowercase().as_str() {
            "cdata" => Endpoint::Cdata,
            "getrequest" => Endpoint::GetRequest,
            "devicecmd" => Endpoint::DeviceCmd,
            "ping" => Endpoint::Ping,
            _ => Endpoint::Other,
        })
    }

    /// Its name in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Cdata => "cdata",
            Endpoint::GetRequest => "getrequest",
            Endpoint::DeviceCmd => "devicecmd",
            Endpoint::Ping => "ping",
            Endpoint::Other => "other",
        }
    }
}

/// An upload's text: UTF-8, or else GB18030/GBK (names on Chinese-language terminals),
/// or else Windows-1252 — every byte is some character, nothing is refused.
pub fn body_text(body: &[u8]) -> std::borrow::Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(body) {
        return std::borrow::Cow::Borrowed(text);
    }
    encoding_rs::GB18030
        .decode_without_bom_handling_and_without_replacement(body)
        .unwrap_or_else(|| {
            encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(body)
                .0
        })
}

/// A request's query, read leniently: keys compared without case (`SN`, `sn`), bad
/// percent-encoding kept as it came rather than refused.
#[derive(Debug, Clone, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(query: &str) -> Query {
        Query(
            query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(key), decode(value))
                })
                .collect(),
        )
    }

    /// The first value of `key`, compared without case.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| value.as_str())
    }

    /// The terminal's serial number.
    pub fn serial(&self) -> Option<&str> {
        self.get("SN")
            .map(str::trim)
            .filter(|serial| !serial.is_empty())
    }
}

/// `+` as space and `%XX` decoded; an invalid escape or invalid UTF-8 is kept as text.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(at + 1..at + 3)
                    .and_then(|pair| std::str::from_utf8(pair).ok())
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        at += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        at += 1;
    }
    String::from_utf8(out)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_variants_name_one_endpoint() {
        for path in [
            "/iclock/cdata",
            "/iclock/cdata/",
            "/iclock/cdata.aspx",
            "/iclock/CDATA",
        ] {
            assert_eq!(Endpoint::of(path), Some(Endpoint::Cdata), "{path}");
        }
        assert_eq!(
            Endpoint::of("/iclock/getrequest.aspx"),
            Some(Endpoint::GetRequest)
        );
        assert_eq!(Endpoint::of("/iclock/devicecmd"), Some(Endpoint::DeviceCmd));
        assert_eq!(Endpoint::of("/iclock/registry"), Some(Endpoint::Other));
        assert_eq!(Endpoint::of("/iclock/"), Some(Endpoint::Other));
        assert_eq!(Endpoint::of("/api/v1/devices"), None);
    }

    #[test]
    fn bodies_are_utf8_or_gbk_or_one_byte_per_character() {
        assert_eq!(body_text("PIN=1\tName=Zoë".as_bytes()), "PIN=1\tName=Zoë");
        // 张三 in GBK.
        assert_eq!(
            body_text(b"PIN=2\tName=\xd5\xc5\xc8\xfd"),
            "PIN=2\tName=张三"
        );
        assert_eq!(body_text(b"PIN=3\tName=\xff\xfe"), "PIN=3\tName=ÿþ");
    }

    #[test]
    fn queries_are_read_leniently() {
        let query = Query::parse("sn=CQZ7224460246&table=ATTLOG&Stamp=9999&INFO=Ver%202.0.12,0");
        assert_eq!(query.serial(), Some("CQZ7224460246"));
        assert_eq!(query.get("TABLE"), Some("ATTLOG"));
        assert_eq!(query.get("info"), Some("Ver 2.0.12,0"));
        let bad = Query::parse("SN=A%ZZ%&x=%ff%fe&flag");
        assert_eq!(bad.serial(), Some("A%ZZ%"));
        assert_eq!(bad.get("x"), Some("\u{fffd}\u{fffd}"));
        assert_eq!(bad.get("flag"), Some(""));
        assert_eq!(Query::parse("SN=&options=all").serial(), None);
    }
}
