//! The unprivileged user local servers run as (`--run-as USER`): resolved once at startup to a
//! uid, a primary gid, supplementary groups and a home directory, then applied to every child
//! between fork and exec.
//!
//! # Guarantees
//! A child started with a [`RunAs`] has exactly that uid, gid and supplementary group list (the
//! parent's groups are dropped), and `HOME`, `USER` and `LOGNAME` of that user. Resolution goes
//! through the system's user database (`getpwnam_r`/`getpwuid_r`, `getgrouplist`), so NSS users
//! work too.
//!
//! # Caveats
//! Switching users needs root (or `CAP_SETUID`+`CAP_SETGID`); [`RunAs::resolve`] refuses when the
//! process is not root, rather than failing at each start. Files the parent opens for the child
//! (its log file) are opened by the parent and stay writable.

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};

/// Why `--run-as` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RunAsError {
    #[error("--run-as `{0}`: no such user")]
    UnknownUser(String),
    #[error("--run-as `{user}`: looking the user up failed: {source}")]
    Lookup {
        user: String,
        #[source]
        source: std::io::Error,
    },
    #[error("--run-as `{user}` needs mcpctl to run as root to switch users (running as uid {euid})")]
    NotRoot { user: String, euid: u32 },
}

/// A resolved user to run children as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (including `gid`), as `initgroups` would set them.
    pub groups: Vec<u32>,
    pub home: PathBuf,
}

impl RunAs {
    /// Resolve `user` (a name, or a numeric uid) and check that this process may switch to it.
    ///
    /// # Errors
    /// [`RunAsError::UnknownUser`] for a user the system does not know; [`RunAsError::NotRoot`]
    /// when this process is not root and `user` is not itself.
    pub fn resolve(user: &str) -> Result<RunAs, RunAsError> {
        let r = Self::lookup(user)?;
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 && euid != r.uid {
            return Err(RunAsError::NotRoot { user: user.to_string(), euid });
        }
        Ok(r)
    }

    /// Look `user` up without the privilege check.
    ///
    /// # Errors
    /// Unknown user, or the user database failed.
    pub fn lookup(user: &str) -> Result<RunAs, RunAsError> {
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut buf = vec![0u8; 16 * 1024];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = match user.parse::<u32>() {
            // SAFETY: pwd, buf and result outlive the call; buf's length is passed.
            Ok(uid) => unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result) },
            Err(_) => {
                let c = CString::new(user).map_err(|_| RunAsError::UnknownUser(user.to_string()))?;
                // SAFETY: as above; c is a valid NUL-terminated string.
                unsafe { libc::getpwnam_r(c.as_ptr(), &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result) }
            }
        };
        if rc != 0 {
            return Err(RunAsError::Lookup { user: user.to_string(), source: std::io::Error::from_raw_os_error(rc) });
        }
        if result.is_null() {
            return Err(RunAsError::UnknownUser(user.to_string()));
        }
        // SAFETY: on success pw_name and pw_dir point into buf, NUL-terminated.
        let (name, home) = unsafe {
            (CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned(), CStr::from_ptr(pwd.pw_dir).to_string_lossy().into_owned())
        };
        let (uid, gid) = (pwd.pw_uid, pwd.pw_gid);
        let groups = group_list(&name, gid);
        Ok(RunAs { name, uid, gid, groups, home: PathBuf::from(home) })
    }

    /// Whether this user can read `path` by its permission bits (owner, group, other). Used to
    /// warn when the age identity is exposed to the servers' user. ACLs are not consulted.
    pub fn can_read(&self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(m) = std::fs::metadata(path) else { return false };
        let mode = m.mode();
        if self.uid == 0 {
            return true;
        }
        if m.uid() == self.uid {
            return mode & 0o400 != 0;
        }
        if self.groups.contains(&m.gid()) || m.gid() == self.gid {
            return mode & 0o040 != 0;
        }
        mode & 0o004 != 0
    }

    /// Set this user's identity on `cmd`: groups, gid then uid, applied in the child before exec;
    /// the working directory becomes the user's home (or `/` when it has none), since `mcpctl`'s
    /// own may not be readable by that user.
    pub fn apply(&self, cmd: &mut tokio::process::Command) {
        cmd.current_dir(if self.home.is_dir() { self.home.as_path() } else { Path::new("/") });
        let (uid, gid, groups) = (self.uid, self.gid, self.groups.clone());
        // SAFETY: the closure runs between fork and exec and only makes async-signal-safe system
        // calls on memory allocated before the fork.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setgroups(groups.len() as _, groups.as_ptr()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::setgid(gid) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::setuid(uid) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// The supplementary groups of `user` (primary `gid` included), or just `gid` if the lookup fails.
fn group_list(user: &str, gid: u32) -> Vec<u32> {
    let Ok(c) = CString::new(user) else { return vec![gid] };
    let mut n: libc::c_int = 32;
    loop {
        let mut groups: Vec<libc::gid_t> = vec![0; n as usize];
        let before = n;
        // SAFETY: groups has room for n entries; n is updated to the count needed.
        let rc = unsafe { libc::getgrouplist(c.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            groups.truncate(n.max(0) as usize);
            return groups;
        }
        if n <= before {
            n = before * 2;
        }
        if n > 65536 {
            return vec![gid];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_users_are_a_clear_error() {
        let e = RunAs::lookup("no-such-user-mcpctl").unwrap_err();
        assert_eq!(e.to_string(), "--run-as `no-such-user-mcpctl`: no such user");
    }

    #[test]
    fn names_and_uids_resolve_to_the_same_user() {
        let by_name = RunAs::lookup("root").unwrap();
        assert_eq!((by_name.uid, by_name.gid), (0, 0));
        assert_eq!(RunAs::lookup("0").unwrap(), by_name);
        assert!(by_name.groups.contains(&0));
    }

    #[test]
    fn readability_follows_the_permission_bits() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("id.txt");
        std::fs::write(&f, "x").unwrap();
        // A user that owns nothing here and is in no group of the file's owner.
        let other = RunAs { name: "x".into(), uid: 4_000_001, gid: 4_000_001, groups: vec![4_000_001], home: "/".into() };
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(other.can_read(&f));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(!other.can_read(&f));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        use std::os::unix::fs::MetadataExt;
        let group = std::fs::metadata(&f).unwrap().gid();
        let member = RunAs { groups: vec![4_000_001, group], ..other.clone() };
        assert!(member.can_read(&f));
        assert!(!other.can_read(&f));
    }
}
