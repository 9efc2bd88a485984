//! Feed import against the local stack, as a publisher uses it: `POST /v1/feeds` subscribes the
//! tenant to an RSS feed on a web server (on 127.0.0.1, allowed with `--import-allow-loopback`);
//! the stack's schedule reads it, imports its item's enclosure, and the title reaches READY
//! described by the item (source `feed`); later polls import nothing twice; a billion-laughs feed
//! is refused with its reason on the feed; unsubscribing stops it. Only processes, files and HTTP.

use std::collections::HashMap;

use serde_json::{json, Value};
use vaultstream_tests::local::{clip, get_json, mint, until, Running};
use vaultstream_tests::origin::Server;

#[tokio::test]
async fn a_feed_item_becomes_a_ready_title_once_and_a_hostile_feed_is_refused() {
    let rss = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Shows</title><link>http://127.0.0.1/</link>\
               <item><guid isPermaLink=\"false\">show-1-ep-1</guid><title>Episode 1: Pilot</title>\
               <description>The first one</description><pubDate>Fri, 20 Nov 2026 08:00:00 GMT</pubDate>\
               <enclosure url=\"/media/ep1.mp4\" type=\"video/mp4\" length=\"150000\"/></item></channel></rss>";
    let laughs = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;\">]>\
                  <rss version=\"2.0\"><channel><title>&lol2;</title></channel></rss>";
    let server = Server::start(HashMap::from([
        ("/shows.rss".to_string(), ("200 OK\r\ncontent-type: application/rss+xml".to_string(), rss.as_bytes().to_vec())),
        ("/media/ep1.mp4".to_string(), ("200 OK\r\ncontent-type: video/mp4".to_string(), clip(2))),
        ("/laughs.rss".to_string(), ("200 OK\r\ncontent-type: application/rss+xml".to_string(), laughs.as_bytes().to_vec())),
    ]))
    .await;

    let root = tempfile::tempdir().unwrap();
    let state_dir = root.path().join("stack");
    let stack = Running::start("dev", &state_dir, &["--import-allow-loopback"]);
    let api = stack.url("api_url");
    let token = mint(&state_dir, "acme", "publisher", "content:write content:read");
    let http = reqwest::Client::new();

    let subscribed =
        http.post(format!("{api}/v1/feeds")).bearer_auth(&token).json(&json!({"url": server.url("/shows.rss")})).send().await.unwrap();
    assert_eq!(subscribed.status(), 201);
    let feed: Value = subscribed.json().await.unwrap();
    let feed_id = feed["feed_id"].as_str().unwrap().to_string();
    assert_eq!((&feed["imported"], &feed["url"]), (&json!(0), &json!(server.url("/shows.rss"))), "{feed}");

    // The schedule reads the feed and imports its item; the title is the item's.
    let ready = until(180, async || {
        let list = get_json(&http, format!("{api}/v1/content"), &token).await;
        list["items"].as_array().unwrap().iter().find(|i| i["title"] == "Episode 1: Pilot" && i["status"] == "READY").cloned()
    })
    .await
    .unwrap_or_else(|| panic!("no READY title from the feed: {}", vaultstream_tests::local::stderr_of(&state_dir, "dev")));
    assert_eq!(
        (&ready["metadata"]["description"], &ready["metadata_sources"]["description"]),
        (&json!("The first one"), &json!("feed")),
        "{ready}"
    );
    assert_eq!(ready["metadata_sources"]["title"], "feed", "{ready}");
    assert_eq!(ready["import"]["url"], server.url("/media/ep1.mp4"));

    // More polls: nothing imported twice.
    let polls_before = server.hits("/shows.rss");
    until(30, async || (server.hits("/shows.rss") >= polls_before + 2).then_some(json!(true))).await.expect("the feed is read again");
    let list = get_json(&http, format!("{api}/v1/content"), &token).await;
    let from_feed = list["items"].as_array().unwrap().iter().filter(|i| i["title"] == "Episode 1: Pilot").count();
    assert_eq!(from_feed, 1, "{list}");
    assert_eq!(server.hits("/media/ep1.mp4"), 1);
    let feeds = get_json(&http, format!("{api}/v1/feeds"), &token).await;
    let shown = feeds["items"].as_array().unwrap().iter().find(|f| f["feed_id"] == feed_id.as_str()).cloned().unwrap();
    assert_eq!((&shown["imported"], &shown["refused"]), (&json!(1), &json!(0)), "{feeds}");
    assert!(shown["last_polled_at"].is_string() && shown.get("last_error").is_none(), "{shown}");

    // A hostile feed: refused before parsing, the reason on the feed.
    let laughing =
        http.post(format!("{api}/v1/feeds")).bearer_auth(&token).json(&json!({"url": server.url("/laughs.rss")})).send().await.unwrap();
    let laughing: Value = laughing.json().await.unwrap();
    let refused = until(30, async || {
        let feeds = get_json(&http, format!("{api}/v1/feeds"), &token).await;
        feeds["items"].as_array().unwrap().iter().find(|f| f["feed_id"] == laughing["feed_id"] && f["last_error"].is_string()).cloned()
    })
    .await
    .expect("the billion-laughs feed has an error");
    assert!(refused["last_error"].as_str().unwrap().contains("document type"), "{refused}");

    // Refusals at the door, another tenant's view, and unsubscribing.
    let bad =
        http.post(format!("{api}/v1/feeds")).bearer_auth(&token).json(&json!({"url": "http://169.254.169.254/feed"})).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let stranger = mint(&state_dir, "globex", "someone", "content:write");
    assert_eq!(get_json(&http, format!("{api}/v1/feeds"), &stranger).await["items"], json!([]));
    let gone = http.delete(format!("{api}/v1/feeds/{feed_id}")).bearer_auth(&stranger).send().await.unwrap();
    assert_eq!(gone.status(), 404, "another tenant cannot unsubscribe it");
    let gone = http.delete(format!("{api}/v1/feeds/{feed_id}")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(gone.status(), 204);
    let feeds = get_json(&http, format!("{api}/v1/feeds"), &token).await;
    assert!(!feeds["items"].as_array().unwrap().iter().any(|f| f["feed_id"] == feed_id.as_str()), "{feeds}");
    stack.interrupt();
}
