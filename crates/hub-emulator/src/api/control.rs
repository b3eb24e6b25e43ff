//! Control routes under `/_emulator/` for tests and benchmarks: counters, run-time faults and
//! shaping, and fixtures the public API cannot create (convert refs, legacy one-part repo ids, Xet files
//! for bucket tests).
//! They are never shaped, faulted or counted.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::net::faults::FaultSpec;
use crate::server::error::ApiError;
use crate::server::App;
use hub_wire::repo::{RepoId, RepoType};
use hub_wire::units::parse_rate;

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/_emulator/stats", get(stats))
        .route("/_emulator/stats/reset", post(reset))
        .route(
            "/_emulator/faults",
            get(faults).post(set_faults).delete(clear_faults),
        )
        .route("/_emulator/shaping", get(shaping).post(set_shaping))
        .route("/_emulator/refs", post(convert_ref))
        .route("/_emulator/repos", post(create_repo))
        .route("/_emulator/xet-files", post(xet_file))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct XetFileBody {
    xet_hash: String,
    size: u64,
}

/// Declares a Xet file as present in the CAS (`{"xetHash", "size"}`), for tests of bucket rules
/// that run no Xet client. Nothing is stored but the hash and size: its content cannot be read.
async fn xet_file(State(app): State<Arc<App>>, Json(b): Json<XetFileBody>) -> Response {
    let h = &b.xet_hash;
    if h.len() != 64 || !h.bytes().all(|c| c.is_ascii_hexdigit()) {
        return ApiError::bad_request("xetHash must be 64 hex digits").into_response();
    }
    app.xet_fixtures.register(h, b.size);
    Json(json!({ "xetHash": h.to_ascii_lowercase(), "size": b.size })).into_response()
}

async fn stats(State(app): State<Arc<App>>) -> Json<Value> {
    Json(app.net.stats.snapshot())
}

async fn reset(State(app): State<Arc<App>>) -> Json<Value> {
    app.net.stats.reset();
    Json(app.net.stats.snapshot())
}

async fn faults(State(app): State<Arc<App>>) -> Json<Value> {
    Json(json!({ "faults": app.net.faults.describe() }))
}

/// Body: specs one per line, or JSON `["spec", ...]` / `{"faults": ["spec", ...]}`.
async fn set_faults(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    let specs: Vec<String> = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Ok(Value::Object(o)) => o
            .get("faults")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        _ => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
    };
    match specs
        .iter()
        .map(|s| FaultSpec::parse(s))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(parsed) => {
            app.net.faults.replace(parsed);
            Json(json!({ "faults": app.net.faults.describe() })).into_response()
        }
        Err(e) => ApiError::bad_request(e).into_response(),
    }
}

async fn clear_faults(State(app): State<Arc<App>>) -> Json<Value> {
    app.net.faults.replace(Vec::new());
    Json(json!({ "faults": [] }))
}

async fn shaping(State(app): State<Arc<App>>) -> Json<Value> {
    let s = &app.net.shaping;
    Json(json!({ "latency_ms": s.latency().as_millis() as u64, "bandwidth": s.bandwidth() }))
}

#[derive(Deserialize)]
struct ShapingBody {
    #[serde(default)]
    latency_ms: u64,
    #[serde(default)]
    bandwidth: Option<Value>,
}

async fn set_shaping(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let parsed: ShapingBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return ApiError::bad_request(format!("Invalid JSON body: {e}")).into_response(),
    };
    let bandwidth = match parsed.bandwidth {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_u64().filter(|&b| b > 0),
        Some(Value::String(s)) => match parse_rate(&s) {
            Ok(b) => Some(b),
            Err(e) => return ApiError::bad_request(e).into_response(),
        },
        Some(other) => {
            return ApiError::bad_request(format!("bad bandwidth {other}")).into_response()
        }
    };
    app.net.shaping.set(parsed.latency_ms, bandwidth);
    shaping(State(app)).await.into_response()
}

fn repo_type(s: Option<&str>) -> Result<RepoType, ApiError> {
    RepoType::parse(s.unwrap_or("model")).ok_or_else(|| ApiError::bad_request("bad repo type"))
}

#[derive(Deserialize)]
struct ConvertBody {
    repo_type: Option<String>,
    repo: String,
    name: String,
    #[serde(default)]
    revision: Option<String>,
}

/// Creates or moves `refs/convert/{name}` to a revision (dataset conversion refs).
async fn convert_ref(State(app): State<Arc<App>>, Json(b): Json<ConvertBody>) -> Response {
    let run = || -> Result<Value, ApiError> {
        let t = repo_type(b.repo_type.as_deref())?;
        let repo = app
            .store
            .repos
            .get(t, &b.repo)
            .ok_or_else(|| ApiError::not_found("no such repo"))?;
        let rev = b.revision.as_deref().unwrap_or("main");
        let target = repo
            .read()
            .resolve(rev)
            .ok_or_else(|| ApiError::revision_not_found(rev))?
            .commit
            .id
            .hex();
        repo.update(|m| -> Result<(), ApiError> {
            m.converts.insert(b.name.clone(), target.clone());
            Ok(())
        })?;
        Ok(json!({ "ref": format!("refs/convert/{}", b.name), "targetCommit": target }))
    };
    match run() {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct RepoBody {
    #[serde(rename = "type")]
    repo_type: Option<String>,
    id: String,
    owner: String,
    #[serde(default)]
    private: bool,
}

/// Creates a repo with any valid id, including legacy one-part ids such as `gpt2`.
async fn create_repo(State(app): State<Arc<App>>, Json(b): Json<RepoBody>) -> Response {
    let run = || -> Result<Value, ApiError> {
        let t = repo_type(b.repo_type.as_deref())?;
        let id = RepoId::parse(&b.id).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let origin = format!("http://{}", app.hub_addr);
        super::manage::create(&app, &origin, t, &id.to_string(), &b.owner, b.private, None)
            .map(|id| json!({ "id": id }))
    };
    match run() {
        Ok(v) => (StatusCode::OK, Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}
