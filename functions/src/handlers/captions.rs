//! `PUT /v1/content/{content_id}/captions/{track}?language=&label=&default=&forced=` (the body is
//! the SRT or WebVTT file itself) and `DELETE /v1/content/{content_id}/captions/{track}`.

use lambda_http::http::Method;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use tracing::Instrument;
use vaultstream::access::AccessError;
use vaultstream::captions::service::CaptionService;
use vaultstream::captions::track::TrackRequest;

use crate::env::{ConfigError, Env};
use crate::http::{access_error, json_response, meta, path_after, principal};
use crate::runtime::HttpFunction;
use crate::wiring::{self, Aws};

pub struct Captions {
    pub service: CaptionService,
}

#[async_trait::async_trait]
impl HttpFunction for Captions {
    const NAME: &'static str = "captions";

    async fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError> {
        let origin_bucket = wiring::name(env, "VAULTSTREAM_ORIGIN_BUCKET")?;
        let service = CaptionService {
            catalog: wiring::catalog(env, aws)?,
            store: std::sync::Arc::new(vaultstream::aws::S3CaptionFiles::new(aws.s3().clone(), origin_bucket)),
            audit: wiring::audit(env, aws)?,
        };
        Ok(Captions { service })
    }

    async fn handle(&self, request: Request) -> Response<Body> {
        let meta = meta(&request);
        let route = path_after(&request, "/v1/content/").and_then(|parts| match parts.as_slice() {
            [id, "captions", track] => Some((id.to_string(), track.to_string())),
            _ => None,
        });
        let content_id = route.as_ref().map(|(id, _)| id.as_str()).unwrap_or("-");
        let span = tracing::info_span!("captions", request_id = %meta.request_id, tenant = tracing::field::Empty, content_id = %content_id);
        async {
            let Some((content_id, track)) = &route else {
                return access_error(&AccessError::NotFound("route".into()));
            };
            let Some(principal) = principal(&request) else {
                return access_error(&AccessError::Unauthenticated("no verified session reached this route".into()));
            };
            tracing::Span::current().record("tenant", principal.tenant.as_str());
            let result = match *request.method() {
                Method::PUT => {
                    let query = request.query_string_parameters();
                    match TrackRequest::from_query(query.iter()) {
                        Ok(declared) => {
                            let body: &[u8] = match request.body() {
                                Body::Text(t) => t.as_bytes(),
                                Body::Binary(b) => b,
                                _ => &[],
                            };
                            self.service.put(&principal, content_id, track, &declared, body, &meta).await
                        }
                        Err(e) => Err(e),
                    }
                }
                Method::DELETE => self.service.delete(&principal, content_id, track, &meta).await,
                _ => Err(AccessError::NotFound("route".into())),
            };
            match result {
                Ok(tracks) => {
                    tracing::info!(status = 200, tracks = tracks.len(), "captions changed");
                    json_response(200, &json!({"content_id": content_id, "captions": tracks}))
                }
                Err(e) => access_error(&e),
            }
        }
        .instrument(span)
        .await
    }
}
