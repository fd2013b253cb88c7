//! The `jit-iam` command: `serve` (the default), `migrate`, `openapi`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{DatabaseConfig, ServeConfig};
use crate::{api, server, storage, telemetry};

#[derive(Parser)]
#[command(name = "jit-iam", version, about = "Just-in-time access for AWS IAM")]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    serve: ServeConfig,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API and run the background workers (the default).
    Serve(Box<ServeConfig>),
    /// Create the database if needed, apply migrations, and exit.
    Migrate(DatabaseConfig),
    /// Print the OpenAPI document.
    Openapi {
        /// 3.1 (the document), or 3.0 (its rendition for generators that read only 3.0)
        #[arg(long, value_parser = ["3.1", "3.0"], default_value = "3.1")]
        openapi_version: String,
    },
}

/// Exit codes: 0 success, 1 runtime failure, 2 bad configuration.
pub async fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(2, e.to_string().lines().next().unwrap_or("invalid arguments")),
    };
    match cli.command {
        Some(Command::Openapi { openapi_version }) => {
            let doc = match openapi_version.as_str() {
                "3.0" => api::openapi30::from_3_1(&api::openapi()),
                _ => api::openapi(),
            };
            let doc = serde_json::to_string_pretty(&doc).expect("the OpenAPI document serializes");
            println!("{doc}");
            ExitCode::SUCCESS
        }
        Some(Command::Migrate(database)) => {
            telemetry::init(crate::config::LogFormat::Text);
            let result = async {
                storage::create_database_if_missing(&database).await?;
                storage::migrate(&storage::connect(&database).await?).await
            };
            match result.await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(if e.is_configuration() { 2 } else { 1 }, &e.to_string()),
            }
        }
        Some(Command::Serve(config)) => serve(*config).await,
        None => serve(cli.serve).await,
    }
}

async fn serve(config: ServeConfig) -> ExitCode {
    if let Err(e) = config.validate() {
        return fail(2, &e);
    }
    telemetry::init(config.log_format);
    match server::serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        // A start-up error's message already carries its cause: one line, said once.
        Err(e) => match e.downcast_ref::<storage::StartupError>() {
            Some(startup) => fail(if startup.is_configuration() { 2 } else { 1 }, &startup.to_string()),
            None => fail(1, &format!("{e:#}")),
        },
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    let message = message.trim_start_matches("error: ");
    eprintln!("jit-iam: error: {message}");
    ExitCode::from(code)
}
