//! Feed import, the subscriptions: a creator subscribes the tenant to an RSS 2.0, Atom or Media
//! RSS feed (`POST /v1/feeds`), lists them with what each poll found (`GET /v1/feeds`), and
//! unsubscribes (`DELETE /v1/feeds/{feed_id}`). The poller ([`crate::ingest::feed_poll`]) reads
//! every feed on a schedule and imports each new media item once through the URL import.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::access::{record, AccessError, Decided, RequestMeta};
use crate::audit::AuditSink;
use crate::ids::FeedId;
use crate::ingest::import::MAX_URL_BYTES;
use crate::ingest::ports::{Feed, FeedStore, FeedStoreError};
use crate::ingest::url_guard::{self, shown, FetchPolicy};
use crate::ladder;
use crate::principal::{Principal, Scope};

/// Feeds one tenant may follow.
pub const MAX_FEEDS_PER_TENANT: usize = 100;

/// `POST /v1/feeds`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedRequest {
    pub url: String,
    /// The encoding profile of every title imported from it (`default` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// A feed as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedView {
    pub feed_id: String,
    /// Without its query.
    pub url: String,
    pub profile: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_polled_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_refusal: Option<String>,
    pub imported: u32,
    pub refused: u32,
}

pub fn view(feed: &Feed) -> FeedView {
    FeedView {
        feed_id: feed.feed_id.to_string(),
        url: Url::parse(&feed.url).map(|u| shown(&u)).unwrap_or_default(),
        profile: feed.profile.clone(),
        created_at: feed.created_at.clone(),
        last_polled_at: feed.last_polled_at.clone(),
        last_error: feed.last_error.clone(),
        last_refusal: feed.last_refusal.clone(),
        imported: feed.imported,
        refused: feed.refused,
    }
}

fn bad(message: impl Into<String>) -> AccessError {
    AccessError::BadRequest(message.into())
}

fn unavailable(e: FeedStoreError) -> AccessError {
    AccessError::Unavailable(e.to_string())
}

pub struct FeedService {
    pub store: Arc<dyn FeedStore>,
    pub audit: Arc<dyn AuditSink>,
    pub policy: FetchPolicy,
}

impl FeedService {
    /// `POST /v1/feeds`.
    pub async fn subscribe(&self, principal: &Principal, request: &FeedRequest, meta: &RequestMeta) -> Result<Feed, AccessError> {
        let outcome = self.decide_subscribe(principal, request).await;
        let resource = match &outcome {
            Ok(feed) => format!("feed/{}", feed.feed_id),
            Err(_) => "feed/new".to_string(),
        };
        let decided = Decided { tenant: principal.tenant.clone(), actor: &principal.subject, action: "feed.subscribe", resource };
        record(self.audit.as_ref(), decided, meta, outcome).await
    }

    async fn decide_subscribe(&self, principal: &Principal, request: &FeedRequest) -> Result<Feed, AccessError> {
        if !principal.may(Scope::ContentWrite) {
            return Err(AccessError::Forbidden("subscribing to a feed needs the content:write scope".into()));
        }
        if request.url.len() > MAX_URL_BYTES {
            return Err(bad(format!("url: must be at most {MAX_URL_BYTES} bytes")));
        }
        let url =
            Url::parse(request.url.trim()).map_err(|e| bad(format!("url: not a URL ({e}); give the feed's absolute https:// address")))?;
        url_guard::check_url(&url, self.policy).map_err(|refused| bad(format!("url: {refused}")))?;
        if let Some(profile) = &request.profile {
            if ladder::Profile::built_in(profile).is_none() {
                return Err(bad(format!("profile: {profile:?} is not one of {}", ladder::BUILT_IN_PROFILES.join(", "))));
            }
        }
        let existing = self.store.list(&principal.tenant).await.map_err(unavailable)?;
        if let Some(same) = existing.iter().find(|f| f.url == url.as_str()) {
            return Err(AccessError::WrongState(format!("the tenant already follows this feed as {}", same.feed_id)));
        }
        if existing.len() >= MAX_FEEDS_PER_TENANT {
            return Err(AccessError::WrongState(format!(
                "the tenant follows {MAX_FEEDS_PER_TENANT} feeds already, the most it may; unsubscribe from one first"
            )));
        }
        let feed_id = FeedId::parse(uuid::Uuid::now_v7().simple().to_string()).map_err(|e| AccessError::Internal(e.to_string()))?;
        let feed = Feed {
            tenant: principal.tenant.clone(),
            feed_id,
            url: url.to_string(),
            profile: request.profile.clone().unwrap_or_else(|| "default".into()),
            created_at: crate::clock::now_rfc3339(),
            created_by: principal.subject.clone(),
            etag: None,
            last_modified: None,
            last_polled_at: None,
            last_error: None,
            last_refusal: None,
            seen: Vec::new(),
            imported: 0,
            refused: 0,
        };
        self.store.create(&feed).await.map_err(unavailable)?;
        Ok(feed)
    }

    /// `GET /v1/feeds`: the caller's tenant's feeds.
    pub async fn list(&self, principal: &Principal, meta: &RequestMeta) -> Result<Vec<Feed>, AccessError> {
        let outcome = if principal.may(Scope::ContentWrite) {
            self.store.list(&principal.tenant).await.map_err(unavailable)
        } else {
            Err(AccessError::Forbidden("listing feeds needs the content:write scope".into()))
        };
        let decided =
            Decided { tenant: principal.tenant.clone(), actor: &principal.subject, action: "feed.list", resource: "feed/*".into() };
        record(self.audit.as_ref(), decided, meta, outcome).await
    }

    /// `DELETE /v1/feeds/{feed_id}`. Titles already imported stay.
    pub async fn remove(&self, principal: &Principal, feed_id: &str, meta: &RequestMeta) -> Result<(), AccessError> {
        let outcome = async {
            if !principal.may(Scope::ContentWrite) {
                return Err(AccessError::Forbidden("unsubscribing needs the content:write scope".into()));
            }
            let feed = FeedId::parse(feed_id).map_err(|e| bad(e.to_string()))?;
            match self.store.remove(&principal.tenant, &feed).await.map_err(unavailable)? {
                true => Ok(()),
                false => Err(AccessError::NotFound(format!("feed {feed}"))),
            }
        }
        .await;
        let decided = Decided {
            tenant: principal.tenant.clone(),
            actor: &principal.subject,
            action: "feed.unsubscribe",
            resource: format!("feed/{feed_id}"),
        };
        record(self.audit.as_ref(), decided, meta, outcome).await
    }
}
