//! `lookup-enricher`: adds dimensions from lookup tables in its params
//! (service → team/owner, host → region, ...). See README.md.

use luminate_plugin_sdk::{Config, Dimension, Enricher, Metric, export_enricher};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Params {
    lookups: Vec<LookupParams>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LookupParams {
    /// The dimension whose value is looked up.
    key: String,
    /// Value of `key` → the dimensions to add.
    table: HashMap<String, BTreeMap<String, String>>,
    /// Added when the metric has `key` but its value is not in the table.
    #[serde(default)]
    default: BTreeMap<String, String>,
    /// Replace dimensions the metric already has (the table is the
    /// authority) instead of keeping the client's values.
    #[serde(default)]
    overwrite: bool,
}

struct Lookup {
    key: String,
    table: HashMap<String, Vec<Dimension<'static>>>,
    default: Vec<Dimension<'static>>,
    overwrite: bool,
}

pub struct LookupEnricher {
    lookups: Vec<Lookup>,
}

fn dimensions(
    map: BTreeMap<String, String>,
    context: &str,
) -> Result<Vec<Dimension<'static>>, String> {
    map.into_iter()
        .map(|(key, value)| {
            if key.starts_with('_') {
                Err(format!(
                    "{context} sets '{key}': keys starting with '_' belong to the server"
                ))
            } else if key.is_empty() {
                Err(format!("{context} sets an empty dimension key"))
            } else {
                Ok(Dimension::new(key, value))
            }
        })
        .collect()
}

impl Enricher for LookupEnricher {
    /// The additions depend only on dimensions, so the server asks once
    /// per series and remembers them.
    const SERIES_ONLY: bool = true;

    fn new(config: &Config) -> Result<Self, String> {
        let params: Params = config.deserialize()?;
        let lookups = params
            .lookups
            .into_iter()
            .enumerate()
            .map(|(i, lookup)| {
                let context = format!("lookups[{i}] ({})", lookup.key);
                let table = lookup
                    .table
                    .into_iter()
                    .map(|(value, dims)| {
                        let dims = dimensions(dims, &format!("{context}.table.{value}"))?;
                        Ok((value, dims))
                    })
                    .collect::<Result<_, String>>()?;
                Ok(Lookup {
                    default: dimensions(lookup.default, &format!("{context}.default"))?,
                    key: lookup.key,
                    table,
                    overwrite: lookup.overwrite,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { lookups })
    }

    fn enrich(&self, metric: &Metric) -> Vec<Dimension<'_>> {
        // Lookups run in order and each sees what the earlier ones added,
        // so tables chain: host → datacenter, then datacenter → region.
        // Everything added borrows from the tables: no copy per metric.
        let mut added: Vec<(&str, &str)> = Vec::new();
        for lookup in &self.lookups {
            let earlier = added.iter().rev().find(|(key, _)| *key == lookup.key);
            let value = match earlier {
                Some(&(_, value)) => value,
                None => match metric.dimension(&lookup.key) {
                    Some(value) => value,
                    None => continue,
                },
            };
            let found = lookup.table.get(value).unwrap_or(&lookup.default);
            for dimension in found {
                let key = dimension.key.as_ref();
                let present =
                    metric.dimension(key).is_some() || added.iter().any(|(k, _)| *k == key);
                if present && !lookup.overwrite {
                    continue;
                }
                added.retain(|(k, _)| *k != key);
                added.push((key, dimension.value.as_ref()));
            }
        }
        added
            .into_iter()
            .map(|(key, value)| Dimension::new(key, value))
            .collect()
    }
}

export_enricher!(LookupEnricher);

#[cfg(test)]
mod tests {
    use super::*;
    use luminate_plugin_sdk::{PluginError, testing};

    const PARAMS: &str = r#"{
        "lookups": [
            {
                "key": "service",
                "table": {
                    "checkout": {"team": "payments", "owner": "alice"},
                    "search": {"team": "discovery", "owner": "bob"}
                },
                "default": {"team": "unowned"}
            },
            {"key": "host", "table": {"web-1": {"datacenter": "fra1"}}},
            {"key": "datacenter", "table": {"fra1": {"region": "eu-central"}}}
        ]
    }"#;

    fn enrich(params: &str, metric: Metric<'static>) -> Metric<'static> {
        testing::enrich_and_apply::<LookupEnricher>(params, &[metric])
            .unwrap()
            .remove(0)
    }

    #[test]
    fn adds_the_dimensions_of_the_matching_row() {
        let m = enrich(
            PARAMS,
            Metric::new("m", 1.0).with_dimension("service", "checkout"),
        );
        assert_eq!(m.dimension("team"), Some("payments"));
        assert_eq!(m.dimension("owner"), Some("alice"));
    }

    #[test]
    fn uses_the_default_for_an_unknown_value() {
        let m = enrich(
            PARAMS,
            Metric::new("m", 1.0).with_dimension("service", "legacy"),
        );
        assert_eq!(m.dimension("team"), Some("unowned"));
        assert_eq!(m.dimension("owner"), None);
    }

    #[test]
    fn leaves_metrics_without_the_key_alone() {
        let additions =
            testing::enrich::<LookupEnricher>(PARAMS, &[Metric::new("m", 1.0)]).unwrap();
        assert_eq!(additions, vec![Vec::<Dimension>::new()]);
    }

    #[test]
    fn chains_lookups_through_added_dimensions() {
        let m = enrich(
            PARAMS,
            Metric::new("m", 1.0).with_dimension("host", "web-1"),
        );
        assert_eq!(m.dimension("datacenter"), Some("fra1"));
        assert_eq!(m.dimension("region"), Some("eu-central"));
    }

    #[test]
    fn keeps_the_clients_value_unless_overwrite_is_set() {
        let metric = Metric::new("m", 1.0)
            .with_dimension("service", "checkout")
            .with_dimension("team", "self-declared");
        assert_eq!(
            enrich(PARAMS, metric.clone()).dimension("team"),
            Some("self-declared")
        );

        let authoritative = r#"{"lookups":[{"key":"service","overwrite":true,
            "table":{"checkout":{"team":"payments"}}}]}"#;
        assert_eq!(
            enrich(authoritative, metric).dimension("team"),
            Some("payments")
        );
    }

    #[test]
    fn enriches_each_metric_of_a_batch_from_its_own_row() {
        let batch = [
            Metric::new("a", 1.0).with_dimension("service", "search"),
            Metric::new("b", 1.0).with_dimension("service", "checkout"),
        ];
        let out = testing::enrich_and_apply::<LookupEnricher>(PARAMS, &batch).unwrap();
        assert_eq!(out[0].dimension("team"), Some("discovery"));
        assert_eq!(out[1].dimension("team"), Some("payments"));
    }

    #[test]
    fn refuses_a_table_that_would_set_a_reserved_key() {
        let params = r#"{"lookups":[{"key":"service","table":{"api":{"_tenant_id":"other"}}}]}"#;
        let err = testing::enrich::<LookupEnricher>(params, &[]).unwrap_err();
        assert!(
            matches!(&err, PluginError::InvalidConfig(m) if m.contains("'_tenant_id'") && m.contains("table.api")),
            "{err:?}"
        );
    }

    #[test]
    fn refuses_params_without_lookups() {
        let err = testing::enrich::<LookupEnricher>("{}", &[]).unwrap_err();
        assert!(
            matches!(&err, PluginError::InvalidConfig(m) if m.contains("lookups")),
            "{err:?}"
        );
    }
}
