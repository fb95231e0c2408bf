//! The comm key ("device password", 0–999999) as sent in CMD_AUTH: mixed with the
//! session id so the key never crosses the wire as is (docs/zk-protocol.md, "The comm key"; the vendor's MakeKey).

/// The "ticks" constant every known client uses.
const TICKS: u8 = 50;

/// The 4-byte CMD_AUTH payload for `key` in `session`.
pub fn mix(key: u32, session: u16) -> [u8; 4] {
    let mixed = key.reverse_bits().wrapping_add(u32::from(session));
    let [b0, b1, b2, b3] = mixed.to_le_bytes();
    let xored = [b0 ^ b'Z', b1 ^ b'K', b2 ^ b'S', b3 ^ b'O'];
    // Swap the two 16-bit halves.
    let swapped = [xored[2], xored[3], xored[0], xored[1]];
    [
        swapped[0] ^ TICKS,
        swapped[1] ^ TICKS,
        TICKS,
        swapped[3] ^ TICKS,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_vectors_match() {
        assert_eq!(mix(0, 0), [0x61, 0x7d, 0x32, 0x79]);
        assert_eq!(mix(123_456, 0x1234), [0x26, 0x7f, 0x32, 0xeb]);
        assert_eq!(mix(1234, 0x1f2e), [0x41, 0x36, 0x32, 0x66]);
    }

    #[test]
    fn the_low_byte_of_the_session_does_not_matter() {
        for low in 0..=255u16 {
            assert_eq!(mix(999_999, 0x4200 | low), mix(999_999, 0x4200));
        }
        assert_ne!(mix(999_999, 0x4300), mix(999_999, 0x4200));
    }
}
