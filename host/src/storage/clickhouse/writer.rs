//! The batching writer: many concurrent write requests become few large
//! inserts, because ClickHouse wants big, rare inserts (every insert makes a
//! part on disk).
//!
//! A request hands over its rows, already encoded, and waits for the result
//! of the insert that carries them; only a successful insert acknowledges it,
//! so a 200 always means "in ClickHouse". A batch is flushed when it holds
//! `flush_max_rows` rows or `flush_interval` after its first request arrived,
//! whichever comes first. At most `max_concurrent_flushes` inserts run at once;
//! behind them requests queue, and a request that cannot be queued or answered
//! within the request timeout fails as unavailable.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use super::error::{map_error, timed_out, unavailable};
use crate::storage::StorageError;

#[derive(Clone, Debug)]
pub struct WriterSettings {
    pub flush_max_rows: usize,
    pub flush_interval: Duration,
    pub max_concurrent_flushes: usize,
    pub request_timeout: Duration,
    /// `INSERT INTO … FORMAT RowBinary`, complete.
    pub insert_sql: String,
    /// Settings sent with every insert (e.g. synchronous distributed inserts).
    pub insert_settings: Vec<(String, String)>,
}

/// Encoded rows of one request and the channel its result goes back on.
struct Job {
    rows: usize,
    bytes: Vec<u8>,
    done: oneshot::Sender<Result<(), StorageError>>,
}

pub struct BatchWriter {
    /// `None` once closed; dropping the sender lets the task drain and end.
    jobs: std::sync::RwLock<Option<mpsc::Sender<Job>>>,
    task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    queued_rows: Arc<AtomicUsize>,
    request_timeout: Duration,
}

impl BatchWriter {
    pub fn start(client: clickhouse::Client, settings: WriterSettings) -> Self {
        // The channel bounds memory: past this many waiting requests, senders
        // wait (and time out into a 503) instead of piling up.
        let (jobs, receiver) = mpsc::channel(4096);
        let queued_rows = Arc::new(AtomicUsize::new(0));
        let request_timeout = settings.request_timeout;
        let task = tokio::spawn(run(client, settings, receiver, queued_rows.clone()));
        Self {
            jobs: std::sync::RwLock::new(Some(jobs)),
            task: tokio::sync::Mutex::new(Some(task)),
            queued_rows,
            request_timeout,
        }
    }

    /// Rows accepted but not yet inserted (or failed): the queue depth.
    pub fn queued_rows(&self) -> usize {
        self.queued_rows.load(Ordering::Relaxed)
    }

    /// Queues `rows` encoded rows and waits until the insert carrying them
    /// has succeeded or failed.
    /// Stops taking writes and waits until queued batches were inserted.
    pub async fn close(&self) {
        match self.jobs.write() {
            Ok(mut guard) => *guard = None,
            Err(poisoned) => *poisoned.into_inner() = None,
        }
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }

    pub async fn write(&self, rows: usize, bytes: Vec<u8>) -> Result<(), StorageError> {
        if rows == 0 {
            return Ok(());
        }
        let sender = match self.jobs.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let Some(sender) = sender else {
            return Err(unavailable("the ClickHouse writer is closed"));
        };
        let deadline = Instant::now() + self.request_timeout;
        let (done, result) = oneshot::channel();
        publish_depth(self.queued_rows.fetch_add(rows, Ordering::Relaxed) + rows);
        let job = Job { rows, bytes, done };
        match tokio::time::timeout_at(deadline, sender.send(job)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                publish_depth(self.queued_rows.fetch_sub(rows, Ordering::Relaxed) - rows);
                return Err(unavailable("the ClickHouse writer is closed"));
            }
            Err(_) => {
                publish_depth(self.queued_rows.fetch_sub(rows, Ordering::Relaxed) - rows);
                return Err(unavailable("the ClickHouse write queue is full"));
            }
        }
        // The insert itself is bounded by the request timeout, so the result
        // always comes; the writer task only drops `done` if it died.
        match result.await {
            Ok(outcome) => outcome,
            Err(_) => Err(StorageError::Internal(
                "the ClickHouse writer stopped".into(),
            )),
        }
    }
}

