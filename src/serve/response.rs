//! What every serve route answers with: the JSON and error bodies, the route names of
//! the metric labels, and the response counter. Routes, access control and body
//! parsing import it; it imports none of them.

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::App;

/// Route names as they appear in metric labels.
pub(super) const ROUTE_ADAPT: &str = "/v1/adapt";
/// See [`ROUTE_ADAPT`].
pub(super) const ROUTE_METRICS: &str = "/metrics";

pub(super) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut bytes = serde_json::to_vec(body).unwrap_or_default();
    bytes.push(b'\n');
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        Bytes::from(bytes),
    )
        .into_response()
}

pub(super) fn error_response(
    status: StatusCode,
    error: &str,
    field: Option<&str>,
    message: &str,
) -> Response {
    let mut body = json!({"error": error, "message": message});
    if let Some(f) = field {
        body["field"] = Value::String(f.to_string());
    }
    json_response(status, &body)
}

/// Counts a response of `route` by status code.
pub(super) fn count(app: &App, route: &str, r: &Response) {
    app.metrics.count_response(route, r.status().as_u16());
}
