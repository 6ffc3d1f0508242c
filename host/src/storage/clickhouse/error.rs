//! How ClickHouse failures become [`StorageError`]s: anything that says "the
//! server is not there or not keeping up" is `Unavailable` (a 503 with
//! `Retry-After`, retried by clients); a regex RE2 cannot compile is the
//! client's `InvalidQuery`; the rest is `Internal`.

use crate::model::{BudgetExceeded, QueryBudget};
use crate::storage::StorageError;

/// Seconds a client should wait before retrying when ClickHouse is away.
pub const RETRY_AFTER_SECS: u64 = 2;

pub fn unavailable(message: impl Into<String>) -> StorageError {
    StorageError::Unavailable {
        message: message.into(),
        retry_after_secs: RETRY_AFTER_SECS,
    }
}

/// Error codes ClickHouse answers when it is overloaded or cannot reach
/// another shard: waiting helps, so they are `Unavailable`.
const TRANSIENT_CODES: &[u32] = &[
    159, // TIMEOUT_EXCEEDED
    164, // READONLY
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY
    252, // TOO_MANY_PARTS
    279, // ALL_CONNECTION_TRIES_FAILED
    319, // UNKNOWN_STATUS_OF_INSERT
    425, // SYSTEM_ERROR
];

/// `max_rows_to_read` (the query's points-scanned budget) was exceeded.
const TOO_MANY_ROWS: u32 = 158;

/// Codes for a regular expression RE2 rejects.
const BAD_REGEX_CODES: &[u32] = &[
    427, // CANNOT_COMPILE_REGEXP
];

pub fn map_error(error: clickhouse::error::Error, doing: &str) -> StorageError {
    map_query_error(error, doing, None)
}

/// As [`map_error`], for a read that ran with `budget`'s settings: running
/// out of rows to read is the client's query being too large.
pub fn map_query_error(
    error: clickhouse::error::Error,
    doing: &str,
    budget: Option<&QueryBudget>,
) -> StorageError {
    use clickhouse::error::Error as E;
    match error {
        E::Network(_) | E::TimedOut => {
            unavailable(format!("ClickHouse unreachable ({doing}): {error}"))
        }
        E::BadResponse(ref message) => match error_code(message) {
            Some(code) if TRANSIENT_CODES.contains(&code) => unavailable(format!(
                "ClickHouse busy ({doing}): {}",
                first_line(message)
            )),
            Some(TOO_MANY_ROWS) if budget.is_some() => {
                StorageError::TooLarge(BudgetExceeded::PointsScanned {
                    max: budget.map_or(0, |b| b.max_points_scanned),
                })
            }
            Some(code) if BAD_REGEX_CODES.contains(&code) => StorageError::InvalidQuery(format!(
                "invalid regular expression: {}",
                first_line(message)
            )),
            _ => StorageError::Internal(format!("clickhouse ({doing}): {message}")),
        },
        other => StorageError::Internal(format!("clickhouse ({doing}): {other}")),
    }
}

pub fn timed_out(doing: &str) -> StorageError {
    unavailable(format!("ClickHouse did not answer in time ({doing})"))
}

/// ClickHouse errors start with `Code: N.`; the number is the contract.
fn error_code(message: &str) -> Option<u32> {
    let rest = &message[message.find("Code: ")? + "Code: ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_codes_are_unavailable_and_regex_codes_are_invalid_queries() {
        let busy = map_error(
            clickhouse::error::Error::BadResponse(
                "Code: 252, e.displayText() = Too many parts".into(),
            ),
            "insert",
        );
        assert!(matches!(busy, StorageError::Unavailable { .. }), "{busy:?}");
        let regex = map_error(
            clickhouse::error::Error::BadResponse("Code: 427, e.displayText() = bad regex".into()),
            "query",
        );
        assert!(matches!(regex, StorageError::InvalidQuery(_)), "{regex:?}");
        let other = map_error(
            clickhouse::error::Error::BadResponse("Code: 60, no table".into()),
            "q",
        );
        assert!(matches!(other, StorageError::Internal(_)), "{other:?}");
    }

    #[test]
    fn running_out_of_rows_to_read_is_a_query_too_large() {
        let budget = QueryBudget {
            max_points_scanned: 10,
            max_points_returned: 5,
        };
        let error = || {
            clickhouse::error::Error::BadResponse(
                "Code: 158, e.displayText() = DB::Exception: Limit for rows exceeded".into(),
            )
        };
        assert!(matches!(
            map_query_error(error(), "range query", Some(&budget)),
            StorageError::TooLarge(BudgetExceeded::PointsScanned { max: 10 })
        ));
        assert!(matches!(
            map_error(error(), "range query"),
            StorageError::Internal(_)
        ));
    }
}
