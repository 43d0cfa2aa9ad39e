//! One TCP connection: the `Hello` exchange and the read loop.
//!
//! A connection is split in two. The read half belongs to a reader task spawned here, which
//! decodes frames and routes envelopes to local actors; the write half belongs to the link of the
//! peer's node (see [`crate::link`]), which is the only writer. The reader reports its end to the
//! link, which then drops the write half, and only then is the socket fully closed.

use std::fmt;
use std::io;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use strata_protocol::{Envelope, FrameCodec, FrameError, Hello, PROTOCOL_VERSION};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::frames::{Stop, split_frames};
use crate::link::Control;
use crate::node::Shared;
use crate::stats::CloseReason;

/// Bytes the reader asks the kernel for at least, per read. Large enough that one read carries
/// hundreds of small envelopes.
const READ_CHUNK: usize = 256 * 1024;

/// Envelopes the reader hands to mailboxes before it yields to the actors that receive them.
/// Keeps mailboxes short (in memory and in cache) without a yield per envelope.
const FRAMES_PER_TURN: usize = 256;

/// The largest `Hello` frame accepted. A `Hello` is a few dozen bytes; the connection's real
/// frame limit only applies once the peer has proved it speaks the protocol.
const HELLO_LEN_MAX: usize = 4 * 1024;

/// Why a handshake failed, with the reason it is counted under.
#[derive(Debug)]
pub(crate) struct HandshakeError {
    pub reason: CloseReason,
    pub detail: String,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.detail)
    }
}

impl HandshakeError {
    fn io(err: &io::Error) -> Self {
        Self {
            reason: CloseReason::Io,
            detail: err.to_string(),
        }
    }

    fn invalid(detail: impl Into<String>) -> Self {
        Self {
            reason: CloseReason::HandshakeInvalid,
            detail: detail.into(),
        }
    }
}

/// Sets `TCP_NODELAY` (small envelopes must not wait for Nagle: the link already batches) and
/// keepalive on a new connection.
pub(crate) fn tune(keepalive: Option<std::time::Duration>, stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    if let Some(time) = keepalive {
        let interval = (time / 3).max(std::time::Duration::from_secs(1));
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(time)
            .with_interval(interval)
            .with_retries(3);
        socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive)?;
    }
    Ok(())
}

/// Checks a peer's `Hello`. Pure, so that the rules are tested without sockets.
pub(crate) fn check_hello(hello: &Hello) -> Result<(), HandshakeError> {
    if hello.protocol_version != PROTOCOL_VERSION {
        return Err(HandshakeError {
            reason: CloseReason::HandshakeVersion,
            detail: format!(
                "peer speaks protocol version {}, this node speaks {PROTOCOL_VERSION}",
                hello.protocol_version
            ),
        });
    }
    if hello.node.len() > 512 || crate::node::split_node(&hello.node).is_none() {
        return Err(HandshakeError::invalid(format!(
            "hello names no valid node: {:?}",
            hello.node
        )));
    }
    Ok(())
}

/// A connection whose handshake is done, before it is split.
pub(crate) struct Handshaken {
    pub peer: Hello,
    pub reader: OwnedReadHalf,
    pub writer: OwnedWriteHalf,
    /// Bytes read past the peer's `Hello`: the start of its first envelopes.
    pub leftover: BytesMut,
}

fn our_hello(shared: &Shared) -> Hello {
    Hello {
        protocol_version: PROTOCOL_VERSION,
        role: shared.config.role,
        node: shared.local_node.clone(),
    }
}

async fn write_hello(shared: &Shared, stream: &mut TcpStream) -> Result<(), HandshakeError> {
    let frame = shared
        .config
        .codec
        .encode_to_vec(&our_hello(shared))
        .map_err(|err| HandshakeError::invalid(err.to_string()))?;
    stream
        .write_all(&frame)
        .await
        .map_err(|err| HandshakeError::io(&err))
}

async fn read_hello(stream: &mut TcpStream, buf: &mut BytesMut) -> Result<Hello, HandshakeError> {
    let codec = FrameCodec::new().with_frame_len_max(HELLO_LEN_MAX);
    loop {
        match codec.decode::<Hello>(buf) {
            Ok((hello, used)) => {
                buf.advance(used);
                check_hello(&hello)?;
                return Ok(hello);
            }
            Err(FrameError::Incomplete { .. }) => {}
            Err(err) => return Err(HandshakeError::invalid(format!("invalid hello: {err}"))),
        }
        buf.reserve(HELLO_LEN_MAX);
        match stream.read_buf(buf).await {
            Ok(0) => return Err(HandshakeError::invalid("connection closed before hello")),
            Ok(_) => {}
            Err(err) => return Err(HandshakeError::io(&err)),
        }
    }
}

/// Runs the acceptor's side: waits for the peer's `Hello`, checks it, answers with ours.
/// The caller bounds it with the handshake timeout.
pub(crate) async fn accept(
    shared: &Shared,
    mut stream: TcpStream,
) -> Result<Handshaken, HandshakeError> {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let peer = read_hello(&mut stream, &mut buf).await?;
    write_hello(shared, &mut stream).await?;
    let (reader, writer) = stream.into_split();
    Ok(Handshaken {
        peer,
        reader,
        writer,
        leftover: buf,
    })
}

