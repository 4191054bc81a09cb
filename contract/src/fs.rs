//! The one way berth's programs write a state file: a new temp file beside
//! it, renamed over it, so a reader (or a process killed mid-write) sees
//! the old file or the whole new one, never a part.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `path` atomically, and the new file survives a power cut: the temp
/// file and then the directory are fsynced.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_then_rename(path, bytes, true)
}

/// Writes `path` atomically, without fsyncs: for files nothing reads after
/// a crash of the host: what lives in the state dir (a tmpfs, gone at
/// boot: `shim.pid`), and what is written anew before each use
/// (`config.json`, rewritten at every start before the shim that reads it
/// exists). Two fsyncs fewer each, about half a millisecond on a disk.
pub fn atomic_replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_then_rename(path, bytes, false)
}

fn write_then_rename(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        // 0600: state files can hold secrets (a container's environment).
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if durable {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_replace_is_atomic_write_without_the_fsyncs() {
        let dir = std::env::temp_dir().join(format!("berth-fs-replace-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("shim.pid");
        atomic_replace(&p, b"12345\n").unwrap();
        atomic_replace(&p, b"7\n").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"7\n");
        assert_eq!(std::os::unix::fs::MetadataExt::mode(&fs::metadata(&p).unwrap()) & 0o777, 0o600);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        assert!(atomic_replace(&dir.join("no/such/dir/x"), b"x").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn atomic_write_replaces_the_whole_file_and_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("berth-fs-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("state.json");
        atomic_write(&p, b"first, and longer").unwrap();
        atomic_write(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        assert_eq!(std::os::unix::fs::MetadataExt::mode(&fs::metadata(&p).unwrap()) & 0o777, 0o600);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        assert!(atomic_write(&dir.join("no/such/dir/x"), b"x").is_err());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
