//! Image verbs: `load`, `save`, `import`, `images`, `tag`, `rmi`, `image ...`.
use std::path::PathBuf;

use anyhow::{Context, Result};
use berth_proto::v1 as pb;
use clap::{Args, Subcommand};
use tokio::io::AsyncReadExt;

use super::FormatArg;
use crate::client::Client;
use crate::out::outln;
use crate::table;

const CHUNK: usize = 1 << 20;

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from this file or OCI layout directory instead of stdin
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Print only the loaded image names
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to this file instead of stdout
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Names or IDs of the images to save
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The rootfs tarball (plain, gzip or zstd), or `-` for stdin
    file: String,
    /// The name for the new image
    reference: Option<String>,
    /// A commit message for the image's history
    #[arg(short, long, default_value = "")]
    message: String,
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Show full image IDs
    #[arg(long)]
    no_trunc: bool,
    /// Show the manifest digests
    #[arg(long)]
    digests: bool,
    /// Filter: `dangling=true|false`, `reference=PATTERN` (a glob on the name, e.g. `berth-test/*`)
    #[arg(short, long = "filter")]
    filters: Vec<String>,
    #[command(flatten)]
    format: FormatArg,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    source: String,
    target: String,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Remove the image even if a container uses it (the image stays, unnamed, until that container goes)
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct InspectImageArgs {
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// List images
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Show images as JSON
    Inspect(InspectImageArgs),
    /// Remove images
    Rm(RmiArgs),
    /// Give an image another name
    Tag(TagArgs),
    /// Load images from an archive
    Load(LoadArgs),
    /// Save images to an OCI layout tar that `docker load` also reads
    Save(SaveArgs),
    /// Make a one-layer image from a rootfs tarball
    Import(ImportArgs),
    /// Show the history of an image
    History(super::commit::HistoryArgs),
    /// Remove unused images
    Prune(super::prune::ImagePruneArgs),
}

pub async fn image(c: Client, cmd: ImageCommand) -> Result<u8> {
    match cmd {
        ImageCommand::Ls(a) => list(c, a).await,
        ImageCommand::Inspect(a) => inspect(c, a).await,
        ImageCommand::Rm(a) => rmi(c, a).await,
        ImageCommand::Tag(a) => tag(c, a).await,
        ImageCommand::Load(a) => load(c, a).await,
        ImageCommand::Save(a) => save(c, a).await,
        ImageCommand::Import(a) => import(c, a).await,
        ImageCommand::History(a) => super::commit::history(c, a).await,
        ImageCommand::Prune(a) => super::prune::image_prune(c, a).await,
    }
}

/// Reads a whole input into chunks for a client stream. A directory (an
/// OCI layout) is sent as a tar of its contents.
async fn read_input(input: Option<&std::path::Path>) -> Result<Vec<Vec<u8>>> {
    let bytes = match input {
        Some(p) if p.is_dir() => {
            let dir = p.to_path_buf();
            tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
                let mut b = tar::Builder::new(Vec::new());
                b.follow_symlinks(false);
                b.append_dir_all(".", &dir).with_context(|| format!("read {}", dir.display()))?;
                Ok(b.into_inner()?)
            })
            .await??
        }
        Some(p) => tokio::fs::read(p).await.with_context(|| format!("open {}", p.display()))?,
        None => {
            let mut buf = Vec::new();
            tokio::io::stdin().read_to_end(&mut buf).await.context("read stdin")?;
            buf
        }
    };
    Ok(bytes.chunks(CHUNK).map(<[u8]>::to_vec).collect())
}

pub async fn load(mut c: Client, a: LoadArgs) -> Result<u8> {
    if a.input.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        anyhow::bail!("requested load from stdin, but stdin is empty");
    }
    let chunks = read_input(a.input.as_deref()).await?;
    let stream = tokio_stream::iter(chunks.into_iter().map(|data| pb::DataChunk { data }));
    let resp = c.images.load(stream).await?.into_inner();
    for img in resp.images {
        if img.names.is_empty() {
            outln!("Loaded image ID: {}", img.id)?;
        }
        for n in img.names {
            if a.quiet {
                outln!("{}", familiar(&n))?;
            } else {
                outln!("Loaded image: {}", familiar(&n))?;
            }
        }
    }
    Ok(0)
}

pub async fn save(mut c: Client, a: SaveArgs) -> Result<u8> {
    refuse_terminal(a.output.as_deref())?;
    // The call fails here, before any file is made, when a name is unknown.
    let stream = c.images.save(pb::SaveRequest { references: a.images }).await?.into_inner();
    write_archive(stream, a.output.as_deref(), "save").await?;
    Ok(0)
}

/// A tar on stdout only when stdout is not a terminal, as Docker.
pub(super) fn refuse_terminal(output: Option<&std::path::Path>) -> Result<()> {
    if output.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        anyhow::bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    Ok(())
}

/// Writes a streamed archive to `output`, or stdout. A file is removed
/// again when the stream fails, so no half archive is left for a later
/// `load` to reject less clearly. `what` names the verb in the error.
pub(super) async fn write_archive(
    mut stream: tonic::Streaming<pb::DataChunk>,
    output: Option<&std::path::Path>,
    what: &str,
) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let Some(path) = output else {
        let mut out = tokio::io::stdout();
        while let Some(chunk) = stream.message().await? {
            out.write_all(&chunk.data).await.map_err(crate::out::output_error)?;
        }
        out.flush().await.map_err(crate::out::output_error)?;
        return Ok(());
    };
    let mut file = tokio::fs::File::create(&path).await.with_context(|| format!("create {}", path.display()))?;
    let result: Result<()> = async {
        while let Some(chunk) = stream.message().await? {
            file.write_all(&chunk.data).await?;
        }
        file.sync_all().await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&path).await;
    }
    result.with_context(|| format!("{what} to {}", path.display()))
}

