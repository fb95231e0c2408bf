//! Device time: the packed u32 of records and GET/SET_TIME, and the 6-byte form of live
//! events (docs/zk-protocol.md, "Time").
//!
//! The packed calendar gives every month 31 days, so it can express dates that do not
//! exist (February 30th). Decoding never fails; it yields the fields as stored, and
//! [`DeviceTime::to_datetime`] says whether they make a real date. An impossible date
//! is the signature of a misread record and is quarantined, never "corrected".

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

/// Date and time fields as the device stored them, possibly impossible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceTime {
    pub year: u32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl DeviceTime {
    /// Decodes a packed time.
    pub fn from_packed(packed: u32) -> DeviceTime {
        let mut rest = packed;
        let mut take = |modulus: u32| {
            let value = rest % modulus;
            rest /= modulus;
            value
        };
        let second = take(60);
        let minute = take(60);
        let hour = take(24);
        let day = take(31) + 1;
        let month = take(12) + 1;
        DeviceTime {
            year: 2000 + rest,
            month,
            day,
            hour,
            minute,
            second,
        }
    }

    /// Decodes the 6-byte event form `YY MM DD hh mm ss` (year − 2000).
    pub fn from_event_bytes(bytes: [u8; 6]) -> DeviceTime {
        let [year, month, day, hour, minute, second] = bytes.map(u32::from);
        DeviceTime {
            year: 2000 + year,
            month,
            day,
            hour,
            minute,
            second,
        }
    }

    /// Encodes the packed form (years 2000–2099; other years wrap as on the device).
    pub fn to_packed(self) -> u32 {
        let days = (self.year % 100) * 12 * 31
            + self.month.saturating_sub(1) * 31
            + self.day.saturating_sub(1);
        days.wrapping_mul(86_400)
            .wrapping_add((self.hour * 60 + self.minute) * 60 + self.second)
    }

    pub fn to_event_bytes(self) -> [u8; 6] {
        [
            (self.year.saturating_sub(2000)).min(255) as u8,
            self.month as u8,
            self.day as u8,
            self.hour as u8,
            self.minute as u8,
            self.second as u8,
        ]
    }

    pub fn from_datetime(time: NaiveDateTime) -> DeviceTime {
        DeviceTime {
            year: time.year().max(0) as u32,
            month: time.month(),
            day: time.day(),
            hour: time.hour(),
            minute: time.minute(),
            second: time.second(),
        }
    }

    /// The real date-time, if these fields make one.
    pub fn to_datetime(self) -> Option<NaiveDateTime> {
        NaiveDate::from_ymd_opt(self.year as i32, self.month, self.day)?.and_hms_opt(
            self.hour,
            self.minute,
            self.second,
        )
    }

    /// `YYYY-MM-DD HH:MM:SS` exactly as stored, impossible or not (for quarantine).
    pub fn text(self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn the_spec_vectors_decode_and_encode() {
        let vectors = [
            (594_063_665, "2018-06-25 17:41:05"),
            (0x2368_B36B, "2018-06-25 17:50:35"),
            (0x1EA7_EBA8, "2016-01-01 19:02:00"),
        ];
        for (packed, text) in vectors {
            let time = DeviceTime::from_packed(packed);
            assert_eq!(time.to_datetime(), Some(at(text)), "{packed:#x}");
            assert_eq!(DeviceTime::from_datetime(at(text)).to_packed(), packed);
        }
        assert_eq!(594_063_665, 0x2368_B131);
    }

    #[test]
    fn event_times_use_six_bytes() {
        let time = DeviceTime::from_event_bytes([0x12, 0x06, 0x19, 0x11, 0x29, 0x05]);
        assert_eq!(time.to_datetime(), Some(at("2018-06-25 17:41:05")));
        assert_eq!(time.to_event_bytes(), [0x12, 0x06, 0x19, 0x11, 0x29, 0x05]);
    }

    #[test]
    fn impossible_dates_decode_but_are_not_real() {
        let february_30 = DeviceTime {
            year: 2025,
            month: 2,
            day: 30,
            hour: 10,
            minute: 0,
            second: 0,
        };
        let decoded = DeviceTime::from_packed(february_30.to_packed());
        assert_eq!(decoded, february_30);
        assert_eq!(decoded.to_datetime(), None);
        assert_eq!(decoded.text(), "2025-02-30 10:00:00");
    }

    proptest! {
        #[test]
        fn any_packed_value_decodes_without_panicking(packed in any::<u32>()) {
            let time = DeviceTime::from_packed(packed);
            prop_assert!(time.month >= 1 && time.month <= 12 && time.day >= 1 && time.day <= 31);
            let _ = time.to_datetime();
            let _ = time.text();
        }

        #[test]
        fn real_times_survive_a_round_trip(days in 0i64..36_500, seconds in 0i64..86_400) {
            let time = at("2000-01-01 00:00:00") + chrono::Duration::days(days) + chrono::Duration::seconds(seconds);
            let packed = DeviceTime::from_datetime(time).to_packed();
            prop_assert_eq!(DeviceTime::from_packed(packed).to_datetime(), Some(time));
        }
    }
}
