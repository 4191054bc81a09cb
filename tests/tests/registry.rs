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
    skopeo_push_padded(reg, repo_tag, fixtures::ImageSpec::new(repo_tag).pad_mb)
}

/// The same, with a top layer of `pad_mb` MiB of random bytes.
fn skopeo_push_padded(reg: &Registry, repo_tag: &str, pad_mb: u64) -> fixtures::ImageInfo {
    let path = reg.dir.path().join(format!("{}.tar", repo_tag.replace(['/', ':'], "_")));
    let mut spec = fixtures::ImageSpec::new(repo_tag);
    spec.pad_mb = pad_mb;
    let info = fixtures::oci_layout_tar(&path, &spec).expect("fixture");
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
    let out = login_expecting(a, reg, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Login Succeeded");
}

/// `berthctl login` to `reg` with its first user; asserts the exit code.
fn login_expecting(a: &Agent, reg: &Registry, code: i32) -> std::process::Output {
    let (u, p) = &reg.opts.users[0];
    let mut cmd = a.ctl_cmd(&["login", "-u", u, "--password-stdin", &reg.host()]);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), format!("{p}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "berthctl login: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
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
    assert_eq!(lines[0], "v1: Pulling from team/app");
    for l in &layers {
        let short = &l["sha256:".len()..][..12];
        let states: Vec<&str> = lines.iter().filter_map(|x| x.strip_prefix(&format!("{short}: "))).collect();
        assert_eq!(states, ["Pulling fs layer", "Verifying Checksum", "Download complete", "Pull complete"], "{out}");
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

#[test]
fn berth_push_pull_round_trip_skip_mount_and_skopeo_reads_it() {
    need_root!();
    need_registry!();
    let reg = Registry::start(Options::default());
    let a = Agent::start_with_config(&reg.berthd_config());
    login(&a, &reg);
    let name = format!("{}/mine/app:1", reg.host());
    let info = a.load_fixture(&name);

    let out = a.ok(&["push", &name]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("The push refers to repository [{}/mine/app]", reg.host()), "{out}");
    for l in &info.layer_digests {
        let short = &l["sha256:".len()..][..12];
        assert!(out.contains(&format!("{short}: Pushed")), "{out}");
    }
    let manifest_len = a.root.join("content/blobs/sha256").join(&info.manifest_digest["sha256:".len()..]);
    let size = std::fs::metadata(&manifest_len).map(|m| m.len()).unwrap_or(0);
    assert_eq!(*lines.last().unwrap(), format!("1: digest: {} size: {size}", info.manifest_digest), "{out}");

    // skopeo reads what berth pushed: the same manifest, byte for byte,
    // and copies it whole.
    let (digest, layers, _) = remote_manifest(&reg, "mine/app:1");
    assert_eq!(digest, info.manifest_digest);
    assert_eq!(layers, info.layer_digests);
    let copy = reg.dir.path().join("copy");
    let out = reg
        .skopeo("src", &["copy", &format!("docker://{}/mine/app:1", reg.host()), &format!("oci:{}:x", copy.display())]);
    assert_ok(&out, "skopeo copy from the registry");

    // A second push sends no layer.
    let uploads = reg.requests("POST /v2/mine/app/blobs/uploads/");
    assert!(uploads >= 4, "{uploads}");
    let again = a.ok(&["push", &name]);
    for l in &info.layer_digests {
        let short = &l["sha256:".len()..][..12];
        assert!(again.contains(&format!("{short}: Layer already exists")), "{again}");
    }
    assert!(!again.contains("Pushed"), "{again}");
    assert_eq!(reg.requests("POST /v2/mine/app/blobs/uploads/"), uploads, "{}", reg.log());

    // Another repository of the same registry: blobs mounted, not sent.
    let other = format!("{}/other/app:2", reg.host());
    a.ok(&["tag", &name, &other]);
    let mounted = a.ok(&["push", &other]);
    for l in &info.layer_digests {
        let short = &l["sha256:".len()..][..12];
        assert!(mounted.contains(&format!("{short}: Mounted from mine/app")), "{mounted}");
    }
    assert!(!mounted.contains("Pushed"), "{mounted}");
    assert_eq!(
        reg.requests("PATCH /v2/other/app/blobs/uploads/") + reg.requests("PUT /v2/other/app/blobs/uploads/"),
        0
    );

    // Pulled back into an empty berth: the same digests, and it runs.
    let b = Agent::start_with_config(&reg.berthd_config());
    login(&b, &reg);
    let pulled = b.ok(&["pull", &other]);
    assert!(pulled.contains(&format!("Digest: {}", info.manifest_digest)), "{pulled}");
    let inspect: serde_json::Value = serde_json::from_str(&b.ok(&["image", "inspect", &other])).unwrap();
    let id = inspect[0]["Id"].as_str().or(inspect["Id"].as_str()).unwrap_or_default().to_owned();
    assert_eq!(id, info.config_digest, "{inspect}");
    assert_eq!(b.ok(&["run", "--name", "rt", &other, "echo", "round trip"]).trim(), "round trip");
}

#[test]
fn push_errors() {
    need_registry!();
    let reg = Registry::start(Options::default());
    let a = Agent::start_with_config(&reg.berthd_config());
    let name = format!("{}/mine/app:1", reg.host());
    let r = a.ctl(&["push", &name]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim(),
        format!("Error response from daemon: An image does not exist locally with the tag: {name}")
    );
    a.load_fixture(&name);
    let r = a.ctl(&["push", &name]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stderr.trim(), "Error response from daemon: unauthorized: authentication required");
}

/// Uploads `bytes` as a blob of `repo` with curl (POST, then PUT to the
/// Location); returns its digest.
fn upload_blob(reg: &Registry, repo: &str, bytes: &[u8]) -> String {
    let digest = format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes)));
    let out = std::process::Command::new("curl")
        .args(["-sS", "-i", "-X", "POST", "--cacert"])
        .arg(reg.ca())
        .args(["-u", &reg.creds(), &format!("{}{repo}/blobs/uploads/", reg.api())])
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).into_owned();
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("Location: ").or_else(|| l.strip_prefix("location: ")))
        .unwrap_or_else(|| panic!("no Location: {head}"))
        .trim()
        .to_owned();
    let sep = if location.contains('?') { '&' } else { '?' };
    let file = reg.dir.path().join("upload.bin");
    std::fs::write(&file, bytes).unwrap();
    let (code, body) = reg.curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{location}{sep}digest={digest}"),
    ]);
    assert_eq!(code, 201, "{body}");
    digest
}

