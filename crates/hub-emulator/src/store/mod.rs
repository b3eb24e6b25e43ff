//! The emulator's persistent state under `--data DIR`: a git-faithful object store (blobs by
//! git id, LFS objects by sha256, trees by git tree id) shared by all repos, and per-repo refs
//! and commit logs. A restarted emulator reloads everything from here.

pub mod commits;
pub mod listing;
pub mod lru;
pub mod mutate;
pub mod objects;
pub mod registry;
pub mod repo;
pub mod revision;
pub mod tree;
pub mod writer;
pub mod xet;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use listing::Listings;
use objects::Objects;
use registry::Registry;

pub struct Store {
    pub root: PathBuf,
    pub objects: Objects,
    pub repos: Registry,
    pub listings: Listings,
}

impl Store {
    pub fn open(root: &Path) -> io::Result<Store> {
        fs::create_dir_all(root)?;
        Ok(Store {
            root: root.to_path_buf(),
            objects: Objects::open(root)?,
            repos: Registry::open(root)?,
            listings: Listings::default(),
        })
    }

    /// A secret persisted in the data dir (for signing CDN URLs), created on first use.
    pub fn secret(&self) -> io::Result<Vec<u8>> {
        let path = self.root.join("secret.key");
        match fs::read_to_string(&path) {
            Ok(s) => {
                hex::decode(s.trim()).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut rng = fastrand::Rng::new();
                let key: Vec<u8> = (0..32).map(|_| rng.u8(..)).collect();
                let tmp = path.with_extension("tmp");
                fs::write(&tmp, hex::encode(&key))?;
                fs::rename(tmp, &path)?;
                Ok(key)
            }
            Err(e) => Err(e),
        }
    }
}
