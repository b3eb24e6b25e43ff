//! A xorb's footer, fetched by suffix range from the xorb's signed URL.
//!
//! The footer (`XorbObjectInfo` followed by its length as a little-endian u32) holds every
//! chunk's hash; xet-client's download path never looks at it (reconstruction answers carry
//! no chunk hashes), so verifying chunks needs this one extra GET per xorb. The first request
//! asks for the last [`FIRST_SUFFIX`] bytes, enough for a footer of ~1,300 chunks; a bigger
//! footer costs a second, exact request.

use bytes::Bytes;
use reqwest::header::HeaderValue;
use reqwest::Method;
use url::Url;

use crate::hub::client::HubClient;
use crate::hub::error::{ErrorContext, HubError};
use crate::hub::transport::{Deadline, Request};

/// First suffix asked for.
const FIRST_SUFFIX: u64 = 64 << 10;
/// Largest footer accepted: a 64 MiB xorb of 8 KiB chunks has ~8,000 chunks, ~400 KB of footer.
pub const MAX_FOOTER: u64 = 4 << 20;

impl HubClient {
    /// The footer bytes of the xorb served at `url` (a signed CAS URL: sent without the Hub
    /// token): `XorbObjectInfo` plus its 4-byte length, nothing before it. Not verified here.
    pub async fn xorb_footer(&self, url: &str) -> Result<Bytes, HubError> {
        let ctx = self.ctx(ErrorContext::label("xorb footer"));
        let r = async {
            let url = Url::parse(url)
                .map_err(|e| HubError::protocol(&ctx.target(), format!("bad xorb URL: {e}")))?;
            let tail = self.suffix(&url, FIRST_SUFFIX, &ctx).await?;
            let info_len = footer_length(&tail)
                .ok_or_else(|| HubError::protocol(&ctx.target(), "xorb shorter than 4 bytes"))?;
            let want = info_len + 4;
            if want > MAX_FOOTER {
                return Err(HubError::protocol(
                    &ctx.target(),
                    format!("xorb footer of {want} bytes refused"),
                ));
            }
            if want <= tail.len() as u64 {
                return Ok(tail.slice(tail.len() - want as usize..));
            }
            let tail = self.suffix(&url, want, &ctx).await?;
            if (tail.len() as u64) < want {
                return Err(HubError::protocol(
                    &ctx.target(),
                    "xorb shorter than its footer",
                ));
            }
            Ok(tail.slice(tail.len() - want as usize..))
        }
        .await;
        self.count(r)
    }

    /// The last `n` bytes of `url` (fewer if the object is shorter).
    async fn suffix(&self, url: &Url, n: u64, ctx: &ErrorContext) -> Result<Bytes, HubError> {
        let t = &self.inner.transport;
        let range = HeaderValue::from_str(&format!("bytes=-{n}"))
            .map_err(|_| HubError::invalid("invalid range"))?;
        let req = Request::new(
            Method::GET,
            url.clone(),
            Deadline::Total(self.inner.config.api_timeout),
            ctx.clone(),
        )
        .header("range", range)
        .max_body(n as usize);
        let sent = t.send(&req).await?;
        if !matches!(sent.status().as_u16(), 200 | 206) {
            return Err(t.error_from(sent, ctx).await);
        }
        t.read_body(sent, ctx).await
    }
}

/// The footer's info length, from the last 4 bytes of a xorb.
fn footer_length(tail: &[u8]) -> Option<u64> {
    let at = tail.len().checked_sub(4)?;
    let b: [u8; 4] = tail[at..].try_into().ok()?;
    Some(u64::from(u32::from_le_bytes(b)))
}
