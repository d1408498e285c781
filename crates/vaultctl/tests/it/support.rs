//! Running `vaultctl`: a clean environment, `mock serve` as a child process that is
//! killed when the test ends (pass or fail), test cards and output checks.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

/// The binary under test.
pub(crate) const VAULTCTL: &str = env!("CARGO_BIN_EXE_vaultctl");

/// The public test card numbers of `fixtures/cards.json`.
pub(crate) const FIXTURE_PANS: [&str; 4] = [
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
];

/// A card for stdin, with a CVC and a holder name.
pub(crate) const CARD: &str = r#"{"card_number":"4111111111111111","card_exp_month":"04","card_exp_year":"2030","card_cvc":"987","card_holder_name":"Ada Lovelace"}"#;

/// `vaultctl` with none of the caller's `VGS_*` or `RUST_LOG` settings.
pub(crate) fn vaultctl() -> Command {
    let mut command = Command::new(VAULTCTL);
    for (name, _) in std::env::vars() {
        if name.starts_with("VGS_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
}

/// Runs `command` with `stdin` as its input; returns its output.
pub(crate) fn run(command: &mut Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vaultctl starts");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("vaultctl runs")
}

/// stdout as text.
pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr as text.
pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the command exited 0, showing its output if not.
pub(crate) fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout(output),
        stderr(output)
    );
}

/// Asserts a failure reported as vaultctl promises: exit 1 and exactly one stderr
/// line, `error: …` with a `Fix:`. Returns that line.
pub(crate) fn assert_one_line_failure(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
    let err = stderr(output);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got:\n{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(lines[0].contains("Fix: "), "{err}");
    lines[0].to_owned()
}

/// Asserts `text` holds none of the given card numbers.
pub(crate) fn assert_no_card_number(text: &str, pans: &[&str]) {
    for pan in pans {
        assert!(!text.contains(pan), "card number {pan} printed in:\n{text}");
    }
}

/// `vaultctl mock serve --addr 127.0.0.1:0 …` running as a child process; killed on
/// drop, so it never outlives a failing test.
pub(crate) struct MockServer {
    child: Child,
    /// `http://127.0.0.1:PORT`, from the first stdout line.
    pub(crate) base_url: String,
    /// The rest of stdout, still open so the server never writes to a closed pipe.
    pub(crate) stdout: BufReader<ChildStdout>,
}

impl MockServer {
    /// Starts the mock with the demo vault and credentials.
    pub(crate) fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts the mock with extra flags.
    pub(crate) fn start_with(flags: &[&str]) -> Self {
        let mut child = vaultctl()
            .args(["mock", "serve", "--addr", "127.0.0.1:0"])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("vaultctl mock serve starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        stdout.read_line(&mut first).expect("first line");
        let base_url = first
            .trim_end()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("first line is not `listening on …`: {first:?}")
            })
            .to_owned();
        MockServer {
            child,
            base_url,
            stdout,
        }
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the server to exit on its own (after a signal); `None` if it had not
    /// within five seconds (a watchdog then kills it, so a broken shutdown fails the
    /// test instead of hanging it).
    pub(crate) fn wait_exit(&mut self) -> Option<std::process::ExitStatus> {
        let (exited, watch) = std::sync::mpsc::channel::<()>();
        let pid = self.child.id().to_string();
        let watchdog = std::thread::spawn(move || {
            let timed_out = watch
                .recv_timeout(std::time::Duration::from_secs(5))
                .is_err();
            if timed_out {
                let _ = Command::new("kill").args(["-9", &pid]).status();
            }
            timed_out
        });
        let status = self.child.wait().expect("wait for mock serve");
        let _ = exited.send(());
        let timed_out = watchdog.join().expect("watchdog");
        (!timed_out).then_some(status)
    }

    /// `vaultctl` set up for the demo vault of this mock through `VGS_*`.
    pub(crate) fn vaultctl(&self) -> Command {
        let mut command = vaultctl();
        command
            .env("VGS_ENDPOINT", &self.base_url)
            .env("VGS_VAULT_ID", "tntdemo00001")
            .env("VGS_CLIENT_ID", "demo-client")
            .env("VGS_CLIENT_SECRET", "demo-secret");
        command
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Luhn-valid 16-digit Visa-like test number built from `n`.
pub(crate) fn test_pan(n: u64) -> String {
    let body = format!("4000{n:011}");
    format!("{body}{}", vaultlink_tests::luhn_check_digit(&body))
}

/// A temporary directory removed on drop.
pub(crate) struct TempDir(pub(crate) std::path::PathBuf);

impl TempDir {
    /// A fresh directory named after the test.
    pub(crate) fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("vaultctl-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    /// A path inside it.
    pub(crate) fn path(&self, file: &str) -> std::path::PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn test_pans_pass_luhn() {
    // Cross-checked against a known test number: 4000 0000 0000 0002.
    assert_eq!(test_pan(0), "4000000000000002");
    for n in [1, 17, 999] {
        assert_eq!(test_pan(n).len(), 16);
    }
}

impl MockServer {
    /// The mock's `GET /_mock/stats` document (a plain HTTP/1.1 request on loopback).
    pub(crate) fn stats(&self) -> serde_json::Value {
        use std::io::Read;
        let addr = self.base_url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).expect("connect to the mock");
        write!(
            stream,
            "GET /_mock/stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("response");
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body)
            .unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("stats JSON ({e}): {response}"))
    }
}

/// A real `redis-server` from PATH on a free loopback port, without persistence,
/// killed on drop; `None` (with the reason printed) where it is not installed, unless
/// VAULTLINK_REQUIRE_REDIS=1 makes that a failure.
pub(crate) struct Redis {
    child: Child,
    /// `redis://127.0.0.1:PORT/0`.
    pub(crate) url: String,
}

impl Redis {
    pub(crate) fn start(test: &str) -> Option<Redis> {
        let found = std::env::var_os("PATH")
            .map(|paths| {
                std::env::split_paths(&paths).any(|dir| dir.join("redis-server").is_file())
            })
            .unwrap_or(false);
        if !found {
            assert!(
                std::env::var("VAULTLINK_REQUIRE_REDIS").as_deref() != Ok("1"),
                "redis-server is not on PATH but VAULTLINK_REQUIRE_REDIS=1 (install it: apt-get install -y redis-server)"
            );
            eprintln!(
                "SKIPPED vaultctl test `{test}`: redis-server is not on PATH (install it: apt-get install -y redis-server)"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        // Ready when its log says so: wait for that line, not for time to pass.
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|line| line.contains("Ready to accept connections"));
        assert!(ready, "redis-server exited before it was ready");
        std::thread::spawn(move || lines.for_each(drop));
        Some(Redis {
            child,
            url: format!("redis://127.0.0.1:{port}/0"),
        })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
