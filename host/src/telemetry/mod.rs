//! Self-observability: Prometheus metrics and structured logs (issue 6).
