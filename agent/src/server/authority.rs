//! Accepting the `:authority` real gRPC clients send over a unix socket.
//!
//! There is no host on a unix socket, and clients fill `:authority` in as
//! they see fit: `localhost` (grpcio before 1.57, tonic), the socket's path
//! (grpc-java, grpcurl `-unix`), or the path percent-encoded (grpcio and
//! gRPC C++ from 1.57, grpc/grpc#38142). h2, under hyper and tonic, parses
//! `:authority` as a URI authority and resets a stream whose value is not
//! one (`malformed headers: malformed authority`), before any code of
//! berthd's sees the request, and no option relaxes that.
//!
//! So the bytes a client sends go through [`AuthorityFilter`] before h2
//! reads them. It reads HTTP/2 frames (RFC 9113 §4) and decodes the first
//! request's header block (HPACK, RFC 7541). If its authority is one h2
//! accepts (or there is none), the filter steps aside for the rest of the
//! connection: from then on reads go straight to the socket, so berthctl
//! and other well-behaved clients pay nothing past their first request.
//! Otherwise it re-encodes every header block of the connection, with the
//! authority replaced by `localhost`, as literals without indexing: h2's
//! decoder then keeps an empty dynamic table, and only this filter's
//! decoder tracks the client's. Every other frame passes unchanged.
use bytes::{Buf, BytesMut};

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The largest frame h2 takes unless told otherwise (its
/// SETTINGS_MAX_FRAME_SIZE, RFC 9113 §6.5.2): blocks are split to fit.
const MAX_FRAME: usize = 16_384;
/// What an unusable authority becomes.
const REPLACEMENT: &[u8] = b"localhost";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Before the client preface.
    Preface,
    /// Until the first header block: deciding.
    Sniff,
    /// Every header block re-encoded.
    Rewrite,
    /// Out of the way.
    Pass,
}

/// A header block being gathered from a HEADERS frame and its
/// CONTINUATIONs.
struct Block {
    stream: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
    /// The frames as they came, to forward unchanged if the filter steps
    /// aside.
    original: Vec<u8>,
}

/// The client-to-server byte filter of one connection.
pub struct AuthorityFilter {
    mode: Mode,
    raw: BytesMut,
    decoder: loona_hpack::Decoder<'static>,
    block: Option<Block>,
}

impl Default for AuthorityFilter {
    fn default() -> Self {
        Self { mode: Mode::Preface, raw: BytesMut::new(), decoder: loona_hpack::Decoder::new(), block: None }
    }
}

impl AuthorityFilter {
    /// Whether the filter has stepped aside with nothing buffered: the
    /// caller may read the socket directly.
    pub fn passing(&self) -> bool {
        self.mode == Mode::Pass && self.raw.is_empty() && self.block.is_none()
    }

    /// Takes bytes the client sent; appends what h2 is to read to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.raw.extend_from_slice(input);
        loop {
            match self.mode {
                Mode::Pass => {
                    if let Some(block) = self.block.take() {
                        out.extend_from_slice(&block.original);
                    }
                    out.extend_from_slice(&self.raw);
                    self.raw.clear();
                    return;
                }
                Mode::Preface => {
                    let n = self.raw.len().min(PREFACE.len());
                    if self.raw[..n] != PREFACE[..n] {
                        // Not HTTP/2 with prior knowledge: h2 will say so.
                        self.mode = Mode::Pass;
                        continue;
                    }
                    if n < PREFACE.len() {
                        return;
                    }
                    out.extend_from_slice(&self.raw[..n]);
                    self.raw.advance(n);
                    self.mode = Mode::Sniff;
                }
                Mode::Sniff | Mode::Rewrite => {
                    if self.raw.len() < FRAME_HEADER {
                        return;
                    }
                    let len =
                        (usize::from(self.raw[0]) << 16) | (usize::from(self.raw[1]) << 8) | usize::from(self.raw[2]);
                    if self.raw.len() < FRAME_HEADER + len {
                        return;
                    }
                    let frame = self.raw.split_to(FRAME_HEADER + len);
                    self.frame(&frame, out);
                }
            }
        }
    }

    /// At the end of the client's stream: whatever is left goes as it is.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.mode = Mode::Pass;
        self.feed(&[], out);
    }

    fn frame(&mut self, frame: &[u8], out: &mut Vec<u8>) {
        let (kind, flags) = (frame[3], frame[4]);
        let stream = u32::from_be_bytes([frame[5], frame[6], frame[7], frame[8]]) & 0x7fff_ffff;
        let payload = &frame[FRAME_HEADER..];
        match (kind, &mut self.block) {
            (HEADERS, None) => {
                let Some((priority, fragment)) = headers_fragment(flags, payload) else {
                    return self.give_up(frame, out);
                };
                self.block = Some(Block {
                    stream,
                    end_stream: flags & END_STREAM != 0,
                    priority,
                    fragment: fragment.to_vec(),
                    original: frame.to_vec(),
                });
            }
            (CONTINUATION, Some(block)) if block.stream == stream => {
                block.fragment.extend_from_slice(payload);
                block.original.extend_from_slice(frame);
            }
            // Anything else inside a header block is a protocol error for
            // h2 to report; outside one, any other frame passes.
            (_, Some(_)) => return self.give_up(frame, out),
            _ => {
                out.extend_from_slice(frame);
                return;
            }
        }
        if flags & END_HEADERS != 0 {
            let block = self.block.take().expect("a block is open");
            self.block_done(block, out);
        }
    }

    /// Something this filter does not follow: out of the way, for h2 to
    /// judge the bytes as they are.
    fn give_up(&mut self, frame: &[u8], out: &mut Vec<u8>) {
        if let Some(block) = self.block.take() {
            out.extend_from_slice(&block.original);
        }
        out.extend_from_slice(frame);
        self.mode = Mode::Pass;
    }

    fn block_done(&mut self, block: Block, out: &mut Vec<u8>) {
        let headers = match self.decoder.decode(&block.fragment) {
            Ok(h) => h,
            Err(_) => {
                self.block = Some(block);
                return self.give_up(&[], out);
            }
        };
        if self.mode == Mode::Sniff {
            let bad = headers.iter().any(|(n, v)| n == b":authority" && !acceptable(v));
            if !bad {
                out.extend_from_slice(&block.original);
                self.mode = Mode::Pass;
                return;
            }
            tracing::debug!("a client's :authority is no URI authority: rewriting this connection's header blocks");
            self.mode = Mode::Rewrite;
        }
        let mut encoded = Vec::new();
        for (name, value) in &headers {
            let value = if name == b":authority" && !acceptable(value) { REPLACEMENT } else { value };
            encode_literal(&mut encoded, name, value);
        }
        write_block(out, block.stream, block.end_stream, block.priority, &encoded);
    }
}

