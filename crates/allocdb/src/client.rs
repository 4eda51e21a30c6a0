//! The client subcommands (interfaces.md §1): writes, reads and status over the binary
//! protocol through `allocdb-client`.
//!
//! Every write carries an explicit operation id — `--operation-id`, or a fresh random one — and
//! a client id (`--client-id`, default [`CLI_CLIENT_ID`]), and both are printed, so running the
//! same command again with `--operation-id` is answered from the server's operation table
//! (`from_retry_cache`) instead of executing twice. Output is an aligned two-column table, or one
//! JSON object per write or read with `--json`. Anything but a committed `ok` (or a read that
//! found its item) ends with a one-line reason on stderr and an exit code from `exit.rs`.

use std::fmt::Write as _;
use std::process::ExitCode;

use allocdb_client::{
    Client, ClientConfig, ClientError, LeaseResult, RejectionCategory, ResourceResult, StatusResult, Write,
    WriteCommand, WriteOperation, WriteResult,
};
use allocdb_core::{ClientId, HolderId, LeaseId, OperationId, ResourceId, ResultCode, TableUsage};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::exit;
use crate::parse;

/// The client id CLI writes use unless `--client-id` says otherwise: the ASCII bytes of
/// `allocdb-cli`. It is shared by every CLI invocation so that a retry from a new process
/// with the same `--operation-id` reaches the same operation-table entry; random operation ids
/// (the default) never collide in practice.
pub(crate) const CLI_CLIENT_ID: u128 = 0x0061_6c6c_6f63_6462_2d63_6c69;

/// The client subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ClientCommand {
    /// Manage resources.
    #[command(subcommand)]
    Resource(ResourceCommand),
    /// Reserve every listed resource for a holder, all or nothing; prints the lease id, epoch and deadline.
    Reserve(ReserveArgs),
    /// Turn a reserved lease into an active one.
    Activate(HolderLeaseArgs),
    /// Give a reserved or active lease back.
    Release(HolderLeaseArgs),
    /// Operator: withdraw an active lease's authority.
    Revoke(LeaseArgs),
    /// Operator: free the resources of a revoking lease.
    Reclaim(LeaseArgs),
    /// Read a resource or a lease.
    #[command(subcommand)]
    Get(GetCommand),
    /// The server's role, applied lsn, slot and table usage.
    Status(StatusArgs),
}

/// `allocdb resource ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ResourceCommand {
    /// Create available resources (one write each).
    Create(CreateArgs),
}

/// `allocdb get ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum GetCommand {
    /// Read a resource.
    Resource(GetArgs),
    /// Read a lease.
    Lease(GetArgs),
}

/// Where the server is and how to print.
#[derive(Debug, Args)]
pub(crate) struct ConnectionArgs {
    /// Server binary-protocol address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7878")]
    server: String,
    /// The cluster id the server must belong to (serve's default is 1).
    #[arg(long, value_name = "ID", default_value = "1")]
    cluster_id: String,
    /// Print one JSON object per write or read instead of a table.
    #[arg(long)]
    json: bool,
}

/// How a write is identified.
#[derive(Debug, Args)]
pub(crate) struct WriteArgs {
    /// Operation id for a safe retry (default: a fresh random id, printed).
    #[arg(long, value_name = "ID")]
    operation_id: Option<String>,
    /// Client id that scopes the operation id (default: the shared CLI client id).
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
}

/// `allocdb resource create`.
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// Resource ids (decimal u128 or hyphenated UUID).
    #[arg(required = true, value_name = "ID")]
    resource_ids: Vec<String>,
    #[command(flatten)]
    write: WriteArgs,
    #[command(flatten)]
    connection: ConnectionArgs,
}

/// `allocdb reserve`.
#[derive(Debug, Args)]
pub(crate) struct ReserveArgs {
    /// The holder of the new lease.
    #[arg(long, value_name = "H")]
    holder: String,
    /// Time until the reservation may expire: 500ms, 30s, 10m, 1h.
    #[arg(long, value_name = "DURATION")]
    ttl: String,
    /// The bundle.
    #[arg(required = true, value_name = "RESOURCE_ID")]
    resource_ids: Vec<String>,
    #[command(flatten)]
    write: WriteArgs,
    #[command(flatten)]
    connection: ConnectionArgs,
}

