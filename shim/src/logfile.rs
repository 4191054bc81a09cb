//! `container.log` and its rotated files, as the shim writes them.
//!
//! When appending a record would take `container.log` past
//! [`LogLimits::max_size`], the shim rotates: `container.log.<n>` becomes
//! `container.log.<n+1>` (the oldest beyond `max_files - 1` rotated files is
//! dropped), `container.log` becomes `container.log.1`, and a new empty
//! `container.log` takes the rest. A record is never split across files; a
//! record larger than `max_size` gets a file of its own. So at most
//! `max_files` files exist, and none is larger than `max_size` unless it
//! holds a single record.
//!
//! What readers (berthd's `logs`) may rely on: a rotated file never changes
//! again (the shim writes only to the file named `container.log` when the
//! write starts, and renames happen between writes); the files are renamed
//! oldest first, so at every instant the names, read from the highest
//! number down to `container.log`, give the records in order (a name may be
//! missing for a moment, never out of order); `container.log` is replaced
//! by a rename of a file that already exists, never truncated in place.
//!
//! Everything here runs on the shim's one thread, between reads of the
//! container's pipes: a rotation is a few renames, and a failed one never
//! stops the draining (the shim writes on past the limit and says so once
//! in `shim.log`), because a container must never block on its output.
use std::cell::RefCell;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::diag;
use berth_contract::layout::ContainerPaths;
use berth_contract::log::LogLimits;

/// The log being written: `container.log`, rotated by [`LogLimits`].
/// Shared by the two pumps of one shim (one thread, so a `RefCell`).
#[derive(Debug)]
pub struct LogFile {
    paths: ContainerPaths,
    limits: LogLimits,
    live: RefCell<Live>,
}

#[derive(Debug)]
struct Live {
    file: File,
    /// Bytes in `file`; the shim is its only writer.
    size: u64,
    /// The highest `container.log.<n>` there may be.
    rotated: u32,
    /// A rotation failed and that was reported: stay quiet until one works.
    failing: bool,
    /// Bytes of records lost to failed writes (a full disk) and not yet
    /// told in the log, and why.
    dropped: u64,
    drop_reason: String,
}

impl LogFile {
    /// Opens `container.log` for appending (a restarted container appends
    /// to its log) and removes what the limits no longer allow: rotated
    /// files beyond `max_files - 1` and an unfinished rotation's new file.
    pub fn open(paths: &ContainerPaths, limits: LogLimits) -> io::Result<Self> {
        let file = open_append(&paths.log_file())?;
        let size = file.metadata()?.len();
        remove_if_exists(&paths.next_log())?;
        let mut rotated = 0;
        for (n, path) in paths.rotated_logs()? {
            if n > limits.kept_rotations() {
                remove_if_exists(&path)?;
            } else {
                rotated = rotated.max(n);
            }
        }
        let live = Live { file, size, rotated, failing: false, dropped: 0, drop_reason: String::new() };
        Ok(Self { paths: paths.clone(), limits, live: RefCell::new(live) })
    }

    /// Appends whole records (each ending with a newline), rotating before
    /// a record that would not fit. A failed write (disk full) loses those
    /// records but never stops the draining.
    pub fn append(&self, records: &[u8]) {
        let mut live = self.live.borrow_mut();
        let mut rest = records;
        while !rest.is_empty() {
            let room = self.limits.max_size.saturating_sub(live.size);
            let mut take = fitting(rest, room);
            if take == 0 {
                if live.size > 0 && self.rotate(&mut live) {
                    continue;
                }
                // An empty file takes one record whatever its size; after a
                // failed rotation the full file takes the rest.
                take = if live.size == 0 { first_record(rest) } else { rest.len() };
            }
            live.write(&rest[..take]);
            rest = &rest[take..];
        }
    }

    /// Rotates once; false (reported once) when it could not.
    fn rotate(&self, live: &mut Live) -> bool {
        match self.try_rotate(live) {
            Ok(()) => {
                if live.failing {
                    diag!("log rotation works again");
                    live.failing = false;
                }
                true
            }
            Err(e) => {
                if !live.failing {
                    diag!("rotate {}: {e}; writing on past max-size", self.paths.log_file().display());
                    live.failing = true;
                }
                false
            }
        }
    }

    fn try_rotate(&self, live: &mut Live) -> io::Result<()> {
        // The new file exists before anything is renamed, so a failure to
        // create it (no inode left) leaves every name as it was.
        let next_path = self.paths.next_log();
        remove_if_exists(&next_path)?;
        let next = open_append(&next_path)?;
        if let Err(e) = self.shift(live) {
            let _ = fs::remove_file(&next_path);
            return Err(e);
        }
        // Only a rename in one directory can fail here; if it does, the
        // old file (already rotated, and still ours) takes the output and
        // readers find it under its new name until a rotation works.
        fs::rename(&next_path, self.paths.log_file())?;
        live.file = next;
        live.size = 0;
        Ok(())
    }

