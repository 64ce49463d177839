package web_test

// The security probe, replayed. A probe in the style of OWASP ASVS level 2
// (about 3,700 requests on loopback against `portal serve` and the sandbox)
// found the weaknesses the subtests below are named after, by severity.
// Each is fixed; these tests send the probe's requests again (real routes,
// the roles concerned, the same payloads) to a running portal and fail if
// any comes back. Route authorization for every role on every route is
// TestAuthorizationMatrix (routes_test.go); passkeys in a browser are
// TestPasskeysInBrowser.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"portal/internal/audit"
	"portal/internal/inventory"
	"portal/internal/peers"
	"portal/internal/peers/peertest"
	"portal/internal/staff"
	"portal/internal/web"
)

func TestSecurityProbe(t *testing.T) {
	h := newHarness(t, "-trust-proxy")
	ctx := context.Background()
	cfg := h.app.Staff.Config()

	t.Run("high: two-factor codes cannot be brute-forced", func(t *testing.T) {
		u := h.newUser(t, staff.Ops)
		// The probe: 60 wrong codes in a row, then the right one, within a
		// pending sign-in it restarts whenever it is ended.
		signedIn := false
		for i := 0; i < 60 && !signedIn; i++ {
			c := h.from(fmt.Sprintf("198.18.%d.1", i))
			if r := c.login(t, u.Email, u.Password, ""); r.Location() != "/login/2fa" {
				continue
			}
			r := c.submit(t, "/login/2fa", "/login/2fa", url.Values{"code": {h.wrongCode(t, u.Secret)}})
			signedIn = r.StatusCode == http.StatusSeeOther && r.Location() == "/"
		}
		c := h.from("198.18.99.1")
		c.pending(t, u)
		r := c.submit(t, "/login/2fa", "/login/2fa", url.Values{"code": {h.code(t, u.Secret)}})
		if signedIn || r.StatusCode != http.StatusTooManyRequests {
			t.Errorf("after 60 wrong codes the right one: got %d to %q, want 429 (the account's codes are limited)", r.StatusCode, r.Location())
		}
		if n := h.countRows(t, `SELECT COUNT(*) FROM second_factor_failures WHERE user_id = ?`, u.ID); n > cfg.MaxCodeFailures {
			t.Errorf("%d wrong codes counted, want at most %d: the rest were refused unchecked", n, cfg.MaxCodeFailures)
		}
		// One pending sign-in takes a few wrong codes, then it is void: even
		// the right code leads back to the password.
		v := h.newUser(t, staff.Ops)
		c = h.from("198.18.100.1")
		c.pending(t, v)
		for range cfg.MaxCodesPerSignIn {
			c.submit(t, "/login/2fa", "/login/2fa", url.Values{"code": {h.wrongCode(t, v.Secret)}})
		}
		if r := c.submit(t, "/login", "/login/2fa", url.Values{"code": {h.code(t, v.Secret)}}); r.Location() != "/login" {
			t.Errorf("the right code after %d wrong ones in one sign-in: got %d to %q, want back to /login", cfg.MaxCodesPerSignIn, r.StatusCode, r.Location())
		}
		// A pending sign-in is short-lived.
		h.clock.Advance(cfg.Window)
		c = h.from("198.18.99.2")
		c.pending(t, u)
		h.clock.Advance(cfg.PendingSignInLife + time.Second)
		if r := c.submit(t, "/login", "/login/2fa", url.Values{"code": {h.code(t, u.Secret)}}); r.Location() != "/login" {
			t.Errorf("a code after the pending sign-in's life: got %d to %q, want back to /login", r.StatusCode, r.Location())
		}
	})

	t.Run("medium: no open redirect after sign-in", func(t *testing.T) {
		payloads := []string{"/\t/evil.example/x", "/%09/evil.example/x", "//evil.example", "/\\evil.example", "/%5C%5Cevil.example",
			"/%2F%2Fevil.example", "/%252F%252Fevil.example", "https://evil.example", "/\r\n/evil.example", "javascript:alert(1)", "/\u3000/evil.example"}
		u := h.newUser(t, staff.Compliance)
		c := h.client()
		c.signIn(t, u, "/")
		for _, p := range payloads {
			// Signed in, GET /login?next= redirects at once.
			r := c.get(t, "/login?next="+url.QueryEscape(p))
			if r.Location() != "/" {
				t.Errorf("GET /login?next=%q signed in: Location %q, want /", p, r.Location())
			}
		}
		for _, p := range payloads[:4] {
			c := h.client()
			c.pending(t, u, p)
			r := c.submit(t, "/login/2fa", "/login/2fa", url.Values{"code": {h.code(t, u.Secret)}})
			if r.Location() != "/" {
				t.Errorf("sign-in with next=%q: Location %q, want /", p, r.Location())
			}
		}
	})

	t.Run("medium: anonymous input is bounded before it is stored", func(t *testing.T) {
		rows0 := h.countRows(t, `SELECT COUNT(*) FROM login_attempts`)
		const fromProbe = `SELECT COUNT(*) FROM audit_log WHERE source_ip = '192.0.2.200'`
		audit0 := h.countRows(t, fromProbe)
		huge := strings.Repeat("x", 1<<20) + "@example.com"
		c := h.from("192.0.2.200")
		attempts := 3 * cfg.MaxIPFailures
		for i := range attempts {
			email := huge
			if i%2 == 1 {
				email = fmt.Sprintf("Nobody%d@Example.com", i)
			}
			c.login(t, email, strings.Repeat("p", 64<<10), "")
		}
		rows := h.countRows(t, `SELECT COUNT(*) FROM login_attempts`) - rows0
		added := h.countRows(t, fromProbe) - audit0
		if rows > cfg.MaxIPFailures {
			t.Errorf("%d anonymous attempts from one source added %d login_attempts rows, want at most %d", attempts, rows, cfg.MaxIPFailures)
		}
		if added == 0 || added > cfg.MaxIPFailures+1 {
			t.Errorf("%d anonymous attempts from one source added %d audit records, want 1 to %d", attempts, added, cfg.MaxIPFailures+1)
		}
		if n := h.countRows(t, `SELECT COALESCE(MAX(length(email)), 0) FROM login_attempts`); n > 254 {
			t.Errorf("a stored email is %d bytes, want at most 254", n)
		}
		if n := h.countRows(t, `SELECT COALESCE(MAX(length(target) + length(details) + length(request_id) + length(source_ip)), 0) FROM audit_log WHERE actor = 'anonymous'`); n > 1024 {
			t.Errorf("an anonymous audit record holds %d bytes from the request, want at most 1 KiB", n)
		}
	})

	t.Run("medium: credential changes end sessions and tokens", func(t *testing.T) {
		admin, _ := h.signedIn(t, staff.Admin)
		u := h.newUser(t, staff.Compliance)
		a, b := h.client(), h.client()
		a.signIn(t, u, "/")
		b.signIn(t, u, "/")
		tok := h.apiToken(t, u.User)
		next := "a different passphrase 44 times"
		a.submit(t, "/account/password", "/account/password", url.Values{"current": {u.Password}, "new": {next}, "confirm": {next}})
		signedOut(t, b, "another session after a password change")
		signedInStill(t, a, "the session that changed the password")
		if h.tokenWorks(t, tok) {
			t.Error("a token survives a password change")
		}
		tok = h.apiToken(t, u.User)
		path := "/access/staff/" + itoa(u.ID)
		admin.submit(t, path, path+"/reset-2fa", nil)
		signedOut(t, a, "a session after an admin reset the two-factor")
		if r := a.get(t, "/account/2fa"); r.StatusCode == http.StatusOK {
			t.Error("the old session can open the enrolment after a two-factor reset")
		}
		if h.tokenWorks(t, tok) {
			t.Error("a token survives a two-factor reset")
		}
		tok = h.apiToken(t, u.User)
		admin.submit(t, path, path+"/reset-password", nil)
		if h.tokenWorks(t, tok) {
			t.Error("a token survives a password reset")
		}

		// A role change ends the sessions; a token acts with the new roles.
		w := h.newUser(t, staff.Compliance)
		c := h.client()
		c.signIn(t, w, "/")
		tok = h.apiToken(t, w.User)
		path = "/access/staff/" + itoa(w.ID)
		if r := admin.submit(t, path, path+"/roles", url.Values{"roles": {string(staff.Finance)}}); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("change roles: got %d", r.StatusCode)
		}
		signedOut(t, c, "a session after a role change")
		if r := h.api(t, http.MethodGet, "/api/v1/audit", tok, "", ""); r.StatusCode != http.StatusForbidden {
			t.Errorf("a token after compliance was taken away reads the audit trail: got %d, want 403", r.StatusCode)
		}

		// A session left open cannot add a factor without the password.
		c = h.client()
		c.signIn(t, w, "/")
		h.clock.Advance(10 * time.Minute)
		if r := c.get(t, "/account/2fa"); !strings.HasPrefix(r.Location(), "/account/confirm") {
			t.Errorf("GET /account/2fa ten minutes after signing in: got %d to %q, want the password confirmation", r.StatusCode, r.Location())
		}
		r := c.do(t, http.MethodPost, "/account/passkeys/options", nil, http.Header{"X-CSRF-Token": {c.csrf(t, "/account")}})
		if r.StatusCode != http.StatusConflict || !strings.Contains(r.Body, "Confirm your password") {
			t.Errorf("starting a passkey ten minutes after signing in: got %d %s, want 409 asking for the password", r.StatusCode, r.Body)
		}
	})

	t.Run("medium: metrics take no label from the client", func(t *testing.T) {
		for i := range 50 {
			c := h.client()
			c.do(t, fmt.Sprintf("X%dPROBE", i), "/healthz", nil, nil)
			c.get(t, fmt.Sprintf("/no-such-page-%d", i))
		}
		body := h.client().get(t, "/metrics").Body
		series := grep(body, "portal_echo_requests_total{")
		if !strings.Contains(series, `method="OTHER"`) {
			t.Errorf("no series counts the invented methods under OTHER:\n%s", series)
		}
		if strings.Contains(series, "PROBE") || strings.Contains(series, "no-such-page") {
			t.Errorf("metrics carry client-chosen labels:\n%s", series)
		}
		if n := strings.Count(series, "\n") + 1; n > 200 {
			t.Errorf("%d request series after the probe, want a bounded few", n)
		}
	})

	t.Run("low: exports neutralise spreadsheet formulas", func(t *testing.T) {
		formulas := []string{`=HYPERLINK("https://evil.example","x")`, "+1+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "@SUM(A1:A9)"}
		record := fmt.Sprintf(`{"Records":[{"eventVersion":"1.08","eventID":"probe-%d","eventTime":"2026-01-01T00:00:00Z","awsRegion":"us-east-1",
			"recipientAccountId":"111111111111","eventSource":%q,"eventName":%q,"sourceIPAddress":%q,"errorCode":%q,
			"userIdentity":{"type":"IAMUser","userName":%q,"arn":"arn:aws:iam::111111111111:user/x"},"requestID":"r","readOnly":false}]}`,
			time.Now().UnixNano(), formulas[0], formulas[1], formulas[2], formulas[3], formulas[0])
		if _, err := h.app.Activity.IngestReader(ctx, strings.NewReader(record), "probe", false); err != nil {
			t.Fatal(err)
		}
		inv := inventory.New(h.app.DB, h.app.Audit, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil)
		if _, err := inv.InsertSnapshot(ctx, []inventory.Resource{{ARN: "arn:aws:s3:::probe", Environment: "dev", AccountID: "111111111111",
			Region: "us-east-1", Service: "s3", Type: "s3:bucket", Name: formulas[0], Tags: map[string]string{formulas[3]: formulas[1]}}}); err != nil {
			t.Fatal(err)
		}
		c, _ := h.signedIn(t, staff.Ops)
		for _, path := range []string{"/activity/export.csv", "/inventory/export.csv"} {
			r := c.get(t, path)
			rows, err := csv.NewReader(strings.NewReader(r.Body)).ReadAll()
			if r.StatusCode != http.StatusOK || err != nil || len(rows) < 2 {
				t.Fatalf("GET %s: %d, %v, %d rows", path, r.StatusCode, err, len(rows))
			}
			for _, row := range rows[1:] {
				for _, cell := range row {
					if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
						t.Errorf("GET %s: cell %q would run as a formula", path, cell)
					}
				}
			}
		}
	})

	t.Run("low: someone else cannot keep an account locked", func(t *testing.T) {
		u := h.newUser(t, staff.Finance)
		// The owner's browser has signed in before.
		owner := h.from("192.0.2.50")
		owner.signIn(t, u, "/")
		owner.submit(t, "/", "/logout", nil)
		for i := range 100 {
			// Throttled attempts, other addresses, every letter case.
			email := u.Email
			if i%2 == 0 {
				email = strings.ToUpper(email)
			}
			h.from(fmt.Sprintf("203.0.113.%d", i%25+1)).login(t, email, "guessing", "")
		}
		// The owner's browser, used before, still signs in.
		owner.signIn(t, u, "/")
		if n := h.countRows(t, `SELECT COUNT(*) FROM login_attempts WHERE email = ? AND ok = 0`, strings.ToLower(u.Email)); n > cfg.MaxAccountFailures {
			t.Errorf("%d failures counted against the account, want at most %d (refused attempts do not count)", n, cfg.MaxAccountFailures)
		}
	})

	t.Run("low: client request IDs are bounded", func(t *testing.T) {
		c := h.client()
		c.header.Set("X-Request-Id", strings.Repeat("<script>", 4096))
		r := c.login(t, "probe-rid@example.com", "x", "")
		recs := h.records(t, audit.Filter{Target: "email:probe-rid@example.com"})
		if len(recs) != 1 || len(recs[0].RequestID) > 64 || strings.Contains(recs[0].RequestID, "<") || r.Header.Get("X-Request-Id") != recs[0].RequestID {
			t.Errorf("records %+v, response ID %q: want one record with a fresh ID of at most 64 plain characters", recs, r.Header.Get("X-Request-Id"))
		}
	})

	t.Run("low: exports and refusals are audited", func(t *testing.T) {
		c, u := h.signedIn(t, staff.Compliance)
		c.get(t, "/audit/export.csv?action=auth.sign_in")
		c.get(t, "/activity/export.jsonl")
		c.get(t, "/inventory/export.csv?service=s3")
		c.get(t, "/billing")
		f, fu := h.signedIn(t, staff.Finance)
		f.get(t, "/billing/transactions.csv")
		for _, want := range []struct {
			action string
			by     user
		}{{"export.audit", u}, {"export.activity", u}, {"export.inventory", u}, {"access.denied", u}, {"export.billing.transactions", fu}} {
			recs := h.records(t, audit.Filter{Action: want.action, Actor: want.by.Label()})
			if len(recs) == 0 {
				t.Errorf("no %s record by %s", want.action, want.by.Label())
			} else if _, ok := recs[0].Details["rows"]; !ok && want.action != "access.denied" {
				t.Errorf("%s record %v does not say how many rows went out", want.action, recs[0].Details)
			}
		}
	})

	t.Run("info: CSRF tokens are bound to the session", func(t *testing.T) {
		a, _ := h.signedIn(t, staff.Finance)
		b, _ := h.signedIn(t, staff.Finance)
		if r := b.post(t, "/access/tokens", url.Values{"name": {"x"}, "_csrf": {a.csrf(t, "/access")}}); r.StatusCode != http.StatusForbidden {
			t.Errorf("another session's CSRF token: got %d, want 403", r.StatusCode)
		}
	})

	t.Run("info: tokens expire and carry scopes within the owner's roles", func(t *testing.T) {
		c, u := h.signedIn(t, staff.Ops)
		tok := c.createToken(t, url.Values{"name": {"probe"}})
		if r := h.api(t, http.MethodPost, "/api/v1/plans", tok, "application/json", `{"stack":"dev-eu"}`); r.StatusCode != http.StatusForbidden {
			t.Errorf("a default (read-only) token writing: got %d, want 403", r.StatusCode)
		}
		if r := h.api(t, http.MethodGet, "/api/v1/staff", tok, "", ""); r.StatusCode != http.StatusForbidden {
			t.Errorf("an ops token reading staff: got %d, want 403 (the owner's roles)", r.StatusCode)
		}
		toks, _ := h.app.Staff.ListTokens(ctx, u.ID)
		if len(toks) == 0 || toks[0].ExpiresAt.Sub(h.clock.Now()) > 91*24*time.Hour {
			t.Fatalf("tokens %+v: want an expiry 90 days out", toks)
		}
		h.clock.Advance(91 * 24 * time.Hour)
		if h.tokenWorks(t, tok) {
			t.Error("a token works after 91 days")
		}
		c, _ = h.signedIn(t, staff.Ops)
		if r := h.api(t, http.MethodGet, "/api/v1/me", tok, "", ""); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("an expired token: got %d, want 401", r.StatusCode)
		}
	})

	t.Run("info: two-factor is required for every role", func(t *testing.T) {
		for _, role := range []staff.Role{staff.Compliance, staff.Finance} {
			u, otp := h.newUserOTP(t, role)
			if r := h.client().login(t, u.Email, otp, ""); r.Location() != "/account/2fa" {
				t.Errorf("%s signing in without two-factor: got %d to %q, want /account/2fa", role, r.StatusCode, r.Location())
			}
		}
	})

	t.Run("info: weak passwords are refused", func(t *testing.T) {
		c, u := h.signedIn(t, staff.Finance)
		for _, pw := range []string{"password1234", "qwertyuiop12", "aaaaaaaaaaaa", "Summer2026!!!", "iloveyou1234"} {
			r := c.submit(t, "/account/password", "/account/password", url.Values{"current": {u.Password}, "new": {pw}, "confirm": {pw}})
			if r.StatusCode != http.StatusBadRequest {
				t.Errorf("password %q: got %d, want 400", pw, r.StatusCode)
			}
		}
		// The password is still the one it was.
		c.submit(t, "/", "/logout", nil)
		c.signIn(t, u, "/")
	})

	t.Run("handled: injection payloads in filters", func(t *testing.T) {
		c, _ := h.signedIn(t, staff.Admin)
		for _, p := range []string{`' OR 1=1 --`, `"><script>alert(1)</script>`, `%' UNION SELECT password_hash FROM users --`} {
			for _, path := range []string{"/audit?q=", "/activity?q=", "/inventory?q="} {
				r := c.get(t, path+url.QueryEscape(p))
				if r.StatusCode >= 500 || strings.Contains(r.Body, "<script>alert(1)</script>") || strings.Contains(r.Body, "$argon2id$") {
					t.Errorf("GET %s%q: %d, payload reflected or leaked", path, p, r.StatusCode)
				}
			}
		}
	})
}

