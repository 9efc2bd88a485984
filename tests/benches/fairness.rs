//! One tenant attacking, another's latency: the doors a tenant shares with others (the feed poll,
//! the import queue's consumer), timed for a victim tenant with the doors idle and while an
//! attacker holds them with slow servers, side by side in one run. The figure is the ratio
//! attack / idle of the victim's median (the goal: at most 1.5).
//!
//! - `feed`: one poll of every subscribed feed (the real `FeedPoller` over the in-memory stores
//!   and the guarded fetcher, against servers on 127.0.0.1), timed until the victim's new item
//!   is queued for import. Under attack the attacker follows 100 feeds whose server trickles
//!   1 KiB a second: above the feed's rate floor, so each would hold a fetch for the whole 30 s.
//! - `import`: `POST /v1/content/import` on the local stack (`vaultstream dev`) of a small file,
//!   timed until its server is asked for the file (the import has its slot and fetches); each
//!   round's title reaches READY before the next round starts. Under
//!   attack the attacker has 8 imports from a server trickling 1 KiB a second, above the import
//!   rate floor set for the run (512 bytes in 10 s), so each would hold its slot for the whole
//!   time limit.
//!
//! `NO_ATTACK=1` runs the import rounds with no attacker at all: the control that shows how much
//! the phases differ by the emulator's drift alone.
//!
//! `ROUNDS` (default 5) victim measurements of each, idle and attacked (for imports, idle rounds
//! both before and after the attacked ones, as the emulator slows while its tables grow).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vaultstream::access::RequestMeta;
use vaultstream::ids::{SessionId, TenantId};
use vaultstream::ingest::feed_poll::FeedPoller;
use vaultstream::ingest::feeds::{FeedRequest, FeedService};
use vaultstream::ingest::import::ImportService;
use vaultstream::ingest::url_fetch::GuardedFetcher;
use vaultstream::ingest::url_guard::FetchPolicy;
use vaultstream::memory::{MemoryCatalog, MemoryFeeds, MemoryLedger, MemoryQueues};
use vaultstream::principal::{Credential, Principal, Scope};
use vaultstream_tests::local::{get_json, mint, Running};
use vaultstream_tests::origin::{Server, Slowloris};

const LOCAL: FetchPolicy = FetchPolicy { allow_http: true, allow_loopback: true };

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn creator(tenant: &str) -> Principal {
    Principal {
        tenant: TenantId::parse(tenant).unwrap(),
        subject: format!("{tenant}-producer"),
        session: SessionId::parse("s1").unwrap(),
        scopes: Scope::parse_list("content:write content:read"),
        credential: Credential::Jwt,
    }
}

fn rss(guid: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Shows</title><item><guid>{guid}</guid><title>Episode {guid}</title>\
         <enclosure url=\"http://127.0.0.1/{guid}.mp4\" type=\"video/mp4\"/></item></channel></rss>"
    )
    .into_bytes()
}

