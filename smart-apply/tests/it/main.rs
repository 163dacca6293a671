//! Integration tests of smart-apply on real temp dirs, real processes and real HTTP servers
//! (and a real nginx where installed).

mod audit;
mod crash;
mod flow;
mod nginx;
mod port;
mod support;
