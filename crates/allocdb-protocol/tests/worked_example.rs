//! The worked example of `docs/protocol.md` §8, pinned: a handshake, a batch of two writes and
//! its results, each encoded by the real encoder, compared byte for byte with a field-by-field
//! layout written out here, decoded back, and rendered as the annotated hex dumps and the raw
//! stream dumps that the document must contain verbatim — so the document cannot go stale.
//!
//! To refresh the document after a deliberate format change, run
//! `cargo test -p allocdb-protocol --test worked_example -- --nocapture` and paste the printed
//! blocks.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

use std::fmt::Write as _;

use allocdb_core::{ClientId, HolderId, LeaseId, OperationId, Outcome, ResourceId, ResultCode};
use allocdb_protocol::{
    ClientMessage, Frame, FrameDecoder, Hello, HelloOk, ServerMessage, Write, WriteCommand, WriteOperation,
    WriteResult, encode_client, encode_server,
};

const DOCUMENT: &str = include_str!("../../../docs/protocol.md");
const CLUSTER_ID: u128 = 0xA110C;

/// A frame written out field by field: the bytes and a label for each field.
#[derive(Default)]
struct Layout {
    rows: Vec<(Vec<u8>, String)>,
}

impl Layout {
    fn field(mut self, bytes: &[u8], label: &str) -> Layout {
        self.rows.push((bytes.to_vec(), label.to_owned()));
        self
    }
    fn u8(self, value: u8, label: &str) -> Layout {
        self.field(&[value], label)
    }
    fn u16(self, value: u16, label: &str) -> Layout {
        self.field(&value.to_le_bytes(), label)
    }
    fn u32(self, value: u32, label: &str) -> Layout {
        self.field(&value.to_le_bytes(), label)
    }
    fn u64(self, value: u64, label: &str) -> Layout {
        self.field(&value.to_le_bytes(), label)
    }
    fn u128(self, value: u128, label: &str) -> Layout {
        self.field(&value.to_le_bytes(), label)
    }
    /// The frame header: length (computed from the rest), tag and request id.
    fn header(tag: u8, tag_name: &str, request_id: u64, body: Layout) -> Layout {
        let body_size_bytes: usize = body.rows.iter().map(|(bytes, _)| bytes.len()).sum();
        let length = u32::try_from(1 + 8 + body_size_bytes).unwrap();
        let mut layout = Layout::default()
            .u32(length, &format!("length = {length} (bytes after this field)"))
            .u8(tag, &format!("tag = {tag:#04x} {tag_name}"))
            .u64(request_id, &format!("request_id = {request_id}"));
        layout.rows.extend(body.rows);
        layout
    }
    fn bytes(&self) -> Vec<u8> {
        self.rows.iter().flat_map(|(bytes, _)| bytes.iter().copied()).collect()
    }
    fn render(&self) -> String {
        let mut text = String::from("offset  bytes                                            field\n");
        let mut offset = 0;
        for (bytes, label) in &self.rows {
            let hex: Vec<String> = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
            writeln!(text, "{offset:>6}  {:<47}  {label}", hex.join(" ")).unwrap();
            offset += bytes.len();
        }
        text
    }
}

/// A plain dump of a byte stream, 16 bytes per line, as a packet capture would show it.
fn stream_dump(bytes: &[u8]) -> String {
    let mut text = String::new();
    for (line, chunk) in bytes.chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|byte| format!("{byte:02x}")).collect();
        writeln!(text, "{:04x}  {}", line * 16, hex.join(" ")).unwrap();
    }
    text
}

fn hello() -> (ClientMessage, Layout) {
    let message = ClientMessage::Hello(Hello::new(CLUSTER_ID, ClientId(1001)));
    let body = Layout::default()
        .field(b"ALDB", "magic = \"ALDB\"")
        .u16(1, "protocol_version = 1")
        .u128(CLUSTER_ID, "cluster_id = 0xa110c")
        .u128(1001, "client_id = 1001");
    (message, Layout::header(0x01, "Hello", 1, body))
}

fn hello_ok() -> (ServerMessage, Layout) {
    let message = ServerMessage::HelloOk(HelloOk {
        protocol_version: 1,
        cluster_id: CLUSTER_ID,
        node_id: 1,
        frame_size_bytes_max: 1024 * 1024,
        batch_size_max: 8192,
    });
    let body = Layout::default()
        .u16(1, "protocol_version = 1")
        .u128(CLUSTER_ID, "cluster_id = 0xa110c")
        .u64(1, "node_id = 1")
        .u32(1024 * 1024, "frame_size_bytes_max = 1048576")
        .u32(8192, "batch_size_max = 8192");
    (message, Layout::header(0x81, "HelloOk", 1, body))
}