// TestSecurityProbeAuditTrail replays the probe of the audit trail's
// integrity against a portal that anchors its chain in S3 Object Lock (moto)
// in an audit account: a database writer deleting the newest records, and
// one who also holds the key rewriting a record and re-sealing the chain
// after it. The chain alone verifies after both; the audit page, checking
// the anchors, names each.
func TestSecurityProbeAuditTrail(t *testing.T) {
	ctx := context.Background()
	t.Run("truncation", func(t *testing.T) {
		h, _ := anchoredHarness(t, "audit-anchors-truncation")
		c, u := h.signedIn(t, staff.Compliance)
		if _, err := h.app.AnchorNow(ctx); err != nil {
			t.Fatalf("anchor: %v", err)
		}
		r := c.get(t, "/audit/verify")
		if got, ok := r.TestID(t, "chain-anchored"); !ok {
			t.Fatalf("verify an anchored chain: %q (%s), want it to match its anchors", got, grepTestIDs(r.Body))
		}
		if v := h.apiVerify(t, u); !v.OK || v.Anchoring != "checked" || v.Anchors < 1 || v.AnchorSeq == 0 {
			t.Fatalf("the API's verification of an anchored chain: %+v, want ok, checked against its anchors", v)
		}
		if _, err := h.app.DB.ExecContext(ctx, `DELETE FROM audit_log WHERE seq > (SELECT MAX(seq) - 3 FROM audit_log)`); err != nil {
			t.Fatal(err)
		}
		if v, err := h.app.Audit.Verify(ctx); err != nil || !v.OK {
			t.Fatalf("the shortened chain on its own: %+v %v, want intact (only the anchors can tell)", v, err)
		}
		r = c.get(t, "/audit/verify")
		if got, ok := r.TestID(t, "chain-broken"); !ok || !strings.Contains(got, "newest records were deleted") {
			t.Errorf("after deleting the newest records: %q, want the chain broken naming the deletion", got)
		}
		if v := h.apiVerify(t, u); v.OK || !strings.Contains(v.Reason, "newest records were deleted") || v.Anchoring != "checked" {
			t.Errorf("the API after deleting the newest records: %+v, want broken, naming the deletion", v)
		}
	})
	t.Run("rewritten and re-sealed with the key", func(t *testing.T) {
		h, _ := anchoredHarness(t, "audit-anchors-rewrite")
		c, u := h.signedIn(t, staff.Compliance)
		if ok, err := h.app.AnchorNow(ctx); err != nil || !ok {
			t.Fatalf("anchor: %v %v", ok, err)
		}
		// The sign-in of u (before the anchored head), rewritten as the
		// system's.
		recs := h.records(t, audit.Filter{Action: "auth.sign_in", Target: u.Label()})
		if len(recs) != 1 {
			t.Fatalf("sign-in records %+v, want one", recs)
		}
		h.reseal(t, recs[0].Seq, "actor", "system")
		if v, err := h.app.Audit.Verify(ctx); err != nil || !v.OK {
			t.Fatalf("the re-sealed chain on its own: %+v %v, want intact (the rewrite is complete)", v, err)
		}
		r := c.get(t, "/audit/verify")
		if got, ok := r.TestID(t, "chain-broken"); !ok || !strings.Contains(got, "does not match its anchor") {
			t.Errorf("after rewriting record %d: %q (%s), want the chain broken at the anchored record", recs[0].Seq, got, grepTestIDs(r.Body))
		}
		if v := h.apiVerify(t, u); v.OK || !strings.Contains(v.Reason, "does not match its anchor") {
			t.Errorf("the API after rewriting record %d: %+v, want broken at the anchored record", recs[0].Seq, v)
		}
	})
}

