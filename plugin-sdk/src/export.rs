//! The bridge between the traits and the component model: the generated
//! bindings (private), the glue each export calls, and the export macros.

/// Bindings generated from `wit/` (the single source of truth), one module
/// per world. The export macros are generated `pub` so that they expand in
/// the plugin's crate: only the world the plugin exports ends up in its
/// component.
pub(crate) mod bindings {
    pub mod validator {
        wit_bindgen::generate!({
            world: "validator-plugin",
            path: "wit",
            pub_export_macro: true,
        });
    }

    // The other worlds reuse the validator world's `types` and `host`, so
    // there is one `Metric` type and one `log` import.
    pub mod enricher {
        wit_bindgen::generate!({
            world: "enricher-plugin",
            path: "wit",
            pub_export_macro: true,
            with: {
                "luminate:plugin/types@0.1.0": crate::export::bindings::validator::luminate::plugin::types,
                "luminate:plugin/host@0.1.0": crate::export::bindings::validator::luminate::plugin::host,
            },
        });
    }

    pub mod aggregator {
        wit_bindgen::generate!({
            world: "aggregator-plugin",
            path: "wit",
            pub_export_macro: true,
            with: {
                "luminate:plugin/types@0.1.0": crate::export::bindings::validator::luminate::plugin::types,
                "luminate:plugin/host@0.1.0": crate::export::bindings::validator::luminate::plugin::host,
            },
        });
    }
}

/// What each generated export calls: params from the host, WIT types to SDK
/// types, the trait, and back.
pub mod glue {
    use super::bindings::validator::luminate::plugin::types as wit;
    use crate::{Aggregator, Config, Dimension, Enricher, PluginError, Sample, Validator, Verdict};

    pub type WitMetricBatch = wit::MetricBatch;
    pub type WitEnrichment = wit::Enrichment;
    pub type WitVerdict = wit::Verdict;
    pub type WitPluginError = wit::PluginError;

    pub use super::bindings::aggregator::exports::luminate::plugin::aggregator::Guest as AggregatorGuest;
    pub use super::bindings::enricher::exports::luminate::plugin::enricher::Guest as EnricherGuest;
    pub use super::bindings::validator::exports::luminate::plugin::validator::Guest as ValidatorGuest;

    pub fn validate<V: Validator>(
        batch: WitMetricBatch,
    ) -> Result<Vec<WitVerdict>, WitPluginError> {
        let config = call_config()?;
        let verdicts = read_batch(&batch, |metrics| {
            crate::validator::run::<V>(&config, metrics)
        })??;
        Ok(verdicts.into_iter().map(WitVerdict::from).collect())
    }

    pub fn enrich<E: Enricher>(batch: WitMetricBatch) -> Result<WitEnrichment, WitPluginError> {
        let config = call_config()?;
        Ok(read_batch(&batch, |metrics| {
            crate::enricher::run_with::<E, _>(&config, metrics, pack_enrichment)
        })??)
    }

