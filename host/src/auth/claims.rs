//! Strict claim checking. The payload is read as a JSON object and every
//! claim this server relies on is checked for presence and type itself, so
//! a claim of the wrong type is an error naming that claim and never a way
//! around a check (a string `exp` is rejected, not ignored).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{AuthError, Scope, Scopes};
use crate::model::TenantId;

/// Who is calling, as proven by a verified token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub tenant: TenantId,
    pub scopes: Scopes,
    /// The `tier` claim: picks the tenant's quota tier when present.
    pub tier: Option<Arc<str>>,
    pub org_id: Option<Arc<str>>,
    /// The `exp` claim, seconds since the Unix epoch.
    pub expires_at: u64,
}

impl Principal {
    pub fn require(&self, scope: Scope) -> Result<(), AuthError> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(AuthError::MissingScope(scope))
        }
    }
}

/// The checks applied to a token's claims after its signature verified.
#[derive(Clone, Debug)]
pub struct ClaimsPolicy {
    /// Allowed clock skew for `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// When set, `iss` is required and must equal it.
    pub issuer: Option<String>,
    /// When set, `aud` is required and must be or contain it.
    pub audience: Option<String>,
}

impl ClaimsPolicy {
    /// Checks `claims` at time `now` (seconds since the epoch).
    pub fn check(&self, claims: &Map<String, Value>, now: u64) -> Result<Principal, AuthError> {
        let exp = numeric_date(claims, "exp")?.ok_or(AuthError::MissingClaim("exp"))?;
        if now > exp.saturating_add(self.leeway_secs) {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = numeric_date(claims, "nbf")?
            && nbf > now.saturating_add(self.leeway_secs)
        {
            return Err(AuthError::NotYetValid);
        }
        if let Some(expected) = &self.issuer {
            match claims.get("iss") {
                None | Some(Value::Null) => return Err(AuthError::MissingClaim("iss")),
                Some(Value::String(iss)) if iss == expected => {}
                Some(Value::String(_)) => return Err(AuthError::WrongIssuer),
                Some(_) => return Err(wrong_type("iss", "a string")),
            }
        }
        if let Some(expected) = &self.audience {
            match claims.get("aud") {
                None | Some(Value::Null) => return Err(AuthError::MissingClaim("aud")),
                Some(Value::String(aud)) if aud == expected => {}
                Some(Value::String(_)) => return Err(AuthError::WrongAudience),
                Some(Value::Array(items)) => {
                    if !items.iter().all(Value::is_string) {
                        return Err(wrong_type("aud", "a string or an array of strings"));
                    }
                    if !items.iter().any(|a| a.as_str() == Some(expected.as_str())) {
                        return Err(AuthError::WrongAudience);
                    }
                }
                Some(_) => return Err(wrong_type("aud", "a string or an array of strings")),
            }
        }

        let tenant = match claims.get("tenant_id") {
            None | Some(Value::Null) => return Err(AuthError::MissingTenant),
            Some(Value::String(id)) if id.is_empty() => return Err(AuthError::MissingTenant),
            Some(Value::String(id)) => TenantId::new(id).map_err(|_| AuthError::InvalidTenant)?,
            Some(_) => return Err(wrong_type("tenant_id", "a string")),
        };
        let scopes = match claims.get("scopes") {
            None | Some(Value::Null) => return Err(AuthError::MissingClaim("scopes")),
            Some(Value::Array(items)) => {
                let mut scopes = Scopes::NONE;
                for item in items {
                    let name = item
                        .as_str()
                        .ok_or_else(|| wrong_type("scopes", "an array of strings"))?;
                    // Scopes of other services may share a token; they grant nothing here.
                    if let Some(scope) = Scope::parse(name) {
                        scopes.insert(scope);
                    }
                }
                scopes
            }
            Some(_) => return Err(wrong_type("scopes", "an array of strings")),
        };
        Ok(Principal {
            tenant,
            scopes,
            tier: optional_string(claims, "tier")?,
            org_id: optional_string(claims, "org_id")?,
            expires_at: exp,
        })
    }
}

fn wrong_type(claim: &'static str, expected: &'static str) -> AuthError {
    AuthError::InvalidClaim { claim, expected }
}

/// A NumericDate (RFC 7519 §2): a non-negative JSON number of seconds;
/// fractions are allowed and truncated. Anything else is a type error.
fn numeric_date(
    claims: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<u64>, AuthError> {
    let expected = "a number of seconds since the epoch (NumericDate)";
    match claims.get(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(secs) = n.as_u64() {
                Ok(Some(secs))
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => {
                        Ok(Some(f as u64))
                    }
                    _ => Err(wrong_type(claim, expected)),
                }
            }
        }
        Some(_) => Err(wrong_type(claim, expected)),
    }
}

