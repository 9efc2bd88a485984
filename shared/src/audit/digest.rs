//! Signed, chained digests of every chain head: what makes the ledger tamper-evident against the
//! roles that write it, the way CloudTrail's log-file integrity validation does.
//!
//! A hash chain alone proves nothing to someone who can rewrite it: any role holding `PutItem` on
//! the ledger can replace a day's records, recompute every hash and the head, and the chain reads
//! intact. So a digest writer, the only principal allowed to use an asymmetric KMS signing key,
//! periodically records every chain head (`seq`, `hash`) of every day still open, signs the
//! digest, and stores it in the Object Lock (compliance) archive bucket, where no one can replace
//! or delete it. Each digest names the previous one (its sequence number and SHA-256), so the
//! digests form one chain across all days; a day is closed by the first digest written
//! [`CLOSE_GRACE`] after it ended, which lists its final heads and moves `closed_through` past it.
//!
//! The verifier ([`check_day`]) then holds the table to what was signed: every record a digest
//! listed must still be there with the hash it had, a closed day gains nothing, and a chain a
//! digest listed cannot vanish. A rewrite, truncation, deletion or insertion after a digest was
//! signed is named, even when the rewriter kept the chain consistent.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use aws_lc_rs::{digest as sha, signature};
use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime};

use crate::audit::ledger::record_sk;
use crate::audit::record::ChainId;
use crate::audit::verify::{check_chain, ChainItems, ChainReport, Problem};
use crate::ids::TenantId;

pub const DIGEST_VERSION: u8 = 1;
/// The signing algorithm digests are signed with (KMS `ECC_NIST_P256`, `ECDSA_SHA_256`).
pub const DIGEST_ALGORITHM: &str = "ECDSA_SHA_256";
/// Where digests live in the archive bucket: `{DIGEST_PREFIX}{YYYY-MM-DD}/{seq:012}.json`, the day
/// being the digest's own, so listing after a day's folder walks the digests in order.
pub const DIGEST_PREFIX: &str = "audit-digests/";
/// A day is closed by the first digest written this long after it ended. Appends stamped with a
/// day commit within seconds of the stamp (a contended append gives up after 3 s, and no function
/// runs longer than a minute), so nothing legitimate lands in a day after its grace.
pub const CLOSE_GRACE: Duration = Duration::minutes(10);

/// One chain's head as a digest saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadEntry {
    pub chain: String,
    pub seq: u64,
    pub hash: String,
}

/// The heads of one day's chains (every tenant, every shard), sorted by chain id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayHeads {
    pub day: String,
    /// This digest closes the day: its heads are final.
    pub closed: bool,
    pub chains: Vec<HeadEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestLink {
    pub seq: u64,
    /// SHA-256 (hex) of the previous digest's stored bytes.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub v: u8,
    pub seq: u64,
    /// When the heads were read, RFC 3339 UTC.
    pub time: String,
    pub previous: Option<DigestLink>,
    /// Every day up to and including this one is closed (absent until the first day closes).
    pub closed_through: Option<String>,
    /// Chains per tenant and day in use: the larger of the appenders' setting and the shards seen.
    pub shards: u16,
    pub days: Vec<DayHeads>,
}

impl Digest {
    pub fn to_bytes(&self) -> Result<Vec<u8>, DigestProblem> {
        serde_json::to_vec(self).map_err(|e| DigestProblem::Unreadable { key: self.key(), reason: e.to_string() })
    }

    /// The object key this digest is stored under.
    pub fn key(&self) -> String {
        let day = self.time.get(..10).unwrap_or("0000-00-00");
        format!("{DIGEST_PREFIX}{day}/{:012}.json", self.seq)
    }

    pub fn day(&self, day: &str) -> Option<&DayHeads> {
        self.days.iter().find(|d| d.day == day)
    }
}

/// A digest as stored: the exact bytes that were signed, the signature, and the key that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDigest {
    pub key: String,
    pub bytes: Vec<u8>,
    pub signature: Vec<u8>,
    pub key_id: String,
}

impl SignedDigest {
    pub fn sha256(&self) -> String {
        hex::encode(sha::digest(&sha::SHA256, &self.bytes))
    }

    pub fn digest(&self) -> Result<Digest, DigestProblem> {
        serde_json::from_slice(&self.bytes).map_err(|e| DigestProblem::Unreadable { key: self.key.clone(), reason: e.to_string() })
    }

