//! A live stdio session with a container or an exec (`run -i/-t`,
//! `start -a`, `attach`, `exec`), shared by those verbs: the `Attach` or
//! `Exec` stream, the client's stdin pumped into it (with Docker's detach
//! keys), the output written out, terminal resizes, and the client's
//! terminal put in raw mode and always put back.
//!
//! Stdin is read on a plain thread, not tokio's blocking pool: a read of a
//! terminal cannot be cancelled, and the runtime would wait for it at exit
//! (after a detach, until the user pressed a key). The process exits with
//! the thread still blocked.
use std::io::{IsTerminal, Read, Write};
use std::str::FromStr;
use std::sync::{Mutex, Once};

use anyhow::Result;
use berth_proto::v1 as pb;
use pb::io_in::Kind as In;
use pb::io_out::Kind as Out;
use rustix::termios::{self, OptionalActions, Termios};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;

use crate::client::Client;
use crate::Exit;

/// The bytes that detach a client from a terminal session, from Docker's
/// `--detach-keys` syntax: comma-separated keys, each `ctrl-X` or one
/// character. The default is ctrl-p ctrl-q.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetachKeys(pub Vec<u8>);

/// The `--detach-keys` of `run`, `start`, `attach` and `exec`.
pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

impl FromStr for DetachKeys {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Self::from_str(DEFAULT_DETACH_KEYS);
        }
        s.split(',').map(key_byte).collect::<Result<_, _>>().map(Self)
    }
}

/// One key: a single ASCII character, or `ctrl-` and one of `@`, `a`-`z`,
/// `[`, `\`, `]`, `^`, `_` (the control codes 0 to 31, as a terminal sends
/// them).
fn key_byte(key: &str) -> Result<u8, String> {
    let unknown = || format!("unknown key {key:?}: use ctrl-X or one character, comma-separated");
    if let &[b] = key.as_bytes() {
        return if b.is_ascii() { Ok(b) } else { Err(unknown()) };
    }
    let lower = key.to_ascii_lowercase();
    let Some(&[c]) = lower.strip_prefix("ctrl-").map(str::as_bytes) else {
        return Err(unknown());
    };
    match c {
        b'@' => Ok(0),
        b'a'..=b'z' => Ok(c - b'a' + 1),
        b'[' | b'\\' | b']' | b'^' | b'_' => Ok(c - b'@'),
        _ => Err(unknown()),
    }
}

/// Finds the detach sequence in stdin, across reads. Bytes that may begin
/// the sequence are held back until they do not; then they are forwarded.
#[derive(Debug)]
struct DetachMatcher {
    keys: Vec<u8>,
    held: Vec<u8>,
}

impl DetachMatcher {
    /// No keys: everything is forwarded.
    fn new(keys: Vec<u8>) -> Self {
        Self { keys, held: Vec::new() }
    }

    /// Appends to `out` what of `input` is to be forwarded; true when the
    /// whole sequence has been typed (what follows it is dropped).
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return false;
        }
        for &b in input {
            self.held.push(b);
            if self.held == self.keys {
                self.held.clear();
                return true;
            }
            // Keep the longest tail that still begins the sequence (`a,a,b`
            // typed as `aaab` must detach); what comes before is input.
            let keep_from = (0..=self.held.len()).find(|&i| self.keys.starts_with(&self.held[i..])).unwrap_or(0);
            out.extend(self.held.drain(..keep_from));
        }
        false
    }

    /// The held bytes, at the end of input.
    fn release(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }
}

/// The client terminal's size as (columns, rows), from stdin or stdout.
pub fn terminal_size() -> Option<(u32, u32)> {
    let ws = termios::tcgetwinsize(std::io::stdin()).or_else(|_| termios::tcgetwinsize(std::io::stdout())).ok()?;
    (ws.ws_col > 0 && ws.ws_row > 0).then(|| (u32::from(ws.ws_col), u32::from(ws.ws_row)))
}