fn put_manifest(reg: &Registry, repo: &str, tag: &str, media_type: &str, bytes: &[u8]) -> String {
    let file = reg.dir.path().join("manifest.json");
    std::fs::write(&file, bytes).unwrap();
    let (code, body) = reg.curl(&[
        "-X",
        "PUT",
        "-H",
        &format!("Content-Type: {media_type}"),
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{}{repo}/manifests/{tag}", reg.api()),
    ]);
    assert_eq!(code, 201, "{body}");
    format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes)))
}

/// `multi/app:latest`: an OCI index of the fixture for the node's
/// platform and a copy whose config says linux/s390x. Returns (index
/// digest, node config digest, s390x config digest).
fn multi_platform(reg: &Registry) -> (String, String, String) {
    skopeo_push(reg, "multi/app:node");
    let (node_digest, _, manifest) = remote_manifest(reg, "multi/app:node");
    let media_type = manifest["mediaType"].as_str().unwrap_or("application/vnd.oci.image.manifest.v1+json").to_owned();
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_owned();
    let (code, config) = reg.curl(&["-L", &format!("{}multi/app/blobs/{config_digest}", reg.api())]);
    assert_eq!(code, 200);
    let mut config: serde_json::Value = serde_json::from_str(&config).unwrap();
    let node_arch = config["architecture"].as_str().unwrap().to_owned();
    config["architecture"] = "s390x".into();
    let other_config = serde_json::to_vec(&config).unwrap();
    let other_config_digest = upload_blob(reg, "multi/app", &other_config);
    let mut other = manifest.clone();
    other["config"]["digest"] = other_config_digest.clone().into();
    other["config"]["size"] = other_config.len().into();
    let other_bytes = serde_json::to_vec(&other).unwrap();
    let other_digest = put_manifest(reg, "multi/app", "s390x", &media_type, &other_bytes);
    let (_, raw) =
        reg.curl(&["-H", &format!("Accept: {media_type}"), &format!("{}multi/app/manifests/node", reg.api())]);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            { "mediaType": media_type, "digest": node_digest, "size": raw.len(),
              "platform": { "os": "linux", "architecture": node_arch } },
            { "mediaType": media_type, "digest": other_digest, "size": other_bytes.len(),
              "platform": { "os": "linux", "architecture": "s390x" } },
        ]
    });
    let index_digest = put_manifest(
        reg,
        "multi/app",
        "latest",
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&index).unwrap(),
    );
    (index_digest, config_digest, other_config_digest)
}

