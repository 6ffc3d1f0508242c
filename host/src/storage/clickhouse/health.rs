//! Readiness: ClickHouse answers a trivial query within a short bound. No
//! state is kept, so readiness turns true again as soon as it answers.

use std::time::Duration;

use super::ClickHouseStore;
use super::error::{map_error, timed_out};
use crate::storage::StorageError;

/// A probe should answer fast; a server slower than this is not ready.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn check(store: &ClickHouseStore) -> Result<(), StorageError> {
    let probe = store.client.query_raw("SELECT 1").fetch_one::<u8>();
    match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(map_error(e, "health check")),
        Err(_) => Err(timed_out("health check")),
    }
}
