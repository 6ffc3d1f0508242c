use crate::model::{AggregateResult, AggregateRow, Series, SeriesResult};

/// Orders rows by their group values (a missing value sorts before any
/// present one) and keeps the first `limit`.
pub fn finish_rows(mut rows: Vec<AggregateRow>, limit: Option<usize>) -> AggregateResult {
    rows.sort_by(|a, b| a.group.cmp(&b.group));
    let truncated = limit.is_some_and(|l| rows.len() > l);
    if let Some(l) = limit {
        rows.truncate(l);
    }
    AggregateResult { rows, truncated }
}

/// Orders series by their dimensions (when `sorted`) and keeps the first
/// `limit`.
pub fn finish_series(mut series: Vec<Series>, limit: Option<usize>, sorted: bool) -> SeriesResult {
    if sorted {
        // Unstable: no two series share their dimensions, and it is the faster.
        series.sort_unstable_by(|a, b| a.dimensions.cmp(&b.dimensions));
    }
    let truncated = limit.is_some_and(|l| series.len() > l);
    if let Some(l) = limit {
        series.truncate(l);
    }
    SeriesResult { series, truncated }
}

/// The one point order: by time, then by value, so points sharing a
/// timestamp come back the same way from every backend.
pub fn sort_points(points: &mut [(i64, f64)]) {
    points.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(g: &[Option<&str>], value: f64) -> AggregateRow {
        AggregateRow {
            group: g.iter().map(|v| v.map(str::to_owned)).collect(),
            value,
        }
    }

    #[test]
    fn missing_group_values_sort_first_and_limit_truncates() {
        let rows = vec![
            row(&[Some("b")], 1.0),
            row(&[None], 2.0),
            row(&[Some("a")], 3.0),
        ];
        let r = finish_rows(rows.clone(), Some(2));
        assert_eq!(r.rows, vec![row(&[None], 2.0), row(&[Some("a")], 3.0)]);
        assert!(r.truncated);
        let r = finish_rows(rows.clone(), Some(3));
        assert!(!r.truncated);
        assert_eq!(finish_rows(rows, None).rows.len(), 3);
        assert!(!finish_rows(vec![], Some(0)).truncated);
    }

    #[test]
    fn equal_timestamps_order_by_value() {
        let mut pts = vec![(2, 1.0), (1, 5.0), (1, -5.0)];
        sort_points(&mut pts);
        assert_eq!(pts, vec![(1, -5.0), (1, 5.0), (2, 1.0)]);
    }
}
