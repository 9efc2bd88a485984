//! The operator CLI: CloudFront signing checked byte for byte against botocore's
//! `CloudFrontSigner` (what `aws cloudfront sign` runs) and by verification with the public key;
//! KMS signing against moto; `audit verify` naming the first altered, removed or swapped record.

use std::path::Path;
use std::process::{Command, Output};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::sign::Verifier;
use vaultstream::audit::{AuditEvent, AuditSink, Decision};
use vaultstream::aws::{DynamoHeads, DynamoLedger, KmsDigestSigner, KmsPolicySigner, S3DigestStore};
use vaultstream::cdn::{cloudfront_base64_decode, sign_cookies, Policy, PolicySigner};
use vaultstream::ids::TenantId;
use vaultstream_tests::stack::Stack;
use vaultstream_tests::workspace_binary;

fn cli(args: &[&str]) -> Output {
    Command::new(workspace_binary("vaultstream")).args(args).output().expect("run vaultstream")
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap().trim().to_string()
}

fn write_rsa(dir: &Path, bits: u32) -> String {
    let path = dir.join(format!("rsa{bits}.pem"));
    std::fs::write(&path, Rsa::generate(bits).unwrap().private_key_to_pem().unwrap()).unwrap();
    path.display().to_string()
}

fn write_ec(dir: &Path) -> String {
    let path = dir.join("ec.pem");
    let key = EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap();
    std::fs::write(&path, key.private_key_to_pem().unwrap()).unwrap();
    path.display().to_string()
}

/// botocore's CloudFrontSigner with an RSA-SHA1 signer from `cryptography`.
fn botocore_sign(pem: &str, url: &str, expires: u64, resource: Option<&str>, start: Option<u64>, ip: Option<&str>) -> String {
    let script = r#"
import sys, datetime
from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
pem, url, expires, resource, start, ip = sys.argv[1:7]
key = serialization.load_pem_private_key(open(pem, 'rb').read(), password=None)
signer = CloudFrontSigner('K2JCJMDEHXQW5F', lambda m: key.sign(m, padding.PKCS1v15(), hashes.SHA1()))
ts = lambda s: datetime.datetime.fromtimestamp(int(s), datetime.timezone.utc)
if resource == '-' and start == '-' and ip == '-':
    print(signer.generate_presigned_url(url, date_less_than=ts(expires)))
else:
    policy = signer.build_policy(url if resource == '-' else resource, ts(expires), ts(start) if start != '-' else None, ip if ip != '-' else None)
    print(signer.generate_presigned_url(url, policy=policy))
"#;
    let python = std::env::var("VAULTSTREAM_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .args([
            "-c",
            script,
            pem,
            url,
            &expires.to_string(),
            resource.unwrap_or("-"),
            &start.map(|s| s.to_string()).unwrap_or("-".into()),
            ip.unwrap_or("-"),
        ])
        .output()
        .unwrap();
    stdout(&out)
}

fn query_param<'a>(url: &'a str, name: &str) -> &'a str {
    url.split(['?', '&']).find_map(|p| p.strip_prefix(&format!("{name}="))).unwrap_or_else(|| panic!("{name} missing from {url}"))
}

#[test]
fn canned_and_custom_urls_match_botocore_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let pem = write_rsa(dir.path(), 2048);
    let url = "https://d111111abcdef8.cloudfront.net/horizon.jpg?large=yes&license=yes";
    let ours = stdout(&cli(&[
        "cdn",
        "sign-url",
        "--url",
        url,
        "--key-pair-id",
        "K2JCJMDEHXQW5F",
        "--private-key",
        &format!("file://{pem}"),
        "--date-less-than",
        "2030-01-01",
    ]));
    assert_eq!(ours, botocore_sign(&pem, url, 1893456000, None, None, None));
    assert!(ours.contains("&Expires=1893456000&Signature="), "canned: {ours}");

    let ours = stdout(&cli(&[
        "cdn",
        "sign-url",
        "--url",
        "https://d111111abcdef8.cloudfront.net/movies/a.m3u8",
        "--policy-resource",
        "https://d111111abcdef8.cloudfront.net/movies/*",
        "--key-pair-id",
        "K2JCJMDEHXQW5F",
        "--private-key",
        &pem,
        "--date-less-than",
        "1893456000",
        "--date-greater-than",
        "2026-01-01T00:00:00Z",
        "--ip-address",
        "192.0.2.0/24",
    ]));
    let theirs = botocore_sign(
        &pem,
        "https://d111111abcdef8.cloudfront.net/movies/a.m3u8",
        1893456000,
        Some("https://d111111abcdef8.cloudfront.net/movies/*"),
        Some(1767225600),
        Some("192.0.2.0/24"),
    );
    assert_eq!(ours, theirs);
    assert!(ours.contains("?Policy="), "custom: {ours}");
}