async fn run(
    client: clickhouse::Client,
    settings: WriterSettings,
    mut receiver: mpsc::Receiver<Job>,
    queued_rows: Arc<AtomicUsize>,
) {
    let settings = Arc::new(settings);
    let flushes = Arc::new(Semaphore::new(settings.max_concurrent_flushes.max(1)));
    while let Some(first) = receiver.recv().await {
        let deadline = Instant::now() + settings.flush_interval;
        let mut rows = first.rows;
        let mut batch = vec![first];
        while rows < settings.flush_max_rows {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(job)) => {
                    rows += job.rows;
                    batch.push(job);
                }
                // Closed: flush what we have, then the outer loop ends.
                Ok(None) | Err(_) => break,
            }
        }
        let Ok(permit) = flushes.clone().acquire_owned().await else {
            break;
        };
        let client = client.clone();
        let settings = settings.clone();
        let queued_rows = queued_rows.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let outcome = insert(&client, &settings, &batch).await;
            drop(permit);
            crate::telemetry::metrics()
                .batch_writer
                .flushed(started.elapsed(), outcome.is_ok());
            publish_depth(queued_rows.fetch_sub(rows, Ordering::Relaxed) - rows);
            if let Err(e) = &outcome {
                tracing::warn!(error = %e, rows, "ClickHouse insert failed");
            }
            for job in batch {
                let _ = job.done.send(copy_outcome(&outcome));
            }
        });
    }
    // Wait for in-flight inserts so `close` returns only after they ended.
    let _ = flushes
        .acquire_many(settings.max_concurrent_flushes.max(1) as u32)
        .await;
}

async fn insert(
    client: &clickhouse::Client,
    settings: &WriterSettings,
    batch: &[Job],
) -> Result<(), StorageError> {
    let total: usize = batch.iter().map(|job| job.bytes.len()).sum();
    let mut body = Vec::with_capacity(total);
    for job in batch {
        body.extend_from_slice(&job.bytes);
    }
    let mut insert = client
        .insert_formatted_with(settings.insert_sql.clone())
        .with_timeouts(
            Some(settings.request_timeout),
            Some(settings.request_timeout),
        );
    for (name, value) in &settings.insert_settings {
        insert = insert.with_setting(name.clone(), value.clone());
    }
    let attempt = async {
        insert.send(Bytes::from(body)).await?;
        insert.end().await
    };
    match tokio::time::timeout(settings.request_timeout, attempt).await {
        Ok(result) => result.map_err(|e| map_error(e, "insert")),
        Err(_) => Err(timed_out("insert")),
    }
}

/// The queue depth as the server's own metric
/// (`luminate_batch_writer_queue_depth`).
fn publish_depth(rows: usize) {
    crate::telemetry::metrics()
        .batch_writer
        .queue_depth
        .set(i64::try_from(rows).unwrap_or(i64::MAX));
}

/// Every request of a batch gets the batch's outcome.
fn copy_outcome(outcome: &Result<(), StorageError>) -> Result<(), StorageError> {
    match outcome {
        Ok(()) => Ok(()),
        Err(StorageError::Unavailable {
            message,
            retry_after_secs,
        }) => Err(StorageError::Unavailable {
            message: message.clone(),
            retry_after_secs: *retry_after_secs,
        }),
        Err(StorageError::InvalidQuery(m)) => Err(StorageError::InvalidQuery(m.clone())),
        Err(StorageError::TooLarge(e)) => Err(StorageError::TooLarge(*e)),
        Err(StorageError::Internal(m)) => Err(StorageError::Internal(m.clone())),
    }
}