/// Docker's refusal of `-i -t` when stdin is not a terminal: the message,
/// then exit 1.
pub fn check_tty(stdin: bool, tty: bool) -> Result<()> {
    if stdin && tty && !std::io::stdin().is_terminal() {
        eprintln!("the input device is not a TTY");
        return Err(Exit(1).into());
    }
    Ok(())
}

/// The terminal settings to put back, for the guard and the panic hook.
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

fn restore_terminal() {
    let saved = SAVED.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(t) = saved {
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &t);
    }
}

/// Stdin's terminal in raw mode (cfmakeraw: no echo, no line editing, no
/// signals from ^C) while alive. Put back on drop, and by a panic hook
/// before the message is printed, since the release profile aborts on
/// panic without unwinding.
struct RawMode(());

impl RawMode {
    /// `None` when stdin is not a terminal.
    fn enter() -> Result<Option<Self>> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Ok(None);
        }
        let saved = termios::tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.make_raw();
        *SAVED.lock().unwrap_or_else(|e| e.into_inner()) = Some(saved);
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore_terminal();
                previous(info);
            }));
        });
        let guard = Self(());
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw)?;
        Ok(Some(guard))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// How a session behaves.
#[derive(Debug, Clone)]
pub struct Session {
    /// The process has a terminal: raw mode, resizes and detach keys.
    pub tty: bool,
    /// Forward this client's stdin (the stream was opened with stdin).
    pub stdin: bool,
    pub detach_keys: DetachKeys,
    /// SIGINT and SIGTERM are passed to this container (without a
    /// terminal, as Docker's `--sig-proxy`); otherwise they end berthctl.
    pub sig_proxy: Option<String>,
}

/// The input half of a stream to berthd.
pub type Input = mpsc::Sender<pb::IoIn>;

fn msg(kind: In) -> pb::IoIn {
    pb::IoIn { kind: Some(kind) }
}

/// Opens an `Attach` stream (berthd answers at once; a created container is
/// waited for behind the answer, so the caller may start it next).
pub async fn attach(c: &mut Client, start: pb::AttachStart) -> Result<(Input, tonic::Streaming<pb::IoOut>)> {
    let (tx, rx) = first(In::Attach(start));
    let out = c.containers.attach(rx).await?.into_inner();
    Ok((tx, out))
}

/// Opens an `Exec` stream; berthd refuses here (status) when the
/// container does not run.
pub async fn exec(c: &mut Client, start: pb::ExecStart) -> Result<(Input, tonic::Streaming<pb::IoOut>)> {
    let (tx, rx) = first(In::Exec(start));
    let out = c.containers.exec(rx).await?.into_inner();
    Ok((tx, out))
}

