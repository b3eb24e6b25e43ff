//! [`MetaStore`]: small JSON documents kept for good (tree listings of pinned commits, revision
//! info), outside the size-capped block store because they are tiny and immutable per commit.
//!
//! Layout: `<root>/meta/<namespace>/<name>` where `<name>` is the key with every byte outside
//! `[A-Za-z0-9._-]` percent-escaped (prefix `k-`), or `h-<sha256 of key>` when that would be
//! too long for a file name. Each file is
//!
//! ```text
//! HUBFSMETA1 <crc32c of body, 8 hex> <body length>\n
//! {"key": <the key>, "value": <the document>}
//! ```
//!
//! Writes go to a temporary file renamed into place, so a reader sees the old or the new
//! document, never a mix. No fsync: after a power loss a document may be missing or damaged,
//! which the checksum turns into a miss (`get` returns None and the caller refetches).

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// Sub-directory of the cache root that holds the documents.
pub const META_DIR: &str = "meta";

const MAGIC: &str = "HUBFSMETA1";
const TMP_PREFIX: &str = ".tmp-";
/// Escaped keys longer than this are hashed (file names are limited to 255 bytes).
const MAX_ESCAPED: usize = 160;

/// Persistent key-value store of JSON documents, grouped in namespaces. Safe to share between
/// threads; concurrent `put`s of one key leave one of the values.
pub struct MetaStore {
    dir: PathBuf,
    tmp_seq: AtomicU64,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MetaStore>();
};

#[derive(Serialize)]
struct EnvelopeRef<'a, T> {
    key: &'a str,
    value: &'a T,
}

/// Checksum and length of what is written through it, without keeping it.
#[derive(Default)]
struct CrcCounter {
    crc: u32,
    len: usize,
}

impl io::Write for CrcCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.crc = crc32c::crc32c_append(self.crc, buf);
        self.len += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes to both.
struct Tee<'a, A, B>(&'a mut A, &'a mut B);

