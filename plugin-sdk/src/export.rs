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
    pub type WitDimension = wit::Dimension;
    pub type WitVerdict = wit::Verdict;
    pub type WitSample = wit::Sample;
    pub type WitPluginError = wit::PluginError;

    pub use super::bindings::aggregator::exports::luminate::plugin::aggregator::Guest as AggregatorGuest;
    pub use super::bindings::enricher::exports::luminate::plugin::enricher::Guest as EnricherGuest;
    pub use super::bindings::validator::exports::luminate::plugin::validator::Guest as ValidatorGuest;

    pub fn validate<V: Validator>(
        batch: WitMetricBatch,
    ) -> Result<Vec<WitVerdict>, WitPluginError> {
        let config = call_config()?;
        let dimensions = crate::batch::dimensions(&batch.text, &batch.dimensions)?;
        let metrics = crate::batch::metrics(&batch.text, &batch.metrics, &dimensions)?;
        let verdicts = crate::validator::run::<V>(&config, &metrics)?;
        Ok(verdicts.into_iter().map(WitVerdict::from).collect())
    }

    pub fn enrich<E: Enricher>(
        batch: WitMetricBatch,
    ) -> Result<Vec<Vec<WitDimension>>, WitPluginError> {
        let config = call_config()?;
        let dimensions = crate::batch::dimensions(&batch.text, &batch.dimensions)?;
        let metrics = crate::batch::metrics(&batch.text, &batch.metrics, &dimensions)?;
        let additions = crate::enricher::run::<E>(&config, &metrics)?;
        Ok(additions
            .into_iter()
            .map(|dims| dims.into_iter().map(WitDimension::from).collect())
            .collect())
    }

    pub fn aggregator_init<A: Aggregator>() -> Result<Vec<u8>, WitPluginError> {
        Ok(crate::aggregator::init::<A>(&call_config()?)?)
    }

    pub fn aggregator_update<A: Aggregator>(
        state: Vec<u8>,
        samples: Vec<WitSample>,
    ) -> Result<Vec<u8>, WitPluginError> {
        let config = call_config()?;
        let samples: Vec<Sample> = samples
            .into_iter()
            .map(|s| Sample::new(s.timestamp_ms, s.value))
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

    impl From<Dimension<'_>> for WitDimension {
        fn from(d: Dimension<'_>) -> Self {
            WitDimension {
                key: d.key.into_owned(),
                value: d.value.into_owned(),
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

/// Exports a [`Validator`](crate::Validator) as this crate's plugin. Call it
/// once, at the crate root of a `cdylib` crate.
#[macro_export]
macro_rules! export_validator {
    ($plugin:ty) => {
        $crate::__luminate_abi_section!();
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
                    ::std::vec::Vec<::std::vec::Vec<$crate::__private::WitDimension>>,
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
                    samples: ::std::vec::Vec<$crate::__private::WitSample>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, $crate::__private::WitPluginError>
                {
                    $crate::__private::aggregator_update::<$plugin>(state, samples)
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