#[test]
fn platforms_and_pull_errors() {
    need_registry!();
    let reg = Registry::start(Options::default());
    let (index_digest, node_config, other_config) = multi_platform(&reg);
    let a = Agent::start_with_config(&reg.berthd_config());
    login(&a, &reg);
    let name = format!("{}/multi/app", reg.host());

    // The node's platform from the index; the digest is the index's.
    let out = a.ok(&["pull", &name]);
    assert!(out.contains(&format!("Digest: {index_digest}")), "{out}");
    let id = |r: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(&a.ok(&["image", "inspect", r])).unwrap();
        v[0]["Id"].as_str().or(v["Id"].as_str()).unwrap_or_default().to_owned()
    };
    assert_eq!(id(&name), node_config);

    // --platform picks another entry.
    let out = a.ok(&["pull", "--platform", "linux/s390x", &name]);
    assert!(out.contains(&format!("Digest: {index_digest}")), "{out}");
    assert_eq!(id(&name), other_config);

    // By digest: the index's, then the platform manifest's; each is the
    // name the image can be used by afterwards.
    let (node_manifest, _, _) = remote_manifest(&reg, "multi/app:node");
    for digest in [&index_digest, &node_manifest] {
        let by_digest = format!("{name}@{digest}");
        let out = a.ok(&["pull", &by_digest]);
        assert!(out.contains(&format!("Digest: {digest}")), "{out}");
        assert_eq!(out.lines().last(), Some(by_digest.as_str()), "{out}");
        assert_eq!(id(&by_digest), node_config);
    }
    let images = a.ok(&["images"]);
    assert!(images.lines().any(|l| l.starts_with(&name) && l.contains("<none>")), "{images}");

    // None matches.
    let r = a.ctl(&["pull", "--platform", "linux/arm64", &name]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim(),
        "Error response from daemon: no matching manifest for linux/arm64 in the manifest list entries"
    );

    // A tag the repository lacks.
    let r = a.ctl(&["pull", &format!("{name}:nope")]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim(),
        format!("Error response from daemon: manifest for {name}:nope not found: manifest unknown: manifest unknown")
    );

    // A repository that does not exist: this registry says so as Docker
    // then prints it (Docker Hub answers 401 instead: `pull access
    // denied`, tested in login_logout_and_auth_errors).
    let r = a.ctl(&["pull", &format!("{}/no/such", reg.host())]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim(),
        format!(
            "Error response from daemon: manifest for {}/no/such:latest not found: manifest unknown: manifest unknown",
            reg.host()
        )
    );

    // Nobody listening: the address and the cause.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let r = a.ctl(&["pull", &format!("127.0.0.1:{port}/x")]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains(&format!("https://127.0.0.1:{port}/v2/")), "{r:?}");
    assert!(r.stderr.contains("Connection refused"), "{r:?}");
    eprintln!("{}", r.stderr);

    // A certificate berthd was not told to trust.
    let b = Agent::start();
    let r = b.ctl(&["pull", &name]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains(&format!("https://{}/v2/", reg.host())), "{r:?}");
    assert!(r.stderr.to_lowercase().contains("certificate"), "{r:?}");
    eprintln!("{}", r.stderr);

    // A bad --platform.
    let r = a.ctl(&["pull", "--platform", "linux", &name]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("invalid platform \"linux\""), "{r:?}");
}

