//! Hostile snapshot bytes: `Kernel::restore` must refuse every malformed input with a specific
//! `SnapshotError`, never panic, never allocate from a count it has not checked, and never
//! accept bytes that decode to a state other than the one they encode.
//!
//! The input is a valid snapshot of a non-trivial state (leases in every state, bundles, a
//! retired watermark, a moved wheel cursor, remembered successes and failures). The tests then
//! truncate it at every length, flip every bit of the header, flip every bit of the body and
//! overwrite every body field with all-zero and all-one bytes — for the body with both checksums
//! recomputed, so that the decoder's field validation runs instead of its checksum check.
//!
//! Snapshot layout, format version 1 (`src/snapshot.rs`; all integers little-endian):
//!
//! | offset | size | header field                                |
//! |-------:|-----:|---------------------------------------------|
//! |      0 |    8 | magic `ALDBSNAP`                            |
//! |      8 |    4 | format version (1)                          |
//! |     12 |    4 | flags (0)                                   |
//! |     16 |    8 | body length in bytes                        |
//! |     24 |    4 | CRC32C of the body                          |
//! |     28 |    4 | CRC32C of header bytes 0..28                |
//!
//! The body follows at offset 32: the config the snapshot was taken with (80 bytes: shard id,
//! capacities, windows, wheel geometry, hash seed; only the shard id is used on restore), then
//! `last_applied_lsn`, `last_request_slot`, `retired_watermark` and the wheel cursor (u64
//! each); then three counted tables — resources (u128 id, u8 state, u64 version, u64 lease
//! lsn), leases (u64 lsn, u128 holder, u8 state, u64 epoch, u64 deadline, u64 terminal lsn, u64
//! retire-after slot, u32 member count, then that many u128 resource ids) and operation records
//! (u128 client, u128 operation, u64 fingerprint, u64 applied lsn, u64 request slot, u8 result,
//! u8 lease epoch) — each preceded by a u64 count. `Layout` below
//! walks exactly this and the first test checks that it consumes a real snapshot byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};

use allocdb_core::{
    BUNDLE_SIZE_LIMIT, Command, HolderId, Kernel, KernelConfig, LeaseId, LeaseLookup, ResourceId, ResultCode,
    SNAPSHOT_FORMAT_VERSION, SNAPSHOT_HEADER_SIZE_BYTES, SNAPSHOT_MAGIC, SnapshotError,
};
use support::{Driver, key, resource_ids};

#[global_allocator]
static ALLOCATOR: allocation_counter::CountingAllocator = allocation_counter::CountingAllocator;

/// Counts the bytes each thread allocates, so a test can bound what one call allocated.
/// Test threads run side by side, so the count is per thread.
mod allocation_counter {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static ALLOCATED_BYTES: Cell<u64> = const { Cell::new(0) };
    }

    fn record(size_bytes: usize) {
        // `try_with` fails only while the thread is being torn down; those bytes do not matter.
        let _ = ALLOCATED_BYTES.try_with(|allocated| allocated.set(allocated.get() + size_bytes as u64));
    }

    pub struct CountingAllocator;

    // SAFETY: every method forwards its arguments unchanged to the system allocator, which
    // upholds the `GlobalAlloc` contract; counting only touches a const-initialised thread-local
    // `Cell`, which never allocates.
    #[expect(unsafe_code, reason = "a global allocator is the only way to observe allocations")]
    unsafe impl GlobalAlloc for CountingAllocator {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            record(layout.size());
            // SAFETY: the caller upholds `alloc`'s contract, passed on unchanged.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            record(layout.size());
            // SAFETY: as for `alloc`.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, size_bytes: usize) -> *mut u8 {
            record(size_bytes);
            // SAFETY: the caller upholds `realloc`'s contract, passed on unchanged.
            unsafe { System.realloc(pointer, layout, size_bytes) }
        }

        unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
            // SAFETY: the caller upholds `dealloc`'s contract, passed on unchanged.
            unsafe { System.dealloc(pointer, layout) }
        }
    }

    /// Runs `work` and returns its result with the bytes this thread allocated meanwhile.
    pub fn allocated_during<T>(work: impl FnOnce() -> T) -> (T, u64) {
        let before = ALLOCATED_BYTES.with(Cell::get);
        let value = work();
        let after = ALLOCATED_BYTES.with(Cell::get);
        (value, after - before)
    }
}

use allocation_counter::allocated_during;

const HEADER: usize = SNAPSHOT_HEADER_SIZE_BYTES;
const CONFIG_SIZE_BYTES: usize = 80;
const RESOURCE_RECORD_SIZE_BYTES: u64 = 16 + 1 + 8 + 8;
const LEASE_RECORD_SIZE_BYTES_MIN: u64 = 8 + 16 + 1 + 8 * 4 + 4 + 16;
const OPERATION_RECORD_SIZE_BYTES: u64 = 16 + 16 + 8 * 3 + 1 + 1;

