//! Extractors that turn malformed input into the API's JSON errors, naming the
//! field or parameter at fault, instead of axum's plain-text rejections.

use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::error::{ApiError, ErrorCode};

/// A JSON body, parsed with the path of the failing field in every error.
pub struct ValidJson<T>(pub T);

impl<S, T> FromRequest<S> for ValidJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        parse_json(&read_body(req, state).await?).map(ValidJson)
    }
}

/// A JSON body that may be left out: no body at all, or `null`, reads as `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(req.headers());
        let bytes = read_body(req, state).await?;
        match (bytes.is_empty(), json) {
            (true, _) => Ok(OptionalJson(T::default())),
            (false, true) => parse_json::<Option<T>>(&bytes).map(|body| OptionalJson(body.unwrap_or_default())),
            (false, false) => Err(ApiError::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)),
        }
    }
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE)
        } else if timed_out(&rejection) {
            ApiError::from_status(StatusCode::REQUEST_TIMEOUT)
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::MalformedJson, "the body could not be read")
        }
    })
}

/// The body stalled past the body timeout (RequestBodyTimeoutLayer), somewhere in the error's chain.
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        current = e.source();
    }
    false
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// Syntax errors are 400 `malformed_json`; a well-formed body with a missing,
/// unknown or mistyped field is 422 `validation_failed` naming the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Some(field) = field_holding_nul(bytes) {
        return Err(ApiError::validation(field, "text may not contain the NUL character (\\u0000)"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        json_error(&path, error.into_inner())
    })?;
    deserializer.end().map_err(|e| json_error(".", e))?;
    Ok(value)
}

/// Postgres text cannot hold NUL: a string (or key) escaping one is refused
/// before anything reads it, named like serde names fields (`a.b[0].c`).
fn field_holding_nul(bytes: &[u8]) -> Option<String> {
    // Cheap test first: the escape, not preceded by an escaped backslash.
    let escaped_nul = bytes.windows(6).enumerate().any(|(i, w)| {
        w.eq_ignore_ascii_case(b"\\u0000") && bytes[..i].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 0
    });
    if !escaped_nul {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    nul_path(&value, String::new()).map(|path| if path.is_empty() { "body".to_string() } else { path })
}

fn nul_path(value: &serde_json::Value, path: String) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(text) => text.contains('\0').then_some(path),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| nul_path(item, format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let field = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
            if key.contains('\0') {
                Some(field)
            } else {
                nul_path(item, field)
            }
        }),
        _ => None,
    }
}

fn json_error(path: &str, error: serde_json::Error) -> ApiError {
    let message = error.to_string();
    match error.classify() {
        serde_json::error::Category::Data => ApiError::validation(field_of(path, &message), strip_position(&message)),
        _ => {
            let e = ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedJson,
                format!("the body is not valid JSON: {message}"),
            );
            if path == "." {
                e
            } else {
                e.with_field(path)
            }
        }
    }
}

/// serde names a missing or unknown field only in its message: add it to the path.
fn field_of(path: &str, message: &str) -> String {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    match (path, named) {
        (".", Some(name)) => name.to_string(),
        (".", None) => "body".to_string(),
        (path, Some(name)) if !path.ends_with(name) => format!("{path}.{name}"),
        (path, _) => path.to_string(),
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Path parameters; a malformed one is 400 `invalid_parameter` naming it.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                use axum::extract::path::ErrorKind;
                let name = match e.kind() {
                    ErrorKind::ParseErrorAtKey { key, .. } | ErrorKind::InvalidUtf8InPathParam { key } => key.clone(),
                    // A single parameter is parsed without its key: take it from the route.
                    _ => single_param_name(parts).unwrap_or_else(|| "path".to_string()),
                };
                Err(ApiError::invalid_parameter(name.clone(), format!("`{name}` is not a valid id")))
            }
            Err(e) => Err(ApiError::invalid_parameter("path", e.body_text())),
        }
    }
}

fn single_param_name(parts: &Parts) -> Option<String> {
    let route = parts.extensions.get::<MatchedPath>()?.as_str();
    let mut names = route.split('{').skip(1).filter_map(|rest| rest.split('}').next());
    match (names.next(), names.next()) {
        (Some(name), None) => Some(name.to_string()),
        _ => None,
    }
}

/// Tells a field given as `null` (Some(None)) from a field left out (None):
/// `#[serde(default, deserialize_with = "present")]` on an `Option<Option<T>>`.
pub fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A whole number, also when written `63.0` (JSON Schema's integers include
/// it): `#[serde(default, deserialize_with = "whole_number")]` on an `Option<i64>`.
pub fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    let whole = number.as_i64().or_else(|| {
        // Below 2^63 in magnitude, so the cast is exact.
        number.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| f as i64)
    });
    whole.map(Some).ok_or_else(|| serde::de::Error::custom(format!("invalid value: {number}, expected a whole number")))
}

