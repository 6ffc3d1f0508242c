//! Slow clients: over a thousand sockets that send half a request head, a
//! head and half a body, a body one byte at a time, or nothing at all. The
//! server closes each within its `[server]` timeouts (small here, so the
//! test is quick) while the quiet tenant keeps writing and querying.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::support::{ATTACKER_TENANT, Hostile, token};

const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(2);
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(3);
/// Connections opened together, and the pause between such waves.
const CONNECT_WAVE: usize = 100;
const CONNECT_WAVE_PAUSE: Duration = Duration::from_millis(50);
/// Scheduling slack on a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, Debug)]
enum Slow {
    /// Connects and sends nothing.
    Silent,
    /// Half a request head, never finished.
    PartialHead,
    /// A complete, authorised head and 10 of its 1 000 body bytes.
    PartialBody,
    /// A complete head and a body sent one byte every 300 ms: each byte
    /// arrives well within any per-read timeout, the whole never does.
    Trickle,
}

/// Opens one slow connection; returns how long the server kept it open
/// (`None`: still open after `limit`).
async fn hold(
    addr: std::net::SocketAddr,
    kind: Slow,
    token: String,
    limit: Duration,
) -> Option<Duration> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let opened = Instant::now();
    let head = format!(
        "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    );
    match kind {
        Slow::Silent => {}
        Slow::PartialHead => stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .ok()?,
        Slow::PartialBody => {
            stream.write_all(head.as_bytes()).await.ok()?;
            stream.write_all(br#"{"metrics":"#).await.ok()?;
        }
        Slow::Trickle => stream.write_all(head.as_bytes()).await.ok()?,
    }
    let mut buffer = [0u8; 1024];
    let deadline = opened + limit;
    loop {
        if let Slow::Trickle = kind {
            let _ = stream.write_all(b" ").await;
        }
        let wait = match kind {
            Slow::Trickle => Duration::from_millis(300),
            _ => deadline.saturating_duration_since(Instant::now()),
        };
        match tokio::time::timeout(wait, stream.read(&mut buffer)).await {
            // EOF or a reset: the server closed it.
            Ok(Ok(0)) | Ok(Err(_)) => return Some(opened.elapsed()),
            // An answer (408): keep reading until the close.
            Ok(Ok(_)) => {}
            Err(_) if Instant::now() >= deadline => return None,
            Err(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_sockets_are_closed_within_the_timeouts_and_the_quiet_tenant_is_unharmed() {
    let mut hostile = Hostile::spawn_with(
        &[],
        &[
            ("LUMINATE_SERVER__HEADER_READ_TIMEOUT", "2s"),
            ("LUMINATE_SERVER__BODY_READ_TIMEOUT", "3s"),
        ],
    )
    .await;
    // An unlimited tier, so that rate limits do not answer the bodies early.
    let attacker = token(ATTACKER_TENANT, &["write"], Some("unlimited"));
    let quiet = hostile.start_quiet_load();
    let limit = BODY_READ_TIMEOUT + SLACK * 2;
    let mut sockets = JoinSet::new();
    let kinds = [
        (Slow::Silent, 400),
        (Slow::PartialHead, 400),
        (Slow::PartialBody, 400),
        (Slow::Trickle, 30),
    ];
    // Kinds interleaved and opened in waves: 1 230 connects at once would
    // overflow the listen backlog (1 024), and a silent client whose
    // handshake the kernel has not completed yet is not the server's to
    // time out.
    let mut opening = Vec::new();
    for (kind, count) in kinds {
        opening.extend(std::iter::repeat_n(kind, count));
    }
    let waves = opening.len().div_ceil(CONNECT_WAVE);
    for (index, kind) in opening.into_iter().enumerate() {
        let token = attacker.clone();
        let addr = hostile.addr;
        let start = CONNECT_WAVE_PAUSE * (index % waves) as u32;
        sockets.spawn(async move {
            tokio::time::sleep(start).await;
            (kind, hold(addr, kind, token, limit).await)
        });
    }
    let mut still_open = Vec::new();
    let mut longest = [Duration::ZERO; 4];
    while let Some(joined) = sockets.join_next().await {
        let (kind, held) = joined.unwrap();
        match held {
            Some(held) => {
                let slot = &mut longest[kind as usize];
                *slot = (*slot).max(held);
            }
            None => still_open.push(kind),
        }
    }
    let report = quiet.stop().await;
    assert!(
        still_open.is_empty(),
        "{} slow sockets were still open after {limit:?}: {:?}",
        still_open.len(),
        &still_open[..still_open.len().min(10)]
    );
    let header_bound = HEADER_READ_TIMEOUT + SLACK;
    let body_bound = BODY_READ_TIMEOUT + SLACK;
    assert!(
        longest[Slow::Silent as usize] <= header_bound,
        "{longest:?}"
    );
    assert!(
        longest[Slow::PartialHead as usize] <= header_bound,
        "{longest:?}"
    );
    assert!(
        longest[Slow::PartialBody as usize] <= body_bound,
        "{longest:?}"
    );
    assert!(longest[Slow::Trickle as usize] <= body_bound, "{longest:?}");
    report.assert_unharmed();
    hostile.assert_alive().await;
    hostile.assert_rss_growth_below(512 << 20);
}
