//! Packets: the 8-byte header, its checksum, and the TCP wrapper.
//!
//! ```text
//! UDP datagram:            [command u16][checksum u16][session u16][reply u16][payload…]
//! TCP:  [50 50 82 7D][length u32] + the same packet (length = 8 + payload)
//! ```
//! All integers little-endian. The checksum is the one's-complement sum of the packet's
//! 16-bit words with the checksum field zeroed (docs/zk-protocol.md, "Packets").

use std::fmt;

use super::le::Fields;

/// The TCP wrapper's magic: the LE u16s 0x5050 and 0x7D82.
pub const TCP_MAGIC: [u8; 4] = [0x50, 0x50, 0x82, 0x7D];
pub const HEADER_LEN: usize = 8;
pub const TCP_WRAPPER_LEN: usize = 8;
/// The largest packet we accept. Chunked reads move at most 0xFFC0 bytes per packet;
/// anything far bigger is garbage or hostile, and must not make us allocate it.
pub const MAX_PACKET_LEN: usize = 4 * 1024 * 1024;

/// Command and reply codes (docs/zk-protocol.md, "Commands we use").
pub mod code {
    pub const CONNECT: u16 = 1000;
    pub const EXIT: u16 = 1001;
    pub const ENABLE_DEVICE: u16 = 1002;
    pub const DISABLE_DEVICE: u16 = 1003;
    pub const REFRESH_DATA: u16 = 1013;
    pub const GET_VERSION: u16 = 1100;
    pub const AUTH: u16 = 1102;
    pub const PREPARE_DATA: u16 = 1500;
    pub const DATA: u16 = 1501;
    pub const FREE_DATA: u16 = 1502;
    pub const PREPARE_BUFFER: u16 = 1503;
    pub const READ_BUFFER: u16 = 1504;
    pub const USER_WRQ: u16 = 8;
    pub const USERTEMP_RRQ: u16 = 9;
    pub const OPTIONS_RRQ: u16 = 11;
    pub const OPTIONS_WRQ: u16 = 12;
    pub const ATTLOG_RRQ: u16 = 13;
    pub const CLEAR_DATA: u16 = 14;
    pub const CLEAR_ATTLOG: u16 = 15;
    pub const DELETE_USER: u16 = 18;
    pub const GET_FREE_SIZES: u16 = 50;
    pub const START_VERIFY: u16 = 60;
    pub const CANCEL_CAPTURE: u16 = 62;
    pub const GET_TIME: u16 = 201;
    pub const SET_TIME: u16 = 202;
    pub const REG_EVENT: u16 = 500;

    pub const ACK_OK: u16 = 2000;
    pub const ACK_ERROR: u16 = 2001;
    pub const ACK_DATA: u16 = 2002;
    pub const ACK_RETRY: u16 = 2003;
    pub const ACK_REPEAT: u16 = 2004;
    pub const ACK_UNAUTH: u16 = 2005;
    pub const ACK_UNKNOWN: u16 = 65535;
    pub const ACK_ERROR_CMD: u16 = 65533;
    pub const ACK_ERROR_INIT: u16 = 65532;
    pub const ACK_ERROR_DATA: u16 = 65531;

    /// The `fct` of a users read through PREPARE_BUFFER.
    pub const FCT_USER: u32 = 5;
    /// Event flag (REG_EVENT mask bit and event code) of an attendance punch.
    pub const EF_ATTLOG: u16 = 1;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("a packet of {0} bytes is shorter than its 8-byte header")]
    Short(usize),
    #[error(
        "the answer is not a ZK packet: it starts with the bytes {} where a terminal sends 50 50 82 7D",
        hex_bytes(.0)
    )]
    BadMagic([u8; 4]),
    #[error(
        "a web server answered (\"{0}…\"), not a terminal — if this is BioTime, use kind = \"biotime\" with url = \"http://HOST:PORT\"; a terminal's ZK port is usually 4370"
    )]
    Http(String),
    #[error("the TCP wrapper announces {0} bytes, more than any real packet")]
    TooLong(usize),
    #[error("the TCP wrapper announces {0} bytes, less than a header")]
    TooShort(usize),
}