/// `allocdb activate` and `allocdb release`.
#[derive(Debug, Args)]
pub(crate) struct HolderLeaseArgs {
    /// The lease.
    lease_id: String,
    /// Its holder.
    #[arg(long, value_name = "H")]
    holder: String,
    /// Its current epoch.
    #[arg(long, value_name = "E")]
    epoch: u64,
    #[command(flatten)]
    write: WriteArgs,
    #[command(flatten)]
    connection: ConnectionArgs,
}

/// `allocdb revoke` and `allocdb reclaim`.
#[derive(Debug, Args)]
pub(crate) struct LeaseArgs {
    /// The lease.
    lease_id: String,
    #[command(flatten)]
    write: WriteArgs,
    #[command(flatten)]
    connection: ConnectionArgs,
}

/// `allocdb get resource|lease`.
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// The resource or lease id.
    id: String,
    /// Serve the read only once the server has applied this lsn.
    #[arg(long, value_name = "N", default_value_t = 0)]
    min_lsn: u64,
    #[command(flatten)]
    connection: ConnectionArgs,
}

/// `allocdb status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
}

/// Why a client subcommand did not succeed: an exit code and a one-line reason.
#[derive(Debug)]
struct Failure {
    code: u8,
    reason: String,
}

impl Failure {
    fn new(code: u8, reason: impl Into<String>) -> Failure {
        Failure { code, reason: reason.into() }
    }

    fn usage(reason: String) -> Failure {
        Failure::new(exit::CLIENT_USAGE, reason)
    }
}

/// Runs one client subcommand to completion and returns its exit code.
pub(crate) fn run(command: ClientCommand) -> ExitCode {
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::new(exit::CLIENT_OTHER, format!("cannot start the async runtime: {error}")))
        .and_then(|runtime| runtime.block_on(execute(command)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("allocdb: {}", failure.reason.replace('\n', " "));
            ExitCode::from(failure.code)
        }
    }
}

async fn execute(command: ClientCommand) -> Result<(), Failure> {
    match command {
        ClientCommand::Resource(ResourceCommand::Create(arguments)) => {
            let commands = arguments
                .resource_ids
                .iter()
                .map(|text| {
                    let resource_id = ResourceId(parse::id("resource id", text).map_err(Failure::usage)?);
                    Ok(WriteCommand::CreateResource { resource_id })
                })
                .collect::<Result<Vec<_>, Failure>>()?;
            write(&arguments.connection, &arguments.write, commands).await
        }
        ClientCommand::Reserve(arguments) => {
            let ttl = parse::duration(&arguments.ttl).map_err(Failure::usage)?;
            let command = WriteCommand::Reserve {
                ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
                holder_id: HolderId(parse::id("holder id", &arguments.holder).map_err(Failure::usage)?),
                resource_ids: arguments
                    .resource_ids
                    .iter()
                    .map(|text| parse::id("resource id", text).map(ResourceId).map_err(Failure::usage))
                    .collect::<Result<_, _>>()?,
            };
            write(&arguments.connection, &arguments.write, vec![command]).await
        }
        ClientCommand::Activate(arguments) => {
            let (lease_id, holder_id) = lease_and_holder(&arguments)?;
            let command = WriteCommand::Activate { lease_id, holder_id, lease_epoch: arguments.epoch };
            write(&arguments.connection, &arguments.write, vec![command]).await
        }
        ClientCommand::Release(arguments) => {
            let (lease_id, holder_id) = lease_and_holder(&arguments)?;
            let command = WriteCommand::Release { lease_id, holder_id, lease_epoch: arguments.epoch };
            write(&arguments.connection, &arguments.write, vec![command]).await
        }
        ClientCommand::Revoke(arguments) => {
            let command = WriteCommand::Revoke { lease_id: lease(&arguments.lease_id)? };
            write(&arguments.connection, &arguments.write, vec![command]).await
        }
        ClientCommand::Reclaim(arguments) => {
            let command = WriteCommand::Reclaim { lease_id: lease(&arguments.lease_id)? };
            write(&arguments.connection, &arguments.write, vec![command]).await
        }
        ClientCommand::Get(GetCommand::Resource(arguments)) => get_resource(&arguments).await,
        ClientCommand::Get(GetCommand::Lease(arguments)) => get_lease(&arguments).await,
        ClientCommand::Status(arguments) => status(&arguments.connection).await,
    }
}

