//! The read path: check a parsed query against the server's limits, scope it
//! to the caller's tenant, run it on storage, and put the reserved
//! dimensions back into the answer.
//!
//! Scoping is how tenant isolation holds on the query side. Storage never
//! sees a reserved (`_`) key: a filter on `_tenant_id` is decided here
//! against the caller's own tenant (so `_tenant_id =~ ".*"` still only ever
//! reads the caller's data), and a `groupBy` on it is answered with the
//! caller's tenant as a constant. Other reserved keys read as missing.
//!
//! Plugin aggregations (issue 4) join through [`AggregationPlugin`]: the
//! host reads each group's raw points with a grouped range query, which
//! every backend supports, and hands them to the plugin runtime.

use std::sync::Arc;

use async_trait::async_trait;

use crate::model::{
    AggregateQuery, AggregateResult, AggregateRow, Filter, QueryBudget, RESERVED_PREFIX,
    RangeQuery, RateQuery, RegexLimits, Selector, Series, SeriesResult, TENANT_DIMENSION, TenantId,
};
use crate::storage::{MetricsStore, StorageError};

/// Bounds on what one query may ask for.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryLimits {
    /// Series or groups returned at most; also the default `limit`.
    pub max_series: usize,
    /// Longest time range, in ms.
    pub max_range_ms: i64,
    /// Most step buckets in one range or rate query.
    pub max_buckets: i64,
    /// Points one query may read from storage.
    pub max_points_scanned: u64,
    /// Points a range or rate query may gather for its answer.
    pub max_points_returned: u64,
    /// Longest regex filter pattern, in bytes.
    pub max_regex_bytes: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            max_series: 10_000,
            max_range_ms: 400 * 86_400_000,
            max_buckets: 11_000,
            max_points_scanned: 50_000_000,
            max_points_returned: 2_000_000,
            max_regex_bytes: RegexLimits::default().max_pattern_bytes,
        }
    }
}

impl QueryLimits {
    pub fn budget(&self) -> QueryBudget {
        QueryBudget {
            max_points_scanned: self.max_points_scanned,
            max_points_returned: self.max_points_returned,
        }
    }

    pub fn regex(&self) -> RegexLimits {
        RegexLimits {
            max_pattern_bytes: self.max_regex_bytes,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The query is well-formed but not acceptable (empty or huge range...).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// A plugin aggregation was asked for but no plugin runtime is running.
    #[error("plugin aggregations are not available on this server")]
    PluginsUnavailable,
    /// The aggregation plugin failed (or is unknown, or of another kind).
    #[error("{message}")]
    Plugin { code: &'static str, message: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl ReadError {
    fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }
}

/// An aggregate whose function is a plugin rather than a built-in.
#[derive(Clone, Debug)]
pub struct PluginAggregateQuery {
    pub selector: Selector,
    pub plugin: String,
    /// The query's `params` object as JSON text (`{}` if none): what the
    /// plugin ABI's `params()` returns.
    pub params_json: String,
    pub group_by: Vec<String>,
    pub limit: Option<usize>,
}

/// Computes a plugin aggregation: one value per group, in the order given.
/// Implemented by the plugin runtime (issue 4).
#[async_trait]
pub trait AggregationPlugin: Send + Sync + 'static {
    async fn aggregate(
        &self,
        tenant: &TenantId,
        plugin: &str,
        params_json: &str,
        groups: &[Series],
    ) -> Result<Vec<f64>, ReadError>;
}

pub struct ReadPipeline {
    store: Arc<dyn MetricsStore>,
    limits: QueryLimits,
    plugins: Option<Arc<dyn AggregationPlugin>>,
}

impl ReadPipeline {
    pub fn new(store: Arc<dyn MetricsStore>, limits: QueryLimits) -> Self {
        Self {
            store,
            limits,
            plugins: None,
        }
    }

    pub fn with_aggregation_plugins(mut self, plugins: Arc<dyn AggregationPlugin>) -> Self {
        self.plugins = Some(plugins);
        self
    }

