//! What a token allows. Scopes are independent: `admin` does not imply
//! `write` or `read`, so a token can be given exactly the power it needs
//! (least privilege: a retention job needs `admin`, not `write`).

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `POST /api/v1/write`.
    Write,
    /// Query, discovery and cardinality endpoints.
    Read,
    /// Retention, deletion and plugin management within the tenant.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Write => "write",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        match name {
            "write" => Some(Scope::Write),
            "read" => Some(Scope::Read),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }

    fn bit(self) -> u8 {
        match self {
            Scope::Write => 1,
            Scope::Read => 2,
            Scope::Admin => 4,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes; a copyable bit set so checking one costs nothing.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

impl Scopes {
    pub const NONE: Scopes = Scopes(0);

    pub fn all() -> Self {
        Scope::ALL.into_iter().collect()
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn insert(&mut self, scope: Scope) {
        self.0 |= scope.bit();
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// Parses `read,write` (the CLI form). Unknown names are an error here,
    /// unlike in tokens, because a typo on the command line should not
    /// silently mint a weaker token.
    pub fn parse_list(list: &str) -> Result<Self, String> {
        let mut scopes = Scopes::NONE;
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let scope = Scope::parse(name)
                .ok_or_else(|| format!("unknown scope {name:?}; expected read, write or admin"))?;
            scopes.insert(scope);
        }
        Ok(scopes)
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<T: IntoIterator<Item = Scope>>(iter: T) -> Self {
        let mut scopes = Scopes::NONE;
        for scope in iter {
            scopes.insert(scope);
        }
        scopes
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(Scope::as_str))
            .finish()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_independent() {
        let admin: Scopes = [Scope::Admin].into_iter().collect();
        assert!(admin.contains(Scope::Admin));
        assert!(!admin.contains(Scope::Write));
        assert!(!admin.contains(Scope::Read));
    }

    #[test]
    fn cli_list_parses_and_rejects_typos() {
        let s = Scopes::parse_list("read, write").unwrap();
        assert!(s.contains(Scope::Read) && s.contains(Scope::Write) && !s.contains(Scope::Admin));
        assert!(
            Scopes::parse_list("read,wirte")
                .unwrap_err()
                .contains("wirte")
        );
        assert_eq!(Scopes::all().to_string(), "read write admin");
    }
}
