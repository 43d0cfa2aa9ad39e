//! Per-node counters and the process-wide `metrics` facade.
//!
//! Every event is counted twice: once in the node's own atomics, which tests and `/state` read
//! through [`crate::Node::stats`], and once through the `metrics` facade, which a Prometheus
//! exporter reads. The atomics exist because one test process often runs several nodes and must
//! assert what happened to each; the facade has one global recorder and cannot tell them apart.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use strata_protocol::FrameError;

/// Counter of envelopes dropped, labelled by reason.
pub const DROPPED_MESSAGES_TOTAL: &str = "strata_transport_dropped_messages_total";
/// Counter of connections closed, labelled by reason.
pub const CONNECTIONS_CLOSED_TOTAL: &str = "strata_transport_connections_closed_total";
/// Counter of connections established, labelled by direction (`inbound` or `outbound`).
pub const CONNECTIONS_OPENED_TOTAL: &str = "strata_transport_connections_opened_total";
/// Counter of failed outbound connection attempts (refused, timed out, bad handshake).
pub const CONNECT_FAILURES_TOTAL: &str = "strata_transport_connect_failures_total";
/// Counter of envelopes written to sockets.
pub const MESSAGES_SENT_TOTAL: &str = "strata_transport_messages_sent_total";
/// Counter of envelopes decoded from sockets.
pub const MESSAGES_RECEIVED_TOTAL: &str = "strata_transport_messages_received_total";
/// Gauge of links that currently have a connection.
pub const LINKS: &str = "strata_transport_links";

/// Why an envelope was dropped instead of delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The outbound queue of the link was at its bound.
    QueueFull,
    /// No local actor is registered under the envelope's `to` name.
    NoSuchActor,
    /// The envelope could not be encoded (for example it exceeds the frame limit).
    EncodeFailed,
    /// The envelope was in a batch whose write failed when the connection broke.
    ConnectionLost,
    /// The node was shut down with the envelope still queued.
    Shutdown,
}

impl DropReason {
    /// Every reason, in the order of the per-node counters.
    pub const ALL: [DropReason; 5] = [
        DropReason::QueueFull,
        DropReason::NoSuchActor,
        DropReason::EncodeFailed,
        DropReason::ConnectionLost,
        DropReason::Shutdown,
    ];

    /// Returns the `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::NoSuchActor => "no_such_actor",
            DropReason::EncodeFailed => "encode_failed",
            DropReason::ConnectionLost => "connection_lost",
            DropReason::Shutdown => "shutdown",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The peer closed it.
    Eof,
    /// A read or write failed (reset, broken pipe...).
    Io,
    /// This node is shutting down.
    Shutdown,
    /// No valid `Hello` arrived within the handshake timeout.
    HandshakeTimeout,
    /// The peer speaks another protocol version.
    HandshakeVersion,
    /// The first frame was not a valid `Hello`.
    HandshakeInvalid,
    /// A frame header announced a body over the limit.
    FrameTooLarge,
    /// A frame header announced an empty body.
    FrameEmpty,
    /// A frame nested deeper than the limit.
    FrameTooDeep,
    /// A frame body was not well-formed MessagePack.
    FrameMalformed,
    /// A frame body held bytes after its message.
    FrameTrailingBytes,
    /// A frame body was MessagePack but not an envelope (unknown body type, missing field...).
    FrameUndecodable,
}

impl CloseReason {
    /// Every reason, in the order of the per-node counters.
    pub const ALL: [CloseReason; 12] = [
        CloseReason::Eof,
        CloseReason::Io,
        CloseReason::Shutdown,
        CloseReason::HandshakeTimeout,
        CloseReason::HandshakeVersion,
        CloseReason::HandshakeInvalid,
        CloseReason::FrameTooLarge,
        CloseReason::FrameEmpty,
        CloseReason::FrameTooDeep,
        CloseReason::FrameMalformed,
        CloseReason::FrameTrailingBytes,
        CloseReason::FrameUndecodable,
    ];

    /// Returns the `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Eof => "eof",
            CloseReason::Io => "io_error",
            CloseReason::Shutdown => "shutdown",
            CloseReason::HandshakeTimeout => "handshake_timeout",
            CloseReason::HandshakeVersion => "handshake_version",
            CloseReason::HandshakeInvalid => "handshake_invalid",
            CloseReason::FrameTooLarge => "frame_too_large",
            CloseReason::FrameEmpty => "frame_empty",
            CloseReason::FrameTooDeep => "frame_too_deep",
            CloseReason::FrameMalformed => "frame_malformed",
            CloseReason::FrameTrailingBytes => "frame_trailing_bytes",
            CloseReason::FrameUndecodable => "frame_undecodable",
        }
    }

    /// Tells whether the peer sent something invalid, as opposed to an ordinary disconnect.
    pub fn is_bad_input(self) -> bool {
        !matches!(
            self,
            CloseReason::Eof | CloseReason::Io | CloseReason::Shutdown
        )
    }

    /// Maps a decoding error to the reason the connection is closed. `Incomplete` is not a
    /// reason to close and maps to `None`.
    pub fn from_frame_error(err: &FrameError) -> Option<CloseReason> {
        Some(match err {
            FrameError::Incomplete { .. } => return None,
            FrameError::TooLarge { .. } => CloseReason::FrameTooLarge,
            FrameError::Empty => CloseReason::FrameEmpty,
            FrameError::TooDeep { .. } => CloseReason::FrameTooDeep,
            FrameError::Malformed { .. } => CloseReason::FrameMalformed,
            FrameError::TrailingBytes { .. } => CloseReason::FrameTrailingBytes,
            FrameError::Decode(_) => CloseReason::FrameUndecodable,
        })
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Direction of a connection, relative to this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The peer connected to this node's listener.
    Inbound,
    /// This node connected to the peer.
    Outbound,
}

