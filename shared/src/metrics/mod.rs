//! The metrics VaultStream publishes, as CloudWatch EMF documents (`crate::emf`): the domain
//! events counted during one invocation ([`tally`]) and one transcode job's figures ([`job`]).
//! infra/contract.json's `observability.metrics` lists every metric with its unit and dimension
//! sets; the dashboards and alarms read only those, and a test holds the emitters to the list.

pub mod job;
pub mod tally;
