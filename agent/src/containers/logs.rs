//! `logs`: reads the shim's log (format in `berth_shim::logfmt`, rotation
//! in `berth_shim::logfile`): the rotated files oldest first, then
//! `container.log`; with follow, keeps reading, across rotations, until the
//! container has exited and every record it wrote has been sent.
//!
//! The files are opened as one set and kept open: a file the shim renames
//! or drops can still be read to its end. The set is consistent: after
//! opening, the directory must still name exactly those files (device and
//! inode), else a rotation came in between and the set is opened again.
//!
//! Following: at the end of the newest file, if `container.log` is no
//! longer that file, the shim has rotated it and will never write to it
//! again. It is read to its end, then the files newer than it (all of them
//! when it has been dropped already) take over. A record is sent once, and
//! none is skipped that the shim still keeps.
//!
//! Files not yet opened are lost when the container's directory goes, and
//! a container that writes a burst and exits can leave several behind the
//! follower's last look. So an auto-remove (`run --rm`) first waits, up to
//! [`READERS_GRACE`], for the `logs` calls reading that container to end;
//! a follower ends soon after the exit, once it has read everything.
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_shim::layout::ContainerPaths;
use berth_shim::logfmt;
use tokio::sync::mpsc;

use super::{Manager, Status};
use crate::error::{AgentError, Result};

/// Records read per blocking call.
const BATCH: usize = 1024;

/// How long an auto-remove waits for readers of the log (a slow client
/// can keep one reading for a long time).
const READERS_GRACE: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    pub follow: bool,
    /// Last N records; None = all.
    pub tail: Option<usize>,
    /// Unix nanoseconds; records before are skipped.
    pub since: i64,
}

/// One record as sent to the client.
#[derive(Clone, Debug)]
pub struct LogRecord {
    pub time: i64,
    pub stream: String,
    pub data: Vec<u8>,
}

fn to_record(line: &[u8]) -> Option<LogRecord> {
    let r = logfmt::decode(line)?;
    let mut data = r.content.to_vec();
    if !r.partial {
        data.push(b'\n');
    }
    Some(LogRecord { time: r.time, stream: r.stream.to_owned(), data })
}

impl Manager {
    /// Streams the log into `tx`. The first message sent is an empty
    /// record: it tells the caller the log is open (so a `run` can start
    /// the container knowing no output will be missed).
    pub async fn logs(self: &Arc<Self>, key: &str, opts: LogOptions, tx: mpsc::Sender<LogRecord>) -> Result<()> {
        let rec = self.lookup(key)?;
        let id = rec.id.clone();
        let _reading = ReaderGuard::new(self, &id);
        let paths = self.paths(&rec);
        let mut exits = self.exits.subscribe();
        // Open from here on: an auto-removed container's files are unlinked
        // after its exit, and what is open can still be read.
        let mut reader = blocking(move || LogReader::open(paths)).await?;
        let _ = tx.send(LogRecord { time: 0, stream: String::new(), data: Vec::new() }).await;

        // What is there now (to the end of the newest file, not into the
        // files rotations add meanwhile): all of it, or the last `tail`.
        let mut last: Option<(usize, VecDeque<LogRecord>)> = opts.tail.map(|n| (n, VecDeque::new()));
        loop {
            let (r, batch) = read_batch(reader, false).await?;
            reader = r;
            if batch.is_empty() {
                break;
            }
            for record in batch.into_iter().filter(|r| r.time >= opts.since) {
                match &mut last {
                    Some((n, kept)) => {
                        if kept.len() == *n {
                            kept.pop_front();
                        }
                        if *n > 0 {
                            kept.push_back(record);
                        }
                    }
                    None => {
                        if tx.send(record).await.is_err() {
                            return Ok(());
                        }
                    }
                }
            }
        }
        for record in last.map(|(_, kept)| kept).unwrap_or_default() {
            if tx.send(record).await.is_err() {
                return Ok(());
            }
        }
        if !opts.follow {
            return Ok(());
        }

        loop {
            // Status first, then the files: an exit recorded before the
            // read means every record is already in them.
            let done = match self.refresh(&id).await {
                Ok(r) => r.state.status == Status::Exited,
                Err(_) => true,
            };
            loop {
                let (r, batch) = read_batch(reader, true).await?;
                reader = r;
                if batch.is_empty() {
                    break;
                }
                for record in batch {
                    if record.time >= opts.since && tx.send(record).await.is_err() {
                        return Ok(());
                    }
                }
            }
            if done {
                return Ok(());
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = exits.recv() => {}
                _ = tx.closed() => return Ok(()),
            }
        }
    }
}

