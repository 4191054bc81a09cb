//! Registries, against a real one: Debian's `docker-registry` on loopback
//! with TLS from a throw-away CA and htpasswd users (`berth_tests::
//! registry`), and `skopeo` as the independent client both ways. berthd
//! trusts the CA through its `--config` file.
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use berth_tests::harness::Agent;
use berth_tests::registry::{Options, Registry};
use berth_tests::{fixtures, need_registry, need_root};

fn assert_ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds the three-layer fixture as an OCI archive and has skopeo push
/// it to `reg` as `repo:tag`; returns its digests.
fn skopeo_push(reg: &Registry, repo_tag: &str) -> fixtures::ImageInfo {
    let path = reg.dir.path().join(format!("{}.tar", repo_tag.replace(['/', ':'], "_")));
    let info = fixtures::oci_layout_tar(&path, &fixtures::ImageSpec::new(repo_tag)).expect("fixture");
    let out = reg.skopeo(
        "dest",
        &["copy", &format!("oci-archive:{}", path.display()), &format!("docker://{}/{repo_tag}", reg.host())],
    );
    assert_ok(&out, "skopeo copy");
    info
}

/// What the registry holds under `repo_tag`, as skopeo reads it: the
/// manifest's digest and its layer digests.
fn remote_manifest(reg: &Registry, repo_tag: &str) -> (String, Vec<String>, serde_json::Value) {
    let out = reg.skopeo("", &["inspect", "--raw", &format!("docker://{}/{repo_tag}", reg.host())]);
    assert_ok(&out, "skopeo inspect --raw");
    let digest = format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&out.stdout)));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let layers = json["layers"]
        .as_array()
        .map(|ls| ls.iter().map(|l| l["digest"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    (digest, layers, json)
}

/// Logs berthctl in to `reg` with its first user.
fn login(a: &Agent, reg: &Registry) {
    let (u, p) = &reg.opts.users[0];
    let mut cmd = a.ctl_cmd(&["login", "-u", u, "--password-stdin", &reg.host()]);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), format!("{p}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_ok(&out, "berthctl login");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Login Succeeded");
}

#[test]
fn skopeo_pushes_berth_pulls_and_runs() {
    need_root!();
    need_registry!();
    let reg = Registry::start(Options::default());
    let info = skopeo_push(&reg, "team/app:v1");
    let (digest, layers, _) = remote_manifest(&reg, "team/app:v1");
    assert_eq!(layers.len(), 3);
    let a = Agent::start_with_config(&reg.berthd_config());
    login(&a, &reg);
    let name = format!("{}/team/app:v1", reg.host());
    let out = a.ok(&["pull", &name]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "v1: Pulling from team/app".replace("team/app", &format!("{}/team/app", reg.host())));
    for l in &layers {
        let short = &l["sha256:".len()..][..12];
        assert!(out.contains(&format!("{short}: Pull complete")), "{out}");
    }
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert!(out.contains(&format!("Status: Downloaded newer image for {name}")), "{out}");
    assert_eq!(*lines.last().unwrap(), name);

    // The image runs, and is the image skopeo sent.
    assert_eq!(a.ok(&["run", "--rm", &name, "echo", "pulled"]).trim(), "pulled");
    let images = a.ok(&["images", "--format", "json"]);
    assert!(images.contains(info.short_id()), "{images}");

    // Again: nothing fetched, and said so.
    let blob_gets = reg.requests("GET /v2/team/app/blobs/");
    let again = a.ok(&["pull", &name]);
    assert!(again.contains(&format!("Status: Image is up to date for {name}")), "{again}");
    assert!(again.contains("Already exists"), "{again}");
    assert_eq!(reg.requests("GET /v2/team/app/blobs/"), blob_gets, "a present layer was fetched again: {}", reg.log());

    // -q prints the name only.
    assert_eq!(a.ok(&["pull", "-q", &name]), format!("{name}\n"));
}

#[test]
fn login_logout_and_auth_errors() {
    need_registry!();
    let reg = Registry::start(Options::default());
    skopeo_push(&reg, "private/app:1");
    let a = Agent::start_with_config(&reg.berthd_config());
    let name = format!("{}/private/app:1", reg.host());

    // Anonymous: refused, in Docker's words.
    let r = a.ctl(&["pull", &name]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stderr.trim(),
        format!(
            "Error response from daemon: pull access denied for {}/private/app, repository does not exist or may require 'berthctl login': unauthorized: authentication required",
            reg.host()
        )
    );

    // A wrong password is refused at login and nothing is stored.
    let mut cmd = a.ctl_cmd(&["login", "-u", "alice", "--password-stdin", &reg.host()]);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"nope\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Error response from daemon: unauthorized: authentication required"
    );
    let file = a.docker_config().join("config.json");
    assert!(!file.exists());

    // The right one: stored, 0600, Docker's format.
    login(&a, &reg);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(json["auths"][reg.host()]["auth"], "YWxpY2U6d29uZGVybGFuZA==", "{json}"); // alice:wonderland
    assert_eq!(a.ok(&["pull", "-q", &name]).trim(), name);

    // A stored password that has gone wrong.
    std::fs::write(&file, format!("{{\"auths\":{{\"{}\":{{\"auth\":\"YWxpY2U6eA==\"}}}}}}", reg.host())).unwrap();
    let r = a.ctl(&["pull", &name]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stderr.trim(), "Error response from daemon: unauthorized: authentication required");

    // Logout removes the entry, once.
    login(&a, &reg);
    assert_eq!(a.ok(&["logout", &reg.host()]).trim(), format!("Removing login credentials for {}", reg.host()));
    assert_eq!(a.ok(&["logout", &reg.host()]).trim(), format!("Not logged in to {}", reg.host()));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(json["auths"].get(reg.host()).is_none(), "{json}");
}
