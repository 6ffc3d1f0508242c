//! The accept loop every listener runs (the API, plain or TLS, and the
//! metrics listener): hyper's HTTP/1 connection builder with the bounds of
//! `[server]`, so a client that opens sockets and sends nothing, half a
//! head, half a body, or never reads its answer cannot keep them:
//!
//! - at most `max_connections` are open at once; at the cap the loop stops
//!   accepting (new clients wait in the kernel's backlog rather than cost a
//!   file descriptor each), and resumes as soon as one closes;
//! - a TLS handshake, and then each request head, must complete within
//!   `header_read_timeout` (hyper's timer; it also closes idle keep-alive
//!   connections);
//! - a request body must complete within `body_read_timeout` of its head
//!   ([`super::body_deadline`]);
//! - a write that makes no progress for `write_timeout` closes the connection.
//!
//! Shutdown stops accepting at once and lets every connection finish the
//! request it is serving (hyper's graceful shutdown).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_io_timeout::TimeoutStream;
use tokio_rustls::TlsAcceptor;

use super::body_deadline::limit_body_time;
use crate::config::ServerConfig;
use crate::telemetry::metrics;

/// How often, at most, "connection cap reached" is logged.
const CAP_WARNING_INTERVAL: Duration = Duration::from_secs(10);
/// A pause after a failed `accept` (EMFILE and friends), instead of spinning.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// A TCP stream whose stalled writes fail after the write timeout.
type TimedStream = Pin<Box<TimeoutStream<TcpStream>>>;

/// Serves `app` on `listener` (over TLS when `tls` is set) until `shutdown`
/// resolves, then waits for open connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: &ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let app = app.layer(middleware::from_fn_with_state(
        limits.body_read_timeout.get(),
        limit_body_time,
    ));
    let connection = Arc::new(ConnectionSettings {
        service: TowerToHyperService::new(app),
        http: http1_builder(limits.header_read_timeout.get()),
        tls,
        handshake_timeout: limits.header_read_timeout.get(),
        write_timeout: limits.write_timeout.get(),
    });
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    let mut last_cap_warning: Option<Instant> = None;
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if last_cap_warning.is_none_or(|at| at.elapsed() >= CAP_WARNING_INTERVAL) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection cap reached (server.max_connections): new connections wait until one closes"
                    );
                    last_cap_warning = Some(Instant::now());
                }
                tokio::select! {
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        tokio::spawn(
            connection
                .clone()
                .serve(tcp, peer, permit, graceful.watcher()),
        );
    }
    // Closing the socket now refuses new connections while the open ones finish.
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

fn http1_builder(header_read_timeout: Duration) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder
}

/// What every connection of one listener shares.
struct ConnectionSettings {
    service: TowerToHyperService<Router>,
    http: http1::Builder,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
    write_timeout: Duration,
}

impl ConnectionSettings {
    /// Serves one connection; its permit (a slot under the cap) is released
    /// when it closes.
    async fn serve(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        permit: OwnedSemaphorePermit,
        watcher: Watcher,
    ) {
        let _open = OpenConnection::count(permit);
        // Small JSON answers must not wait for Nagle's algorithm.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let mut timed = TimeoutStream::new(tcp);
        timed.set_write_timeout(Some(self.write_timeout));
        let timed: TimedStream = Box::pin(timed);
        match &self.tls {
            None => self.serve_http(timed, peer, watcher).await,
            Some(acceptor) => {
                match tokio::time::timeout(self.handshake_timeout, acceptor.accept(timed)).await {
                    Ok(Ok(tls)) => self.serve_http(tls, peer, watcher).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }
        }
    }

    async fn serve_http<Io>(&self, io: Io, peer: SocketAddr, watcher: Watcher)
    where
        Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let connection = self
            .http
            .serve_connection(TokioIo::new(io), self.service.clone());
        if let Err(e) = watcher.watch(connection).await {
            // Timeouts, resets and malformed requests: the client's doing.
            tracing::debug!(%peer, error = %e, "connection closed with an error");
        }
    }
}

/// Counts an open connection in `luminate_http_connections_open` and holds
/// its slot under the cap.
struct OpenConnection {
    _slot: OwnedSemaphorePermit,
}

impl OpenConnection {
    fn count(slot: OwnedSemaphorePermit) -> Self {
        metrics().http.connections_open.add(1);
        Self { _slot: slot }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics().http.connections_open.sub(1);
    }
}
