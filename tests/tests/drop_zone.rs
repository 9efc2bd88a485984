//! The FTPS drop zone of the local stack, driven by a real FTP client (Python's ftplib, over TLS):
//! a tenant logs in with its id and a write token, stores a file, and the file becomes a READY
//! title once (a second upload of the same file makes none); another tenant's token, a plain-text
//! login, a path out of the tenant's folder and a download are refused. Only processes and HTTP.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vaultstream_tests::local::{cli, clip, get_json, mint, until, Running};

/// One ftplib session: connect over TLS (or plain, with `tls` false), log in, run `commands`
/// (`["STOR", name, file]`, `["NLST"]`, `["RETR", name]`, `["CWD", dir]`, and `["PAUSE", flag]`,
/// which writes `flag.waiting` and waits for `flag` to exist), one JSON answer each.
fn ftp(url: &str, user: &str, password: &str, tls: bool, commands: Value) -> Value {
    const SCRIPT: &str = r#"
import ftplib, json, ssl, sys
# libunftp ends a STOR's TLS data channel without close_notify; curl and FileZilla accept that,
# ftplib's unwrap() raises. The 226 that follows on the control channel is what counts.
_unwrap = ssl.SSLSocket.unwrap
def unwrap(sock):
    try:
        return _unwrap(sock)
    except ssl.SSLEOFError:
        return None
ssl.SSLSocket.unwrap = unwrap
host, port, user, password, tls, commands = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] == "1", json.loads(sys.argv[6])
if tls:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the local stack's certificate is self-signed
    ftp = ftplib.FTP_TLS(context=context, timeout=30)
else:
    ftp = ftplib.FTP(timeout=30)
# A reply from the server is the answer; a connection the loaded machine dropped before any reply
# (a timeout, a reset during the TLS upgrade) says nothing about the login, so it is tried again.
transport = []
for attempt in range(3):
    try:
        ftp.connect(host, port)
        ftp.login(user, password)
        break
    except ftplib.Error as e:
        print(json.dumps({"login": str(e), "transport": transport}))
        sys.exit(0)
    except OSError as e:
        transport.append(repr(e))
        ftp.close()
else:
    print(json.dumps({"login": "transport: " + "; ".join(transport), "transport": transport}))
    sys.exit(0)
if tls:
    ftp.prot_p()
answers = []
for command in commands:
    try:
        if command[0] == "STOR":
            with open(command[2], "rb") as f:
                answers.append(ftp.storbinary("STOR " + command[1], f))
        elif command[0] == "NLST":
            answers.append(sorted(ftp.nlst()))
        elif command[0] == "RETR":
            answers.append(ftp.retrbinary("RETR " + command[1], lambda b: None))
        elif command[0] == "CWD":
            answers.append(ftp.cwd(command[1]))
        elif command[0] == "PAUSE":
            import os, time
            open(command[1] + ".waiting", "w").close()
            deadline = time.time() + 60
            while not os.path.exists(command[1]) and time.time() < deadline:
                time.sleep(0.1)
            answers.append("resumed")
    except (ftplib.error_reply, ftplib.error_temp, ftplib.error_perm, ftplib.error_proto) as e:
        answers.append("error: " + str(e))
    except OSError:
        # The server dropped the data connection (a refused STOR or RETR): its reply says why.
        try:
            answers.append(ftp.getresp())
        except ftplib.all_errors as e:
            answers.append("error: " + str(e))
ftp.quit()
print(json.dumps({"login": "ok", "answers": answers}))
"#;
    let address = url.trim_start_matches("ftps://");
    let (host, port) = address.rsplit_once(':').unwrap();
    let python = std::env::var("VAULTSTREAM_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .args(["-c", SCRIPT, host, port, user, password, if tls { "1" } else { "0" }, &commands.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "ftplib: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test]
