//! The `OpenAPI` document, generated from the handlers' and bodies' annotations (never written
//! by hand), built once and served at `/openapi.json`.

use std::sync::OnceLock;

use utoipa::OpenApi;

use super::answers::{CommittedBody, RejectedBody, WriteBody};
use super::batch::{BatchResponse, BatchResult};
use super::ids::ApiId;
use super::ops::{HealthBody, StatusBody, TableBody, TablesBody};
use super::reads::{LeaseBody, ReadMissBody, ResourceBody};
use super::requests::{
    BatchCommand, BatchHolderCommand, BatchOperatorCommand, BatchRequest, CreateResourceRequest,
    HolderRequest, OperatorRequest, ReserveRequest,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "AllocDB HTTP/JSON API",
        description = "Leases over scarce resources: one resource, one winner. See docs/http.md.",
        license(name = "Apache-2.0"),
    ),
    paths(
        super::writes::create_resource,
        super::writes::reserve,
        super::writes::activate,
        super::writes::release,
        super::writes::revoke,
        super::writes::reclaim,
        super::batch::batch,
        super::reads::get_resource,
        super::reads::get_lease,
        super::ops::status,
        super::ops::healthz,
        super::ops::readyz,
        super::ops::metrics,
        super::ops::openapi,
    ),
    components(schemas(
        ApiId,
        CreateResourceRequest,
        ReserveRequest,
        HolderRequest,
        OperatorRequest,
        BatchRequest,
        BatchCommand,
        BatchHolderCommand,
        BatchOperatorCommand,
        CommittedBody,
        RejectedBody,
        WriteBody,
        BatchResult,
        BatchResponse,
        ResourceBody,
        LeaseBody,
        ReadMissBody,
        StatusBody,
        TablesBody,
        TableBody,
        HealthBody,
    ))
)]
struct ApiDoc;

/// The document as JSON.
pub(crate) fn document_json() -> String {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| {
            ApiDoc::openapi()
                .to_json()
                .unwrap_or_else(|error| format!("{{\"error\":\"the document could not be built: {error}\"}}"))
        })
        .clone()
}