fn config() -> KernelConfig {
    KernelConfig {
        resource_count_max: 12,
        lease_count_max: 8,
        lease_member_count_max: 16,
        operation_count_max: 12,
        bundle_size_max: 4,
        reserve_ttl_slots_max: 100,
        dedupe_window_slots: 50,
        history_window_slots: 20,
        expiration_bucket_count: 16,
        expiration_bucket_slots: 8,
        expiration_bucket_length_max: 4,
        expirations_per_tick_max: 8,
        ..KernelConfig::default()
    }
}

/// A state with something in every table and every lease state:
/// resources 1..=10; leases D (reserved, [1, 2, 3]), E (active), F (revoking, [5, 6]),
/// G (released), H (expired), I (reserved, same wheel bucket as D), J (revoked); three earlier
/// leases dropped (watermark 13); six remembered operations including two refusals.
fn populated(config: KernelConfig) -> Driver {
    let mut driver = Driver::new(config);
    driver.at(1).create_all(1..=10);
    let bundle = resource_ids(&[1, 2]);
    let reserve = Command::Reserve { resource_ids: &bundle, holder_id: HolderId(10), ttl_slots: 30 };
    let first = driver.at(2).apply_keyed(key(1, 1), reserve).lease_id.unwrap();
    let second = driver.reserve(&[3], 10, 5);
    let third = driver.reserve(&[4, 5], 10, 30);
    driver.at(3).release(first, 10, 1);
    driver.activate(third, 10, 1);
    driver.revoke(third);
    driver.reclaim(third);
    driver.at(7).expire(second, 7);

    driver.at(40);
    let bundle = resource_ids(&[1, 2, 3]);
    let reserve = Command::Reserve { resource_ids: &bundle, holder_id: HolderId(11), ttl_slots: 60 };
    assert_eq!(driver.apply_keyed(key(1, 2), reserve).deadline_slot, Some(100));
    let bundle = resource_ids(&[4]);
    let reserve = Command::Reserve { resource_ids: &bundle, holder_id: HolderId(11), ttl_slots: 60 };
    let active = driver.apply_keyed(key(2, 1), reserve).lease_id.unwrap();
    let activate = Command::Activate { lease_id: active, holder_id: HolderId(11), lease_epoch: 1 };
    assert!(driver.apply_keyed(key(2, 2), activate).result.is_ok());
    let revoking = driver.reserve(&[5, 6], 12, 60);
    driver.activate(revoking, 12, 1);
    driver.revoke(revoking);
    let released = driver.reserve(&[7], 12, 60);
    let release = Command::Release { lease_id: released, holder_id: HolderId(12), lease_epoch: 1 };
    assert!(driver.apply_keyed(key(1, 3), release).result.is_ok());
    let expiring = driver.reserve(&[8], 13, 10);
    driver.reserve(&[9], 13, 62);
    let busy = resource_ids(&[1]);
    let refused = Command::Reserve { resource_ids: &busy, holder_id: HolderId(14), ttl_slots: 10 };
    assert!(!driver.apply_keyed(key(3, 1), refused).result.is_ok());
    let exists = Command::CreateResource { resource_id: ResourceId(1) };
    assert!(!driver.apply_keyed(key(3, 2), exists).result.is_ok());

    driver.at(50).expire(expiring, 50);
    let revoked = driver.reserve(&[10], 15, 20);
    driver.activate(revoked, 15, 1);
    driver.revoke(revoked);
    driver.reclaim(revoked);
    driver.at(55).apply_noop();
    driver
}

fn snapshot() -> Vec<u8> {
    populated(config()).kernel.encode_snapshot()
}

// ---------------------------------------------------------------------------------------------
// The layout, walked independently of the decoder.
// ---------------------------------------------------------------------------------------------

/// Which table a count field sizes, with its smallest record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Counted {
    Table { table: &'static str, record_size_min: u64 },
    LeaseMembers,
}

#[derive(Clone, Debug)]
struct Field {
    name: String,
    /// Offset from the start of the snapshot (header included).
    offset: usize,
    size: usize,
    counted: Option<Counted>,
}

impl Field {
    fn end(&self) -> usize {
        self.offset + self.size
    }

    fn in_config(&self) -> bool {
        self.offset < HEADER + CONFIG_SIZE_BYTES
    }
}

struct Layout {
    fields: Vec<Field>,
}

