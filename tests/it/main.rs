//! Every integration test of ims-token, in one test binary (one link of
//! rsa, rustls and ring instead of one per file), a module per area.
//!
//! `common` holds what several areas use: the fake IMS on 127.0.0.1
//! (`common::fake_ims`), the HTTP bytes it and the other small servers
//! speak, temp dirs, fixtures, the command runner and the JWT checks.
//! The tests share this process: a test that must change process-global
//! state (the environment) reruns itself alone in a child process
//! (`common::in_a_process_of_its_own`), and the capturing logger of
//! `logging` keeps only its own threads' records.

mod common;

mod api;
mod cli;
mod cli_credentials;
mod cli_generate;
mod cli_introspect;
mod cli_invalidate;
mod cli_refresh;
mod clock;
mod credential_kinds;
mod credentials;
mod exchange;
mod fake_ims_selftest;
mod faults;
mod hardening;
mod introspect;
mod jwt;
mod logging;
mod properties;
mod provider;
mod refresh;
mod sink;
