//! `GET /v1/manifests/{content_id}/master.m3u8?token=…` and
//! `GET /v1/manifests/{content_id}/{rendition}/index.m3u8?token=…`: personalised playlists, and
//! the CMAF packaging's `cmaf.m3u8`, `{rendition}/video.m3u8`, `{rendition}/audio.m3u8`
//! (`&keyformat=clearkey|identity`) and `manifest.mpd`.

use lambda_http::{Body, Request, Response};
use tracing::Instrument;
use vaultstream::access::manifest::{ManifestService, Requested};
use vaultstream::access::AccessError;
use vaultstream::cmaf::KeyFormat;

use crate::env::{ConfigError, Env};
use crate::http::{access_error, finish, meta, path_after, private, query};
use crate::runtime::HttpFunction;
use crate::wiring::{self, Aws};

pub struct Manifest {
    pub service: ManifestService,
}

#[async_trait::async_trait]
impl HttpFunction for Manifest {
    const NAME: &'static str = "manifest";

    async fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError> {
        let secret = wiring::service_secret(env, aws).await?;
        let service = ManifestService {
            catalog: wiring::catalog(env, aws)?,
            playlists: std::sync::Arc::new(vaultstream::aws::S3Playlists::new(
                aws.s3().clone(),
                env.required("VAULTSTREAM_ORIGIN_BUCKET")?,
            )),
            revocations: wiring::sessions(env, aws)?,
            audit: wiring::audit(env, aws)?,
            hosts: wiring::tenant_hosts(env, &secret)?,
            tokens: wiring::token_signer(&secret),
            api_base_url: wiring::api_base_url(env)?,
            licenses: wiring::license_servers(env)?,
        };
        Ok(Manifest { service })
    }

    async fn handle(&self, request: Request) -> Response<Body> {
        let meta = meta(&request);
        let parts = path_after(&request, "/v1/manifests/").unwrap_or_default();
        // Which key tag a CMAF playlist carries (unknown values get the default, ClearKey).
        let keyformat = query(&request, "keyformat").and_then(|k| KeyFormat::parse(&k)).unwrap_or_default();
        let (content_id, requested) = match parts.as_slice() {
            [id, "master.m3u8"] => (Some(id.to_string()), Requested::Master),
            [id, "cmaf.m3u8"] => (Some(id.to_string()), Requested::CmafMaster(keyformat)),
            [id, "manifest.mpd"] => (Some(id.to_string()), Requested::Mpd),
            [id, rendition, file @ ("video.m3u8" | "audio.m3u8")] => {
                (Some(id.to_string()), Requested::CmafMedia(rendition, file, keyformat))
            }
            [id, "captions", track, "index.m3u8"] => (Some(id.to_string()), Requested::Captions(track)),
            [id, rendition, "index.m3u8"] => (Some(id.to_string()), Requested::Rendition(rendition)),
            [id, rendition, "iframes.m3u8"] => (Some(id.to_string()), Requested::IFrames(rendition)),
            _ => (None, Requested::Master),
        };
        let span = tracing::info_span!("manifest", request_id = %meta.request_id, tenant = tracing::field::Empty, content_id = content_id.as_deref().unwrap_or("-"));
        async {
            let Some(content_id) = content_id else {
                return access_error(&AccessError::NotFound("playlist".into()));
            };
            let token = query(&request, "token");
            match self.service.serve(&content_id, requested, token.as_deref(), &meta).await {
                Ok(playlist) => {
                    let playlist_name = match requested {
                        Requested::Master => "master".to_string(),
                        Requested::Rendition(r) => r.to_string(),
                        Requested::IFrames(r) => format!("{r}/iframes"),
                        Requested::Captions(t) => format!("captions/{t}"),
                        Requested::CmafMaster(_) => "cmaf".to_string(),
                        Requested::CmafMedia(r, file, _) => format!("{r}/{file}"),
                        Requested::Mpd => "mpd".to_string(),
                    };
                    tracing::info!(status = 200, rendition = %playlist_name, "playlist served");
                    finish(private(200, requested.content_type()), Body::Text(playlist))
                }
                Err(e) => access_error(&e),
            }
        }
        .instrument(span)
        .await
    }
}
