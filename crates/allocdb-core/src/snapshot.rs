//! Snapshot encoding and restore: the whole kernel state as deterministic bytes.
//!
//! The layout is specified byte by byte in `docs/snapshot-format.md`; this module implements
//! version 1. All integers are little-endian and fixed-width. The encoding is canonical — a
//! function of the applied command sequence only, not of table layout: resources are sorted by
//! id, leases by lsn, operation records by lsn, so two kernels that applied the same log encode
//! to identical bytes (the state digest compares exactly that).
//!
//! Decoding trusts nothing: every read checks the bytes remaining, every count is checked
//! against the bytes present and against the target capacity before anything is allocated, and
//! the restored kernel must pass the full invariant checker before it is returned.

#![deny(clippy::indexing_slicing)]

use std::collections::BTreeMap;

use crate::command::LogPosition;
use crate::config::{BUNDLE_SIZE_LIMIT, KernelConfig};
use crate::hash::Fingerprint;
use crate::ids::{ClientId, HolderId, Lsn, OperationId, OperationKey, ResourceId, SLOT_MAX};
use crate::kernel::Kernel;
use crate::lease_table::{LeasePosition, NONE, NewLease};
use crate::operation_table::OperationRecord;
use crate::resource_table::{Probe, ResourcePosition};
use crate::result::ResultCode;
use crate::state::{LeaseState, ResourceState};

/// First eight bytes of every snapshot.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"ALDBSNAP";
/// The format version this build writes and reads.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;
/// Bytes of the fixed header.
pub const SNAPSHOT_HEADER_SIZE_BYTES: usize = 32;

const RESOURCE_RECORD_SIZE_BYTES: u64 = 16 + 1 + 8 + 8;
const LEASE_RECORD_SIZE_BYTES_MIN: u64 = 8 + 16 + 1 + 8 * 4 + 4 + 16;
const OPERATION_RECORD_SIZE_BYTES: u64 = 16 + 16 + 8 * 3 + 1 + 1;

/// Why snapshot bytes were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Fewer bytes than a field needs.
    #[error("snapshot truncated: {needed} bytes needed at offset {offset}, {available} available")]
    Truncated {
        /// Where the read started.
        offset: u64,
        /// Bytes the field needs.
        needed: u64,
        /// Bytes left.
        available: u64,
    },
    /// The file does not start with the snapshot magic.
    #[error("not an AllocDB snapshot: bad magic {found:02x?}")]
    BadMagic {
        /// The first eight bytes.
        found: [u8; 8],
    },
    /// A format this build cannot read.
    #[error("snapshot format version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion {
        /// The version in the header.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A checksum did not match.
    #[error("snapshot {region} checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// "header" or "body".
        region: &'static str,
        /// The stored checksum.
        stored: u32,
        /// The checksum of the bytes present.
        computed: u32,
    },
    /// The header's body length disagrees with the bytes present.
    #[error("snapshot body length {declared} does not match the {present} bytes present")]
    LengthMismatch {
        /// Length in the header.
        declared: u64,
        /// Bytes after the header.
        present: u64,
    },
    /// A count exceeds what the bytes or the target tables can hold.
    #[error("snapshot {table} count {count} exceeds {limit} ({why})")]
    CountTooLarge {
        /// Which table.
        table: &'static str,
        /// The count read.
        count: u64,
        /// The limit it exceeds.
        limit: u64,
        /// Which limit: bytes present or target capacity.
        why: &'static str,
    },
    /// A field holds a value that cannot occur in a valid state.
    #[error("snapshot field {field} is invalid at offset {offset}: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// Where it was read.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The snapshot belongs to another shard.
    #[error("snapshot is for shard {found}, this kernel is shard {expected}")]
    ShardMismatch {
        /// The snapshot's shard.
        found: u64,
        /// The kernel's shard.
        expected: u64,
    },
    /// The decoded state violates a kernel invariant.
    #[error("snapshot state violates an invariant: {0}")]
    Invariant(String),
}

struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }
    fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    fn u128(&mut self, value: u128) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
}

struct Reader<'b> {
    bytes: &'b [u8],
    offset: usize,
    base_offset: u64,
}

