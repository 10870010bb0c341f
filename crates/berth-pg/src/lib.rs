//! Finding PostgreSQL server binaries and running PostgreSQL clusters as child processes.
//!
//! `berth serve` uses this crate to create and run its own small "system" cluster, and the local
//! engine uses it to run customer instances, possibly hundreds per host. So everything here is
//! cheap (no polling threads, no per-cluster tasks) and safe across restarts of berth: a cluster
//! outlives the process that started it and is found again ("adopted") through its
//! `postmaster.pid`, which is only trusted after checking the process really is that cluster's
//! postmaster.
//!
//! Linux only in practice: process identity checks read `/proc`; where `/proc` is missing, a live
//! pid file is reported as unverifiable instead of being trusted or removed.

mod binaries;
mod cluster;
mod command;
mod dirs;
mod error;
mod init;
mod lockfile;
mod logfile;
mod process;
mod socket;
mod user;

pub use binaries::PgBinaries;
pub use cluster::{stop_data_dir, Cluster, ClusterSpec};
pub use command::tool_command;
pub use error::PgError;
pub use logfile::rotate_log_if_larger;
pub use socket::socket_dir_for;
pub use user::{run_as_for_current_process, RunAs};
