//! Who the container's process runs as. berthd passes the user as the
//! person gave it (`-u name`, `uid`, `name:group`, `uid:gid`) in the
//! `berth.user` annotation; names mean the container's own `/etc/passwd`
//! and `/etc/group`, so they are resolved in the init after `pivot_root`
//! (the files are parsed here, as plain text, so this is testable). The
//! rules follow runc's `GetExecUser`, which Docker users know: a numeric uid
//! needs no entry (gid 0, home `/`); a user found in passwd brings its gid,
//! home and, unless a group was given, every group that lists it.
use crate::oci::User;
use berth_contract::user::{IdOutOfRange, MAX_ID};

/// The user the init was asked to become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRequest {
    /// `process.user` of the spec: numeric, no lookup needed (the passwd
    /// file is read only for HOME).
    Ids { uid: u32, gid: u32, additional_gids: Vec<u32> },
    /// The `berth.user` annotation: `user[:group]`, names or numbers.
    Named { user: String, group: Option<String>, additional_gids: Vec<u32> },
}

/// The resolved identity: what `setgroups`/`setgid`/`setuid` get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    pub home: String,
}

/// A name the container's files do not know. The texts are Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    /// A uid or gid of 2^32-1 or more: `-1` means "leave unchanged" to
    /// `setresuid(2)`, so the process would stay root.
    #[error(transparent)]
    OutOfRange(#[from] IdOutOfRange),
}

impl ExecUser {
    /// Refuses an identity that `setresuid`/`setresgid`/`setgroups` would
    /// not apply (wherever it came from: a number, the container's own
    /// passwd or group file, the spec).
    fn checked(self) -> Result<Self, UserError> {
        let bad = |kind, v: u32| UserError::OutOfRange(IdOutOfRange { kind, value: v.to_string() });
        if self.uid > MAX_ID {
            return Err(bad("uid", self.uid));
        }
        if self.gid > MAX_ID {
            return Err(bad("gid", self.gid));
        }
        if let Some(&g) = self.groups.iter().find(|&&g| g > MAX_ID) {
            return Err(bad("gid", g));
        }
        Ok(self)
    }
}

impl UserRequest {
    /// The request from the annotation if it is set and not empty, else
    /// from `process.user`.
    pub fn new(annotation: Option<&str>, spec_user: &User) -> Self {
        let additional_gids = spec_user.additional_gids.clone();
        match annotation.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => {
                let (user, group) = match s.split_once(':') {
                    Some((u, g)) => (u, Some(g).filter(|g| !g.is_empty())),
                    None => (s, None),
                };
                Self::Named { user: user.to_owned(), group: group.map(str::to_owned), additional_gids }
            }
            None => Self::Ids { uid: spec_user.uid, gid: spec_user.gid, additional_gids },
        }
    }

    /// Resolves the request against the contents of `/etc/passwd` and
    /// `/etc/group` (`None` when a file is missing).
    pub fn resolve(&self, passwd: Option<&str>, group: Option<&str>) -> Result<ExecUser, UserError> {
        self.resolve_unchecked(passwd, group)?.checked()
    }

    fn resolve_unchecked(&self, passwd: Option<&str>, group: Option<&str>) -> Result<ExecUser, UserError> {
        let passwd = passwd.unwrap_or("");
        let group = group.unwrap_or("");
        match self {
            Self::Ids { uid, gid, additional_gids } => Ok(ExecUser {
                uid: *uid,
                gid: *gid,
                groups: additional_gids.clone(),
                home: passwd_entries(passwd).find(|p| p.uid == *uid).map_or("/", |p| p.home).to_owned(),
            }),
            Self::Named { user, group: group_arg, additional_gids } => {
                let numeric = user.parse::<u32>().ok();
                let entry = passwd_entries(passwd).find(|p| p.name == user.as_str() || Some(p.uid) == numeric);
                let mut out = match (&entry, numeric) {
                    (Some(p), _) => ExecUser { uid: p.uid, gid: p.gid, groups: Vec::new(), home: p.home.to_owned() },
                    (None, Some(uid)) => ExecUser { uid, gid: 0, groups: Vec::new(), home: "/".to_owned() },
                    (None, None) => return Err(UserError::NoUser(user.clone())),
                };
                match group_arg {
                    Some(g) => {
                        out.gid = match g.parse::<u32>() {
                            Ok(gid) => gid,
                            Err(_) => group_entries(group)
                                .find(|e| e.name == g.as_str())
                                .map(|e| e.gid)
                                .ok_or_else(|| UserError::NoGroup(g.clone()))?,
                        };
                    }
                    None => {
                        if let Some(p) = &entry {
                            out.groups = group_entries(group)
                                .filter(|e| e.members.split(',').any(|m| m == p.name))
                                .map(|e| e.gid)
                                .collect();
                        }
                    }
                }
                for gid in additional_gids {
                    if !out.groups.contains(gid) {
                        out.groups.push(*gid);
                    }
                }
                Ok(out)
            }
        }
    }
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: &'a str,
}

/// `name:password:uid:gid:gecos:home:shell`; malformed lines are skipped.
fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.trim().split(':').collect();
        if f.len() < 4 || f[0].is_empty() || f[0].starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f.get(5).copied().filter(|h| !h.is_empty()).unwrap_or("/"),
        })
    })
}

