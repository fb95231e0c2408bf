//! Attendance records in the device's log, in every size firmware uses, and how to tell
//! which one a device sends (docs/zk-protocol.md, "Attendance records").
//!
//! A read of the log (PREPARE_BUFFER for ATTLOG_RRQ) yields `u32 total` then the
//! records back to back. The record size is `total / count` (count from
//! GET_FREE_SIZES), but devices misreport the count, and one wrong guess turns every
//! record after the first into garbage — the classic "only the first record is right"
//! bug. So the size is checked: a sample of records must decode to real dates.
//!
//! | bytes | field | 8 (old B&W) | 16 ("ExtendFmt") | 40 (TFT) | 49 (2022 MB560-VL) |
//! |---|---|---|---|---|---|
//! | 0–1 | user index (uid), u16 | ✓ | — | ✓ | ✓ |
//! | 0–3 | user id (PIN) as u32 | — | ✓ | — | — |
//! | 2 | verify mode | ✓ (meaning unsettled) | — | — | — |
//! | 3 | punch state | ✓ (meaning unsettled) | — | — | — |
//! | 4–7 | packed time | ✓ (some firmware: 3–6, state at 7) | ✓ | — | — |
//! | 2–25 | user id (PIN), ASCII, NUL padded | — | — | ✓ | ✓ |
//! | 8 | verify mode (pyzk) or punch state (vendor SDK) | — | ✓ | — | — |
//! | 9 | punch state (pyzk) or verify mode (vendor SDK) | — | ✓ | — | — |
//! | 10–11 | reserved | — | ✓ | — | — |
//! | 12–15 | work code, u32 | — | ✓ | — | — |
//! | 26 | verify mode | — | — | ✓ | ✓ |
//! | 27–30 | packed time | — | — | ✓ | ✓ |
//! | 31 | punch state | — | — | ✓ | ✓ |
//! | 32–39 | reserved (seen `00 00 00 00 FF 00 00 00`) | — | — | ✓ | ✓ |
//! | 40–48 | unknown | — | — | — | ✓ (ignored) |
//!
//! Bytes 8 and 9 of 16-byte records are read two ways: pyzk (and so the Python
//! iclock-sync, and the thousands of terminals read with it) takes byte 8 as the verify
//! mode and byte 9 as the punch state; the vendor SDK's struct says the opposite. pyzk's
//! reading is the default ([`Record16::Pyzk`]), so documents match the Python tool's;
//! a device can choose the other.
//!
//! Records of 8 and 16 bytes do not carry the printed PIN in a way every device agrees
//! on: 8-byte records name the user by index only, resolved through the user table.
//! For 8-byte records the time is read at offset 4 (what field captures show) unless
//! that gives implausible dates and offset 3 (pyzk's layout) does not.

use std::ops::RangeInclusive;

use super::le::Fields;
use super::time::DeviceTime;

/// How a device lays out its attendance records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttendanceLayout {
    /// 40 bytes with the PIN as text; `size` is 40 or more (extra bytes ignored).
    Pin { size: usize },
    /// 16 bytes with the PIN as a number; `order` says which of bytes 8 and 9 is which.
    Extended { order: Record16 },
    /// 8 bytes naming the user by index; the packed time sits at `time_at` (3 or 4).
    Compact { time_at: usize },
}

/// How bytes 8 and 9 of a 16-byte record are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Record16 {
    /// Byte 8 the verify mode, byte 9 the punch state (pyzk, the Python iclock-sync).
    #[default]
    Pyzk,
    /// Byte 8 the punch state, byte 9 the verify mode (the vendor SDK's struct).
    Vendor,
}

impl Record16 {
    /// The offsets of (punch state, verify mode).
    fn offsets(self) -> (usize, usize) {
        match self {
            Record16::Pyzk => (9, 8),
            Record16::Vendor => (8, 9),
        }
    }
}

