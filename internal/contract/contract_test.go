package contract_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"portal/internal/loadtest"
	"portal/internal/peers"
	"portal/internal/sandbox"
	"portal/internal/staff"
)

// maxExamples bounds the cases generated per operation and phase: enough to
// reach every constraint of the document, small enough that the run takes
// a few minutes on two cores.
const maxExamples = 12

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// schemathesis is the fuzzer's command: $PORTAL_SCHEMATHESIS, or else
// .tools/schemathesis/bin/st under the project root. It is a peer of the
// test like moto: missing, the test fails and says how to install it.
func schemathesis(t *testing.T) string {
	t.Helper()
	path := os.Getenv("PORTAL_SCHEMATHESIS")
	if path == "" {
		root, err := peers.ProjectRoot()
		if err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(root, ".tools/schemathesis/bin/st")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the contract fuzzer is not installed: %s (run `make tools`, or set PORTAL_SCHEMATHESIS)", path)
	}
	return path
}

// checks are Schemathesis's checks the test runs.
const checks = "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance," +
	"response_schema_conformance,negative_data_rejection,positive_data_acceptance,missing_required_header," +
	"unsupported_method,allow_header_conformance,use_after_free,ensure_resource_availability,ignored_auth,object_level_authorization"

var runningAt = regexp.MustCompile(`The portal is running at (http://127\.0\.0\.1:\d+) `)

// TestAPIContract fuzzes the sandbox's API from its OpenAPI document: every
// operation with requests the document allows and requests it forbids, and
// every response checked against the document. Any disagreement or server
// error fails the test with Schemathesis's report and a curl command that
// reproduces it.
func TestAPIContract(t *testing.T) {
	st := schemathesis(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The sandbox logs every request at info; the fuzzer's report is what
	// this test shows.
	t.Setenv("PORTAL_LOG_LEVEL", "error")
	dir := t.TempDir()
	token, err := loadtest.PrepareToken(ctx, dir, "contract@portal.local", staff.Admin, staff.Ops, staff.Compliance, staff.Finance)
	if err != nil {
		t.Fatal(err)
	}

	// -small: a day of CloudTrail activity and two months of Stripe data
	// instead of a week and six months. The fuzzer checks the API's
	// shapes, which the smaller data has all of (every kind of event,
	// charge, refund, dispute and payout, lists of several pages), while
	// the background Stripe sync and every ingestion and validation the
	// fuzzer asks for read a seventh to a twelfth as much.
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- sandbox.Run(ctx, []string{"-addr", "127.0.0.1:0", "-dir", dir, "-small"}, &out, &errOut)
	}()
	var base string
	for deadline := time.Now().Add(3 * time.Minute); base == ""; {
		select {
		case err := <-done:
			t.Fatalf("sandbox stopped early: %v\nstdout: %s\nstderr: %s", err, out.String(), errOut.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sandbox did not start within 3 minutes\nstdout: %s\nstderr: %s", out.String(), errOut.String())
		}
		if m := runningAt.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		}
	}
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("sandbox: %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("sandbox did not stop within a minute")
		}
	}()

	work := t.TempDir()
	config, err := filepath.Abs("schemathesis.toml")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, st, "--config-file", config, "--no-color", "run", base+"/api/v1/openapi.json",
		"--url", base+"/api/v1",
		"-H", "Authorization: Bearer "+token,
		// Every check but the response time ("all" would add it): speed
		// is shown by benchmarks.
		"--checks", checks,
		"--mode", "all",
		"--phases", "examples,coverage,fuzzing",
		"--max-examples", strconv.Itoa(maxExamples),
		"--seed", "2026",
		"--workers", "2",
		// A guard against a hung request, not a speed target: POST
		// /activity/validations reads every digest and log file of the
		// period, slow on a loaded machine.
		"--request-timeout", "300",
		"--no-shrink",
		"--continue-on-failure",
		"--suppress-health-check", "all",
		"--report", "junit",
		"--report-dir", work,
	)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "COLUMNS=160")
	res, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("the API disagrees with its OpenAPI document (%v):\n%s\nthe sandbox's errors:\n%s", err, res, errorLines(errOut.String()))
	} else {
		t.Logf("%s", lastLines(res, 12))
	}
}

// lastLines is the end of a report: its summary.
func lastLines(b []byte, n int) []byte {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return bytes.Join(lines, []byte("\n"))
}

// errorLines picks the portal's logged errors out of the sandbox's output:
// what a 500 in the report was, on the server's side.
func errorLines(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "level=ERROR") {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return "(none logged)"
	}
	return strings.Join(out, "\n")
}