impl<'b> Reader<'b> {
    fn offset(&self) -> u64 {
        self.base_offset + self.offset as u64
    }

    fn remaining(&self) -> u64 {
        (self.bytes.len() - self.offset) as u64
    }

    fn take(&mut self, size: usize) -> Result<&'b [u8], SnapshotError> {
        let Some(field) = self.bytes.get(self.offset..self.offset.saturating_add(size)) else {
            return Err(SnapshotError::Truncated {
                offset: self.offset(),
                needed: size as u64,
                available: self.remaining(),
            });
        };
        self.offset += size;
        Ok(field)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let field = self.take(N)?;
        let mut array = [0_u8; N];
        array.copy_from_slice(field);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn u128(&mut self) -> Result<u128, SnapshotError> {
        Ok(u128::from_le_bytes(self.array()?))
    }

    /// Reads a count and checks it against the bytes left and the target capacity before
    /// anything is sized from it.
    fn count(
        &mut self,
        table: &'static str,
        record_size_min: u64,
        capacity: u64,
    ) -> Result<u64, SnapshotError> {
        let count = self.u64()?;
        let fits_in_bytes = self.remaining() / record_size_min;
        if count > fits_in_bytes {
            return Err(SnapshotError::CountTooLarge {
                table,
                count,
                limit: fits_in_bytes,
                why: "bytes present",
            });
        }
        if count > capacity {
            return Err(SnapshotError::CountTooLarge {
                table,
                count,
                limit: capacity,
                why: "target capacity",
            });
        }
        Ok(count)
    }

    fn invalid(&self, field: &'static str, reason: String) -> SnapshotError {
        SnapshotError::InvalidField { field, offset: self.offset(), reason }
    }
}

fn encode_config(writer: &mut Writer, config: &KernelConfig) {
    writer.u64(config.shard_id);
    writer.u32(config.resource_count_max);
    writer.u32(config.lease_count_max);
    writer.u32(config.lease_member_count_max);
    writer.u32(config.operation_count_max);
    writer.u32(config.bundle_size_max);
    writer.u64(config.reserve_ttl_slots_max);
    writer.u64(config.dedupe_window_slots);
    writer.u64(config.history_window_slots);
    writer.u32(config.expiration_bucket_count);
    writer.u64(config.expiration_bucket_slots);
    writer.u32(config.expiration_bucket_length_max);
    writer.u32(config.expirations_per_tick_max);
    writer.u64(config.hash_seed);
}

fn decode_config(reader: &mut Reader<'_>) -> Result<KernelConfig, SnapshotError> {
    Ok(KernelConfig {
        shard_id: reader.u64()?,
        resource_count_max: reader.u32()?,
        lease_count_max: reader.u32()?,
        lease_member_count_max: reader.u32()?,
        operation_count_max: reader.u32()?,
        bundle_size_max: reader.u32()?,
        reserve_ttl_slots_max: reader.u64()?,
        dedupe_window_slots: reader.u64()?,
        history_window_slots: reader.u64()?,
        expiration_bucket_count: reader.u32()?,
        expiration_bucket_slots: reader.u64()?,
        expiration_bucket_length_max: reader.u32()?,
        expirations_per_tick_max: reader.u32()?,
        hash_seed: reader.u64()?,
    })
}

/// Encodes a kernel configuration in the snapshot's config layout (for configuration records in
/// the log). The hash seed is written as 0: it shapes memory layout only, never results.
pub fn encode_kernel_config(config: &KernelConfig, out: &mut Vec<u8>) {
    let mut writer = Writer { bytes: std::mem::take(out) };
    encode_config(&mut writer, &KernelConfig { hash_seed: 0, ..*config });
    *out = writer.bytes;
}

/// Decodes a configuration written by [`encode_kernel_config`]; the bytes must be exactly one
/// valid configuration.
///
/// # Errors
/// Truncated or trailing bytes, or a configuration that fails validation.
pub fn decode_kernel_config(bytes: &[u8]) -> Result<KernelConfig, SnapshotError> {
    let mut reader = Reader { bytes, offset: 0, base_offset: 0 };
    let config = decode_config(&mut reader)?;
    if reader.remaining() != 0 {
        return Err(reader.invalid("config", format!("{} trailing bytes", reader.remaining())));
    }
    config.validate().map_err(|error| reader.invalid("config", error.to_string()))?;
    Ok(config)
}

