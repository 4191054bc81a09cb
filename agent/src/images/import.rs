//! `import`: a one-layer image from a rootfs tarball (plain, gzip or
//! zstd), like `docker import`. The tarball is stored as the layer blob as
//! it is; berth writes the config (node platform, creation time, a history
//! entry carrying the message) and the OCI manifest.

use std::fs::File;
use std::path::Path;

use chrono::SecondsFormat;
use oci_spec::image::{Arch, HistoryBuilder, ImageConfigurationBuilder, MediaType, Os, RootFsBuilder};

use super::load::descriptor;
use super::reference;
use super::staging::Staging;
use super::unpack::Compression;
use super::{ImageError, ImageRecord, ImageService};

impl ImageService {
    /// Makes a one-layer image of `rootfs_tar`, named `reference` if given
    /// (the name moves here if another image had it), with `message` as
    /// the history comment.
    pub fn import(&self, rootfs_tar: &Path, reference: Option<&str>, message: &str) -> Result<ImageRecord, ImageError> {
        let name = match reference.filter(|r| !r.is_empty()) {
            None => None,
            Some(r) => Some(
                reference::parse(r)?
                    .tagged()
                    .ok_or_else(|| {
                        ImageError::InvalidReference("refusing to create a tag with a digest reference".into())
                    })?
                    .to_string(),
            ),
        };
        let file = File::open(rootfs_tar).map_err(|e| ImageError::io(format!("open {}", rootfs_tar.display()), e))?;
        let _guard = self.lock();
        let mut staging = Staging::new(self, "import")?;
        let layer = staging.stage_reader(file, None)?;
        let compression = Compression::of_file(&layer.path)?;
        let (tmp, unpacked) = staging.unpack_temp(&layer)?;
        let diff_id = unpacked.diff_id.clone();
        staging.keep_snapshot(&diff_id, None, tmp, unpacked)?;

        let config_err = |e: oci_spec::OciSpecError| ImageError::Invalid(format!("build config: {e}"));
        let created = chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
        let mut history = HistoryBuilder::default().created(created.clone()).created_by("berth import");
        if !message.is_empty() {
            history = history.comment(message);
        }
        let config = ImageConfigurationBuilder::default()
            .created(created)
            .architecture(Arch::default())
            .os(Os::Linux)
            .rootfs(RootFsBuilder::default().typ("layers").diff_ids(vec![diff_id]).build().map_err(config_err)?)
            .history(vec![history.build().map_err(config_err)?])
            .build()
            .map_err(config_err)?;
        let layer_desc = descriptor(MediaType::from(compression.layer_media_type()), &layer)?;
        let id = staging.add_new_image(config, vec![layer_desc], vec![layer], name.into_iter().collect())?;
        staging.commit()?;
        self.just_recorded(id, "imported")
    }
}
