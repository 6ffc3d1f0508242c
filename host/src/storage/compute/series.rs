//! Whole range and rate answers from selected series: for backends that
//! collect each matching series' points (in range, filters applied) first.

use std::collections::BTreeMap;

use super::{
    IncreaseBuckets, add_increases, finish_series, group_dimensions, group_of, rate::rates,
    sort_points, step_aggregate,
};
use crate::model::{Aggregation, Dimensions, Series, SeriesResult};

/// One matching series: all its dimensions and its points in range, in any order.
pub struct SelectedSeries {
    pub dimensions: Dimensions,
    pub points: Vec<(i64, f64)>,
}

/// Group values -> the point lists of the group's member series.
type Groups = BTreeMap<Vec<Option<String>>, Vec<Vec<(i64, f64)>>>;

fn by_group(series: Vec<SelectedSeries>, group_by: &[String]) -> Groups {
    let mut groups: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for s in series {
        groups
            .entry(group_of(&s.dimensions, group_by))
            .or_default()
            .push(s.points);
    }
    groups
}

/// Raw points per series (or per group: its series' points merged), or with
/// `step` one aggregated point per bucket. Series without points are dropped.
pub fn range_over(
    series: Vec<SelectedSeries>,
    step: Option<(i64, Aggregation)>,
    group_by: Option<&[String]>,
    limit: Option<usize>,
    sorted: bool,
) -> SeriesResult {
    let shape = |mut points: Vec<(i64, f64)>| {
        sort_points(&mut points);
        match step {
            Some((step_ms, agg)) => step_aggregate(&points, step_ms, agg),
            None => points,
        }
    };
    let out: Vec<Series> = match group_by {
        None => series
            .into_iter()
            .map(|s| Series {
                dimensions: s.dimensions,
                points: shape(s.points),
            })
            .collect(),
        Some(keys) => by_group(series, keys)
            .into_iter()
            .map(|(group, members)| Series {
                dimensions: group_dimensions(keys, &group),
                points: shape(members.into_iter().flatten().collect()),
            })
            .collect(),
    };
    finish_series(
        out.into_iter().filter(|s| !s.points.is_empty()).collect(),
        limit,
        sorted,
    )
}

/// Per-second counter rates per series, or summed per group. Series or
/// groups with no increase in range (fewer than two points) are dropped.
pub fn rate_over(
    series: Vec<SelectedSeries>,
    step_ms: i64,
    group_by: Option<&[String]>,
    limit: Option<usize>,
) -> SeriesResult {
    let increases = |points: &mut Vec<(i64, f64)>, into: &mut IncreaseBuckets| {
        sort_points(points);
        add_increases(points, step_ms, into);
    };
    let out: Vec<Series> = match group_by {
        None => series
            .into_iter()
            .map(|mut s| {
                let mut buckets = IncreaseBuckets::new();
                increases(&mut s.points, &mut buckets);
                Series {
                    dimensions: s.dimensions,
                    points: rates(buckets, step_ms),
                }
            })
            .collect(),
        Some(keys) => by_group(series, keys)
            .into_iter()
            .map(|(group, members)| {
                let mut buckets = IncreaseBuckets::new();
                for mut points in members {
                    increases(&mut points, &mut buckets);
                }
                Series {
                    dimensions: group_dimensions(keys, &group),
                    points: rates(buckets, step_ms),
                }
            })
            .collect(),
    };
    finish_series(
        out.into_iter().filter(|s| !s.points.is_empty()).collect(),
        limit,
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(pairs: &[(&str, &str)]) -> Dimensions {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn grouped_rate_sums_member_series_per_bucket() {
        let series = vec![
            SelectedSeries {
                dimensions: dims(&[("h", "a"), ("r", "x")]),
                points: vec![(1_000, 5.0), (0, 0.0)],
            },
            SelectedSeries {
                dimensions: dims(&[("h", "b"), ("r", "x")]),
                points: vec![(0, 10.0), (1_000, 2.0)],
            },
            SelectedSeries {
                dimensions: dims(&[("h", "c")]),
                points: vec![(0, 1.0)],
            },
        ];
        let keys = vec!["r".to_string()];
        let r = rate_over(series, 1_000, Some(&keys), None);
        // series a: +5, series b: reset -> +2; series c has a single point
        assert_eq!(r.series.len(), 1);
        assert_eq!(r.series[0].dimensions, dims(&[("r", "x")]));
        assert_eq!(r.series[0].points, vec![(1_000, 7.0)]);
    }

    #[test]
    fn grouped_range_merges_points_and_names_the_group() {
        let series = vec![
            SelectedSeries {
                dimensions: dims(&[("h", "a")]),
                points: vec![(2, 2.0)],
            },
            SelectedSeries {
                dimensions: dims(&[("h", "b")]),
                points: vec![(1, 1.0)],
            },
            SelectedSeries {
                dimensions: dims(&[]),
                points: vec![(3, 3.0)],
            },
        ];
        let keys = vec!["x".to_string()];
        let r = range_over(series, None, Some(&keys), Some(5), true);
        assert_eq!(r.series.len(), 1);
        assert_eq!(r.series[0].dimensions, dims(&[]));
        assert_eq!(r.series[0].points, vec![(1, 1.0), (2, 2.0), (3, 3.0)]);
        assert!(!r.truncated);
    }
}