impl Layout {
    /// Walks a valid snapshot's body field by field.
    fn of(bytes: &[u8]) -> Layout {
        let mut walker = Walker { bytes, fields: Vec::new(), offset: HEADER };
        for (name, size) in [
            ("config.shard_id", 8),
            ("config.resource_count_max", 4),
            ("config.lease_count_max", 4),
            ("config.lease_member_count_max", 4),
            ("config.operation_count_max", 4),
            ("config.bundle_size_max", 4),
            ("config.reserve_ttl_slots_max", 8),
            ("config.dedupe_window_slots", 8),
            ("config.history_window_slots", 8),
            ("config.expiration_bucket_count", 4),
            ("config.expiration_bucket_slots", 8),
            ("config.expiration_bucket_length_max", 4),
            ("config.expirations_per_tick_max", 4),
            ("config.hash_seed", 8),
            ("last_applied_lsn", 8),
            ("last_request_slot", 8),
            ("retired_watermark", 8),
            ("wheel_cursor", 8),
        ] {
            walker.field(name.to_owned(), size, None);
        }
        let resources = walker.count("resources", RESOURCE_RECORD_SIZE_BYTES);
        for index in 0..resources {
            for (name, size) in [("id", 16), ("state", 1), ("version", 8), ("lease_lsn", 8)] {
                walker.field(format!("resource[{index}].{name}"), size, None);
            }
        }
        let leases = walker.count("leases", LEASE_RECORD_SIZE_BYTES_MIN);
        for index in 0..leases {
            for (name, size) in [
                ("lsn", 8),
                ("holder_id", 16),
                ("state", 1),
                ("lease_epoch", 8),
                ("deadline_slot", 8),
                ("terminal_lsn", 8),
                ("retire_after_slot", 8),
            ] {
                walker.field(format!("lease[{index}].{name}"), size, None);
            }
            let members =
                walker.field(format!("lease[{index}].member_count"), 4, Some(Counted::LeaseMembers));
            for member in 0..members {
                walker.field(format!("lease[{index}].member[{member}]"), 16, None);
            }
        }
        let operations = walker.count("operations", OPERATION_RECORD_SIZE_BYTES);
        for index in 0..operations {
            for (name, size) in [
                ("client_id", 16),
                ("operation_id", 16),
                ("fingerprint", 8),
                ("applied_lsn", 8),
                ("request_slot", 8),
                ("result", 1),
                ("lease_epoch", 1),
            ] {
                walker.field(format!("operation[{index}].{name}"), size, None);
            }
        }
        assert_eq!(walker.offset, bytes.len(), "the layout does not cover the snapshot exactly");
        Layout { fields: walker.fields }
    }

    fn field(&self, name: &str) -> &Field {
        self.fields.iter().find(|field| field.name == name).unwrap_or_else(|| panic!("no field {name}"))
    }

    fn field_at(&self, offset: usize) -> &Field {
        self.fields.iter().find(|field| field.offset <= offset && offset < field.end()).unwrap()
    }
}

struct Walker<'b> {
    bytes: &'b [u8],
    fields: Vec<Field>,
    offset: usize,
}

impl Walker<'_> {
    /// Records a field and returns its value (little-endian, up to eight bytes).
    fn field(&mut self, name: String, size: usize, counted: Option<Counted>) -> u64 {
        let field = Field { name, offset: self.offset, size, counted };
        self.offset += size;
        let mut value = [0_u8; 8];
        let width = size.min(8);
        value[..width].copy_from_slice(&self.bytes[field.offset..field.offset + width]);
        self.fields.push(field);
        u64::from_le_bytes(value)
    }

    fn count(&mut self, table: &'static str, record_size_min: u64) -> u64 {
        self.field(format!("{table}.count"), 8, Some(Counted::Table { table, record_size_min }))
    }
}

fn read_u64(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap())
}

fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap())
}

/// Rewrites the header's body length and both checksums to match the bytes, as a corrupting
/// writer that knew the format would.
fn fix_header(bytes: &mut [u8]) {
    let body_length = (bytes.len() - HEADER) as u64;
    bytes[16..24].copy_from_slice(&body_length.to_le_bytes());
    let body_crc = crc32c::crc32c(&bytes[HEADER..]);
    bytes[24..28].copy_from_slice(&body_crc.to_le_bytes());
    fix_header_crc(bytes);
}

fn fix_header_crc(bytes: &mut [u8]) {
    let header_crc = crc32c::crc32c(&bytes[..28]);
    bytes[28..32].copy_from_slice(&header_crc.to_le_bytes());
}

fn restore_error(config: KernelConfig, bytes: &[u8]) -> SnapshotError {
    match Kernel::restore(config, bytes) {
        Ok(_) => panic!("restore accepted bytes it should refuse"),
        Err(error) => error,
    }
}

#[test]
fn layout_walk_covers_a_real_snapshot_byte_for_byte() {
    let bytes = snapshot();
    let layout = Layout::of(&bytes);
    assert_eq!(bytes[..8], SNAPSHOT_MAGIC);
    assert_eq!(read_u32(&bytes, 8), SNAPSHOT_FORMAT_VERSION);
    assert_eq!(read_u32(&bytes, 12), 0);
    assert_eq!(read_u64(&bytes, 16), (bytes.len() - HEADER) as u64);
    assert_eq!(read_u32(&bytes, 24), crc32c::crc32c(&bytes[HEADER..]));
    assert_eq!(read_u32(&bytes, 28), crc32c::crc32c(&bytes[..28]));
    let value = |name: &str| read_u64(&bytes, layout.field(name).offset);
    assert_eq!(value("resources.count"), 10);
    assert_eq!(value("leases.count"), 7);
    assert_eq!(value("operations.count"), 6);
    assert_eq!(value("retired_watermark"), 13);
    assert_eq!(value("wheel_cursor"), 6);
    let mut fixed = bytes.clone();
    fix_header(&mut fixed);
    assert_eq!(fixed, bytes, "fix_header reproduces the encoder's header");
    let restored = Kernel::restore(config(), &bytes).unwrap();
    assert_eq!(restored.encode_snapshot(), bytes);
}