#[test]
fn mirrors_are_tried_in_order_then_the_registry() {
    need_registry!();
    let upstream = Registry::start(Options::default());
    let mirror = Registry::start(Options { users: vec![], ..Options::default() });
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    skopeo_push(&upstream, "team/both:1");
    skopeo_push(&upstream, "team/only-upstream:1");
    skopeo_push(&mirror, "team/both:1");
    let config = format!(
        "{}mirrors = [\"https://127.0.0.1:{dead}\", \"https://{}\"]\n\n[registry.\"{}\"]\nca = [\"{}\"]\n",
        upstream.berthd_config(),
        mirror.host(),
        mirror.host(),
        mirror.ca().display()
    );
    let a = Agent::start_with_config(&config);
    login(&a, &upstream);

    // In the mirror: every blob from there, none from the registry, past
    // a mirror that is down.
    a.ok(&["pull", &format!("{}/team/both:1", upstream.host())]);
    assert_eq!(upstream.requests("GET /v2/team/both/blobs/"), 0, "{}", upstream.log());
    assert_eq!(mirror.requests("GET /v2/team/both/blobs/"), 4, "{}", mirror.log());

    // Not in the mirror: the registry serves it.
    let out = a.ok(&["pull", &format!("{}/team/only-upstream:1", upstream.host())]);
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    assert_eq!(mirror.requests("GET /v2/team/only-upstream/manifests/1"), 1, "{}", mirror.log());
    assert_eq!(mirror.requests("GET /v2/team/only-upstream/blobs/"), 0);
    assert_eq!(upstream.requests("GET /v2/team/only-upstream/manifests/1"), 1, "{}", upstream.log());
    assert!(a.agent_log().contains("mirror failed; trying the next endpoint"));
}

