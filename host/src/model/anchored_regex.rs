//! A client's regular expression, checked and anchored.
//!
//! Filters match whole values, so a pattern `P` runs as `^(?:P)$`, here and
//! in ClickHouse's `match()`. Wrapping text is only safe when `P` is one
//! complete expression: `x)|(?:.*` would otherwise close the group early
//! and match any value ending anywhere. So `P` is parsed on its own first,
//! and syntax whose structure RE2 reads differently from Rust (nested
//! classes, class set operations, the `x` flag with its `#` comments) is
//! refused, so both backends see the same anchored expression.
//!
//! The pattern's length is checked before anything parses it, and the
//! compiled program is bounded, so a pattern's cost is known in advance.
//! Compiling still takes up to milliseconds: callers run it off the async
//! workers. Error messages name the position, never echo the pattern.

use std::fmt;

use regex::Regex;
use regex_syntax::ast::{self, Ast, ClassSetBinaryOp, ClassSetItem, Flag, FlagsItemKind};

/// Bounds on one regex filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegexLimits {
    /// Longest pattern, in bytes (`query.max_regex_bytes`).
    pub max_pattern_bytes: usize,
}

impl Default for RegexLimits {
    fn default() -> Self {
        Self {
            max_pattern_bytes: 4096,
        }
    }
}

/// Largest compiled program and lazy-DFA cache of one filter. A 4 KiB
/// pattern of ordinary shape compiles to a few KiB; these stop counted
/// repetitions (`(a{100}){100}`) from multiplying it.
const MAX_COMPILED_BYTES: usize = 1 << 20;
const MAX_DFA_BYTES: usize = 1 << 20;
/// Deepest group nesting; real filters nest a few levels.
const MAX_NESTING: u32 = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegexError {
    #[error("the regular expression is {len} bytes; the limit is {max} (query.max_regex_bytes)")]
    TooLong { len: usize, max: usize },
    #[error("invalid regular expression at byte {offset}: {reason}")]
    Syntax { offset: usize, reason: String },
    #[error("the regular expression uses {0}, which not every storage backend supports")]
    Unsupported(&'static str),
    #[error(
        "the regular expression compiles to more than {MAX_COMPILED_BYTES} bytes; simplify it (fewer or smaller counted repetitions, narrower classes)"
    )]
    TooComplex,
}

/// `^(?:pattern)$`, compiled; `pattern` is the client's text.
#[derive(Clone)]
pub struct AnchoredRegex {
    pattern: String,
    regex: Regex,
}

impl fmt::Debug for AnchoredRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AnchoredRegex").field(&self.pattern).finish()
    }
}

impl AnchoredRegex {
    pub fn new(pattern: String, limits: &RegexLimits) -> Result<Self, RegexError> {
        if pattern.len() > limits.max_pattern_bytes {
            return Err(RegexError::TooLong {
                len: pattern.len(),
                max: limits.max_pattern_bytes,
            });
        }
        let parsed = ast::parse::ParserBuilder::new()
            .nest_limit(MAX_NESTING)
            .build()
            .parse(&pattern)
            .map_err(|e| RegexError::Syntax {
                offset: e.span().start.offset,
                reason: e.kind().to_string(),
            })?;
        ast::visit(&parsed, PortableSyntax)?;
        regex_syntax::hir::translate::Translator::new()
            .translate(&pattern, &parsed)
            .map_err(|e| RegexError::Syntax {
                offset: e.span().start.offset,
                reason: e.kind().to_string(),
            })?;
        let regex = regex::RegexBuilder::new(&Self::wrap(&pattern))
            .size_limit(MAX_COMPILED_BYTES)
            .dfa_size_limit(MAX_DFA_BYTES)
            .nest_limit(MAX_NESTING + 1)
            .build()
            .map_err(|e| match e {
                regex::Error::CompiledTooBig(_) => RegexError::TooComplex,
                other => RegexError::Syntax {
                    offset: 0,
                    reason: other.to_string().chars().take(200).collect(),
                },
            })?;
        Ok(Self { pattern, regex })
    }

    /// The anchored text every backend runs. Safe because the pattern
    /// parsed as one complete expression on its own.
    pub fn wrap(pattern: &str) -> String {
        format!("^(?:{pattern})$")
    }

