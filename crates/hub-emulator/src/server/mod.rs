//! The emulator's HTTP side: shared application state, the two listeners (Hub API and the
//! stand-in CDN), and the building blocks handlers share (errors, routing, signed URLs, file
//! serving, request context).

pub mod cas_token;
pub mod conn;
pub mod content;
pub mod ctx;
pub mod drain;
pub mod error;
pub mod route;
pub mod sign;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::auth::Auth;
use super::config::Config;
use super::net::faults::Faults;
use super::net::shaping::Shaping;
use super::net::stats::Stats;
use super::net::{Listener, NetState};
use super::store::buckets::KnownXetFiles;
use super::store::xet::XetStore;
use super::store::Store;
use sign::Signer;

/// Everything handlers share.
pub struct App {
    pub cfg: Config,
    pub store: Store,
    pub auth: Auth,
    pub net: Arc<NetState>,
    pub signer: Signer,
    /// Signs xorb fetch, grant and bridge URLs (lifetime `--xet-url-ttl`).
    pub xet_signer: Signer,
    /// The Xet CAS store; `None` on a `--no-xet` (legacy) Hub.
    pub xet: Option<Arc<XetStore>>,
    /// Xet files declared by tests through `/_emulator/xet-files` (bucket rules without a client).
    pub xet_fixtures: KnownXetFiles,
    pub hub_addr: SocketAddr,
    pub cdn_addr: SocketAddr,
}

impl App {
    /// Origin of CDN URLs: the CDN's bound address, or the host the client used to reach us
    /// when the CDN listens on a wildcard address.
    pub fn cdn_origin(&self, client_hostname: &str) -> String {
        if self.cdn_addr.ip().is_unspecified() {
            format!("http://{client_hostname}:{}", self.cdn_addr.port())
        } else {
            format!("http://{}", self.cdn_addr)
        }
    }
}

/// Binds both listeners, prints the ready line and serves until SIGINT/SIGTERM.
pub async fn run(cfg: Config) -> io::Result<()> {
    let hub = TcpListener::bind(&cfg.listen).await?;
    let hub_addr = hub.local_addr()?;
    let cdn_bind = cfg
        .cdn_listen
        .clone()
        .unwrap_or_else(|| SocketAddr::new(hub_addr.ip(), 0).to_string());
    let cdn = TcpListener::bind(&cdn_bind).await?;
    let cdn_addr = cdn.local_addr()?;

    let data = cfg.data.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&data))
        .await
        .map_err(io::Error::other)??;
    let signer = Signer::new(store.secret()?, cfg.cdn_url_ttl);
    let xet_signer = Signer::new(store.secret()?, cfg.xet_url_ttl);
    let xet = if cfg.xet {
        Some(XetStore::open(&cfg.data).await?)
    } else {
        None
    };
    let net = Arc::new(NetState {
        stats: Arc::new(Stats::default()),
        shaping: Arc::new(Shaping::new(cfg.latency_ms, cfg.bandwidth)),
        faults: Faults::new(cfg.faults.clone(), cfg.fault_seed),
    });
    let app = Arc::new(App {
        auth: Auth::new(&cfg.tokens, &cfg.orgs),
        xet_fixtures: KnownXetFiles::default(),
        cfg,
        store,
        net,
        signer,
        xet_signer,
        xet,
        hub_addr,
        cdn_addr,
    });

    let hub_router = super::api::hub_router(app.clone());
    let cdn_router = super::api::cdn::router(app.clone());
    {
        let mut out = io::stdout().lock();
        writeln!(
            out,
            "listening on http://{hub_addr} (cdn http://{cdn_addr})"
        )?;
        out.flush()?;
    }
    tracing::info!(data = %app.cfg.data.display(), "hub emulator ready");

    tokio::select! {
        r = conn::serve(hub, hub_router, Listener::Hub) => r,
        r = conn::serve(cdn, cdn_router, Listener::Cdn) => r,
        r = shutdown_signal() => r,
    }
}

async fn shutdown_signal() -> io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }?;
    tracing::info!("shutting down");
    Ok(())
}
