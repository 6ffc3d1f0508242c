//! Regex filter patterns: the size, syntax and portability checks, then
//! matching, on arbitrary text. The first line is the pattern, the rest the
//! value matched against it.
//!
//! Beyond "never panics": an accepted pattern stays anchored at both ends
//! in the text the backends run (no `x)|(?:.*` escape), and anchoring only
//! narrows what it matches.

#![no_main]

use libfuzzer_sys::fuzz_target;
use luminate_host::model::{AnchoredRegex, RegexLimits};

#[path = "../support/anchoring.rs"]
mod anchoring;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, value) = text.split_once('\n').unwrap_or((text, ""));
    let limits = RegexLimits {
        max_pattern_bytes: 1024,
    };
    let Ok(regex) = AnchoredRegex::new(pattern.to_owned(), &limits) else {
        return;
    };
    anchoring::assert_anchored(&regex);
    if regex.is_match(value) {
        // A whole-value match is a match somewhere in the value too:
        // anchoring only ever narrows what the pattern matches.
        let unanchored = regex::Regex::new(pattern).expect("the pattern compiled anchored");
        assert!(
            unanchored.is_match(value),
            "{pattern:?} matches all of {value:?} anchored but nothing in it unanchored"
        );
    }
});