/// A request stream whose first message is already queued: berthd reads it
/// before it answers the call.
fn first(kind: In) -> (Input, tokio_stream::wrappers::ReceiverStream<pb::IoIn>) {
    let (tx, rx) = mpsc::channel(16);
    // Cannot fail: the channel is new, empty and open.
    let _ = tx.try_send(msg(kind));
    (tx, tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// How a pump ended.
enum End {
    Exit(pb::ProcessExit),
    Detached,
    Signal(u8),
}

/// Runs the session to its end and returns berthctl's exit code: the
/// process's code (its start error printed first, if any), 0 after a
/// detach.
pub async fn session(c: &Client, s: &Session, input: Input, output: tonic::Streaming<pb::IoOut>) -> Result<u8> {
    let raw = if s.tty && s.stdin { RawMode::enter()? } else { None };
    let end = pump(c, s, input, output).await;
    drop(raw);
    match end? {
        End::Exit(e) => {
            if !e.error.is_empty() {
                eprintln!("{}", crate::out::shown(&e.error));
            }
            Ok(e.code.clamp(0, 255) as u8)
        }
        End::Detached => Ok(0),
        End::Signal(n) => Err(Exit(128 + n).into()),
    }
}

/// The first answer of an `exec -d`: 0 once the process runs, else its
/// start error and code.
pub async fn exec_started(mut output: tonic::Streaming<pb::IoOut>) -> Result<u8> {
    match output.message().await?.and_then(|m| m.kind) {
        Some(Out::Started(_)) => Ok(0),
        Some(Out::Exit(e)) => {
            eprintln!("{}", crate::out::shown(&e.error));
            Ok(e.code.clamp(0, 255) as u8)
        }
        _ => anyhow::bail!("berthd ended the exec before the process started"),
    }
}

async fn pump(c: &Client, s: &Session, input: Input, mut output: tonic::Streaming<pb::IoOut>) -> Result<End> {
    let mut stdin = s.stdin.then(read_stdin);
    let mut detach = DetachMatcher::new(if s.tty && s.stdin { s.detach_keys.0.clone() } else { Vec::new() });
    let mut winch = if s.tty { Some(signal(SignalKind::window_change())?) } else { None };
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    if s.tty {
        // Size the terminal to this client's (an attach to a container
        // created elsewhere, or a window resized since the create).
        send_resize(&input).await;
    }
    loop {
        tokio::select! {
            m = output.message() => match m?.map(|m| m.kind) {
                Some(Some(Out::Output(o))) => write_output(&o).map_err(crate::out::output_error)?,
                Some(Some(Out::Exit(e))) => return Ok(End::Exit(e)),
                Some(Some(Out::Started(_)) | None) => {}
                None => anyhow::bail!("berthd ended the stream before the exit status"),
            },
            chunk = recv_stdin(&mut stdin) => match chunk {
                Some(data) => {
                    let mut forward = Vec::new();
                    let detached = detach.feed(&data, &mut forward);
                    send_stdin(&input, forward).await;
                    if detached {
                        // No close_stdin: the container keeps its stdin
                        // open for the next attach; dropping the stream
                        // is leaving.
                        return Ok(End::Detached);
                    }
                }
                None => {
                    send_stdin(&input, detach.release()).await;
                    let _ = input.send(msg(In::CloseStdin(true))).await;
                    stdin = None;
                }
            },
            _ = recv_signal(&mut winch) => send_resize(&input).await,
            _ = int.recv() => if let Some(end) = on_signal(c, s, "INT", libc::SIGINT).await { return Ok(end) },
            _ = term.recv() => if let Some(end) = on_signal(c, s, "TERM", libc::SIGTERM).await { return Ok(end) },
        }
    }
}

/// Stdin, read on its own thread; the channel closes at end of input.
fn read_stdin() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(4);
    std::thread::spawn(move || {
        let mut buf = vec![0; 32 * 1024];
        let mut stdin = std::io::stdin();
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // A read error ends the input as EOF would.
                Err(_) => return,
            }
        }
    });
    rx
}

