//! jit-iam: just-in-time access for AWS IAM.
//!
//! - `api`: the HTTP API (axum) and its OpenAPI document
//! - `domain`: integrations, tags, policies and their rules
//! - `grants`: the rules of a grant, one home per mechanism (checks, plan, apply, revoke)
//! - `storage`: Postgres queries (schema in `migrations/`)
//! - `aws`: the assumed-role client pool and every AWS call
//! - `worker`: background syncs, grants, reconciliation and webhook deliveries, claimed from Postgres with leases
//! - `webhooks`: the HTTP client webhooks go out through, reaching only the addresses allowed
//! - `app`: the shared state; `server`: the `serve` lifecycle; `cli`, `config`, `telemetry`

pub mod api;
pub mod app;
pub mod aws;
pub mod cli;
pub mod config;
pub mod domain;
pub mod grants;
pub mod server;
pub mod storage;
pub mod telemetry;
pub mod webhooks;
pub mod worker;