impl Direction {
    /// Returns the `direction` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// A snapshot of one node's counters, from [`crate::Node::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Envelopes written to sockets.
    pub messages_sent: u64,
    /// Envelopes decoded from sockets (whether or not a local actor took them).
    pub messages_received: u64,
    /// Envelopes handed to a local actor without touching TCP.
    pub messages_delivered_local: u64,
    /// Connections accepted by the listener that completed the handshake.
    pub connections_inbound: u64,
    /// Connections this node opened that completed the handshake.
    pub connections_outbound: u64,
    /// Failed outbound connection attempts.
    pub connect_failures: u64,
    /// Links that currently have a connection.
    pub links_connected: i64,
    dropped: [u64; DropReason::ALL.len()],
    closed: [u64; CloseReason::ALL.len()],
}

impl TransportStats {
    /// Returns how many envelopes were dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    /// Returns how many envelopes were dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Returns how many connections were closed for `reason`.
    pub fn closed(&self, reason: CloseReason) -> u64 {
        self.closed[reason.index()]
    }
}

/// The live counters behind [`TransportStats`].
#[derive(Debug, Default)]
pub(crate) struct Stats {
    messages_sent: AtomicU64,
    messages_received: AtomicU64,
    messages_delivered_local: AtomicU64,
    connections_inbound: AtomicU64,
    connections_outbound: AtomicU64,
    connect_failures: AtomicU64,
    links_connected: AtomicI64,
    dropped: [AtomicU64; DropReason::ALL.len()],
    closed: [AtomicU64; CloseReason::ALL.len()],
}

impl Stats {
    pub(crate) fn snapshot(&self) -> TransportStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        TransportStats {
            messages_sent: load(&self.messages_sent),
            messages_received: load(&self.messages_received),
            messages_delivered_local: load(&self.messages_delivered_local),
            connections_inbound: load(&self.connections_inbound),
            connections_outbound: load(&self.connections_outbound),
            connect_failures: load(&self.connect_failures),
            links_connected: self.links_connected.load(Ordering::Relaxed),
            dropped: std::array::from_fn(|idx| load(&self.dropped[idx])),
            closed: std::array::from_fn(|idx| load(&self.closed[idx])),
        }
    }

    pub(crate) fn sent(&self, n_messages: u64) {
        self.messages_sent.fetch_add(n_messages, Ordering::Relaxed);
        metrics::counter!(MESSAGES_SENT_TOTAL).increment(n_messages);
    }

    pub(crate) fn received(&self, n_messages: u64) {
        self.messages_received
            .fetch_add(n_messages, Ordering::Relaxed);
        metrics::counter!(MESSAGES_RECEIVED_TOTAL).increment(n_messages);
    }

    pub(crate) fn delivered_local(&self) {
        // Local deliveries never touch the network, so they only get the per-node counter.
        self.messages_delivered_local
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dropped(&self, reason: DropReason, n_messages: u64) {
        self.dropped[reason.index()].fetch_add(n_messages, Ordering::Relaxed);
        metrics::counter!(DROPPED_MESSAGES_TOTAL, "reason" => reason.as_str())
            .increment(n_messages);
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        self.closed[reason.index()].fetch_add(1, Ordering::Relaxed);
        metrics::counter!(CONNECTIONS_CLOSED_TOTAL, "reason" => reason.as_str()).increment(1);
    }

    pub(crate) fn opened(&self, direction: Direction) {
        let counter = match direction {
            Direction::Inbound => &self.connections_inbound,
            Direction::Outbound => &self.connections_outbound,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(CONNECTIONS_OPENED_TOTAL, "direction" => direction.as_str()).increment(1);
    }

    pub(crate) fn connect_failed(&self) {
        self.connect_failures.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(CONNECT_FAILURES_TOTAL).increment(1);
    }

    pub(crate) fn link_up(&self) {
        self.links_connected.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!(LINKS).increment(1.0);
    }

    pub(crate) fn link_down(&self) {
        self.links_connected.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!(LINKS).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_tables_match_their_indices() {
        for (idx, reason) in DropReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), idx);
        }
        for (idx, reason) in CloseReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), idx);
        }
    }

    #[test]
    fn frame_errors_map_to_close_reasons() {
        let incomplete = FrameError::Incomplete { have: 1, needed: 4 };
        assert_eq!(CloseReason::from_frame_error(&incomplete), None);
        let too_large = FrameError::TooLarge { len: 9, max: 8 };
        assert_eq!(
            CloseReason::from_frame_error(&too_large),
            Some(CloseReason::FrameTooLarge)
        );
        let trailing = FrameError::TrailingBytes { count: 1 };
        let reason = CloseReason::from_frame_error(&trailing).unwrap();
        assert!(reason.is_bad_input());
        assert!(!CloseReason::Eof.is_bad_input());
    }

    #[test]
    fn snapshot_reads_counters() {
        let stats = Stats::default();
        stats.dropped(DropReason::QueueFull, 3);
        stats.closed(CloseReason::FrameMalformed);
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.dropped(DropReason::QueueFull), 3);
        assert_eq!(snapshot.dropped_total(), 3);
        assert_eq!(snapshot.closed(CloseReason::FrameMalformed), 1);
    }
}