impl Kernel {
    /// The configuration a snapshot was taken under (checked header, then its config section).
    ///
    /// # Errors
    /// The header or checksum is invalid, or the config section is.
    pub fn snapshot_config(bytes: &[u8]) -> Result<KernelConfig, SnapshotError> {
        let body = check_header(bytes)?;
        let mut reader = Reader { bytes: body, offset: 0, base_offset: SNAPSHOT_HEADER_SIZE_BYTES as u64 };
        let config = decode_config(&mut reader)?;
        config.validate().map_err(|error| reader.invalid("snapshot_config", error.to_string()))?;
        Ok(config)
    }

    /// Applies a configuration record at `position`: the same state in tables built from
    /// `config` (through the snapshot path, so every invariant and capacity is checked).
    /// Configuration changes are log entries so that replay uses, for every command, the
    /// configuration that decided its result when it first ran.
    ///
    /// # Errors
    /// The state does not fit the new capacities (nothing changes; the caller keeps `self`).
    pub fn reconfigure(&self, position: LogPosition, config: KernelConfig) -> Result<Kernel, SnapshotError> {
        assert_eq!(position.lsn, self.last_applied_lsn + 1, "lsn is not the next one");
        assert!(position.request_slot >= self.last_request_slot, "request slot went backwards");
        assert!(position.request_slot <= SLOT_MAX, "request slot beyond SLOT_MAX");
        let mut kernel = Kernel::restore(config, &self.encode_snapshot())?;
        kernel.last_applied_lsn = position.lsn;
        kernel.last_request_slot = position.request_slot;
        Ok(kernel)
    }

