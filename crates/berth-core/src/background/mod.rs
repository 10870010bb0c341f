//! Work that is not a request: the supervisor that keeps instances as they should be, and the
//! keeper of the spare-instance pool. (Key rotation and pruning live in `maintenance`.)

mod spares;
mod supervisor;
