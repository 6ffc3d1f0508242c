//! Shared by the regex-reading targets.

use luminate_host::model::AnchoredRegex;
use regex_syntax::hir::Look;

/// The text every backend runs (`^(?:pattern)$`) must match only whole
/// values: every way through it starts at `^` and ends at `$`. A pattern
/// that closed the wrapper's group (`x)|(?:.*`) would make an alternation
/// with an unanchored branch, and lose one of these.
pub fn assert_anchored(regex: &AnchoredRegex) {
    let anchored = regex.anchored();
    let hir = match regex_syntax::parse(&anchored) {
        Ok(hir) => hir,
        Err(e) => panic!(
            "accepted pattern {:?} wraps into unparsable {anchored:?}: {e}",
            regex.pattern()
        ),
    };
    let properties = hir.properties();
    assert!(
        properties.look_set_prefix().contains(Look::Start),
        "{anchored:?} can match without starting at the value's start"
    );
    assert!(
        properties.look_set_suffix().contains(Look::End),
        "{anchored:?} can match without ending at the value's end"
    );
}
