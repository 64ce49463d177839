// Package peers starts and stops the real peers the portal talks to in tests
// and in the local sandbox: moto (AWS) in server mode, stripe-mock (Stripe),
// mailpit (e-mail), PostgreSQL 15 (for the several-replica mode) and
// headless Debian chromium (for browser tests), plus the alert inbox that
// stands in for the blueprints' SNS subscribers.
//
// The peers are installed under the project's .tools/ directory by
// `make tools` (PostgreSQL and chromium with apt); the paths can be
// overridden with the environment variables PORTAL_MOTO_SERVER,
// PORTAL_STRIPE_MOCK, PORTAL_MAILPIT, PORTAL_PG_BINDIR and PORTAL_CHROMIUM.
// Every server binds 127.0.0.1 on a free port, runs in its own process group
// and is killed with its whole group by Stop. On Linux a peer also receives
// SIGKILL when the process that started it dies, so a crashed test binary
// leaves nothing behind.
//
// PostgreSQL refuses to run as root. StartPostgres creates a cluster in a
// temporary folder with initdb and, when the calling process is root, gives
// the folder to Debian's "postgres" account (or "nobody") and runs initdb
// and the server as that account; otherwise as the caller.
//
// # TLS and the sandbox CA
//
// moto serves HTTPS, as AWS does, with a certificate from a CA of the
// sandbox's own (CA). Only the clients given that CA trust it (AWSConfig,
// AWS_CA_BUNDLE from Env, HTTPClient); it never enters the system's trust
// store. moto's own outgoing requests (SNS deliveries to http and https
// subscribers) go through the alert inbox (AlertInbox), which answers for any
// host name over TLS with a certificate from the same CA, so the shipped
// blueprints' subscriber addresses work unchanged on this machine.
//
// # moto's runtime patches
//
// moto starts through motopatch/launch.py, which applies every
// motopatch/patch_*.py before moto's server starts. Each patch mends one
// place where moto answers differently from AWS, names the upstream
// behaviour in its docstring, and has its own test, test_patch_*.py, run
// by this package's tests with moto's python. To add one, drop
// patch_NAME.py (with an apply() function) and test_patch_NAME.py into
// motopatch/; nothing else needs to change.
//
// # Tests
//
// The helpers for tests live in package peertest: one instance of each peer
// per test binary, started on first use. Tests isolate AWS state by account
// rather than by server (peertest.AccountConfigForTest).
package peers