    /// Encodes the whole state as a snapshot (header + body). Allocates; never on the apply
    /// path. Cost is O(n log n) in the stored entries for the canonical sort.
    ///
    /// # Panics
    /// Only if the header layout constant disagrees with the bytes written (a bug).
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut writer = Writer { bytes: Vec::with_capacity(self.snapshot_size_estimate()) };
        writer.bytes.resize(SNAPSHOT_HEADER_SIZE_BYTES, 0);
        self.encode_body(&mut writer);
        let body_length = (writer.bytes.len() - SNAPSHOT_HEADER_SIZE_BYTES) as u64;
        let body_crc = crc32c::crc32c(writer.bytes.get(SNAPSHOT_HEADER_SIZE_BYTES..).unwrap_or_default());
        let mut header = Writer { bytes: Vec::with_capacity(SNAPSHOT_HEADER_SIZE_BYTES) };
        header.bytes.extend_from_slice(&SNAPSHOT_MAGIC);
        header.u32(SNAPSHOT_FORMAT_VERSION);
        header.u32(0);
        header.u64(body_length);
        header.u32(body_crc);
        let header_crc = crc32c::crc32c(&header.bytes);
        header.u32(header_crc);
        assert_eq!(header.bytes.len(), SNAPSHOT_HEADER_SIZE_BYTES);
        if let Some(target) = writer.bytes.get_mut(..SNAPSHOT_HEADER_SIZE_BYTES) {
            target.copy_from_slice(&header.bytes);
        }
        writer.bytes
    }

    fn snapshot_size_estimate(&self) -> usize {
        let usage = self.usage();
        (SNAPSHOT_HEADER_SIZE_BYTES as u64
            + 256
            + usage.resources.used * RESOURCE_RECORD_SIZE_BYTES
            + usage.leases.used * LEASE_RECORD_SIZE_BYTES_MIN
            + usage.lease_members.used * 16
            + usage.operations.used * OPERATION_RECORD_SIZE_BYTES) as usize
    }

    fn encode_body(&self, writer: &mut Writer) {
        encode_config(writer, &self.config);
        writer.u64(self.last_applied_lsn);
        writer.u64(self.last_request_slot);
        writer.u64(self.retired_watermark);
        writer.u64(self.wheel.cursor());

        let mut resources: Vec<(u128, ResourcePosition)> =
            self.resources.iter().map(|(position, slot)| (slot.resource_id().0, position)).collect();
        resources.sort_unstable();
        writer.u64(resources.len() as u64);
        for (resource_id, position) in resources {
            let slot = self.resources.get(position);
            writer.u128(resource_id);
            writer.u8(slot.state() as u8);
            writer.u64(slot.version);
            let lease_lsn =
                if slot.lease_position == NONE { 0 } else { self.leases.get(slot.lease_position).lsn };
            writer.u64(lease_lsn);
        }

        let mut leases: Vec<(Lsn, LeasePosition)> =
            self.leases.iter().map(|(position, record)| (record.lsn, position)).collect();
        leases.sort_unstable();
        writer.u64(leases.len() as u64);
        for (lsn, position) in leases {
            let record = self.leases.get(position);
            writer.u64(lsn);
            writer.u128(record.holder_id().0);
            writer.u8(record.state() as u8);
            writer.u64(record.lease_epoch);
            writer.u64(record.deadline_slot);
            writer.u64(record.terminal_lsn);
            writer.u64(record.retire_after_slot);
            writer.u32(record.member_count);
            for member in self.leases.members(position) {
                writer.u128(self.resources.get(member).resource_id().0);
            }
        }

        writer.u64(u64::from(self.operations.count()));
        for record in self.operations.iter() {
            let key = record.key();
            writer.u128(key.client_id.0);
            writer.u128(key.operation_id.0);
            writer.u64(record.fingerprint);
            writer.u64(record.applied_lsn);
            writer.u64(record.request_slot);
            writer.u8(record.result as u8);
            writer.u8(record.lease_epoch);
        }
    }

    /// A 64-bit digest of the canonical state: equal for two kernels exactly when their
    /// snapshots are byte-identical (up to hash collisions).
    pub fn state_digest(&self) -> u64 {
        let bytes = self.encode_snapshot();
        let mut fingerprint = Fingerprint::new(0);
        for chunk in bytes.chunks(8) {
            let mut word = [0_u8; 8];
            if let Some(target) = word.get_mut(..chunk.len()) {
                target.copy_from_slice(chunk);
            }
            fingerprint.add_u64(u64::from_le_bytes(word));
        }
        fingerprint.add_u64(bytes.len() as u64);
        fingerprint.finish()
    }

    /// Rebuilds a kernel from snapshot bytes, with tables sized by `config` (which may differ
    /// from the snapshot's own in capacities and windows, but not in shard).
    ///
    /// # Errors
    /// Any malformed, truncated, corrupt or inconsistent input; nothing is trusted.
    pub fn restore(config: KernelConfig, bytes: &[u8]) -> Result<Kernel, SnapshotError> {
        config.validate().map_err(|error| SnapshotError::InvalidField {
            field: "config",
            offset: 0,
            reason: error.to_string(),
        })?;
        let body = check_header(bytes)?;
        let mut reader = Reader { bytes: body, offset: 0, base_offset: SNAPSHOT_HEADER_SIZE_BYTES as u64 };
        let snapshot_config = decode_config(&mut reader)?;
        snapshot_config.validate().map_err(|error| SnapshotError::InvalidField {
            field: "snapshot_config",
            offset: SNAPSHOT_HEADER_SIZE_BYTES as u64,
            reason: error.to_string(),
        })?;
        if snapshot_config.shard_id != config.shard_id {
            return Err(SnapshotError::ShardMismatch {
                found: snapshot_config.shard_id,
                expected: config.shard_id,
            });
        }
        let Ok(mut kernel) = Kernel::new(config) else {
            return Err(SnapshotError::Invariant("config rejected after validation".to_owned()));
        };
        kernel.last_applied_lsn = reader.u64()?;
        kernel.last_request_slot = reader.u64()?;
        if kernel.last_request_slot > SLOT_MAX {
            return Err(
                reader.invalid("last_request_slot", format!("{} exceeds SLOT_MAX", kernel.last_request_slot))
            );
        }
        kernel.retired_watermark = reader.u64()?;
        if kernel.retired_watermark > kernel.last_applied_lsn {
            return Err(reader.invalid("retired_watermark", "above last_applied_lsn".to_owned()));
        }
        if kernel.last_applied_lsn == u64::MAX {
            return Err(
                reader.invalid("last_applied_lsn", "no lsn would be left for the next command".to_owned())
            );
        }
        let snapshot_cursor = reader.u64()?;
        // The cursor is stored in the snapshot's bucket width; convert through slots so it stays
        // a lower bound of every deadline when the target config uses another width.
        let cursor_slot = snapshot_cursor.saturating_mul(snapshot_config.expiration_bucket_slots);
        if cursor_slot > kernel.last_request_slot {
            return Err(reader
                .invalid("wheel_cursor", format!("{snapshot_cursor} is ahead of the last request slot")));
        }
        kernel.wheel.set_cursor(cursor_slot / config.expiration_bucket_slots);
        let resource_lease_lsns = restore_resources(&mut kernel, &mut reader)?;
        restore_leases(&mut kernel, &mut reader, &resource_lease_lsns)?;
        restore_operations(&mut kernel, &mut reader)?;
        if reader.remaining() != 0 {
            return Err(reader.invalid("body", format!("{} trailing bytes", reader.remaining())));
        }
        kernel.check_invariants().map_err(|violation| SnapshotError::Invariant(violation.to_string()))?;
        Ok(kernel)
    }
}