async fn a_file_stored_over_ftps_becomes_a_ready_title_once_and_the_zone_keeps_its_tenant_in() {
    let root = tempfile::tempdir().unwrap();
    let state_dir = root.path().join("stack");
    let stack = Running::start("dev", &state_dir, &[]);
    let (api, ftp_url) = (stack.url("api_url"), stack.url("ftp_url"));
    let token = mint(&state_dir, "acme", "uploader", "content:write content:read");
    let film = root.path().join("launch.mp4");
    std::fs::write(&film, clip(2)).unwrap();
    let notes = root.path().join("notes.txt");
    std::fs::write(&notes, "delivered by the studio").unwrap();
    let (film, notes) = (film.display().to_string(), notes.display().to_string());

    let session = ftp(&ftp_url, "acme", &token, true, json!([["STOR", "launch.mp4", film], ["STOR", "notes.txt", notes], ["NLST"]]));
    let answers = session["answers"].as_array().unwrap_or_else(|| panic!("{session}"));
    assert!(answers[0].as_str().unwrap().starts_with("226"), "{session}");
    assert!(answers[1].as_str().unwrap().starts_with("226"), "{session}");
    assert_eq!(answers[2], json!(["notes.txt"]), "the film moved out of the zone; the note stays: {session}");

    let http = reqwest::Client::new();
    let ready = until(180, async || {
        let list = get_json(&http, format!("{api}/v1/content"), &token).await;
        list["items"].as_array().unwrap().iter().find(|i| i["title"] == "launch" && i["status"] == "READY").cloned()
    })
    .await
    .unwrap_or_else(|| panic!("the dropped film did not become READY: {}", vaultstream_tests::local::stderr_of(&state_dir, "dev")));
    let title = get_json(&http, format!("{api}/v1/content/{}", ready["content_id"].as_str().unwrap()), &token).await;
    assert_eq!(title["import"]["url"], "ftp://drop/acme/launch.mp4", "{title}");

    // The same file again: no second title.
    let again = ftp(&ftp_url, "acme", &token, true, json!([["STOR", "launch.mp4", film], ["NLST"]]));
    assert!(again["answers"][0].as_str().unwrap().starts_with("226"), "{again}");
    assert_eq!(again["answers"][1], json!(["notes.txt"]), "the duplicate is not kept either: {again}");
    let list = get_json(&http, format!("{api}/v1/content"), &token).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");

    // Refused: another tenant's token, a login in clear, a way out of the folder, a download.
    let stranger = mint(&state_dir, "globex", "uploader", "content:write");
    let borrowed = ftp(&ftp_url, "acme", &stranger, true, json!([]));
    assert!(borrowed["login"].as_str().unwrap().starts_with("530"), "{borrowed}");
    let reader = mint(&state_dir, "acme", "viewer", "content:read");
    let read_only = ftp(&ftp_url, "acme", &reader, true, json!([]));
    assert!(read_only["login"].as_str().unwrap().starts_with("530"), "a content:read token stores nothing: {read_only}");
    let clear = ftp(&ftp_url, "acme", &token, false, json!([]));
    assert!(clear["login"].as_str().unwrap().starts_with('5'), "a token never travels in clear: {clear}");
    let escape =
        ftp(&ftp_url, "acme", &token, true, json!([["STOR", "../globex/x.mp4", film], ["CWD", ".."], ["NLST"], ["RETR", "notes.txt"]]));
    let answers = escape["answers"].as_array().unwrap();
    assert!(answers[0].as_str().unwrap().starts_with("error: 550"), "{escape}");
    // `cd ..` at the top stays there, as in a chroot: the listing is still the tenant's own.
    assert_eq!(answers[2], json!(["notes.txt"]), "{escape}");
    assert!(answers[3].as_str().unwrap().starts_with("error: 550"), "a drop zone gives nothing back: {escape}");
    let theirs = get_json(&http, format!("{api}/v1/content"), &stranger).await;
    assert_eq!(theirs["items"], json!([]), "nothing reached globex");
    stack.interrupt();
}

