//! Live attendance events: what a device sends, unasked, on each punch after REG_EVENT
//! (docs/zk-protocol.md, "Live events"). The packet's command is REG_EVENT, its session field the event code
//! (1 = attendance), its reply number 0; the client answers each with ACK_OK.
//!
//! | payload | layout |
//! |---|---|
//! | 10 | uid u16, verify, state, time6 |
//! | 12 | user id u32, verify, state, time6 |
//! | 14 | as 10, then 4 unknown bytes |
//! | 32 | user id ASCII (24 bytes), verify, state, time6 |
//! | 36, 37, 52+ | as 32, then unknown bytes |

use super::attendance::Identity;
use super::le::Fields;
use super::time::DeviceTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendanceEvent {
    pub identity: Identity,
    pub verify: u8,
    pub state: u8,
    pub time: DeviceTime,
}

impl AttendanceEvent {
    pub fn decode(payload: &[u8]) -> Option<AttendanceEvent> {
        let six = |at: usize| -> Option<[u8; 6]> { payload.get(at..at + 6)?.try_into().ok() };
        let (identity, rest) = match payload.len() {
            10 | 14 => (Identity::Index(Fields(payload).u16(0)), 2),
            12 => (Identity::Pin(Fields(payload).u32(0).to_string()), 4),
            32.. => {
                let pin = payload
                    .get(..24)?
                    .split(|b| *b == 0)
                    .next()
                    .unwrap_or_default();
                (
                    Identity::Pin(String::from_utf8_lossy(pin).trim().to_owned()),
                    24,
                )
            }
            _ => return None,
        };
        Some(AttendanceEvent {
            identity,
            verify: *payload.get(rest)?,
            state: *payload.get(rest + 1)?,
            time: DeviceTime::from_event_bytes(six(rest + 2)?),
        })
    }

    /// The 32-byte form (PIN as text), or the 12-byte form when `numeric_pin`.
    pub fn encode(&self, numeric_pin: bool) -> Vec<u8> {
        let pin = match &self.identity {
            Identity::Pin(pin) => pin.clone(),
            Identity::Index(uid) => uid.to_string(),
        };
        let mut bytes = if numeric_pin {
            pin.parse::<u32>().unwrap_or(0).to_le_bytes().to_vec()
        } else {
            let mut field = vec![0u8; 24];
            let length = pin.len().min(23);
            field[..length].copy_from_slice(&pin.as_bytes()[..length]);
            field
        };
        bytes.push(self.verify);
        bytes.push(self.state);
        bytes.extend_from_slice(&self.time.to_event_bytes());
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_captured_32_byte_event_decodes() {
        let mut payload = b"999111333".to_vec();
        payload.resize(24, 0);
        payload.extend([0x01, 0x00, 0x12, 0x06, 0x19, 0x11, 0x29, 0x05]);
        let event = AttendanceEvent::decode(&payload).unwrap();
        assert_eq!(event.identity, Identity::Pin("999111333".into()));
        assert_eq!((event.verify, event.state), (1, 0));
        assert_eq!(event.time.text(), "2018-06-25 17:41:05");
        assert_eq!(event.encode(false), payload);
        let numeric = event.encode(true);
        assert_eq!(numeric.len(), 12);
        assert_eq!(AttendanceEvent::decode(&numeric), Some(event));
    }

    proptest! {
        #[test]
        fn any_payload_decodes_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = AttendanceEvent::decode(&bytes);
        }
    }
}
