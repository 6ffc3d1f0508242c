//! Plugin log lines → the server's `tracing` log, tagged with the plugin's
//! name and version, truncated, and rate-limited so a chatty plugin cannot
//! flood the log.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::wit::LogLevel;

/// Longest plugin log message kept, in bytes.
const MAX_MESSAGE_BYTES: usize = 1024;
/// Most lines one call may log.
const MAX_LINES_PER_CALL: u32 = 32;

/// Lines per second one plugin version may log across all its calls.
#[derive(Debug)]
pub struct LogBudget {
    per_second: u64,
    /// `second << 32 | lines logged in that second`.
    window: AtomicU64,
    dropped: AtomicU64,
}

impl LogBudget {
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second: u64::from(per_second),
            window: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn try_take(&self) -> bool {
        let second = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() & 0xFFFF_FFFF)
            .unwrap_or(0);
        let mut current = self.window.load(Ordering::Relaxed);
        loop {
            let (window_second, used) = (current >> 32, current & 0xFFFF_FFFF);
            let next = if window_second == second {
                if used >= self.per_second {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
                current + 1
            } else {
                (second << 32) | 1
            };
            match self.window.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }
}

/// One call's logger.
pub struct PluginLogger {
    plugin: Arc<str>,
    version: Arc<str>,
    budget: Arc<LogBudget>,
    lines_left: u32,
    /// Dry runs return what the plugin logged to the caller.
    captured: Option<Vec<(LogLevel, String)>>,
}

impl PluginLogger {
    pub fn new(plugin: Arc<str>, version: Arc<str>, budget: Arc<LogBudget>) -> Self {
        Self {
            plugin,
            version,
            budget,
            lines_left: MAX_LINES_PER_CALL,
            captured: None,
        }
    }

    pub fn capturing(mut self) -> Self {
        self.captured = Some(Vec::new());
        self
    }

    pub fn take_captured(&mut self) -> Vec<(LogLevel, String)> {
        self.captured.take().unwrap_or_default()
    }

    pub fn log(&mut self, level: LogLevel, message: &str) {
        if self.lines_left == 0 {
            self.budget.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.lines_left -= 1;
        let message = truncate(message, MAX_MESSAGE_BYTES);
        if let Some(captured) = &mut self.captured {
            captured.push((level, message.to_owned()));
        }
        if !self.budget.try_take() {
            return;
        }
        let (plugin, version) = (&*self.plugin, &*self.version);
        match level {
            LogLevel::Trace => tracing::trace!(target: "plugin", plugin, version, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "plugin", plugin, version, "{message}"),
            LogLevel::Info => tracing::info!(target: "plugin", plugin, version, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "plugin", plugin, version, "{message}"),
            LogLevel::Error => tracing::error!(target: "plugin", plugin, version, "{message}"),
        }
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_refuses_lines_past_the_per_second_limit() {
        let budget = LogBudget::new(3);
        let taken = (0..10).filter(|_| budget.try_take()).count();
        // A second boundary may fall inside the loop; then at most 6 pass.
        assert!((3..=6).contains(&taken), "{taken}");
        assert!(budget.dropped() >= 4);
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