/// Checks magic, version, header checksum, body length and body checksum; returns the body.
fn check_header(bytes: &[u8]) -> Result<&[u8], SnapshotError> {
    let mut reader = Reader { bytes, offset: 0, base_offset: 0 };
    let magic = reader.array::<8>()?;
    if magic != SNAPSHOT_MAGIC {
        return Err(SnapshotError::BadMagic { found: magic });
    }
    let version = reader.u32()?;
    let flags = reader.u32()?;
    let body_length = reader.u64()?;
    let body_crc = reader.u32()?;
    let header_crc_computed = crc32c::crc32c(bytes.get(..28).unwrap_or_default());
    let header_crc = reader.u32()?;
    if header_crc != header_crc_computed {
        return Err(SnapshotError::ChecksumMismatch {
            region: "header",
            stored: header_crc,
            computed: header_crc_computed,
        });
    }
    if version != SNAPSHOT_FORMAT_VERSION {
        return Err(SnapshotError::UnsupportedVersion { found: version, supported: SNAPSHOT_FORMAT_VERSION });
    }
    if flags != 0 {
        return Err(reader.invalid("flags", format!("{flags:#x} has unknown bits")));
    }
    let body = bytes.get(SNAPSHOT_HEADER_SIZE_BYTES..).unwrap_or_default();
    if body.len() as u64 != body_length {
        return Err(SnapshotError::LengthMismatch { declared: body_length, present: body.len() as u64 });
    }
    let body_crc_computed = crc32c::crc32c(body);
    if body_crc != body_crc_computed {
        return Err(SnapshotError::ChecksumMismatch {
            region: "body",
            stored: body_crc,
            computed: body_crc_computed,
        });
    }
    Ok(body)
}

/// Restores resources; returns, per resource position, the lsn of the lease the snapshot says
/// holds it (0 if available), for the leases to be checked against.
fn restore_resources(
    kernel: &mut Kernel,
    reader: &mut Reader<'_>,
) -> Result<BTreeMap<ResourcePosition, Lsn>, SnapshotError> {
    let mut lease_lsns = BTreeMap::new();
    let count =
        reader.count("resources", RESOURCE_RECORD_SIZE_BYTES, kernel.config.resource_count_max.into())?;
    let mut previous: Option<u128> = None;
    for _ in 0..count {
        let resource_id = reader.u128()?;
        if previous.is_some_and(|previous| previous >= resource_id) {
            return Err(
                reader.invalid("resource_id", format!("{resource_id} is not in strictly increasing order"))
            );
        }
        previous = Some(resource_id);
        let state_number = reader.u8()?;
        let Some(state) = ResourceState::from_u8(state_number) else {
            return Err(reader.invalid("resource_state", format!("{state_number} is not a resource state")));
        };
        let version = reader.u64()?;
        // A resource changes state at most once per command, so its version never exceeds the
        // number of commands applied; a larger one is corrupt and would overflow later.
        if version == 0 || version > kernel.last_applied_lsn {
            return Err(reader.invalid(
                "resource_version",
                format!("version {version} is impossible at lsn {}", kernel.last_applied_lsn),
            ));
        }
        let lease_lsn = reader.u64()?;
        if (state == ResourceState::Available) != (lease_lsn == 0) {
            return Err(reader
                .invalid("resource_lease", format!("state {} with lease lsn {lease_lsn}", state.as_str())));
        }
        let Probe::Vacant(position) = kernel.resources.probe(ResourceId(resource_id)) else {
            return Err(reader.invalid("resource_id", format!("{resource_id} appears twice")));
        };
        kernel.resources.insert_at(position, ResourceId(resource_id), version);
        // The state and lease link are set when the owning lease is restored; the invariant
        // checker then confirms every non-available resource was claimed by exactly its lease.
        if state != ResourceState::Available {
            kernel.resources.get_mut(position).set_state(state);
            lease_lsns.insert(position, lease_lsn);
        }
    }
    Ok(lease_lsns)
}

