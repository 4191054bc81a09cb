//! A real registry for one test: Debian's `docker-registry` (the CNCF
//! distribution registry) on a free loopback port, with TLS from a
//! throw-away CA made by `openssl` and bcrypt htpasswd users, its data and
//! access log in a temp dir; killed on drop. `skopeo` and `curl` talk to it
//! as independent clients.
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether the registry tests can run here.
pub fn available() -> bool {
    ["/usr/bin/docker-registry", "/usr/bin/skopeo", "/usr/bin/openssl", "/usr/bin/htpasswd", "/usr/bin/curl"]
        .iter()
        .all(|p| Path::new(p).exists())
}

/// Returns early (the test passes, saying why) without the registry tools.
#[macro_export]
macro_rules! need_registry {
    () => {
        if !$crate::registry::available() {
            eprintln!("skipped: needs docker-registry, skopeo, openssl, htpasswd, curl (scripts/setup.sh)");
            return;
        }
    };
}

/// How to start one.
#[derive(Clone, Debug)]
pub struct Options {
    /// HTTPS with the throw-away CA; plain HTTP when false.
    pub tls: bool,
    /// htpasswd users; none: anonymous access.
    pub users: Vec<(String, String)>,
    /// Bearer tokens instead of Basic: a token server
    /// (`token_server.py`, the first user) signs them, the registry
    /// checks them.
    pub token: bool,
    /// The address to listen on (default 127.0.0.1).
    pub ip: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options { tls: true, users: vec![("alice".into(), "wonderland".into())], token: false, ip: None }
    }
}

/// The token server the registry tests run beside the registry.
const TOKEN_SERVER: &str = include_str!("token_server.py");

pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub opts: Options,
    child: Option<Child>,
    token_server: Option<Child>,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

fn free_port_on(ip: &str) -> u16 {
    TcpListener::bind((ip, 0)).and_then(|l| l.local_addr()).expect("free port").port()
}