fn lease(text: &str) -> Result<LeaseId, Failure> {
    parse::id("lease id", text).map(LeaseId).map_err(Failure::usage)
}

fn lease_and_holder(arguments: &HolderLeaseArgs) -> Result<(LeaseId, HolderId), Failure> {
    let holder_id = parse::id("holder id", &arguments.holder).map(HolderId).map_err(Failure::usage)?;
    Ok((lease(&arguments.lease_id)?, holder_id))
}

async fn connect(connection: &ConnectionArgs, client_id: ClientId) -> Result<Client, Failure> {
    let cluster_id = parse::id("cluster id", &connection.cluster_id).map_err(Failure::usage)?;
    let mut config = ClientConfig::new(connection.server.clone());
    config.cluster_id = cluster_id;
    config.client_id = client_id;
    config.connection_count = 1;
    Client::connect(config).await.map_err(|error| unreachable_failure(&error, None))
}

fn unreachable_failure(error: &ClientError, retry_operation_id: Option<OperationId>) -> Failure {
    let mut reason = error.to_string();
    if let Some(operation_id) = retry_operation_id {
        let _ = write!(reason, "; the outcome is unknown: retry with --operation-id {operation_id}");
    }
    Failure::new(exit::CLIENT_UNREACHABLE, reason)
}

/// Sends the writes as one batch with explicit operation ids, prints each result, and fails
/// with the first one that is not a committed `ok`.
async fn write(
    connection: &ConnectionArgs,
    arguments: &WriteArgs,
    commands: Vec<WriteCommand>,
) -> Result<(), Failure> {
    let client_id = match &arguments.client_id {
        Some(text) => ClientId(parse::id("client id", text).map_err(Failure::usage)?),
        None => ClientId(CLI_CLIENT_ID),
    };
    let chosen_operation_id = match &arguments.operation_id {
        Some(_) if commands.len() != 1 => {
            return Err(Failure::usage(
                "--operation-id names one write; give exactly one resource id".to_owned(),
            ));
        }
        Some(text) => Some(OperationId(parse::id("operation id", text).map_err(Failure::usage)?)),
        None => None,
    };
    let client = connect(connection, client_id).await?;
    let writes: Vec<Write> = commands
        .iter()
        .map(|command| Write {
            operation: Some(WriteOperation {
                operation_id: chosen_operation_id.unwrap_or_else(|| client.new_operation_id()),
                client_id: Some(client_id),
            }),
            command: command.clone(),
        })
        .collect();
    let first_operation_id =
        writes.first().and_then(|write| write.operation).map(|operation| operation.operation_id);
    let results =
        client.write_batch(writes).await.map_err(|error| unreachable_failure(&error, first_operation_id))?;
    let mut first_failure = None;
    for (command, (operation_id, result)) in commands.iter().zip(results) {
        let mut fields = command_fields(command);
        fields.push(("operation_id", json!(operation_id.to_string())));
        fields.push(("client_id", json!(client_id.to_string())));
        fields.extend(result_fields(result));
        print_fields(&fields, connection.json);
        if first_failure.is_none() {
            first_failure = write_failure(command, operation_id, result);
        }
    }
    first_failure.map_or(Ok(()), Err)
}

fn command_fields(command: &WriteCommand) -> Vec<(&'static str, Value)> {
    let mut fields = vec![("command", json!(command.kind().as_str()))];
    if let WriteCommand::CreateResource { resource_id } = command {
        fields.push(("resource_id", json!(resource_id.to_string())));
    }
    fields
}

