//! What the decoder allocates, measured with a counting global allocator.
//!
//! The decoder must allocate nothing for a frame it rejects from its length prefix or from a
//! count (before the elements), nothing for a frame that is not complete yet, and for a frame it
//! decodes at most the frame's own size (member ids and message text are copied 1:1) plus one
//! in-memory record per counted write or result — a count already bounded by `batch_size_max`
//! and by the bytes present (`docs/protocol.md` §9). Counting is per thread, so the test
//! harness running other tests in parallel does not disturb the figures.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]
#![allow(unsafe_code, reason = "a counting global allocator wraps the system allocator")]

#[allow(dead_code, reason = "each test file uses part of the shared support")]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use allocdb_core::{BUNDLE_SIZE_LIMIT, HolderId, ResourceId};
use allocdb_protocol::{
    ClientMessage, DecodeError, FrameDecoder, ProtocolLimits, RejectionCode, ServerMessage, Write,
    WriteCommand, WriteResult,
};
use proptest::prelude::*;
use support::{client_frame, client_message, raw_frame, server_frame, server_message};

struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATED_BYTES: Cell<usize> = const { Cell::new(0) };
}

fn record(size_bytes: usize) {
    // `try_with` because the allocator also runs while thread-locals are being torn down.
    let _ = COUNTING.try_with(|counting| {
        if counting.get() {
            let _ = ALLOCATED_BYTES.try_with(|allocated| allocated.set(allocated.get() + size_bytes));
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the only
// addition is a thread-local counter update, which neither allocates nor touches the memory.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` came from `System` through this allocator with this layout.
        unsafe { System.dealloc(pointer, layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, size_bytes: usize) -> *mut u8 {
        record(size_bytes);
        // SAFETY: as in `dealloc`; the caller upholds `realloc`'s contract for `size_bytes`.
        unsafe { System.realloc(pointer, layout, size_bytes) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Runs `work` and returns its result and the bytes it allocated on this thread.
fn allocated_by<T>(work: impl FnOnce() -> T) -> (T, usize) {
    ALLOCATED_BYTES.with(|allocated| allocated.set(0));
    COUNTING.with(|counting| counting.set(true));
    let result = work();
    COUNTING.with(|counting| counting.set(false));
    (result, ALLOCATED_BYTES.with(Cell::get))
}

fn decode_client(bytes: &[u8]) -> (Result<bool, DecodeError>, usize) {
    let decoder = FrameDecoder::<ClientMessage>::new(ProtocolLimits::DEFAULT);
    allocated_by(|| decoder.decode(bytes).map(|decoded| decoded.is_some()))
}

fn decode_server(bytes: &[u8]) -> (Result<bool, DecodeError>, usize) {
    let decoder = FrameDecoder::<ServerMessage>::new(ProtocolLimits::DEFAULT);
    allocated_by(|| decoder.decode(bytes).map(|decoded| decoded.is_some()))
}

#[test]
fn rejected_prefixes_and_counts_allocate_nothing() {
    let hostile = [
        vec![0xff, 0xff, 0xff, 0xff],
        vec![0, 0, 0, 0],
        raw_frame(0x02, 1, &u32::MAX.to_le_bytes()),
        raw_frame(0x02, 1, &8192_u32.to_le_bytes()),
    ];
    for bytes in hostile {
        let (result, allocated) = decode_client(&bytes);
        assert!(result.is_err());
        assert_eq!(allocated, 0, "{bytes:02x?}");
    }
    let (result, allocated) = decode_server(&raw_frame(0x82, 1, &8192_u32.to_le_bytes()));
    assert!(result.is_err());
    assert_eq!(allocated, 0);
}

#[test]
fn an_incomplete_frame_allocates_nothing_however_large_it_announces_itself() {
    let mut bytes = (1024 * 1024 - 4_u32).to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0x02; 100]);
    assert_eq!(decode_client(&bytes), (Ok(false), 0));
}

#[test]
fn a_full_batch_of_the_smallest_writes_allocates_one_record_per_write() {
    let create =
        Write { operation: None, command: WriteCommand::CreateResource { resource_id: ResourceId(1) } };
    let frame = client_frame(&ClientMessage::WriteBatch(vec![create; 8192]), 1);
    assert_eq!(decode_client(&frame), (Ok(true), 8192 * size_of::<Write>()));
    let results = vec![WriteResult::Rejected(RejectionCode::StorageFailure); 8192];
    let frame = server_frame(&ServerMessage::WriteResults(results), 1);
    assert_eq!(decode_server(&frame), (Ok(true), 8192 * size_of::<WriteResult>()));
}

#[test]
fn the_largest_bundle_allocates_its_members_once() {
    let reserve = Write {
        operation: None,
        command: WriteCommand::Reserve {
            ttl_ms: 1,
            holder_id: HolderId(1),
            resource_ids: vec![ResourceId(3); BUNDLE_SIZE_LIMIT as usize],
        },
    };
    let frame = client_frame(&ClientMessage::WriteBatch(vec![reserve]), 1);
    let (result, allocated) = decode_client(&frame);
    assert_eq!(result, Ok(true));
    assert_eq!(allocated, size_of::<Write>() + 16 * BUNDLE_SIZE_LIMIT as usize);
}

/// The documented bound: the frame's size, plus one record per counted write or result.
fn allocation_bound_client(frame: &[u8], message: &ClientMessage) -> usize {
    let records = match message {
        ClientMessage::WriteBatch(writes) => writes.len() * size_of::<Write>(),
        _ => 0,
    };
    frame.len() + records
}

fn allocation_bound_server(frame: &[u8], message: &ServerMessage) -> usize {
    let records = match message {
        ServerMessage::WriteResults(results) => results.len() * size_of::<WriteResult>(),
        _ => 0,
    };
    frame.len() + records
}

proptest! {
    #[test]
    fn decoding_any_client_message_stays_within_the_bound(message in client_message()) {
        let frame = client_frame(&message, 1);
        let (result, allocated) = decode_client(&frame);
        prop_assert_eq!(result, Ok(true));
        prop_assert!(allocated <= allocation_bound_client(&frame, &message), "{} bytes for {:?}", allocated, message);
    }

    #[test]
    fn decoding_any_server_message_stays_within_the_bound(message in server_message()) {
        let frame = server_frame(&message, 1);
        let (result, allocated) = decode_server(&frame);
        prop_assert_eq!(result, Ok(true));
        prop_assert!(allocated <= allocation_bound_server(&frame, &message), "{} bytes for {:?}", allocated, message);
    }
}
