//! Keyset pagination with opaque cursors: stable order, no OFFSET.

use utoipa::IntoParams;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::QueryParams;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

/// The key a list is ordered by, as a cursor position.
pub trait CursorKey {
    fn position(&self) -> u128;
}

impl CursorKey for Uuid {
    fn position(&self) -> u128 {
        self.as_u128()
    }
}

/// Event sequence numbers, never negative.
impl CursorKey for i64 {
    fn position(&self) -> u128 {
        u128::try_from(*self).unwrap_or(0)
    }
}

/// Account ids: twelve digits, so their numeric order is their text order.
impl CursorKey for String {
    fn position(&self) -> u128 {
        self.parse().unwrap_or(u128::MAX)
    }
}

/// A cursor is a position in the list's order, 32 lowercase hex digits. Every
/// such string is a valid position (the page after it, maybe empty), so the
/// document's pattern says exactly which cursors are accepted.
fn encode_cursor(position: u128) -> String {
    format!("{position:032x}")
}

fn decode_cursor(cursor: &str) -> Result<u128, ApiError> {
    let well_formed = cursor.len() == 32 && cursor.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    well_formed
        .then(|| u128::from_str_radix(cursor, 16).ok())
        .flatten()
        .ok_or_else(|| ApiError::invalid_parameter("cursor", "`cursor` must be a `next_cursor` this service returned"))
}

/// Declares `$name`, one page of a list of `$item` in a stable order: the
/// page type of every list, written once.
macro_rules! page {
    ($name:ident of $item:ty) => {
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
            /// Pass as `cursor` to get the next page; absent on the last page.
            #[serde(skip_serializing_if = "Option::is_none")]
            #[schema(nullable = false)]
            pub next_cursor: Option<String>,
        }
    };
}
pub(crate) use page;

/// The paging parameters every list takes (documentation; `PageRequest` reads them).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // only its OpenAPI description is used
pub struct PageParams {
    /// Page size, 1-1000 (default 100)
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page (empty or left out: the first page)
    #[param(pattern = "^([0-9a-f]{32})?$")]
    cursor: Option<String>,
}

/// `limit` (1-1000, default 100) and `cursor`, the two paging parameters.
pub struct PageRequest {
    pub limit: i64,
    pub after: Option<u128>,
}

impl PageRequest {
    pub fn from_query(params: &mut QueryParams) -> Result<Self, ApiError> {
        let limit = params.parse::<i64>("limit", "an integer from 1 to 1000")?.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid_parameter("limit", "`limit` must be an integer from 1 to 1000"));
        }
        // An empty `cursor=` is the first page, as no cursor is.
        let after = params.one("cursor")?.filter(|c| !c.is_empty()).map(|c| decode_cursor(&c)).transpose()?;
        Ok(Self { limit, after })
    }

    /// The cursor's key, for lists ordered by id.
    pub fn after_id(&self) -> Option<Uuid> {
        self.after.map(Uuid::from_u128)
    }

    /// The cursor's key, for lists ordered by sequence number.
    pub fn after_sequence(&self) -> Option<i64> {
        self.after.map(|position| i64::try_from(position).unwrap_or(i64::MAX))
    }

    /// The cursor's key, for lists ordered by account id (past the last
    /// possible account id: after every account).
    pub fn after_account(&self) -> Option<String> {
        self.after.map(|position| format!("{:012}", position.min(999_999_999_999)))
    }

    /// Rows to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch_limit(&self) -> i64 {
        self.limit + 1
    }

    /// Trims the extra row and returns the cursor of the next page, if any.
    pub fn finish<T, K: CursorKey>(&self, mut rows: Vec<T>, key_of: impl Fn(&T) -> K) -> (Vec<T>, Option<String>) {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let next = if more { rows.last().map(|row| encode_cursor(key_of(row).position())) } else { None };
        (rows, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_malformed_ones_fail() {
        let id = Uuid::now_v7();
        let page = PageRequest { limit: 1, after: Some(decode_cursor(&encode_cursor(id.position())).unwrap()) };
        assert_eq!(page.after_id(), Some(id));
        let page = PageRequest { limit: 1, after: Some(decode_cursor(&encode_cursor(42_i64.position())).unwrap()) };
        assert_eq!(page.after_sequence(), Some(42));
        let account = "012345678901".to_string();
        let page = PageRequest { limit: 1, after: Some(decode_cursor(&encode_cursor(account.position())).unwrap()) };
        assert_eq!(page.after_account(), Some(account));
        for malformed in ["not-a-cursor", "0", &"F".repeat(32), &format!("+{}", "0".repeat(31)), &"0".repeat(33)] {
            assert!(decode_cursor(malformed).is_err(), "{malformed}");
        }
    }

    #[test]
    fn positions_past_every_key_are_valid_and_after_everything() {
        let page = PageRequest { limit: 1, after: Some(u128::MAX) };
        assert_eq!(page.after_sequence(), Some(i64::MAX));
        assert_eq!(page.after_account().as_deref(), Some("999999999999"));
    }

    #[test]
    fn pages_stop_when_rows_run_out() {
        let page = PageRequest { limit: 2, after: None };
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let (rows, next) = page.finish(ids.clone(), |id| *id);
        assert_eq!(rows, ids[..2]);
        assert_eq!(decode_cursor(&next.unwrap()).unwrap(), ids[1].as_u128());
        let (rows, next) = page.finish(ids[..2].to_vec(), |id| *id);
        assert_eq!(rows.len(), 2);
        assert!(next.is_none());
    }
}
