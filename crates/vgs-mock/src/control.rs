//! The mock's own endpoints under `/_mock/`: stats, reset, fault settings, and the
//! API description.
//! Not part of VGS; never counted in the stats and never faulted.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{self, json_response};
use crate::faults::{FailNext, FailWith, FaultConfig};
use crate::state::MockState;

#[derive(Serialize)]
struct ControlError {
    error: String,
}

fn bad_request(error: String) -> Response {
    json_response(StatusCode::BAD_REQUEST, &ControlError { error })
}

async fn read<T: DeserializeOwned>(headers: &HeaderMap, body: Body) -> Result<T, Response> {
    if !api::content_type_is(headers, "application/json") {
        return Err(bad_request(
            "Content-Type must be application/json".to_owned(),
        ));
    }
    let bytes = api::read_limited(body, 64 * 1024)
        .await
        .map_err(|_| bad_request("body could not be read or is too large".to_owned()))?;
    serde_json::from_slice(&bytes).map_err(|error| bad_request(error.to_string()))
}

/// `GET /_mock/openapi.yaml`: the description of every route the mock serves.
pub(crate) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/yaml")],
        crate::OPENAPI_YAML,
    )
        .into_response()
}

/// `GET /_mock/stats`: the [`Stats`](crate::Stats) JSON.
pub(crate) async fn stats(State(state): State<MockState>) -> Response {
    json_response(StatusCode::OK, &state.stats())
}

/// `POST /_mock/reset`: clears records, tokens, counters, windows, queued faults.
pub(crate) async fn reset(State(state): State<MockState>) -> Response {
    state.reset();
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /_mock/reset-stats`: zeroes the counters only.
pub(crate) async fn reset_stats(State(state): State<MockState>) -> Response {
    state.reset_stats();
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /_mock/faults`: the random fault settings in force.
pub(crate) async fn get_faults(State(state): State<MockState>) -> Response {
    json_response(StatusCode::OK, &state.faults())
}

/// `POST /_mock/faults`: replaces the random fault settings ([`FaultConfig`] JSON).
pub(crate) async fn set_faults(
    State(state): State<MockState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let faults: FaultConfig = match read(&headers, body).await {
        Ok(faults) => faults,
        Err(response) => return response,
    };
    if let Err(error) = faults.validate() {
        return bad_request(error);
    }
    state.set_faults(faults);
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /_mock/fail-next`: queues a deterministic fault ([`FailNext`] JSON).
pub(crate) async fn fail_next(
    State(state): State<MockState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match read::<FailNext>(&headers, body).await {
        Ok(FailNext {
            with: FailWith::Status(status),
            ..
        }) if !(100..=599).contains(&status) => bad_request(format!(
            "with.status {status} is not an HTTP status: give 100 to 599"
        )),
        Ok(next) => {
            state.fail_next(next.route, next.count, next.with);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(response) => response,
    }
}
