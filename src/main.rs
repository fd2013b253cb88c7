use std::process::ExitCode;

// Browsing allocates a few hundred small strings per page; mimalloc serves
// them markedly cheaper than glibc's malloc under concurrent requests.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    jit_iam::cli::run().await
}
