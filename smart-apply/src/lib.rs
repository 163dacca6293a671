//! Applies an experiment's config to a live server and always puts the original back: atomic
//! writes, backups with checksums, a fsynced journal and recovery after a crash.
