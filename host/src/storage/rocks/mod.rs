//! The embedded RocksDB backend (filled in by the storage work).