    /// Moves every file one number up, oldest first, dropping the oldest
    /// beyond the limit; `container.log` goes last. A missing name is
    /// skipped: after a crash mid-rotation, or a `container.log` deleted by
    /// hand (the shim then wrote to an unlinked file, and this rotation
    /// makes the log visible again).
    fn shift(&self, live: &mut Live) -> io::Result<()> {
        let keep = self.limits.kept_rotations();
        if keep == 0 {
            return remove_if_exists(&self.paths.log_file());
        }
        for n in (1..=live.rotated.min(keep - 1)).rev() {
            rename_if_exists(&self.paths.rotated_log(n), &self.paths.rotated_log(n + 1))?;
        }
        rename_if_exists(&self.paths.log_file(), &self.paths.rotated_log(1))?;
        live.rotated = (live.rotated + 1).min(keep);
        Ok(())
    }
}

impl Live {
    /// Appends whole records, first the notice of what earlier failures
    /// dropped, if any. A failed write is undone (the file is cut back to
    /// its last whole record, so no half record glues onto the next) and
    /// counted.
    fn write(&mut self, bytes: &[u8]) {
        if self.dropped > 0 {
            let mut notice = Vec::new();
            let text = format!(
                "[berth] {} bytes of output dropped: {}",
                self.dropped,
                if self.drop_reason.is_empty() { "write failed" } else { &self.drop_reason }
            );
            berth_contract::log::encode(&mut notice, berth_contract::now_nanos(), "stderr", false, text.as_bytes());
            if self.try_write(&notice).is_ok() {
                self.dropped = 0;
            }
        }
        if let Err(e) = self.try_write(bytes) {
            if self.dropped == 0 {
                diag!("write container.log: {e}; counting what is dropped");
            }
            self.dropped += bytes.len() as u64;
            self.drop_reason = crate::error::os_msg(&e).to_lowercase();
        }
    }

    fn try_write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match (&self.file).write_all(bytes) {
            Ok(()) => {
                self.size += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Part of it may have been written: cut it off (freeing
                // blocks needs none).
                let _ = self.file.set_len(self.size);
                Err(e)
            }
        }
    }
}

impl LogFile {
    /// Writes the notice of dropped output, if some is still untold (at the
    /// container's exit, once the disk may have room again); returns the
    /// bytes dropped that no notice could tell.
    pub fn finish(&self) -> u64 {
        let mut live = self.live.borrow_mut();
        if live.dropped > 0 {
            live.write(&[]);
        }
        live.dropped
    }
}

/// The length of the longest run of whole records at the start of
/// `records` that is at most `room` bytes.
fn fitting(records: &[u8], room: u64) -> usize {
    let mut end = 0;
    for (i, b) in records.iter().enumerate() {
        if (i as u64) >= room {
            break;
        }
        if *b == b'\n' {
            end = i + 1;
        }
    }
    end
}

