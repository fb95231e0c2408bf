//! Moving packets to and from a terminal: over TCP (each packet behind the 8-byte
//! wrapper, possibly split across reads or several to a read) or over UDP (one packet
//! per datagram). Timeouts are the caller's business.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::codec::packet::{Packet, PacketError, take_tcp_frame};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Tcp,
    Udp,
}

impl TransportKind {
    pub fn name(self) -> &'static str {
        match self {
            TransportKind::Tcp => "TCP",
            TransportKind::Udp => "UDP",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("the terminal closed the connection")]
    Closed,
    #[error("the terminal sent bytes that are not a ZK packet ({0})")]
    Framing(#[from] PacketError),
}

pub enum Transport {
    Tcp { stream: TcpStream, buffer: Vec<u8> },
    Udp { socket: UdpSocket, buffer: Vec<u8> },
}

/// Largest datagram a terminal sends.
const DATAGRAM: usize = 64 * 1024;

impl Transport {
    pub async fn connect(
        kind: TransportKind,
        address: SocketAddr,
        timeout: Duration,
    ) -> io::Result<Transport> {
        match kind {
            TransportKind::Tcp => {
                let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
                    .await
                    .map_err(|_| {
                        io::Error::new(io::ErrorKind::TimedOut, "no answer to the TCP connect")
                    })??;
                stream.set_nodelay(true)?;
                Ok(Transport::Tcp {
                    stream,
                    buffer: Vec::with_capacity(70 * 1024),
                })
            }
            TransportKind::Udp => {
                let local: SocketAddr = if address.is_ipv4() {
                    "0.0.0.0:0".parse().map_err(io::Error::other)?
                } else {
                    "[::]:0".parse().map_err(io::Error::other)?
                };
                let socket = UdpSocket::bind(local).await?;
                socket.connect(address).await?;
                Ok(Transport::Udp {
                    socket,
                    buffer: vec![0; DATAGRAM],
                })
            }
        }
    }

    pub fn kind(&self) -> TransportKind {
        match self {
            Transport::Tcp { .. } => TransportKind::Tcp,
            Transport::Udp { .. } => TransportKind::Udp,
        }
    }

    pub async fn send(&mut self, packet: &Packet) -> Result<(), TransportError> {
        match self {
            Transport::Tcp { stream, .. } => {
                stream.write_all(&packet.encode_tcp()).await?;
            }
            Transport::Udp { socket, .. } => {
                socket.send(&packet.encode()).await?;
            }
        }
        Ok(())
    }

    /// The next packet from the terminal (waits as long as it takes).
    pub async fn receive(&mut self) -> Result<Packet, TransportError> {
        match self {
            Transport::Tcp { stream, buffer } => loop {
                if let Some((packet, used)) = take_tcp_frame(buffer)? {
                    buffer.drain(..used);
                    return Ok(packet);
                }
                buffer.reserve(64 * 1024);
                if stream.read_buf(buffer).await? == 0 {
                    return Err(TransportError::Closed);
                }
            },
            Transport::Udp { socket, buffer } => loop {
                let length = socket.recv(buffer).await?;
                // A datagram too short to be a packet is noise; wait for the next.
                if let Ok(packet) = Packet::decode(&buffer[..length]) {
                    return Ok(packet);
                }
            },
        }
    }
}
