//! Builds the Hub's JSON shapes (hub-api.md §4) from store records, reusing the shared wire
//! types of `hub_wire::types` where they exist.

use serde_json::{json, Map, Value};

use crate::store::commits::CommitRec;
use crate::store::listing::Entry;
use crate::store::repo::RepoMeta;
use crate::store::tree::ItemKind;
use crate::store::xet::XetStore;
use crate::time::iso_ms;
use hub_wire::repo::RepoType;
use hub_wire::types::{
    CommitAuthor, CommitInfo, LastCommit, LfsInfo, Sibling, SiblingLfs, TreeEntry,
};

pub fn commit_date(c: &CommitRec) -> String {
    iso_ms(c.time * 1000)
}

pub fn avatar(user: &str) -> String {
    format!("https://cdn-avatars.huggingface.co/v1/production/uploads/{user}.png")
}

/// A tree/paths-info entry; `xet` (the Xet store, `None` on a legacy Hub) adds `xetHash` to LFS
/// files whose content is stored in Xet.
pub fn tree_entry(e: &Entry, last: Option<&CommitRec>, xet: Option<&XetStore>) -> TreeEntry {
    let xet_hash = match (e.kind, xet) {
        (ItemKind::File(m), Some(x)) => {
            m.lfs.and_then(|sha| x.by_sha256(&sha.hex())).map(|f| f.xet)
        }
        _ => None,
    };
    let (kind, size, lfs) = match e.kind {
        ItemKind::Dir => ("directory", 0, None),
        ItemKind::File(m) => (
            "file",
            m.size,
            m.lfs.map(|sha| LfsInfo {
                oid: sha.hex(),
                size: m.size,
                pointer_size: m.pointer_size().unwrap_or(0),
            }),
        ),
    };
    TreeEntry {
        kind: kind.into(),
        oid: e.oid.hex(),
        size,
        path: e.path.clone(),
        lfs,
        xet_hash,
        last_commit: last.map(|c| LastCommit {
            id: c.id.hex(),
            title: c.title.clone(),
            date: commit_date(c),
        }),
        security_file_status: None,
    }
}

pub fn commit_info(c: &CommitRec) -> CommitInfo {
    CommitInfo {
        id: c.id.hex(),
        title: c.title.clone(),
        message: c.description.clone(),
        authors: vec![CommitAuthor {
            user: c.author.clone(),
            avatar: Some(avatar(&c.author)),
        }],
        date: commit_date(c),
    }
}

/// A sibling of repo info; `blobs` adds size, blob id and LFS data.
pub fn sibling(e: &Entry, blobs: bool) -> Sibling {
    let meta = match e.kind {
        ItemKind::File(m) if blobs => Some(m),
        _ => None,
    };
    Sibling {
        rfilename: e.path.clone(),
        blob_id: meta.map(|_| e.oid.hex()),
        size: meta.map(|m| m.size),
        lfs: meta.and_then(|m| {
            m.lfs.map(|sha| SiblingLfs {
                sha256: sha.hex(),
                size: m.size,
                pointer_size: m.pointer_size().unwrap_or(0),
            })
        }),
    }
}

/// The fields every repo info carries (list and detail), plus type-specific extras.
pub fn repo_summary(meta: &RepoMeta, head: Option<&CommitRec>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("_id".into(), json!(meta.mongo_id));
    m.insert("id".into(), json!(meta.id));
    if let Some(ns) = meta.namespace() {
        m.insert("author".into(), json!(ns));
    }
    m.insert("private".into(), json!(meta.private));
    m.insert("gated".into(), meta.gated.clone());
    m.insert("disabled".into(), json!(false));
    m.insert("downloads".into(), json!(0));
    m.insert("likes".into(), json!(0));
    m.insert("tags".into(), json!([]));
    m.insert("createdAt".into(), json!(iso_ms(meta.created_ms)));
    if let Some(h) = head {
        m.insert("lastModified".into(), json!(commit_date(h)));
    }
    match meta.repo_type {
        RepoType::Model => {
            m.insert("modelId".into(), json!(meta.id));
        }
        RepoType::Dataset => {
            m.insert("description".into(), json!(""));
            m.insert("citation".into(), json!(""));
        }
        RepoType::Space => {
            let sub = meta.id.replace(['/', '_', '.'], "-").to_ascii_lowercase();
            m.insert(
                "sdk".into(),
                json!(meta.sdk.clone().unwrap_or_else(|| "gradio".into())),
            );
            m.insert("subdomain".into(), json!(sub));
            m.insert("host".into(), json!(format!("https://{sub}.hf.space")));
            m.insert(
                "runtime".into(),
                json!({
                    "stage": "RUNNING",
                    "hardware": {"current": "cpu-basic", "requested": "cpu-basic"},
                    "storage": null,
                    "gcTimeout": 172800,
                    "replicas": {"current": 1, "requested": 1},
                    "devMode": false,
                }),
            );
            m.insert("models".into(), json!([]));
            m.insert("datasets".into(), json!([]));
        }
        // Buckets are not git repos: their info comes from api/buckets.rs.
        RepoType::Bucket => {}
    }
    m
}
