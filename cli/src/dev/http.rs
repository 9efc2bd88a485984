//! The local stack's two HTTP/1.1 listeners (API and edge) on hyper: bind with an error that
//! names the port, read each request whole (bounded), answer with a [`Reply`], stop on shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{HeaderMap, Method, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Reply { status, headers, body: body.into() }
}

/// The contract's error shape.
pub fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    let mut reply = respond(status, "application/json", serde_json::json!({"error": {"code": code, "message": message}}).to_string());
    reply.headers.insert("cache-control", HeaderValue::from_static("no-store"));
    reply
}

/// A request read whole.
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub peer: SocketAddr,
}

/// Binds 127.0.0.1:`port` (0 picks a free one); a taken port is an error that names it.
pub async fn bind(port: u16, what: &str, flag: &str) -> Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port)).await.with_context(|| {
        format!("cannot listen on 127.0.0.1:{port} for the {what}: the port is taken or not allowed; stop what uses it or pass {flag}")
    })
}

/// Serves `listener` until `shutdown` turns true. Bodies above `max_body` get 413 unread.
pub fn serve<H, F>(listener: TcpListener, mut shutdown: watch::Receiver<bool>, max_body: usize, handler: H) -> tokio::task::JoinHandle<()>
where
    H: Fn(Request) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                _ = shutdown.changed() => break,
            };
            let handler = handler.clone();
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(into_response(read(request, peer, max_body, handler).await)) }
            });
            tokio::spawn(async move {
                if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                    tracing::debug!(error = %e, "connection ended");
                }
            });
        }
    })
}

async fn read<H, F>(request: hyper::Request<Incoming>, peer: SocketAddr, max_body: usize, handler: H) -> Reply
where
    H: Fn(Request) -> F,
    F: Future<Output = Reply>,
{
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, max_body).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", &format!("the request body exceeds {max_body} bytes"));
        }
    };
    handler(Request { method: parts.method, uri: parts.uri, headers: parts.headers, body, peer }).await
}

fn into_response(reply: Reply) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(reply.body));
    *response.status_mut() = reply.status;
    *response.headers_mut() = reply.headers;
    response
}