    pub fn link(&self, seq: u64) -> DigestLink {
        DigestLink { seq, sha256: self.sha256() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("the audit digest key cannot sign: {0}")]
    Signing(String),
    #[error("the audit archive is unavailable: {0}")]
    Store(String),
    #[error("the audit ledger is unavailable: {0}")]
    Ledger(String),
    #[error("the previous digest is unusable: {0}")]
    Previous(DigestProblem),
}

/// Signs digest bytes with a key only the digest writer may use.
#[async_trait::async_trait]
pub trait DigestSigner: Send + Sync {
    fn key_id(&self) -> &str;
    /// The key's public half, DER `SubjectPublicKeyInfo`.
    fn public_key(&self) -> &[u8];
    /// A DER-encoded ECDSA P-256 signature over SHA-256 of `bytes`.
    async fn sign(&self, bytes: &[u8]) -> Result<Vec<u8>, DigestError>;
}

/// Where signed digests are kept (the Object Lock archive bucket).
#[async_trait::async_trait]
pub trait DigestStore: Send + Sync {
    /// The newest digest, if any; `today` (YYYY-MM-DD) lets a store look in recent folders first.
    async fn latest(&self, today: &str) -> Result<Option<SignedDigest>, DigestError>;
    /// Stores a new digest; never replaces one.
    async fn put(&self, digest: &SignedDigest) -> Result<(), DigestError>;
}

/// Reads the current head of every chain of the given days (every tenant, every shard).
#[async_trait::async_trait]
pub trait HeadSource: Send + Sync {
    async fn heads(&self, days: &[String]) -> Result<Vec<HeadEntry>, DigestError>;
}

/// Writes the next digest: reads and checks the previous one (a digest chain that does not verify
/// is not extended: that is an alarm, not something to paper over), reads the heads of every day
/// still open, signs and stores.
pub async fn publish(
    store: &dyn DigestStore,
    heads: &dyn HeadSource,
    signer: &dyn DigestSigner,
    now: OffsetDateTime,
    configured_shards: u16,
) -> Result<Digest, DigestError> {
    let previous = match store.latest(&format_day(now.date())).await? {
        Some(signed) => {
            let digest = open_signed(&signed, signer.public_key()).map_err(DigestError::Previous)?;
            Some((digest, signed))
        }
        None => None,
    };
    let days = days_to_cover(previous.as_ref().map(|p| &p.0), now);
    let observed = heads.heads(&days).await?;
    let digest = next_digest(previous.as_ref().map(|(d, s)| (d, s)), &observed, now, configured_shards);
    let bytes = digest.to_bytes().map_err(|e| DigestError::Signing(e.to_string()))?;
    let signature = signer.sign(&bytes).await?;
    store.put(&SignedDigest { key: digest.key(), bytes, signature, key_id: signer.key_id().to_string() }).await?;
    Ok(digest)
}

/// Why a stored digest cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestProblem {
    Unreadable {
        key: String,
        reason: String,
    },
    BadSignature {
        key: String,
    },
    /// The digest does not name the one before it (a digest was removed, replaced or forged).
    Unlinked {
        key: String,
        expected: u64,
    },
    /// The digest's content says it is another digest than its place says.
    Misplaced {
        key: String,
    },
}

impl fmt::Display for DigestProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigestProblem::Unreadable { key, reason } => write!(f, "digest {key} is unreadable: {reason}"),
            DigestProblem::BadSignature { key } => write!(f, "digest {key} does not carry a valid signature of the audit digest key"),
            DigestProblem::Unlinked { key, expected } => {
                write!(f, "digest {key} does not follow digest #{expected}: the digest chain was broken")
            }
            DigestProblem::Misplaced { key } => write!(f, "digest {key} is stored under another digest's key"),
        }
    }
}

/// Checks a digest's signature against the digest key's public key (DER `SubjectPublicKeyInfo`,
/// as KMS `GetPublicKey` returns it) and parses it.
pub fn open_signed(signed: &SignedDigest, public_key: &[u8]) -> Result<Digest, DigestProblem> {
    signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, public_key)
        .verify(&signed.bytes, &signed.signature)
        .map_err(|_| DigestProblem::BadSignature { key: signed.key.clone() })?;
    let digest = signed.digest()?;
    if digest.key() != signed.key {
        return Err(DigestProblem::Misplaced { key: signed.key.clone() });
    }
    Ok(digest)
}