/// The length of the first record (all of it when there is no newline).
fn first_record(records: &[u8]) -> usize {
    records.iter().position(|b| *b == b'\n').map_or(records.len(), |i| i + 1)
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).mode(0o640).open(path)
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Self {
            let d = std::env::temp_dir().join(format!("berth-logfile-test-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(&d).unwrap();
            Dir(d)
        }
        fn paths(&self) -> ContainerPaths {
            ContainerPaths::from_dirs(&self.0, self.0.join("state"))
        }
        /// File name → content, for every file in the directory.
        fn files(&self) -> Vec<(String, String)> {
            let mut out: Vec<(String, String)> = fs::read_dir(&self.0)
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    (e.file_name().into_string().unwrap(), fs::read_to_string(e.path()).unwrap())
                })
                .collect();
            out.sort();
            out
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A 10-byte record: `r<n padded to 8>\n`.
    fn rec(n: u32) -> String {
        format!("r{n:08}\n")
    }

    fn recs(range: std::ops::RangeInclusive<u32>) -> String {
        range.map(rec).collect()
    }

    fn limits(max_size: u64, max_files: u32) -> LogLimits {
        LogLimits { max_size, max_files }
    }

    #[test]
    fn rotates_by_size_and_shifts_names() {
        let d = Dir::new("shift");
        let log = LogFile::open(&d.paths(), limits(25, 3)).unwrap();
        // Two 10-byte records fit in 25 bytes, a third does not.
        for n in 1..=9 {
            log.append(rec(n).as_bytes());
        }
        assert_eq!(
            d.files(),
            [
                ("container.log".into(), recs(9..=9)),
                ("container.log.1".into(), recs(7..=8)),
                ("container.log.2".into(), recs(5..=6)),
            ]
        );
    }

    #[test]
    fn one_append_is_split_only_between_records() {
        let d = Dir::new("split");
        let log = LogFile::open(&d.paths(), limits(30, 4)).unwrap();
        log.append(recs(1..=8).as_bytes());
        assert_eq!(
            d.files(),
            [
                ("container.log".into(), recs(7..=8)),
                ("container.log.1".into(), recs(4..=6)),
                ("container.log.2".into(), recs(1..=3)),
            ]
        );
    }

    #[test]
    fn one_file_means_the_log_starts_over() {
        let d = Dir::new("one");
        let log = LogFile::open(&d.paths(), limits(20, 1)).unwrap();
        log.append(recs(1..=5).as_bytes());
        assert_eq!(d.files(), [("container.log".into(), recs(5..=5))]);
    }

    #[test]
    fn a_record_larger_than_max_size_gets_a_file_of_its_own() {
        let d = Dir::new("big");
        let log = LogFile::open(&d.paths(), limits(15, 5)).unwrap();
        let big = format!("{}\n", "x".repeat(39));
        log.append(rec(1).as_bytes());
        log.append(big.as_bytes());
        log.append(rec(2).as_bytes());
        assert_eq!(
            d.files(),
            [
                ("container.log".into(), rec(2)),
                ("container.log.1".into(), big.clone()),
                ("container.log.2".into(), rec(1)),
            ]
        );
        // And into an empty file it goes at once.
        let d = Dir::new("big-first");
        let log = LogFile::open(&d.paths(), limits(15, 5)).unwrap();
        log.append(big.as_bytes());
        assert_eq!(d.files(), [("container.log".into(), big)]);
    }

    #[test]
    fn reopening_continues_where_the_last_shim_stopped() {
        let d = Dir::new("reopen");
        let paths = d.paths();
        // A previous run left a full log, one rotated file, files beyond
        // the limit and an unfinished rotation.
        fs::write(paths.log_file(), recs(3..=4)).unwrap();
        fs::write(paths.rotated_log(1), recs(1..=2)).unwrap();
        fs::write(paths.rotated_log(3), "stale\n").unwrap();
        fs::write(paths.rotated_log(7), "stale\n").unwrap();
        fs::write(paths.next_log(), "").unwrap();
        let log = LogFile::open(&paths, limits(20, 3)).unwrap();
        assert_eq!(d.files(), [("container.log".into(), recs(3..=4)), ("container.log.1".into(), recs(1..=2))]);
        log.append(rec(5).as_bytes());
        log.append(rec(6).as_bytes());
        log.append(rec(7).as_bytes());
        assert_eq!(
            d.files(),
            [
                ("container.log".into(), rec(7)),
                ("container.log.1".into(), recs(5..=6)),
                ("container.log.2".into(), recs(3..=4)),
            ]
        );
    }

    #[test]
    fn a_gap_in_the_numbers_keeps_the_order() {
        // A shim killed mid-rotation leaves `.2` without `.1`.
        let d = Dir::new("gap");
        let paths = d.paths();
        fs::write(paths.log_file(), recs(3..=4)).unwrap();
        fs::write(paths.rotated_log(2), recs(1..=2)).unwrap();
        let log = LogFile::open(&paths, limits(20, 4)).unwrap();
        log.append(rec(5).as_bytes());
        assert_eq!(
            d.files(),
            [
                ("container.log".into(), rec(5)),
                ("container.log.1".into(), recs(3..=4)),
                ("container.log.3".into(), recs(1..=2)),
            ]
        );
    }

    #[test]
    fn a_log_deleted_by_hand_comes_back_at_the_next_rotation() {
        let d = Dir::new("deleted");
        let paths = d.paths();
        let log = LogFile::open(&paths, limits(20, 3)).unwrap();
        log.append(rec(1).as_bytes());
        fs::remove_file(paths.log_file()).unwrap();
        // Written to the unlinked file: lost, as with any deleted log.
        log.append(rec(2).as_bytes());
        assert_eq!(d.files(), []);
        // The file is full: the rotation has no container.log to move and
        // puts a new one in place.
        log.append(rec(3).as_bytes());
        assert_eq!(d.files(), [("container.log".into(), rec(3))]);
        log.append(recs(4..=5).as_bytes());
        assert_eq!(d.files(), [("container.log".into(), rec(5)), ("container.log.1".into(), recs(3..=4))]);
    }

    #[test]
    fn fitting_counts_whole_records() {
        for (input, room, want) in [
            ("a\nbb\nccc\n", 0, 0),
            ("a\nbb\nccc\n", 1, 0),
            ("a\nbb\nccc\n", 2, 2),
            ("a\nbb\nccc\n", 4, 2),
            ("a\nbb\nccc\n", 5, 5),
            ("a\nbb\nccc\n", 9, 9),
            ("a\nbb\nccc\n", 100, 9),
            ("abc", 100, 0),
        ] {
            assert_eq!(fitting(input.as_bytes(), room), want, "{input:?} in {room}");
        }
        assert_eq!(first_record(b"ab\ncd\n"), 3);
        assert_eq!(first_record(b"abc"), 3);
    }

    #[test]
    fn limits_in_range() {
        assert!(LogLimits::DEFAULT.valid());
        assert_eq!(LogLimits::default(), LogLimits::DEFAULT);
        assert!(limits(1, 1).valid());
        assert!(limits(1, LogLimits::MAX_FILES).valid());
        assert!(!limits(0, 3).valid());
        assert!(!limits(10, 0).valid());
        assert!(!limits(10, LogLimits::MAX_FILES + 1).valid());
    }
}
