//! SQL text built from trusted fragments and escaped values.
//!
//! Every value that comes from a client (tenant, metric name, dimension keys
//! and values, regex patterns) enters SQL only through [`Sql::string`], which
//! writes a quoted literal with every byte that could end it, or confuse a
//! reader of logs, escaped. Numbers enter through the typed `int`/`float`
//! methods. Identifiers (database and table names) come from configuration
//! and go through [`Sql::ident`]. Statements are sent with `query_raw`, so
//! the client never reinterprets a `?` inside a literal.

use std::fmt::Write;

use crate::model::{Aggregation, AnchoredRegex, Filter, FilterOp, Selector, TenantId};
use crate::storage::StorageError;

/// A statement under construction.
#[derive(Debug, Default)]
pub struct Sql(String);

impl Sql {
    pub fn new(trusted: &str) -> Self {
        Self(trusted.to_owned())
    }

    /// Appends SQL written by this module's callers, never client data.
    pub fn push(&mut self, trusted: &str) -> &mut Self {
        self.0.push_str(trusted);
        self
    }

    pub fn string(&mut self, value: &str) -> &mut Self {
        push_string_literal(&mut self.0, value);
        self
    }

    pub fn ident(&mut self, name: &str) -> &mut Self {
        push_identifier(&mut self.0, name);
        self
    }

    pub fn int(&mut self, value: i64) -> &mut Self {
        let _ = write!(self.0, "{value}");
        self
    }

    /// A finite float, written so ClickHouse parses it back exactly.
    pub fn float(&mut self, value: f64) -> &mut Self {
        let _ = write!(self.0, "{value:?}");
        self
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// `'value'` with `\`, `'` and every control byte escaped. ClickHouse reads
/// `\xHH` inside string literals, so NUL and newlines survive exactly.
pub fn push_string_literal(out: &mut String, value: &str) {
    out.reserve(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// `` `name` `` with backquotes and backslashes escaped.
pub fn push_identifier(out: &mut String, name: &str) {
    out.push('`');
    for c in name.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '`' => out.push_str("\\`"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('`');
}

/// `` `database`.`table` ``.
pub fn qualified(database: &str, table: &str) -> String {
    let mut out = String::new();
    push_identifier(&mut out, database);
    out.push('.');
    push_identifier(&mut out, table);
    out
}

/// The value of dimension `key` on a row: `''` when the row lacks the key,
/// because `indexOf` answers 0 and an array read at 0 gives the default. This
/// is the model's "missing dimension = empty string".
pub fn push_dimension_value(sql: &mut Sql, key: &str) {
    sql.push("dim_values[indexOf(dim_keys, ")
        .string(key)
        .push(")]");
}

pub fn push_has_dimension(sql: &mut Sql, key: &str) {
    sql.push("has(dim_keys, ").string(key).push(")");
}

/// `tenant = '…' AND metric = '…' AND time >= … AND time < … [AND filters]`.
/// Every read goes through here, so every read is scoped to one tenant.
pub fn push_selector_condition(sql: &mut Sql, tenant: &TenantId, selector: &Selector) {
    sql.push("tenant = ")
        .string(tenant.as_str())
        .push(" AND metric = ")
        .string(&selector.metric)
        .push(" AND time >= ")
        .int(selector.range.start_ms)
        .push(" AND time < ")
        .int(selector.range.end_ms);
    for filter in &selector.filters {
        sql.push(" AND ");
        push_filter(sql, filter);
    }
}

fn push_filter(sql: &mut Sql, filter: &Filter) {
    match &filter.op {
        FilterOp::Eq(want) => {
            // `has` is redundant for a non-empty value but lets a bloom-filter
            // index on dim_values (ClickHouse >= 21) skip whole granules.
            if !want.is_empty() {
                sql.push("has(dim_values, ").string(want).push(") AND ");
            }
            push_dimension_value(sql, &filter.key);
            sql.push(" = ").string(want);
        }
        FilterOp::NotEq(want) => {
            push_dimension_value(sql, &filter.key);
            sql.push(" != ").string(want);
        }
        FilterOp::Regex(regex) => push_match(sql, &filter.key, regex, false),
        FilterOp::NotRegex(regex) => push_match(sql, &filter.key, regex, true),
        FilterOp::In(set) if set.is_empty() => {
            sql.push("0");
        }
        FilterOp::In(set) => {
            push_dimension_value(sql, &filter.key);
            sql.push(" IN (");
            for (i, value) in set.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.string(value);
            }
            sql.push(")");
        }
    }
}

/// `match()` is RE2, unanchored; the model's regexes are anchored, so RE2
/// gets the same anchored text Rust's regex runs. `AnchoredRegex` only holds
/// patterns that parse as one expression and whose structure RE2 reads as
/// Rust does, so the pattern cannot close the anchoring group.
fn push_match(sql: &mut Sql, key: &str, regex: &AnchoredRegex, negate: bool) {
    if negate {
        sql.push("NOT ");
    }
    sql.push("match(");
    push_dimension_value(sql, key);
    sql.push(", ").string(&regex.anchored()).push(")");
}

/// The SQL aggregate over column `value`, always as Float64.
pub fn aggregate_expr(aggregation: Aggregation, column: &str) -> Result<String, StorageError> {
    Ok(match aggregation {
        Aggregation::Count => "toFloat64(count())".to_owned(),
        Aggregation::Sum => format!("toFloat64(sum({column}))"),
        Aggregation::Avg => format!("toFloat64(avg({column}))"),
        Aggregation::Min => format!("toFloat64(min({column}))"),
        Aggregation::Max => format!("toFloat64(max({column}))"),
        Aggregation::Percentile(q) => {
            if !(q.is_finite() && (0.0..=1.0).contains(&q)) {
                return Err(StorageError::InvalidQuery(format!(
                    "percentile must be between 0 and 1, got {q}"
                )));
            }
            let mut sql = Sql::new("toFloat64(quantileExact(");
            sql.float(q).push(")(").push(column).push("))");
            sql.into_string()
        }
    })
}

/// Start of the epoch-aligned bucket of `column`: `ts - ts.rem_euclid(step)`.
/// The step is typed Int64: ClickHouse gives `x % 60000` the divisor's
/// narrow type, and `+ 60000` would then wrap at 16 bits.
pub fn bucket_expr(column: &str, step_ms: i64) -> String {
    let step = format!("toInt64({step_ms})");
    format!("({column} - ((({column} % {step}) + {step}) % {step}))")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_literals_escape_quotes_backslashes_and_control_bytes() {
        let mut out = String::new();
        push_string_literal(&mut out, "a'b\\c\0d\ne\u{7f}é");
        assert_eq!(out, "'a\\'b\\\\c\\x00d\\x0Ae\\x7Fé'");
    }

    #[test]
    fn identifiers_escape_backquotes() {
        assert_eq!(qualified("my`db", "t"), "`my\\`db`.`t`");
    }

    #[test]
    fn percentile_outside_unit_interval_is_invalid() {
        assert!(aggregate_expr(Aggregation::Percentile(1.5), "value").is_err());
        assert!(aggregate_expr(Aggregation::Percentile(f64::NAN), "value").is_err());
        assert_eq!(
            aggregate_expr(Aggregation::Percentile(0.95), "value").unwrap(),
            "toFloat64(quantileExact(0.95)(value))"
        );
    }
}
