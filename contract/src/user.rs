//! The range of user and group IDs berth lets a process have, checked on
//! every user spec a person or an image gives (`-u`, `USER`, `exec -u`)
//! before anything runs, and again by the shim on what it resolved.

/// The largest id a process may be given: `(uid_t)-1` is "unchanged" to
/// `setresuid(2)`/`setresgid(2)`, so asking for it would keep root.
pub const MAX_ID: u32 = u32::MAX - 1;

/// A uid or gid of 2^32-1 or more, or a negative one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: out of range (0 to 4294967294)")]
pub struct IdOutOfRange {
    /// `uid` or `gid`.
    pub kind: &'static str,
    pub value: String,
}

/// Checks the numeric parts of a `user[:group]` as a person gave it: a
/// number that does not fit, `4294967295`, or a negative one is refused.
/// Names are left to the resolution inside the container.
pub fn check_user(spec: &str) -> Result<(), IdOutOfRange> {
    let (user, group) = spec.trim().split_once(':').unwrap_or((spec.trim(), ""));
    check_part("uid", user)?;
    check_part("gid", group)
}

fn check_part(kind: &'static str, part: &str) -> Result<(), IdOutOfRange> {
    let digits = part.strip_prefix(['-', '+']).unwrap_or(part);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(());
    }
    match part.parse::<u64>() {
        Ok(n) if n <= u64::from(MAX_ID) => Ok(()),
        _ => Err(IdOutOfRange { kind, value: part.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_forms_checked_up_front() {
        for ok in ["", "0", "1000", "4294967294", "guest", "guest:staff", "1000:1000", "0:4294967294"] {
            assert_eq!(check_user(ok), Ok(()), "{ok}");
        }
        let cases = [
            ("4294967295", "invalid uid \"4294967295\": out of range (0 to 4294967294)"),
            ("-1", "invalid uid \"-1\": out of range (0 to 4294967294)"),
            ("18446744073709551615", "invalid uid \"18446744073709551615\": out of range (0 to 4294967294)"),
            ("99999999999999999999999", "invalid uid \"99999999999999999999999\": out of range (0 to 4294967294)"),
            ("0:4294967295", "invalid gid \"4294967295\": out of range (0 to 4294967294)"),
            ("guest:-1", "invalid gid \"-1\": out of range (0 to 4294967294)"),
        ];
        for (input, text) in cases {
            assert_eq!(check_user(input).unwrap_err().to_string(), text, "{input}");
        }
    }
}
