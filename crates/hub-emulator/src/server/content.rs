//! Serving file bytes from disk: single-range parsing (206/416 semantics of hub-api.md §3.4) and
//! the body: short ranges in one read, long ones as 1 MiB chunks of a mapped file, each faulted
//! in one chunk ahead of the socket. The mapped pages are page cache, not heap: the emulator's
//! own memory stays flat whatever the file size.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use memmap2::{Advice, Mmap, MmapOptions};
use tokio::task::JoinHandle;

use crate::net::ContentBody;

/// Read size per chunk: large enough for > 1 GB/s on loopback with few syscalls.
const CHUNK: usize = 1 << 20;
/// Bodies at least this long are served from a mapping; shorter ones are read with one
/// `pread`: a fault in a mapping reads the device's whole read-around window (8 MiB here) from
/// disk, where a short `pread` reads little more than asked.
const MAP_FROM: u64 = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    Full,
    /// Inclusive byte range.
    Partial(u64, u64),
    Unsatisfiable,
}

/// Interprets a `Range` header against a file of `size` bytes. Multiple ranges and malformed
/// headers are ignored (full answer), as the Hub's CDNs do.
pub fn parse_range(value: Option<&HeaderValue>, size: u64) -> RangeSpec {
    let Some(spec) = value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return RangeSpec::Full;
    };
    if spec.contains(',') {
        return RangeSpec::Full;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeSpec::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        // bytes=-N: the last N bytes.
        (None, Some(n)) if a.is_empty() => {
            if n == 0 || size == 0 {
                RangeSpec::Unsatisfiable
            } else {
                RangeSpec::Partial(size.saturating_sub(n), size - 1)
            }
        }
        (Some(start), None) if b.is_empty() => {
            if start >= size {
                RangeSpec::Unsatisfiable
            } else {
                RangeSpec::Partial(start, size - 1)
            }
        }
        (Some(start), Some(end)) if start <= end => {
            if start >= size {
                RangeSpec::Unsatisfiable
            } else {
                RangeSpec::Partial(start, end.min(size - 1))
            }
        }
        _ => RangeSpec::Full,
    }
}

/// One chunk of a mapped file, handed to hyper without copying; keeps the mapping alive.
struct MappedChunk {
    map: Arc<Mmap>,
    start: usize,
    end: usize,
}

impl AsRef<[u8]> for MappedChunk {
    fn as_ref(&self) -> &[u8] {
        &self.map[self.start..self.end]
    }
}

/// Faults `[start, end)` of the mapping in on the blocking pool, so that hyper's socket writes
/// from it never wait on the disk inside an async worker. A page that cannot be read (disk
/// error) fails the body here (EFAULT) instead of raising SIGBUS later in the socket write.
fn spawn_populate(map: Arc<Mmap>, start: usize, end: usize) -> JoinHandle<io::Result<Bytes>> {
    tokio::task::spawn_blocking(move || {
        match map.advise_range(Advice::PopulateRead, start, end - start) {
            Ok(()) => {}
            // Kernels before 5.14 do not know the advice: read the chunk instead.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                return Ok(Bytes::copy_from_slice(&map[start..end]));
            }
            Err(e) => return Err(e),
        }
        Ok(Bytes::from_owner(MappedChunk { map, start, end }))
    })
}

struct Reader {
    map: Arc<Mmap>,
    /// Offset in the mapping of the next chunk to schedule.
    pos: usize,
    next: Option<JoinHandle<io::Result<Bytes>>>,
}

impl Reader {
    fn schedule(&mut self) {
        if self.pos < self.map.len() {
            let end = (self.pos + CHUNK).min(self.map.len());
            self.next = Some(spawn_populate(self.map.clone(), self.pos, end));
            self.pos = end;
        }
    }
}

/// A short body: one read on the blocking pool.
fn short_body(file: File, start: u64, len: u64) -> Body {
    let read = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; len as usize];
        file.read_exact_at(&mut buf, start)?;
        Ok::<_, io::Error>(Bytes::from(buf))
    });
    let stream = futures_util::stream::once(async move {
        match read.await {
            Ok(res) => res,
            Err(e) => Err(io::Error::other(e)),
        }
    });
    Body::from_stream(stream)
}

