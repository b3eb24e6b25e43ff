//! Accept loop: one hyper HTTP/1.1 connection per socket, each with its own bandwidth bucket
//! handed to the middleware through request extensions, and its request bodies drained if a
//! handler leaves them unread (`drain`).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tower::ServiceExt;

use super::drain::DrainOnDrop;
use crate::net::shaping::Bucket;
use crate::net::{ConnCtx, Listener};

pub async fn serve(listener: TcpListener, router: Router, kind: Listener) -> io::Result<()> {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let ctx = ConnCtx {
            listener: kind,
            bucket: Arc::new(Bucket::default()),
        };
        let router = router.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ctx.clone());
                // A client that sent `Expect: 100-continue` and got a final answer instead may
                // never send its body: what would be drained is its next request. hyper closes
                // such a connection, as before.
                let expects = req.headers().contains_key(hyper::header::EXPECT);
                let req = req.map(|b| {
                    if expects {
                        Body::new(b)
                    } else {
                        Body::new(DrainOnDrop::new(b))
                    }
                });
                router.clone().oneshot(req)
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
}
