/// What can go wrong below the storage trait. None of these is the client's
/// fault except `InvalidQuery` and `TooLarge`; the HTTP layer maps them in one place.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The backend cannot take the request now (down, overloaded, closed);
    /// the client should retry after `retry_after_secs`.
    #[error("storage unavailable: {message}")]
    Unavailable {
        message: String,
        retry_after_secs: u64,
    },
    /// The query is well-formed but the backend cannot run it as asked.
    #[error("{0}")]
    InvalidQuery(String),
    /// The query would cost more than its `QueryBudget`; stopped early.
    #[error(transparent)]
    TooLarge(#[from] crate::model::BudgetExceeded),
    /// A backend fault; the message is logged, never shown to clients.
    #[error("storage failure: {0}")]
    Internal(String),
}

impl From<rocksdb::Error> for StorageError {
    fn from(e: rocksdb::Error) -> Self {
        Self::Internal(format!("rocksdb: {e}"))
    }
}
