//! Audit append through moto on loopback: the chained append (one TransactWriteItems that puts the
//! record and advances the chain head under conditions) beside the reference, a plain PutItem of
//! the same record. Alternating, so noise lands on both. Goal: ratio of medians ≤ 1.5.
//!
//! moto deep-copies every table a transaction touches (once per item, for its rollback), so its
//! TransactWriteItems costs O(table size) where DynamoDB's does not. Two figures come out: on
//! tables kept small (a fresh table every 25 appends: the per-call cost without that artefact)
//! and on one table that grows for the whole run (what moto does with a long chain).

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use vaultstream::audit::{AuditEvent, AuditSink, Decision};
use vaultstream::aws::DynamoLedger;
use vaultstream::ids::TenantId;
use vaultstream_tests::stack::Stack;

fn event(i: usize) -> AuditEvent {
    AuditEvent {
        tenant: TenantId::parse("acme").unwrap(),
        actor: "viewer".into(),
        action: "key.fetch".into(),
        resource: "content/movie1/key/k0".into(),
        decision: Decision::Allow,
        reason: "granted".into(),
        request_id: format!("req-{i}"),
        source_ip: Some("203.0.113.7".into()),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let n: usize = std::env::var("ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    rt.block_on(async {
        let mut fresh = (Vec::new(), Vec::new());
        for _ in 0..(n / 25).max(1) {
            let stack = Stack::provision().await;
            let (c, p) = run(&stack, 25, 5).await;
            fresh.0.extend(c);
            fresh.1.extend(p);
        }
        let stack = Stack::provision().await;
        let growing = run(&stack, n, 20).await;
        let (fc, fp) = (median(fresh.0), median(fresh.1));
        let (gc, gp) = (median(growing.0), median(growing.1));
        println!("small tables:  chained median {fc:.2} ms, plain PutItem median {fp:.2} ms");
        println!("growing table: chained median {gc:.2} ms, plain PutItem median {gp:.2} ms ({n} appends)");
        println!(
            "RESULT audit_chained_over_plain_small_tables={:.3} audit_chained_over_plain_growing_table={:.3} goal=1.5",
            fc / fp,
            gc / gp
        );
        let (_, day) = vaultstream::audit::ledger::now_rfc3339_millis();
        let reports =
            vaultstream::aws::ledger::verify_day(stack.aws.dynamodb(), &stack.audit_table, &TenantId::parse("acme").unwrap(), &day, 1)
                .await
                .unwrap();
        assert!(reports[0].is_intact(), "{:?}", reports[0].problem);
    });
}

/// `n` alternating appends after `warmup` untimed ones; returns (chained, plain) in ms.
async fn run(stack: &Stack, n: usize, warmup: usize) -> (Vec<f64>, Vec<f64>) {
    let ledger = DynamoLedger::on_shard(stack.aws.dynamodb().clone(), &stack.audit_table, 0);
    let (mut chained, mut plain) = (Vec::new(), Vec::new());
    for i in 0..n + warmup {
        let start = Instant::now();
        let record = ledger.append(event(i)).await.unwrap();
        let t_chained = start.elapsed().as_secs_f64() * 1e3;

        // The same record's attributes under another partition, written the plain way.
        let mut item: HashMap<String, AttributeValue> = HashMap::new();
        item.insert("pk".into(), AttributeValue::S(format!("plain#{}", record.chain)));
        item.insert("sk".into(), AttributeValue::S(format!("r#{:020}", record.seq)));
        for (k, v) in [
            ("time", &record.time),
            ("actor", &record.event.actor),
            ("action", &record.event.action),
            ("resource", &record.event.resource),
            ("reason", &record.event.reason),
            ("request_id", &record.event.request_id),
            ("prev_hash", &record.prev_hash),
            ("hash", &record.hash),
        ] {
            item.insert(k.into(), AttributeValue::S(v.clone()));
        }
        item.insert("seq".into(), AttributeValue::N(record.seq.to_string()));
        let start = Instant::now();
        stack.aws.dynamodb().put_item().table_name(&stack.audit_table).set_item(Some(item)).send().await.unwrap();
        let t_plain = start.elapsed().as_secs_f64() * 1e3;
        if i >= warmup {
            chained.push(t_chained);
            plain.push(t_plain);
        }
    }
    (chained, plain)
}
