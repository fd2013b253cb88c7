//! jit-iam: just-in-time access for AWS IAM.
//!
//! - `api`: the HTTP API (axum) and its OpenAPI document
//! - `domain`: integrations, tags, policies and their rules
//! - `storage`: Postgres queries (schema in `migrations/`)
//! - `aws`: the assumed-role client pool and every AWS call
//! - `worker`: background syncs and grants, claimed from Postgres with leases
//! - `app`: shared state and the `serve` lifecycle; `cli`, `config`, `telemetry`

pub mod api;
pub mod app;
pub mod aws;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod storage;
pub mod telemetry;
pub mod worker;