/// One poll of every feed, until the victim's item `guid` is queued: seconds.
async fn feed_round(victim: &Server, attacker: Option<&Slowloris>, guid: &str) -> f64 {
    victim.set("/victim.rss", "200 OK\r\ncontent-type: application/rss+xml", rss(guid));
    let (feeds, queues, ledger) = (Arc::new(MemoryFeeds::new()), Arc::new(MemoryQueues::new()), Arc::new(MemoryLedger::new()));
    let service = FeedService { store: feeds.clone(), audit: ledger.clone(), policy: LOCAL };
    let meta = RequestMeta { request_id: "bench".into(), source_ip: None, now: vaultstream::clock::now_seconds() };
    if let Some(attacker) = attacker {
        for n in 0..100 {
            let request = FeedRequest { url: attacker.url(&format!("/slow-{n}.rss")), profile: None };
            service.subscribe(&creator("abuser"), &request, &meta).await.unwrap();
        }
    }
    let request = FeedRequest { url: victim.url("/victim.rss"), profile: None };
    service.subscribe(&creator("acme"), &request, &meta).await.unwrap();
    let poller = FeedPoller {
        feeds,
        imports: ImportService { catalog: Arc::new(MemoryCatalog::new()), queue: queues.clone(), audit: ledger.clone(), policy: LOCAL },
        fetcher: Arc::new(GuardedFetcher::new(LOCAL, Duration::from_secs(2), Duration::from_secs(60))),
        audit: ledger,
    };
    let started = Instant::now();
    let queued = async {
        while !queues.imports().iter().any(|m| m.url.ends_with(&format!("/{guid}.mp4"))) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    // The poll goes on with the attacker's feeds; the victim's figure is when its item is queued.
    tokio::select! {
        _ = queued => {}
        _ = poller.poll_all("bench") => {
            assert!(queues.imports().iter().any(|m| m.url.ends_with(&format!("/{guid}.mp4"))), "the victim's item was not queued");
        }
    }
    started.elapsed().as_secs_f64()
}

/// An import of the victim's file, until its server is asked for the file (the import got its
/// slot and began to fetch: what another tenant's imports could delay): seconds.
async fn import_round(http: &reqwest::Client, api: &str, token: &str, files: &Server, path: &str) -> f64 {
    let url = files.url(path);
    let started = Instant::now();
    let accepted: Value = http
        .post(format!("{api}/v1/content/import"))
        .bearer_auth(token)
        .json(&json!({"url": url, "title": "On time"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = accepted["content_id"].as_str().unwrap_or_else(|| panic!("{accepted}")).to_string();
    while files.hits(path) == 0 {
        assert!(started.elapsed() < Duration::from_secs(600), "the victim's import never ran");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed().as_secs_f64();
    // Untimed: the title is transcoded before the next round, so no round competes with an
    // earlier one's for the CPU.
    let view = loop {
        let status = view_status(http, api, token, &id).await;
        if matches!(status.as_str(), "READY" | "PARTIAL" | "FAILED" | "FAILED_INVALID") {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(view, "READY", "the victim's title");
    // The job's end (its event, the emulator's snapshot) passes too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    took
}

async fn view_status(http: &reqwest::Client, api: &str, token: &str, id: &str) -> String {
    get_json(http, format!("{api}/v1/content/{id}"), token).await["status"].as_str().unwrap_or_default().to_string()
}

fn row(door: &str, idle: Vec<f64>, attacked: Vec<f64>) {
    let range = |v: &[f64]| format!("{:.3}-{:.3}", v.iter().copied().fold(f64::MAX, f64::min), v.iter().copied().fold(0.0, f64::max));
    let (idle_range, attacked_range) = (range(&idle), range(&attacked));
    let (idle, attacked) = (median(idle), median(attacked));
    println!("{door:<8} {idle:>12.3} {attacked:>14.3} {:>8.2}   (idle {idle_range}, attacked {attacked_range})", attacked / idle);
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(5);
    println!("victim latency, median of {rounds} (seconds); ratio = attacked / idle (goal <= 1.5)");
    println!("{:<8} {:>12} {:>14} {:>8}", "door", "idle", "attacked", "ratio");

    // Feeds: idle and attacked rounds take turns.
    let victim = Server::start(HashMap::new()).await;
    let slow_feeds = Slowloris::serving(1024, "application/rss+xml", 1 << 20).await;
    let (mut idle, mut attacked) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        idle.push(feed_round(&victim, None, &format!("idle-{round}")).await);
        attacked.push(feed_round(&victim, Some(&slow_feeds), &format!("attacked-{round}")).await);
    }
    slow_feeds.stop();
    row("feed", idle, attacked);

    // Imports on the local stack: idle rounds, then the attack starts and the same again.
    let root = tempfile::tempdir().unwrap();
    let files = Server::start(HashMap::new()).await;
    let state_dir = root.path().join("stack");
    let stack = Running::start_with("dev", &state_dir, &["--import-allow-loopback"], &[("VAULTSTREAM_IMPORT_MIN_RATE", "512/10")]);
    let api = stack.url("api_url");
    let http = reqwest::Client::new();
    let token = mint(&state_dir, "acme", "importer", "content:write content:read");
    let bytes = vaultstream_tests::local::clip(1);
    let file = |name: String| {
        let mut tagged = bytes.clone();
        tagged.extend_from_slice(name.as_bytes());
        let path = format!("/{name}.mp4");
        files.set(&path, "200 OK\r\ncontent-type: video/mp4", tagged);
        path
    };
    // Untimed: the first import warms the stack (clients, the emulator's tables).
    import_round(&http, &api, &token, &files, &file("warm-up".into())).await;
    let mut idle = Vec::new();
    for round in 0..rounds {
        idle.push(import_round(&http, &api, &token, &files, &file(format!("idle-{round}"))).await);
    }
    let slow = Slowloris::start(1024).await;
    let evil = mint(&state_dir, "abuser", "importer", "content:write content:read");
    let attackers = if std::env::var("NO_ATTACK").is_ok() { 0 } else { 8 };
    for n in 0..attackers {
        http.post(format!("{api}/v1/content/import"))
            .bearer_auth(&evil)
            .json(&json!({"url": slow.url(&format!("/{n}.mp4")), "title": "slow"}))
            .send()
            .await
            .unwrap();
    }
    while attackers > 0 && slow.open() < 1 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut attacked = Vec::new();
    for round in 0..rounds {
        attacked.push(import_round(&http, &api, &token, &files, &file(format!("attacked-{round}"))).await);
    }
    let held = slow.open();
    // The attack ends (its imports are cut by the rate floor, the rest refused), and the idle
    // rounds are taken again: the emulator slows as its tables grow, so the reference is idle
    // rounds on both sides of the attacked ones.
    slow.stop();
    let settled = Instant::now();
    loop {
        let list = get_json(&http, format!("{api}/v1/content?limit=50"), &evil).await;
        let waiting = list["items"].as_array().map_or(0, |items| items.iter().filter(|i| i["status"] == "AWAITING_UPLOAD").count());
        if waiting == 0 || settled.elapsed() > Duration::from_secs(300) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for round in 0..rounds {
        idle.push(import_round(&http, &api, &token, &files, &file(format!("idle-after-{round}"))).await);
    }
    row("import", idle, attacked);
    println!("(idle: {rounds} rounds before the attack and {rounds} after; the attacker held {held} connection(s) when the victim's last attacked import began)");
    stack.interrupt();
}
