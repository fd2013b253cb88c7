use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    jit_iam::cli::run().await
}
