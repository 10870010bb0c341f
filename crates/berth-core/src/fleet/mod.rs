//! What Berth runs: instances, the regions they may be placed in, and the certificate authority
//! that signs their server certificates. Changing an instance enqueues a job (`crate::jobs`);
//! keeping them as they should be is `crate::background`'s.

pub(crate) mod ca;
pub(crate) mod instances;
