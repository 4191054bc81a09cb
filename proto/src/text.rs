//! The rule for text that crosses the wire to a person: an error message
//! quotes input (a tar entry's name, an image reference, a path), and input
//! can be hostile. Both ends apply it, berthd to every `Status` it sends
//! and berthctl to every server text it prints, so an old or foreign peer
//! cannot reach the operator's terminal either.
//!
//! Control characters are escaped the way Rust's `{:?}` and Go's `%q` write
//! them (`\x1b`, `\n`, `\u{9b}`), so the text stays readable and nothing in
//! it can move the cursor, retitle the window or hide text behind a bidi
//! override (CVE-2021-42574). Its length is bounded: a 20,000-level path
//! quoted whole makes a `grpc-message` header larger than the peer's limit
//! on the header list (16 KiB in hyper's client), and the call dies as an
//! `h2 protocol error` instead of saying what was wrong.
use std::fmt::Write;

/// Bytes of an escaped message, the note about the cut included. Well
/// under the 16 KiB header list a gRPC client accepts, even after the
/// percent-encoding of `grpc-message`, and still room for a long path.
pub const MAX_MESSAGE: usize = 4096;

/// `text` with its control characters escaped and, when that is longer
/// than `max` bytes, its middle cut out: the start says what failed, the
/// end often why (`path "a/a/…" is too long`). The cut shows as
/// ` … (N bytes cut) … `, N counted in `text`; an escape is never cut in
/// half, and the result is at most `max` bytes plus that note.
pub fn printable(text: &str, max: usize) -> String {
    let mut piece = String::new();
    let mut escaped_len = 0;
    for c in text.chars() {
        piece.clear();
        escape(c, &mut piece);
        escaped_len += piece.len();
    }
    let mut out = String::with_capacity(escaped_len.min(max + 32));
    if escaped_len <= max {
        for c in text.chars() {
            escape(c, &mut out);
        }
        return out;
    }
    // The head gets three quarters, the tail the rest.
    let mut head_end = 0;
    for (at, c) in text.char_indices() {
        piece.clear();
        escape(c, &mut piece);
        if out.len() + piece.len() > max / 4 * 3 {
            break;
        }
        out.push_str(&piece);
        head_end = at + c.len_utf8();
    }
    let mut tail = Vec::new();
    let (mut tail_len, mut tail_start) = (0, text.len());
    for (at, c) in text.char_indices().rev() {
        if at < head_end {
            break;
        }
        let mut p = String::new();
        escape(c, &mut p);
        if out.len() + tail_len + p.len() > max {
            break;
        }
        tail_len += p.len();
        tail.push(p);
        tail_start = at;
    }
    let _ = write!(out, " … ({} bytes cut) … ", tail_start - head_end);
    for p in tail.iter().rev() {
        out.push_str(p);
    }
    out
}

/// Whether `c` is shown as itself.
fn is_plain(c: char) -> bool {
    !(c.is_control() || is_bidi_control(c))
}

/// The invisible characters that reorder text around them (Unicode's
/// bidirectional formatting characters).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape(c: char, out: &mut String) {
    match c {
        _ if is_plain(c) => out.push(c),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_ascii() => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_characters() {
        let cases: &[(&str, &str)] = &[
            ("no such image: busybox:latst", "no such image: busybox:latst"),
            ("", ""),
            ("tab\there", "tab\\there"),
            ("two\nlines\r", "two\\nlines\\r"),
            ("layer: path \"\x1b[31mred\x1b[0m\" escapes", "layer: path \"\\x1b[31mred\\x1b[0m\" escapes"),
            ("title \x1b]0;pwned\x07", "title \\x1b]0;pwned\\x07"),
            ("nul \0 del \x7f", "nul \\x00 del \\x7f"),
            // C1 controls: a terminal may take U+009B for `ESC [`.
            ("csi \u{9b}31m", "csi \\u{9b}31m"),
            ("rlo \u{202e}gpj.exe", "rlo \\u{202e}gpj.exe"),
            ("isolate \u{2066}x\u{2069}", "isolate \\u{2066}x\\u{2069}"),
            // Printable non-ASCII and backslashes stay as they are.
            ("café ☕ 日本", "café ☕ 日本"),
            ("C:\\path", "C:\\path"),
        ];
        for (input, want) in cases {
            assert_eq!(printable(input, MAX_MESSAGE), *want, "input {input:?}");
        }
    }

    #[test]
    fn bounds_the_length() {
        let cases: &[(&str, usize, &str)] = &[
            ("abcdefgh", 8, "abcdefgh"),
            ("abcdefghi", 8, "abcdef … (1 bytes cut) … hi"),
            ("0123456789abcdefghij", 8, "012345 … (12 bytes cut) … ij"),
            // An escape is kept whole or left out whole.
            ("abcde\x1bghij", 8, "abcde … (2 bytes cut) … hij"),
            ("ab\x1bdefghij", 8, "ab\\x1b … (5 bytes cut) … ij"),
            ("abcdefgh\x1b", 8, "abcdef … (3 bytes cut) … "),
            // The count is of the input's bytes, not of characters.
            ("aééééb", 4, "aé … (6 bytes cut) … b"),
        ];
        for (input, max, want) in cases {
            assert_eq!(printable(input, *max), *want, "input {input:?} max {max}");
        }
    }

    #[test]
    fn a_huge_path_keeps_its_start_and_end() {
        let path = "a/".repeat(20_000);
        let got = printable(&format!("layer: path {path:?} is too long"), MAX_MESSAGE);
        assert!(got.len() <= MAX_MESSAGE + 32, "{} bytes", got.len());
        assert!(got.starts_with("layer: path \"a/a/"), "{}", &got[..40]);
        assert!(got.ends_with("a/a/\" is too long"), "{}", &got[got.len() - 40..]);
        assert!(got.contains(" bytes cut) … "), "{got}");
    }
}
