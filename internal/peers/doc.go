// Package peers starts and stops the real peers the portal talks to in tests
// and in the local sandbox: moto (AWS) in server mode, stripe-mock (Stripe)
// and headless Debian chromium (for browser tests).
//
// The peers are installed under the project's .tools/ directory by
// `make tools`; the paths can be overridden with the environment variables
// PORTAL_MOTO_SERVER, PORTAL_STRIPE_MOCK and PORTAL_CHROMIUM. Every server
// binds 127.0.0.1 on a free port, runs in its own process group and is killed
// with its whole group by Stop. On Linux a peer also receives SIGKILL when the
// process that started it dies, so a crashed test binary leaves nothing behind.
//
// # Tests
//
// MotoForTest and StripeMockForTest return one instance per test binary,
// started on first use. Tests isolate AWS state by account rather than by
// server: AccountConfigForTest (or AccountForTest plus AssumeAccount) gives
// each test its own 12-digit account. Stop the shared instances at the end of
// the package's tests:
//
//	func TestMain(m *testing.M) { peers.Main(m) }
//
// which is m.Run followed by StopAll. A missing peer fails the test with the
// command that installs it; tests are never skipped.
package peers