    /// The client's pattern, unanchored.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The anchored text: what ClickHouse's `match()` receives.
    pub fn anchored(&self) -> String {
        Self::wrap(&self.pattern)
    }

    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }

    /// The groups of a whole-value match (PromQL's `label_replace`).
    pub fn captures<'h>(&self, value: &'h str) -> Option<regex::Captures<'h>> {
        self.regex.captures(value)
    }
}

/// Refuses syntax Rust's regex and RE2 structure differently.
struct PortableSyntax;

impl ast::Visitor for PortableSyntax {
    type Output = ();
    type Err = RegexError;

    fn finish(self) -> Result<(), RegexError> {
        Ok(())
    }

    fn visit_pre(&mut self, ast: &Ast) -> Result<(), RegexError> {
        let flags = match ast {
            Ast::Flags(set) => Some(&set.flags),
            Ast::Group(group) => match &group.kind {
                ast::GroupKind::NonCapturing(flags) => Some(flags),
                _ => None,
            },
            _ => None,
        };
        let verbose = flags.is_some_and(|flags| {
            flags
                .items
                .iter()
                .any(|item| matches!(item.kind, FlagsItemKind::Flag(Flag::IgnoreWhitespace)))
        });
        if verbose {
            return Err(RegexError::Unsupported("the x (verbose) flag"));
        }
        Ok(())
    }

    fn visit_class_set_item_pre(&mut self, item: &ClassSetItem) -> Result<(), RegexError> {
        if matches!(item, ClassSetItem::Bracketed(_)) {
            return Err(RegexError::Unsupported(
                "a nested character class (escape '[' inside a class as '\\[')",
            ));
        }
        Ok(())
    }

    fn visit_class_set_binary_op_pre(&mut self, _: &ClassSetBinaryOp) -> Result<(), RegexError> {
        Err(RegexError::Unsupported(
            "a character class operation (&&, -- or ~~)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchored(pattern: &str) -> Result<AnchoredRegex, RegexError> {
        AnchoredRegex::new(pattern.to_owned(), &RegexLimits::default())
    }

    #[test]
    fn matches_whole_values_only() {
        let re = anchored("api.*").unwrap();
        assert!(re.is_match("api/v1"));
        assert!(!re.is_match("xapi"));
        let alternation = anchored("a|b").unwrap();
        assert!(alternation.is_match("b"));
        assert!(!alternation.is_match("ab"));
    }

    #[test]
    fn a_pattern_cannot_close_the_anchoring_group() {
        for escape in ["x)|(?:.*", ".*)|(.*", ")", "a)|.*|(b"] {
            let err = anchored(escape).unwrap_err();
            assert!(matches!(err, RegexError::Syntax { .. }), "{escape}: {err}");
        }
    }

    #[test]
    fn syntax_re2_reads_differently_is_refused() {
        // RE2 reads `[[a]` as a class of `[` and `a`, so the `)` after it would
        // close ClickHouse's anchoring group.
        for pattern in [
            "[[a]x)|(?:.*]",
            "[a-z&&[^aeiou]]",
            "[a--b]",
            "(?x)a#)|(?:.*",
        ] {
            let err = anchored(pattern).unwrap_err();
            assert!(
                matches!(err, RegexError::Unsupported(_)),
                "{pattern}: {err}"
            );
        }
        assert!(anchored("[\\[\\]a-z]+").is_ok());
        assert!(anchored("[[:alpha:]]+").is_ok());
    }

    #[test]
    fn length_is_checked_before_parsing_and_not_echoed() {
        let huge = "(".repeat(10_000);
        let err = anchored(&huge).unwrap_err();
        assert_eq!(
            err,
            RegexError::TooLong {
                len: 10_000,
                max: 4096
            }
        );
        let broken = format!("{}(", "a".repeat(4000));
        let message = anchored(&broken).unwrap_err().to_string();
        assert!(message.len() < 200, "{message}");
        assert!(message.contains("at byte"), "{message}");
    }

    #[test]
    fn compiled_size_is_bounded() {
        assert_eq!(
            anchored("(?:\\w{100}){100}").unwrap_err(),
            RegexError::TooComplex
        );
        let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert!(matches!(
            anchored(&deep).unwrap_err(),
            RegexError::Syntax { .. }
        ));
    }
}