/// Query parameters, read strictly: unknown or repeated names are refused so
/// that a typo never silently widens a query.
pub struct QueryParams(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        // Postgres text cannot hold NUL.
        if let Some((name, _)) = params.iter().find(|(name, value)| name.contains('\0') || value.contains('\0')) {
            let message = format!("`{name}` may not contain the NUL character (%00)");
            return Err(ApiError::invalid_parameter(name.clone(), message));
        }
        Ok(QueryParams(params))
    }
}

impl QueryParams {
    /// Every value of a repeatable parameter.
    pub fn all(&mut self, name: &str) -> Vec<String> {
        let (taken, rest) = std::mem::take(&mut self.0).into_iter().partition(|(k, _)| k == name);
        self.0 = rest;
        taken.into_iter().map(|(_, v)| v).collect()
    }

    /// The value of a parameter given at most once.
    pub fn one(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        let mut values = self.all(name);
        match values.len() {
            0 => Ok(None),
            1 => Ok(values.pop()),
            _ => Err(ApiError::invalid_parameter(name, format!("`{name}` may be given only once"))),
        }
    }

    /// A parameter parsed with `FromStr`; `expected` describes valid values.
    pub fn parse<T: FromStr>(&mut self, name: &str, expected: &str) -> Result<Option<T>, ApiError> {
        match self.one(name)? {
            None => Ok(None),
            Some(raw) => raw
                .parse()
                .map(Some)
                .map_err(|_| ApiError::invalid_parameter(name, format!("`{name}` must be {expected}"))),
        }
    }

    /// Fails on any parameter nobody asked for.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.0.first() {
            None => Ok(()),
            Some((name, _)) => Err(ApiError::invalid_parameter(name.clone(), format!("unknown parameter `{name}`"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Inner,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    fn error_of(body: &str) -> ApiError {
        parse_json::<Outer>(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn json_errors_name_the_field() {
        let e = error_of(r#"{"name": "x", "inner": {"count": "three"}}"#);
        assert_eq!((e.status.as_u16(), e.field.as_deref()), (422, Some("inner.count")));
        let e = error_of(r#"{"name": "x"}"#);
        assert_eq!((e.status.as_u16(), e.field.as_deref()), (422, Some("inner")));
        let e = error_of(r#"{"name": "x", "inner": {}}"#);
        assert_eq!((e.status.as_u16(), e.field.as_deref()), (422, Some("inner.count")));
        let e = error_of(r#"{"name": "x", "inner": {"count": 1}, "extra": 1}"#);
        assert_eq!((e.status.as_u16(), e.field.as_deref()), (422, Some("extra")));
        let e = error_of(r#"{"name": "x", "inner": {"count": 1, "more": 2}}"#);
        assert_eq!((e.status.as_u16(), e.field.as_deref()), (422, Some("inner.more")));
        assert_eq!(error_of(r#"{"name": "#).code, ErrorCode::MalformedJson);
        assert_eq!(error_of("").code, ErrorCode::MalformedJson);
        assert_eq!(error_of(r#"{"name": "x", "inner": {"count": 1}} trailing"#).code, ErrorCode::MalformedJson);
        assert_eq!(error_of("1").field.as_deref(), Some("body"));
    }

    #[test]
    fn nul_characters_are_refused_naming_the_field() {
        let e = error_of(r#"{"name": "a\u0000b", "inner": {"count": 1}}"#);
        assert_eq!((e.status.as_u16(), e.field.as_deref()), (422, Some("name")));
        let e = error_of(r#"{"name": "x", "inner": {"count": 1, "k\u0000": [1, "\u0000"]}}"#);
        assert_eq!(e.field.as_deref(), Some("inner.k\0"));
        assert_eq!(field_holding_nul(br#"{"a": [1, {"b": "\u0000"}]}"#).as_deref(), Some("a[1].b"));
        // An escaped backslash followed by "u0000" is text, not NUL.
        assert_eq!(field_holding_nul(br#"{"a": "\\u0000"}"#), None);
        assert_eq!(field_holding_nul(br#""\u0000""#).as_deref(), Some("body"));
    }

    #[test]
    fn whole_numbers_may_be_written_as_floats() {
        #[derive(Debug, Deserialize)]
        struct Seconds {
            #[serde(default, deserialize_with = "whole_number")]
            seconds: Option<i64>,
        }
        let seconds = |body: &str| parse_json::<Seconds>(body.as_bytes()).map(|s| s.seconds);
        assert_eq!(seconds(r#"{"seconds": 63}"#).unwrap(), Some(63));
        assert_eq!(seconds(r#"{"seconds": 63.0}"#).unwrap(), Some(63));
        assert_eq!(seconds(r#"{"seconds": -2e3}"#).unwrap(), Some(-2000));
        assert_eq!(seconds(r#"{"seconds": null}"#).unwrap(), None);
        assert_eq!(seconds("{}").unwrap(), None);
        for refused in ["63.5", "1e300", "18446744073709551615", "\"63\""] {
            let e = seconds(&format!(r#"{{"seconds": {refused}}}"#)).unwrap_err();
            assert_eq!((e.status.as_u16(), e.field.as_deref()), (422, Some("seconds")), "{refused}");
        }
    }
}
