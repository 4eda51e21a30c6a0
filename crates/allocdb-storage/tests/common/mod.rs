//! Shared helpers for the storage integration tests: a small configuration, deterministic
//! records, and recovery that collects what it replays.
//!
//! Every record's slot and payload derive from its lsn, so a test can check that a recovered
//! record is exactly the one written, not merely one with the right lsn.

#![allow(dead_code, reason = "each test file uses a subset of the helpers")]

use std::convert::Infallible;

use allocdb_storage::{
    LogDirectory, LogRecord, Lsn, RecordKind, Recovery, RecoveryError, RecoveryReport, ReplayError,
    SimDirectory, Slot, SnapshotImage, Storage, StorageConfig,
};

/// Small segments so a few dozen records span several of them.
pub fn config() -> StorageConfig {
    StorageConfig {
        segment_size_bytes: 512,
        payload_size_bytes_max: 64,
        buffer_size_bytes_max: 2048,
        snapshot_size_bytes_max: 1 << 20,
        ..StorageConfig::default()
    }
}

/// A record owned by the test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedRecord {
    pub lsn: Lsn,
    pub slot: Slot,
    pub kind: RecordKind,
    pub payload: Vec<u8>,
}

impl OwnedRecord {
    pub fn borrow(&self) -> LogRecord<'_> {
        LogRecord { lsn: self.lsn, slot: self.slot, kind: self.kind, payload: &self.payload }
    }
}

/// The record the tests write at `lsn`: slots rise every third record, payload sizes vary.
pub fn record(lsn: Lsn) -> OwnedRecord {
    let filler = "x".repeat(usize::try_from(lsn % 7).unwrap());
    OwnedRecord {
        lsn,
        slot: 100 + lsn / 3,
        kind: RecordKind(u8::try_from(lsn % 3).unwrap() + 1),
        payload: format!("batch-{lsn:04}{filler}").into_bytes(),
    }
}

/// The records the tests write for `lsns`.
pub fn records(lsns: std::ops::RangeInclusive<Lsn>) -> Vec<OwnedRecord> {
    lsns.map(record).collect()
}

/// Everything a recovery produced.
pub struct Recovered<D: LogDirectory> {
    pub storage: Storage<D>,
    pub report: RecoveryReport,
    pub snapshot: Option<SnapshotImage>,
    pub records: Vec<OwnedRecord>,
}

/// Recovers `directory`, collecting the snapshot and every replayed record.
pub fn try_recover<D: LogDirectory>(
    directory: D,
    config: StorageConfig,
) -> Result<Recovered<D>, ReplayError<Infallible>> {
    let recovery = Recovery::open(directory, config)?;
    let snapshot = recovery.snapshot().cloned();
    let mut replayed = Vec::new();
    let (storage, report) = recovery.replay(|record| {
        replayed.push(OwnedRecord {
            lsn: record.lsn,
            slot: record.slot,
            kind: record.kind,
            payload: record.payload.to_vec(),
        });
        Ok::<(), Infallible>(())
    })?;
    Ok(Recovered { storage, report, snapshot, records: replayed })
}

/// Recovers a simulated directory with the test configuration, or panics with the error.
pub fn recover(directory: &SimDirectory) -> Recovered<SimDirectory> {
    match try_recover(directory.clone(), config()) {
        Ok(recovered) => recovered,
        Err(error) => panic!("recovery failed: {error}"),
    }
}

/// The storage error of a recovery expected to fail.
pub fn recovery_error(directory: &SimDirectory) -> RecoveryError {
    match try_recover(directory.clone(), config()) {
        Ok(recovered) => panic!("recovery succeeded with report {:?}", recovered.report),
        Err(ReplayError::Recovery(error)) => error,
        Err(ReplayError::Visitor { source, .. }) => match source {},
    }
}

/// Appends `lsns` in one group commit.
pub fn append_and_sync<D: LogDirectory>(storage: &mut Storage<D>, lsns: std::ops::RangeInclusive<Lsn>) {
    for lsn in lsns {
        storage.append(record(lsn).borrow()).unwrap();
    }
    storage.flush_and_sync().unwrap();
}

/// Appends `lsns`, one group commit each.
pub fn append_each_and_sync<D: LogDirectory>(storage: &mut Storage<D>, lsns: std::ops::RangeInclusive<Lsn>) {
    for lsn in lsns {
        append_and_sync(storage, lsn..=lsn);
    }
}

/// A fresh simulated directory holding records `1..=last_lsn`, each synced on its own.
pub fn directory_with_records(last_lsn: Lsn) -> SimDirectory {
    let directory = SimDirectory::new();
    let mut storage = recover(&directory).storage;
    append_each_and_sync(&mut storage, 1..=last_lsn);
    directory
}

/// Snapshot bytes standing in for a kernel snapshot taken at `lsn`.
pub fn snapshot_payload(lsn: Lsn) -> Vec<u8> {
    format!("kernel state after lsn {lsn}").into_bytes()
}

pub use allocdb_storage::SPARE_SEGMENT_NAME;

/// Durable segment names, sorted.
pub fn segment_names(directory: &SimDirectory) -> Vec<String> {
    directory
        .file_names()
        .into_iter()
        .filter(|name| name.starts_with("log-") && name != SPARE_SEGMENT_NAME)
        .collect()
}

/// Byte offset of the frame of `lsn` inside its segment, given that segment's first lsn.
pub fn frame_offset(segment_first_lsn: Lsn, lsn: Lsn) -> u64 {
    (segment_first_lsn..lsn).map(frame_size).sum()
}

/// Size of the frame of the test record at `lsn`.
pub fn frame_size(lsn: Lsn) -> u64 {
    allocdb_storage::frame_size_bytes(u32::try_from(record(lsn).payload.len()).unwrap())
}

/// The encoded frame of the test record at `lsn`.
pub fn encoded_frame(lsn: Lsn) -> Vec<u8> {
    let mut bytes = Vec::new();
    allocdb_storage::encode_frame(&record(lsn).borrow(), &mut bytes);
    bytes
}

/// Length of `bytes` up to and including its last non-zero byte: what recovery can see of a
/// torn write, since a written zero and an unwritten byte look the same.
pub fn visible_size(bytes: &[u8]) -> u64 {
    bytes.iter().rposition(|byte| *byte != 0).map_or(0, |index| index as u64 + 1)
}

/// The first lsn in a segment's name (`log-<20 digits>.seg`).
pub fn segment_first_lsn(name: &str) -> Lsn {
    name.strip_prefix("log-").and_then(|rest| rest.strip_suffix(".seg")).unwrap().parse().unwrap()
}