// ---------------------------------------------------------------------------------------------
// Truncation.
// ---------------------------------------------------------------------------------------------

#[test]
fn restore_of_every_truncation_fails_with_truncated_or_length_mismatch() {
    let bytes = snapshot();
    let header_fields = [(0, 8), (8, 4), (12, 4), (16, 8), (24, 4), (28, 4)];
    for length in 0..bytes.len() {
        let expected = if length < HEADER {
            let (offset, needed) =
                header_fields.into_iter().find(|&(offset, size)| offset + size > length).unwrap();
            SnapshotError::Truncated {
                offset: offset as u64,
                needed: needed as u64,
                available: (length - offset) as u64,
            }
        } else {
            SnapshotError::LengthMismatch {
                declared: (bytes.len() - HEADER) as u64,
                present: (length - HEADER) as u64,
            }
        };
        assert_eq!(restore_error(config(), &bytes[..length]), expected, "length {length}");
    }
}

/// What the decoder must say about a body cut at `end` (absolute offset): the first field that
/// does not fit is `Truncated`, unless a count read before it already claims more records than
/// the remaining bytes can hold.
fn expected_truncation_error(layout: &Layout, bytes: &[u8], end: usize) -> SnapshotError {
    for field in &layout.fields {
        if field.end() > end {
            return SnapshotError::Truncated {
                offset: field.offset as u64,
                needed: field.size as u64,
                available: (end - field.offset) as u64,
            };
        }
        let remaining = (end - field.end()) as u64;
        match field.counted {
            Some(Counted::Table { table, record_size_min }) => {
                let count = read_u64(bytes, field.offset);
                let limit = remaining / record_size_min;
                if count > limit {
                    return SnapshotError::CountTooLarge { table, count, limit, why: "bytes present" };
                }
            }
            Some(Counted::LeaseMembers) => {
                let count = u64::from(read_u32(bytes, field.offset));
                if count * 16 > remaining {
                    return SnapshotError::InvalidField {
                        field: "lease_member_count",
                        offset: field.end() as u64,
                        reason: format!("{count} members"),
                    };
                }
            }
            None => {}
        }
    }
    panic!("a body cut at {end} cannot be whole");
}

#[test]
fn restore_of_every_truncated_body_with_a_consistent_header_names_the_short_field() {
    let bytes = snapshot();
    let layout = Layout::of(&bytes);
    for end in HEADER..bytes.len() {
        let mut truncated = bytes[..end].to_vec();
        fix_header(&mut truncated);
        let expected = expected_truncation_error(&layout, &bytes, end);
        assert_eq!(restore_error(config(), &truncated), expected, "body cut at offset {end}");
    }
}

// ---------------------------------------------------------------------------------------------
// Header corruption.
// ---------------------------------------------------------------------------------------------

#[test]
fn every_single_bit_flip_in_the_header_is_refused() {
    let bytes = snapshot();
    let stored_header_crc = read_u32(&bytes, 28);
    for bit in 0..HEADER * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let expected = if bit < 64 {
            SnapshotError::BadMagic { found: flipped[..8].try_into().unwrap() }
        } else if bit < 28 * 8 {
            SnapshotError::ChecksumMismatch {
                region: "header",
                stored: stored_header_crc,
                computed: crc32c::crc32c(&flipped[..28]),
            }
        } else {
            SnapshotError::ChecksumMismatch {
                region: "header",
                stored: read_u32(&flipped, 28),
                computed: stored_header_crc,
            }
        };
        assert_eq!(restore_error(config(), &flipped), expected, "header bit {bit}");
    }
}

#[test]
fn bad_magic_is_refused_before_anything_else() {
    let bytes = snapshot();
    for magic in [*b"ALDBSNAQ", [0; 8], [0xff; 8], *b"aldbsnap"] {
        let mut corrupted = bytes.clone();
        corrupted[..8].copy_from_slice(&magic);
        fix_header_crc(&mut corrupted);
        assert_eq!(restore_error(config(), &corrupted), SnapshotError::BadMagic { found: magic });
    }
    // Eight bytes of anything else, with no header behind them, is still "bad magic".
    assert_eq!(
        restore_error(config(), b"PNG\r\n\x1a\n\0"),
        SnapshotError::BadMagic { found: *b"PNG\r\n\x1a\n\0" }
    );
}

#[test]
fn unsupported_version_is_refused_with_both_versions() {
    let bytes = snapshot();
    for version in [0, 2, 3, u32::MAX] {
        let mut corrupted = bytes.clone();
        corrupted[8..12].copy_from_slice(&version.to_le_bytes());
        fix_header_crc(&mut corrupted);
        let expected =
            SnapshotError::UnsupportedVersion { found: version, supported: SNAPSHOT_FORMAT_VERSION };
        assert_eq!(restore_error(config(), &corrupted), expected);
    }
}