fn result_fields(result: WriteResult) -> Vec<(&'static str, Value)> {
    match result {
        WriteResult::Committed(outcome) => {
            let mut fields = vec![
                ("outcome", json!("committed")),
                ("result", json!(outcome.result.as_str())),
                ("applied_lsn", json!(outcome.applied_lsn)),
                ("from_retry_cache", json!(outcome.from_retry_cache)),
            ];
            if let Some(lease_id) = outcome.lease_id {
                fields.push(("lease_id", json!(lease_id.to_string())));
            }
            if let Some(lease_epoch) = outcome.lease_epoch {
                fields.push(("lease_epoch", json!(lease_epoch)));
            }
            if let Some(deadline_slot) = outcome.deadline_slot {
                fields.push(("deadline_slot", json!(deadline_slot)));
            }
            fields
        }
        WriteResult::Rejected(code) => vec![
            ("outcome", json!("rejected")),
            ("result", json!(code.as_str())),
            ("category", json!(code.category().as_str())),
        ],
    }
}

fn write_failure(command: &WriteCommand, operation_id: OperationId, result: WriteResult) -> Option<Failure> {
    match result {
        WriteResult::Committed(outcome) if outcome.result.is_ok() => None,
        WriteResult::Committed(outcome) => Some(Failure::new(
            exit::CLIENT_NOT_OK,
            format!("{}: {}", outcome.result, explain(outcome.result, command, operation_id)),
        )),
        WriteResult::Rejected(code) if code.category() == RejectionCategory::Indefinite => {
            Some(Failure::new(
                exit::CLIENT_INDEFINITE,
                format!("{code}: the outcome is unknown; retry with --operation-id {operation_id}"),
            ))
        }
        WriteResult::Rejected(code) => {
            Some(Failure::new(exit::CLIENT_REJECTED, format!("{code}: the server did not execute the write")))
        }
    }
}

/// One sentence for a committed non-`ok` result, naming the ids involved.
fn explain(code: ResultCode, command: &WriteCommand, operation_id: OperationId) -> String {
    let resources = match command {
        WriteCommand::CreateResource { resource_id } => format!("resource {resource_id}"),
        WriteCommand::Reserve { resource_ids, .. } if resource_ids.len() == 1 => {
            format!("resource {}", resource_ids[0])
        }
        WriteCommand::Reserve { resource_ids, .. } => {
            let list: Vec<String> = resource_ids.iter().map(ToString::to_string).collect();
            format!("one of resources {}", list.join(", "))
        }
        _ => "the resource".to_owned(),
    };
    let lease = match command {
        WriteCommand::Activate { lease_id, .. }
        | WriteCommand::Release { lease_id, .. }
        | WriteCommand::Revoke { lease_id }
        | WriteCommand::Reclaim { lease_id } => format!("lease {lease_id}"),
        _ => "the lease".to_owned(),
    };
    match code {
        ResultCode::AlreadyExists => format!("{resources} already exists"),
        ResultCode::ResourceNotFound => format!("{resources} does not exist"),
        ResultCode::ResourceBusy => format!("{resources} is held by another lease"),
        ResultCode::DuplicateResource => "the bundle names a resource twice".to_owned(),
        ResultCode::BundleTooLarge => "the bundle has more resources than the server allows".to_owned(),
        ResultCode::EmptyBundle => "the bundle is empty".to_owned(),
        ResultCode::TtlOutOfRange => "the ttl is zero or above the server's maximum".to_owned(),
        ResultCode::LeaseNotFound => format!("{lease} does not exist"),
        ResultCode::LeaseRetired => format!("{lease} is retired (its history window has passed)"),
        ResultCode::InvalidState => {
            format!("{lease} is not in a state that allows {}", command.kind().as_str())
        }
        ResultCode::HolderMismatch => format!("{lease} belongs to another holder"),
        ResultCode::StaleEpoch => format!("{lease} has moved past the given epoch"),
        ResultCode::OperationConflict => {
            format!("operation id {operation_id} was already used for a different command")
        }
        _ => "the server's tables are full or the command had no effect".to_owned(),
    }
}

