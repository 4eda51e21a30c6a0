//! Fuzz target: arbitrary bytes as the JSON body of every HTTP write route and of `/v1/batch`,
//! through the server's own strict parsing and translation (`allocdb_server::http::
//! parse_write_bodies`). Properties: parsing never panics, and a body is accepted by at most
//! the routes whose shapes it can match (the create, holder and operator bodies are disjoint
//! from the batch body, so no input is accepted by all five).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let accepted = allocdb_server::http::parse_write_bodies(bytes);
    assert!(accepted < 5, "one body parsed as every route: {accepted}");
});