/// The next stdin chunk, `None` at end of input; never ready when stdin
/// is not forwarded (any more).
async fn recv_stdin(r: &mut Option<mpsc::Receiver<Vec<u8>>>) -> Option<Vec<u8>> {
    match r {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

async fn send_stdin(input: &Input, data: Vec<u8>) {
    if !data.is_empty() {
        let _ = input.send(msg(In::Stdin(data))).await;
    }
}

async fn recv_signal(s: &mut Option<Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

async fn send_resize(input: &Input) {
    if let Some((width, height)) = terminal_size() {
        let _ = input.send(msg(In::Resize(pb::Resize { width, height }))).await;
    }
}

/// With a signal proxy, passes the signal on and goes on; else ends the
/// session as the signal would have ended berthctl.
async fn on_signal(c: &Client, s: &Session, name: &str, signo: i32) -> Option<End> {
    match &s.sig_proxy {
        Some(id) => {
            let mut c = c.clone();
            let _ = c.containers.kill(pb::KillRequest { id: id.clone(), signal: name.into(), sig: signo }).await;
            None
        }
        None => Some(End::Signal(signo as u8)),
    }
}

/// Output bytes as they come: stderr's to stderr, the rest to stdout.
fn write_output(o: &pb::Output) -> std::io::Result<()> {
    if o.stream == pb::OutputStream::Stderr as i32 {
        let mut e = std::io::stderr().lock();
        e.write_all(&o.data)?;
        e.flush()
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(&o.data)?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_detach_keys() {
        let cases: &[(&str, Result<&[u8], &str>)] = &[
            ("", Ok(&[0x10, 0x11])),
            ("ctrl-p,ctrl-q", Ok(&[0x10, 0x11])),
            ("ctrl-a,b", Ok(&[0x01, b'b'])),
            ("CTRL-Z", Ok(&[26])),
            ("ctrl-@", Ok(&[0])),
            ("ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", Ok(&[27, 28, 29, 30, 31])),
            ("x,y,z", Ok(b"xyz")),
            // A comma cannot be a key (it separates them), as in Docker.
            (",", Err(r#"unknown key "": use ctrl-X or one character, comma-separated"#)),
            ("ctrl-", Err(r#"unknown key "ctrl-": use ctrl-X or one character, comma-separated"#)),
            ("ctrl-1", Err(r#"unknown key "ctrl-1": use ctrl-X or one character, comma-separated"#)),
            ("ab", Err(r#"unknown key "ab": use ctrl-X or one character, comma-separated"#)),
            ("a,,b", Err(r#"unknown key "": use ctrl-X or one character, comma-separated"#)),
            ("é", Err(r#"unknown key "é": use ctrl-X or one character, comma-separated"#)),
        ];
        for (input, want) in cases {
            let got = input.parse::<DetachKeys>().map(|k| k.0);
            assert_eq!(got, want.map(<[u8]>::to_vec).map_err(str::to_owned), "{input:?}");
        }
    }

    /// Feeds each read in turn; the forwarded bytes, and whether it detached.
    fn feed(keys: &[u8], reads: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut m = DetachMatcher::new(keys.to_vec());
        let mut out = Vec::new();
        for r in reads {
            if m.feed(r, &mut out) {
                return (out, true);
            }
        }
        out.extend(m.release());
        (out, false)
    }

    /// Keys, the reads, the bytes forwarded, whether it detached.
    type Case<'a> = (&'a [u8], &'a [&'a [u8]], &'a [u8], bool);

    #[test]
    fn matches_detach_keys_across_reads() {
        let pq: &[u8] = &[0x10, 0x11];
        let cases: &[Case] = &[
            (pq, &[b"ls\r"], b"ls\r", false),
            (pq, &[b"ab\x10\x11cd"], b"ab", true),
            (pq, &[b"ab\x10", b"\x11cd"], b"ab", true),
            (pq, &[b"\x10", b"\x11"], b"", true),
            // A partial match that then differs forwards the held byte.
            (pq, &[b"\x10", b"x"], b"\x10x", false),
            (pq, &[b"\x10x\x11"], b"\x10x\x11", false),
            (pq, &[b"\x10\x10", b"\x11"], b"\x10", true),
            // Held at the end of input: forwarded.
            (pq, &[b"a\x10"], b"a\x10", false),
            (b"aab", &[b"xaa", b"ab!"], b"xa", true),
            (b"aab", &[b"aaa"], b"aaa", false),
            (b"abc", &[b"ab", b"ab", b"c"], b"ab", true),
            // No keys (no terminal): all bytes pass, ^P^Q included.
            (b"", &[b"\x10\x11"], b"\x10\x11", false),
        ];
        for (keys, reads, want, detached) in cases {
            assert_eq!(feed(keys, reads), (want.to_vec(), *detached), "keys {keys:?} reads {reads:?}");
        }
    }
}