/// Whether h2 takes this `:authority` (the same parser it uses).
fn acceptable(value: &[u8]) -> bool {
    http::uri::Authority::try_from(value).is_ok()
}

/// The priority fields and the header block fragment of a HEADERS frame's
/// payload, without its padding; `None` when the lengths do not add up.
fn headers_fragment(flags: u8, payload: &[u8]) -> Option<(Option<[u8; 5]>, &[u8])> {
    let mut p = payload;
    let mut pad = 0;
    if flags & PADDED != 0 {
        pad = usize::from(*p.first()?);
        p = &p[1..];
    }
    let mut priority = None;
    if flags & PRIORITY != 0 {
        priority = Some(p.get(..5)?.try_into().ok()?);
        p = &p[5..];
    }
    let end = p.len().checked_sub(pad)?;
    Some((priority, &p[..end]))
}

/// A header block as HEADERS (with the priority fields, if any) and
/// CONTINUATION frames of at most [`MAX_FRAME`] bytes.
fn write_block(out: &mut Vec<u8>, stream: u32, end_stream: bool, priority: Option<[u8; 5]>, block: &[u8]) {
    let first_room = MAX_FRAME - priority.map_or(0, |p| p.len());
    let (first, mut rest) = block.split_at(block.len().min(first_room));
    let mut flags = if end_stream { END_STREAM } else { 0 };
    if priority.is_some() {
        flags |= PRIORITY;
    }
    if rest.is_empty() {
        flags |= END_HEADERS;
    }
    let len = first.len() + priority.map_or(0, |p| p.len());
    frame_header(out, len, HEADERS, flags, stream);
    if let Some(p) = priority {
        out.extend_from_slice(&p);
    }
    out.extend_from_slice(first);
    while !rest.is_empty() {
        let (chunk, more) = rest.split_at(rest.len().min(MAX_FRAME));
        frame_header(out, chunk.len(), CONTINUATION, if more.is_empty() { END_HEADERS } else { 0 }, stream);
        out.extend_from_slice(chunk);
        rest = more;
    }
}

fn frame_header(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
}

/// A literal header field without indexing, new name, no Huffman coding
/// (RFC 7541 §6.2.2): the decoder's table is left as it is.
fn encode_literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0);
    for s in [name, value] {
        encode_int(out, s.len(), 7, 0);
        out.extend_from_slice(s);
    }
}

