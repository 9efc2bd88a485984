//! Listing an S3 prefix, for the adapters that read a run of objects in key order.

/// Every key under `prefix` (after `start_after` when given), in key order, all pages.
pub async fn list_keys(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str, start_after: Option<&str>) -> Result<Vec<String>, String> {
    let mut keys = Vec::new();
    let mut pages =
        client.list_objects_v2().bucket(bucket).prefix(prefix).set_start_after(start_after.map(str::to_string)).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| format!("listing s3://{bucket}/{prefix}: {}", aws_sdk_s3::error::DisplayErrorContext(&e)))?;
        keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
    }
    Ok(keys)
}
