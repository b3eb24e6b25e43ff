//! The error type of the filesystem core: a POSIX errno, independent of the FUSE library.
//!
//! Every operation of the core returns `Result<_, Errno>`; the FUSE adapter passes the number
//! to the kernel unchanged. Mapping Hub failures to errnos happens here, in one place, so the
//! documented semantics (SEMANTICS.md) have a single source.

use std::fmt;

use crate::hub::HubError;

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub const ENOENT: Errno = Errno(libc::ENOENT);
    pub const EIO: Errno = Errno(libc::EIO);
    pub const EACCES: Errno = Errno(libc::EACCES);
    pub const EPERM: Errno = Errno(libc::EPERM);
    pub const EROFS: Errno = Errno(libc::EROFS);
    pub const ENOTDIR: Errno = Errno(libc::ENOTDIR);
    pub const EISDIR: Errno = Errno(libc::EISDIR);
    pub const EINVAL: Errno = Errno(libc::EINVAL);
    pub const EBADF: Errno = Errno(libc::EBADF);
    pub const ENOTSUP: Errno = Errno(libc::ENOTSUP);
    pub const ENOSYS: Errno = Errno(libc::ENOSYS);
    pub const ENODATA: Errno = Errno(libc::ENODATA);
    pub const ENAMETOOLONG: Errno = Errno(libc::ENAMETOOLONG);
    pub const EEXIST: Errno = Errno(libc::EEXIST);
    pub const ENOTEMPTY: Errno = Errno(libc::ENOTEMPTY);
    pub const EXDEV: Errno = Errno(libc::EXDEV);
    pub const ENOSPC: Errno = Errno(libc::ENOSPC);
    pub const EFBIG: Errno = Errno(libc::EFBIG);
    pub const EAGAIN: Errno = Errno(libc::EAGAIN);
    pub const ETIMEDOUT: Errno = Errno(libc::ETIMEDOUT);
    pub const EMLINK: Errno = Errno(libc::EMLINK);
    pub const ERANGE: Errno = Errno(libc::ERANGE);
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", std::io::Error::from_raw_os_error(self.0))
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl From<std::io::Error> for Errno {
    fn from(e: std::io::Error) -> Errno {
        Errno(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

impl From<&HubError> for Errno {
    /// Missing things are ENOENT; access problems EACCES (the log says a token is needed);
    /// everything transient that survived the client's retries is EIO.
    fn from(e: &HubError) -> Errno {
        match e {
            HubError::RepoNotFound { .. }
            | HubError::RevisionNotFound { .. }
            | HubError::EntryNotFound { .. } => Errno::ENOENT,
            HubError::AuthRequired { .. }
            | HubError::InvalidToken
            | HubError::Forbidden { .. }
            | HubError::Gated { .. } => Errno::EACCES,
            HubError::InvalidInput { .. } => Errno::EINVAL,
            _ => Errno::EIO,
        }
    }
}

impl From<HubError> for Errno {
    fn from(e: HubError) -> Errno {
        Errno::from(&e)
    }
}
