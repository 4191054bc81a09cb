//! `history`: an image's layers and the steps that made them.

use anyhow::Result;
use berth_proto::v1 as pb;
use clap::Args;

use crate::client::Client;
use crate::commands::FormatArg;
use crate::out::outln;
use crate::table;

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    format: FormatArg,
    image: String,
}

/// Docker's `CREATED BY` column: tabs as spaces, cut to 45 characters with
/// an ellipsis.
pub(crate) fn created_by(s: &str, no_trunc: bool) -> String {
    let s = s.replace('\t', " ");
    if no_trunc || s.chars().count() <= 45 {
        return s;
    }
    let cut: String = s.chars().take(44).collect();
    format!("{cut}…")
}

pub(crate) fn image_id(id: &str, no_trunc: bool) -> String {
    if id.is_empty() {
        "<missing>".into()
    } else if no_trunc {
        id.to_owned()
    } else {
        id.trim_start_matches("sha256:").chars().take(12).collect()
    }
}

pub(crate) fn since(secs: i64) -> String {
    if secs <= 0 {
        return "N/A".into();
    }
    format!("{} ago", table::human_duration(table::now_nanos() / 1_000_000_000 - secs))
}

pub async fn history(mut c: Client, a: HistoryArgs) -> Result<u8> {
    let json = a.format.json()?;
    let entries = c.images.history(pb::InspectImageRequest { reference: a.image }).await?.into_inner().entries;
    if a.quiet {
        for e in &entries {
            outln!("{}", image_id(&e.id, a.no_trunc))?;
        }
        return Ok(0);
    }
    if json {
        for e in &entries {
            let v = serde_json::json!({
                "ID": image_id(&e.id, a.no_trunc),
                "CreatedAt": table::rfc3339(e.created * 1_000_000_000, false),
                "CreatedSince": since(e.created),
                "CreatedBy": created_by(&e.created_by, a.no_trunc),
                "Size": table::human_size(e.size),
                "Comment": e.comment,
            });
            outln!("{v}")?;
        }
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                image_id(&e.id, a.no_trunc),
                since(e.created),
                created_by(&e.created_by, a.no_trunc),
                table::human_size(e.size),
                e.comment.clone(),
            ]
        })
        .collect();
    table::print(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], &rows)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_by_is_cut_like_docker() {
        let long = "/bin/sh -c #(nop) ADD file:0123456789abcdef0123456789 in /";
        let cut = created_by(long, false);
        assert_eq!(cut.chars().count(), 45);
        assert!(cut.ends_with('…') && long.starts_with(cut.trim_end_matches('…')));
        assert_eq!(created_by(long, true), long);
        assert_eq!(created_by("a\tb", false), "a b");
        assert_eq!(image_id("", false), "<missing>");
        assert_eq!(image_id(&format!("sha256:{}", "ab".repeat(32)), false), "abababababab");
    }
}
