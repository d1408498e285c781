//! Real `redis-server`s for the tests: spawned from PATH on a free loopback port with
//! no persistence and killed on drop, or `REDIS_URL`; a clear skip when neither exists.

use std::io::{self, BufRead, BufReader, Write as _};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};

/// A `redis-server` this test binary started. Killed (SIGKILL) when dropped.
pub(crate) struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts a server on a free port, retrying on a port clash; `extra` gives more
    /// arguments for the port chosen.
    fn start(binary: &PathBuf, extra: &dyn Fn(u16) -> Vec<String>) -> RedisServer {
        let mut last_output = String::new();
        for _ in 0..5 {
            let port = free_port();
            match RedisServer::start_on(binary, port, &extra(port)) {
                Ok(server) => return server,
                Err(output) => last_output = output,
            }
        }
        panic!("redis-server did not start on a free port; its last output:\n{last_output}");
    }

    /// Starts a server on `port`; its output when it exited before being ready (a
    /// port clash, say).
    fn start_on(binary: &PathBuf, port: u16, extra: &[String]) -> Result<RedisServer, String> {
        let mut child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "notice"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut output = String::new();
        // Readiness is a line in its log: wait for that line (or for the end of the
        // output, when it exits), not for time to pass.
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            output.push_str(&line);
            output.push('\n');
            if line.contains("Ready to accept connections") {
                // Keep draining its log so that it never blocks on a full pipe.
                std::thread::spawn(move || lines.for_each(drop));
                return Ok(RedisServer { child, port });
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(output)
    }

    /// Starts a server again on the port of this (killed) one.
    pub(crate) fn restart(&mut self) {
        self.kill();
        let binary = redis_server_binary().expect("it ran before");
        let restarted = RedisServer::start_on(&binary, self.port, &[])
            .unwrap_or_else(|output| panic!("redis-server did not restart: {output}"));
        *self = restarted;
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Kills it (SIGKILL: no goodbye to its clients) and reaps it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends it a signal by its process id (`STOP` freezes it, `CONT` thaws it).
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nothing listens on right now (bound, then released).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap()
}

/// `redis-server` on PATH, if any.
fn redis_server_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
}

/// A Redis for a test: `REDIS_URL`, or the server this binary spawned for the tests
/// that do not stop theirs. Holding it keeps the server alive; the last test to
/// drop it stops it.
pub(crate) struct TestRedis {
    url: String,
    _server: Option<Arc<RedisServer>>,
}

impl TestRedis {
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

/// The shared Redis, or `None` (after saying why) when there is none to be had.
pub(crate) fn shared_redis(test: &str) -> Option<TestRedis> {
    if let Ok(url) = std::env::var("REDIS_URL")
        && !url.is_empty()
    {
        return Some(TestRedis { url, _server: None });
    }
    static SHARED: Mutex<Weak<RedisServer>> = Mutex::new(Weak::new());
    let binary = match redis_server_binary() {
        Some(binary) => binary,
        None => return skip(test, REDIS_MISSING),
    };
    let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    let server = match shared.upgrade() {
        Some(server) => server,
        None => {
            let server = Arc::new(RedisServer::start(&binary, &|_| Vec::new()));
            *shared = Arc::downgrade(&server);
            server
        }
    };
    Some(TestRedis {
        url: server.url(),
        _server: Some(server),
    })
}

/// A server of the test's own, for a test that kills, freezes or restarts it (a
/// `REDIS_URL` cannot be used for that), started with `extra` arguments.
pub(crate) fn own_redis(test: &str, extra: &[&str]) -> Option<RedisServer> {
    let extra: Vec<String> = extra.iter().map(|arg| (*arg).to_owned()).collect();
    match redis_server_binary() {
        Some(binary) => Some(RedisServer::start(&binary, &|_| extra.clone())),
        None => skip(test, REDIS_MISSING),
    }
}

/// A server of the test's own that speaks only TLS, with a certificate for
/// `127.0.0.1` from a CA made for it (by the `openssl` command); and that CA (PEM).
pub(crate) fn own_tls_redis(test: &str) -> Option<(RedisServer, Vec<u8>)> {
    let Some(binary) = redis_server_binary() else {
        return skip(test, REDIS_MISSING);
    };
    if !Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|output| output.status.success())
    {
        return skip(test, "openssl (to make test certificates) is not on PATH");
    }
    let dir = std::env::temp_dir().join(format!("vaultlink-{test}-{:08x}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|e| panic!("{test}: cannot run openssl to make certificates: {e}"));
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
            &["-subj", "/CN=vaultlink-test-ca"],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        &[
            &["req"],
            &ec[..],
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    let ca = std::fs::read(dir.join("ca.pem")).unwrap();
    let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let (cert, key, ca_file) = (file("server.pem"), file("server.key"), file("ca.pem"));
    let server = RedisServer::start(&binary, &|port| {
        vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            cert.clone(),
            "--tls-key-file".into(),
            key.clone(),
            "--tls-ca-cert-file".into(),
            ca_file.clone(),
            "--tls-auth-clients".into(),
            "no".into(),
        ]
    });
    // Redis has read the files; they are of no more use.
    let _ = std::fs::remove_dir_all(&dir);
    Some((server, ca))
}

const REDIS_MISSING: &str =
    "redis-server is not on PATH (install it: apt-get install -y redis-server)";

/// Says why a test does not run, or fails it under `VAULTLINK_REQUIRE_REDIS=1`.
fn skip<T>(test: &str, why: &str) -> Option<T> {
    if std::env::var("VAULTLINK_REQUIRE_REDIS").is_ok_and(|v| v == "1") {
        panic!("{test}: {why}, and VAULTLINK_REQUIRE_REDIS=1 requires the Redis tests to run");
    }
    // Straight to stderr: the test harness captures `eprintln!` of passing tests.
    let _ = writeln!(
        io::stderr(),
        "SKIPPED vault-auth-redis test `{test}`: {why}; set REDIS_URL to use a running \
         Redis, or VAULTLINK_REQUIRE_REDIS=1 to make this a failure"
    );
    None
}
