//! The simulated terminal on the network: a TCP listener (one session per connection)
//! or a UDP socket (one session per peer address), both feeding [`Terminal::handle`]
//! and pushing live events to subscribed sessions.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::broadcast;

use super::terminal::{ChunkFault, Session, Terminal, Then};
use crate::source::zk::TransportKind;
use crate::source::zk::codec::event::AttendanceEvent;
use crate::source::zk::codec::packet::{Packet, take_tcp_frame};

pub(super) struct Shared {
    pub terminal: Mutex<Terminal>,
    pub events: broadcast::Sender<AttendanceEvent>,
}

impl Shared {
    pub fn terminal(&self) -> std::sync::MutexGuard<'_, Terminal> {
        self.terminal.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(super) async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            if let Err(error) = tcp_session(stream, &shared).await {
                tracing::debug!("simulated terminal: connection ended: {error}");
            }
        });
    }
}

async fn tcp_session(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut events = shared.events.subscribe();
    let mut session = Session::default();
    let mut buffer = Vec::with_capacity(4096);
    loop {
        while let Some((request, used)) = take_tcp_frame(&buffer).map_err(std::io::Error::other)? {
            let bytes = buffer[8..used].to_vec();
            buffer.drain(..used);
            let (replies, then) =
                shared
                    .terminal()
                    .handle(&mut session, &bytes, &request, TransportKind::Tcp);
            // All replies in one write, as a terminal's network stack sends them.
            let out: Vec<u8> = replies.iter().flat_map(Packet::encode_tcp).collect();
            match then {
                Then::Reset => {
                    stream.set_zero_linger()?;
                    return Ok(());
                }
                Then::Close => {
                    stream.write_all(&out).await?;
                    return Ok(());
                }
                Then::Continue => stream.write_all(&out).await?,
                Then::Misbehave(fault, data) => {
                    stream.write_all(&out).await?;
                    // Until the client gives up and the writes fail.
                    let data = data.encode_tcp();
                    loop {
                        if let ChunkFault::Drip(every) = fault {
                            tokio::time::sleep(every).await;
                        }
                        stream.write_all(&data).await?;
                    }
                }
            }
        }
        tokio::select! {
            read = stream.read_buf(&mut buffer) => {
                if read? == 0 {
                    return Ok(());
                }
            }
            event = events.recv() => {
                if let Ok(event) = event
                    && session.events & 1 != 0
                {
                    let packet = shared.terminal().event_packet(&event);
                    stream.write_all(&packet.encode_tcp()).await?;
                }
            }
        }
    }
}

pub(super) async fn serve_udp(socket: UdpSocket, shared: Arc<Shared>) {
    let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
    let mut events = shared.events.subscribe();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buffer) => {
                let Ok((length, peer)) = received else { continue };
                let bytes = &buffer[..length];
                let Ok(request) = Packet::decode(bytes) else { continue };
                let session = sessions.entry(peer).or_default();
                if session.silenced {
                    continue;
                }
                let (replies, then) = shared.terminal().handle(session, bytes, &request, TransportKind::Udp);
                match then {
                    Then::Reset => session.silenced = true,
                    Then::Close => {
                        sessions.remove(&peer);
                    }
                    Then::Continue | Then::Misbehave(..) => {}
                }
                for reply in replies {
                    let _ = socket.send_to(&reply.encode(), peer).await;
                }
            }
            event = events.recv() => {
                let Ok(event) = event else { continue };
                let packet = shared.terminal().event_packet(&event).encode();
                for (peer, session) in &sessions {
                    if session.events & 1 != 0 {
                        let _ = socket.send_to(&packet, *peer).await;
                    }
                }
            }
        }
    }
}
