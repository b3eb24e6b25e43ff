//! Keeping the token (and the shared cache's AWS secrets) out of the daemon's environment.
//!
//! The daemon is forked from `hubfs mount` without exec, so it starts with the user's
//! environment, `HF_TOKEN` included, and `/proc/PID/environ` shows the original environment
//! block for as long as the process lives (readable by the same user and by root, and kept in
//! core dumps). Removing the variable (`unsetenv`) only drops the pointer to it; the bytes stay
//! in that block. So once the token was read, its bytes are overwritten in place, then the
//! variables are removed so nothing in the process (or a child like fusermount) sees them.

use std::ffi::{c_char, CStr};

/// Variables holding a secret: the Hub token (see `hub::auth::Token::discover`) and the AWS
/// credentials the shared cache tier may use (read before this runs: see [`aws_vars`]).
const SECRET_VARS: [&str; 4] = [
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// The `AWS_*` variables, captured before [`scrub_token_vars`] wipes the secret ones, for the
/// shared cache tier's credential lookup (`shared::config::resolve`), which runs later.
pub fn aws_vars() -> std::collections::HashMap<String, String> {
    std::env::vars()
        .filter(|(name, _)| name.starts_with("AWS_"))
        .collect()
}

extern "C" {
    /// The C library's environment: pointers into the original block, until setenv.
    static mut environ: *mut *mut c_char;
}

/// Overwrites the values of the token variables with NUL bytes where they lie in memory and
/// removes them from the environment. Returns how many were scrubbed.
///
/// # Safety
/// No other thread may read or change the environment meanwhile (call it before starting any
/// thread or runtime).
pub unsafe fn scrub_token_vars() -> usize {
    let mut scrubbed = 0;
    // SAFETY: the caller guarantees no concurrent access to the environment; `environ` is a
    // NULL-terminated array of NUL-terminated strings owned by the C library, and writing
    // inside a string's own bytes (before its NUL) keeps the array valid.
    unsafe {
        let mut entry = environ;
        while !entry.is_null() && !(*entry).is_null() {
            let s = *entry;
            let bytes = CStr::from_ptr(s).to_bytes();
            for name in SECRET_VARS {
                let prefix_len = name.len() + 1;
                if bytes.len() >= prefix_len
                    && &bytes[..name.len()] == name.as_bytes()
                    && bytes[name.len()] == b'='
                {
                    let value_len = bytes.len() - prefix_len;
                    std::ptr::write_bytes(s.add(prefix_len), 0, value_len);
                    scrubbed += 1;
                }
            }
            entry = entry.add(1);
        }
    }
    for name in SECRET_VARS {
        std::env::remove_var(name);
    }
    scrubbed
}

// Tested through the real daemon: tests/mount/test_privacy.py reads its /proc/PID/environ.