    pub fn limits(&self) -> &QueryLimits {
        &self.limits
    }

    /// The shared prologue of every query: check the selector (and the
    /// bucket count for stepped queries), cap the limit, and scope
    /// `_tenant_id` filters to the caller. `false` means the filters exclude
    /// the caller's tenant, so the answer is empty without asking storage.
    fn scope(
        &self,
        tenant: &TenantId,
        selector: &mut Selector,
        step_ms: Option<i64>,
        limit: &mut Option<usize>,
    ) -> Result<bool, ReadError> {
        self.check_selector(selector)?;
        if let Some(step_ms) = step_ms {
            self.check_buckets(selector, step_ms)?;
        }
        *limit = Some(self.effective_limit(*limit));
        selector.budget = self.limits.budget();
        let Some(filters) = scope_filters(tenant, &selector.filters) else {
            return Ok(false);
        };
        selector.filters = filters;
        Ok(true)
    }

    pub async fn aggregate(
        &self,
        tenant: &TenantId,
        mut query: AggregateQuery,
    ) -> Result<AggregateResult, ReadError> {
        if !self.scope(tenant, &mut query.selector, None, &mut query.limit)? {
            return Ok(AggregateResult::default());
        }
        let requested = std::mem::take(&mut query.group_by);
        query.group_by = unreserved(&requested);
        let mut result = self.store.query_aggregate(tenant, &query).await?;
        if query.group_by.len() != requested.len() {
            for row in &mut result.rows {
                row.group = restore_group(tenant, &requested, std::mem::take(&mut row.group));
            }
        }
        Ok(result)
    }

    pub async fn range(
        &self,
        tenant: &TenantId,
        mut query: RangeQuery,
    ) -> Result<SeriesResult, ReadError> {
        let step_ms = query.step.map(|(step_ms, _)| step_ms);
        if !self.scope(tenant, &mut query.selector, step_ms, &mut query.limit)? {
            return Ok(SeriesResult::default());
        }
        self.scoped_range(tenant, query).await
    }

    /// A range query within its caller's own bounds rather than `[query]`'s
    /// answer bounds: `query.limit` series as asked, and at most
    /// `max_points_returned` points. For PromQL, whose `[promql]` limits
    /// (lowered per tenant) bound its reads; the range and scan checks
    /// and the tenant scoping are the same as [`Self::range`]'s.
    pub async fn range_within(
        &self,
        tenant: &TenantId,
        mut query: RangeQuery,
        max_points_returned: u64,
    ) -> Result<SeriesResult, ReadError> {
        let step_ms = query.step.map(|(step_ms, _)| step_ms);
        let asked = query.limit;
        if !self.scope(tenant, &mut query.selector, step_ms, &mut query.limit)? {
            return Ok(SeriesResult::default());
        }
        query.limit = asked;
        query.selector.budget.max_points_returned = max_points_returned;
        self.scoped_range(tenant, query).await
    }

    async fn scoped_range(
        &self,
        tenant: &TenantId,
        mut query: RangeQuery,
    ) -> Result<SeriesResult, ReadError> {
        let requested = query.group_by.take();
        query.group_by = requested.as_deref().map(unreserved);
        let mut result = self.store.query_range(tenant, &query).await?;
        if let Some(keys) = &requested {
            restore_series(tenant, keys, &mut result);
        }
        Ok(result)
    }

    pub async fn rate(
        &self,
        tenant: &TenantId,
        mut query: RateQuery,
    ) -> Result<SeriesResult, ReadError> {
        let step_ms = Some(query.step_ms);
        if !self.scope(tenant, &mut query.selector, step_ms, &mut query.limit)? {
            return Ok(SeriesResult::default());
        }
        let requested = query.group_by.take();
        query.group_by = requested.as_deref().map(unreserved);
        let mut result = self.store.query_rate(tenant, &query).await?;
        if let Some(keys) = &requested {
            restore_series(tenant, keys, &mut result);
        }
        Ok(result)
    }

