//! The small payloads of requests and replies: buffered reads (PREPARE_BUFFER /
//! READ_BUFFER), option strings, and the prepare-data size.

use super::le::Fields;

/// PREPARE_BUFFER (1503) payload: `01 | u16 inner command | u32 fct | u32 ext`.
pub fn prepare_buffer(inner: u16, fct: u32) -> Vec<u8> {
    let mut payload = vec![1];
    payload.extend_from_slice(&inner.to_le_bytes());
    payload.extend_from_slice(&fct.to_le_bytes());
    payload.extend_from_slice(&0u32.to_le_bytes());
    payload
}

/// Reads a PREPARE_BUFFER payload: `(inner command, fct)`.
pub fn parse_prepare_buffer(payload: &[u8]) -> Option<(u16, u32)> {
    let fields = Fields(payload);
    Some((fields.exact_u16(1)?, fields.exact_u32(3)?))
}

/// The reply to PREPARE_BUFFER when the data does not fit one packet:
/// `00 | u32 size | u32 size | u32 0`.
pub fn buffer_ready(size: u32) -> Vec<u8> {
    let mut payload = vec![0];
    payload.extend_from_slice(&size.to_le_bytes());
    payload.extend_from_slice(&size.to_le_bytes());
    payload.extend_from_slice(&0u32.to_le_bytes());
    payload
}

/// The size in a PREPARE_BUFFER acknowledgement.
pub fn parse_buffer_ready(payload: &[u8]) -> Option<u32> {
    Fields(payload).exact_u32(1)
}

/// READ_BUFFER (1504) payload: `u32 offset | u32 length`.
pub fn read_buffer(offset: u32, length: u32) -> Vec<u8> {
    [offset.to_le_bytes(), length.to_le_bytes()].concat()
}

pub fn parse_read_buffer(payload: &[u8]) -> Option<(u32, u32)> {
    let fields = Fields(payload);
    Some((fields.exact_u32(0)?, fields.exact_u32(4)?))
}

/// PREPARE_DATA payload announcing `length` bytes: `u32 length | u32 0` (clients such as
/// pyzk skip exactly these 8 bytes).
pub fn prepare_data(length: u32) -> Vec<u8> {
    [length.to_le_bytes(), 0u32.to_le_bytes()].concat()
}

pub fn parse_prepare_data(payload: &[u8]) -> Option<u32> {
    Fields(payload).exact_u32(0)
}

/// OPTIONS_RRQ payload: the key, NUL terminated.
pub fn option_request(key: &str) -> Vec<u8> {
    let mut payload = key.as_bytes().to_vec();
    payload.push(0);
    payload
}

/// The value in an OPTIONS_RRQ reply `key=value\0`.
pub fn parse_option_reply(payload: &[u8]) -> Option<String> {
    let text = payload.split(|b| *b == 0).next()?;
    let value = text.splitn(2, |b| *b == b'=').nth(1)?;
    Some(String::from_utf8_lossy(value).trim().to_owned())
}

/// A NUL-terminated ASCII payload as text (GET_VERSION replies, option keys).
pub fn c_string(payload: &[u8]) -> String {
    let text = payload.split(|b| *b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(text).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buffered_read_payloads_match_the_spec() {
        assert_eq!(
            prepare_buffer(13, 0),
            vec![1, 0x0d, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            prepare_buffer(9, 5),
            vec![1, 0x09, 0, 5, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(parse_prepare_buffer(&prepare_buffer(9, 5)), Some((9, 5)));
        assert_eq!(
            parse_buffer_ready(&buffer_ready(4_000_004)),
            Some(4_000_004)
        );
        assert_eq!(
            parse_read_buffer(&read_buffer(0xFFC0, 100)),
            Some((0xFFC0, 100))
        );
        assert_eq!(parse_prepare_data(&prepare_data(16_384)), Some(16_384));
    }

    #[test]
    fn options_are_key_equals_value() {
        assert_eq!(option_request("~SerialNumber"), b"~SerialNumber\0");
        assert_eq!(
            parse_option_reply(b"~SerialNumber=CQZ7231560001\0"),
            Some("CQZ7231560001".into())
        );
        assert_eq!(
            parse_option_reply(b"~Platform=ZEM760_TFT\0garbage"),
            Some("ZEM760_TFT".into())
        );
        assert_eq!(parse_option_reply(b"no value"), None);
        assert_eq!(c_string(b"Ver 6.60 Apr 28 2016\0"), "Ver 6.60 Apr 28 2016");
    }

    proptest! {
        #[test]
        fn any_bytes_parse_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = parse_prepare_buffer(&bytes);
            let _ = parse_buffer_ready(&bytes);
            let _ = parse_read_buffer(&bytes);
            let _ = parse_prepare_data(&bytes);
            let _ = parse_option_reply(&bytes);
            let _ = c_string(&bytes);
        }
    }
}