#[test]
fn nonzero_flags_are_refused() {
    let bytes = snapshot();
    for bit in 0..32 {
        let flags = 1_u32 << bit;
        let mut corrupted = bytes.clone();
        corrupted[12..16].copy_from_slice(&flags.to_le_bytes());
        fix_header_crc(&mut corrupted);
        let SnapshotError::InvalidField { field, offset, reason } = restore_error(config(), &corrupted)
        else {
            panic!("flags {flags:#x} not refused as an invalid field");
        };
        assert_eq!((field, offset), ("flags", 32), "flags {flags:#x}");
        assert!(reason.contains(&format!("{flags:#x}")), "{reason}");
    }
}

#[test]
fn declared_body_length_that_disagrees_with_the_bytes_is_refused() {
    let bytes = snapshot();
    let present = (bytes.len() - HEADER) as u64;
    for declared in [0, 1, present - 1, present + 1, u64::MAX, u64::MAX - present] {
        let mut corrupted = bytes.clone();
        corrupted[16..24].copy_from_slice(&declared.to_le_bytes());
        fix_header_crc(&mut corrupted);
        assert_eq!(restore_error(config(), &corrupted), SnapshotError::LengthMismatch { declared, present });
    }
}

#[test]
fn body_checksum_mismatch_is_refused() {
    let bytes = snapshot();
    let computed = crc32c::crc32c(&bytes[HEADER..]);
    let mut wrong_checksum = bytes.clone();
    wrong_checksum[24] ^= 1;
    fix_header_crc(&mut wrong_checksum);
    let stored = read_u32(&wrong_checksum, 24);
    assert_eq!(
        restore_error(config(), &wrong_checksum),
        SnapshotError::ChecksumMismatch { region: "body", stored, computed }
    );
    let mut wrong_body = bytes.clone();
    *wrong_body.last_mut().unwrap() ^= 0x80;
    assert_eq!(
        restore_error(config(), &wrong_body),
        SnapshotError::ChecksumMismatch {
            region: "body",
            stored: computed,
            computed: crc32c::crc32c(&wrong_body[HEADER..]),
        }
    );
}

#[test]
fn trailing_bytes_are_refused_with_or_without_a_matching_header() {
    let bytes = snapshot();
    let present = (bytes.len() - HEADER) as u64;
    for trailing in [1_usize, 7, 8, 33, 81, 200] {
        let mut longer = bytes.clone();
        longer.resize(bytes.len() + trailing, 0);
        assert_eq!(
            restore_error(config(), &longer),
            SnapshotError::LengthMismatch { declared: present, present: present + trailing as u64 }
        );
        fix_header(&mut longer);
        let SnapshotError::InvalidField { field, reason, .. } = restore_error(config(), &longer) else {
            panic!("{trailing} trailing bytes not refused as an invalid field");
        };
        assert_eq!(field, "body");
        assert_eq!(reason, format!("{trailing} trailing bytes"));
    }
}

// ---------------------------------------------------------------------------------------------
// Body corruption with valid checksums.
// ---------------------------------------------------------------------------------------------

/// What a corrupted body with valid checksums may do.
#[derive(Debug)]
enum Verdict {
    Refused,
    /// Accepted; the field is one the decoder legitimately ignores (the snapshot's own
    /// capacities and windows), so the restored state is the original one.
    AcceptedIgnored,
    /// Accepted as a different but valid state, and that state encodes back to the corrupted
    /// bytes: the decoder read what the bytes say.
    AcceptedFaithfully,
}

/// A held resource's lease lsn repeats what the lease records say (which lease lists the
/// resource as a member). The decoder checks only that it is zero exactly when the resource is
/// available and takes the link from the lease records; so when a corrupted snapshot is
/// accepted, these fields are compared after masking.
fn is_resource_lease_lsn(field: &Field) -> bool {
    field
        .name
        .rsplit_once('.')
        .is_some_and(|(record, member)| record.starts_with("resource[") && member == "lease_lsn")
}

/// The bytes with the header checksums and every resource's lease lsn zeroed.
fn masked(layout: &Layout, bytes: &[u8]) -> Vec<u8> {
    let mut masked = bytes.to_vec();
    masked[24..32].fill(0);
    for field in layout.fields.iter().filter(|field| is_resource_lease_lsn(field)) {
        masked[field.offset..field.end()].fill(0);
    }
    masked
}