    /// Reads a batch as every export does, and hands its metrics to `f`.
    /// Public (hidden) so the wire-format fuzz target (`fuzz/`) reads
    /// batches through this very code.
    pub fn read_batch<R>(
        batch: &WitMetricBatch,
        f: impl FnOnce(&[crate::Metric<'_>]) -> R,
    ) -> Result<R, PluginError> {
        let dimensions = crate::batch::dimensions(batch)?;
        let metrics = crate::batch::metrics(batch, &dimensions)?;
        Ok(f(&metrics))
    }

    /// Lays additions out as the ABI's `enrichment`: strings in one text,
    /// numbers in two lists. Public (hidden) for the same fuzz target.
    pub fn pack_enrichment(additions: &[Vec<Dimension<'_>>]) -> WitEnrichment {
        let count: usize = additions.iter().map(Vec::len).sum();
        let text_len: usize = additions
            .iter()
            .flatten()
            .map(|d| d.key.len() + d.value.len())
            .sum();
        let mut packed = WitEnrichment {
            text: String::with_capacity(text_len),
            dimension_ends: Vec::with_capacity(additions.len()),
            dimensions: Vec::with_capacity(4 * count),
        };
        // A plugin's memory is capped far below 4 GiB, so offsets fit.
        for dims in additions {
            for d in dims {
                for s in [d.key.as_ref(), d.value.as_ref()] {
                    packed.dimensions.push(packed.text.len() as u32);
                    packed.dimensions.push(s.len() as u32);
                    packed.text.push_str(s);
                }
            }
            packed
                .dimension_ends
                .push((packed.dimensions.len() / 4) as u32);
        }
        packed
    }

    pub fn aggregator_init<A: Aggregator>() -> Result<Vec<u8>, WitPluginError> {
        Ok(crate::aggregator::init::<A>(&call_config()?)?)
    }

    pub fn aggregator_update<A: Aggregator>(
        state: Vec<u8>,
        timestamps_ms: Vec<i64>,
        values: Vec<f64>,
    ) -> Result<Vec<u8>, WitPluginError> {
        let config = call_config()?;
        if timestamps_ms.len() != values.len() {
            return Err(PluginError::Failed(format!(
                "malformed update: {} timestamps for {} values",
                timestamps_ms.len(),
                values.len()
            ))
            .into());
        }
        let samples: Vec<Sample> = timestamps_ms
            .into_iter()
            .zip(values)
            .map(|(timestamp_ms, value)| Sample::new(timestamp_ms, value))
            .collect();
        Ok(crate::aggregator::update::<A>(&config, &state, &samples)?)
    }

    pub fn aggregator_merge<A: Aggregator>(
        left: Vec<u8>,
        right: Vec<u8>,
    ) -> Result<Vec<u8>, WitPluginError> {
        Ok(crate::aggregator::merge::<A>(
            &call_config()?,
            &left,
            &right,
        )?)
    }

    pub fn aggregator_finish<A: Aggregator>(state: Vec<u8>) -> Result<f64, WitPluginError> {
        Ok(crate::aggregator::finish::<A>(&call_config()?, &state)?)
    }

    /// Every export starts here: route panics to the server log (a panic
    /// still traps, but the operator sees why), then read the params.
    fn call_config() -> Result<Config, PluginError> {
        install_panic_logger();
        Config::from_json(&crate::host::params()).map_err(PluginError::InvalidConfig)
    }

    fn install_panic_logger() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                crate::log::error(format!("plugin panicked: {info}"));
            }));
        });
    }

    impl From<Verdict> for WitVerdict {
        fn from(verdict: Verdict) -> Self {
            match verdict {
                Verdict::Accept => WitVerdict::Accept,
                Verdict::Reject(reason) => WitVerdict::Reject(reason),
            }
        }
    }

    impl From<PluginError> for WitPluginError {
        fn from(e: PluginError) -> Self {
            match e {
                PluginError::InvalidConfig(m) => WitPluginError::InvalidConfig(m),
                PluginError::Failed(m) => WitPluginError::Failed(m),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn enrichment_is_packed_one_range_per_metric() {
            let additions = vec![
                vec![Dimension::new("team", "pay"), Dimension::new("zone", "é")],
                vec![],
                vec![Dimension::new("team", "search")],
            ];
            let packed = pack_enrichment(&additions);
            assert_eq!(packed.dimension_ends, vec![2, 2, 3]);
            let text = |at: &[u32]| &packed.text[at[0] as usize..][..at[1] as usize];
            let pairs: Vec<(&str, &str)> = packed
                .dimensions
                .chunks_exact(4)
                .map(|q| (text(&q[0..2]), text(&q[2..4])))
                .collect();
            assert_eq!(
                pairs,
                vec![("team", "pay"), ("zone", "é"), ("team", "search")]
            );
        }
    }
}

/// Adds the `luminate-abi` custom section (see [`crate::abi`]); wasm only,
/// as other object formats restrict section names.
#[doc(hidden)]
#[macro_export]
macro_rules! __luminate_abi_section {
    () => {
        #[cfg(target_arch = "wasm32")]
        #[unsafe(link_section = "luminate-abi")]
        #[used]
        #[doc(hidden)]
        static __LUMINATE_PLUGIN_ABI_VERSION: [u8; $crate::ABI_VERSION.len()] =
            $crate::__private::abi_version_bytes();
    };
}

/// Adds the `luminate-series-only` custom section (see [`crate::abi`]):
/// the plugin's `SERIES_ONLY` as one byte.
#[doc(hidden)]
#[macro_export]
macro_rules! __luminate_series_only_section {
    ($plugin:ty, $trait:path) => {
        #[cfg(target_arch = "wasm32")]
        #[unsafe(link_section = "luminate-series-only")]
        #[used]
        #[doc(hidden)]
        static __LUMINATE_PLUGIN_SERIES_ONLY: [u8; 1] = [<$plugin as $trait>::SERIES_ONLY as u8];
    };
}

/// Exports a [`Validator`](crate::Validator) as this crate's plugin. Call it
/// once, at the crate root of a `cdylib` crate.
#[macro_export]
macro_rules! export_validator {
    ($plugin:ty) => {
        $crate::__luminate_abi_section!();
        $crate::__luminate_series_only_section!($plugin, $crate::Validator);
        // Natively nothing is exported (a native cdylib cannot carry the
        // component ABI's symbol names), but the type is still checked
        // against the trait and counts as used. The fixed name makes a
        // second export macro in the crate a compile error on every target.
        #[doc(hidden)]
        #[allow(dead_code)]
        const __LUMINATE_PLUGIN_EXPORT: () = {
            let _ = $crate::__private::validate::<$plugin>;
        };
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __LuminateValidator;
            impl $crate::__private::ValidatorGuest for __LuminateValidator {
                fn validate(
                    batch: $crate::__private::WitMetricBatch,
                ) -> ::std::result::Result<
                    ::std::vec::Vec<$crate::__private::WitVerdict>,
                    $crate::__private::WitPluginError,
                > {
                    $crate::__private::validate::<$plugin>(batch)
                }
            }
            $crate::__export_validator_plugin_impl!(
                __LuminateValidator with_types_in $crate::__private::validator
            );
        };
    };
}