/// One protocol packet.
#[derive(Clone, PartialEq, Eq)]
pub struct Packet {
    pub command: u16,
    pub session: u16,
    pub reply: u16,
    pub payload: Vec<u8>,
}

impl fmt::Debug for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packet")
            .field("command", &self.command)
            .field("session", &self.session)
            .field("reply", &self.reply)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl Packet {
    pub fn new(command: u16, session: u16, reply: u16, payload: Vec<u8>) -> Packet {
        Packet {
            command,
            session,
            reply,
            payload,
        }
    }

    /// The bare packet (a UDP datagram), checksum filled in.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(HEADER_LEN + self.payload.len());
        self.write_into(&mut bytes);
        bytes
    }

    /// The packet behind its TCP wrapper.
    pub fn encode_tcp(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(TCP_WRAPPER_LEN + HEADER_LEN + self.payload.len());
        bytes.extend_from_slice(&TCP_MAGIC);
        bytes.extend_from_slice(&((HEADER_LEN + self.payload.len()) as u32).to_le_bytes());
        self.write_into(&mut bytes);
        bytes
    }

    fn write_into(&self, bytes: &mut Vec<u8>) {
        let start = bytes.len();
        bytes.extend_from_slice(&self.command.to_le_bytes());
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&self.session.to_le_bytes());
        bytes.extend_from_slice(&self.reply.to_le_bytes());
        bytes.extend_from_slice(&self.payload);
        let sum = checksum(&bytes[start..]);
        bytes[start + 2..start + 4].copy_from_slice(&sum.to_le_bytes());
    }

    /// Reads a bare packet. The checksum is reported, not enforced (see
    /// [`Packet::checksum_ok`]): real firmware is the judge of what it sends.
    pub fn decode(bytes: &[u8]) -> Result<Packet, PacketError> {
        let (header, payload) = bytes
            .split_first_chunk::<HEADER_LEN>()
            .ok_or(PacketError::Short(bytes.len()))?;
        let word = |at: usize| Fields(header).u16(at);
        Ok(Packet {
            command: word(0),
            session: word(4),
            reply: word(6),
            payload: payload.to_vec(),
        })
    }

    /// Whether `bytes` (a bare packet) carries the checksum its content implies.
    pub fn checksum_ok(bytes: &[u8]) -> bool {
        if bytes.len() < HEADER_LEN {
            return false;
        }
        let sent = Fields(bytes).u16(2);
        let mut zeroed = bytes.to_vec();
        zeroed[2] = 0;
        zeroed[3] = 0;
        checksum(&zeroed) == sent
    }
}

