//! Identifiers on the HTTP/JSON surface.
//!
//! u128 ids (resource, holder, lease, client, operation) travel as JSON strings: decimal on
//! output, decimal or hyphenated UUID (`8-4-4-4-12` hex digits, read as one big-endian u128) on
//! input. JSON numbers are refused for them, because most JSON parsers lose precision above
//! 2^53 and a silently rounded id would name someone else's lease. u64 values (lsn, slot,
//! epoch, ttl) are plain JSON numbers.
//!
//! [`Bundle`] reads a reserve's member list without ever holding more than
//! [`BUNDLE_SIZE_LIMIT`] ids: members past the limit are counted and skipped, so a body
//! claiming a million members costs no allocation beyond the limit and is answered `too_large`.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use allocdb_core::{BUNDLE_SIZE_LIMIT, IdTextError, ResourceId};
use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Parses a u128 id written in decimal or as a hyphenated UUID.
///
/// # Errors
/// A one-sentence reason naming the offending text (cut to a short prefix).
pub(crate) fn parse_id(text: &str) -> Result<u128, String> {
    let shown: String = text.chars().take(48).collect();
    allocdb_core::parse_id_text(text).map_err(|error| match error {
        IdTextError::NotUuid => format!("{shown:?} is not a hyphenated UUID"),
        IdTextError::NotDecimal => format!("{shown:?} is not a decimal u128 id or a hyphenated UUID"),
        IdTextError::OutOfRange => format!("{shown:?} is out of range for a u128 id"),
    })
}

/// A u128 id as a JSON string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiId(pub u128);

impl Serialize for ApiId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ApiId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ApiId, D::Error> {
        deserializer.deserialize_str(ApiIdVisitor)
    }
}

struct ApiIdVisitor;

impl Visitor<'_> for ApiIdVisitor {
    type Value = ApiId;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a u128 id as a decimal string or a hyphenated UUID string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<ApiId, E> {
        parse_id(text).map(ApiId).map_err(E::custom)
    }
}

impl utoipa::PartialSchema for ApiId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("A u128 id: decimal string (hyphenated UUID also accepted on input)."))
            .examples(["42"])
            .into()
    }
}

impl utoipa::ToSchema for ApiId {}

/// A reserve's members, holding at most [`BUNDLE_SIZE_LIMIT`] of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Bundle {
    /// The members, in request order, up to the limit.
    pub(crate) resource_ids: Vec<ResourceId>,
    /// How many members the request named (more than `resource_ids.len()` when cut).
    pub(crate) member_count: u64,
}

impl Bundle {
    /// Whether the request named more members than any configuration accepts.
    pub(crate) fn exceeds_limit(&self) -> bool {
        self.member_count > u64::from(BUNDLE_SIZE_LIMIT)
    }
}

impl<'de> Deserialize<'de> for Bundle {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Bundle, D::Error> {
        deserializer.deserialize_seq(BundleVisitor)
    }
}

struct BundleVisitor;

impl<'de> Visitor<'de> for BundleVisitor {
    type Value = Bundle;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an array of resource ids")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Bundle, A::Error> {
        let limit = BUNDLE_SIZE_LIMIT as usize;
        let capacity = sequence.size_hint().unwrap_or(0).min(limit);
        let mut resource_ids = Vec::with_capacity(capacity);
        let mut member_count: u64 = 0;
        while resource_ids.len() < limit {
            let Some(id) = sequence.next_element::<ApiId>()? else {
                return Ok(Bundle { resource_ids, member_count });
            };
            resource_ids.push(ResourceId(id.0));
            member_count += 1;
        }
        // Past the limit the answer is `too_large` whatever the members are: count, never store.
        while sequence.next_element::<IgnoredAny>()?.is_some() {
            member_count += 1;
        }
        Ok(Bundle { resource_ids, member_count })
    }
}

impl utoipa::PartialSchema for Bundle {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(<ApiId as utoipa::PartialSchema>::schema())
            .min_items(Some(1))
            .max_items(Some(BUNDLE_SIZE_LIMIT as usize))
            .into()
    }
}

impl utoipa::ToSchema for Bundle {}

/// A fresh operation id for a write that named none.
///
/// `SipHash` keyed once per process from the operating system's randomness (std's
/// `RandomState`), over a process-wide counter: distinct within a process by construction of
/// the counter, and unpredictable across processes.
pub(crate) fn fresh_operation_id() -> u128 {
    static KEYS: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let keys = KEYS.get_or_init(std::collections::hash_map::RandomState::new);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let half = |lane: u64| {
        let mut hasher = keys.build_hasher();
        hasher.write_u64(count);
        hasher.write_u64(lane);
        hasher.finish()
    };
    (u128::from(half(0)) << 64) | u128::from(half(1))
}

#[cfg(test)]
mod tests {
    use super::{ApiId, Bundle, fresh_operation_id, parse_id};

    #[test]
    fn decimal_and_uuid_forms_parse() {
        assert_eq!(parse_id("0"), Ok(0));
        assert_eq!(parse_id("340282366920938463463374607431768211455"), Ok(u128::MAX));
        assert_eq!(parse_id("00000000-0000-0000-0000-00000000002a"), Ok(42));
        assert_eq!(parse_id("FFFFFFFF-ffff-ffff-ffff-ffffffffffff"), Ok(u128::MAX));
    }

    #[test]
    fn malformed_ids_are_refused_with_a_reason() {
        for text in ["", "-1", "+1", "1.0", "abc", " 1", "340282366920938463463374607431768211456"] {
            let error = parse_id(text).unwrap_err();
            assert!(error.contains("u128") || error.contains("UUID"), "{text}: {error}");
        }
        assert!(parse_id("00000000-0000-0000-0000-00000000002").is_err());
        assert!(parse_id("00000000-0000-0000-0000_00000000002a").is_err());
        assert!(parse_id("0000000g-0000-0000-0000-00000000002a").is_err());
    }

    #[test]
    fn ids_are_json_strings_never_numbers() {
        assert_eq!(
            serde_json::to_string(&ApiId(u128::MAX)).unwrap(),
            "\"340282366920938463463374607431768211455\""
        );
        assert!(serde_json::from_str::<ApiId>("42").is_err());
        assert_eq!(serde_json::from_str::<ApiId>("\"42\"").unwrap(), ApiId(42));
    }

    #[test]
    fn bundle_past_the_limit_is_counted_not_stored() {
        let members: Vec<String> = (0..5_000).map(|index| format!("\"{index}\"")).collect();
        let bundle: Bundle = serde_json::from_str(&format!("[{}]", members.join(","))).unwrap();
        assert_eq!(bundle.member_count, 5_000);
        assert_eq!(bundle.resource_ids.len(), allocdb_core::BUNDLE_SIZE_LIMIT as usize);
        assert!(bundle.exceeds_limit());
        let small: Bundle = serde_json::from_str("[\"1\", \"2\"]").unwrap();
        assert_eq!(small.member_count, 2);
        assert!(!small.exceeds_limit());
    }

    #[test]
    fn fresh_operation_ids_differ() {
        let first = fresh_operation_id();
        let second = fresh_operation_id();
        assert_ne!(first, second);
    }
}
