//! IDs, validated before they touch a path. Room here for the IDs to come
//! (a pod sandbox's, for CRI).
use std::fmt;

/// A container ID: 64 lowercase hex digits, checked before it touches a path.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(String);

/// The string given is not a container ID.
#[derive(Debug, thiserror::Error)]
#[error("invalid container id {0:?}: want 64 lowercase hex digits")]
pub struct InvalidId(pub String);

impl ContainerId {
    /// Validates `s` as a full container ID.
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId(s.to_owned()))
        }
    }

    /// The whole ID.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 12-digit form people see.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContainerId({})", self.short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_id_validation() {
        let good = "a".repeat(64);
        assert!(ContainerId::parse(&good).is_ok());
        for bad in ["", "abc", &"A".repeat(64), &"g".repeat(64), &"a".repeat(65), "../../etc"] {
            let err = ContainerId::parse(bad).unwrap_err();
            assert!(err.to_string().contains("invalid container id"), "{bad}");
        }
        assert_eq!(ContainerId::parse(&good).unwrap().short(), &good[..12]);
    }
}