/// The one's-complement checksum of `bytes` read as LE u16 words (an odd last byte is
/// the low byte of a final word).
pub fn checksum(bytes: &[u8]) -> u16 {
    // u64: no packet is long enough to overflow it (a u32 overflowed at 128 KiB).
    let mut sum: u64 = 0;
    let mut words = bytes.chunks_exact(2);
    for word in &mut words {
        sum += u64::from(u16::from_le_bytes([word[0], word[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last);
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// `50 50 82 7D`.
fn hex_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Cuts the first complete TCP frame off a receive buffer: `Ok(Some((packet, used)))`
/// when `buffer` holds one (`used` bytes, wrapper included), `Ok(None)` when more bytes
/// are needed, an error when the bytes cannot be a frame.
pub fn take_tcp_frame(buffer: &[u8]) -> Result<Option<(Packet, usize)>, PacketError> {
    let Some((wrapper, rest)) = buffer.split_first_chunk::<TCP_WRAPPER_LEN>() else {
        return Ok(None);
    };
    let magic = [wrapper[0], wrapper[1], wrapper[2], wrapper[3]];
    if magic != TCP_MAGIC {
        if buffer.starts_with(b"HTTP/") {
            let line = buffer.split(|byte| *byte == b'\r' || *byte == b'\n').next();
            let line = String::from_utf8_lossy(line.unwrap_or_default());
            return Err(PacketError::Http(line.chars().take(40).collect()));
        }
        return Err(PacketError::BadMagic(magic));
    }
    let length = Fields(wrapper).u32(4) as usize;
    if length > MAX_PACKET_LEN {
        return Err(PacketError::TooLong(length));
    }
    if length < HEADER_LEN {
        return Err(PacketError::TooShort(length));
    }
    match rest.get(..length) {
        Some(packet) => Ok(Some((Packet::decode(packet)?, TCP_WRAPPER_LEN + length))),
        None => Ok(None),
    }
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

    /// Spec C.2 test vectors: each packet as transmitted, and its checksum.
    #[test]
    fn the_checksum_of_the_largest_packet_does_not_overflow() {
        let packet = Packet::new(code::DATA, 1, 2, vec![0xFF; MAX_PACKET_LEN]);
        assert!(Packet::checksum_ok(&packet.encode()));
    }

    #[test]
    fn checksums_match_the_spec_vectors() {
        let vectors = [
            ("0b00 5a17 f38d 0300 5a4b4661636556657273696f6e00", 0x175a),
            ("d007 296a f38d 0a00 09", 0x6a29),
            ("0b00 b9e6 f38d 0c00 7e506c6174666f726d00", 0xe6b9),
            ("e803 17fc 0000 0000", 0xfc17),
            ("0b00 b7a4 3412 0600 7e53657269616c4e756d62657200", 0xa4b7),
        ];
        for (text, expected) in vectors {
            let bytes = hex(text);
            assert!(Packet::checksum_ok(&bytes), "{text}");
            let packet = Packet::decode(&bytes).unwrap();
            assert_eq!(packet.encode(), bytes, "{text}");
            assert_eq!(u16::from_le_bytes([bytes[2], bytes[3]]), expected);
        }
    }

    #[test]
    fn connect_over_tcp_matches_the_spec_bytes() {
        let connect = Packet::new(code::CONNECT, 0, 0, Vec::new());
        assert_eq!(
            connect.encode_tcp(),
            hex("5050827d08000000e80317fc00000000")
        );
    }

    #[test]
    fn tcp_frames_are_cut_from_a_stream_that_arrives_in_pieces() {
        let first = Packet::new(code::ACK_OK, 7, 1, vec![1, 2, 3]).encode_tcp();
        let second = Packet::new(code::DATA, 7, 1, vec![9; 100]).encode_tcp();
        let stream = [first.clone(), second.clone()].concat();
        for cut in 0..first.len() {
            assert_eq!(take_tcp_frame(&stream[..cut]).unwrap(), None);
        }
        let (packet, used) = take_tcp_frame(&stream).unwrap().unwrap();
        assert_eq!(
            (packet.command, packet.payload, used),
            (code::ACK_OK, vec![1, 2, 3], first.len())
        );
        let (packet, used) = take_tcp_frame(&stream[used..]).unwrap().unwrap();
        assert_eq!((packet.command, used), (code::DATA, second.len()));
    }

    #[test]
    fn hostile_wrappers_are_refused_without_allocating() {
        let mut huge = TCP_MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            take_tcp_frame(&huge),
            Err(PacketError::TooLong(u32::MAX as usize))
        );
        let mut tiny = TCP_MAGIC.to_vec();
        tiny.extend_from_slice(&3u32.to_le_bytes());
        assert_eq!(take_tcp_frame(&tiny), Err(PacketError::TooShort(3)));
        assert!(matches!(
            take_tcp_frame(b"GET / HTTP/1.1\r\n"),
            Err(PacketError::BadMagic(_))
        ));
        assert_eq!(Packet::decode(&[1, 2, 3]), Err(PacketError::Short(3)));
    }

    proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Packet::decode(&bytes);
            let _ = Packet::checksum_ok(&bytes);
            let _ = take_tcp_frame(&bytes);
        }

        #[test]
        fn packets_survive_a_round_trip(
            command in any::<u16>(), session in any::<u16>(), reply in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let packet = Packet::new(command, session, reply, payload);
            let bare = packet.encode();
            prop_assert!(Packet::checksum_ok(&bare));
            prop_assert_eq!(Packet::decode(&bare).unwrap(), packet.clone());
            let framed = packet.encode_tcp();
            let (decoded, used) = take_tcp_frame(&framed).unwrap().unwrap();
            prop_assert_eq!(decoded, packet);
            prop_assert_eq!(used, framed.len());
        }
    }
}