impl AttendanceLayout {
    /// 16-byte records in pyzk's reading.
    pub const EXTENDED: AttendanceLayout = AttendanceLayout::Extended {
        order: Record16::Pyzk,
    };

    /// The same layout, with 16-byte records read in `order`.
    pub fn with_record16(self, order: Record16) -> AttendanceLayout {
        match self {
            AttendanceLayout::Extended { .. } => AttendanceLayout::Extended { order },
            other => other,
        }
    }

    pub fn size(self) -> usize {
        match self {
            AttendanceLayout::Pin { size } => size,
            AttendanceLayout::Extended { .. } => 16,
            AttendanceLayout::Compact { .. } => 8,
        }
    }
}

/// Who punched, as the record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The PIN the device shows (may be empty on a broken record).
    Pin(String),
    /// The internal user index; the PIN comes from the user table.
    Index(u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendanceRecord {
    pub identity: Identity,
    /// The user index where the record has one.
    pub uid: Option<u16>,
    pub time: DeviceTime,
    pub state: u8,
    pub verify: u8,
    pub work_code: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("the attendance buffer is {0} bytes, too short for its size prefix")]
    NoPrefix(usize),
    #[error(
        "cannot tell the attendance record size: {bytes} bytes of records, the device counts {count} records, and no known layout gives real dates"
    )]
    UnknownLayout { bytes: usize, count: u32 },
}

/// Splits a log buffer into its `total` prefix and the record bytes. The records are
/// cut to `total` when the buffer holds more (trailing padding).
pub fn split_log(buffer: &[u8]) -> Result<&[u8], LogError> {
    let (prefix, records) = buffer
        .split_first_chunk::<4>()
        .ok_or(LogError::NoPrefix(buffer.len()))?;
    let total = Fields(prefix).u32(0) as usize;
    Ok(&records[..total.min(records.len())])
}

/// Decides the layout of `records` (the bytes after the prefix), given the record
/// count the device reported (0 when it reports none) and the current year.
pub fn detect_layout(
    records: &[u8],
    count: u32,
    current_year: u32,
) -> Result<AttendanceLayout, LogError> {
    if records.is_empty() {
        return Ok(AttendanceLayout::Pin { size: 40 });
    }
    let mut candidates = Vec::new();
    if count > 0 && records.len().is_multiple_of(count as usize) {
        match records.len() / count as usize {
            8 => candidates.extend([
                AttendanceLayout::Compact { time_at: 4 },
                AttendanceLayout::Compact { time_at: 3 },
            ]),
            16 => candidates.push(AttendanceLayout::EXTENDED),
            size if size >= 40 => candidates.push(AttendanceLayout::Pin { size }),
            _ => {}
        }
    }
    // Smaller sizes first: read with too large a size, small records still look
    // plausible (every other one is skipped), while the opposite mistake does not.
    candidates.extend([
        AttendanceLayout::Compact { time_at: 4 },
        AttendanceLayout::Compact { time_at: 3 },
        AttendanceLayout::EXTENDED,
        AttendanceLayout::Pin { size: 40 },
        AttendanceLayout::Pin { size: 49 },
    ]);
    // The best-scoring layout wins; on a tie, the earlier candidate (the count's, then
    // the smaller). Dates are first held to the last twenty years, which separates
    // misreads that land on year-2000 dates; a log that old falls back to 2000–now.
    for earliest_year in [current_year.saturating_sub(20), 2000] {
        let years = earliest_year..=current_year + 1;
        let mut best: Option<(AttendanceLayout, usize)> = None;
        for layout in candidates.iter().copied() {
            if !records.len().is_multiple_of(layout.size()) {
                continue;
            }
            let score = plausible_share(records, layout, &years);
            if score >= 90 && best.is_none_or(|(_, best_score)| score > best_score) {
                best = Some((layout, score));
            }
        }
        if let Some((layout, _)) = best {
            return Ok(layout);
        }
    }
    Err(LogError::UnknownLayout {
        bytes: records.len(),
        count,
    })
}