pub async fn import(mut c: Client, a: ImportArgs) -> Result<u8> {
    let input = (a.file != "-").then(|| PathBuf::from(&a.file));
    let chunks = read_input(input.as_deref()).await?;
    let reference = a.reference.clone().unwrap_or_default();
    let mut first = true;
    let stream = tokio_stream::iter(chunks.into_iter().map(move |data| {
        let (reference, message) =
            if std::mem::take(&mut first) { (reference.clone(), a.message.clone()) } else { Default::default() };
        pb::ImportChunk { reference, message, data }
    }));
    let img = c.images.import(stream).await?.into_inner().image.unwrap_or_default();
    outln!("{}", img.id)?;
    Ok(0)
}

/// The short form Docker shows: `busybox:latest`, `user/app:1`,
/// `localhost:5000/app:1`.
pub fn familiar(name: &str) -> String {
    let s = name.strip_prefix("docker.io/").unwrap_or(name);
    let s = s.strip_prefix("library/").unwrap_or(s);
    s.to_owned()
}

/// (repository, tag) of a name; a digest reference has no tag.
fn split_name(name: &str) -> (String, String) {
    let f = familiar(name);
    if let Some((repo, _)) = f.split_once('@') {
        return (repo.to_owned(), "<none>".into());
    }
    let slash = f.rfind('/').map_or(0, |i| i + 1);
    match f[slash..].rfind(':') {
        Some(i) => (f[..slash + i].to_owned(), f[slash + i + 1..].to_owned()),
        None => (f.clone(), "latest".into()),
    }
}

fn short_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_owned()
    } else {
        id.trim_start_matches("sha256:").chars().take(12).collect()
    }
}

pub async fn list(mut c: Client, a: ImagesArgs) -> Result<u8> {
    let json = a.format.json()?;
    let mut images = c.list_images(pb::ListImagesRequest { filters: a.filters.clone() }).await?;
    images.sort_by(|x, y| y.created.cmp(&x.created).then(x.names.cmp(&y.names)));
    let mut rows = Vec::new();
    for img in &images {
        let names: Vec<(String, String)> = if img.names.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            img.names.iter().map(|n| split_name(n)).collect()
        };
        for (repo, tag) in names {
            rows.push((repo, tag, img));
        }
    }
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for (_, _, img) in &rows {
            if seen.insert(&img.id) {
                outln!("{}", short_id(&img.id, a.no_trunc))?;
            }
        }
        return Ok(0);
    }
    if json {
        for (repo, tag, img) in &rows {
            let v = serde_json::json!({
                "Repository": repo,
                "Tag": tag,
                "ID": short_id(&img.id, a.no_trunc),
                "Digest": img.manifest_digest,
                "CreatedAt": table::rfc3339(img.created * 1_000_000_000, false),
                "CreatedSince": created_since(img.created),
                "Size": table::human_size(img.size),
                "VirtualSize": img.size,
            });
            outln!("{v}")?;
        }
        return Ok(0);
    }
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(repo, tag, img)| {
            let mut row = vec![repo.clone(), tag.clone()];
            if a.digests {
                row.push(if img.manifest_digest.is_empty() { "<none>".into() } else { img.manifest_digest.clone() });
            }
            row.extend([short_id(&img.id, a.no_trunc), created_since(img.created), table::human_size(img.size)]);
            row
        })
        .collect();
    let mut header = vec!["REPOSITORY", "TAG"];
    if a.digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    table::print(&header, &table_rows)?;
    Ok(0)
}

fn created_since(secs: i64) -> String {
    if secs <= 0 {
        return "N/A".into();
    }
    format!("{} ago", table::human_duration(table::now_nanos() / 1_000_000_000 - secs))
}

pub async fn tag(mut c: Client, a: TagArgs) -> Result<u8> {
    c.images.tag(pb::TagRequest { source: a.source, target: a.target }).await?;
    Ok(0)
}

pub async fn rmi(mut c: Client, a: RmiArgs) -> Result<u8> {
    let mut code = 0;
    for r in a.images {
        match c.images.remove(pb::RemoveImageRequest { reference: r, force: a.force }).await {
            Ok(resp) => {
                let resp = resp.into_inner();
                for u in resp.untagged {
                    outln!("Untagged: {}", familiar(&u))?;
                }
                for d in resp.deleted {
                    outln!("Deleted: {d}")?;
                }
            }
            Err(s) => {
                eprintln!("{}", crate::out::daemon_error(&s));
                code = 1;
            }
        }
    }
    Ok(code)
}

pub async fn inspect(mut c: Client, a: InspectImageArgs) -> Result<u8> {
    let mut out = Vec::new();
    let mut code = 0;
    for r in a.images {
        match c.images.inspect(pb::InspectImageRequest { reference: r }).await {
            Ok(resp) => out.push(serde_json::from_str::<serde_json::Value>(&resp.into_inner().json)?),
            Err(s) => {
                eprintln!("{}", crate::out::daemon_error(&s));
                code = 1;
            }
        }
    }
    outln!("{}", serde_json::to_string_pretty(&out)?)?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(split_name("docker.io/library/busybox:latest"), ("busybox".into(), "latest".into()));
        assert_eq!(split_name("docker.io/user/app:1.0"), ("user/app".into(), "1.0".into()));
        assert_eq!(split_name("localhost:5000/app:v2"), ("localhost:5000/app".into(), "v2".into()));
        assert_eq!(split_name("localhost:5000/app"), ("localhost:5000/app".into(), "latest".into()));
        assert_eq!(
            split_name(&format!("docker.io/library/x@sha256:{}", "a".repeat(64))),
            ("x".into(), "<none>".into())
        );
    }
}
