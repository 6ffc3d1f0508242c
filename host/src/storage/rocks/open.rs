//! Opening RocksDB: column families, their tuning, and the state recovered
//! at open (series map, id counters).

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, DBCompressionType, Env, Options,
};

use super::RocksOptions;
use super::keys::{self, CF_INDEX, CF_POINTS, CF_SERIES};
use super::series::{SeriesHash, SeriesRegistry};
use crate::storage::StorageError;

const BOOT_KEY: &[u8] = b"meta/boot";

fn table_options(cache: &Cache, block_size: usize, bloom: bool) -> BlockBasedOptions {
    let mut t = BlockBasedOptions::default();
    t.set_block_cache(cache);
    t.set_block_size(block_size);
    t.set_cache_index_and_filter_blocks(true);
    t.set_pin_l0_filter_and_index_blocks_in_cache(true);
    t.set_format_version(6);
    if bloom {
        t.set_bloom_filter(10.0, false);
    }
    t
}

fn cf_options(opts: &RocksOptions, table: &BlockBasedOptions) -> Options {
    let mut o = Options::default();
    o.set_block_based_table_factory(table);
    o.set_compression_type(DBCompressionType::Lz4);
    o.set_bottommost_compression_type(DBCompressionType::Zstd);
    o.set_level_compaction_dynamic_level_bytes(true);
    o.set_write_buffer_size(opts.write_buffer_bytes / 4);
    o.set_max_write_buffer_number(3);
    o
}

pub fn open_db(path: &Path, opts: &RocksOptions, env: Option<&Env>) -> Result<DB, StorageError> {
    let mut db_opts = Options::default();
    db_opts.create_if_missing(true);
    db_opts.create_missing_column_families(true);
    if let Some(env) = env {
        db_opts.set_env(env);
    }
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get()) as i32;
    db_opts.increase_parallelism(cpus.max(2));
    db_opts.set_max_background_jobs(cpus.clamp(2, 8));
    // One memory budget for all memtables; several writers share the WAL and
    // are group-committed, and pipelining overlaps WAL and memtable work.
    db_opts.set_db_write_buffer_size(opts.write_buffer_bytes);
    db_opts.set_enable_pipelined_write(true);
    // Index memtables fill slowly; without a cap the WAL would be kept alive
    // by them and grow without bound.
    db_opts.set_max_total_wal_size(opts.write_buffer_bytes as u64 * 2);
    db_opts.set_keep_log_file_num(4);
    db_opts.set_max_open_files(1024);

    let cache = Cache::new_lru_cache(opts.block_cache_bytes);
    // Point blocks are a few KB to tens of KB each and are read in full by
    // range scans: large table blocks. Series are fetched by id: bloom.
    let points = cf_options(opts, &table_options(&cache, 64 * 1024, false));
    let index = cf_options(opts, &table_options(&cache, 16 * 1024, false));
    let series = cf_options(opts, &table_options(&cache, 16 * 1024, true));
    let default = cf_options(opts, &table_options(&cache, 4 * 1024, false));
    let cfs = vec![
        ColumnFamilyDescriptor::new(rocksdb::DEFAULT_COLUMN_FAMILY_NAME, default),
        ColumnFamilyDescriptor::new(CF_SERIES, series),
        ColumnFamilyDescriptor::new(CF_INDEX, index),
        ColumnFamilyDescriptor::new(CF_POINTS, points),
    ];
    Ok(DB::open_cf_descriptors(&db_opts, path, cfs)?)
}

/// Bumps and durably stores the boot counter. Block sequence numbers are
/// `boot << 40 | n`, so they never repeat across restarts without having to
/// scan the points to find the last one.
pub fn next_boot(db: &DB) -> Result<u64, StorageError> {
    let prev = match db.get(BOOT_KEY)? {
        Some(v) => keys::read_u64(&v)
            .ok_or_else(|| StorageError::Internal("corrupt boot counter".into()))?,
        None => 0,
    };
    let boot = prev + 1;
    let mut wo = rocksdb::WriteOptions::default();
    wo.set_sync(true);
    db.put_opt(BOOT_KEY, boot.to_be_bytes(), &wo)?;
    Ok(boot)
}

/// Loads every series' hash and id. The key carries the tenant prefix and the
/// value the canonical form, so the hash is recomputed from stored bytes
/// without decoding any string.
pub fn load_series(db: &DB, registry: &SeriesRegistry) -> Result<(), StorageError> {
    let cf = cf(db, CF_SERIES)?;
    let mut it = db.raw_iterator_cf(cf);
    it.seek_to_first();
    let mut buf = Vec::with_capacity(512);
    while let (Some(k), Some(v)) = (it.key(), it.value()) {
        if k.len() < 8 {
            return Err(StorageError::Internal("corrupt series key".into()));
        }
        let (tenant, id) = k.split_at(k.len() - 8);
        let id = keys::read_u64(id).unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(tenant);
        buf.extend_from_slice(v);
        registry.load(SeriesHash::of(&buf), id);
        it.next();
    }
    it.status()?;
    Ok(())
}

pub fn cf<'a>(db: &'a DB, name: &str) -> Result<&'a rocksdb::ColumnFamily, StorageError> {
    db.cf_handle(name)
        .ok_or_else(|| StorageError::Internal(format!("missing column family {name}")))
}