/// A body streaming `len` (> 0) bytes of `file` from `start`, straight from a read-only mapping:
/// no buffer to fill, so serving costs the socket copy alone (the emulator shares the machine
/// with the client being measured). Stored objects are written once and renamed into place,
/// so a mapped file never shrinks under the mapping.
pub fn file_body(file: File, start: u64, len: u64) -> io::Result<Body> {
    let file_len = file.metadata()?.len();
    if start.checked_add(len).is_none_or(|end| end > file_len) {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("stored object holds {file_len} bytes, {start}+{len} asked"),
        ));
    }
    if len < MAP_FROM {
        return Ok(short_body(file, start, len));
    }
    let map_len = usize::try_from(len).map_err(io::Error::other)?;
    // SAFETY: the object file is never truncated or rewritten in place by the emulator (see
    // above; this relies on nothing else truncating files in its data directory); the mapping
    // is read-only, and unreadable pages are caught by the populate step.
    let map = unsafe { MmapOptions::new().offset(start).len(map_len).map(&file)? };
    let _ = map.advise(Advice::Sequential);
    let mut r = Reader {
        map: Arc::new(map),
        pos: 0,
        next: None,
    };
    r.schedule();
    let stream = futures_util::stream::unfold(r, |mut r| async move {
        let handle = r.next.take()?;
        let chunk = match handle.await {
            Ok(res) => res,
            Err(e) => Err(io::Error::other(e)),
        };
        if chunk.is_ok() {
            // Fault the next chunk in while this one is being written to the socket.
            r.schedule();
        }
        Some((chunk, r))
    });
    Ok(Body::from_stream(stream))
}

/// Answers GET/HEAD for a stored file: 200, 206 or 416, with `Content-Length`,
/// `Accept-Ranges` and the caller's `extra` headers (ETag, X-Repo-Commit, ...).
pub fn serve(
    path: &std::path::Path,
    size: u64,
    method: &Method,
    headers: &HeaderMap,
    extra: HeaderMap,
) -> io::Result<Response> {
    let range = parse_range(headers.get(header::RANGE), size);
    let (status, start, len) = match range {
        RangeSpec::Full => (StatusCode::OK, 0, size),
        RangeSpec::Partial(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        RangeSpec::Unsatisfiable => (StatusCode::RANGE_NOT_SATISFIABLE, 0, 0),
    };
    let body = if method == Method::HEAD || len == 0 {
        Body::empty()
    } else {
        file_body(File::open(path)?, start, len)?
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    *h = extra;
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    match range {
        RangeSpec::Partial(a, b) => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{size}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
        }
        RangeSpec::Unsatisfiable => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
        }
        RangeSpec::Full => {}
    }
    if method != Method::HEAD {
        resp.extensions_mut().insert(ContentBody);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str, size: u64) -> RangeSpec {
        parse_range(Some(&HeaderValue::from_str(s).unwrap()), size)
    }

    #[test]
    fn ranges_follow_rfc_7233() {
        assert_eq!(r("bytes=0-99", 1000), RangeSpec::Partial(0, 99));
        assert_eq!(r("bytes=990-2000", 1000), RangeSpec::Partial(990, 999));
        assert_eq!(r("bytes=10-", 1000), RangeSpec::Partial(10, 999));
        assert_eq!(r("bytes=-10", 1000), RangeSpec::Partial(990, 999));
        assert_eq!(r("bytes=-5000", 1000), RangeSpec::Partial(0, 999));
        assert_eq!(r("bytes=1000-", 1000), RangeSpec::Unsatisfiable);
        assert_eq!(r("bytes=5000-10000", 2307), RangeSpec::Unsatisfiable);
        assert_eq!(r("bytes=0-0", 0), RangeSpec::Unsatisfiable);
        assert_eq!(r("bytes=0-1,5-6", 100), RangeSpec::Full);
        assert_eq!(r("bytes=9-3", 100), RangeSpec::Full);
        assert_eq!(r("items=0-1", 100), RangeSpec::Full);
        assert_eq!(parse_range(None, 100), RangeSpec::Full);
    }
}
