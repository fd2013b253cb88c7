//! Integration tests: the real server, a real Postgres, moto as AWS.

mod support;

mod architecture;
mod audit;
mod clients;
mod crashes;
mod deploy;
mod docs;
mod enforcement;
mod faults;
mod grant_policy;
mod grants;
mod identity_center;
mod integrations;
mod inventory;
mod latency_proxy;
mod least_privilege;
mod metrics;
mod openapi;
mod races;
mod readme_tour;
mod reconcile;
mod retention;
mod roles;
mod sessions;
mod startup;
mod webhooks;
mod wire_names;
mod workload_identity;
