//! Caption tracks with the in-memory adapters: publishing, replacing and deleting tracks, what
//! the manifest makes of them, and every refusal (scope, tenant, state, malformed and oversized
//! files), each audited.

use std::collections::BTreeSet;
use std::sync::Arc;

use vaultstream::access::manifest::{ManifestService, Requested};
use vaultstream::access::RequestMeta;
use vaultstream::audit::Decision;
use vaultstream::captions::service::{CaptionService, MAX_CAPTION_BYTES};
use vaultstream::captions::track::TrackRequest;
use vaultstream::catalog::{ContentCatalog, ContentRecord, ContentStatus, Publication};
use vaultstream::cdn::TenantHosts;
use vaultstream::ids::{ContentId, SessionId, TenantId, VersionId};
use vaultstream::memory::{MemoryCaptionFiles, MemoryCatalog, MemoryLedger, MemoryPlaylists, MemorySessions};
use vaultstream::origin::PlaylistPath;
use vaultstream::principal::{Credential, Principal, Scope};
use vaultstream::service_secret::ServiceSecret;
use vaultstream::session_token::{Delivery, TokenClaims, TokenKind, TokenSigner};

const SRT: &str = "1\n00:00:01,000 --> 00:00:03,000\nGrüße aus München\n\n2\n00:00:04,000 --> 00:00:07,500\n東京の夜\n";
const VTT: &str = "WEBVTT\n\n00:00.500 --> 00:02.000\nBonjour à tous\n";

fn principal(tenant: &str, scope: Scope) -> Principal {
    Principal {
        tenant: TenantId::parse(tenant).unwrap(),
        subject: "creator-1".into(),
        session: SessionId::parse("s1").unwrap(),
        scopes: BTreeSet::from([scope]),
        credential: Credential::Jwt,
    }
}

fn meta() -> RequestMeta {
    RequestMeta { request_id: "r1".into(), source_ip: None, now: 1_000 }
}

struct Setup {
    service: CaptionService,
    catalog: Arc<MemoryCatalog>,
    files: Arc<MemoryCaptionFiles>,
    ledger: Arc<MemoryLedger>,
}

fn setup(status: ContentStatus, profile: &str) -> Setup {
    let mut record = ContentRecord::new(TenantId::parse("acme").unwrap(), ContentId::parse("c1").unwrap(), status, "t");
    record.profile = profile.into();
    let catalog = Arc::new(MemoryCatalog::with([record]));
    let files = Arc::new(MemoryCaptionFiles::new());
    let ledger = Arc::new(MemoryLedger::new());
    let service = CaptionService { catalog: catalog.clone(), store: files.clone(), audit: ledger.clone() };
    Setup { service, catalog, files, ledger }
}

fn declared(pairs: &[(&str, &str)]) -> TrackRequest {
    TrackRequest::from_query(pairs.iter().copied()).unwrap()
}

