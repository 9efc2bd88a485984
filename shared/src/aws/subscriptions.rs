//! What feeds and bucket monitors share in the feeds table: listing a tenant's subscriptions of
//! one kind, reading every tenant's through the sparse `subscriptions` index (each kind filters on
//! its `sk` prefix), and claims: a record written once with a condition, so that whatever two
//! polls race to import (a feed item, an object version) is imported once; then its outcome, or
//! the claim given back.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;

pub(crate) type Key = HashMap<String, AttributeValue>;

/// The sparse index of subscriptions (feeds and monitors).
pub const SUBSCRIPTIONS_INDEX: &str = "subscriptions";

/// Every item of partition `pk` whose sort key starts with `sk_prefix`.
pub(crate) async fn items_of(client: &aws_sdk_dynamodb::Client, table: &str, pk: String, sk_prefix: &str) -> Result<Vec<Key>, String> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
            .expression_attribute_values(":prefix", AttributeValue::S(sk_prefix.into()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(next) if !next.is_empty() => start = Some(next),
            _ => return Ok(items),
        }
    }
}

/// Every tenant's subscriptions whose sort key starts with `sk_prefix`.
pub(crate) async fn all_of(client: &aws_sdk_dynamodb::Client, table: &str, sk_prefix: &str) -> Result<Vec<Key>, String> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .index_name(SUBSCRIPTIONS_INDEX)
            .filter_expression("begins_with(sk, :prefix)")
            .expression_attribute_values(":prefix", AttributeValue::S(sk_prefix.into()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(next) if !next.is_empty() => start = Some(next),
            _ => return Ok(items),
        }
    }
}

/// What a poll learnt, written to the subscription at `key` only while it exists: `set` always,
/// each of `optional` set when present and removed when not. `Ok(false)`: the subscription is
/// gone (unsubscribed meanwhile).
pub(crate) async fn record_poll(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: Key,
    set: Vec<(&str, AttributeValue)>,
    optional: &[(&str, &Option<String>)],
) -> Result<bool, String> {
    // Every attribute by a placeholder name: some (`cursor`) are DynamoDB reserved words.
    let mut assignments = Vec::new();
    let mut removals = Vec::new();
    let mut values = HashMap::new();
    let mut names = HashMap::new();
    let present =
        optional.iter().filter_map(|(name, value)| value.as_ref().map(|v| (*name, AttributeValue::S(v.chars().take(2048).collect()))));
    for (name, value) in set.into_iter().chain(present) {
        assignments.push(format!("#{name} = :{name}"));
        names.insert(format!("#{name}"), name.to_string());
        values.insert(format!(":{name}"), value);
    }
    for (name, _) in optional.iter().filter(|(_, value)| value.is_none()) {
        removals.push(format!("#{name}"));
        names.insert(format!("#{name}"), name.to_string());
    }
    let mut expression = format!("SET {}", assignments.join(", "));
    if !removals.is_empty() {
        expression.push_str(&format!(" REMOVE {}", removals.join(", ")));
    }
    let result = client
        .update_item()
        .table_name(table)
        .set_key(Some(key))
        .update_expression(expression)
        .condition_expression("attribute_exists(pk)")
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(false),
        Err(e) => Err(DisplayErrorContext(e).to_string()),
    }
}

/// Writes the claim at `key` with `what` (the claimed thing's name: `guid`, `key`): true the
/// first time, false when it exists already.
pub(crate) async fn claim(client: &aws_sdk_dynamodb::Client, table: &str, key: Key, what: (&str, &str)) -> Result<bool, String> {
    let mut record = key;
    record.insert(what.0.to_string(), AttributeValue::S(what.1.chars().take(1024).collect()));
    record.insert("outcome".into(), AttributeValue::S("claimed".into()));
    record.insert("first_seen_at".into(), AttributeValue::S(crate::clock::now_rfc3339()));
    let result = client.put_item().table_name(table).set_item(Some(record)).condition_expression("attribute_not_exists(pk)").send().await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(false),
        Err(e) => Err(DisplayErrorContext(e).to_string()),
    }
}

/// Records what became of a claim: `imported as …` or `refused: …`.
pub(crate) async fn settle(client: &aws_sdk_dynamodb::Client, table: &str, key: Key, outcome: &str) -> Result<(), String> {
    client
        .update_item()
        .table_name(table)
        .set_key(Some(key))
        .update_expression("SET outcome = :outcome")
        .expression_attribute_values(":outcome", AttributeValue::S(outcome.chars().take(2048).collect()))
        .send()
        .await
        .map_err(|e| DisplayErrorContext(e).to_string())?;
    Ok(())
}

/// Gives a claim back, so the next poll tries again.
pub(crate) async fn release(client: &aws_sdk_dynamodb::Client, table: &str, key: Key) -> Result<(), String> {
    client.delete_item().table_name(table).set_key(Some(key)).send().await.map_err(|e| DisplayErrorContext(e).to_string())?;
    Ok(())
}