/// Restores `corrupted` (whose `field` was changed) and checks it against the rules: no
/// panic; a changed shard id is `ShardMismatch`; a changed config field other than the shard
/// and the bucket width (which converts the wheel cursor) is ignored; anything else is refused, or decodes to a valid state that encodes back to the
/// corrupted bytes (up to the redundant resource lease lsns, see `is_resource_lease_lsn`).
fn judge(layout: &Layout, original: &[u8], corrupted: &[u8], field: &Field) -> Result<Verdict, String> {
    let restored = catch_unwind(AssertUnwindSafe(|| Kernel::restore(config(), corrupted)))
        .map_err(|_| format!("restore panicked on corrupted {}", field.name))?;
    if field.name == "config.shard_id" {
        let found = read_u64(corrupted, field.offset);
        return match restored {
            Err(SnapshotError::ShardMismatch { found: reported, expected: 0 }) if reported == found => {
                Ok(Verdict::Refused)
            }
            Err(error) => Err(format!("shard id {found} refused as {error:?}")),
            Ok(_) => Err(format!("shard id {found} accepted")),
        };
    }
    let Ok(kernel) = restored else { return Ok(Verdict::Refused) };
    if let Err(violation) = kernel.check_invariants() {
        return Err(format!("{} accepted into a state violating {violation}", field.name));
    }
    let encoded = kernel.encode_snapshot();
    if field.name == "config.expiration_bucket_slots" {
        // The snapshot's bucket width converts its wheel cursor into the target's width, so a
        // different (valid) width legitimately moves the cursor; it must still be a state the
        // invariant checker accepts (checked above) and may only ever move the cursor back.
        return Ok(Verdict::AcceptedIgnored);
    }
    if field.in_config() {
        if encoded != original {
            return Err(format!("ignored config field {} changed the restored state", field.name));
        }
        return Ok(Verdict::AcceptedIgnored);
    }
    if encoded.len() != corrupted.len() || masked(layout, &encoded) != masked(layout, corrupted) {
        let first = encoded.iter().zip(corrupted).position(|(left, right)| left != right);
        return Err(format!(
            "{} accepted but the restored state encodes differently (first difference at {first:?})",
            field.name
        ));
    }
    Ok(Verdict::AcceptedFaithfully)
}

/// Fields no corruption of which can yield another valid state: table and member counts (every
/// other count misaligns everything after it), and a resource's id or state (every resource is
/// named by a stored lease, and a resource's state must match its lease's).
fn corruptions_must_be_refused(field: &Field) -> bool {
    let (record, member) = field.name.rsplit_once('.').unwrap_or(("", field.name.as_str()));
    matches!(member, "count" | "member_count")
        || (record.starts_with("resource[") && matches!(member, "id" | "state"))
}

/// Tally of judged corruptions.
struct Tally {
    judged: usize,
    accepted: usize,
    failures: Vec<String>,
}

impl Tally {
    fn assert_no_failures(&self) {
        let shown = &self.failures[..self.failures.len().min(20)];
        assert!(
            self.failures.is_empty(),
            "{} of {} corruptions failed, first: {shown:#?}",
            self.failures.len(),
            self.judged
        );
    }
}

fn judge_all(layout: &Layout, original: &[u8], corruptions: impl Iterator<Item = (Vec<u8>, Field)>) -> Tally {
    let mut tally = Tally { judged: 0, accepted: 0, failures: Vec::new() };
    for (corrupted, field) in corruptions {
        tally.judged += 1;
        match judge(layout, original, &corrupted, &field) {
            Ok(Verdict::Refused) => {}
            Ok(verdict) => {
                tally.accepted += 1;
                if corruptions_must_be_refused(&field) {
                    tally.failures.push(format!("{} corruption accepted ({verdict:?})", field.name));
                }
            }
            Err(failure) => tally.failures.push(failure),
        }
    }
    tally
}

#[test]
fn every_single_bit_flip_in_the_body_is_refused_or_decoded_faithfully() {
    let bytes = snapshot();
    let layout = Layout::of(&bytes);
    let corruptions = (HEADER * 8..bytes.len() * 8).map(|bit| {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        fix_header(&mut flipped);
        (flipped, layout.field_at(bit / 8).clone())
    });
    let tally = judge_all(&layout, &bytes, corruptions);
    tally.assert_no_failures();
    assert_eq!(tally.judged, (bytes.len() - HEADER) * 8);
    // Most accepted flips change plain data (ids, fingerprints, the snapshot's own capacities);
    // the rest must have been refused.
    assert!(tally.accepted < tally.judged, "no flip was refused");
}

#[test]
fn every_body_field_set_to_all_zeros_or_all_ones_is_refused_or_decoded_faithfully() {
    let bytes = snapshot();
    let layout = Layout::of(&bytes);
    let corruptions = layout.fields.iter().flat_map(|field| {
        [0x00_u8, 0xff].into_iter().filter_map(|fill| {
            let mut corrupted = bytes.clone();
            corrupted[field.offset..field.end()].fill(fill);
            (corrupted != bytes).then(|| {
                fix_header(&mut corrupted);
                (corrupted, field.clone())
            })
        })
    });
    let tally = judge_all(&layout, &bytes, corruptions);
    tally.assert_no_failures();
    assert!(tally.judged > layout.fields.len(), "too few corruptions judged: {}", tally.judged);
}