/// A token of `sid` that lives `ttl` seconds.
fn mint_session(state_dir: &Path, sid: &str, ttl: u64) -> String {
    let dir = state_dir.display().to_string();
    let args = ["token", "mint", "--state-dir", &dir, "--tenant", "acme", "--sub", "uploader", "--scope", "content:write content:read"];
    let out = cli(&[&args[..], &["--sid", sid, "--ttl", &ttl.to_string()]].concat());
    assert!(out.status.success(), "token mint: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs one ftplib session in the background; it pauses at `["PAUSE", flag]` until `act` has run.
fn ftp_with_pause(url: &str, token: &str, commands: Value, flag: &Path, act: impl FnOnce()) -> Value {
    let (url, token) = (url.to_string(), token.to_string());
    let session = std::thread::spawn(move || ftp(&url, "acme", &token, true, commands));
    let waiting = flag.with_extension("waiting");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !waiting.exists() {
        assert!(Instant::now() < deadline, "the FTP session never reached its pause");
        std::thread::sleep(Duration::from_millis(50));
    }
    act();
    std::fs::write(flag, "").unwrap();
    session.join().unwrap()
}

#[tokio::test]
async fn a_login_stores_nothing_once_its_session_is_revoked_or_its_token_expired() {
    let root = tempfile::tempdir().unwrap();
    let state_dir = root.path().join("stack");
    let stack = Running::start("dev", &state_dir, &[]);
    let (api, ftp_url) = (stack.url("api_url"), stack.url("ftp_url"));
    let (first, second, third) = (root.path().join("first.mp4"), root.path().join("second.mp4"), root.path().join("third.mp4"));
    for (path, seconds) in [(&first, 1), (&second, 2), (&third, 3)] {
        std::fs::write(path, clip(seconds)).unwrap();
    }
    let path = |p: &Path| p.display().to_string();

    // Revoked in the middle of a session: the next STOR and listing are refused.
    let token = mint_session(&state_dir, "ftp-revoked", 600);
    let flag = root.path().join("revoked");
    let dir = state_dir.display().to_string();
    let session = ftp_with_pause(
        &ftp_url,
        &token,
        json!([["STOR", "first.mp4", path(&first)], ["PAUSE", path(&flag)], ["STOR", "second.mp4", path(&second)], ["NLST"]]),
        &flag,
        || {
            let out = cli(&["session", "revoke", "--state-dir", &dir, "--tenant", "acme", "--session", "ftp-revoked"]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        },
    );
    let answers = session["answers"].as_array().unwrap_or_else(|| panic!("{session}"));
    assert!(answers[0].as_str().unwrap().starts_with("226"), "before the revocation: {session}");
    assert!(answers[2].as_str().unwrap().starts_with("error: 550"), "a STOR after the revocation: {session}");
    assert!(answers[3].as_str().unwrap_or_default().starts_with("error: 5"), "a listing after the revocation: {session}");

    // The token expires during the session: refused from then on.
    let token = mint_session(&state_dir, "ftp-expiring", 4);
    let flag = root.path().join("expired");
    let session = ftp_with_pause(
        &ftp_url,
        &token,
        json!([["STOR", "third.mp4", path(&third)], ["PAUSE", path(&flag)], ["STOR", "second.mp4", path(&second)]]),
        &flag,
        || std::thread::sleep(Duration::from_secs(5)),
    );
    let answers = session["answers"].as_array().unwrap_or_else(|| panic!("{session}"));
    assert!(answers[0].as_str().unwrap().starts_with("226"), "before the expiry: {session}");
    assert!(answers[2].as_str().unwrap().starts_with("error: 550"), "a STOR after the expiry: {session}");

    // Only what was stored while the sessions held became titles; every refusal is recorded.
    let http = reqwest::Client::new();
    let viewer = mint(&state_dir, "acme", "checker", "content:read");
    let titles = until(60, async || {
        let list = get_json(&http, format!("{api}/v1/content"), &viewer).await;
        (list["items"].as_array().unwrap().len() >= 2).then_some(list)
    })
    .await
    .unwrap_or_else(|| panic!("the two accepted uploads made no titles: {}", vaultstream_tests::local::stderr_of(&state_dir, "dev")));
    let mut names: Vec<&str> = titles["items"].as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["first", "third"], "{titles}");
    stack.interrupt();
}