async fn get_resource(arguments: &GetArgs) -> Result<(), Failure> {
    let resource_id = ResourceId(parse::id("resource id", &arguments.id).map_err(Failure::usage)?);
    let client = connect(&arguments.connection, ClientId(CLI_CLIENT_ID)).await?;
    let result = client
        .get_resource(resource_id, arguments.min_lsn)
        .await
        .map_err(|error| unreachable_failure(&error, None))?;
    let (fields, failure) = match result {
        ResourceResult::Found { resource, served_lsn } => (
            vec![
                ("found", json!(true)),
                ("resource_id", json!(resource.resource_id.to_string())),
                ("state", json!(resource.state.as_str())),
                (
                    "current_lease_id",
                    resource.current_lease_id.map_or(Value::Null, |id| json!(id.to_string())),
                ),
                ("version", json!(resource.version)),
                ("served_lsn", json!(served_lsn)),
            ],
            None,
        ),
        ResourceResult::NotFound { served_lsn } => (
            not_found_fields("not_found", served_lsn),
            Some(Failure::new(
                exit::CLIENT_NOT_FOUND,
                format!("not found: resource {resource_id} does not exist (as of lsn {served_lsn})"),
            )),
        ),
        ResourceResult::FenceNotApplied { applied_lsn } => {
            (vec![], Some(fence_failure(applied_lsn, arguments.min_lsn)))
        }
        ResourceResult::Unavailable(code) => (vec![], Some(unavailable_failure(code))),
    };
    print_read(&fields, arguments.connection.json, failure)
}

async fn get_lease(arguments: &GetArgs) -> Result<(), Failure> {
    let lease_id = LeaseId(parse::id("lease id", &arguments.id).map_err(Failure::usage)?);
    let client = connect(&arguments.connection, ClientId(CLI_CLIENT_ID)).await?;
    let result = client
        .get_lease(lease_id, arguments.min_lsn)
        .await
        .map_err(|error| unreachable_failure(&error, None))?;
    let optional = |value: Option<u64>| value.map_or(Value::Null, |value| json!(value));
    let (fields, failure) = match result {
        LeaseResult::Found { lease, served_lsn } => (
            vec![
                ("found", json!(true)),
                ("lease_id", json!(lease.lease_id.to_string())),
                ("holder_id", json!(lease.holder_id.to_string())),
                ("state", json!(lease.state.as_str())),
                ("lease_epoch", json!(lease.lease_epoch)),
                ("created_lsn", json!(lease.created_lsn)),
                ("deadline_slot", optional(lease.deadline_slot)),
                ("released_lsn", optional(lease.released_lsn)),
                ("retire_after_slot", optional(lease.retire_after_slot)),
                (
                    "resource_ids",
                    Value::Array(lease.resource_ids.iter().map(|id| json!(id.to_string())).collect()),
                ),
                ("served_lsn", json!(served_lsn)),
            ],
            None,
        ),
        LeaseResult::NotFound { served_lsn } => (
            not_found_fields("not_found", served_lsn),
            Some(Failure::new(
                exit::CLIENT_NOT_FOUND,
                format!("not found: lease {lease_id} does not exist (as of lsn {served_lsn})"),
            )),
        ),
        LeaseResult::Retired { served_lsn } => (
            not_found_fields("retired", served_lsn),
            Some(Failure::new(
                exit::CLIENT_NOT_FOUND,
                format!("lease_retired: lease {lease_id} is retired (its history window has passed)"),
            )),
        ),
        LeaseResult::FenceNotApplied { applied_lsn } => {
            (vec![], Some(fence_failure(applied_lsn, arguments.min_lsn)))
        }
        LeaseResult::Unavailable(code) => (vec![], Some(unavailable_failure(code))),
    };
    print_read(&fields, arguments.connection.json, failure)
}

