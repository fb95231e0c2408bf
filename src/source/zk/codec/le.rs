//! Reading little-endian fields at fixed offsets — the one way every part of the ZK
//! protocol's bytes are read, by the codec, the client and the terminal simulator
//! alike. Two flavours: [`Fields::u32`] and friends read zeros past the end (a short
//! record decodes to zeros and never panics — what the decoders want), and
//! [`Fields::exact_u32`] and friends say `None` when the bytes are not all there (what
//! request parsing wants).

/// The bytes a field is read from.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a>(pub &'a [u8]);

impl Fields<'_> {
    pub fn u8(&self, at: usize) -> u8 {
        self.0.get(at).copied().unwrap_or(0)
    }

    pub fn u16(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.u8(at), self.u8(at + 1)])
    }

    pub fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes([
            self.u8(at),
            self.u8(at + 1),
            self.u8(at + 2),
            self.u8(at + 3),
        ])
    }

    pub fn i32(&self, at: usize) -> i32 {
        self.u32(at) as i32
    }

    pub fn exact_u16(&self, at: usize) -> Option<u16> {
        let bytes = self.0.get(at..at.checked_add(2)?)?;
        Some(u16::from_le_bytes([bytes[0], bytes[1]]))
    }

    pub fn exact_u32(&self, at: usize) -> Option<u32> {
        let bytes = self.0.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_little_endian_and_zeros_or_none_past_the_end() {
        let bytes = [0x34, 0x12, 0x78, 0x56, 0xFF];
        let fields = Fields(&bytes);
        assert_eq!(fields.u16(0), 0x1234);
        assert_eq!(fields.u32(0), 0x5678_1234);
        assert_eq!(fields.u32(2), 0x0000_FF56_u32 << 8 | 0x78);
        assert_eq!(fields.u16(4), 0x00FF);
        assert_eq!(fields.u8(9), 0);
        assert_eq!(fields.exact_u16(3), Some(0xFF56));
        assert_eq!(fields.exact_u16(4), None);
        assert_eq!(fields.exact_u32(1), Some(0xFF56_7812));
        assert_eq!(fields.exact_u32(usize::MAX), None);
        assert_eq!(Fields(&[0xFF, 0xFF, 0xFF, 0xFF]).i32(0), -1);
    }
}
