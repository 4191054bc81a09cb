//! `cp`: files and directories between the host and a container, with
//! Docker's rules (docs/choices.md, "cp"). One side is `NAME:PATH`; the
//! other a host path, or `-` for a tar on stdin or stdout.
//!
//! berthd resolves the container side inside the container's root; this
//! file only deals with the host side: it tars a host path, or extracts
//! the tar berthd sends, placed as Docker places it (into an existing
//! directory, else under the destination's name). The tar comes from a
//! container, so it is extracted with the tar crate's checked `unpack`,
//! which refuses `..` and symlinked parents leading out of the directory.
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use berth_proto::chunks::ChunkWriter;
use berth_proto::v1 as pb;
use clap::Args;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use crate::client::Client;

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode: keep the files' uid and gid when copying into the container
    #[arg(short, long)]
    archive: bool,
    /// Always follow a symlink named by SRC_PATH
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// Print no summary line
    #[arg(short, long)]
    quiet: bool,
    /// CONTAINER:SRC_PATH, a host path, or - (a tar on stdin)
    src: String,
    /// CONTAINER:DEST_PATH, a host path, or - (a tar on stdout)
    dest: String,
}

/// `NAME:PATH`, as Docker reads it: an absolute path, one with no colon
/// or one with nothing before it is local (`./a:b` and `:b` name local
/// files with a colon).
fn split(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':').filter(|(name, _)| !name.is_empty())
}

pub async fn cp(c: Client, a: CpArgs) -> Result<u8> {
    match (split(&a.src), split(&a.dest)) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some((name, path)), None) => {
            let (name, path, dest) = (name.to_owned(), path.to_owned(), a.dest.clone());
            from_container(c, &a, &name, &path, &dest).await
        }
        (None, Some((name, path))) => {
            let (name, path, src) = (name.to_owned(), path.to_owned(), a.src.clone());
            to_container(c, &a, &src, &name, &path).await
        }
    }
}

// ------------------------------------------------------ container → host