/// Records checked when judging a layout.
const SAMPLE: usize = 32;

/// The percentage of a sample of records (spread evenly, first and last included) that
/// look like real records under `layout`.
fn plausible_share(records: &[u8], layout: AttendanceLayout, years: &RangeInclusive<u32>) -> usize {
    let size = layout.size();
    let total = records.len() / size;
    if total == 0 {
        return 0;
    }
    let indices: Vec<usize> = if total <= SAMPLE {
        (0..total).collect()
    } else {
        (0..SAMPLE)
            .map(|i| i * (total - 1) / (SAMPLE - 1))
            .collect()
    };
    let plausible = indices
        .iter()
        .filter_map(|index| records.get(index * size..(index + 1) * size))
        .filter(|record| plausible(record, layout, years))
        .count();
    plausible * 100 / indices.len()
}

/// Whether `record` looks real under `layout`: a real date in `years` that is not the
/// all-zero time (what misaligned reads of padding produce), and for 40-byte records a
/// PIN field of printable text followed only by NULs.
fn plausible(record: &[u8], layout: AttendanceLayout, years: &RangeInclusive<u32>) -> bool {
    let decoded = decode_record(record, layout);
    let time_ok = decoded.time.to_packed() != 0
        && decoded.time.to_datetime().is_some()
        && years.contains(&decoded.time.year);
    let identity_ok = match layout {
        AttendanceLayout::Pin { .. } => {
            let field = record.get(2..26).unwrap_or_default();
            let text_length = field.iter().take_while(|b| b.is_ascii_graphic()).count();
            field[text_length..].iter().all(|b| *b == 0)
        }
        _ => true,
    };
    time_ok && identity_ok
}

/// The records of `records` in order; a trailing partial record is ignored.
pub fn decode(
    records: &[u8],
    layout: AttendanceLayout,
) -> impl Iterator<Item = AttendanceRecord> + '_ {
    records
        .chunks_exact(layout.size())
        .map(move |record| decode_record(record, layout))
}

/// Decodes one record; `record` must be `layout.size()` bytes (shorter input reads as
/// zeros rather than panicking).
pub fn decode_record(record: &[u8], layout: AttendanceLayout) -> AttendanceRecord {
    let fields = Fields(record);
    let (byte, u16_at, u32_at) = (|at| fields.u8(at), |at| fields.u16(at), |at| fields.u32(at));
    match layout {
        AttendanceLayout::Pin { .. } => {
            let pin = record.get(2..26).unwrap_or_default();
            let pin = pin.split(|b| *b == 0).next().unwrap_or_default();
            AttendanceRecord {
                identity: Identity::Pin(String::from_utf8_lossy(pin).trim().to_owned()),
                uid: Some(u16_at(0)),
                time: DeviceTime::from_packed(u32_at(27)),
                state: byte(31),
                verify: byte(26),
                work_code: 0,
            }
        }
        AttendanceLayout::Extended { order } => {
            let (state_at, verify_at) = order.offsets();
            AttendanceRecord {
                identity: Identity::Pin(u32_at(0).to_string()),
                uid: None,
                time: DeviceTime::from_packed(u32_at(4)),
                state: byte(state_at),
                verify: byte(verify_at),
                work_code: u32_at(12),
            }
        }
        AttendanceLayout::Compact { time_at } => AttendanceRecord {
            identity: Identity::Index(u16_at(0)),
            uid: Some(u16_at(0)),
            time: DeviceTime::from_packed(u32_at(time_at)),
            state: if time_at == 3 { byte(7) } else { byte(3) },
            verify: byte(2),
            work_code: 0,
        },
    }
}

