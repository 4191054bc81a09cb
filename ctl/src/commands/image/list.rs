//! `images` / `image ls`.

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use crate::client::Client;
use crate::commands::image::familiar;
use crate::commands::FormatArg;
use crate::out::outln;
use crate::table;

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

/// (repository, tag) of a name; a digest reference has no tag.
pub(crate) fn split_name(name: &str) -> (String, String) {
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

pub(crate) fn short_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_owned()
    } else {
        id.trim_start_matches("sha256:").chars().take(12).collect()
    }
}

pub(crate) fn created_since(secs: i64) -> String {
    if secs <= 0 {
        return "N/A".into();
    }
    format!("{} ago", table::human_duration(table::now_nanos() / 1_000_000_000 - secs))
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
