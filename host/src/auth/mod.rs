//! Authentication: JWT verification, claims and scopes (issue 3).
