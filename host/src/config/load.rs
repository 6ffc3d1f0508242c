use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

use super::{Config, env_aliases};

/// Settings given on the command line; they win over file and environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides(pub Vec<(&'static str, figment::value::Value)>);

impl Overrides {
    pub fn set(&mut self, key: &'static str, value: impl Into<figment::value::Value>) {
        self.0.push((key, value.into()));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Builds the configuration from defaults, `file`, the environment and
/// `overrides`, in that order, and checks it.
pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError::File {
                path: path.to_owned(),
                message: "not found or not a file".into(),
            });
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    // `LUMINATE_CONFIG` names the config file (a CLI setting), not a key.
    let env = Env::prefixed("LUMINATE_").filter(|key| key != "config");
    figment = figment.merge(env.map(|key| {
        let full = format!("LUMINATE_{}", key.as_str().to_ascii_uppercase());
        match env_aliases().iter().find(|(alias, _)| *alias == full) {
            Some((_, path)) => (*path).into(),
            None => key.as_str().replace("__", ".").into(),
        }
    }));
    for (key, value) in &overrides.0 {
        figment = figment.merge(Serialized::global(key, value.clone()));
    }
    let config: Config = figment
        .extract()
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    validate(&config)?;
    Ok(config)
}

fn validate(config: &Config) -> Result<(), ConfigError> {
    let invalid = |m: &str| Err(ConfigError::Invalid(m.into()));
    if crate::model::TenantId::new(&config.default_tenant).is_err() {
        return invalid("default_tenant must be 1-64 characters of [A-Za-z0-9_.-]");
    }
    if config.api.max_metrics_per_request == 0 || config.api.max_body_bytes == 0 {
        return invalid("api.max_metrics_per_request and api.max_body_bytes must be positive");
    }
    if config.validation.max_past_ms <= 0 || config.validation.max_future_ms < 0 {
        return invalid("validation.max_past_ms must be positive and max_future_ms not negative");
    }
    if config.tls.cert_path.is_some() != config.tls.key_path.is_some() {
        return invalid("tls.cert_path and tls.key_path must be set together");
    }
    if config.lifecycle.drain_delay() >= config.lifecycle.grace_period.get() {
        return invalid("lifecycle.drain_delay must be shorter than lifecycle.grace_period");
    }
    let server = &config.server;
    if server.max_connections == 0
        || [
            server.header_read_timeout,
            server.body_read_timeout,
            server.write_timeout,
        ]
        .iter()
        .any(|timeout| timeout.get().is_zero())
    {
        return invalid(
            "server.max_connections, header_read_timeout, body_read_timeout and write_timeout must be positive",
        );
    }
    config.limits.validate().map_err(ConfigError::Invalid)?;
    config.promql.validate().map_err(ConfigError::Invalid)?;
    if config.plugins.max_concurrent_calls == 0
        || config.plugins.max_concurrent_calls_per_tenant == 0
    {
        return invalid(
            "plugins.max_concurrent_calls and plugins.max_concurrent_calls_per_tenant must be positive",
        );
    }
    let plugins = &config.plugins;
    if plugins.max_concurrent_compiles == 0
        || plugins.max_plugin_bytes == 0
        || plugins.memory_budget_per_tenant_bytes == 0
    {
        return invalid(
            "plugins.max_concurrent_compiles, plugins.max_plugin_bytes and plugins.memory_budget_per_tenant_bytes must be positive",
        );
    }
    if plugins.max_plugin_bytes > crate::plugins::runtime::MAX_PLUGIN_BYTES as u64 {
        return Err(ConfigError::Invalid(format!(
            "plugins.max_plugin_bytes may be at most {} bytes",
            crate::plugins::runtime::MAX_PLUGIN_BYTES
        )));
    }
    if plugins.memory_budget_bytes < plugins.memory_budget_per_tenant_bytes {
        return invalid(
            "plugins.memory_budget_bytes must be at least plugins.memory_budget_per_tenant_bytes",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_overrides_win_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("luminate.toml");
        std::fs::write(
            &path,
            "data_dir = \"/var/lib/x\"\n[api]\nmax_metrics_per_request = 5\n[retention]\nperiod = \"7d\"\n",
        )
        .unwrap();
        let mut o = Overrides::default();
        o.set("data_dir", "/override");
        let c = load(Some(&path), &o).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/override"));
        assert_eq!(c.api.max_metrics_per_request, 5);
        assert_eq!(c.retention.period.unwrap().as_millis_i64(), 7 * 86_400_000);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "listn = \"x\"\n").unwrap();
        assert!(load(Some(&path), &Overrides::default()).is_err());
        std::fs::write(&path, "[retention]\nperiod = \"forever\"\n").unwrap();
        let err = load(Some(&path), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("forever"), "{err}");
    }

    #[test]
    fn server_limits_and_metrics_listener_read_from_toml() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("luminate.toml");
        std::fs::write(
            &path,
            "[server]\nheader_read_timeout = \"2s\"\nmax_connections = 8\n[telemetry]\nmetrics_listen = \"off\"\n",
        )
        .unwrap();
        let c = load(Some(&path), &Overrides::default()).unwrap();
        assert_eq!(c.server.header_read_timeout.get().as_secs(), 2);
        assert_eq!(c.server.max_connections, 8);
        assert_eq!(c.telemetry.metrics_listen, super::super::MetricsListen::Off);
        let mut o = Overrides::default();
        o.set("telemetry.metrics_listen", "0.0.0.0:9999");
        let c = load(None, &o).unwrap();
        assert_eq!(c.telemetry.metrics_listen.address().unwrap().port(), 9999);
        o.set("server.max_connections", 0);
        let err = load(None, &o).unwrap_err().to_string();
        assert!(err.contains("server.max_connections"), "{err}");
    }
}