/// Opens a run of consecutive digests (in storage order) and checks each names the one before.
pub fn open_run(run: &[SignedDigest], public_key: &[u8]) -> Result<Vec<Digest>, DigestProblem> {
    let mut opened: Vec<Digest> = Vec::with_capacity(run.len());
    for (i, signed) in run.iter().enumerate() {
        let digest = open_signed(signed, public_key)?;
        if let Some(before) = i.checked_sub(1).map(|j| (&run[j], &opened[j])) {
            let expected = before.0.link(before.1.seq);
            if digest.previous.as_ref() != Some(&expected) {
                return Err(DigestProblem::Unlinked { key: signed.key.clone(), expected: before.1.seq });
            }
        }
        opened.push(digest);
    }
    Ok(opened)
}

fn parse_day(day: &str) -> Option<Date> {
    Date::parse(day, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

fn format_day(day: Date) -> String {
    format!("{:04}-{:02}-{:02}", day.year(), day.month() as u8, day.day())
}

/// The days the next digest covers: every day after the last closed one through today. Before
/// the first digest, yesterday and today (a new ledger has nothing older).
pub fn days_to_cover(previous: Option<&Digest>, now: OffsetDateTime) -> Vec<String> {
    let today = now.date();
    let first = match previous {
        Some(p) => match p.closed_through.as_deref().and_then(parse_day) {
            Some(closed) => closed.next_day().unwrap_or(closed),
            None => p.days.iter().filter_map(|d| parse_day(&d.day)).min().unwrap_or(today),
        },
        None => today.previous_day().unwrap_or(today),
    };
    let mut days = Vec::new();
    let mut day = first.min(today);
    loop {
        days.push(format_day(day));
        match day.next_day() {
            Some(next) if next <= today => day = next,
            _ => return days,
        }
    }
}

/// Whether a digest taken at `now` closes `day`.
pub fn closes(day: &str, now: OffsetDateTime) -> bool {
    match parse_day(day).and_then(|d| d.next_day()) {
        Some(end) => now >= end.midnight().assume_utc() + CLOSE_GRACE,
        None => false,
    }
}

/// The next digest from the heads read now (`observed`, for the days [`days_to_cover`] named).
/// A chain the previous digest listed and the table no longer shows keeps its old entry, so its
/// disappearance stays visible to the verifier.
pub fn next_digest(
    previous: Option<(&Digest, &SignedDigest)>,
    observed: &[HeadEntry],
    now: OffsetDateTime,
    configured_shards: u16,
) -> Digest {
    let covered = days_to_cover(previous.map(|p| p.0), now);
    let mut by_day: BTreeMap<String, BTreeMap<String, HeadEntry>> = covered.iter().map(|d| (d.clone(), BTreeMap::new())).collect();
    let mut shards = configured_shards.max(1);
    if let Some((p, _)) = previous {
        shards = shards.max(p.shards);
        for day in &p.days {
            if let Some(chains) = by_day.get_mut(&day.day) {
                chains.extend(day.chains.iter().map(|e| (e.chain.clone(), e.clone())));
            }
        }
    }
    for entry in observed {
        let Some(chain) = ChainId::parse(&entry.chain) else { continue };
        if let Some(chains) = by_day.get_mut(&chain.day) {
            shards = shards.max(chain.shard.saturating_add(1));
            chains.insert(entry.chain.clone(), entry.clone());
        }
    }
    let mut closed_through = previous.and_then(|p| p.0.closed_through.clone());
    let days = by_day
        .into_iter()
        .map(|(day, chains)| {
            let closed = closes(&day, now);
            if closed {
                closed_through = Some(day.clone());
            }
            DayHeads { day, closed, chains: chains.into_values().collect() }
        })
        .collect();
    let time = now.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| now.unix_timestamp().to_string());
    Digest {
        v: DIGEST_VERSION,
        seq: previous.map_or(1, |p| p.0.seq + 1),
        time,
        previous: previous.map(|(d, s)| s.link(d.seq)),
        closed_through,
        shards,
        days,
    }
}

/// What the verifier found for one tenant's day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayReport {
    pub chains: Vec<ChainReport>,
    /// The last digest that covered the day, and whether it closed it; `None`: no digest did.
    pub digest: Option<(u64, bool)>,
}

impl DayReport {
    pub fn is_intact(&self) -> bool {
        self.chains.iter().all(ChainReport::is_intact)
    }
}