impl Manager {
    /// Waits until no `logs` call reads the log of `id` (or the grace
    /// period is over): an auto-remove must not delete files a follower
    /// has yet to open.
    pub(crate) async fn wait_for_log_readers(&self, id: &str) {
        let deadline = tokio::time::Instant::now() + READERS_GRACE;
        loop {
            // Registered before the check, so a reader that ends in
            // between still wakes this.
            let ended = self.log_reader_done.notified();
            if self.log_readers.lock().unwrap_or_else(|e| e.into_inner()).get(id).is_none() {
                return;
            }
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                tracing::warn!(id = %&id[..12], "removing the container while its log is still being read");
                return;
            }
        }
    }
}

/// Counts one `logs` call for [`Manager::wait_for_log_readers`].
struct ReaderGuard<'a> {
    manager: &'a Manager,
    id: &'a str,
}

impl<'a> ReaderGuard<'a> {
    fn new(manager: &'a Manager, id: &'a str) -> Self {
        *manager.log_readers.lock().unwrap_or_else(|e| e.into_inner()).entry(id.to_owned()).or_default() += 1;
        Self { manager, id }
    }
}

impl Drop for ReaderGuard<'_> {
    fn drop(&mut self) {
        let mut readers = self.manager.log_readers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = readers.get_mut(self.id) {
            *n -= 1;
            if *n == 0 {
                readers.remove(self.id);
            }
        }
        drop(readers);
        self.manager.log_reader_done.notify_waiters();
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AgentError::Internal(e.to_string()))?
        .map_err(|source| AgentError::Io { context: "read container log".into(), source })
}

async fn read_batch(mut reader: LogReader, follow: bool) -> Result<(LogReader, Vec<LogRecord>)> {
    blocking(move || {
        let batch = reader.read(BATCH, follow)?;
        Ok((reader, batch))
    })
    .await
}

/// `(st_dev, st_ino)`: which file a name or a descriptor is.
type FileId = (u64, u64);

fn file_id(m: &std::fs::Metadata) -> FileId {
    (m.dev(), m.ino())
}

/// One open log file.
struct Source {
    reader: BufReader<File>,
    id: FileId,
}

/// A container's log files, read in order.
struct LogReader {
    paths: ContainerPaths,
    /// Open files, oldest first; only the last one may still grow.
    files: VecDeque<Source>,
}

impl LogReader {
    fn open(paths: ContainerPaths) -> io::Result<Self> {
        let files = open_set(&paths)?.into();
        Ok(Self { paths, files })
    }

    /// Up to `max` records from where the last call stopped; none when
    /// there is nothing more for now. With `follow`, a rotation of the
    /// newest file is followed into the files that replaced it.
    fn read(&mut self, max: usize, follow: bool) -> io::Result<Vec<LogRecord>> {
        let mut out = Vec::new();
        while out.len() < max {
            let Some(front) = self.files.front_mut() else {
                if !follow {
                    break;
                }
                // No log yet: look again.
                self.files = open_set(&self.paths)?.into();
                if self.files.is_empty() {
                    break;
                }
                continue;
            };
            read_lines(&mut front.reader, max, &mut out)?;
            let id = front.id;
            if out.len() >= max {
                break;
            }
            // At the end of the oldest file: an older file is finished.
            if self.files.len() > 1 {
                self.files.pop_front();
                continue;
            }
            if !follow || self.still_written(id)? {
                break;
            }
            // Rotated away, so never written again: its rest, then the
            // files that replaced it.
            if let Some(front) = self.files.front_mut() {
                read_lines(&mut front.reader, usize::MAX, &mut out)?;
            }
            let newer = self.newer_than(id)?;
            if newer.is_empty() {
                // The new container.log is not there yet.
                break;
            }
            self.files = newer.into();
        }
        Ok(out)
    }

