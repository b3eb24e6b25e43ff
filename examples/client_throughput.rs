//! Measures the Hub client's read path against a running Hub (normally `hub-emulator`).
//!
//! ```text
//! hub-emulator --data /tmp/emu --listen 127.0.0.1:0 --token alice:write:hf_alice &
//! cargo run --release --example client_throughput -- http://127.0.0.1:PORT hf_alice 1024
//! ```
//!
//! Uploads one LFS file of the given size (MiB) to `alice/throughput`, then reports: one
//! sequential stream over the whole file, 8 parallel streams of 8 MiB ranges, and the latency of
//! 4 KiB reads at random offsets (each a CDN round trip once the location is remembered).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hubfs::hub::{
    preupload_file, CommitHeader, CommitOp, HubClient, HubConfig, HubError, LfsObject, Token,
};
use hubfs::repo::{RepoId, RepoRef, RepoType};
use sha2::{Digest, Sha256};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, endpoint, token, mib] = args.as_slice() else {
        return Err("usage: client_throughput ENDPOINT TOKEN SIZE_MIB".into());
    };
    let size = mib.parse::<u64>()? << 20;
    let config = HubConfig::new(hubfs::hub::parse_endpoint(endpoint)?, Token::new(token));
    let client = HubClient::new(config)?;
    let repo = RepoRef::new(RepoType::Model, RepoId::parse("alice/throughput")?);
    let commit = seed(&client, &repo, size).await?;

    let started = Instant::now();
    let mut body = client.get_range(&repo, &commit, "big.bin", 0, size).await?;
    let mut n = 0u64;
    while let Some(chunk) = body.chunk().await? {
        n += chunk.len() as u64;
    }
    report("1 sequential stream", n, started.elapsed());

    let started = Instant::now();
    let piece = 8u64 << 20;
    let mut tasks = Vec::new();
    for w in 0..8u64 {
        let (client, repo, commit) = (client.clone(), repo.clone(), commit.clone());
        tasks.push(tokio::spawn(async move {
            let mut got = 0u64;
            let mut at = w * piece;
            while at < size {
                let data = client
                    .read_range(&repo, &commit, "big.bin", at, at + piece)
                    .await?;
                got += data.len() as u64;
                at += 8 * piece;
            }
            Ok::<u64, HubError>(got)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    report("8 parallel streams, 8 MiB ranges", total, started.elapsed());

    let reads = 500;
    let mut latencies = Vec::with_capacity(reads);
    for _ in 0..reads {
        let at = fastrand::u64(0..size - 4096);
        let t = Instant::now();
        let data = client
            .read_range(&repo, &commit, "big.bin", at, at + 4096)
            .await?;
        latencies.push(t.elapsed());
        assert_eq!(data.len(), 4096);
    }
    latencies.sort();
    println!(
        "4 KiB random reads: p50 {:?}, p99 {:?}",
        latencies[reads / 2],
        latencies[reads * 99 / 100]
    );
    println!("client stats: {:?}", client.stats());
    Ok(())
}

fn report(what: &str, bytes: u64, took: Duration) {
    let mb_s = bytes as f64 / took.as_secs_f64() / 1e6;
    println!("{what}: {} MiB in {took:.2?} = {mb_s:.0} MB/s", bytes >> 20);
}

/// Creates the repo (if needed) and commits a `size`-byte LFS file; returns the commit.
async fn seed(client: &HubClient, repo: &RepoRef, size: u64) -> Result<String> {
    match client.create_repo(repo, false).await {
        Ok(_) | Err(HubError::AlreadyExists { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let dir = std::env::temp_dir().join(format!("hubfs-throughput-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("big.bin");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; 1 << 20];
    let mut head = Vec::new();
    for i in 0..size >> 20 {
        block.iter_mut().enumerate().for_each(|(j, b)| {
            *b = (i as usize * 31 + j * 7) as u8;
        });
        if i == 0 {
            head = block[..512].to_vec();
        }
        hasher.update(&block);
        out.write_all(&block)?;
    }
    out.flush()?;
    drop(out);
    let oid = hex::encode(hasher.finalize());
    client
        .preupload(
            repo,
            "main",
            &[preupload_file("big.bin", &head, size)],
            false,
        )
        .await?;
    let objects = [LfsObject {
        oid: oid.clone(),
        size,
    }];
    let batch = client.lfs_batch_upload(repo, "main", &objects).await?;
    let transfer = batch.transfer.clone().unwrap_or_else(|| "basic".into());
    let started = Instant::now();
    let progress = Arc::new(|_n: u64| {});
    for object in &batch.objects {
        client
            .upload_lfs_object(object, &transfer, &file, Some(progress.clone()))
            .await?;
    }
    report("upload (LFS PUT)", size, started.elapsed());
    let done = client
        .commit(
            repo,
            "main",
            CommitHeader {
                summary: "throughput test file".into(),
                description: String::new(),
                parent_commit: None,
            },
            vec![CommitOp::AddLfs {
                path: "big.bin".into(),
                sha256: oid,
                size,
            }],
            false,
        )
        .await?;
    std::fs::remove_dir_all(&dir)?;
    Ok(done.commit_oid)
}