#[test]
fn sha256_and_ecdsa_signatures_verify_with_the_public_key() {
    let dir = tempfile::tempdir().unwrap();
    for (pem, digest) in [(write_ec(dir.path()), "SHA256"), (write_ec(dir.path()), "SHA1"), (write_rsa(dir.path(), 2048), "SHA256")] {
        let url = stdout(&cli(&[
            "cdn",
            "sign-url",
            "--url",
            "https://d1.cloudfront.net/a.ts",
            "--key-pair-id",
            "K1",
            "--private-key",
            &pem,
            "--date-less-than",
            "2030-01-01",
            "--hash-algorithm",
            digest,
        ]));
        assert_eq!(url.contains("&Hash-Algorithm=SHA256"), digest == "SHA256", "{url}");
        let signature = cloudfront_base64_decode(query_param(&url, "Signature")).unwrap();
        let policy = Policy::expiring("https://d1.cloudfront.net/a.ts", 1893456000).to_json().unwrap();
        let key = PKey::private_key_from_pem(&std::fs::read(&pem).unwrap()).unwrap();
        let public = PKey::public_key_from_pem(&key.public_key_to_pem().unwrap()).unwrap();
        let md = if digest == "SHA256" { MessageDigest::sha256() } else { MessageDigest::sha1() };
        assert!(Verifier::new(md, &public).unwrap().verify_oneshot(&signature, policy.as_bytes()).unwrap(), "{pem} {digest}");
    }
}

