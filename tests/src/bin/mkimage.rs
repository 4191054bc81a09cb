//! Writes a test image, for the README demo and the load benchmark.
//!
//! ```text
//! mkimage --format oci|oci-dir|docker|rootfs [--name NAME] [--pad-mb N] OUT
//! ```
//!
//! * `oci`: an OCI image layout as a tar (`oci-archive`), `oci-dir`: the
//!   same as a directory, `docker`: a `docker save` archive, `rootfs`: a plain
//!   rootfs tarball (for `import`; `--name` and `--pad-mb` do not apply).
//! * `--name` defaults to `berth-test/busybox:latest`.
//! * `--pad-mb N` adds a top layer of N MiB of incompressible data (gzip in
//!   the OCI forms, uncompressed in `docker`).
//!
//! Prints what it wrote (name, image ID, manifest digest, diff IDs), one
//! `key: value` per line.

use std::path::PathBuf;
use std::process::ExitCode;

use berth_tests::fixtures::{self, ImageSpec};

const USAGE: &str = "usage: mkimage --format oci|oci-dir|docker|rootfs [--name NAME] [--pad-mb N] OUT";

struct Args {
    format: String,
    spec: ImageSpec,
    out: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut format = None;
    let mut spec = ImageSpec::default();
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value =
            |what: &str| inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{what} needs a value"));
        match key.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--format" | "-f" => format = Some(value("--format")?),
            "--name" | "-n" => spec.name = value("--name")?,
            "--pad-mb" => {
                let v = value("--pad-mb")?;
                spec.pad_mb = v.parse().map_err(|_| format!("--pad-mb: not a number: {v}"))?;
            }
            s if s.starts_with('-') && s != "-" => return Err(format!("unknown option {s}")),
            _ if out.is_none() => out = Some(PathBuf::from(arg)),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    Ok(Args { format: format.ok_or("--format is required")?, spec, out: out.ok_or("the output path is required")? })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("mkimage: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match args.format.as_str() {
        "oci" | "oci-archive" => fixtures::oci_layout_tar(&args.out, &args.spec).map(Some),
        "oci-dir" => fixtures::oci_layout_dir(&args.out, &args.spec).map(Some),
        "docker" | "docker-archive" => fixtures::docker_archive(&args.out, &args.spec).map(Some),
        "rootfs" => fixtures::busybox_rootfs_tar(&args.out).map(|()| None),
        other => {
            eprintln!("mkimage: unknown format {other}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(info) => {
            println!("path: {}", args.out.display());
            println!("format: {}", args.format);
            if let Some(info) = info {
                println!("name: {}", info.name);
                println!("reference: {}", info.reference);
                println!("image-id: {}", info.config_digest);
                if !info.manifest_digest.is_empty() {
                    println!("manifest: {}", info.manifest_digest);
                }
                for d in &info.diff_ids {
                    println!("diff-id: {d}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mkimage: {}: {e}", args.out.display());
            ExitCode::FAILURE
        }
    }
}