fn optional_string(
    claims: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<Arc<str>>, AuthError> {
    match claims.get(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(Arc::from(s.as_str()))),
        Some(_) => Err(wrong_type(claim, "a string")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn policy() -> ClaimsPolicy {
        ClaimsPolicy {
            leeway_secs: 60,
            issuer: None,
            audience: None,
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn base() -> Value {
        json!({"exp": NOW + 3600, "tenant_id": "acme", "scopes": ["read", "write"]})
    }

    fn with(field: &str, value: Value) -> Map<String, Value> {
        let mut c = claims(base());
        c.insert(field.into(), value);
        c
    }

    fn without(field: &str) -> Map<String, Value> {
        let mut c = claims(base());
        c.remove(field);
        c
    }

    #[test]
    fn accepts_a_complete_token() {
        let p = policy().check(&with("tier", json!("pro")), NOW).unwrap();
        assert_eq!(p.tenant.as_str(), "acme");
        assert!(p.scopes.contains(Scope::Read) && p.scopes.contains(Scope::Write));
        assert!(!p.scopes.contains(Scope::Admin));
        assert_eq!(p.tier.as_deref(), Some("pro"));
        assert_eq!(p.expires_at, NOW + 3600);
    }

    #[test]
    fn string_exp_is_a_type_error_not_a_bypass() {
        let err = policy()
            .check(&with("exp", json!("9999999999")), NOW)
            .unwrap_err();
        assert_eq!(err.code(), "invalid_claim");
        assert!(err.to_string().contains("`exp`"), "{err}");
    }

    #[test]
    fn exp_is_required_and_checked_with_leeway() {
        assert_eq!(
            policy().check(&without("exp"), NOW),
            Err(AuthError::MissingClaim("exp"))
        );
        assert_eq!(
            policy().check(&with("exp", Value::Null), NOW),
            Err(AuthError::MissingClaim("exp"))
        );
        assert!(
            policy().check(&with("exp", json!(NOW - 30)), NOW).is_ok(),
            "within leeway"
        );
        assert_eq!(
            policy().check(&with("exp", json!(NOW - 61)), NOW),
            Err(AuthError::Expired)
        );
        assert_eq!(
            policy()
                .check(&with("exp", json!(-5)), NOW)
                .unwrap_err()
                .code(),
            "invalid_claim"
        );
        assert!(
            policy()
                .check(&with("exp", json!((NOW + 10) as f64 + 0.5)), NOW)
                .is_ok()
        );
    }

    #[test]
    fn nbf_in_the_future_is_rejected_beyond_leeway() {
        assert!(policy().check(&with("nbf", json!(NOW + 30)), NOW).is_ok());
        assert_eq!(
            policy().check(&with("nbf", json!(NOW + 61)), NOW),
            Err(AuthError::NotYetValid)
        );
        assert_eq!(
            policy()
                .check(&with("nbf", json!("later")), NOW)
                .unwrap_err()
                .code(),
            "invalid_claim"
        );
    }

    #[test]
    fn issuer_and_audience_are_required_when_configured() {
        let p = ClaimsPolicy {
            issuer: Some("https://idp".into()),
            audience: Some("luminate".into()),
            ..policy()
        };
        let mut ok = claims(base());
        ok.insert("iss".into(), json!("https://idp"));
        ok.insert("aud".into(), json!(["other", "luminate"]));
        assert!(p.check(&ok, NOW).is_ok());

        let mut c = ok.clone();
        c.remove("iss");
        assert_eq!(p.check(&c, NOW), Err(AuthError::MissingClaim("iss")));
        c.insert("iss".into(), json!("https://evil"));
        assert_eq!(p.check(&c, NOW), Err(AuthError::WrongIssuer));
        c.insert("iss".into(), json!(["https://idp"]));
        assert_eq!(p.check(&c, NOW).unwrap_err().code(), "invalid_claim");

        let mut c = ok.clone();
        c.insert("aud".into(), json!("someone-else"));
        assert_eq!(p.check(&c, NOW), Err(AuthError::WrongAudience));
        c.insert("aud".into(), json!([1, 2]));
        assert_eq!(p.check(&c, NOW).unwrap_err().code(), "invalid_claim");
        c.remove("aud");
        assert_eq!(p.check(&c, NOW), Err(AuthError::MissingClaim("aud")));
    }

    #[test]
    fn unconfigured_issuer_and_audience_are_not_checked() {
        let mut c = claims(base());
        c.insert("iss".into(), json!("anyone"));
        c.insert("aud".into(), json!("anything"));
        assert!(policy().check(&c, NOW).is_ok());
    }

    #[test]
    fn tenant_is_required_and_must_be_a_valid_id() {
        assert_eq!(
            policy().check(&without("tenant_id"), NOW),
            Err(AuthError::MissingTenant)
        );
        assert_eq!(
            policy().check(&with("tenant_id", json!("")), NOW),
            Err(AuthError::MissingTenant)
        );
        assert_eq!(
            policy()
                .check(&with("tenant_id", json!(42)), NOW)
                .unwrap_err()
                .code(),
            "invalid_claim"
        );
        assert_eq!(
            policy().check(&with("tenant_id", json!("a/b")), NOW),
            Err(AuthError::InvalidTenant)
        );
    }

    #[test]
    fn scopes_must_be_an_array_of_strings_and_unknown_names_grant_nothing() {
        assert_eq!(
            policy().check(&without("scopes"), NOW),
            Err(AuthError::MissingClaim("scopes"))
        );
        assert_eq!(
            policy()
                .check(&with("scopes", json!("read write")), NOW)
                .unwrap_err()
                .code(),
            "invalid_claim"
        );
        assert_eq!(
            policy()
                .check(&with("scopes", json!(["read", 1])), NOW)
                .unwrap_err()
                .code(),
            "invalid_claim"
        );
        let p = policy()
            .check(&with("scopes", json!(["billing:admin", "read"])), NOW)
            .unwrap();
        assert_eq!(p.scopes, [Scope::Read].into_iter().collect());
    }

    #[test]
    fn optional_claims_must_be_strings_when_present() {
        assert_eq!(
            policy()
                .check(&with("tier", json!(3)), NOW)
                .unwrap_err()
                .code(),
            "invalid_claim"
        );
        assert_eq!(
            policy()
                .check(&with("org_id", json!({})), NOW)
                .unwrap_err()
                .code(),
            "invalid_claim"
        );
        let p = policy()
            .check(&with("org_id", json!("org-7")), NOW)
            .unwrap();
        assert_eq!(p.org_id.as_deref(), Some("org-7"));
        assert_eq!(p.tier, None);
    }
}
