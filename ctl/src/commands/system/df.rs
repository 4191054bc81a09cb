//! `system df`.

use anyhow::Result;
use berth_proto::v1 as pb;

use crate::client::Client;
use crate::commands::FormatArg;
use crate::out::outln;
use crate::table;

pub(crate) async fn df(mut c: Client, f: FormatArg) -> Result<u8> {
    let json = f.json()?;
    let rows = c.system.disk_usage(pb::DiskUsageRequest {}).await?.into_inner().rows;
    if json {
        for r in &rows {
            let v = serde_json::json!({
                "Type": r.kind,
                "TotalCount": r.total,
                "Active": r.active,
                "Size": table::human_size(r.size),
                "Reclaimable": reclaimable(r),
                "SizeBytes": r.size,
                "ReclaimableBytes": r.reclaimable,
            });
            outln!("{v}")?;
        }
        return Ok(0);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![r.kind.clone(), r.total.to_string(), r.active.to_string(), table::human_size(r.size), reclaimable(r)]
        })
        .collect();
    table::print(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &cells)?;
    Ok(0)
}

/// `1.2MB (40%)`, as Docker.
pub(crate) fn reclaimable(r: &pb::DiskUsageRow) -> String {
    let pct = (r.reclaimable * 100).checked_div(r.size).unwrap_or(0);
    format!("{} ({pct}%)", table::human_size(r.reclaimable))
}