/// Encodes a record as a device of `layout` stores it (for the simulator).
pub fn encode(record: &AttendanceRecord, layout: AttendanceLayout) -> Vec<u8> {
    let mut bytes = vec![0u8; layout.size()];
    let pin = match &record.identity {
        Identity::Pin(pin) => pin.as_str(),
        Identity::Index(_) => "",
    };
    let uid = record.uid.unwrap_or(match record.identity {
        Identity::Index(uid) => uid,
        Identity::Pin(_) => 0,
    });
    let packed = record.time.to_packed().to_le_bytes();
    match layout {
        AttendanceLayout::Pin { .. } => {
            bytes[0..2].copy_from_slice(&uid.to_le_bytes());
            let pin = pin.as_bytes();
            let length = pin.len().min(23);
            bytes[2..2 + length].copy_from_slice(&pin[..length]);
            bytes[26] = record.verify;
            bytes[27..31].copy_from_slice(&packed);
            bytes[31] = record.state;
            bytes[36] = 0xFF;
        }
        AttendanceLayout::Extended { order } => {
            let (state_at, verify_at) = order.offsets();
            bytes[0..4].copy_from_slice(&pin.parse::<u32>().unwrap_or(0).to_le_bytes());
            bytes[4..8].copy_from_slice(&packed);
            bytes[state_at] = record.state;
            bytes[verify_at] = record.verify;
            bytes[12..16].copy_from_slice(&record.work_code.to_le_bytes());
        }
        AttendanceLayout::Compact { time_at } => {
            bytes[0..2].copy_from_slice(&uid.to_le_bytes());
            bytes[2] = record.verify;
            bytes[time_at..time_at + 4].copy_from_slice(&packed);
            bytes[if time_at == 3 { 7 } else { 3 }] = record.state;
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(text: &str) -> Vec<u8> {
        let clean: String = text.split_whitespace().collect();
        (0..clean.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&clean[i..i + 2], 16).unwrap())
            .collect()
    }

    fn time(text: &str) -> DeviceTime {
        DeviceTime::from_datetime(
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap(),
        )
    }

    #[test]
    fn the_captured_40_byte_record_decodes() {
        let bytes = hex(&format!(
            "0D00 393939313131333333 {} 01 6BB36823 00 00000000FF000000",
            "00".repeat(15)
        ));
        assert_eq!(bytes.len(), 40);
        let record = decode_record(&bytes, AttendanceLayout::Pin { size: 40 });
        assert_eq!(record.identity, Identity::Pin("999111333".into()));
        assert_eq!(record.uid, Some(13));
        assert_eq!(record.verify, 1);
        assert_eq!(record.state, 0);
        assert_eq!(record.time, time("2018-06-25 17:50:35"));
        assert_eq!(encode(&record, AttendanceLayout::Pin { size: 40 }), bytes);
    }

    #[test]
    fn the_reported_8_byte_record_has_its_time_at_offset_4() {
        let bytes = hex("07002800a8eba71e");
        let record = decode_record(&bytes, AttendanceLayout::Compact { time_at: 4 });
        assert_eq!(record.identity, Identity::Index(7));
        assert_eq!(record.time, time("2016-01-01 19:02:00"));
        assert_eq!(record.verify, 0x28);
        assert_eq!(
            encode(&record, AttendanceLayout::Compact { time_at: 4 }),
            bytes
        );
        let as_pyzk_reads_it = decode_record(&bytes, AttendanceLayout::Compact { time_at: 3 });
        assert_ne!(
            as_pyzk_reads_it.time.to_datetime(),
            record.time.to_datetime()
        );
        assert_eq!(
            detect_layout(&[bytes.clone(), bytes].concat(), 2, 2026),
            Ok(AttendanceLayout::Compact { time_at: 4 })
        );
    }

    fn log(layout: AttendanceLayout, count: usize) -> Vec<u8> {
        (0..count)
            .flat_map(|index| {
                let record = AttendanceRecord {
                    identity: Identity::Pin(format!("{}", 1000 + index)),
                    uid: Some(index as u16 + 1),
                    time: time("2026-03-01 08:00:00"),
                    state: (index % 2) as u8,
                    verify: 1,
                    work_code: 0,
                };
                encode(&record, layout)
            })
            .collect()
    }

    /// pyzk unpacks `<I4sBB2sI` as (user_id, timestamp, status, punch, …) and the
    /// Python tool wrote `status` as the verify mode and `punch` as the state.
    #[test]
    fn sixteen_byte_records_read_bytes_8_and_9_as_pyzk_does_unless_told_otherwise() {
        let record = hex("e9030000 6bb36823 0f 01 0000 07000000");
        let pyzk = decode_record(&record, AttendanceLayout::EXTENDED);
        assert_eq!((pyzk.verify, pyzk.state), (15, 1));
        assert_eq!(pyzk.identity, Identity::Pin("1001".into()));
        assert_eq!(pyzk.work_code, 7);
        let vendor = AttendanceLayout::EXTENDED.with_record16(Record16::Vendor);
        let read = decode_record(&record, vendor);
        assert_eq!((read.verify, read.state), (1, 15));
        assert_eq!(encode(&read, vendor), record);
        assert_eq!(encode(&pyzk, AttendanceLayout::EXTENDED), record);
    }

    #[test]
    fn every_layout_is_detected_from_its_count_and_its_dates() {
        for layout in [
            AttendanceLayout::Pin { size: 40 },
            AttendanceLayout::Pin { size: 49 },
            AttendanceLayout::EXTENDED,
            AttendanceLayout::Compact { time_at: 4 },
            AttendanceLayout::Compact { time_at: 3 },
        ] {
            let records = log(layout, 60);
            assert_eq!(
                detect_layout(&records, 60, 2026),
                Ok(layout),
                "with the count"
            );
            assert_eq!(
                detect_layout(&records, 0, 2026),
                Ok(layout),
                "device reports no count"
            );
        }
    }

    #[test]
    fn a_misreported_count_does_not_fool_the_detector() {
        // 49-byte records while the device's count implies 40 (or nothing sensible).
        let records = log(AttendanceLayout::Pin { size: 49 }, 40);
        assert_eq!(
            detect_layout(&records, 49, 2026),
            Ok(AttendanceLayout::Pin { size: 49 })
        );
        let garbage = vec![0xFFu8; 400];
        assert!(matches!(
            detect_layout(&garbage, 10, 2026),
            Err(LogError::UnknownLayout { .. })
        ));
        assert_eq!(
            detect_layout(&[], 0, 2026),
            Ok(AttendanceLayout::Pin { size: 40 })
        );
    }

    #[test]
    fn the_prefix_is_split_off_and_respected() {
        let mut buffer = 80u32.to_le_bytes().to_vec();
        buffer.extend(log(AttendanceLayout::Pin { size: 40 }, 2));
        buffer.extend([0, 0, 0]);
        assert_eq!(split_log(&buffer).unwrap().len(), 80);
        assert_eq!(split_log(&[1, 2]), Err(LogError::NoPrefix(2)));
        let mut lying = 1_000_000u32.to_le_bytes().to_vec();
        lying.extend([1, 2, 3]);
        assert_eq!(split_log(&lying).unwrap(), &[1, 2, 3]);
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..600), count in any::<u32>()) {
            let _ = split_log(&bytes);
            let _ = detect_layout(&bytes, count, 2026);
            for layout in [AttendanceLayout::Pin { size: 40 }, AttendanceLayout::Pin { size: 49 }, AttendanceLayout::EXTENDED, AttendanceLayout::Compact { time_at: 3 }, AttendanceLayout::Compact { time_at: 4 }] {
                for record in decode(&bytes, layout) {
                    let _ = record.time.to_datetime();
                }
                let _ = decode_record(&bytes, layout);
            }
        }
    }
}