/// Runs the connector's side: connects to `node` (`host:port`), sends our `Hello` and waits
/// for the acceptor's, each step under its own timeout.
pub(crate) async fn connect(shared: &Shared, node: &str) -> Result<Handshaken, HandshakeError> {
    let config = &shared.config;
    let mut stream =
        match tokio::time::timeout(config.connect_timeout, TcpStream::connect(node)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => return Err(HandshakeError::io(&err)),
            Err(_) => {
                let err = io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
                return Err(HandshakeError::io(&err));
            }
        };
    tune(config.keepalive, &stream).map_err(|err| HandshakeError::io(&err))?;
    let exchange = async {
        write_hello(shared, &mut stream).await?;
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let peer = read_hello(&mut stream, &mut buf).await?;
        Ok::<_, HandshakeError>((peer, buf))
    };
    let (peer, leftover) = match tokio::time::timeout(config.handshake_timeout, exchange).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(HandshakeError {
                reason: CloseReason::HandshakeTimeout,
                detail: "no hello from the acceptor in time".to_owned(),
            });
        }
    };
    if peer.node != node {
        // Replies to its pids will go to a second link named after what it advertises.
        debug!(peer = %node, advertised = %peer.node, "peer advertises another node name");
    }
    let (reader, writer) = stream.into_split();
    Ok(Handshaken {
        peer,
        reader,
        writer,
        leftover,
    })
}

/// Reads frames until the peer closes, the input turns invalid or the node shuts down, routing
/// every envelope to the local actor it names; then tells the link the connection is over.
pub(crate) async fn read_loop(
    shared: Arc<Shared>,
    mut reader: OwnedReadHalf,
    mut buf: BytesMut,
    peer: String,
    conn_id: u64,
    control: mpsc::UnboundedSender<Control>,
) {
    let codec = shared.config.codec;
    let reason = loop {
        let split = split_frames::<Envelope>(&codec, &buf, FRAMES_PER_TURN, |envelope| {
            // Unknown names are counted and logged inside.
            let _ = shared.deliver_local(envelope);
        });
        if split.n_frames > 0 {
            shared.stats.received(split.n_frames as u64);
        }
        buf.advance(split.consumed);
        match split.stop {
            Stop::NeedMore { needed } => {
                buf.reserve(needed.saturating_sub(buf.len()).max(READ_CHUNK));
            }
            Stop::Limit => {
                // Let the actors drain their mailboxes before decoding more of this read.
                tokio::task::yield_now().await;
                continue;
            }
            Stop::Invalid(err) => {
                let reason = CloseReason::from_frame_error(&err).unwrap_or(CloseReason::Io);
                warn!(
                    local = %shared.local_node,
                    %peer,
                    conn_id,
                    reason = reason.as_str(),
                    error = %err,
                    "closing connection after invalid frame"
                );
                break reason;
            }
        }
        let read = tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => break CloseReason::Shutdown,
            read = reader.read_buf(&mut buf) => read,
        };
        match read {
            Ok(0) => {
                debug!(local = %shared.local_node, %peer, conn_id, "peer closed connection");
                break CloseReason::Eof;
            }
            Ok(_) => {}
            Err(err) => {
                debug!(local = %shared.local_node, %peer, conn_id, error = %err, "read failed");
                break CloseReason::Io;
            }
        }
    };
    shared.stats.closed(reason);
    // The link may already be gone if the node shut down; nothing is left to tell then.
    let _ = control.send(Control::Closed { conn_id });
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_protocol::PeerRole;

    fn hello(version: u32, node: &str) -> Hello {
        Hello {
            protocol_version: version,
            role: PeerRole::Agent,
            node: node.to_owned(),
        }
    }

    #[tokio::test]
    async fn tune_sets_nodelay_and_keepalive() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        tune(Some(std::time::Duration::from_secs(30)), &stream).unwrap();
        assert!(stream.nodelay().unwrap());
        let socket = socket2::SockRef::from(&stream);
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap().as_secs(), 30);
        assert_eq!(socket.tcp_keepalive_interval().unwrap().as_secs(), 10);
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), 3);
    }

    #[test]
    fn hello_rules() {
        assert!(check_hello(&hello(PROTOCOL_VERSION, "10.0.0.1:5051")).is_ok());
        let err = check_hello(&hello(PROTOCOL_VERSION + 1, "10.0.0.1:5051")).unwrap_err();
        assert_eq!(err.reason, CloseReason::HandshakeVersion);
        let err = check_hello(&hello(PROTOCOL_VERSION, "")).unwrap_err();
        assert_eq!(err.reason, CloseReason::HandshakeInvalid);
        for bad in ["no-port", "host:", ":5050", "host:99999", "host:port"] {
            let err = check_hello(&hello(PROTOCOL_VERSION, bad)).unwrap_err();
            assert_eq!(err.reason, CloseReason::HandshakeInvalid, "{bad}");
        }
        assert!(check_hello(&hello(PROTOCOL_VERSION, "[::1]:5050")).is_ok());
    }
}