/// `name:password:gid:member,member`; malformed lines are skipped.
fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.trim().split(':').collect();
        if f.len() < 3 || f[0].is_empty() || f[0].starts_with('#') {
            return None;
        }
        Some(GroupEntry { name: f[0], gid: f[2].parse().ok()?, members: f.get(3).copied().unwrap_or("") })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # comment\n\
        broken line\n\
        guest:x:1000:1000:Guest:/home/guest:/bin/sh\n\
        nohome:x:1001:1001::\n";
    const GROUP: &str = "root:x:0:\n\
        guest:x:1000:\n\
        audio:x:29:guest,other\n\
        video:x:44:other\n\
        staff:x:50:root,guest\n";

    fn named(user: &str, group: Option<&str>, extra: &[u32]) -> UserRequest {
        UserRequest::Named { user: user.into(), group: group.map(Into::into), additional_gids: extra.to_vec() }
    }

    fn who(uid: u32, gid: u32, groups: &[u32], home: &str) -> ExecUser {
        ExecUser { uid, gid, groups: groups.to_vec(), home: home.into() }
    }

    #[test]
    fn resolution_table() {
        let cases: Vec<(UserRequest, Result<ExecUser, UserError>)> = vec![
            (named("guest", None, &[]), Ok(who(1000, 1000, &[29, 50], "/home/guest"))),
            (named("1000", None, &[]), Ok(who(1000, 1000, &[29, 50], "/home/guest"))),
            (named("guest", Some("audio"), &[]), Ok(who(1000, 29, &[], "/home/guest"))),
            (named("guest", Some("7"), &[5]), Ok(who(1000, 7, &[5], "/home/guest"))),
            (named("4242", None, &[]), Ok(who(4242, 0, &[], "/"))),
            (named("4242", Some("4343"), &[]), Ok(who(4242, 4343, &[], "/"))),
            (named("root", None, &[50, 9]), Ok(who(0, 0, &[50, 9], "/root"))),
            (named("nohome", None, &[]), Ok(who(1001, 1001, &[], "/"))),
            (named("ghost", None, &[]), Err(UserError::NoUser("ghost".into()))),
            (named("guest", Some("wheel"), &[]), Err(UserError::NoGroup("wheel".into()))),
            (UserRequest::Ids { uid: 1000, gid: 5, additional_gids: vec![6] }, Ok(who(1000, 5, &[6], "/home/guest"))),
        ];
        for (req, want) in cases {
            assert_eq!(req.resolve(Some(PASSWD), Some(GROUP)), want, "{req:?}");
        }
    }

    #[test]
    fn ids_that_would_stay_root_are_refused() {
        let max = |kind: &'static str, v: &str| Err(UserError::OutOfRange(IdOutOfRange { kind, value: v.into() }));
        let hostile = "evil:x:4294967295:4294967295::/:/bin/sh\nroot:x:0:0::/root:/bin/sh\n";
        let groups = "bad:x:4294967295:root\n";
        let cases: Vec<(UserRequest, Result<ExecUser, UserError>)> = vec![
            (named("4294967295", None, &[]), max("uid", "4294967295")),
            (named("0", Some("4294967295"), &[]), max("gid", "4294967295")),
            (named("evil", None, &[]), max("uid", "4294967295")),
            (named("root", None, &[]), max("gid", "4294967295")),
            (named("0", None, &[u32::MAX]), max("gid", "4294967295")),
            (UserRequest::Ids { uid: u32::MAX, gid: 0, additional_gids: vec![] }, max("uid", "4294967295")),
            (UserRequest::Ids { uid: 0, gid: u32::MAX, additional_gids: vec![] }, max("gid", "4294967295")),
            (named("4294967294", None, &[]), Ok(who(4294967294, 0, &[], "/"))),
        ];
        for (req, want) in cases {
            assert_eq!(req.resolve(Some(hostile), Some(groups)), want, "{req:?}");
        }
    }

    #[test]
    fn missing_files() {
        assert_eq!(named("0", None, &[]).resolve(None, None), Ok(who(0, 0, &[], "/")));
        assert_eq!(
            named("root", None, &[]).resolve(None, None).unwrap_err().to_string(),
            "unable to find user root: no matching entries in passwd file"
        );
        assert_eq!(
            named("0", Some("g"), &[]).resolve(None, None).unwrap_err().to_string(),
            "unable to find group g: no matching entries in group file"
        );
    }

    #[test]
    fn request_from_annotation_or_spec() {
        let u = User { uid: 5, gid: 6, umask: None, additional_gids: vec![7] };
        assert_eq!(UserRequest::new(None, &u), UserRequest::Ids { uid: 5, gid: 6, additional_gids: vec![7] });
        assert_eq!(UserRequest::new(Some(""), &u), UserRequest::new(None, &u));
        assert_eq!(UserRequest::new(Some("a:b"), &u), named("a", Some("b"), &[7]));
        assert_eq!(UserRequest::new(Some("a:"), &u), named("a", None, &[7]));
        assert_eq!(UserRequest::new(Some("12"), &u), named("12", None, &[7]));
    }
}
