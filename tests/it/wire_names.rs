//! Every wire name is the same wherever it shows: the JSON serde writes and
//! reads, `as_str` (what is stored), the OpenAPI schema's enum, and the SQL
//! CHECK list of each column that stores it (read back from a migrated database).
//! `wire_enum!` writes each name once; these tests hold the rest to it.

use std::collections::{BTreeMap, BTreeSet};

use jit_iam::domain::audit::AuditAction;
use jit_iam::domain::caller::Role;
use jit_iam::domain::grant::{CallOutcome, EventKind, GrantErrorCode, GrantStatus, PrincipalType, RevokeReason};
use jit_iam::domain::integration::{Connection, IntegrationStatus};
use jit_iam::domain::policy::Effect;
use jit_iam::domain::reconcile::{FindingAction, FindingKind, ReconcileStatus, ReconcileTrigger};
use jit_iam::domain::resource::{AccessLevel, ResourceType};
use jit_iam::domain::sync::{AccountSyncStatus, SyncStatus, SyncTrigger};
use jit_iam::domain::webhook::{DeliveryStatus, DisabledReason, EventType};
use jit_iam::grants::is_grantable;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;

use crate::support::TestDb;

/// The stored names of every value of a `wire_enum!`, checked against serde's
/// (both ways) and against the enum of its OpenAPI schema.
macro_rules! names {
    ($enum:ty) => {{
        let names: BTreeSet<String> = <$enum>::ALL.iter().map(|v| v.as_str().to_string()).collect();
        for value in <$enum>::ALL {
            let json = serde_json::to_value(value).unwrap();
            assert_eq!(json.as_str(), Some(value.as_str()), "{}: serde and as_str disagree", stringify!($enum));
            assert_eq!(serde_json::from_value::<$enum>(json).unwrap(), *value, "{}", stringify!($enum));
            assert_eq!(<$enum>::parse(value.as_str()), Some(*value), "{}", stringify!($enum));
        }
        let RefOr::T(Schema::Object(schema)) = <$enum as utoipa::PartialSchema>::schema() else {
            panic!("{}: the schema is not a string enum", stringify!($enum))
        };
        let listed: Vec<String> = schema.enum_values.unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        let all: Vec<&str> = <$enum>::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(listed, all, "{}: the schema and the enum disagree", stringify!($enum));
        names
    }};
}

#[test]
fn serde_names_and_schemas_agree_for_every_enum_sent() {
    names!(AuditAction);
    names!(GrantErrorCode);
    names!(FindingAction);
    names!(FindingKind);
    names!(AccessLevel);
    names!(EventType);
    names!(Effect);
}

/// (table, column) -> the values its CHECK constraint lists.
async fn check_lists() -> BTreeMap<(String, String), BTreeSet<String>> {
    let db = TestDb::new();
    let migrated = std::process::Command::new(env!("CARGO_BIN_EXE_jit-iam"))
        .arg("migrate")
        .env("DATABASE_URL", &db.url)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(migrated.success());
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select conrelid::regclass::text, pg_get_constraintdef(oid) from pg_constraint
         where contype = 'c' and conrelid <> 0 and pg_get_constraintdef(oid) like '%= ANY (ARRAY[%'",
    )
    .fetch_all(&db.pool().await)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(table, definition)| {
            // CHECK ((status = ANY (ARRAY['a'::text, 'b'::text])))
            let column = definition.trim_start_matches("CHECK ((").split(' ').next().unwrap().to_string();
            let values = definition.split('\'').skip(1).step_by(2).map(str::to_string).collect();
            ((table, column), values)
        })
        .collect()
}

#[tokio::test]
async fn every_check_list_is_its_enums_names() {
    let grantable: BTreeSet<String> =
        ResourceType::ALL.iter().filter(|t| is_grantable(**t)).map(|t| t.as_str().to_string()).collect();
    let expected: BTreeMap<(&str, &str), BTreeSet<String>> = [
        (("integrations", "connection"), names!(Connection)),
        (("integrations", "status"), names!(IntegrationStatus)),
        (("accounts", "last_sync_status"), names!(AccountSyncStatus)),
        (("sync_runs", "trigger"), names!(SyncTrigger)),
        (("sync_runs", "status"), names!(SyncStatus)),
        (("sync_run_accounts", "status"), names!(AccountSyncStatus)),
        (("resources", "type"), names!(ResourceType)),
        (("grants", "revoke_reason"), names!(RevokeReason)),
        (("grants", "resource_type"), grantable),
        (("grants", "status"), names!(GrantStatus)),
        (("grants", "principal_type"), names!(PrincipalType)),
        (("grant_events", "outcome"), names!(CallOutcome)),
        (("grant_events", "kind"), names!(EventKind)),
        (("shared_attachments", "principal_type"), names!(PrincipalType)),
        // Not enums of the API: the ledger's own words.
        (("shared_attachments", "kind"), ["assignment", "group", "policy"].map(String::from).into()),
        (("shared_attachments", "state"), ["attached", "attaching"].map(String::from).into()),
        (("audit_events", "role"), names!(Role)),
        (("reconcile_runs", "status"), names!(ReconcileStatus)),
        (("reconcile_runs", "trigger"), names!(ReconcileTrigger)),
        (("webhook_endpoints", "disabled_reason"), names!(DisabledReason)),
        (("webhook_deliveries", "status"), names!(DeliveryStatus)),
    ]
    .into();
    let found = check_lists().await;
    let found: BTreeMap<(&str, &str), &BTreeSet<String>> =
        found.iter().map(|((t, c), v)| ((t.as_str(), c.as_str()), v)).collect();
    assert_eq!(found.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "a CHECK list without its enum");
    for (column, names) in &expected {
        assert_eq!(found[column], names, "{column:?}: the CHECK list and the enum disagree");
    }
}