/// An integer with an N-bit prefix (RFC 7541 §5.1); `high` holds the bits
/// above the prefix.
fn encode_int(out: &mut Vec<u8>, mut n: usize, prefix: u32, high: u8) {
    let max = (1usize << prefix) - 1;
    if n < max {
        out.push(high | n as u8);
        return;
    }
    out.push(high | max as u8);
    n -= max;
    while n >= 128 {
        out.push((n % 128) as u8 | 0x80);
        n /= 128;
    }
    out.push(n as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's request headers, HPACK-encoded as a client would (with
    /// indexing, so the dynamic table matters), in one HEADERS frame or
    /// split over CONTINUATIONs of `split` bytes.
    fn request(enc: &mut loona_hpack::Encoder<'_>, stream: u32, authority: &[u8], split: usize) -> Vec<u8> {
        let headers: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", b"/berth.v1.System/Version"),
            (b":authority", authority),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
        ];
        let block = enc.encode(headers);
        let mut out = Vec::new();
        let chunks: Vec<&[u8]> = block.chunks(split).collect();
        for (i, c) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len();
            let (kind, mut flags) = if i == 0 { (HEADERS, 0) } else { (CONTINUATION, 0) };
            if last {
                flags |= END_HEADERS;
            }
            frame_header(&mut out, c.len(), kind, flags, stream);
            out.extend_from_slice(c);
        }
        out
    }

    fn settings() -> Vec<u8> {
        let mut out = Vec::new();
        frame_header(&mut out, 0, 0x4, 0, 0);
        out
    }

    /// Decodes every header block of `bytes` as h2 would, with one table.
    fn authorities(bytes: &[u8]) -> Vec<Vec<u8>> {
        assert!(bytes.starts_with(PREFACE));
        let mut p = &bytes[PREFACE.len()..];
        let mut dec = loona_hpack::Decoder::new();
        let mut found = Vec::new();
        let mut block = Vec::new();
        while !p.is_empty() {
            let len = (usize::from(p[0]) << 16) | (usize::from(p[1]) << 8) | usize::from(p[2]);
            let (kind, flags) = (p[3], p[4]);
            assert!(len <= MAX_FRAME);
            if kind == HEADERS || kind == CONTINUATION {
                let (_, frag) = if kind == HEADERS {
                    headers_fragment(flags, &p[9..9 + len]).unwrap()
                } else {
                    (None, &p[9..9 + len])
                };
                block.extend_from_slice(frag);
                if flags & END_HEADERS != 0 {
                    for (n, v) in dec.decode(&block).unwrap() {
                        if n == b":authority" {
                            found.push(v);
                        }
                    }
                    block.clear();
                }
            }
            p = &p[9 + len..];
        }
        found
    }

    fn run(authority: &[u8], requests: usize, split: usize, byte_by_byte: bool) -> Vec<u8> {
        let mut enc = loona_hpack::Encoder::new();
        let mut input = PREFACE.to_vec();
        input.extend(settings());
        for i in 0..requests {
            input.extend(request(&mut enc, 1 + 2 * i as u32, authority, split));
        }
        let mut f = AuthorityFilter::default();
        let mut out = Vec::new();
        if byte_by_byte {
            for b in &input {
                f.feed(std::slice::from_ref(b), &mut out);
            }
        } else {
            f.feed(&input, &mut out);
        }
        f.finish(&mut out);
        out
    }

    #[test]
    fn good_authorities_pass_untouched() {
        for authority in [&b"localhost"[..], b"localhost:50051", b"[::1]:5"] {
            let mut enc = loona_hpack::Encoder::new();
            let mut input = PREFACE.to_vec();
            input.extend(settings());
            input.extend(request(&mut enc, 1, authority, 1000));
            input.extend(request(&mut enc, 3, authority, 1000));
            let mut f = AuthorityFilter::default();
            let mut out = Vec::new();
            f.feed(&input, &mut out);
            assert_eq!(out, input, "{}", String::from_utf8_lossy(authority));
            assert!(f.passing());
        }
    }

    #[test]
    fn socket_paths_become_localhost_in_every_block() {
        for authority in [&b"/run/berth/berthd.sock"[..], b"%2Frun%2Fberth%2Fberthd.sock", b"unix:/x y"] {
            for (split, bytewise) in [(1000, false), (3, false), (1000, true), (2, true)] {
                let out = run(authority, 4, split, bytewise);
                let found = authorities(&out);
                assert_eq!(
                    found,
                    vec![b"localhost".to_vec(); 4],
                    "{} split {split}",
                    String::from_utf8_lossy(authority)
                );
            }
        }
    }

    #[test]
    fn a_huge_block_is_split_into_frames_h2_takes() {
        let long = vec![b'/'; 40_000];
        let out = run(&long, 2, 16_000, false);
        assert_eq!(authorities(&out), vec![b"localhost".to_vec(); 2]);
    }

    #[test]
    fn other_bytes_pass() {
        let mut f = AuthorityFilter::default();
        let mut out = Vec::new();
        f.feed(b"GET / HTTP/1.1\r\n\r\n", &mut out);
        assert_eq!(out, b"GET / HTTP/1.1\r\n\r\n");
        assert!(f.passing());
    }

    #[test]
    fn integers_encode_per_rfc_7541() {
        let mut out = Vec::new();
        encode_int(&mut out, 10, 5, 0);
        assert_eq!(out, [10]);
        out.clear();
        encode_int(&mut out, 1337, 5, 0);
        assert_eq!(out, [31, 154, 10]);
    }
}