fn write_batch() -> (ClientMessage, Layout) {
    let operation = |id| Some(WriteOperation { operation_id: OperationId(id), client_id: None });
    let message = ClientMessage::WriteBatch(vec![
        Write {
            operation: operation(1),
            command: WriteCommand::CreateResource { resource_id: ResourceId(7) },
        },
        Write {
            operation: operation(2),
            command: WriteCommand::Reserve {
                ttl_ms: 30_000,
                holder_id: HolderId(42),
                resource_ids: vec![ResourceId(7)],
            },
        },
    ]);
    let body = Layout::default()
        .u32(2, "write count = 2")
        .u8(0b01, "write 0: flags = 0b01 (operation id follows)")
        .u128(1, "write 0: operation_id = 1")
        .u8(1, "write 0: command kind = 1 create_resource")
        .u128(7, "write 0: resource_id = 7")
        .u8(0b01, "write 1: flags = 0b01 (operation id follows)")
        .u128(2, "write 1: operation_id = 2")
        .u8(2, "write 1: command kind = 2 reserve")
        .u64(30_000, "write 1: ttl_ms = 30000")
        .u128(42, "write 1: holder_id = 42")
        .u16(1, "write 1: member count = 1")
        .u128(7, "write 1: resource_id = 7");
    (message, Layout::header(0x02, "WriteBatch", 2, body))
}

fn write_results() -> (ServerMessage, Layout) {
    let created = Outcome {
        result: ResultCode::Ok,
        applied_lsn: 1,
        from_retry_cache: false,
        lease_id: None,
        lease_epoch: None,
        deadline_slot: None,
    };
    let reserved = Outcome {
        applied_lsn: 2,
        lease_id: Some(LeaseId::new(0, 2)),
        lease_epoch: Some(1),
        deadline_slot: Some(173_001),
        ..created
    };
    let message =
        ServerMessage::WriteResults(vec![WriteResult::Committed(created), WriteResult::Committed(reserved)]);
    let body = Layout::default()
        .u32(2, "result count = 2")
        .u8(1, "result 0: outcome = 1 committed")
        .u8(0, "result 0: result code = 0 ok")
        .u64(1, "result 0: applied_lsn = 1")
        .u8(0, "result 0: flags = 0b0000 (no optional field)")
        .u8(1, "result 1: outcome = 1 committed")
        .u8(0, "result 1: result code = 0 ok")
        .u64(2, "result 1: applied_lsn = 2")
        .u8(0b1110, "result 1: flags = 0b1110 (lease_id, lease_epoch, deadline_slot)")
        .u128(2, "result 1: lease_id = 2 (shard 0, lsn 2)")
        .u64(1, "result 1: lease_epoch = 1")
        .u64(173_001, "result 1: deadline_slot = 173001");
    (message, Layout::header(0x82, "WriteResults", 2, body))
}

/// Notes `block` as missing from the document unless it appears there verbatim.
fn check_documented(name: &str, block: &str, missing: &mut String) {
    println!("---- {name} ----\n{block}");
    if !DOCUMENT.contains(block) {
        writeln!(missing, "---- {name} ----\n{block}").unwrap();
    }
}

#[test]
fn worked_example_bytes_match_the_encoder_the_decoder_and_the_document() {
    let client_decoder = FrameDecoder::<ClientMessage>::default();
    let server_decoder = FrameDecoder::<ServerMessage>::default();
    let mut client_stream = Vec::new();
    let mut server_stream = Vec::new();
    let mut missing = String::new();
    for (name, request_id, (message, layout)) in [("Hello", 1, hello()), ("WriteBatch", 2, write_batch())] {
        let mut bytes = Vec::new();
        encode_client(&message, request_id, &mut bytes).unwrap();
        assert_eq!(bytes, layout.bytes(), "{name} encodes as laid out");
        let expected = Frame { request_id, message };
        assert_eq!(client_decoder.decode(&bytes), Ok(Some((expected, bytes.len()))));
        check_documented(name, &layout.render(), &mut missing);
        client_stream.extend_from_slice(&bytes);
    }
    for (name, request_id, (message, layout)) in
        [("HelloOk", 1, hello_ok()), ("WriteResults", 2, write_results())]
    {
        let mut bytes = Vec::new();
        encode_server(&message, request_id, &mut bytes).unwrap();
        assert_eq!(bytes, layout.bytes(), "{name} encodes as laid out");
        let expected = Frame { request_id, message };
        assert_eq!(server_decoder.decode(&bytes), Ok(Some((expected, bytes.len()))));
        check_documented(name, &layout.render(), &mut missing);
        server_stream.extend_from_slice(&bytes);
    }
    check_documented("client → server stream", &stream_dump(&client_stream), &mut missing);
    check_documented("server → client stream", &stream_dump(&server_stream), &mut missing);
    assert!(missing.is_empty(), "docs/protocol.md §8 is stale; replace its blocks with:\n{missing}");
}
