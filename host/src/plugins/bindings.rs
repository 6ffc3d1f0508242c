//! Bindings: which plugins run for a tenant, in which order, with which
//! params and failure policy.
//!
//! A tenant's chain is, in order of precedence: the chain it set through
//! the API, else the chain the operator configured for it, else the
//! operator's global default chain. Reads take a snapshot (`Arc`), so a
//! request runs the chain it started with and a change applies from the
//! next request.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::model::TenantId;

/// Most plugins in one chain (validators or enrichers).
pub const MAX_CHAIN_LEN: usize = 16;
/// Largest serialized params of one binding.
pub const MAX_PARAMS_BYTES: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// The plugin failed: accept the metrics and count the error.
    #[default]
    FailOpen,
    /// The plugin failed: reject the metrics with an error naming it.
    FailClosed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Binding {
    pub plugin: String,
    #[serde(default = "empty_object")]
    pub params: serde_json::Value,
    #[serde(default)]
    pub on_failure: FailurePolicy,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BindingSet {
    pub validators: Vec<Binding>,
    pub enrichers: Vec<Binding>,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum BindingError {
    #[error("{0}")]
    Invalid(String),
    #[error("plugin {0:?} is not installed")]
    UnknownPlugin(String),
    #[error("plugin {plugin:?} is a {actual}, so it cannot be bound as a {expected}")]
    WrongKind {
        plugin: String,
        expected: &'static str,
        actual: &'static str,
    },
}

impl BindingSet {
    /// Shape checks that need no registry.
    pub fn check(&self) -> Result<(), BindingError> {
        for (list, what) in [
            (&self.validators, "validators"),
            (&self.enrichers, "enrichers"),
        ] {
            if list.len() > MAX_CHAIN_LEN {
                return Err(BindingError::Invalid(format!(
                    "{} {what}; the limit is {MAX_CHAIN_LEN}",
                    list.len()
                )));
            }
            for binding in list {
                if !binding.params.is_object() {
                    return Err(BindingError::Invalid(format!(
                        "params of {:?} must be a JSON object",
                        binding.plugin
                    )));
                }
                if binding.params.to_string().len() > MAX_PARAMS_BYTES {
                    return Err(BindingError::Invalid(format!(
                        "params of {:?} exceed {MAX_PARAMS_BYTES} bytes",
                        binding.plugin
                    )));
                }
            }
        }
        Ok(())
    }
}

static NEXT_BINDING_ID: AtomicU64 = AtomicU64::new(1);

/// A binding ready to run: params serialized once.
#[derive(Clone, Debug)]
pub struct ResolvedBinding {
    /// Unique among every binding resolved since the process started: the
    /// series cache keys answers by it, so new params never see answers
    /// given under old ones.
    pub id: u64,
    pub plugin: String,
    pub params_json: Arc<str>,
    pub on_failure: FailurePolicy,
}

impl ResolvedBinding {
    pub fn new(plugin: String, params_json: Arc<str>, on_failure: FailurePolicy) -> Self {
        Self {
            id: NEXT_BINDING_ID.fetch_add(1, Ordering::Relaxed),
            plugin,
            params_json,
            on_failure,
        }
    }
}

/// A tenant's chain as requests use it.
#[derive(Debug, Default)]
pub struct Chain {
    pub set: BindingSet,
    pub validators: Vec<ResolvedBinding>,
    pub enrichers: Vec<ResolvedBinding>,
}

impl Chain {
    pub fn new(set: BindingSet) -> Self {
        let resolve = |list: &[Binding]| {
            list.iter()
                .map(|b| {
                    ResolvedBinding::new(
                        b.plugin.clone(),
                        Arc::from(b.params.to_string()),
                        b.on_failure,
                    )
                })
                .collect()
        };
        Self {
            validators: resolve(&set.validators),
            enrichers: resolve(&set.enrichers),
            set,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.validators.is_empty() && self.enrichers.is_empty()
    }
}

pub struct BindingStore {
    defaults: Arc<Chain>,
    configured: HashMap<String, Arc<Chain>>,
    /// Chains tenants set through the API; these win.
    own: RwLock<HashMap<TenantId, Arc<Chain>>>,
}

impl BindingStore {
    pub fn new(defaults: BindingSet, configured: BTreeMap<String, BindingSet>) -> Self {
        Self {
            defaults: Arc::new(Chain::new(defaults)),
            configured: configured
                .into_iter()
                .map(|(tenant, set)| (tenant, Arc::new(Chain::new(set))))
                .collect(),
            own: RwLock::new(HashMap::new()),
        }
    }

    pub fn chain(&self, tenant: &TenantId) -> Arc<Chain> {
        if let Some(chain) = self
            .own
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
        {
            return chain.clone();
        }
        self.configured
            .get(tenant.as_str())
            .unwrap_or(&self.defaults)
            .clone()
    }

    pub fn set(&self, tenant: TenantId, set: BindingSet) {
        self.own
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant, Arc::new(Chain::new(set)));
    }

    /// Every chain that names `plugin`, for the plugin list: tenant ids, or
    /// `*` for the global defaults.
    pub fn bound_by(&self, plugin: &str) -> Vec<String> {
        let uses = |chain: &Chain| {
            chain
                .validators
                .iter()
                .chain(chain.enrichers.iter())
                .any(|b| b.plugin == plugin)
        };
        let mut out = Vec::new();
        if uses(&self.defaults) {
            out.push("*".to_owned());
        }
        let own = self.own.read().unwrap_or_else(|p| p.into_inner());
        for (tenant, chain) in self.configured.iter() {
            let overridden = TenantId::new(tenant)
                .map(|t| own.contains_key(&t))
                .unwrap_or(false);
            if !overridden && uses(chain) {
                out.push(tenant.clone());
            }
        }
        for (tenant, chain) in own.iter() {
            if uses(chain) {
                out.push(tenant.to_string());
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(plugin: &str) -> BindingSet {
        BindingSet {
            validators: vec![Binding {
                plugin: plugin.into(),
                params: empty_object(),
                on_failure: FailurePolicy::FailClosed,
            }],
            enrichers: vec![],
        }
    }

    #[test]
    fn api_chain_beats_configured_chain_beats_defaults() {
        let configured = BTreeMap::from([("acme".to_owned(), set("configured"))]);
        let store = BindingStore::new(set("default"), configured);
        let acme = TenantId::new("acme").unwrap();
        let other = TenantId::new("other").unwrap();
        assert_eq!(store.chain(&other).validators[0].plugin, "default");
        assert_eq!(store.chain(&acme).validators[0].plugin, "configured");
        store.set(acme.clone(), set("own"));
        assert_eq!(store.chain(&acme).validators[0].plugin, "own");
        assert_eq!(store.bound_by("own"), vec!["acme".to_owned()]);
        assert!(store.bound_by("configured").is_empty());
        assert_eq!(store.bound_by("default"), vec!["*".to_owned()]);
    }

    #[test]
    fn body_uses_camel_case_and_kebab_case_policy() {
        let parsed: BindingSet = serde_json::from_str(
            r#"{"validators":[{"plugin":"name-policy","params":{"a":1},"onFailure":"fail-closed"}]}"#,
        )
        .unwrap();
        assert_eq!(parsed.validators[0].on_failure, FailurePolicy::FailClosed);
        assert!(parsed.enrichers.is_empty());
        let missing_policy: Binding = serde_json::from_str(r#"{"plugin":"x"}"#).unwrap();
        assert_eq!(missing_policy.on_failure, FailurePolicy::FailOpen);
        assert!(
            serde_json::from_str::<Binding>(r#"{"plugin":"x","onFailure":"explode"}"#).is_err()
        );
        let bad_params = BindingSet {
            validators: vec![Binding {
                plugin: "x".into(),
                params: serde_json::json!([1]),
                on_failure: FailurePolicy::FailOpen,
            }],
            enrichers: vec![],
        };
        assert!(bad_params.check().is_err());
    }
}
