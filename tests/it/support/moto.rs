//! moto's server on loopback: the AWS endpoint of the tests. The real AWS SDK
//! talks HTTP to it, exactly as the service talks to AWS.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

pub struct Moto {
    pub endpoint: String,
    child: Option<Child>,
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn moto_binary() -> PathBuf {
    if let Ok(path) = std::env::var("JIT_IAM_TEST_MOTO") {
        return PathBuf::from(path);
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server");
    assert!(
        path.exists(),
        "moto_server not found at {}: run scripts/test, which installs it into .venv",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Kills `command`'s process when the thread that spawned it exits, so that no
/// server outlives a test run, even one that is killed.
pub fn die_with_parent(command: &mut Command) -> &mut Command {
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

impl Moto {
    /// A moto of this test alone (needed to switch IAM enforcement on).
    pub fn start() -> Moto {
        Self::start_with(&[])
    }

    /// A moto of this test alone, with moto settings from `env`.
    pub fn start_with(env: &[(&str, &str)]) -> Moto {
        for _ in 0..5 {
            let port = free_port();
            let mut command = Command::new(moto_binary());
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .envs(env.iter().copied())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let child = die_with_parent(&mut command).spawn().expect("start moto_server");
            let endpoint = format!("http://127.0.0.1:{port}");
            let mut moto = Moto { endpoint, child: Some(child) };
            if moto.wait_ready() {
                return moto;
            }
            drop(moto.child.take().map(|mut c| c.kill()));
        }
        panic!("moto_server did not start");
    }

    /// One moto shared by the tests of this process; tests keep apart by using
    /// their own random account ids and resource names.
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(|| {
            // Spawned from a thread that never ends: the process dies with the test binary, not with a test.
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut moto = Moto::start();
                tx.send(Moto { endpoint: moto.endpoint.clone(), child: None }).unwrap();
                let _keep = moto.child.take();
                loop {
                    std::thread::park();
                }
            });
            rx.recv().expect("shared moto")
        })
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                return false;
            }
            if std::net::TcpStream::connect(self.endpoint.trim_start_matches("http://")).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Switches IAM enforcement on: from now on every request must be signed by
    /// keys moto issued and is checked against the caller's policies.
    pub async fn enforce_iam(&self) {
        let response = reqwest::Client::new()
            .post(format!("{}/moto-api/reset-auth", self.endpoint))
            .header("content-type", "text/plain")
            .body("0")
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "reset-auth: {}", response.status());
    }

    /// SDK configuration with the given keys, pointed at this moto.
    pub async fn config(&self, credentials: Credentials, region: &str) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new(region.to_string()))
            .credentials_provider(credentials)
            .load()
            .await
    }

    /// Clients acting inside `account_id` (moto routes by the assumed role's account).
    pub async fn account(&self, account_id: &str) -> super::Account {
        let base = self
            .config(Credentials::new("AKIAIOSFODNN7EXAMPLE", "seed-secret", None, None, "tests"), "us-east-1")
            .await;
        let assumed = aws_sdk_sts::Client::new(&base)
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account_id}:role/seed"))
            .role_session_name("jit-iam-tests")
            .send()
            .await
            .expect("assume a role in the test account")
            .credentials
            .unwrap();
        let credentials = Credentials::new(
            assumed.access_key_id,
            assumed.secret_access_key,
            Some(assumed.session_token),
            None,
            "tests",
        );
        super::Account::new(account_id, self.config(credentials, "us-east-1").await)
    }
}