fn restore_leases(
    kernel: &mut Kernel,
    reader: &mut Reader<'_>,
    resource_lease_lsns: &BTreeMap<ResourcePosition, Lsn>,
) -> Result<(), SnapshotError> {
    let count = reader.count("leases", LEASE_RECORD_SIZE_BYTES_MIN, kernel.config.lease_count_max.into())?;
    let mut previous_lsn = 0;
    let mut members: Vec<ResourcePosition> = Vec::new();
    let mut terminal: Vec<(Lsn, LeasePosition)> = Vec::new();
    for _ in 0..count {
        let lsn = reader.u64()?;
        if lsn <= previous_lsn || lsn > kernel.last_applied_lsn {
            return Err(reader.invalid("lease_lsn", format!("{lsn} out of order or above last_applied_lsn")));
        }
        previous_lsn = lsn;
        let holder_id = HolderId(reader.u128()?);
        let state_number = reader.u8()?;
        let Some(state) = LeaseState::from_u8(state_number) else {
            return Err(reader.invalid("lease_state", format!("{state_number} is not a lease state")));
        };
        let lease_epoch = reader.u64()?;
        let deadline_slot = reader.u64()?;
        let terminal_lsn = reader.u64()?;
        let retire_after_slot = reader.u64()?;
        check_lease_fields(
            reader,
            lsn,
            state,
            lease_epoch,
            deadline_slot,
            (terminal_lsn, retire_after_slot),
            kernel,
        )?;
        let member_count = u64::from(reader.u32()?);
        if member_count == 0
            || member_count > u64::from(BUNDLE_SIZE_LIMIT)
            || member_count * 16 > reader.remaining()
        {
            return Err(reader.invalid("lease_member_count", format!("{member_count} members")));
        }
        if !kernel.leases.members_fit(member_count as u32) {
            return Err(SnapshotError::CountTooLarge {
                table: "lease_members",
                count: u64::from(kernel.leases.member_count()) + member_count,
                limit: kernel.config.lease_member_count_max.into(),
                why: "target capacity",
            });
        }
        members.clear();
        for _ in 0..member_count {
            let resource_id = ResourceId(reader.u128()?);
            let Some(position) = kernel.resources.find(resource_id) else {
                return Err(reader
                    .invalid("lease_member", format!("lease {lsn} names unknown resource {resource_id}")));
            };
            if members.contains(&position) {
                return Err(
                    reader.invalid("lease_member", format!("lease {lsn} names resource {resource_id} twice"))
                );
            }
            members.push(position);
        }
        if state == LeaseState::Reserved && !kernel.wheel.has_room(deadline_slot) {
            return Err(
                reader.invalid("lease_deadline", format!("lease {lsn} overflows its expiration bucket"))
            );
        }
        let lease = NewLease { lsn, holder_id, state, lease_epoch, deadline_slot };
        let position = kernel.leases.insert(&lease, &members);
        let record = kernel.leases.get_mut(position);
        record.terminal_lsn = terminal_lsn;
        record.retire_after_slot = retire_after_slot;
        if let Some(member_state) = state.member_state() {
            for &member in &members {
                let resource = kernel.resources.get_mut(member);
                if resource.state() != member_state
                    || resource.lease_position != NONE
                    || resource_lease_lsns.get(&member) != Some(&lsn)
                {
                    return Err(reader.invalid(
                        "lease_member",
                        format!("lease {lsn} member state disagrees with the lease"),
                    ));
                }
                resource.lease_position = position;
            }
        }
        if state == LeaseState::Reserved {
            kernel.wheel.insert(kernel.leases.records_mut(), position);
        } else if !state.is_live() {
            terminal.push((terminal_lsn, position));
        }
    }
    terminal.sort_unstable();
    for (_, position) in terminal {
        kernel.leases.retire_queue_push(position);
    }
    Ok(())
}