#[test]
fn two_pulls_of_one_layer_at_once_fetch_it_once() {
    need_registry!();
    let reg = Registry::start(Options::default());
    skopeo_push_padded(&reg, "big/app:1", 24);
    // The same image under a second tag, from the archive pushed above.
    let path = reg.dir.path().join("big_app_1.tar");
    let out = reg.skopeo(
        "dest",
        &["copy", &format!("oci-archive:{}", path.display()), &format!("docker://{}/big/app:2", reg.host())],
    );
    assert_ok(&out, "skopeo copy");
    let (_, layers, _) = remote_manifest(&reg, "big/app:1");
    let a = Agent::start_with_config(&reg.berthd_config());
    login(&a, &reg);
    let pulls: Vec<_> = ["1", "2"]
        .iter()
        .map(|t| {
            a.ctl_cmd(&["pull", &format!("{}/big/app:{t}", reg.host())])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in pulls {
        assert_ok(&p.wait_with_output().unwrap(), "pull");
    }
    for l in &layers {
        assert_eq!(reg.requests(&format!("GET /v2/big/app/blobs/{l}")), 1, "{l}: {}", reg.log());
    }
    let images = a.ok(&["images"]);
    assert_eq!(images.lines().filter(|l| l.contains("big/app")).count(), 2, "{images}");
}

#[test]
fn a_silent_registry_fails_after_the_stall_timeout() {
    // Connections are accepted by the kernel (backlog) and never answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let a = Agent::start_with_config(&format!("[registry.\"127.0.0.1:{port}\"]\nstall_timeout = \"2s\"\n"));
    let started = std::time::Instant::now();
    let r = a.ctl(&["pull", &format!("127.0.0.1:{port}/x:1")]);
    let took = started.elapsed();
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stderr.trim(),
        format!(
            "Error response from daemon: GET https://127.0.0.1:{port}/v2/: no data received for 2s; the registry or the network stalled"
        )
    );
    assert!(took >= std::time::Duration::from_secs(2) && took < std::time::Duration::from_secs(20), "{took:?}");
    drop(silent);
}

#[test]
fn an_interrupted_pull_resumes_with_a_range_and_old_partials_go() {
    need_root!();
    need_registry!();
    let reg = Registry::start(Options::default());
    skopeo_push_padded(&reg, "big/app:1", 48);
    let (_, layers, manifest) = remote_manifest(&reg, "big/app:1");
    let big = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|l| l["size"].as_u64().unwrap())
        .map(|l| (l["digest"].as_str().unwrap().to_owned(), l["size"].as_u64().unwrap()))
        .unwrap();
    let big_hex = big.0["sha256:".len()..].to_owned();
    assert!(layers.contains(&big.0));

    let mut a = Agent::start_with_config(&reg.berthd_config());
    login(&a, &reg);
    let name = format!("{}/big/app:1", reg.host());
    let partial = a.root.join("content/ingest/partial").join(&big_hex);
    let grow_past = |a: &Agent, size: u64| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let len = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
            if len > size {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "the download did not grow past {size}: {}", a.agent_log());
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    };

    // The client goes away (^C): berthd stops the pull, keeps the bytes.
    let mut pull = a.ctl_cmd(&["pull", &name]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    grow_past(&a, 4 << 20);
    pull.kill().unwrap();
    let _ = pull.wait();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !a.agent_log().contains("pull cancelled") {
        assert!(std::time::Instant::now() < deadline, "berthd did not stop the pull: {}", a.agent_log());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let after_cancel = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    assert!(after_cancel > 4 << 20 && after_cancel < big.1, "kept {after_cancel} of {}", big.1);

    // berthd killed in the middle of the next attempt, which went on from there.
    // It starts when the cancelled one has let go of the file, from
    // what that one kept.
    let mut pull = a.ctl_cmd(&["pull", &name]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !a.agent_log().contains("resuming an interrupted download") {
        assert!(std::time::Instant::now() < deadline, "the next pull did not resume: {}", a.agent_log());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let resumed_from = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    assert!(resumed_from >= after_cancel, "resumed from {resumed_from}, {after_cancel} were kept");
    grow_past(&a, resumed_from + (4 << 20));
    a.kill9();
    let _ = pull.wait();
    let kept = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    assert!(kept > after_cancel && kept < big.1, "kept {kept} of {}", big.1);
    // Never visible as content.
    assert!(!a.root.join("content/blobs/sha256").join(&big_hex).exists());

    // An old partial download is garbage at the next start; a young one stays.
    let old = partial.with_file_name("0".repeat(64));
    std::fs::write(&old, b"old").unwrap();
    let touched = std::process::Command::new("touch").args(["-d", "3 days ago"]).arg(&old).status().unwrap();
    assert!(touched.success());
    a.restart();
    assert!(!old.exists(), "an old partial download was kept");
    assert!(partial.exists(), "the young partial download was removed");
    let images = a.ok(&["images"]);
    assert!(!images.contains("big/app"), "{images}");

    // Again: the rest only, asked for with a range; the image is whole.
    let out = a.ok(&["pull", &name]);
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    let ranged =
        reg.log().lines().filter(|l| l.contains(&format!("\"GET /v2/big/app/blobs/{} HTTP/1.1\" 206", big.0))).count();
    assert_eq!(ranged, 2, "not two range requests: {}", reg.log());
    assert!(a.agent_log().contains("resuming an interrupted download"));
    assert!(!partial.exists());
    assert!(a.root.join("content/blobs/sha256").join(&big_hex).exists());
    let size = a.ok(&["run", "--name", "whole", &name, "sh", "-c", "wc -c < /pad/random.bin"]);
    assert_eq!(size.trim(), (48u64 << 20).to_string());
}

#[test]
fn bearer_tokens_from_a_token_server() {
    need_registry!();
    let reg = Registry::start(Options { token: true, ..Options::default() });
    skopeo_push(&reg, "tok/app:1");
    let a = Agent::start_with_config(&reg.berthd_config());
    let name = format!("{}/tok/app:1", reg.host());

    // Anonymous: a token that grants nothing, so the registry refuses.
    let r = a.ctl(&["pull", &name]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.starts_with(&format!(
            "Error response from daemon: pull access denied for {}/tok/app, repository does not exist or may require 'berthctl login'",
            reg.host()
        )),
        "{r:?}"
    );

    // A wrong password: the token server refuses it.
    let mut cmd = a.ctl_cmd(&["login", "-u", "alice", "--password-stdin", &reg.host()]);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"nope\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Error response from daemon: unauthorized: incorrect username or password"
    );

    login(&a, &reg);
    let out = a.ok(&["pull", &name]);
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    let asked = reg.token_requests();
    assert!(
        asked.iter().any(|r| r["user"] == "alice"
            && r["scopes"] == serde_json::json!(["repository:tok/app:pull"])
            && r["service"] == serde_json::json!(["berth-test-registry"])),
        "{asked:?}"
    );

    // Push to another repository: a push scope there, a pull scope on the
    // one the blobs are mounted from.
    let other = format!("{}/tok/other:1", reg.host());
    a.ok(&["tag", &name, &other]);
    let out = a.ok(&["push", &other]);
    assert!(out.contains("Mounted from tok/app"), "{out}");
    let asked = reg.token_requests();
    assert!(
        asked
            .iter()
            .any(|r| r["scopes"] == serde_json::json!(["repository:tok/other:pull,push", "repository:tok/app:pull"])),
        "{asked:?}"
    );
    let (digest, _, _) = remote_manifest(&reg, "tok/other:1");
    assert!(out.contains(&format!("1: digest: {digest}")), "{out}");
}

/// Takes a test CA out of the system trust store again, even when the
/// test fails.
struct SystemCa(std::path::PathBuf);

impl Drop for SystemCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        // A plain run rebuilds the bundle but leaves the removed CA's
        // links in /etc/ssl/certs; only ours are removed (not --fresh,
        // which would drop links this test did not make).
        let _ =
            std::process::Command::new("update-ca-certificates").stdout(Stdio::null()).stderr(Stdio::null()).status();
        for _ in 0..2 {
            for e in std::fs::read_dir("/etc/ssl/certs").into_iter().flatten().flatten() {
                let p = e.path();
                let ours = std::fs::read_link(&p).is_ok_and(|t| t.to_string_lossy().contains("berth-test-"));
                if ours && !p.exists() {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
    }
}

#[test]
fn the_system_trust_store_is_honoured() {
    need_root!();
    need_registry!();
    if !std::path::Path::new("/usr/sbin/update-ca-certificates").exists() {
        eprintln!("skipped: needs update-ca-certificates (ca-certificates)");
        return;
    }
    let reg = Registry::start(Options::default());
    skopeo_push(&reg, "sys/app:1");
    // berthd with no config file knows nothing of this CA...
    let name = format!("{}/sys/app:1", reg.host());
    let a = Agent::start();
    login_expecting(&a, &reg, 1);
    drop(a);
    // ...until it is added as a person would add it.
    let path = std::path::PathBuf::from(format!("/usr/local/share/ca-certificates/berth-test-{}.crt", reg.port));
    std::fs::copy(reg.ca(), &path).unwrap();
    let _guard = SystemCa(path);
    let st = std::process::Command::new("update-ca-certificates").stdout(Stdio::null()).status().unwrap();
    assert!(st.success());
    let b = Agent::start();
    login(&b, &reg);
    let out = b.ok(&["pull", &name]);
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
}

/// The first IPv4 address of this host that is not loopback.
fn host_ip() -> Option<String> {
    let out = std::process::Command::new("hostname").arg("-I").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| a.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| !ip.is_loopback()))
        .map(str::to_owned)
}

#[test]
fn plain_http_only_for_loopback_or_by_name() {
    need_registry!();
    // On loopback, plain HTTP needs no configuration (as Docker).
    let local = Registry::start(Options { tls: false, users: vec![], ..Options::default() });
    skopeo_push(&local, "plain/app:1");
    let a = Agent::start();
    let out = a.ok(&["pull", &format!("{}/plain/app:1", local.host())]);
    assert!(out.contains("Status: Downloaded newer image"), "{out}");

    // Elsewhere only when the config file names the registry insecure.
    let Some(ip) = host_ip() else {
        eprintln!("skipped the non-loopback half: this host has no other IPv4 address");
        return;
    };
    let remote = Registry::start(Options { tls: false, users: vec![], ip: Some(ip), ..Options::default() });
    skopeo_push(&remote, "plain/app:1");
    let name = format!("{}/plain/app:1", remote.host());
    let r = a.ctl(&["pull", &name]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains(&format!("registry unreachable: Get \"https://{}/v2/\"", remote.host())), "{r:?}");
    assert_eq!(remote.requests("GET /v2/plain/app/manifests/"), 0);
    let b = Agent::start_with_config(&format!("[registry.\"{}\"]\ninsecure = true\n", remote.host()));
    let out = b.ok(&["pull", &name]);
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
}

/// What the test proxy does to the registry's answers.
#[derive(Clone, Copy)]
enum Pace {
    /// Forwards this many bytes of each connection's answers, then nothing
    /// more (the connection stays open).
    StallAfter(usize),
    /// Forwards `chunk` bytes, then waits `every`, and so on.
    Throttle { chunk: usize, every: std::time::Duration },
}

/// A TCP proxy on loopback in front of `upstream`, pacing what comes back.
fn proxy(upstream: String, pace: Pace) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = std::net::TcpStream::connect(&upstream) else { continue };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_in, &mut s_out);
            });
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || {
                let mut sent = 0usize;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let want = match pace {
                        Pace::StallAfter(limit) if sent >= limit => {
                            std::thread::sleep(std::time::Duration::from_secs(3600));
                            return;
                        }
                        Pace::StallAfter(limit) => (limit - sent).min(buf.len()),
                        Pace::Throttle { chunk, .. } => chunk.min(buf.len()),
                    };
                    let n = match s_in.read(&mut buf[..want]) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if c_out.write_all(&buf[..n]).is_err() {
                        return;
                    }
                    sent += n;
                    if let Pace::Throttle { every, .. } = pace {
                        std::thread::sleep(every);
                    }
                }
            });
        }
    });
    port
}