impl<A: io::Write, B: io::Write> io::Write for Tee<'_, A, B> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Reads `{"key": K, "value": V}` (the order [`EnvelopeRef`] writes), handing V to the seed
/// only when K is the key asked for.
struct EnvelopeSeed<'a, S> {
    key: &'a str,
    seed: S,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for EnvelopeSeed<'_, S> {
    type Value = Option<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for EnvelopeSeed<'_, S> {
    type Value = Option<S::Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a metadata envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seed = Some(self.seed);
        let mut key_matches = None;
        let mut value = None;
        while let Some(field) = map.next_key::<String>()? {
            match field.as_str() {
                "key" => key_matches = Some(map.next_value::<String>()? == self.key),
                "value" if key_matches == Some(true) => match seed.take() {
                    Some(s) => value = Some(map.next_value_seed(s)?),
                    None => return Err(serde::de::Error::duplicate_field("value")),
                },
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(value.filter(|_| key_matches == Some(true)))
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    key: String,
    value: T,
}

impl MetaStore {
    /// Opens the store under `<root>/meta` (`root` = the effective cache directory), creating it
    /// and removing temporary files left by a crashed writer.
    pub fn open(root: PathBuf) -> io::Result<MetaStore> {
        let dir = root.join(META_DIR);
        crate::private::create_dir_all(&dir)?;
        for ns in fs::read_dir(&dir)? {
            let ns = ns?;
            if !ns.file_type()?.is_dir() {
                continue;
            }
            for f in fs::read_dir(ns.path())? {
                let f = f?;
                if f.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                    let _ = fs::remove_file(f.path());
                }
            }
        }
        Ok(MetaStore {
            dir,
            tmp_seq: AtomicU64::new(0),
        })
    }

    /// Opens an existing store under `<root>/meta` to read it, creating and cleaning nothing:
    /// for a root another process (a running daemon) owns, whose temporary files are its own.
    pub fn open_existing(root: &Path) -> MetaStore {
        MetaStore {
            dir: root.join(META_DIR),
            tmp_seq: AtomicU64::new(0),
        }
    }

    /// The file holding (namespace, key), its bytes and where its checked body starts; None if
    /// absent or damaged (a damaged file is deleted).
    fn read_checked(
        &self,
        namespace: &str,
        key: &str,
    ) -> io::Result<Option<(PathBuf, Vec<u8>, usize)>> {
        let path = self.path(namespace, key)?;
        let raw = match fs::read(&path) {
            Ok(raw) => raw,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(body) = checked_body(&raw) else {
            tracing::warn!(path = %path.display(), "damaged metadata file; discarding it");
            let _ = fs::remove_file(&path);
            return Ok(None);
        };
        let start = raw.len() - body.len();
        Ok(Some((path, raw, start)))
    }

    /// The document stored under (namespace, key); None if absent, damaged, or not of type `T`
    /// (a damaged file is deleted).
    pub fn get<T: DeserializeOwned>(&self, namespace: &str, key: &str) -> io::Result<Option<T>> {
        let Some((path, raw, start)) = self.read_checked(namespace, key)? else {
            return Ok(None);
        };
        let body = &raw[start..];
        match serde_json::from_slice::<Envelope<T>>(body) {
            Ok(env) if env.key == key => Ok(Some(env.value)),
            // A hashed name shared with another key: not ours.
            Ok(_) => Ok(None),
            Err(e) => {
                tracing::warn!(path = %path.display(), "unreadable metadata document: {e}");
                Ok(None)
            }
        }
    }

    /// Like [`MetaStore::get`], but hands the document to `seed`, a deserializer that need not
    /// build the whole value (e.g. one inserting the entries of a big listing into an index as
    /// they are parsed). None if absent, damaged, or another key's document.
    pub fn get_seed<S, V>(&self, namespace: &str, key: &str, seed: S) -> io::Result<Option<V>>
    where
        S: for<'de> DeserializeSeed<'de, Value = V>,
    {
        let Some((path, raw, start)) = self.read_checked(namespace, key)? else {
            return Ok(None);
        };
        let body = &raw[start..];
        let envelope = EnvelopeSeed { key, seed };
        let mut de = serde_json::Deserializer::from_slice(body);
        match envelope.deserialize(&mut de) {
            Ok(v) => Ok(v),
            Err(e) => {
                tracing::warn!(path = %path.display(), "unreadable metadata document: {e}");
                Ok(None)
            }
        }
    }

    /// Stores `value` under (namespace, key), replacing any previous document atomically.
    pub fn put<T: Serialize>(&self, namespace: &str, key: &str, value: &T) -> io::Result<()> {
        let path = self.path(namespace, key)?;
        let doc = EnvelopeRef { key, value };
        // Two passes instead of one buffer: the header needs the body's checksum and length,
        // and a tree of a million entries is ~150 MB of JSON the daemon need not hold.
        let mut sum = CrcCounter::default();
        serde_json::to_writer(&mut sum, &doc).map_err(io::Error::other)?;
        let ns_dir = path.parent().unwrap_or(&self.dir);
        crate::private::create_dir_all(ns_dir)?;
        let seq = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let tmp = ns_dir.join(format!("{TMP_PREFIX}{}-{seq}", std::process::id()));
        let write = || -> io::Result<()> {
            let mut file = io::BufWriter::with_capacity(
                256 * 1024,
                crate::private::open_options()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&tmp)?,
            );
            writeln!(file, "{MAGIC} {:08x} {}", sum.crc, sum.len)?;
            let mut check = CrcCounter::default();
            serde_json::to_writer(Tee(&mut file, &mut check), &doc).map_err(io::Error::other)?;
            if (check.crc, check.len) != (sum.crc, sum.len) {
                return Err(io::Error::other("document changed while it was written"));
            }
            file.into_inner().map_err(|e| e.into_error())?;
            fs::rename(&tmp, &path)
        };
        write().inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
    }

    /// Deletes the document (no error if absent).
    pub fn remove(&self, namespace: &str, key: &str) -> io::Result<()> {
        match fs::remove_file(self.path(namespace, key)?) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn path(&self, namespace: &str, key: &str) -> io::Result<PathBuf> {
        let ns_ok = !namespace.is_empty()
            && namespace.len() <= 64
            && namespace
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !ns_ok {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("metadata namespace {namespace:?} must be 1-64 of [a-z0-9_-]"),
            ));
        }
        Ok(self.dir.join(namespace).join(file_name(key)))
    }

    /// The directory holding the namespaces (`<root>/meta`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// File name of a key: readable when short, hashed when long. Escaping keeps names unique and
/// free of `/`, and the `k-` prefix keeps them from starting with `.` (hidden / temp files).
fn file_name(key: &str) -> String {
    let mut name = String::from("k-");
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-' {
            name.push(char::from(b));
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    if name.len() <= MAX_ESCAPED {
        name
    } else {
        format!("h-{}", hex::encode(sha2::Sha256::digest(key.as_bytes())))
    }
}

