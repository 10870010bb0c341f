//! What Berth runs: instances, the external data sources they import from, the jobs that change them (and the idempotency keys of the
//! requests that created them), pre-started spares, and the certificate authority that signs
//! the instances' certificates.

pub mod authorities;
pub mod backups;
pub mod data_sources;
pub mod db_users;
pub mod firewall;
pub mod idempotency;
pub mod instances;
pub mod jobs;
pub mod parameters;
pub mod ports;
pub mod spares;
pub mod stats;
pub mod workflows;
