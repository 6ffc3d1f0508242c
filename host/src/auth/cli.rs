//! The command-line faces of auth: `luminate token` and the `serve --dev`
//! banner. main.rs parses the command line; these do the work.

use std::net::SocketAddr;
use std::time::Duration;

use super::Scopes;
use super::config::AuthConfig;
use super::mint::{MintError, TokenSpec, mint_hs256, random_secret};
use crate::model::{TenantId, parse_duration_ms};

/// `luminate token --tenant T --scopes read,write [--tier pro] [--ttl 1h]`
#[derive(Clone, Debug, clap::Args)]
pub struct TokenArgs {
    /// The tenant the token acts for.
    #[arg(long)]
    pub tenant: String,
    /// Comma-separated scopes: read, write, admin.
    #[arg(long, default_value = "read,write")]
    pub scopes: String,
    /// Quota tier (a name in `limits.tiers`); omitted = the default tier.
    #[arg(long)]
    pub tier: Option<String>,
    /// Optional organisation id claim.
    #[arg(long)]
    pub org_id: Option<String>,
    /// Lifetime, e.g. 15m, 1h, 30d.
    #[arg(long, default_value = "1h")]
    pub ttl: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenCommandError {
    #[error("--tenant: {0}")]
    Tenant(String),
    #[error("--scopes: {0}")]
    Scopes(String),
    #[error("--ttl: {0}")]
    Ttl(String),
    #[error(transparent)]
    Mint(#[from] MintError),
}

impl TokenArgs {
    pub fn spec(&self) -> Result<TokenSpec, TokenCommandError> {
        let tenant =
            TenantId::new(&self.tenant).map_err(|e| TokenCommandError::Tenant(e.to_string()))?;
        let scopes = Scopes::parse_list(&self.scopes).map_err(TokenCommandError::Scopes)?;
        if scopes == Scopes::NONE {
            return Err(TokenCommandError::Scopes(
                "at least one scope is needed".into(),
            ));
        }
        let ttl_ms =
            parse_duration_ms(&self.ttl).map_err(|e| TokenCommandError::Ttl(e.to_string()))?;
        Ok(TokenSpec {
            tenant,
            scopes,
            tier: self.tier.clone(),
            org_id: self.org_id.clone(),
            ttl: Duration::from_millis(ttl_ms as u64),
        })
    }
}

/// Runs `luminate token`: the token, to print on stdout.
pub fn token_command(config: &AuthConfig, args: &TokenArgs) -> Result<String, TokenCommandError> {
    Ok(mint_hs256(config, &args.spec()?)?)
}

/// Makes `config` usable by `serve --dev`: auth stays on, and without a
/// configured secret a random one is generated for this run.
pub fn prepare_dev(config: &mut AuthConfig) -> bool {
    let generated = config.hs256_secret.is_none();
    if generated {
        config.hs256_secret = Some(random_secret());
    }
    if !config.algorithms.contains(&jsonwebtoken::Algorithm::HS256) {
        config.algorithms.push(jsonwebtoken::Algorithm::HS256);
    }
    generated
}

/// The text `serve --dev` prints: a token for tenant `dev` with every scope
/// and copy-paste curl commands for a write and a query.
pub fn dev_banner(
    config: &AuthConfig,
    listen: SocketAddr,
    secret_generated: bool,
) -> Result<String, MintError> {
    let spec = TokenSpec {
        tenant: TenantId::new("dev").unwrap_or_else(|_| unreachable!("`dev` is a valid tenant id")),
        scopes: Scopes::all(),
        tier: None,
        org_id: None,
        ttl: Duration::from_secs(24 * 3600),
    };
    let token = mint_hs256(config, &spec)?;
    let host = if listen.ip().is_unspecified() {
        format!("127.0.0.1:{}", listen.port())
    } else {
        listen.to_string()
    };
    let secret_note = if secret_generated {
        "a random HS256 secret for this run (set LUMINATE_JWT_HS256_SECRET to keep tokens valid across restarts)"
    } else {
        "the configured HS256 secret"
    };
    Ok(format!(
        r#"
Luminate is running in development mode, signing with {secret_note}.

Token for tenant "dev" (scopes read, write, admin; valid 24 h):

  export LUMINATE_TOKEN={token}

Write a metric:

  curl -s -X POST http://{host}/api/v1/write \
    -H "Authorization: Bearer $LUMINATE_TOKEN" -H 'Content-Type: application/json' \
    -d '{{"metrics":[{{"name":"api_latency","value":0.142,"dimensions":{{"endpoint":"/api/query"}}}}]}}'

Query it:

  curl -s -X POST http://{host}/api/v1/query \
    -H "Authorization: Bearer $LUMINATE_TOKEN" -H 'Content-Type: application/json' \
    -d '{{"queryType":"aggregate","metricName":"api_latency","aggregation":"p95","timeRange":{{"relative":"1h"}},"groupBy":["endpoint"]}}'

More tokens: luminate token --tenant acme --scopes read,write --ttl 1h
"#
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Verifier;

    #[test]
    fn dev_mode_generates_a_secret_and_a_working_token() {
        let mut config = AuthConfig::default();
        assert!(prepare_dev(&mut config));
        let banner = dev_banner(&config, "0.0.0.0:8080".parse().unwrap(), true).unwrap();
        let token = banner
            .lines()
            .find_map(|l| l.trim().strip_prefix("export LUMINATE_TOKEN="))
            .unwrap();
        let p = Verifier::from_config(&config)
            .unwrap()
            .verify(token)
            .unwrap();
        assert_eq!(p.tenant.as_str(), "dev");
        assert!(banner.contains("http://127.0.0.1:8080/api/v1/write"));
        assert!(banner.contains("/api/v1/query"));
    }

    #[test]
    fn token_command_validates_its_arguments() {
        let mut config = AuthConfig::default();
        prepare_dev(&mut config);
        let args = |tenant: &str, scopes: &str, ttl: &str| TokenArgs {
            tenant: tenant.into(),
            scopes: scopes.into(),
            tier: Some("pro".into()),
            org_id: None,
            ttl: ttl.into(),
        };
        let token = token_command(&config, &args("acme", "read,write", "1h")).unwrap();
        let p = Verifier::from_config(&config)
            .unwrap()
            .verify(&token)
            .unwrap();
        assert_eq!(
            (p.tenant.as_str(), p.tier.as_deref()),
            ("acme", Some("pro"))
        );
        assert!(matches!(
            token_command(&config, &args("a/b", "read", "1h")),
            Err(TokenCommandError::Tenant(_))
        ));
        assert!(matches!(
            token_command(&config, &args("a", "raed", "1h")),
            Err(TokenCommandError::Scopes(_))
        ));
        assert!(matches!(
            token_command(&config, &args("a", "", "1h")),
            Err(TokenCommandError::Scopes(_))
        ));
        assert!(matches!(
            token_command(&config, &args("a", "read", "forever")),
            Err(TokenCommandError::Ttl(_))
        ));
        assert!(matches!(
            token_command(&AuthConfig::default(), &args("a", "read", "1h")),
            Err(TokenCommandError::Mint(MintError::NoSecret))
        ));
    }
}
