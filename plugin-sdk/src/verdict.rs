use std::fmt;

/// A validator's decision about one metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The metric passes this plugin's policy.
    Accept,
    /// The metric breaks the policy; the reason is shown to the client
    /// next to the metric's index in the batch.
    Reject(String),
}

impl Verdict {
    /// Rejects with a reason meant for the client who sent the metric.
    pub fn reject(reason: impl Into<String>) -> Self {
        Verdict::Reject(reason.into())
    }

    pub fn is_accept(&self) -> bool {
        matches!(self, Verdict::Accept)
    }

    /// The rejection reason, if rejected.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Accept => None,
            Verdict::Reject(reason) => Some(reason),
        }
    }
}

/// The plugin itself failed, as opposed to rejecting input: the server then
/// applies the binding's failure policy (`fail-open` accepts the batch,
/// `fail-closed` rejects it naming the plugin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginError {
    /// The params given to the plugin are unusable.
    InvalidConfig(String),
    /// Anything else that went wrong inside the plugin.
    Failed(String),
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginError::InvalidConfig(message) => write!(f, "invalid config: {message}"),
            PluginError::Failed(message) => write!(f, "plugin failed: {message}"),
        }
    }
}

impl std::error::Error for PluginError {}