// apiVerify asks the API to verify the chain, as a compliance officer's
// script does.
func (h *harness) apiVerify(t *testing.T, u user) web.APIVerification {
	t.Helper()
	r := h.api(t, http.MethodGet, "/api/v1/audit/verify", h.apiToken(t, u.User), "", "")
	var v web.APIVerification
	if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(r.Body), &v) != nil {
		t.Fatalf("GET /api/v1/audit/verify: %d %s", r.StatusCode, r.Body)
	}
	return v
}

// reseal sets column of record seq to value and seals that record and
// every one after it again with the portal's own audit keys, as the
// package audit documentation specifies the seal: what someone holding both
// the database and the key can do.
func (h *harness) reseal(t *testing.T, seq int64, column, value string) {
	t.Helper()
	ctx := context.Background()
	if _, err := h.app.DB.ExecContext(ctx, `UPDATE audit_log SET `+column+` = ? WHERE seq = ?`, value, seq); err != nil {
		t.Fatal(err)
	}
	var prev string
	if err := h.app.DB.QueryRowContext(ctx, `SELECT hash FROM audit_log WHERE seq = ?`, seq-1).Scan(&prev); err != nil {
		t.Fatal(err)
	}
	rows, err := h.app.DB.QueryContext(ctx, `SELECT seq, at, actor, action, target, source_ip, request_id, details, key_id FROM audit_log WHERE seq >= ? ORDER BY seq`, seq)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		seq    int64
		fields [9]string
	}
	var recs []rec
	for rows.Next() {
		var r rec
		f := &r.fields
		if err := rows.Scan(&r.seq, &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8]); err != nil {
			t.Fatal(err)
		}
		f[0] = strconv.FormatInt(r.seq, 10)
		recs = append(recs, r)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		k, ok := h.app.Audit.Keys().Get(r.fields[8])
		if !ok {
			t.Fatalf("record %d: no key %q", r.seq, r.fields[8])
		}
		mac := hmac.New(sha256.New, k.Secret)
		io.WriteString(mac, "portal-audit-v2\n")
		for _, f := range append(r.fields[:], prev) {
			fmt.Fprintf(mac, "%d:%s,", len(f), f)
		}
		sum := hex.EncodeToString(mac.Sum(nil))
		if _, err := h.app.DB.ExecContext(ctx, `UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?`, prev, sum, r.seq); err != nil {
			t.Fatal(err)
		}
		prev = sum
	}
}