#[test]
fn a_stalled_layer_fails_and_a_slow_one_does_not() {
    need_registry!();
    let reg = Registry::start(Options { tls: false, users: vec![], ..Options::default() });
    skopeo_push_padded(&reg, "big/app:1", 8);
    skopeo_push(&reg, "small/app:1");

    // Silence in the middle of a layer: the pull fails after the stall
    // time-out, naming the layer.
    let stalling = proxy(reg.host(), Pace::StallAfter(1 << 20));
    let a = Agent::start_with_config(&format!("[registry.\"127.0.0.1:{stalling}\"]\nstall_timeout = \"2s\"\n"));
    let started = std::time::Instant::now();
    let r = a.ctl(&["pull", &format!("127.0.0.1:{stalling}/big/app:1")]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("download of layer sha256:"), "{r:?}");
    assert!(r.stderr.contains("no data received for 2s; the registry or the network stalled"), "{r:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "{:?}", started.elapsed());

    // Slow but moving, for longer than the stall time-out in all: no
    // time-out.
    let slow = proxy(reg.host(), Pace::Throttle { chunk: 16 * 1024, every: std::time::Duration::from_millis(100) });
    let b = Agent::start_with_config(&format!("[registry.\"127.0.0.1:{slow}\"]\nstall_timeout = \"1s\"\n"));
    let started = std::time::Instant::now();
    let out = b.ok(&["pull", &format!("127.0.0.1:{slow}/small/app:1")]);
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    assert!(
        started.elapsed() > std::time::Duration::from_secs(3),
        "too fast to prove anything: {:?}",
        started.elapsed()
    );
}

#[test]
fn an_image_loaded_from_a_docker_archive_pushes_and_skopeo_copies_it() {
    need_registry!();
    let reg = Registry::start(Options::default());
    let a = Agent::start_with_config(&reg.berthd_config());
    login(&a, &reg);
    let name = format!("{}/from/docker:1", reg.host());
    let path = a.dir.path().join("docker.tar");
    let info = fixtures::docker_archive(&path, &fixtures::ImageSpec::new(&name)).expect("fixture");
    a.ok(&["load", "-i", path.to_str().unwrap()]);
    let out = a.ok(&["push", &name]);
    let (digest, layers, manifest) = remote_manifest(&reg, "from/docker:1");
    assert!(out.lines().last().unwrap().starts_with(&format!("1: digest: {digest} size: ")), "{out}");
    assert_eq!(layers.len(), info.diff_ids.len());
    assert_eq!(manifest["config"]["digest"], info.config_digest.as_str());
    let copy = reg.dir.path().join("copy");
    let out = reg.skopeo(
        "src",
        &["copy", &format!("docker://{}/from/docker:1", reg.host()), &format!("oci:{}:x", copy.display())],
    );
    assert_ok(&out, "skopeo copy from the registry");
}

#[test]
fn docker_schema2_manifests_and_manifest_lists_pull() {
    need_registry!();
    let reg = Registry::start(Options::default());
    // A `docker save` archive (plain tar layers, which skopeo gzips; the
    // OCI fixture has a zstd layer, which Docker's format cannot carry).
    let path = reg.dir.path().join("v2s2.tar");
    fixtures::docker_archive(&path, &fixtures::ImageSpec::new("docker/app:1")).expect("fixture");
    let out = reg.skopeo(
        "dest",
        &[
            "copy",
            "--format",
            "v2s2",
            &format!("docker-archive:{}", path.display()),
            &format!("docker://{}/docker/app:1", reg.host()),
        ],
    );
    assert_ok(&out, "skopeo copy --format v2s2");
    let (digest, _, manifest) = remote_manifest(&reg, "docker/app:1");
    assert_eq!(manifest["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
    let (_, raw) = reg.curl(&[
        "-H",
        "Accept: application/vnd.docker.distribution.manifest.v2+json",
        &format!("{}docker/app/manifests/1", reg.api()),
    ]);
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_owned();
    let (_, config) = reg.curl(&["-L", &format!("{}docker/app/blobs/{config_digest}", reg.api())]);
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    let arch = config["architecture"].as_str().unwrap().to_owned();
    let list = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            { "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": digest,
              "size": raw.len(), "platform": { "os": "linux", "architecture": arch } },
        ]
    });
    let list_digest = put_manifest(
        &reg,
        "docker/app",
        "list",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        &serde_json::to_vec(&list).unwrap(),
    );

    let a = Agent::start_with_config(&reg.berthd_config());
    login(&a, &reg);
    let name = format!("{}/docker/app:1", reg.host());
    let out = a.ok(&["pull", &name]);
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    let listed = format!("{}/docker/app:list", reg.host());
    let out = a.ok(&["pull", &listed]);
    assert!(out.contains(&format!("Digest: {list_digest}")), "{out}");
    let r = a.ctl(&["pull", "--platform", "linux/arm64", &listed]);
    assert_eq!(
        r.stderr.trim(),
        "Error response from daemon: no matching manifest for linux/arm64 in the manifest list entries"
    );
}

#[test]
fn one_blob_at_a_time_when_configured() {
    need_registry!();
    let reg = Registry::start(Options::default());
    let config = format!("{}\n[pull]\nmax_concurrent_downloads = 1\n", reg.berthd_config());
    let a = Agent::start_with_config(&config);
    login(&a, &reg);
    let name = format!("{}/one/app:1", reg.host());
    let info = a.load_fixture(&name);
    // Layers past the first wait, in Docker's words.
    let out = a.ok(&["push", &name]);
    assert_eq!(out.lines().filter(|l| l.ends_with(": Waiting")).count(), info.layer_digests.len() - 1, "{out}");
    let b = Agent::start_with_config(&config);
    login(&b, &reg);
    let out = b.ok(&["pull", &name]);
    assert_eq!(out.lines().filter(|l| l.ends_with(": Waiting")).count(), info.layer_digests.len() - 1, "{out}");
    assert!(out.contains(&format!("Digest: {}", info.manifest_digest)), "{out}");
}