/// Exports an [`Enricher`](crate::Enricher) as this crate's plugin. Call it
/// once, at the crate root of a `cdylib` crate.
#[macro_export]
macro_rules! export_enricher {
    ($plugin:ty) => {
        $crate::__luminate_abi_section!();
        $crate::__luminate_series_only_section!($plugin, $crate::Enricher);
        // Natively nothing is exported (a native cdylib cannot carry the
        // component ABI's symbol names), but the type is still checked
        // against the trait and counts as used. The fixed name makes a
        // second export macro in the crate a compile error on every target.
        #[doc(hidden)]
        #[allow(dead_code)]
        const __LUMINATE_PLUGIN_EXPORT: () = {
            let _ = $crate::__private::enrich::<$plugin>;
        };
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __LuminateEnricher;
            impl $crate::__private::EnricherGuest for __LuminateEnricher {
                fn enrich(
                    batch: $crate::__private::WitMetricBatch,
                ) -> ::std::result::Result<
                    $crate::__private::WitEnrichment,
                    $crate::__private::WitPluginError,
                > {
                    $crate::__private::enrich::<$plugin>(batch)
                }
            }
            $crate::__export_enricher_plugin_impl!(
                __LuminateEnricher with_types_in $crate::__private::enricher
            );
        };
    };
}

/// Exports an [`Aggregator`](crate::Aggregator) as this crate's plugin. Call
/// it once, at the crate root of a `cdylib` crate.
#[macro_export]
macro_rules! export_aggregator {
    ($plugin:ty) => {
        $crate::__luminate_abi_section!();
        // Natively nothing is exported (a native cdylib cannot carry the
        // component ABI's symbol names), but the type is still checked
        // against the trait and counts as used. The fixed name makes a
        // second export macro in the crate a compile error on every target.
        #[doc(hidden)]
        #[allow(dead_code)]
        const __LUMINATE_PLUGIN_EXPORT: () = {
            let _ = $crate::__private::aggregator_finish::<$plugin>;
        };
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __LuminateAggregator;
            impl $crate::__private::AggregatorGuest for __LuminateAggregator {
                fn init()
                -> ::std::result::Result<::std::vec::Vec<u8>, $crate::__private::WitPluginError>
                {
                    $crate::__private::aggregator_init::<$plugin>()
                }
                fn update(
                    state: ::std::vec::Vec<u8>,
                    timestamps_ms: ::std::vec::Vec<i64>,
                    values: ::std::vec::Vec<f64>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, $crate::__private::WitPluginError>
                {
                    $crate::__private::aggregator_update::<$plugin>(state, timestamps_ms, values)
                }
                fn merge(
                    left: ::std::vec::Vec<u8>,
                    right: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, $crate::__private::WitPluginError>
                {
                    $crate::__private::aggregator_merge::<$plugin>(left, right)
                }
                fn finish(
                    state: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<f64, $crate::__private::WitPluginError> {
                    $crate::__private::aggregator_finish::<$plugin>(state)
                }
            }
            $crate::__export_aggregator_plugin_impl!(
                __LuminateAggregator with_types_in $crate::__private::aggregator
            );
        };
    };
}