// TestSecurityProbeCookies: served over https, every cookie the portal sets
// has the __Host- prefix (Secure, Path=/, no Domain), so no other host of
// the domain can plant or overwrite it.
func TestSecurityProbeCookies(t *testing.T) {
	h := newHarness(t, "-base-url", "https://portal.example.com")
	res, err := http.Get(h.url + "/login")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	cks := res.Cookies()
	if len(cks) == 0 {
		t.Fatal("GET /login set no cookie")
	}
	for _, ck := range cks {
		if !strings.HasPrefix(ck.Name, "__Host-") || !ck.Secure || ck.Path != "/" || ck.Domain != "" || !ck.HttpOnly {
			t.Errorf("cookie %s: Secure %v, Path %q, Domain %q, HttpOnly %v; want __Host-, Secure, Path=/, no Domain, HttpOnly", ck.Name, ck.Secure, ck.Path, ck.Domain, ck.HttpOnly)
		}
	}
}

// anchoredHarness is a portal whose audit chain is anchored in bucket, an
// S3 bucket with Object Lock in an audit account of its own in moto
// (bucket names are global, as in AWS).
func anchoredHarness(t *testing.T, bucket string) (*harness, string) {
	t.Helper()
	moto := peertest.MotoForTest(t)
	peertest.SetAWSEnv(t, moto)
	cfg, account := peertest.AccountConfigForTest(t, moto, "us-east-1")
	if err := audit.CreateAnchorBucket(context.Background(), s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }), bucket, "us-east-1", 1); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, "-audit-anchor-bucket", bucket, "-audit-anchor-account-id", account,
		"-audit-anchor-role-arn", peers.RoleARN(account, peertest.TestRole))
	return h, account
}

// grepTestIDs lists the data-testid values in a page, for failure messages.
func grepTestIDs(body string) string {
	return strings.Join(regexp.MustCompile(`data-testid="([^"]+)"`).FindAllString(body, -1), " ")
}
