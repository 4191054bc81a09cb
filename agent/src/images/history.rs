//! `history`: the config's history entries, newest first, each non-empty
//! one with the size of the layer it made (the size of the snapshot of that
//! layer's chain), as `docker history` shows them.

use redb::ReadableDatabase;

use super::meta::ReadTables;
use super::{created_secs, ImageError, ImageService};

/// One row of `history`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The image ID on the top row, empty below.
    pub id: String,
    /// Unix seconds, 0 when unknown.
    pub created: i64,
    pub created_by: String,
    /// Bytes of the layer, 0 for an empty one.
    pub size: u64,
    pub comment: String,
    pub empty_layer: bool,
}

impl ImageService {
    /// The history of the image `reference` names, newest first. An image
    /// whose config has no history gets one row per layer.
    pub fn history(&self, reference: &str) -> Result<Vec<HistoryEntry>, ImageError> {
        let rec = self.resolve(reference)?;
        let rtxn = self.db.begin_read()?;
        let tables = ReadTables::open(&rtxn)?;
        let mut layer_sizes = Vec::with_capacity(rec.chain_ids.len());
        for chain in &rec.chain_ids {
            layer_sizes.push(tables.snapshot(chain)?.map_or(0, |s| s.size));
        }
        let mut layers = layer_sizes.into_iter();
        let mut out: Vec<HistoryEntry> = match rec.config.history().as_ref().filter(|h| !h.is_empty()) {
            Some(history) => history
                .iter()
                .map(|h| {
                    let empty = h.empty_layer().unwrap_or(false);
                    HistoryEntry {
                        id: String::new(),
                        created: created_secs(h.created().as_ref()),
                        created_by: h.created_by().clone().unwrap_or_default(),
                        size: if empty { 0 } else { layers.next().unwrap_or(0) },
                        comment: h.comment().clone().unwrap_or_default(),
                        empty_layer: empty,
                    }
                })
                .collect(),
            None => layers
                .map(|size| HistoryEntry {
                    id: String::new(),
                    created: rec.created,
                    created_by: String::new(),
                    size,
                    comment: String::new(),
                    empty_layer: false,
                })
                .collect(),
        };
        out.reverse();
        if let Some(top) = out.first_mut() {
            top.id = rec.id.clone();
        }
        Ok(out)
    }
}
