//! Per-tenant limits: rate limits and cardinality tracking (issue 3).
