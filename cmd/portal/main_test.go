package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

// TestUsersAddAndAuditVerify runs the scripting commands as a person would:
// add two users, verify the audit chain, tamper with a record, verify again.
func TestUsersAddAndAuditVerify(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"users", "add", "-data-dir", dir, "-email", "ann@example.com", "-role", "ops", "-role", "compliance"}, &out, &errOut); code != 0 {
		t.Fatalf("users add: exit %d, stderr %q", code, errOut.String())
	}
	if !regexp.MustCompile(`One-time password .*: \S{5}-\S{5}-\S{5}-\S{5}`).MatchString(out.String()) {
		t.Errorf("users add printed %q, want a one-time password", out.String())
	}
	if !strings.Contains(out.String(), "ops, compliance") {
		t.Errorf("users add printed %q, want the roles ops, compliance", out.String())
	}
	if code := run(ctx, []string{"users", "add", "-data-dir", dir, "-email", "ann@example.com", "-role", "ops"}, &out, &errOut); code == 0 {
		t.Errorf("adding the same email twice: exit 0, want non-zero")
	}
	errOut.Reset()
	if code := run(ctx, []string{"users", "add", "-data-dir", dir, "-email", "bob@example.com", "-role", "wizard"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `unknown role "wizard"`) {
		t.Errorf("unknown role: exit %d, stderr %q; want 2 naming the role", code, errOut.String())
	}
	if code := run(ctx, []string{"users", "add", "-data-dir", dir, "-email", "bob@example.com", "-role", "finance"}, &out, &errOut); code != 0 {
		t.Fatalf("users add bob: exit %d, stderr %q", code, errOut.String())
	}

	db := filepath.Join(dir, "portal.db")
	if fi, err := os.Stat(filepath.Join(dir, "audit.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("users add left audit.key %v, %v; want the key ring, mode 0600", fi, err)
	}
	out.Reset()
	if code := run(ctx, []string{"audit", "verify", "-db", db}, &out, &errOut); code != 0 {
		t.Fatalf("audit verify on an untouched trail: exit %d, output %q %q", code, out.String(), errOut.String())
	}

	sdb, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sdb.Exec(`UPDATE audit_log SET actor = 'someone-else' WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}
	sdb.Close()
	out.Reset()
	errOut.Reset()
	code := run(ctx, []string{"audit", "verify", "-db", db}, &out, &errOut)
	if code != 1 {
		t.Errorf("audit verify after tampering: exit %d, want 1", code)
	}
	if got := out.String() + errOut.String(); !strings.Contains(got, "record 1") {
		t.Errorf("audit verify after tampering printed %q, want it to name record 1", got)
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"frobnicate"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `unknown command "frobnicate"`) {
		t.Errorf("exit %d, stderr %q; want 2 naming the command", code, errOut.String())
	}
}

// TestProductionBinaryLinksNoTestCode: the portal binary must not carry the
// testing package, the browser driver, the test peers or the load tools;
// those belong to cmd/portal-dev and the tests.
func TestProductionBinaryLinksNoTestCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "testing", strings.HasPrefix(dep, "github.com/chromedp/"),
			dep == "portal/internal/peers", strings.HasPrefix(dep, "portal/internal/peers/"),
			dep == "portal/internal/loadtest", dep == "portal/internal/sandbox",
			dep == "portal/internal/billing/stripefixture":
			t.Errorf("cmd/portal links %s; keep it out of the production binary", dep)
		}
	}
}