/// Checks a tenant's day: each chain on its own ([`check_chain`]), then against every signed
/// digest that covered the day (`digests`, already opened and linked, in order). `stored` holds
/// what the table has for every chain of the tenant's day the caller read; it must include every
/// shard below the digests' `shards`.
pub fn check_day(tenant: &TenantId, day: &str, digests: &[Digest], mut stored: BTreeMap<u16, ChainItems>) -> DayReport {
    let covering: Vec<(&Digest, &DayHeads)> = digests.iter().filter_map(|d| d.day(day).map(|h| (d, h))).collect();
    let closing = covering.iter().find(|(_, h)| h.closed).map(|(d, _)| d.seq);
    let prefix = format!("{tenant}#{day}#");
    let mut shards: BTreeSet<u16> = stored.keys().copied().collect();
    for (_, heads) in &covering {
        shards.extend(heads.chains.iter().filter_map(|e| e.chain.strip_prefix(&prefix)?.parse::<u16>().ok()));
    }
    let chains = shards
        .into_iter()
        .map(|shard| {
            let chain = ChainId { tenant: tenant.clone(), day: day.to_string(), shard };
            let items = stored.remove(&shard).unwrap_or_default();
            let hashes: BTreeMap<u64, String> = items
                .records
                .iter()
                .filter_map(|(sk, r)| r.as_ref().ok().filter(|r| *sk == record_sk(r.seq)).map(|r| (r.seq, r.hash.clone())))
                .collect();
            let report = check_chain(&chain, items);
            if !report.is_intact() {
                return report;
            }
            let name = chain.to_string();
            let last = report.records;
            let problem = against_digests(&name, last, &hashes, &covering, closing);
            ChainReport { problem, ..report }
        })
        .collect();
    DayReport { chains, digest: covering.last().map(|(d, h)| (d.seq, h.closed)) }
}

fn against_digests(
    chain: &str,
    last: u64,
    hashes: &BTreeMap<u64, String>,
    covering: &[(&Digest, &DayHeads)],
    closing: Option<u64>,
) -> Option<Problem> {
    let mut listed_at_close = None;
    for (digest, heads) in covering {
        let Some(entry) = heads.chains.iter().find(|e| e.chain == chain) else { continue };
        if heads.closed {
            listed_at_close = Some(entry.seq);
        }
        if entry.seq > last {
            return Some(Problem::BehindDigest { last, listed: entry.seq, digest: digest.seq });
        }
        if hashes.get(&entry.seq) != Some(&entry.hash) {
            return Some(Problem::DiffersFromDigest { seq: entry.seq, digest: digest.seq });
        }
    }
    match closing {
        Some(digest) if last > listed_at_close.unwrap_or(0) => Some(Problem::AfterClose { seq: listed_at_close.unwrap_or(0) + 1, digest }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_new_ledger_covers_yesterday_and_today_and_closes_yesterday_after_the_grace() {
        let now = datetime!(2026-11-22 00:05 UTC);
        assert_eq!(days_to_cover(None, now), ["2026-11-21", "2026-11-22"]);
        assert!(!closes("2026-11-21", now));
        assert!(closes("2026-11-21", datetime!(2026-11-22 00:10 UTC)));
        assert!(!closes("2026-11-22", datetime!(2026-11-22 23:59 UTC)));
    }

    #[test]
    fn a_writer_that_was_down_covers_every_day_it_missed() {
        let first = next_digest(None, &[], datetime!(2026-11-20 12:00 UTC), 4);
        assert_eq!(first.closed_through.as_deref(), Some("2026-11-19"));
        let later = datetime!(2026-11-23 08:00 UTC);
        assert_eq!(days_to_cover(Some(&first), later), ["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23"]);
    }

    #[test]
    fn heads_that_vanish_keep_their_signed_entry() {
        let now = datetime!(2026-11-22 10:00 UTC);
        let seen = HeadEntry { chain: "acme#2026-11-22#2".into(), seq: 7, hash: "h7".into() };
        let first = next_digest(None, std::slice::from_ref(&seen), now, 1);
        assert_eq!(first.shards, 3, "a shard seen beyond the setting widens the count");
        let signed = SignedDigest { key: first.key(), bytes: first.to_bytes().unwrap(), signature: vec![], key_id: "k".into() };
        let second = next_digest(Some((&first, &signed)), &[], now + Duration::hours(1), 1);
        assert_eq!(second.day("2026-11-22").unwrap().chains, vec![seen]);
        assert_eq!(second.previous, Some(DigestLink { seq: 1, sha256: signed.sha256() }));
        assert_eq!(second.seq, 2);
    }
}