async fn from_container(mut c: Client, a: &CpArgs, name: &str, path: &str, dest: &str) -> Result<u8> {
    let req = pb::CopyFromRequest { id: name.to_owned(), path: path.to_owned(), follow_link: a.follow_link };
    let mut stream = c.containers.copy_from(req).await?.into_inner();
    let stat = stream.message().await?.and_then(|m| m.stat).context("berthd sent no file information")?;
    if dest == "-" {
        let mut out = tokio::io::stdout();
        while let Some(chunk) = stream.message().await? {
            tokio::io::AsyncWriteExt::write_all(&mut out, &chunk.data).await.map_err(crate::out::output_error)?;
        }
        tokio::io::AsyncWriteExt::flush(&mut out).await.map_err(crate::out::output_error)?;
        return Ok(0);
    }
    // The tar goes through a bounded queue to a blocking extractor.
    let (tx, rx) = mpsc::channel::<Result<Vec<u8>, String>>(4);
    let dest_path = PathBuf::from(dest);
    let dir_form = dest.ends_with('/') || dest.ends_with("/.");
    let is_dir = stat.mode & 0o170000 == 0o040000;
    let top = stat.name.clone();
    let extractor = tokio::task::spawn_blocking(move || {
        extract_on_host(&dest_path, dir_form, &top, is_dir, QueueReader { rx, buf: Vec::new(), pos: 0 })
    });
    let mut total = 0u64;
    let mut failure = None;
    loop {
        match stream.message().await {
            Ok(Some(chunk)) => {
                total += chunk.data.len() as u64;
                if tx.send(Ok(chunk.data)).await.is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(status) => {
                let _ = tx.send(Err(status.message().to_owned())).await;
                failure = Some(status);
                break;
            }
        }
    }
    drop(tx);
    let extracted = extractor.await.context("extract")?;
    if let Some(status) = failure {
        return Err(status.into());
    }
    extracted?;
    summary(a, total, dest);
    Ok(0)
}

/// Places the tar of one file or directory named `top` at `dest`.
fn extract_on_host(dest: &Path, dir_form: bool, top: &str, is_dir: bool, input: impl Read) -> Result<()> {
    let unpack = |dir: &Path, input| -> Result<()> {
        let mut ar = tar::Archive::new(input);
        // rwx bits only: a container cannot plant a setuid file on the host.
        ar.set_preserve_permissions(false);
        ar.set_preserve_mtime(true);
        ar.set_overwrite(true);
        ar.unpack(dir).with_context(|| format!("extract into {}", dir.display()))
    };
    match std::fs::metadata(dest) {
        Ok(md) if md.is_dir() => return unpack(dest, input),
        Ok(_) if dir_form => bail!("{}: not a directory", dest.display()),
        Ok(_) if is_dir => bail!("cannot copy directory"),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dir_form && !is_dir {
                bail!("{}: no such directory", dest.display());
            }
        }
        Err(e) => return Err(e).with_context(|| format!("stat {}", dest.display())),
    }
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match std::fs::metadata(&parent) {
        Ok(md) if md.is_dir() => {}
        Ok(_) => bail!("{}: not a directory", parent.display()),
        Err(_) => bail!("lstat {}: no such file or directory", parent.display()),
    }
    if top == "." {
        std::fs::create_dir(dest).with_context(|| format!("create {}", dest.display()))?;
        return unpack(dest, input);
    }
    // Under its own name in a private directory beside the destination,
    // then renamed into place: the destination is never written through.
    let staging = tempfile_dir(&parent)?;
    let result = unpack(&staging, input).and_then(|()| {
        std::fs::rename(staging.join(top), dest).with_context(|| format!("move into place at {}", dest.display()))
    });
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// A fresh, private directory in `parent`.
fn tempfile_dir(parent: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    for n in 0..1000u32 {
        let p = parent.join(format!(".berthctl-cp-{}-{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("create a directory in {}", parent.display())),
        }
    }
    bail!("cannot create a directory in {}", parent.display())
}

/// The blocking end of the queue of received chunks.
struct QueueReader {
    rx: mpsc::Receiver<Result<Vec<u8>, String>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for QueueReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.blocking_recv() {
                Some(Ok(data)) => {
                    self.buf = data;
                    self.pos = 0;
                }
                Some(Err(message)) => return Err(std::io::Error::other(message)),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

// ------------------------------------------------------ host → container

async fn to_container(mut c: Client, a: &CpArgs, src: &str, name: &str, path: &str) -> Result<u8> {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(4);
    let single = src != "-";
    let producer = if single {
        let src_path = PathBuf::from(src);
        let md = if a.follow_link { std::fs::metadata(&src_path) } else { std::fs::symlink_metadata(&src_path) };
        let md = match md {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("lstat {src}: no such file or directory")
            }
            Err(e) => return Err(e).with_context(|| format!("lstat {src}")),
        };
        let contents = src.ends_with("/.") || src == ".";
        if (contents || src.ends_with('/')) && !md.is_dir() {
            bail!("{src}: not a directory");
        }
        let top = if contents {
            ".".to_owned()
        } else {
            match Path::new(src).file_name() {
                Some(n) => n.to_string_lossy().into_owned(),
                None => ".".to_owned(),
            }
        };
        let follow = a.follow_link;
        tokio::task::spawn_blocking(move || {
            let mut b = tar::Builder::new(ChunkWriter::new(tx, |d| d));
            b.follow_symlinks(false);
            if md.is_dir() {
                b.append_dir(&top, &src_path).with_context(|| format!("read {}", src_path.display()))?;
                tar_children(&mut b, &src_path, &top)?;
            } else if follow && md.is_file() {
                let mut f = std::fs::File::open(&src_path).with_context(|| format!("open {}", src_path.display()))?;
                b.append_file(&top, &mut f).with_context(|| format!("read {}", src_path.display()))?;
            } else {
                b.append_path_with_name(&src_path, &top).with_context(|| format!("read {}", src_path.display()))?;
            }
            let mut w = b.into_inner().context("write tar")?;
            w.flush().context("send tar")?;
            Ok::<u64, anyhow::Error>(w.total())
        })
    } else {
        if std::io::stdin().is_terminal() {
            bail!("requested copy from stdin, but stdin is a terminal");
        }
        tokio::task::spawn_blocking(move || {
            let mut w = ChunkWriter::new(tx, |d| d);
            std::io::copy(&mut std::io::stdin().lock(), &mut w).context("read stdin")?;
            w.flush().context("send tar")?;
            Ok::<u64, anyhow::Error>(w.total())
        })
    };
    let first =
        pb::CopyToChunk { id: name.to_owned(), path: path.to_owned(), single, archive: a.archive, data: Vec::new() };
    let head = tokio_stream::iter(std::iter::once(first));
    let body = ReceiverStream::new(rx).map(|data| pb::CopyToChunk { data, ..Default::default() });
    let sent = c.containers.copy_to(head.chain(body)).await;
    let produced = producer.await.context("read the source")?;
    sent?;
    let total = produced?;
    summary(a, total, &format!("{name}:{path}"));
    Ok(0)
}

/// Adds the entries below the directory `dir`, named under `prefix`, in
/// name order; symlinks are stored as links.
fn tar_children<W: Write>(b: &mut tar::Builder<W>, dir: &Path, prefix: &str) -> Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("read {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("read {}", dir.display()))?;
    names.sort();
    for n in names {
        let path = dir.join(&n);
        let tar_name = if prefix == "." { PathBuf::from(&n) } else { Path::new(prefix).join(&n) };
        let md = std::fs::symlink_metadata(&path).with_context(|| format!("lstat {}", path.display()))?;
        if md.is_dir() {
            b.append_dir(&tar_name, &path).with_context(|| format!("read {}", path.display()))?;
            tar_children(b, &path, &tar_name.to_string_lossy())?;
        } else if md.file_type().is_socket() {
            continue;
        } else {
            b.append_path_with_name(&path, &tar_name).with_context(|| format!("read {}", path.display()))?;
        }
    }
    Ok(())
}

/// Docker's last line, on a terminal only: `Successfully copied 2.05kB to c1:/tmp`.
fn summary(a: &CpArgs, bytes: u64, to: &str) {
    if a.quiet || !std::io::stderr().is_terminal() {
        return;
    }
    eprintln!("Successfully copied {} to {to}", crate::table::human_size_4(bytes));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_split_as_docker_splits_them() {
        let cases = [
            ("c1:/etc/hostname", Some(("c1", "/etc/hostname"))),
            ("c1:", Some(("c1", ""))),
            ("/tmp/a:b", None),
            ("./a:b", None),
            ("file", None),
            ("-", None),
            (":/etc/hostname", None),
        ];
        for (arg, want) in cases {
            assert_eq!(split(arg), want, "{arg}");
        }
    }

    /// `NAME:PATH` or a local path, for any argument: the split loses
    /// nothing, and only an argument Docker reads as a container's is one.
    #[test]
    fn fuzz_arguments_split_losslessly() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz-corpus/cp-arg");
        berth_fuzz::Target::new("cp-arg", corpus).dict([":", "/", ".", "./", "-", "c1:"]).max_len(256).run(|input| {
            let arg = String::from_utf8_lossy(input);
            match split(&arg) {
                Some((name, path)) => {
                    assert_eq!(format!("{name}:{path}"), arg, "{arg:?}");
                    assert!(
                        !name.is_empty() && !name.contains(':') && !arg.starts_with(['/', '.']),
                        "{arg:?}: container {name:?}"
                    );
                }
                None => {
                    assert!(arg.starts_with(['/', '.', ':']) || !arg.contains(':'), "{arg:?} read as local")
                }
            }
        });
    }

    #[test]
    fn sizes_read_as_docker_prints_them() {
        assert_eq!(crate::table::human_size_4(0), "0B");
        assert_eq!(crate::table::human_size_4(2048), "2.048kB");
        assert_eq!(crate::table::human_size_4(1_500_000), "1.5MB");
        // Four significant digits, as Docker (not three decimals).
        assert_eq!(crate::table::human_size_4(15_123_456), "15.12MB");
    }
}