/// The body after a valid header line, or None if the header, length or checksum is wrong.
fn checked_body(raw: &[u8]) -> Option<&[u8]> {
    let nl = raw.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&raw[..nl]).ok()?;
    let body = &raw[nl + 1..];
    let mut parts = header.split(' ');
    let (magic, crc, len) = (parts.next()?, parts.next()?, parts.next()?);
    let crc = u32::from_str_radix(crc, 16).ok()?;
    let len: usize = len.parse().ok()?;
    (magic == MAGIC && parts.next().is_none() && len == body.len() && crc32c::crc32c(body) == crc)
        .then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Doc {
        name: String,
        sizes: Vec<u64>,
    }

    fn doc() -> Doc {
        Doc {
            name: "config.json".into(),
            sizes: vec![1, 2, 3],
        }
    }

    #[test]
    fn seeded_reads_see_only_their_key_and_intact_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path().to_path_buf()).unwrap();
        let seed = std::marker::PhantomData::<Doc>;
        assert_eq!(store.get_seed("trees", "k", seed).unwrap(), None);
        store.put("trees", "k", &doc()).unwrap();
        assert_eq!(store.get_seed("trees", "k", seed).unwrap(), Some(doc()));
        // Another key's document under the same file name reads as absent.
        let path = store.path("trees", "k").unwrap();
        store.put("trees", "other", &doc()).unwrap();
        std::fs::copy(store.path("trees", "other").unwrap(), &path).unwrap();
        assert_eq!(store.get_seed("trees", "k", seed).unwrap(), None);
        // A damaged body is a miss, like `get`.
        store.put("trees", "k", &doc()).unwrap();
        let mut raw = std::fs::read(&path).unwrap();
        let last = raw.len() - 2;
        raw[last] ^= 1;
        std::fs::write(&path, raw).unwrap();
        assert_eq!(store.get_seed("trees", "k", seed).unwrap(), None);
    }

    #[test]
    fn round_trip_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path().to_path_buf()).unwrap();
        let key = "models/ns/name@0123abcd/dir with space/ünï#%";
        assert_eq!(store.get::<Doc>("trees", key).unwrap(), None);
        store.put("trees", key, &doc()).unwrap();
        assert_eq!(store.get::<Doc>("trees", key).unwrap(), Some(doc()));
        // Namespaces are separate.
        assert_eq!(store.get::<Doc>("revs", key).unwrap(), None);

        drop(store);
        let store = MetaStore::open(dir.path().to_path_buf()).unwrap();
        assert_eq!(store.get::<Doc>("trees", key).unwrap(), Some(doc()));
        store.remove("trees", key).unwrap();
        store.remove("trees", key).unwrap();
        assert_eq!(store.get::<Doc>("trees", key).unwrap(), None);
    }

    #[test]
    fn long_keys_are_hashed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path().to_path_buf()).unwrap();
        let long = "x/".repeat(200);
        store.put("trees", &long, &doc()).unwrap();
        assert_eq!(store.get::<Doc>("trees", &long).unwrap(), Some(doc()));
        let names: Vec<String> = fs::read_dir(store.dir().join("trees"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 1);
        assert!(
            names[0].starts_with("h-") && names[0].len() == 66,
            "{names:?}"
        );
        assert_eq!(file_name("a/b.c"), "k-a%2Fb.c");
        assert_eq!(file_name(".."), "k-..");
    }

    #[test]
    fn damaged_files_read_as_absent_and_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path().to_path_buf()).unwrap();
        let path = store.path("trees", "k").unwrap();
        let damage: [fn(&mut Vec<u8>); 4] = [
            |f| {
                let last = f.len() - 2;
                f[last] ^= 0x01; // bit flip in the body
            },
            |f| f.truncate(f.len() - 5),
            |f| *f = b"garbage".to_vec(),
            |f| f.clear(),
        ];
        for d in damage {
            store.put("trees", "k", &doc()).unwrap();
            let mut raw = fs::read(&path).unwrap();
            d(&mut raw);
            fs::write(&path, &raw).unwrap();
            assert_eq!(store.get::<Doc>("trees", "k").unwrap(), None);
            store.put("trees", "k", &doc()).unwrap();
            assert_eq!(store.get::<Doc>("trees", "k").unwrap(), Some(doc()));
        }
        // A valid document of another shape is None, not an error.
        assert_eq!(store.get::<Vec<u8>>("trees", "k").unwrap(), None);
    }

    #[test]
    fn bad_namespaces_are_rejected_and_temp_files_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path().to_path_buf()).unwrap();
        for ns in ["", "../x", "Trees", "a/b", &"n".repeat(65)] {
            let err = store
                .put("x", "k", &1)
                .and(store.put(ns, "k", &1))
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{ns:?}");
        }
        let stale = store.dir().join("x").join(".tmp-1-1");
        fs::write(&stale, b"partial").unwrap();
        drop(store);
        let store = MetaStore::open(dir.path().to_path_buf()).unwrap();
        assert!(!stale.exists());
        assert_eq!(store.get::<i32>("x", "k").unwrap(), Some(1));
    }
}