    /// Reads each group's raw points and lets the plugin reduce them.
    pub async fn aggregate_with_plugin(
        &self,
        tenant: &TenantId,
        query: PluginAggregateQuery,
    ) -> Result<AggregateResult, ReadError> {
        let plugins = self.plugins.as_ref().ok_or(ReadError::PluginsUnavailable)?;
        let groups = self
            .range(
                tenant,
                RangeQuery {
                    selector: query.selector,
                    step: None,
                    group_by: Some(query.group_by.clone()),
                    limit: query.limit,
                    sorted: true,
                },
            )
            .await?;
        let values = plugins
            .aggregate(tenant, &query.plugin, &query.params_json, &groups.series)
            .await?;
        let rows = groups
            .series
            .iter()
            .zip(values)
            .map(|(series, value)| AggregateRow {
                group: query
                    .group_by
                    .iter()
                    .map(|k| series.dimensions.get(k).map(str::to_owned))
                    .collect(),
                value,
            })
            .collect();
        Ok(AggregateResult {
            rows,
            truncated: groups.truncated,
        })
    }

    pub async fn list_metrics(&self, tenant: &TenantId) -> Result<Vec<String>, ReadError> {
        Ok(self.store.list_metrics(tenant).await?)
    }

    /// Dimension keys of `metric`; reserved keys are not listed.
    pub async fn list_dimension_keys(
        &self,
        tenant: &TenantId,
        metric: &str,
    ) -> Result<Vec<String>, ReadError> {
        Ok(self.store.list_dimension_keys(tenant, metric).await?)
    }

    /// Up to `limit` values of `key` on `metric`, and whether more exist.
    pub async fn list_dimension_values(
        &self,
        tenant: &TenantId,
        metric: &str,
        key: &str,
        limit: usize,
    ) -> Result<(Vec<String>, bool), ReadError> {
        if key.starts_with(RESERVED_PREFIX) {
            return Ok((Vec::new(), false));
        }
        let mut values = self
            .store
            .list_dimension_values(tenant, metric, key, limit.saturating_add(1))
            .await?;
        let truncated = values.len() > limit;
        values.truncate(limit);
        Ok((values, truncated))
    }

    pub async fn delete_before(
        &self,
        tenant: &TenantId,
        metric: &str,
        before_ms: i64,
    ) -> Result<(), ReadError> {
        Ok(self.store.delete_before(tenant, metric, before_ms).await?)
    }

    fn effective_limit(&self, asked: Option<usize>) -> usize {
        asked.unwrap_or(usize::MAX).min(self.limits.max_series)
    }

    fn check_selector(&self, selector: &Selector) -> Result<(), ReadError> {
        let range = selector.range;
        if range.start_ms >= range.end_ms {
            return Err(ReadError::invalid(
                "invalid_time_range",
                format!(
                    "timeRange start ({}) must be before end ({})",
                    range.start_ms, range.end_ms
                ),
            ));
        }
        let span = range.end_ms.saturating_sub(range.start_ms);
        if span > self.limits.max_range_ms {
            return Err(ReadError::invalid(
                "time_range_too_large",
                format!(
                    "timeRange spans {span} ms; the limit is {} ms",
                    self.limits.max_range_ms
                ),
            ));
        }
        Ok(())
    }

    fn check_buckets(&self, selector: &Selector, step_ms: i64) -> Result<(), ReadError> {
        let span = selector
            .range
            .end_ms
            .saturating_sub(selector.range.start_ms);
        let buckets = span / step_ms.max(1) + 1;
        if buckets > self.limits.max_buckets {
            return Err(ReadError::invalid(
                "too_many_buckets",
                format!(
                    "a step of {step_ms} ms over this time range makes {buckets} buckets; the limit is {}: use a larger step or a shorter range",
                    self.limits.max_buckets
                ),
            ));
        }
        Ok(())
    }
}

/// The value a reserved key has for every series of `tenant`.
fn reserved_value<'a>(tenant: &'a TenantId, key: &str) -> Option<&'a str> {
    (key == TENANT_DIMENSION).then(|| tenant.as_str())
}

