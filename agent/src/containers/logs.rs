//! `logs`: reads the shim's log (format in `berth_contract::log`, rotation
//! in the shim's `logfile`): the rotated files oldest first, then
//! `container.log`; with follow, keeps reading, across rotations, until the
//! container has exited and every record it wrote has been sent.
//!
//! One file is open at a time, and kept open: a file the shim renames or
//! drops can still be read to its end. At the end of a file, if
//! `container.log` is no longer that file, the shim has rotated it and will
//! never write to it again: it is read to its very end, then the file that
//! came after it is opened, found by its number (the nearest name below the
//! finished file's), and checked: once the next one is open, the finished
//! file must still have its number and the names between must still be
//! empty, else a rotation came in between and the step is done again. When the finished file has been dropped, the
//! oldest file left follows it. So a record is sent once, and none is
//! skipped that the shim still keeps, however the reads and the renames
//! interleave.
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
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_contract::log as logfmt;
use berth_contract::log::LogLimits;
use berth_contract::ContainerPaths;
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

/// Counts one `logs` call (or a `run` that still has to read the exit)
/// for [`Manager::wait_for_log_readers`].
pub(super) struct ReaderGuard<'a> {
    manager: &'a Manager,
    id: &'a str,
}

impl<'a> ReaderGuard<'a> {
    pub(super) fn new(manager: &'a Manager, id: &'a str) -> Self {
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
    crate::blocking::run(f).await.map_err(|source| AgentError::Io { context: "read container log".into(), source })
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

impl Source {
    /// Opens `path`; `None` when there is no such file.
    fn open(path: &Path) -> io::Result<Option<Self>> {
        match File::open(path) {
            Ok(f) => {
                let id = file_id(&f.metadata()?);
                Ok(Some(Self { reader: BufReader::new(f), id }))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A container's log files, read in order, one at a time.
struct LogReader {
    paths: ContainerPaths,
    /// The file being read; `None` before there is any.
    current: Option<Source>,
    /// `container.log` when the reader was opened: without follow, reading
    /// ends with it.
    end: Option<FileId>,
}

impl LogReader {
    /// Opens the oldest file.
    fn open(paths: ContainerPaths) -> io::Result<Self> {
        let end = stat_id(&paths.log_file())?;
        let current = open_oldest(&paths)?;
        Ok(Self { paths, current, end })
    }

    /// Up to `max` records from where the last call stopped; none when
    /// there is nothing more for now. Without `follow`, reading ends with
    /// the file that was `container.log` at the open; with it, the newest
    /// file is followed into whatever replaces it.
    fn read(&mut self, max: usize, follow: bool) -> io::Result<Vec<LogRecord>> {
        let mut out = Vec::new();
        while out.len() < max {
            let Some(current) = self.current.as_mut() else {
                if !follow {
                    break;
                }
                // No log yet: look again.
                self.current = open_oldest(&self.paths)?;
                if self.current.is_none() {
                    break;
                }
                continue;
            };
            read_lines(&mut current.reader, max, &mut out)?;
            if out.len() >= max {
                break;
            }
            let id = current.id;
            if (!follow && self.end == Some(id)) || stat_id(&self.paths.log_file())? == Some(id) {
                // The end, or the file the shim writes: more may come.
                break;
            }
            // Rotated away, so never written again: its rest, then the
            // file that came after it.
            read_lines(&mut current.reader, usize::MAX, &mut out)?;
            match successor(&self.paths, id)? {
                Some(next) => self.current = Some(next),
                // The new container.log is not there yet.
                None => break,
            }
        }
        Ok(out)
    }
}

/// `(st_dev, st_ino)` of `path`, `None` when it does not exist.
fn stat_id(path: &Path) -> io::Result<Option<FileId>> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(file_id(&m))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The name at position `n`: 0 is `container.log`, else
/// `container.log.<n>`.
fn log_name(paths: &ContainerPaths, n: u32) -> PathBuf {
    if n == 0 {
        paths.log_file()
    } else {
        paths.rotated_log(n)
    }
}

/// Opens the file that follows `id`, a file the shim has rotated away:
/// the nearest name below `id`'s number. `None` when there is none yet (or
/// the shim rotates too fast to tell: the caller tries again later).
///
/// Only local consistency is needed: once the next file is open, `id`
/// still has its number and the names between are still empty, so nothing
/// moved in between (the shim renames the oldest first, one number up, and
/// a file never moves back down).
fn successor(paths: &ContainerPaths, id: FileId) -> io::Result<Option<Source>> {
    for _ in 0..100 {
        let mut at = None;
        for n in 0..=LogLimits::MAX_FILES {
            if stat_id(&log_name(paths, n))? == Some(id) {
                at = Some(n);
                break;
            }
        }
        // Dropped: files go from the old end only, so the oldest left
        // follows it.
        let Some(at) = at else { return open_oldest(paths) };
        let mut next = None;
        let mut next_at = 0;
        for n in (0..at).rev() {
            next = Source::open(&log_name(paths, n))?;
            if next.is_some() {
                next_at = n + 1;
                break;
            }
        }
        // A rotation under way moves a gap down the numbers: a file can
        // have moved up into a name just found empty, and been passed over.
        let mut still = stat_id(&log_name(paths, at))? == Some(id);
        for n in next_at..at {
            still = still && stat_id(&log_name(paths, n))?.is_none();
        }
        if still {
            return Ok(next);
        }
    }
    Ok(None)
}

/// Opens the oldest log file (the highest number, else `container.log`).
/// It must still be the oldest, at the same name, once open; after a few
/// tries under a shim that rotates without pause, a file nearly as old is
/// taken.
fn open_oldest(paths: &ContainerPaths) -> io::Result<Option<Source>> {
    let names = |paths: &ContainerPaths| -> io::Result<Vec<PathBuf>> {
        let mut out: Vec<PathBuf> = paths.rotated_logs()?.into_iter().map(|(_, p)| p).collect();
        out.push(paths.log_file());
        Ok(out)
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut found = None;
        for path in names(paths)? {
            if let Some(source) = Source::open(&path)? {
                found = Some((path, source));
                break;
            }
        }
        let Some((path, source)) = found else { return Ok(None) };
        let still = names(paths)?.first() == Some(&path) && stat_id(&path)? == Some(source.id);
        if still || attempt == 10 {
            return Ok(Some(source));
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
    // The reader is tested against the shim's own writer (a dev-dependency:
    // berthd does not link the shim).
    use berth_shim::logfile::LogFile;

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
    fn following_a_shim_that_rotates_meanwhile_loses_nothing() {
        // The writer runs on its own thread, as the shim does in its own
        // process: rotations land at any point of the reader's work.
        for round in 0..10 {
            let d = Dir::new(&format!("race{round}"));
            let paths = d.paths();
            // Six records a file, 134 files. The writer stays at most 50
            // files ahead, so the shim drops only files already read and
            // every record must be seen.
            let log = LogFile::open(&paths, limits(300, 100)).unwrap();
            let mut reader = LogReader::open(paths.clone()).unwrap();
            let total = 800;
            let seen = Arc::new(std::sync::atomic::AtomicI64::new(0));
            let writer = {
                let seen = seen.clone();
                std::thread::spawn(move || {
                    for n in 1..=total {
                        while n - seen.load(std::sync::atomic::Ordering::Relaxed) > 300 {
                            std::thread::yield_now();
                        }
                        write(&log, n..=n);
                        if n % 3 == 0 {
                            std::thread::yield_now();
                        }
                    }
                })
            };
            let mut got = Vec::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while got.len() < total as usize && std::time::Instant::now() < deadline {
                got.extend(times(&reader.read(5, true).unwrap()));
                seen.store(got.len() as i64, std::sync::atomic::Ordering::Relaxed);
            }
            seen.store(total, std::sync::atomic::Ordering::Relaxed);
            writer.join().unwrap();
            assert!(paths.rotated_log(99).exists(), "the test wants many rotations, and drops");
            let gaps: Vec<(i64, i64)> = got.windows(2).filter(|w| w[1] != w[0] + 1).map(|w| (w[0], w[1])).collect();
            assert!(
                got.len() == total as usize && got.first() == Some(&1) && gaps.is_empty(),
                "round {round}: {} records, first {:?}, last {:?}, breaks {gaps:?}",
                got.len(),
                got.first(),
                got.last()
            );
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
