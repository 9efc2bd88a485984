//! Records and their canonical encoding. The hash covers every field, the record's position
//! (chain and sequence number) and the previous record's hash, so changing, removing, inserting
//! or reordering anything breaks the chain at that record.

use std::fmt;

use aws_lc_rs::digest;
use serde::Serialize;

use crate::audit::ledger::AuditError;
use crate::ids::TenantId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "allow" => Some(Decision::Allow),
            "deny" => Some(Decision::Deny),
            _ => None,
        }
    }
}

/// What happened, before the ledger gives it a place in a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Whose ledger this lands in. Requests with no verifiable identity go to
    /// [`TenantId::unauthenticated`].
    pub tenant: TenantId,
    /// Subject of the principal, or `anonymous`.
    pub actor: String,
    /// Dotted verb: `session.authorize`, `content.playback`, `manifest.read`, `key.fetch`.
    pub action: String,
    /// `content/{id}`, `content/{id}/key/{key_id}`, `route/{route}`.
    pub resource: String,
    pub decision: Decision,
    /// Why: `granted`, or the reason for a denial.
    pub reason: String,
    pub request_id: String,
    pub source_ip: Option<String>,
}

/// One chain: `{tenant}#{YYYY-MM-DD}#{shard}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChainId {
    pub tenant: TenantId,
    pub day: String,
    pub shard: u16,
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}#{}", self.tenant, self.day, self.shard)
    }
}

impl ChainId {
    /// Reads `{tenant}#{YYYY-MM-DD}#{shard}` back.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.rsplitn(3, '#');
        let shard = parts.next()?.parse().ok()?;
        let day = parts.next()?;
        let tenant = TenantId::parse(parts.next()?).ok()?;
        let well_formed =
            day.len() == 10 && day.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
        well_formed.then(|| ChainId { tenant, day: day.to_string(), shard })
    }

    /// The `prev_hash` of a chain's first record: bound to the chain, so a first record cannot
    /// be moved to another chain.
    pub fn genesis_hash(&self) -> String {
        hex::encode(digest::digest(&digest::SHA256, format!("vaultstream-audit-genesis:{self}").as_bytes()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub chain: ChainId,
    pub seq: u64,
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    pub event: AuditEvent,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Serialize)]
struct Canonical<'a> {
    v: u8,
    chain: String,
    seq: u64,
    time: &'a str,
    tenant: &'a str,
    actor: &'a str,
    action: &'a str,
    resource: &'a str,
    decision: &'a str,
    reason: &'a str,
    request_id: &'a str,
    source_ip: &'a str,
    prev_hash: &'a str,
}

impl AuditRecord {
    /// Fixed field order, compact JSON: the same bytes on every machine and in every version.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, AuditError> {
        let e = &self.event;
        serde_json::to_vec(&Canonical {
            v: 1,
            chain: self.chain.to_string(),
            seq: self.seq,
            time: &self.time,
            tenant: e.tenant.as_str(),
            actor: &e.actor,
            action: &e.action,
            resource: &e.resource,
            decision: e.decision.as_str(),
            reason: &e.reason,
            request_id: &e.request_id,
            source_ip: e.source_ip.as_deref().unwrap_or(""),
            prev_hash: &self.prev_hash,
        })
        .map_err(|e| AuditError::Encoding(e.to_string()))
    }

    pub fn compute_hash(&self) -> Result<String, AuditError> {
        Ok(hex::encode(digest::digest(&digest::SHA256, &self.canonical_bytes()?)))
    }

    pub fn new(chain: ChainId, seq: u64, time: String, event: AuditEvent, prev_hash: String) -> Result<Self, AuditError> {
        let mut record = AuditRecord { chain, seq, time, event, prev_hash, hash: String::new() };
        record.hash = record.compute_hash()?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> AuditEvent {
        AuditEvent {
            tenant: TenantId::parse("acme").unwrap(),
            actor: "u1".into(),
            action: "key.fetch".into(),
            resource: "content/c1/key/k0".into(),
            decision: Decision::Allow,
            reason: "granted".into(),
            request_id: "r1".into(),
            source_ip: Some("203.0.113.9".into()),
        }
    }

    #[test]
    fn hash_covers_every_field_and_position() {
        let chain = ChainId { tenant: TenantId::parse("acme").unwrap(), day: "2026-11-21".into(), shard: 0 };
        let r = AuditRecord::new(chain.clone(), 1, "2026-11-21T00:00:00.000Z".into(), event(), chain.genesis_hash()).unwrap();
        assert_eq!(r.hash, r.compute_hash().unwrap());
        let mut changed = r.clone();
        changed.event.decision = Decision::Deny;
        assert_ne!(changed.compute_hash().unwrap(), r.hash);
        let mut moved = r.clone();
        moved.seq = 2;
        assert_ne!(moved.compute_hash().unwrap(), r.hash);
        let mut other_chain = r.clone();
        other_chain.chain.shard = 1;
        assert_ne!(other_chain.compute_hash().unwrap(), r.hash);
        assert_ne!(chain.genesis_hash(), other_chain.chain.genesis_hash());
    }
}
