//! Webhooks leaving jit-iam: where they may go (`destination`: URL and address
//! rules, the resolver that checks every connection), how they are signed
//! (`signing`: Standard Webhooks), the one HTTP client that sends an attempt
//! (`sender`), and when a failed delivery is tried again (`retry`). What the
//! API shows of webhooks is in `crate::domain::webhook`; the delivery loop is
//! in `crate::worker::webhooks`, and the events are recorded by the triggers
//! of migration 0011.

pub mod destination;
pub mod retry;
pub mod sender;
pub mod signing;
