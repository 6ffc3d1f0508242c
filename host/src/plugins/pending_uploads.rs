//! New plugin names whose uploads are under way. A new name holds its place
//! under `max_plugins_per_tenant` and `max_plugins` from the count check
//! until its upload ends (installed or refused), so uploads racing for the
//! last place cannot both take it while they compile.

use std::collections::HashSet;
use std::sync::Mutex;

use super::registry::PluginScope;

#[derive(Default)]
pub(super) struct PendingUploads {
    names: Mutex<HashSet<(PluginScope, String)>>,
}

/// What is pending when a new name asks for a place.
pub(super) struct Pending {
    /// New names of the same scope.
    pub in_scope: usize,
    /// New names of every scope.
    pub in_all: usize,
}

impl PendingUploads {
    /// Reserves a place for `(scope, name)` if `admit` allows it given what
    /// else is pending. A name already pending needs no second place.
    pub fn reserve<E>(
        &self,
        scope: &PluginScope,
        name: &str,
        admit: impl FnOnce(Pending) -> Result<(), E>,
    ) -> Result<Reservation<'_>, E> {
        let key = (scope.clone(), name.to_owned());
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if names.contains(&key) {
            return Ok(Reservation {
                pending: self,
                key: None,
            });
        }
        admit(Pending {
            in_scope: names.iter().filter(|(s, _)| s == scope).count(),
            in_all: names.len(),
        })?;
        names.insert(key.clone());
        Ok(Reservation {
            pending: self,
            key: Some(key),
        })
    }

    /// A reservation that holds no place (the name is not new).
    pub fn none(&self) -> Reservation<'_> {
        Reservation {
            pending: self,
            key: None,
        }
    }
}

/// A new name's place, given back when the upload ends.
pub(super) struct Reservation<'a> {
    pending: &'a PendingUploads,
    key: Option<(PluginScope, String)>,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.pending
                .names
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
        }
    }
}