fn check_lease_fields(
    reader: &Reader<'_>,
    lsn: Lsn,
    state: LeaseState,
    lease_epoch: u64,
    deadline_slot: u64,
    (terminal_lsn, retire_after_slot): (Lsn, u64),
    kernel: &Kernel,
) -> Result<(), SnapshotError> {
    // Every lease starts at epoch 1 and exactly one transition (release, expire or revoke)
    // advances it, so the epoch is fixed by the state; anything else is corrupt (and a huge
    // epoch would overflow on the next transition).
    let expected_epoch = if matches!(state, LeaseState::Reserved | LeaseState::Active) { 1 } else { 2 };
    if lease_epoch != expected_epoch {
        return Err(reader
            .invalid("lease_epoch", format!("lease {lsn} is {} with epoch {lease_epoch}", state.as_str())));
    }
    if deadline_slot == 0 || deadline_slot > SLOT_MAX {
        return Err(reader.invalid("lease_deadline", format!("lease {lsn} has deadline {deadline_slot}")));
    }
    if state == LeaseState::Reserved
        && deadline_slot / kernel.config.expiration_bucket_slots < kernel.wheel.cursor()
    {
        return Err(
            reader.invalid("lease_deadline", format!("lease {lsn} deadline is behind the wheel cursor"))
        );
    }
    if state.is_live() {
        if terminal_lsn != 0 || retire_after_slot != 0 {
            return Err(reader.invalid("lease_terminal_lsn", format!("live lease {lsn} has terminal fields")));
        }
    } else if terminal_lsn <= lsn || terminal_lsn > kernel.last_applied_lsn || retire_after_slot == 0 {
        return Err(
            reader.invalid("lease_terminal_lsn", format!("terminal lease {lsn} ended at lsn {terminal_lsn}"))
        );
    }
    Ok(())
}

fn restore_operations(kernel: &mut Kernel, reader: &mut Reader<'_>) -> Result<(), SnapshotError> {
    let count =
        reader.count("operations", OPERATION_RECORD_SIZE_BYTES, kernel.config.operation_count_max.into())?;
    let mut previous_lsn = 0;
    let mut previous_slot = 0;
    for _ in 0..count {
        let key =
            OperationKey { client_id: ClientId(reader.u128()?), operation_id: OperationId(reader.u128()?) };
        let fingerprint = reader.u64()?;
        let applied_lsn = reader.u64()?;
        let request_slot = reader.u64()?;
        if applied_lsn <= previous_lsn || applied_lsn > kernel.last_applied_lsn {
            return Err(reader
                .invalid("operation_lsn", format!("{applied_lsn} out of order or above last_applied_lsn")));
        }
        if request_slot < previous_slot || request_slot > kernel.last_request_slot {
            return Err(reader
                .invalid("operation_slot", format!("{request_slot} out of order or ahead of the kernel")));
        }
        previous_lsn = applied_lsn;
        previous_slot = request_slot;
        let result_number = reader.u8()?;
        let Some(result) = ResultCode::from_u8(result_number) else {
            return Err(reader.invalid("operation_result", format!("{result_number} is not a result code")));
        };
        let mut record = OperationRecord::new(key, fingerprint, applied_lsn, request_slot);
        record.result = result;
        record.lease_epoch = reader.u8()?;
        if record.lease_epoch > 2 || (record.lease_epoch != 0 && result != ResultCode::Ok) {
            return Err(reader
                .invalid("operation_epoch", format!("epoch {} with result {result}", record.lease_epoch)));
        }
        kernel.operations.insert(record);
    }
    Ok(())
}
