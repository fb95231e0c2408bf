//! User records: 72 bytes on TFT firmware, 28 on older units (docs/zk-protocol.md, "User records").
//!
//! | bytes (72) | field | bytes (28) | field |
//! |---|---|---|---|
//! | 0–1 | uid, u16 | 0–1 | uid, u16 |
//! | 2 | privilege (bit 0 set = disabled; bits 1–3 level) | 2 | privilege |
//! | 3–10 | password, ASCII | 3–7 | password |
//! | 11–34 | name (NUL padded) | 8–15 | name |
//! | 35–38 | card number, u32 | 16–19 | card number, u32 |
//! | 39 | group | 21 | group |
//! | 40–47 | time-zone flags (kept as they are when rewriting) | 22–23 | time zones |
//! | 48–71 | user id (PIN), ASCII | 24–27 | user id (PIN), u32 |
//!
//! A user is disabled by rewriting its record with bit 0 of the privilege byte set
//! (the vendor SDK's `SSR_EnableUser`); the other bytes are sent back exactly as read.

use super::le::Fields;

/// How a device lays out its user records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserLayout {
    Tft72,
    Old28,
}

impl UserLayout {
    pub fn size(self) -> usize {
        match self {
            UserLayout::Tft72 => 72,
            UserLayout::Old28 => 28,
        }
    }

    /// The layout of `records` (after the size prefix) holding `count` users.
    pub fn detect(records: &[u8], count: u32) -> UserLayout {
        match (count > 0).then(|| records.len() / count as usize) {
            Some(28) => UserLayout::Old28,
            Some(72) => UserLayout::Tft72,
            _ if !records.len().is_multiple_of(72) && records.len().is_multiple_of(28) => {
                UserLayout::Old28
            }
            _ => UserLayout::Tft72,
        }
    }
}

/// One user as stored on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub uid: u16,
    pub privilege: u8,
    pub name: String,
    pub card: u32,
    pub user_id: String,
    /// The record as read, rewritten byte for byte except what we change.
    pub raw: Vec<u8>,
}

impl UserRecord {
    pub fn enabled(&self) -> bool {
        self.privilege & 1 == 0
    }

    /// This record with the disabled bit cleared (`enabled`) or set.
    pub fn with_enabled(&self, enabled: bool) -> UserRecord {
        let privilege = if enabled {
            self.privilege & !1
        } else {
            self.privilege | 1
        };
        let mut raw = self.raw.clone();
        if let Some(byte) = raw.get_mut(2) {
            *byte = privilege;
        }
        UserRecord {
            privilege,
            raw,
            ..self.clone()
        }
    }

    /// A new record (for the simulator and for tests).
    pub fn build(
        uid: u16,
        user_id: &str,
        name: &str,
        privilege: u8,
        card: u32,
        layout: UserLayout,
    ) -> UserRecord {
        let mut raw = vec![0u8; layout.size()];
        raw[0..2].copy_from_slice(&uid.to_le_bytes());
        raw[2] = privilege;
        let put_text = |raw: &mut Vec<u8>, at: usize, width: usize, text: &str| {
            let bytes = text.as_bytes();
            let length = bytes.len().min(width - 1);
            raw[at..at + length].copy_from_slice(&bytes[..length]);
        };
        match layout {
            UserLayout::Tft72 => {
                put_text(&mut raw, 11, 24, name);
                raw[35..39].copy_from_slice(&card.to_le_bytes());
                raw[39] = 1;
                put_text(&mut raw, 48, 24, user_id);
            }
            UserLayout::Old28 => {
                put_text(&mut raw, 8, 8, name);
                raw[16..20].copy_from_slice(&card.to_le_bytes());
                raw[21] = 1;
                raw[24..28].copy_from_slice(&user_id.parse::<u32>().unwrap_or(0).to_le_bytes());
            }
        }
        decode_user(&raw, layout)
    }
}

/// Decodes one record (shorter input reads as zeros rather than panicking).
pub fn decode_user(record: &[u8], layout: UserLayout) -> UserRecord {
    let fields = Fields(record);
    let u32_at = |at| fields.u32(at);
    let text = |from: usize, to: usize| {
        let field = record.get(from..to).unwrap_or_default();
        text_of(field.split(|b| *b == 0).next().unwrap_or_default())
    };
    let (name, card, user_id) = match layout {
        UserLayout::Tft72 => (text(11, 35), u32_at(35), text(48, 72)),
        UserLayout::Old28 => (text(8, 16), u32_at(16), u32_at(24).to_string()),
    };
    let mut raw = record.get(..layout.size()).unwrap_or(record).to_vec();
    raw.resize(layout.size(), 0);
    UserRecord {
        uid: fields.u16(0),
        privilege: fields.u8(2),
        name: name.trim().to_owned(),
        card,
        user_id: user_id.trim().to_owned(),
        raw,
    }
}

/// Text in UTF-8 (most firmware), else Latin-1, which keeps every byte as a character.
fn text_of(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.iter().map(|b| char::from(*b)).collect(),
    }
}

/// The users in `records` (after the size prefix); a trailing partial record is ignored.
pub fn decode_users(records: &[u8], layout: UserLayout) -> Vec<UserRecord> {
    records
        .chunks_exact(layout.size())
        .map(|record| decode_user(record, layout))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn users_survive_a_round_trip_in_both_layouts() {
        for layout in [UserLayout::Tft72, UserLayout::Old28] {
            let user = UserRecord::build(13, "999111", "Aisha", 14, 4_242_424, layout);
            assert_eq!(user.raw.len(), layout.size());
            let again = decode_user(&user.raw, layout);
            assert_eq!(again, user);
            assert_eq!(
                (again.uid, again.user_id.as_str(), again.card),
                (13, "999111", 4_242_424)
            );
            assert!(again.enabled());
            assert_eq!(
                UserLayout::detect(&[user.raw.clone(), user.raw].concat(), 2),
                layout
            );
        }
    }

    #[test]
    fn disabling_flips_bit_0_and_keeps_every_other_byte() {
        let mut user = UserRecord::build(5, "1005", "Ravi", 14, 0, UserLayout::Tft72);
        user.raw[40..48].copy_from_slice(&[1, 0, 1, 0, 2, 0, 0, 0]);
        let disabled = user.with_enabled(false);
        assert!(!disabled.enabled());
        assert_eq!(disabled.privilege, 15);
        assert_eq!(disabled.raw[2], 15);
        let changed: Vec<usize> = (0..72)
            .filter(|i| disabled.raw[*i] != user.raw[*i])
            .collect();
        assert_eq!(changed, vec![2]);
        assert_eq!(disabled.with_enabled(true).raw, user.raw);
    }

    #[test]
    fn names_that_are_not_utf8_keep_their_bytes() {
        let mut record = UserRecord::build(1, "1", "", 0, 0, UserLayout::Tft72).raw;
        record[11..14].copy_from_slice(&[0xC9, 0x6C, 0x65]);
        assert_eq!(decode_user(&record, UserLayout::Tft72).name, "Éle");
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..300), count in any::<u32>()) {
            let layout = UserLayout::detect(&bytes, count);
            for user in decode_users(&bytes, layout) {
                let _ = user.with_enabled(!user.enabled());
            }
            let _ = decode_user(&bytes, UserLayout::Tft72);
            let _ = decode_user(&bytes, UserLayout::Old28);
        }
    }
}
