//! End-to-end tests of the HTTP API over loopback (filled in by the foundation work).
