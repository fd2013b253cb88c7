//! Keyset pagination with opaque cursors: stable order, no OFFSET.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use utoipa::IntoParams;
use uuid::Uuid;

use super::extract::QueryParams;
use crate::error::ApiError;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

/// Cursors carry a version prefix so that anything the service did not issue is refused.
const CURSOR_PREFIX: &str = "jit1:";

/// The cursor of a page ending at `last_key` (an id, or an account id).
pub fn encode_cursor(last_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{last_key}"))
}

fn invalid_cursor() -> ApiError {
    ApiError::invalid_parameter("cursor", "`cursor` must be a `next_cursor` this service returned")
}

pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(CURSOR_PREFIX).filter(|key| !key.is_empty()).map(str::to_string))
        .ok_or_else(invalid_cursor)
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
    cursor: Option<String>,
}

/// `limit` (1-1000, default 100) and `cursor`, the two paging parameters.
pub struct PageRequest {
    pub limit: i64,
    pub after: Option<String>,
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
    pub fn after_id(&self) -> Result<Option<Uuid>, ApiError> {
        self.after.as_deref().map(|key| Uuid::parse_str(key).map_err(|_| invalid_cursor())).transpose()
    }

    /// Rows to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch_limit(&self) -> i64 {
        self.limit + 1
    }

    /// Trims the extra row and returns the cursor of the next page, if any.
    pub fn finish<T, K: ToString>(&self, mut rows: Vec<T>, key_of: impl Fn(&T) -> K) -> (Vec<T>, Option<String>) {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let next = if more { rows.last().map(|row| encode_cursor(&key_of(row).to_string())) } else { None };
        (rows, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_forgeries_fail() {
        let id = Uuid::now_v7();
        let page = PageRequest { limit: 1, after: Some(decode_cursor(&encode_cursor(&id.to_string())).unwrap()) };
        assert_eq!(page.after_id().unwrap(), Some(id));
        assert!(decode_cursor("not-a-cursor").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode(id.to_string())).is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("jit1:")).is_err());
        let forged =
            PageRequest { limit: 1, after: Some(decode_cursor(&URL_SAFE_NO_PAD.encode("jit1:nope")).unwrap()) };
        assert!(forged.after_id().is_err());
    }

    #[test]
    fn pages_stop_when_rows_run_out() {
        let page = PageRequest { limit: 2, after: None };
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let (rows, next) = page.finish(ids.clone(), |id| *id);
        assert_eq!(rows, ids[..2]);
        assert_eq!(decode_cursor(&next.unwrap()).unwrap(), ids[1].to_string());
        let (rows, next) = page.finish(ids[..2].to_vec(), |id| *id);
        assert_eq!(rows.len(), 2);
        assert!(next.is_none());
    }
}