fn not_found_fields(reason: &'static str, served_lsn: u64) -> Vec<(&'static str, Value)> {
    vec![("found", json!(false)), ("reason", json!(reason)), ("served_lsn", json!(served_lsn))]
}

fn fence_failure(applied_lsn: u64, min_lsn: u64) -> Failure {
    Failure::new(
        exit::CLIENT_NOT_SERVED,
        format!(
            "fence_not_applied: the server has applied lsn {applied_lsn}, below --min-lsn {min_lsn}; retry later"
        ),
    )
}

fn unavailable_failure(code: allocdb_client::RejectionCode) -> Failure {
    Failure::new(exit::CLIENT_NOT_SERVED, format!("{code}: the server cannot serve reads now"))
}

fn print_read(
    fields: &[(&'static str, Value)],
    as_json: bool,
    failure: Option<Failure>,
) -> Result<(), Failure> {
    if !fields.is_empty() {
        print_fields(fields, as_json);
    }
    failure.map_or(Ok(()), Err)
}

async fn status(connection: &ConnectionArgs) -> Result<(), Failure> {
    let client = connect(connection, ClientId(CLI_CLIENT_ID)).await?;
    let status: StatusResult = client.status().await.map_err(|error| unreachable_failure(&error, None))?;
    let usage = status.usage;
    let tables: [(&'static str, TableUsage); 5] = [
        ("resources", usage.resources),
        ("leases", usage.leases),
        ("lease_members", usage.lease_members),
        ("operations", usage.operations),
        ("expirations", usage.expirations),
    ];
    if connection.json {
        let mut object = serde_json::Map::new();
        object.insert("node_id".to_owned(), json!(status.node_id));
        object.insert("role".to_owned(), json!(status.role.as_str()));
        object.insert("healthy".to_owned(), json!(status.healthy));
        object.insert("applied_lsn".to_owned(), json!(status.applied_lsn));
        object.insert("current_slot".to_owned(), json!(status.current_slot));
        let usage: serde_json::Map<String, Value> = tables
            .iter()
            .map(|(name, table)| {
                ((*name).to_owned(), json!({"used": table.used, "capacity": table.capacity}))
            })
            .collect();
        object.insert("usage".to_owned(), Value::Object(usage));
        println!("{}", Value::Object(object));
    } else {
        let mut fields = vec![
            ("node_id", json!(status.node_id)),
            ("role", json!(status.role.as_str())),
            ("healthy", json!(status.healthy)),
            ("applied_lsn", json!(status.applied_lsn)),
            ("current_slot", json!(status.current_slot)),
        ];
        for (name, table) in tables {
            fields.push((name, json!(format!("{} / {}", table.used, table.capacity))));
        }
        print_fields(&fields, false);
    }
    Ok(())
}

/// Prints one JSON object on one line, or an aligned `name  value` table followed by a blank
/// line (so several writes stay readable).
fn print_fields(fields: &[(&'static str, Value)], as_json: bool) {
    if as_json {
        let object: serde_json::Map<String, Value> =
            fields.iter().map(|(name, value)| ((*name).to_owned(), value.clone())).collect();
        println!("{}", Value::Object(object));
        return;
    }
    print!("{}", render_table(fields));
}

fn render_table(fields: &[(&'static str, Value)]) -> String {
    let width = fields.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (name, value) in fields {
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Null => "-".to_owned(),
            Value::Array(items) => items
                .iter()
                .map(|item| item.as_str().map_or_else(|| item.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        let _ = writeln!(out, "{name:<width$}  {text}");
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::render_table;

    #[test]
    fn tables_align_values_and_show_missing_as_dash() {
        let table = render_table(&[
            ("result", json!("ok")),
            ("lease_epoch", json!(1)),
            ("deadline_slot", json!(null)),
            ("resource_ids", json!(["1", "2"])),
        ]);
        assert_eq!(table, "result         ok\nlease_epoch    1\ndeadline_slot  -\nresource_ids   1,2\n\n");
    }
}
