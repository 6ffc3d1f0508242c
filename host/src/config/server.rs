use serde::{Deserialize, Serialize};

use super::ConfigDuration;

/// `[server]`: what one client connection may hold, and for how long.
///
/// A client needs no token to open a connection, so each of these bounds a
/// resource an anonymous client can take: a socket (file descriptor), a
/// connection task and its buffers.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// A connection must deliver a complete request head within this long
    /// of the server starting to wait for it: from accept (after the TLS
    /// handshake, which gets the same time), and on a keep-alive connection
    /// from the end of the previous response. So it is also how long an
    /// idle keep-alive connection stays open.
    pub header_read_timeout: ConfigDuration,
    /// A request body must arrive completely within this long of its head;
    /// a body still incomplete then is answered 408 and the connection
    /// closed, however steadily it trickles.
    pub body_read_timeout: ConfigDuration,
    /// A response the client does not read for this long (its writes make
    /// no progress) closes the connection.
    pub write_timeout: ConfigDuration,
    /// Connections open at once, TLS handshakes included. At the cap the
    /// server stops accepting; new connections wait in the kernel's listen
    /// backlog until one closes. Keep it below the process's file
    /// descriptor limit (`ulimit -n`) minus what storage needs.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: ConfigDuration::from_millis(10_000),
            body_read_timeout: ConfigDuration::from_millis(60_000),
            write_timeout: ConfigDuration::from_millis(60_000),
            max_connections: 4_096,
        }
    }
}
