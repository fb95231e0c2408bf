//! GET_FREE_SIZES: how many users, fingerprints and punches a device holds, and its
//! capacities (docs/zk-protocol.md, "Counters"). The reply is an array of LE i32; most firmware sends 20 of
//! them (80 bytes), face units 23. Some models send fewer, or zeros.

use super::le::Fields;

/// The counters we use. Missing fields read as 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub users: u32,
    pub fingers: u32,
    pub records: u32,
    pub finger_capacity: u32,
    pub user_capacity: u32,
    pub record_capacity: u32,
    pub faces: u32,
    pub face_capacity: u32,
}

/// Field index (×4 = byte offset) of each counter.
const USERS: usize = 4;
const FINGERS: usize = 6;
const RECORDS: usize = 8;
const FINGER_CAPACITY: usize = 14;
const USER_CAPACITY: usize = 15;
const RECORD_CAPACITY: usize = 16;
const FACES: usize = 20;
const FACE_CAPACITY: usize = 22;

impl Counters {
    pub fn decode(payload: &[u8]) -> Counters {
        let field = |index: usize| Fields(payload).i32(index * 4).max(0) as u32;
        Counters {
            users: field(USERS),
            fingers: field(FINGERS),
            records: field(RECORDS),
            finger_capacity: field(FINGER_CAPACITY),
            user_capacity: field(USER_CAPACITY),
            record_capacity: field(RECORD_CAPACITY),
            faces: field(FACES),
            face_capacity: field(FACE_CAPACITY),
        }
    }

    /// The 92-byte reply of a face-capable unit (for the simulator).
    pub fn encode(&self) -> Vec<u8> {
        let mut fields = [0i32; 23];
        let set = |fields: &mut [i32; 23], index: usize, value: u32| {
            fields[index] = i32::try_from(value).unwrap_or(i32::MAX);
        };
        set(&mut fields, USERS, self.users);
        set(&mut fields, FINGERS, self.fingers);
        set(&mut fields, RECORDS, self.records);
        set(&mut fields, FINGER_CAPACITY, self.finger_capacity);
        set(&mut fields, USER_CAPACITY, self.user_capacity);
        set(&mut fields, RECORD_CAPACITY, self.record_capacity);
        set(
            &mut fields,
            17,
            self.finger_capacity.saturating_sub(self.fingers),
        );
        set(
            &mut fields,
            18,
            self.user_capacity.saturating_sub(self.users),
        );
        set(
            &mut fields,
            19,
            self.record_capacity.saturating_sub(self.records),
        );
        set(&mut fields, FACES, self.faces);
        set(&mut fields, FACE_CAPACITY, self.face_capacity);
        fields
            .iter()
            .flat_map(|field| field.to_le_bytes())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn counters_survive_a_round_trip_and_short_replies_read_as_zero() {
        let counters = Counters {
            users: 50,
            fingers: 80,
            records: 100_000,
            finger_capacity: 3000,
            user_capacity: 3000,
            record_capacity: 200_000,
            faces: 12,
            face_capacity: 400,
        };
        let bytes = counters.encode();
        assert_eq!(bytes.len(), 92);
        assert_eq!(Counters::decode(&bytes), counters);
        assert_eq!(Counters::decode(&bytes[..80]).faces, 0);
        assert_eq!(Counters::decode(&[0, 0, 0, 0]), Counters::default());
        let mut negative = bytes.clone();
        negative[32..36].copy_from_slice(&(-5i32).to_le_bytes());
        assert_eq!(Counters::decode(&negative).records, 0);
    }

    proptest! {
        #[test]
        fn any_bytes_decode(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = Counters::decode(&bytes);
        }
    }
}