// ---------------------------------------------------------------------------------------------
// Counts.
// ---------------------------------------------------------------------------------------------

#[test]
fn huge_counts_are_refused_as_count_too_large_without_allocating_from_them() {
    let bytes = snapshot();
    let layout = Layout::of(&bytes);
    let (_, kernel_bytes) = allocated_during(|| Kernel::new(config()).unwrap());
    let capacities = [
        ("resources", u64::from(config().resource_count_max)),
        ("leases", u64::from(config().lease_count_max)),
        ("operations", u64::from(config().operation_count_max)),
    ];
    let mut target_capacity_seen = 0;
    for (table, capacity) in capacities {
        let field = layout.field(&format!("{table}.count"));
        let Some(Counted::Table { record_size_min, .. }) = field.counted else { unreachable!() };
        let fits_in_bytes = (bytes.len() - field.end()) as u64 / record_size_min;
        for count in [u64::MAX, u64::MAX / 2, 1 << 40, capacity + 1] {
            let mut corrupted = bytes.clone();
            corrupted[field.offset..field.end()].copy_from_slice(&count.to_le_bytes());
            fix_header(&mut corrupted);
            let expected = if count > fits_in_bytes {
                SnapshotError::CountTooLarge { table, count, limit: fits_in_bytes, why: "bytes present" }
            } else {
                target_capacity_seen += 1;
                SnapshotError::CountTooLarge { table, count, limit: capacity, why: "target capacity" }
            };
            let (restored, restore_bytes) = allocated_during(|| Kernel::restore(config(), &corrupted));
            assert_eq!(restored.err(), Some(expected), "{table} count {count}");
            assert!(
                restore_bytes <= kernel_bytes + 4096,
                "refusing {table} count {count} allocated {restore_bytes} bytes; the empty kernel takes {kernel_bytes}"
            );
        }
    }
    assert_eq!(target_capacity_seen, 2, "resources and leases reach the capacity check");
}

#[test]
fn impossible_lease_member_counts_are_refused() {
    let bytes = snapshot();
    let layout = Layout::of(&bytes);
    let field = layout.field("lease[0].member_count");
    for count in [0, BUNDLE_SIZE_LIMIT + 1, u32::MAX, u32::MAX / 16 + 1] {
        let mut corrupted = bytes.clone();
        corrupted[field.offset..field.end()].copy_from_slice(&count.to_le_bytes());
        fix_header(&mut corrupted);
        let (restored, _) = allocated_during(|| Kernel::restore(config(), &corrupted));
        let expected = SnapshotError::InvalidField {
            field: "lease_member_count",
            offset: field.end() as u64,
            reason: format!("{count} members"),
        };
        assert_eq!(restored.err(), Some(expected), "member count {count}");
    }
}

// ---------------------------------------------------------------------------------------------
// Restoring into another configuration.
// ---------------------------------------------------------------------------------------------

#[test]
fn snapshot_of_another_shard_is_refused() {
    let bytes = snapshot();
    let other_shard = KernelConfig { shard_id: 1, ..config() };
    assert_eq!(restore_error(other_shard, &bytes), SnapshotError::ShardMismatch { found: 0, expected: 1 });
    let shard_three = populated(KernelConfig { shard_id: 3, ..config() }).kernel.encode_snapshot();
    assert_eq!(restore_error(config(), &shard_three), SnapshotError::ShardMismatch { found: 3, expected: 0 });
    let restored = Kernel::restore(KernelConfig { shard_id: 3, ..config() }, &shard_three).unwrap();
    assert_eq!(restored.encode_snapshot(), shard_three);
    assert!(matches!(restored.lease(LeaseId::new(3, 19)), LeaseLookup::Found(_)));
}

#[test]
fn restore_into_capacities_smaller_than_the_contents_is_refused() {
    let bytes = snapshot();
    let base = config();
    let cases = [
        (
            KernelConfig { resource_count_max: 9, ..base },
            SnapshotError::CountTooLarge { table: "resources", count: 10, limit: 9, why: "target capacity" },
        ),
        (
            KernelConfig { lease_count_max: 6, ..base },
            SnapshotError::CountTooLarge { table: "leases", count: 7, limit: 6, why: "target capacity" },
        ),
        (
            KernelConfig { lease_member_count_max: 9, ..base },
            SnapshotError::CountTooLarge {
                table: "lease_members",
                count: 10,
                limit: 9,
                why: "target capacity",
            },
        ),
        (
            KernelConfig { operation_count_max: 5, ..base },
            SnapshotError::CountTooLarge { table: "operations", count: 6, limit: 5, why: "target capacity" },
        ),
    ];
    for (smaller, expected) in cases {
        assert_eq!(restore_error(smaller, &bytes), expected);
    }
    // Leases D and I share a wheel bucket; a bucket of one cannot hold them.
    let one_per_bucket = KernelConfig { expiration_bucket_length_max: 1, ..base };
    let SnapshotError::InvalidField { field, .. } = restore_error(one_per_bucket, &bytes) else {
        panic!("an over-full bucket was not refused as an invalid field");
    };
    assert_eq!(field, "lease_deadline");
    // Exactly the contents fits.
    let exact = KernelConfig {
        resource_count_max: 10,
        lease_count_max: 7,
        lease_member_count_max: 10,
        operation_count_max: 6,
        expiration_bucket_length_max: 2,
        ..base
    };
    let restored = Kernel::restore(exact, &bytes).unwrap();
    let usage = restored.usage();
    assert_eq!(
        (usage.resources.used, usage.leases.used, usage.lease_members.used, usage.operations.used),
        (10, 7, 10, 6)
    );
}