/// Drops filters on reserved keys after deciding them; `None` when one
/// excludes everything the tenant has.
fn scope_filters(tenant: &TenantId, filters: &[Filter]) -> Option<Vec<Filter>> {
    let mut kept = Vec::with_capacity(filters.len());
    for filter in filters {
        if filter.key.starts_with(RESERVED_PREFIX) {
            if !filter.matches(reserved_value(tenant, &filter.key)) {
                return None;
            }
        } else {
            kept.push(filter.clone());
        }
    }
    Some(kept)
}

fn unreserved(keys: &[String]) -> Vec<String> {
    keys.iter()
        .filter(|k| !k.starts_with(RESERVED_PREFIX))
        .cloned()
        .collect()
}

/// Rebuilds a group row for `requested` keys from storage's unreserved values.
fn restore_group(
    tenant: &TenantId,
    requested: &[String],
    stored: Vec<Option<String>>,
) -> Vec<Option<String>> {
    let mut stored = stored.into_iter();
    requested
        .iter()
        .map(|key| {
            if key.starts_with(RESERVED_PREFIX) {
                reserved_value(tenant, key).map(str::to_owned)
            } else {
                stored.next().flatten()
            }
        })
        .collect()
}

fn restore_series(tenant: &TenantId, requested: &[String], result: &mut SeriesResult) {
    let reserved: Vec<(&String, &str)> = requested
        .iter()
        .filter_map(|k| reserved_value(tenant, k).map(|v| (k, v)))
        .collect();
    if reserved.is_empty() {
        return;
    }
    for series in &mut result.series {
        for (key, value) in &reserved {
            series
                .dimensions
                .insert((*key).clone(), (*value).to_owned());
        }
    }
    result
        .series
        .sort_by(|a, b| a.dimensions.cmp(&b.dimensions));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FilterOp;

    fn tenant() -> TenantId {
        TenantId::new("acme").unwrap()
    }

    #[test]
    fn tenant_filter_matching_the_caller_is_dropped_before_storage() {
        let filters = vec![
            Filter::regex(TENANT_DIMENSION.into(), "ac.*".into(), false).unwrap(),
            Filter {
                key: "endpoint".into(),
                op: FilterOp::Eq("/a".into()),
            },
        ];
        let scoped = scope_filters(&tenant(), &filters).unwrap();
        assert_eq!(scoped.len(), 1);
        assert_eq!(scoped[0].key, "endpoint");
    }

    #[test]
    fn tenant_filter_naming_another_tenant_selects_nothing() {
        let filters = vec![Filter {
            key: TENANT_DIMENSION.into(),
            op: FilterOp::Eq("other".into()),
        }];
        assert!(scope_filters(&tenant(), &filters).is_none());
        let not_other = vec![Filter {
            key: TENANT_DIMENSION.into(),
            op: FilterOp::NotEq("acme".into()),
        }];
        assert!(scope_filters(&tenant(), &not_other).is_none());
    }

    #[test]
    fn unknown_reserved_keys_read_as_missing() {
        let filters = vec![Filter {
            key: "_secret".into(),
            op: FilterOp::Eq(String::new()),
        }];
        assert_eq!(scope_filters(&tenant(), &filters).unwrap().len(), 0);
    }

    #[test]
    fn group_by_tenant_is_answered_with_the_callers_tenant() {
        let requested = vec![
            "a".to_string(),
            TENANT_DIMENSION.to_string(),
            "b".to_string(),
        ];
        assert_eq!(
            unreserved(&requested),
            vec!["a".to_string(), "b".to_string()]
        );
        let row = restore_group(&tenant(), &requested, vec![Some("1".into()), None]);
        assert_eq!(row, vec![Some("1".into()), Some("acme".into()), None]);
    }
}