impl Registry {
    pub fn start(opts: Options) -> Registry {
        let dir = tempfile::Builder::new().prefix("berth-reg-").tempdir().expect("tempdir");
        let d = dir.path();
        let certs = d.join("certs");
        std::fs::create_dir(&certs).unwrap();
        if opts.tls {
            let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
            run(Command::new("openssl").current_dir(d).args(["req", "-x509"]).args(ec).args([
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=berth test CA",
            ]));
            run(Command::new("openssl").current_dir(d).args(["req"]).args(ec).args([
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ]));
            std::fs::write(
                d.join("ext.cnf"),
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
            )
            .unwrap();
            run(Command::new("openssl").current_dir(d).args([
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
            ]));
            // skopeo's --cert-dir wants the CA as ca.crt.
            std::fs::copy(d.join("ca.pem"), certs.join("ca.crt")).unwrap();
        }
        let mut htpasswd = String::new();
        for (u, p) in &opts.users {
            let out = Command::new("htpasswd").args(["-Bbn", u, p]).output().expect("htpasswd");
            assert!(out.status.success());
            htpasswd.push_str(String::from_utf8_lossy(&out.stdout).trim());
            htpasswd.push('\n');
        }
        std::fs::write(d.join("htpasswd"), htpasswd).unwrap();
        let ip = opts.ip.clone().unwrap_or_else(|| "127.0.0.1".to_owned());
        let port = free_port_on(&ip);
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {ip}:{port}\n  secret: berth-test\n",
            d.join("data").display()
        );
        if opts.tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                d.join("server.pem").display(),
                d.join("server.key").display()
            ));
        }
        let mut token_server = None;
        if opts.token {
            let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
            run(Command::new("openssl").current_dir(d).args(["req", "-x509"]).args(ec).args([
                "-keyout",
                "token.key",
                "-out",
                "token.pem",
                "-days",
                "2",
                "-subj",
                "/CN=berth test token signer",
            ]));
            run(Command::new("openssl").current_dir(d).args([
                "x509",
                "-in",
                "token.pem",
                "-outform",
                "der",
                "-out",
                "token.der",
            ]));
            std::fs::write(d.join("token_server.py"), TOKEN_SERVER).unwrap();
            let tport = free_port();
            let (u, p) = &opts.users[0];
            let log = std::fs::File::create(d.join("token-server.log")).unwrap();
            let child = Command::new("python3")
                .arg(d.join("token_server.py"))
                .args([&tport.to_string(), d.to_str().unwrap(), u, p, "berth-test-issuer", "berth-test-registry"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start the token server");
            token_server = Some(child);
            let deadline = Instant::now() + Duration::from_secs(20);
            while TcpStream::connect(("127.0.0.1", tport)).is_err() {
                assert!(Instant::now() < deadline, "the token server did not listen");
                std::thread::sleep(Duration::from_millis(50));
            }
            config.push_str(&format!(
                "auth:\n  token:\n    realm: http://127.0.0.1:{tport}/token\n    service: berth-test-registry\n    issuer: berth-test-issuer\n    rootcertbundle: {}\n",
                d.join("token.pem").display()
            ));
        } else if !opts.users.is_empty() {
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                d.join("htpasswd").display()
            ));
        }
        std::fs::write(d.join("config.yml"), config).unwrap();
        let log = std::fs::File::create(d.join("registry.log")).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut reg = Registry { dir, port, opts, child: Some(child), token_server };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((ip.as_str(), port)).is_err() {
            if let Some(Ok(Some(st))) = reg.child.as_mut().map(Child::try_wait) {
                panic!("docker-registry exited with {st}: {}", reg.log());
            }
            assert!(Instant::now() < deadline, "docker-registry did not listen: {}", reg.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    /// `127.0.0.1:PORT` (or the address it listens on).
    pub fn host(&self) -> String {
        format!("{}:{}", self.opts.ip.as_deref().unwrap_or("127.0.0.1"), self.port)
    }

    /// The CA's PEM file (for berthd's config file).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A directory with `ca.crt`, for skopeo's `--cert-dir`.
    pub fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// The registry's own log, with its access log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Requests in the access log so far that start with `method path`
    /// (e.g. `PUT /v2/x/blobs/uploads/`).
    pub fn requests(&self, method_and_path: &str) -> usize {
        self.log().lines().filter(|l| l.contains(&format!("\"{method_and_path}"))).count()
    }

    /// `user:password` of the first user.
    pub fn creds(&self) -> String {
        let (u, p) = &self.opts.users[0];
        format!("{u}:{p}")
    }

    /// berthd's config for this registry: trust its CA.
    pub fn berthd_config(&self) -> String {
        format!("[registry.\"{}\"]\nca = [\"{}\"]\n", self.host(), self.ca().display())
    }

    /// skopeo with this registry's CA and first user for `docker://` on
    /// the given side (`src`, `dest`, or `` for `inspect`).
    pub fn skopeo(&self, side: &str, args: &[&str]) -> std::process::Output {
        let mut c = Command::new("skopeo");
        let sub = args[0];
        let side = if side.is_empty() { String::new() } else { format!("{side}-") };
        c.arg("--insecure-policy").arg(sub);
        if self.opts.tls {
            c.arg(format!("--{side}cert-dir")).arg(self.cert_dir());
        } else {
            c.arg(format!("--{side}tls-verify=false"));
        }
        if !self.opts.users.is_empty() {
            c.arg(format!("--{side}creds")).arg(self.creds());
        }
        c.args(&args[1..]);
        c.output().expect("run skopeo")
    }

    /// curl against the registry's API with the CA and the first user;
    /// returns (HTTP status, body).
    pub fn curl(&self, args: &[&str]) -> (u16, String) {
        let mut c = Command::new("curl");
        c.args(["-sS", "-o", "-", "-w", "\n%{http_code}"]);
        if self.opts.tls {
            c.arg("--cacert").arg(self.ca());
        }
        if !self.opts.users.is_empty() {
            c.arg("-u").arg(self.creds());
        }
        c.args(args);
        let out = c.output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }

    /// `https://127.0.0.1:PORT/v2/` (or http).
    pub fn api(&self) -> String {
        format!("{}://{}/v2/", if self.opts.tls { "https" } else { "http" }, self.host())
    }
}

impl Registry {
    /// The token server's requests so far, one JSON object a line
    /// (`user`, `scopes`, `service`).
    pub fn token_requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("requests.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        for c in [self.child.take(), self.token_server.take()].into_iter().flatten() {
            let mut c = c;
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