async fn stored(s: &Setup) -> ContentRecord {
    s.catalog.get(&TenantId::parse("acme").unwrap(), &ContentId::parse("c1").unwrap()).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_track_is_published_then_replaced_then_deleted() {
    let s = setup(ContentStatus::AwaitingUpload, "default");
    let creator = principal("acme", Scope::ContentWrite);
    let tracks = s
        .service
        .put(&creator, "c1", "de", &declared(&[("label", "Deutsch"), ("default", "true")]), SRT.as_bytes(), &meta())
        .await
        .unwrap();
    assert_eq!(tracks.len(), 1);
    let de = &tracks[0];
    assert_eq!((de.language.as_str(), de.label.as_str(), de.default, de.cues), ("de", "Deutsch", true, 2));
    assert_eq!(de.end_seconds, 7.5);
    assert!(de.file.starts_with("captions/de-") && de.file.ends_with(".vtt"), "{}", de.file);
    let published = s.files.get(&format!("acme/c1/{}", de.file)).unwrap();
    assert!(published.starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n"), "{published}");
    assert!(published.contains("00:00:04.000 --> 00:00:07.500\n東京の夜\n"));

    // A second default track takes the default from the first.
    let tracks = s.service.put(&creator, "c1", "fr", &declared(&[("default", "1")]), VTT.as_bytes(), &meta()).await.unwrap();
    let defaults: Vec<(&str, bool)> = tracks.iter().map(|t| (t.track.as_str(), t.default)).collect();
    assert_eq!(defaults, [("de", false), ("fr", true)]);

    // Replacing a track publishes a new file and retires the old one.
    let old = stored(&s).await.captions[0].file.clone();
    let tracks = s.service.put(&creator, "c1", "de", &declared(&[]), VTT.as_bytes(), &meta()).await.unwrap();
    assert_ne!(tracks[0].file, old);
    assert!(s.files.get(&format!("acme/c1/{old}")).is_none(), "the replaced file is deleted");
    assert_eq!(stored(&s).await.captions_revision, 3);

    let tracks = s.service.delete(&creator, "c1", "de", &meta()).await.unwrap();
    assert_eq!(tracks.len(), 1);
    assert_eq!(s.files.keys(), [format!("acme/c1/{}", tracks[0].file)]);
    let err = s.service.delete(&creator, "c1", "de", &meta()).await.unwrap_err();
    assert_eq!((err.status(), err.to_string()), (404, "caption track de of content c1 does not exist".to_string()));

    let actions: Vec<(String, Decision)> = s.ledger.records().iter().map(|r| (r.event.action.clone(), r.event.decision)).collect();
    assert_eq!(actions.iter().filter(|(a, d)| a == "captions.write" && *d == Decision::Allow).count(), 3);
    assert_eq!(actions.iter().filter(|(a, _)| a == "captions.delete").count(), 2);
}

#[tokio::test]
async fn fmp4_titles_map_cues_from_zero() {
    let s = setup(ContentStatus::Ready, "hevc-4k");
    let tracks = s.service.put(&principal("acme", Scope::ContentWrite), "c1", "en", &declared(&[]), SRT.as_bytes(), &meta()).await.unwrap();
    assert!(s.files.get(&format!("acme/c1/{}", tracks[0].file)).unwrap().contains("X-TIMESTAMP-MAP=MPEGTS:0,"));
}

#[tokio::test]
async fn refusals_say_why_and_store_nothing() {
    let s = setup(ContentStatus::Ready, "default");
    let creator = principal("acme", Scope::ContentWrite);
    let none = declared(&[]);
    let cases = [
        (
            principal("acme", Scope::ContentRead),
            "c1",
            "en",
            SRT.as_bytes().to_vec(),
            403,
            "changing captions needs the content:write scope",
        ),
        (principal("other", Scope::ContentWrite), "c1", "en", SRT.as_bytes().to_vec(), 404, "content c1 does not exist"),
        (creator.clone(), "../c1", "en", SRT.as_bytes().to_vec(), 400, "invalid content id"),
        (creator.clone(), "c1", "en/../x", SRT.as_bytes().to_vec(), 400, "invalid caption track name"),
        (creator.clone(), "c1", "en", b"1\n00:00:05,000 --> 00:00:01,000\nx\n".to_vec(), 400, "captions: line 2: the cue ends"),
        (creator.clone(), "c1", "en", b"\xff\xfe\x00".to_vec(), 400, "save the file as UTF-8"),
        (creator.clone(), "c1", "en", vec![b'x'; MAX_CAPTION_BYTES + 1], 413, "the most a track may be is 1048576"),
    ];
    for (who, content, track, body, status, message) in cases {
        let err = s.service.put(&who, content, track, &none, &body, &meta()).await.unwrap_err();
        assert_eq!(err.status(), status, "{err}");
        assert!(err.to_string().contains(message), "{err} (wanted {message:?})");
    }
    assert!(s.files.keys().is_empty());
    assert!(stored(&s).await.captions.is_empty());
    let denials = s.ledger.records().iter().filter(|r| r.event.decision == Decision::Deny).count();
    assert_eq!(denials, 7, "every refusal is audited");
    assert!(s.ledger.records().iter().all(|r| !r.event.resource.contains("..")), "raw path text never reaches the ledger");

    let failed = setup(ContentStatus::FailedInvalid, "default");
    let err = failed.service.put(&creator, "c1", "en", &none, SRT.as_bytes(), &meta()).await.unwrap_err();
    assert_eq!(err.status(), 409, "{err}");
    assert!(err.to_string().contains("it will never play"), "{err}");
}

#[tokio::test]
async fn the_manifest_lists_tracks_and_serves_their_playlists() {
    let s = setup(ContentStatus::Ready, "default");
    let creator = principal("acme", Scope::ContentWrite);
    s.service.put(&creator, "c1", "en", &declared(&[("label", "English"), ("default", "true")]), SRT.as_bytes(), &meta()).await.unwrap();
    s.service
        .put(&creator, "c1", "fr-forced", &declared(&[("language", "fr"), ("forced", "true")]), VTT.as_bytes(), &meta())
        .await
        .unwrap();
    let mut record = stored(&s).await;
    let version = VersionId::parse("v1").unwrap();
    record.publication = Some(Publication {
        version: version.clone(),
        renditions: vec![],
        duration_seconds: Some(30.0),
        poster: None,
        thumbnails: vec![],
        storyboard: None,
        cmaf: None,
    });
    let captions = record.captions.clone();
    s.catalog.insert(record);
    let playlists = Arc::new(MemoryPlaylists::new());
    let (tenant, content) = (TenantId::parse("acme").unwrap(), ContentId::parse("c1").unwrap());
    let master = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS=\"avc1.64001e,mp4a.40.2\"\n360p/index.m3u8\n";
    playlists.put(&tenant, &content, &version, &PlaylistPath::Master, master);
    let secret = ServiceSecret::from_bytes(vec![5; 32]).unwrap();
    let tokens = Arc::new(TokenSigner::new(&secret));
    let hosts = Arc::new(TenantHosts::new(&secret, "example.com"));
    let manifests = ManifestService {
        catalog: s.catalog.clone(),
        playlists,
        revocations: Arc::new(MemorySessions::new()),
        audit: Arc::new(MemoryLedger::new()),
        hosts: hosts.clone(),
        tokens: tokens.clone(),
        api_base_url: "https://api.example.com".into(),
        licenses: Default::default(),
    };
    let claims = TokenClaims {
        kind: TokenKind::Playback,
        tenant: tenant.clone(),
        content: content.clone(),
        session: SessionId::parse("s1").unwrap(),
        key_id: None,
        delivery: Delivery::Raw,
        expires_at: 2_000,
    };
    let token = tokens.mint(&claims).unwrap();
    let text = manifests.serve("c1", Requested::Master, Some(&token), &meta()).await.unwrap();
    assert!(text.contains(&format!("#EXT-X-MEDIA:TYPE=SUBTITLES,URI=\"https://api.example.com/v1/manifests/c1/captions/en/index.m3u8?token={token}\",GROUP-ID=\"subs\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=YES,AUTOSELECT=YES")), "{text}");
    assert!(text.contains("LANGUAGE=\"fr\",NAME=\"fr\",AUTOSELECT=YES,FORCED=YES"), "{text}");
    assert!(text.contains("SUBTITLES=\"subs\""), "{text}");

    let en = manifests.serve("c1", Requested::Captions("en"), Some(&token), &meta()).await.unwrap();
    let file_url = format!("{}{}", hosts.content_base(&tenant, &content), captions[0].file);
    assert!(en.contains(&format!("#EXTINF:30,\n{file_url}\n")), "{en}");
    let err = manifests.serve("c1", Requested::Captions("de"), Some(&token), &meta()).await.unwrap_err();
    assert_eq!(err.status(), 404);
    let err = manifests.serve("c1", Requested::Captions("en"), Some("forged"), &meta()).await.unwrap_err();
    assert_eq!(err.status(), 401);
}
