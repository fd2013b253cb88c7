//! Integration tests: the real server, a real Postgres, moto as AWS.

mod support;

mod integrations;
mod least_privilege;
mod crashes;
mod faults;
mod grants;
mod inventory;
mod openapi;
mod startup;