/// Everything a client or operator can observe, for comparing two kernels.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    resources: Vec<Option<allocdb_core::ResourceView>>,
    leases: Vec<String>,
    used: [u64; 5],
    positions: (u64, u64, u64),
    due: Vec<Vec<allocdb_core::DueLease>>,
}

fn observe(kernel: &Kernel) -> Observed {
    let usage = kernel.usage();
    let due = [50, 100, 102, 200, 10_000]
        .into_iter()
        .map(|slot| {
            let mut due = Vec::new();
            kernel.due_expirations(slot, u32::MAX, &mut due);
            due
        })
        .collect();
    Observed {
        resources: (0..=12).map(|resource_id| kernel.resource(ResourceId(resource_id))).collect(),
        leases: (0..=kernel.last_applied_lsn() + 1)
            .map(|lsn| format!("{:?}", kernel.lease(LeaseId::new(0, lsn))))
            .collect(),
        used: [
            usage.resources.used,
            usage.leases.used,
            usage.lease_members.used,
            usage.operations.used,
            usage.expirations.used,
        ],
        positions: (kernel.last_applied_lsn(), kernel.last_request_slot(), kernel.retired_watermark()),
        due,
    }
}

#[test]
fn restore_into_larger_capacities_keeps_the_observable_state_and_behaviour() {
    let mut original = populated(config());
    let bytes = original.kernel.encode_snapshot();
    let larger = KernelConfig {
        resource_count_max: 100,
        lease_count_max: 50,
        lease_member_count_max: 200,
        operation_count_max: 64,
        bundle_size_max: 16,
        expiration_bucket_count: 32,
        expiration_bucket_length_max: 50,
        expirations_per_tick_max: 64,
        hash_seed: 12_345,
        ..config()
    };
    let mut restored = Driver::from_kernel(Kernel::restore(larger, &bytes).unwrap());
    assert_eq!(observe(&restored.kernel), observe(&original.kernel));
    // Everything after the config section encodes identically.
    let restored_bytes = restored.kernel.encode_snapshot();
    assert_eq!(restored_bytes[HEADER + CONFIG_SIZE_BYTES..], bytes[HEADER + CONFIG_SIZE_BYTES..]);

    // The same commands give the same outcomes: retries, conflicts, transitions, expiry,
    // retirement, a fresh execution after the dedupe window.
    let bundle = resource_ids(&[1, 2, 3]);
    let reserved = LeaseId::new(0, 19);
    let active = LeaseId::new(0, 20);
    let revoking = LeaseId::new(0, 22);
    let reserve = Command::Reserve { resource_ids: &bundle, holder_id: HolderId(11), ttl_slots: 60 };
    let create = |resource_id| Command::CreateResource { resource_id: ResourceId(resource_id) };
    let steps: [(u64, Option<allocdb_core::OperationKey>, Command<'_>, ResultCode); 10] = [
        (60, Some(key(1, 2)), reserve, ResultCode::Ok),
        (60, Some(key(1, 2)), create(1), ResultCode::OperationConflict),
        (
            61,
            None,
            Command::Release { lease_id: active, holder_id: HolderId(11), lease_epoch: 1 },
            ResultCode::Ok,
        ),
        (62, None, Command::Reclaim { lease_id: revoking }, ResultCode::Ok),
        (70, None, create(11), ResultCode::Ok),
        (100, None, Command::Expire { lease_id: reserved, deadline_slot: 100 }, ResultCode::Ok),
        (
            101,
            None,
            Command::Activate { lease_id: reserved, holder_id: HolderId(11), lease_epoch: 2 },
            ResultCode::InvalidState,
        ),
        (120, Some(key(4, 1)), reserve, ResultCode::Ok),
        (
            200,
            None,
            Command::Release { lease_id: reserved, holder_id: HolderId(11), lease_epoch: 2 },
            ResultCode::LeaseRetired,
        ),
        (200, Some(key(1, 2)), create(12), ResultCode::Ok),
    ];
    for (slot, operation, command, result) in steps {
        let expected = original.at(slot).submit(operation, command);
        assert_eq!(expected.result, result, "{command:?} at {slot} on the original");
        let outcome = restored.at(slot).submit(operation, command);
        assert_eq!(outcome, expected, "{command:?} at {slot}");
        assert_eq!(observe(&restored.kernel), observe(&original.kernel), "after {command:?} at {slot}");
    }
}