#[test]
fn cookies_as_json_canned_or_custom() {
    let dir = tempfile::tempdir().unwrap();
    let pem = write_rsa(dir.path(), 2048);
    let canned: serde_json::Value = serde_json::from_str(&stdout(&cli(&[
        "cdn",
        "sign-cookies",
        "--url",
        "https://d1.cloudfront.net/a.ts",
        "--key-pair-id",
        "K1",
        "--private-key",
        &pem,
        "--date-less-than",
        "1893456000",
    ])))
    .unwrap();
    assert_eq!(canned["CloudFront-Expires"], "1893456000");
    assert_eq!(canned["CloudFront-Key-Pair-Id"], "K1");
    let custom: serde_json::Value = serde_json::from_str(&stdout(&cli(&[
        "cdn",
        "sign-cookies",
        "--url",
        "https://d1.cloudfront.net/movies/*",
        "--key-pair-id",
        "K1",
        "--private-key",
        &pem,
        "--date-less-than",
        "1893456000",
        "--hash-algorithm",
        "SHA256",
    ])))
    .unwrap();
    let policy = String::from_utf8(cloudfront_base64_decode(custom["CloudFront-Policy"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(
        policy,
        r#"{"Statement":[{"Resource":"https://d1.cloudfront.net/movies/*","Condition":{"DateLessThan":{"AWS:EpochTime":1893456000}}}]}"#
    );
    assert_eq!(custom["CloudFront-Hash-Algorithm"], "SHA256");
}

#[test]
fn bad_keys_and_dates_are_clear_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let small = write_rsa(dir.path(), 1024);
    let good = write_rsa(dir.path(), 2048);
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    let public = dir.path().join("public.pem");
    std::fs::write(&public, Rsa::generate(2048).unwrap().public_key_to_pem().unwrap()).unwrap();
    let cases: [(&str, &str, &str); 6] = [
        (&small, "2030-01-01", "2048 bits"),
        (text.to_str().unwrap(), "2030-01-01", "not a PEM"),
        (public.to_str().unwrap(), "2030-01-01", "private key"),
        ("/nonexistent/key.pem", "2030-01-01", "cannot read"),
        (&good, "soon", "--date-less-than"),
        (&good, "2030-13-45", "ISO 8601"),
    ];
    for (key, date, expected) in cases {
        let out = cli(&[
            "cdn",
            "sign-url",
            "--url",
            "https://d1.cloudfront.net/a",
            "--key-pair-id",
            "K1",
            "--private-key",
            key,
            "--date-less-than",
            date,
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key} {date}: {stderr}");
        assert!(stderr.contains(expected), "{key} {date}: {stderr}");
    }
    let out = cli(&[
        "cdn",
        "sign-url",
        "--url",
        "https://d1.cloudfront.net/a",
        "--key-pair-id",
        "K1",
        "--private-key",
        &good,
        "--date-less-than",
        "2030-01-01",
        "--date-greater-than",
        "2031-01-01",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not before the expiry"));
}

#[tokio::test]
async fn kms_signing_verifies_with_the_kms_public_key() {
    let stack = Stack::provision().await;
    for spec in [KeySpec::Rsa2048, KeySpec::EccNistP256] {
        let key = stack
            .aws
            .kms()
            .create_key()
            .key_spec(spec.clone())
            .key_usage(KeyUsageType::SignVerify)
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .key_id;
        let signer = KmsPolicySigner::connect(stack.aws.kms().clone(), &key, "K3KMS").await.unwrap();
        let cookies = sign_cookies(&signer, &Policy::expiring("https://x.cdn.example.com/acme/c1/*", 1893456000)).await.unwrap();
        assert_eq!(cookies.get("CloudFront-Hash-Algorithm"), Some("SHA256"));
        let policy = cloudfront_base64_decode(cookies.get("CloudFront-Policy").unwrap()).unwrap();
        let signature = cloudfront_base64_decode(cookies.get("CloudFront-Signature").unwrap()).unwrap();
        let der = stack.aws.kms().get_public_key().key_id(&key).send().await.unwrap().public_key.unwrap().into_inner();
        let public = PKey::public_key_from_der(&der).unwrap();
        assert!(Verifier::new(MessageDigest::sha256(), &public).unwrap().verify_oneshot(&signature, &policy).unwrap(), "{spec:?}");
        assert_eq!(signer.key_pair_id(), "K3KMS");
    }
    let symmetric = stack.aws.kms().create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let err = KmsPolicySigner::connect(stack.aws.kms().clone(), &symmetric, "K").await.err().expect("a symmetric key cannot sign");
    assert!(err.to_string().contains("RSA_2048 or ECC_NIST_P256"), "{err}");
}

fn event(i: u32) -> AuditEvent {
    AuditEvent {
        tenant: TenantId::parse("acme").unwrap(),
        actor: format!("viewer-{i}"),
        action: "key.fetch".into(),
        resource: "content/c1/key/k0".into(),
        decision: if i % 2 == 0 { Decision::Allow } else { Decision::Deny },
        reason: "granted".into(),
        request_id: format!("r{i}"),
        source_ip: Some("198.51.100.1".into()),
    }
}

async fn five_records(stack: &Stack) {
    let ledger = DynamoLedger::on_shard(stack.aws.dynamodb().clone(), &stack.audit_table, 0);
    for i in 1..=5 {
        ledger.append(event(i)).await.unwrap();
    }
}

fn sk(seq: u64) -> AttributeValue {
    AttributeValue::S(format!("r#{seq:020}"))
}

async fn item(stack: &Stack, pk: &str, seq: u64) -> std::collections::HashMap<String, AttributeValue> {
    stack
        .aws
        .dynamodb()
        .get_item()
        .table_name(&stack.audit_table)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", sk(seq))
        .send()
        .await
        .unwrap()
        .item
        .unwrap()
}

fn verify(stack: &Stack) -> Output {
    vaultstream_tests::moto::operator_cli(&[
        "audit",
        "verify",
        "--chain-only",
        "--tenant",
        "acme",
        "--table",
        &stack.audit_table,
        "--shards",
        "2",
    ])
}

/// Tampering happens straight in DynamoDB, as an attacker with table access would do it; the
/// project's own code has no path that updates or deletes a ledger record.
#[tokio::test]
async fn audit_verify_names_the_first_altered_removed_or_swapped_record() {
    let (_, day) = vaultstream::audit::ledger::now_rfc3339_millis();
    let pk = format!("acme#{day}#0");
    let db = |s: &Stack| (s.aws.dynamodb().clone(), s.audit_table.clone());

    let intact = Stack::provision().await;
    five_records(&intact).await;
    let out = verify(&intact);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("ok    {pk}: 5 records, chain intact")), "{text}");

    let altered = Stack::provision().await;
    five_records(&altered).await;
    let mut record = item(&altered, &pk, 3).await;
    record.insert("decision".into(), AttributeValue::S("allow".into()));
    let (client, table) = db(&altered);
    client.put_item().table_name(&table).set_item(Some(record)).send().await.unwrap();

    let removed = Stack::provision().await;
    five_records(&removed).await;
    let (client, table) = db(&removed);
    client.delete_item().table_name(&table).key("pk", AttributeValue::S(pk.clone())).key("sk", sk(2)).send().await.unwrap();

    let swapped = Stack::provision().await;
    five_records(&swapped).await;
    let (client, table) = db(&swapped);
    let (mut two, mut four) = (item(&swapped, &pk, 2).await, item(&swapped, &pk, 4).await);
    two.insert("sk".into(), sk(4));
    four.insert("sk".into(), sk(2));
    client.put_item().table_name(&table).set_item(Some(two)).send().await.unwrap();
    client.put_item().table_name(&table).set_item(Some(four)).send().await.unwrap();

    let truncated = Stack::provision().await;
    five_records(&truncated).await;
    let (client, table) = db(&truncated);
    client.delete_item().table_name(&table).key("pk", AttributeValue::S(pk.clone())).key("sk", sk(5)).send().await.unwrap();

    for (stack, expected) in [
        (&altered, "record 3 was modified"),
        (&removed, "record 2 is missing"),
        (&swapped, "record 4 sits at position 2"),
        (&truncated, "records 5..=5 are missing after record 4"),
    ] {
        let out = verify(stack);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{expected}: {text}");
        assert!(text.contains(&format!("FAIL  {pk}: {expected}")), "{expected}: {text}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("failed verification"));
    }
    let out = Command::new(workspace_binary("vaultstream")).args(["audit", "verify", "--tenant", "a/b", "--table", "t"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn concurrent_appenders_on_one_chain_keep_it_intact() {
    let stack = Stack::provision().await;
    let mut tasks = Vec::new();
    for w in 0..4u32 {
        let ledger = DynamoLedger::on_shard(stack.aws.dynamodb().clone(), &stack.audit_table, 0);
        tasks.push(tokio::spawn(async move {
            for i in 0..5 {
                ledger.append(event(w * 10 + i)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (_, day) = vaultstream::audit::ledger::now_rfc3339_millis();
    let reports =
        vaultstream::aws::ledger::verify_day(stack.aws.dynamodb(), &stack.audit_table, &TenantId::parse("acme").unwrap(), &day, 1)
            .await
            .unwrap();
    assert!(reports[0].is_intact(), "{:?}", reports[0].problem);
    assert_eq!(reports[0].records, 20);
}

/// One day of two tenants' records, digested once while the day was open and once after it closed.
const DAY: &str = "2026-01-10";

fn at(hms: &str) -> (String, String) {
    (format!("{DAY}T{hms}.000Z"), DAY.to_string())
}

fn tenant_event(tenant: &str, i: u32) -> AuditEvent {
    AuditEvent { tenant: TenantId::parse(tenant).unwrap(), ..event(i) }
}

async fn append(stack: &Stack, tenant: &str, shard: u16, n: u32, hms: &str) {
    let ledger = DynamoLedger::on_shard(stack.aws.dynamodb().clone(), &stack.audit_table, shard);
    for i in 0..n {
        let (time, day) = at(hms);
        ledger.append_at(tenant_event(tenant, i), time, day).await.unwrap();
    }
}

async fn digest_at(
    stack: &Stack,
    now: time::OffsetDateTime,
) -> Result<vaultstream::audit::digest::Digest, vaultstream::audit::digest::DigestError> {
    let signer = KmsDigestSigner::connect(stack.aws.kms().clone(), &stack.outputs.audit_digest_key_id).await.unwrap();
    let store = S3DigestStore::new(stack.aws.s3().clone(), &stack.outputs.audit_archive_bucket);
    let heads = DynamoHeads::new(stack.aws.dynamodb().clone(), &stack.audit_table);
    vaultstream::audit::digest::publish(&store, &heads, &signer, now, 2).await
}

fn verify_signed(stack: &Stack, tenant: &str, day: &str) -> (Option<i32>, String) {
    let out = vaultstream_tests::moto::operator_cli(&[
        "audit",
        "verify",
        "--tenant",
        tenant,
        "--date",
        day,
        "--table",
        &stack.audit_table,
        "--archive-bucket",
        &stack.outputs.audit_archive_bucket,
        "--digest-key",
        &stack.outputs.audit_digest_key_id,
    ]);
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

async fn put(stack: &Stack, item: std::collections::HashMap<String, AttributeValue>) {
    stack.aws.dynamodb().put_item().table_name(&stack.audit_table).set_item(Some(item)).send().await.unwrap();
}

async fn delete(stack: &Stack, pk: &str, sk: AttributeValue) {
    stack
        .aws
        .dynamodb()
        .delete_item()
        .table_name(&stack.audit_table)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", sk)
        .send()
        .await
        .unwrap();
}

async fn put_head(stack: &Stack, record: &vaultstream::audit::AuditRecord) {
    let mut head = std::collections::HashMap::new();
    head.insert("pk".to_string(), AttributeValue::S(record.chain.to_string()));
    head.insert("sk".to_string(), AttributeValue::S("head".into()));
    head.insert("seq".to_string(), AttributeValue::N(record.seq.to_string()));
    head.insert("hash".to_string(), AttributeValue::S(record.hash.clone()));
    head.insert("head_slot".to_string(), AttributeValue::S(vaultstream::audit::ledger::head_slot(&record.chain)));
    put(stack, head).await;
}

/// The attacker holds the ledger's write permissions (every function role does) and knows the
/// record format: each rewrite below keeps the hash chain itself consistent where it can, so only
/// the signed digests can tell. Tampering goes straight to DynamoDB, as the attacker would.
#[tokio::test]
async fn audit_verify_holds_the_ledger_to_its_signed_digests() {
    use time::macros::datetime;
    let stack = Stack::provision().await;
    let tenants = ["intact", "rewritten", "truncated", "deleted", "inserted", "late", "overwritten", "restored"];
    // The change stream's archive, as Kinesis and Firehose keep it in a deployment.
    let config = vaultstream_tests::moto::sdk_config().await;
    let mut archiver = vaultstream_cli::dev::change_archive::ChangeArchiver::new(
        &config,
        stack.aws.s3().clone(),
        &stack.audit_table,
        &stack.outputs.audit_archive_bucket,
        None,
    );
    for tenant in tenants {
        append(&stack, tenant, 0, 3, "10:00:00").await;
        append(&stack, tenant, 1, 2, "10:00:01").await;
    }
    let open = digest_at(&stack, datetime!(2026-01-10 12:00 UTC)).await.unwrap();
    assert_eq!((open.seq, open.closed_through.as_deref()), (1, Some("2026-01-09")));
    for tenant in tenants {
        append(&stack, tenant, 0, 2, "18:00:00").await;
        append(&stack, tenant, 1, 1, "18:00:01").await;
    }
    append(&stack, "undigested", 0, 1, "18:00:02").await;
    let closing = digest_at(&stack, datetime!(2026-01-11 00:15 UTC)).await.unwrap();
    assert_eq!((closing.seq, closing.closed_through.as_deref()), (2, Some(DAY)));
    assert!(archiver.deliver().await.unwrap() > 0);

    let (code, text) = verify_signed(&stack, "intact", DAY);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("the day is closed by signed digest #2"), "{text}");
    assert!(text.contains(&format!("ok    intact#{DAY}#0: 5 records, chain intact")), "{text}");
    assert!(text.contains(&format!("ok    intact#{DAY}#1: 3 records, chain intact")), "{text}");
    assert!(text.contains("change archive: 16 changes to this day"), "8 records inserted, heads written 8 times: {text}");

    // A whole day rewritten consistently: every record re-hashed in order, and the head.
    let chain = vaultstream::audit::ChainId::parse(&format!("rewritten#{DAY}#0")).unwrap();
    let mut prev = chain.genesis_hash();
    for old in vaultstream::aws::ledger::read_chain(stack.aws.dynamodb(), &stack.audit_table, &chain).await.unwrap() {
        let event = AuditEvent { decision: Decision::Allow, reason: "granted".into(), ..old.event.clone() };
        let new = vaultstream::audit::AuditRecord::new(chain.clone(), old.seq, old.time.clone(), event, prev).unwrap();
        put(&stack, DynamoLedger::record_item(&new)).await;
        put_head(&stack, &new).await;
        prev = new.hash.clone();
    }
    // Truncated: the last two records cut and the head moved back to the third.
    let chain = vaultstream::audit::ChainId::parse(&format!("truncated#{DAY}#0")).unwrap();
    let records = vaultstream::aws::ledger::read_chain(stack.aws.dynamodb(), &stack.audit_table, &chain).await.unwrap();
    delete(&stack, &chain.to_string(), sk(5)).await;
    delete(&stack, &chain.to_string(), sk(4)).await;
    put_head(&stack, &records[2]).await;
    // A whole day deleted: every item of both chains.
    for shard in 0..2 {
        let pk = format!("deleted#{DAY}#{shard}");
        for seq in 1..=5 {
            delete(&stack, &pk, sk(seq)).await;
        }
        delete(&stack, &pk, AttributeValue::S("head".into())).await;
    }
    // A record copied in under a sort key that is not its canonical one.
    let mut copy = item(&stack, &format!("inserted#{DAY}#0"), 2).await;
    copy.insert("sk".into(), AttributeValue::S("r#2".into()));
    put(&stack, copy).await;
    // A well-formed record appended to the closed day, through the ledger's own append.
    append(&stack, "late", 0, 1, "23:59:59").await;
    // One item overwritten in place.
    let mut record = item(&stack, &format!("overwritten#{DAY}#1"), 2).await;
    record.insert("actor".into(), AttributeValue::S("someone-else".into()));
    put(&stack, record).await;
    // One item overwritten and put back exactly as it was: table, chain and digests all agree.
    let original = item(&stack, &format!("restored#{DAY}#1"), 2).await;
    let mut changed = original.clone();
    changed.insert("decision".into(), AttributeValue::S("allow".into()));
    put(&stack, changed).await;
    put(&stack, original).await;
    archiver.deliver().await.unwrap();

    for (tenant, expected) in [
        ("rewritten", "0: record 3 no longer has the hash signed digest #1 recorded: the chain up to it was rewritten"),
        ("truncated", "0: records 4..=5 are gone: signed digest #2 listed 5 records"),
        ("deleted", "0: the whole chain is gone: signed digest #1 listed 3 records"),
        ("inserted", "0: item r#2 holds record 2 under a sort key other than its own (r#00000000000000000002): a record was inserted"),
        ("late", "0: record 6 was added after signed digest #2 closed the day"),
        ("overwritten", "1: record 2 was modified: its content no longer matches its hash"),
        ("restored", "1: item r#00000000000000000002 was modified in place at 2026-"),
    ] {
        let (code, text) = verify_signed(&stack, tenant, DAY);
        assert_eq!(code, Some(1), "{tenant}: {text}");
        assert!(text.contains(&format!("FAIL  {tenant}#{DAY}#{expected}")), "{tenant}: {text}");
        assert!(text.contains("failed verification"), "{tenant}: {text}");
    }
    // The rewrite is consistent: the hash chains alone cannot tell.
    let chains_only = vaultstream_tests::moto::operator_cli(&[
        "audit",
        "verify",
        "--chain-only",
        "--tenant",
        "rewritten",
        "--date",
        DAY,
        "--table",
        &stack.audit_table,
        "--shards",
        "2",
    ]);
    assert!(chains_only.status.success(), "{}", String::from_utf8_lossy(&chains_only.stdout));
    let (code, text) = verify_signed(&stack, "deleted", DAY);
    assert!(code == Some(1) && text.contains(&format!("FAIL  deleted#{DAY}#1: the whole chain is gone")), "{text}");

    // A day no digest covers is not called intact.
    let (code, text) = verify_signed(&stack, "intact", "2026-01-12");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("no signed digest covers 2026-01-12"), "{text}");

    // A digest replaced by one signed with another key (a new object version; Object Lock keeps
    // the old one) is refused, and the writer will not extend a chain it cannot verify.
    let other = stack.aws.kms().create_key().key_spec(KeySpec::EccNistP256).key_usage(KeyUsageType::SignVerify).send().await.unwrap();
    let forger = KmsDigestSigner::connect(stack.aws.kms().clone(), other.key_metadata.unwrap().key_id).await.unwrap();
    let forged = closing.to_bytes().unwrap();
    let signature = vaultstream::audit::digest::DigestSigner::sign(&forger, &forged).await.unwrap();
    stack
        .aws
        .s3()
        .put_object()
        .bucket(&stack.outputs.audit_archive_bucket)
        .key(closing.key())
        .metadata("signature", hex::encode(signature))
        .metadata("signing-key", "forged")
        .body(forged.into())
        .send()
        .await
        .unwrap();
    let (code, text) = verify_signed(&stack, "intact", DAY);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains(&format!("FAIL  digests: digest {} does not carry a valid signature", closing.key())), "{text}");
    let refused = digest_at(&stack, datetime!(2026-01-11 01:15 UTC)).await.unwrap_err();
    assert!(refused.to_string().contains("does not carry a valid signature"), "{refused}");
}
