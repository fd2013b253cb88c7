//! Counts every attempt of every AWS call, by service, operation and outcome.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Attached to every client the pool builds.
#[derive(Debug, Default)]
pub struct CallMetrics;

impl Intercept for CallMetrics {
    fn name(&self) -> &'static str {
        "jit-iam-call-metrics"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) =
            cfg.load::<Metadata>().map(|m| (m.service().to_string(), m.name().to_string())).unwrap_or_default();
        let outcome = match context.response().map(|r| r.status().as_u16()) {
            Some(status) if status < 300 => "success",
            Some(429) => "throttled",
            Some(status) if status < 500 => "client_error",
            Some(_) => "server_error",
            None => "no_response",
        };
        metrics::counter!("jit_iam_aws_requests_total",
            "service" => service.clone(), "operation" => operation.clone(), "outcome" => outcome)
        .increment(1);
        if cfg.load::<RequestAttempts>().is_some_and(|a| a.attempts() > 1) {
            metrics::counter!("jit_iam_aws_retries_total", "service" => service, "operation" => operation).increment(1);
        }
        Ok(())
    }
}
