//! What Berth runs: instances, the regions they may be placed in, their backups and where
//! restored instances come from, the data sources imported ones copy, their firewall rules, configuration, database users and
//! databases, and the certificate authority that signs their server
//! certificates. Changing an instance enqueues a job (`crate::jobs`);
//! keeping them as they should be is `crate::background`'s.

pub(crate) mod backups;
pub(crate) mod ca;
pub(crate) mod config;
pub(crate) mod data_sources;
pub(crate) mod db_users;
pub(crate) mod firewall;
pub(crate) mod instances;
pub(crate) mod parameters;
pub(crate) mod restore;
pub(crate) mod stats;
pub(crate) mod workflows;