    /// Whether `container.log` is still the file `id`.
    fn still_written(&self, id: FileId) -> io::Result<bool> {
        match std::fs::metadata(self.paths.log_file()) {
            Ok(m) => Ok(file_id(&m) == id),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The files now newer than `id`, opened; every file when `id` has
    /// been dropped (files are only ever dropped from the old end).
    fn newer_than(&self, id: FileId) -> io::Result<Vec<Source>> {
        let mut set = open_set(&self.paths)?;
        Ok(match set.iter().position(|s| s.id == id) {
            Some(i) => set.split_off(i + 1),
            None => set,
        })
    }
}

/// The log's file names in reading order: rotated files from the highest
/// number down, then `container.log`.
fn names(paths: &ContainerPaths) -> io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = paths.rotated_logs()?.into_iter().map(|(_, p)| p).collect();
    out.push(paths.log_file());
    Ok(out)
}

/// Opens every log file as one consistent set (see the module doc). When
/// the shim rotates faster than the set can be opened, the last attempt is
/// used as it is.
fn open_set(paths: &ContainerPaths) -> io::Result<Vec<Source>> {
    let mut attempt = 0;
    loop {
        let mut opened = Vec::new();
        for path in names(paths)? {
            match File::open(&path) {
                Ok(f) => {
                    let id = file_id(&f.metadata()?);
                    opened.push((path, Source { reader: BufReader::new(f), id }));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let mut now = Vec::new();
        for path in names(paths)? {
            match std::fs::metadata(&path) {
                Ok(m) => now.push((path, file_id(&m))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        attempt += 1;
        let same = now.len() == opened.len() && now.iter().zip(&opened).all(|(a, b)| a.0 == b.0 && a.1 == b.1.id);
        if same || attempt == 10 {
            return Ok(opened.into_iter().map(|(_, s)| s).collect());
        }
    }
}

/// Reads whole records into `out` until it holds `limit` or the file
/// ends. A last line without its newline (the shim is writing it) is left
/// for the next call.
fn read_lines(reader: &mut BufReader<File>, limit: usize, out: &mut Vec<LogRecord>) -> io::Result<()> {
    let mut line = Vec::new();
    while out.len() < limit {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        if line.last() != Some(&b'\n') {
            reader.seek_relative(-(n as i64))?;
            break;
        }
        if let Some(r) = to_record(&line[..line.len() - 1]) {
            out.push(r);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_shim::logfile::{LogFile, LogLimits};

    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Self {
            let d = std::env::temp_dir().join(format!("berth-logs-test-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Dir(d)
        }
        fn paths(&self) -> ContainerPaths {
            ContainerPaths::from_dirs(&self.0, self.0.join("state"))
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Record `n`: time `n`, content `line <n>`.
    fn write(log: &LogFile, range: std::ops::RangeInclusive<i64>) {
        for n in range {
            let mut out = Vec::new();
            logfmt::encode(&mut out, n, "stdout", false, format!("line {n}").as_bytes());
            log.append(&out);
        }
    }

    fn times(records: &[LogRecord]) -> Vec<i64> {
        records.iter().map(|r| r.time).collect()
    }

    fn read_all(reader: &mut LogReader, follow: bool) -> Vec<LogRecord> {
        let mut out = Vec::new();
        loop {
            let batch = reader.read(7, follow).unwrap();
            if batch.is_empty() {
                return out;
            }
            out.extend(batch);
        }
    }

    fn limits(max_size: u64, max_files: u32) -> LogLimits {
        LogLimits { max_size, max_files }
    }

    #[test]
    fn rotated_files_are_read_oldest_first() {
        let d = Dir::new("order");
        let log = LogFile::open(&d.paths(), limits(200, 5)).unwrap();
        write(&log, 1..=30);
        assert!(d.paths().rotated_log(4).exists(), "the test wants every file used");
        let mut reader = LogReader::open(d.paths()).unwrap();
        let got = read_all(&mut reader, false);
        let first = got[0].time;
        assert_eq!(times(&got), (first..=30).collect::<Vec<_>>());
        assert!(first > 1, "the oldest records were dropped");
        assert_eq!(got[0].data, format!("line {first}\n").into_bytes());
    }

    #[test]
    fn following_sees_every_record_once_across_rotations() {
        let d = Dir::new("follow");
        let log = LogFile::open(&d.paths(), limits(150, 100)).unwrap();
        write(&log, 1..=3);
        let mut reader = LogReader::open(d.paths()).unwrap();
        let mut got = read_all(&mut reader, true);
        // Between two reads: no rotation, one, or many.
        let mut n = 3;
        for step in [1, 2, 3, 7, 20, 0, 45, 4] {
            write(&log, n + 1..=n + step);
            n += step;
            got.extend(read_all(&mut reader, true));
        }
        assert!(d.paths().rotated_log(10).exists(), "the test wants many rotations");
        assert_eq!(times(&got), (1..=n).collect::<Vec<_>>());
    }

    #[test]
    fn following_when_the_shim_drops_files_never_repeats() {
        for max_files in [1, 2, 3] {
            let d = Dir::new(&format!("drop{max_files}"));
            let log = LogFile::open(&d.paths(), limits(100, max_files)).unwrap();
            write(&log, 1..=2);
            let mut reader = LogReader::open(d.paths()).unwrap();
            let mut got = read_all(&mut reader, true);
            let mut n = 2;
            for step in [1, 5, 40, 2, 13] {
                write(&log, n + 1..=n + step);
                n += step;
                got.extend(read_all(&mut reader, true));
            }
            let t = times(&got);
            assert!(t.windows(2).all(|w| w[0] < w[1]), "{max_files}: {t:?}");
            assert_eq!(t.last(), Some(&n), "{max_files}: the newest record is seen");
            // What is on disk now was all read, in one run at the end.
            let mut fresh = LogReader::open(d.paths()).unwrap();
            let kept = times(&read_all(&mut fresh, false));
            assert!(t.ends_with(&kept), "{max_files}: {t:?} ends with {kept:?}");
        }
    }

    #[test]
    fn a_rotation_caught_half_way_is_finished_later() {
        let d = Dir::new("halfway");
        let paths = d.paths();
        let line = |n: i64| {
            let mut out = Vec::new();
            logfmt::encode(&mut out, n, "stdout", false, b"x");
            out
        };
        std::fs::write(paths.rotated_log(1), line(1)).unwrap();
        std::fs::write(paths.log_file(), line(2)).unwrap();
        let mut reader = LogReader::open(paths.clone()).unwrap();
        assert_eq!(times(&read_all(&mut reader, true)), [1, 2]);
        // The shim has renamed container.log and not yet put the new one
        // in place; what it wrote just before is still read.
        std::fs::rename(paths.rotated_log(1), paths.rotated_log(2)).unwrap();
        std::io::Write::write_all(
            &mut std::fs::OpenOptions::new().append(true).open(paths.log_file()).unwrap(),
            &line(3),
        )
        .unwrap();
        std::fs::rename(paths.log_file(), paths.rotated_log(1)).unwrap();
        assert_eq!(times(&read_all(&mut reader, true)), [3]);
        assert_eq!(times(&read_all(&mut reader, true)), Vec::<i64>::new());
        std::fs::write(paths.log_file(), line(4)).unwrap();
        assert_eq!(times(&read_all(&mut reader, true)), [4]);
        // Without follow, a reader opened now reads the three files.
        let mut fresh = LogReader::open(paths.clone()).unwrap();
        assert_eq!(times(&read_all(&mut fresh, false)), [1, 2, 3, 4]);
    }

    #[test]
    fn a_partial_last_line_waits_for_its_end() {
        let d = Dir::new("partial");
        let paths = d.paths();
        let mut rec = Vec::new();
        logfmt::encode(&mut rec, 5, "stderr", true, b"no newline yet");
        std::fs::write(paths.log_file(), &rec[..10]).unwrap();
        let mut reader = LogReader::open(paths.clone()).unwrap();
        assert!(read_all(&mut reader, true).is_empty());
        std::io::Write::write_all(
            &mut std::fs::OpenOptions::new().append(true).open(paths.log_file()).unwrap(),
            &rec[10..],
        )
        .unwrap();
        let got = read_all(&mut reader, true);
        assert_eq!((got[0].stream.as_str(), got[0].data.as_slice()), ("stderr", &b"no newline yet"[..]));
    }

    #[test]
    fn no_log_at_all_reads_nothing() {
        let d = Dir::new("none");
        let mut reader = LogReader::open(d.paths()).unwrap();
        assert!(read_all(&mut reader, true).is_empty());
        std::fs::remove_dir_all(&d.0).unwrap();
        let mut reader = LogReader::open(d.paths()).unwrap();
        assert!(read_all(&mut reader, false).is_empty());
    }
}
