//! Logging and metrics. `RUST_LOG` refines the default log level per module.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,aws_config=warn,aws_smithy_runtime=warn"))
        // At trace level the SDK writes AWS inputs and answers: never let that into the logs.
        .add_directive("aws_smithy_runtime=debug".parse().expect("a valid directive"))
        .add_directive("aws_smithy_runtime_api=debug".parse().expect("a valid directive"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).init(),
    }
}

/// Installs the Prometheus recorder behind the `metrics` macros used across the service.
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("jit_iam_revocation_lag_seconds".into()),
            &[0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0],
        )?
        .set_buckets_for_metric(
            Matcher::Full("jit_iam_sync_duration_seconds".into()),
            &[0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0],
        )?
        .install_recorder()?;
    Ok(handle)
}
