package staff_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/peers/peertest"
	"portal/internal/staff"
	"portal/internal/store"
)

// These tests run staff accounts on this run's database (SQLite, or
// PostgreSQL with PORTAL_TEST_STORE=postgres), as two replicas do: two
// handles on one database, each with its own service.

func TestMain(m *testing.M) { peertest.Main(m) }

var fastHash = staff.HashParams{Memory: 64, Time: 1, Threads: 1}

func testKey(b byte) []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = b
	}
	return k
}

// replica opens the database at dsn as one portal would, with the sealing
// key key.
func replica(t *testing.T, dsn string, key []byte) (*staff.Service, *store.DB) {
	t.Helper()
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sealer, err := staff.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := staff.DefaultConfig()
	cfg.Hash = fastHash
	return staff.NewService(db, audit.New(db, nil), sealer, cfg, nil), db
}

var admin = audit.Entry{Actor: "test", SourceIP: "192.0.2.1"}

func TestEnsureAdminOnceAcrossReplicas(t *testing.T) {
	dsn := peertest.StoreDSNForTest(t)
	a, _ := replica(t, dsn, testKey(1))
	b, db := replica(t, dsn, testKey(1))
	var wg sync.WaitGroup
	created := make([]bool, 4)
	for i, s := range []*staff.Service{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, ok, err := s.EnsureAdmin(context.Background(), "first@portal.local")
			if err != nil {
				t.Error(err)
			}
			created[i] = ok
		}()
	}
	wg.Wait()
	n := 0
	for _, c := range created {
		if c {
			n++
		}
	}
	var users int
	db.QueryRow(`SELECT COUNT(*) FROM users`).Scan(&users)
	if n != 1 || users != 1 {
		t.Errorf("four starts at once created %d admins (%d accounts), want 1", n, users)
	}
}

func TestAccountsAreSharedByReplicas(t *testing.T) {
	ctx := context.Background()
	dsn := peertest.StoreDSNForTest(t)
	a, _ := replica(t, dsn, testKey(1))
	b, _ := replica(t, dsn, testKey(1))
	u, otp, err := a.Create(ctx, admin, staff.NewUser{Email: "Dara.Sec@Example.com", Name: "Dara", Roles: []staff.Role{staff.Compliance, staff.Finance}})
	if err != nil {
		t.Fatal(err)
	}
	// Emails are one account whatever their case; roles read back whole.
	got, err := b.GetByEmail(ctx, "DARA.SEC@example.COM")
	if err != nil || got.ID != u.ID || len(got.Roles) != 2 {
		t.Fatalf("GetByEmail on the other replica: %+v, %v; want account %d with 2 roles", got, err, u.ID)
	}
	if _, _, err := b.Create(ctx, admin, staff.NewUser{Email: "dara.sec@example.com", Roles: []staff.Role{staff.Ops}}); apperr.KindOf(err) != apperr.Conflict {
		t.Errorf("second account with the same email: %v, want a conflict", err)
	}
	if _, err := b.Authenticate(ctx, admin, staff.PasswordSignIn{Email: "dara.sec@example.com", Password: otp}); err != nil {
		t.Errorf("sign-in on the other replica with the one-time password: %v", err)
	}
	// A token made on one replica works on the other until revoked there.
	plain, tok, err := a.CreateToken(ctx, admin, u.ID, staff.NewToken{Name: "ci", Scopes: []string{"all"}})
	if err != nil {
		t.Fatal(err)
	}
	if who, _, err := b.AuthenticateToken(ctx, plain); err != nil || who.ID != u.ID {
		t.Errorf("token on the other replica: %v, %v", who.ID, err)
	}
	if err := b.RevokeToken(ctx, admin, u.ID, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.AuthenticateToken(ctx, plain); err == nil {
		t.Error("a token revoked on one replica still works on the other")
	}
}

// TestSignInLimitsCountAcrossReplicas: failures on either replica count
// towards one limit.
func TestSignInLimitsCountAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	dsn := peertest.StoreDSNForTest(t)
	a, _ := replica(t, dsn, testKey(1))
	b, _ := replica(t, dsn, testKey(1))
	if _, _, err := a.Create(ctx, admin, staff.NewUser{Email: "ana.ops@example.com", Roles: []staff.Role{staff.Ops}}); err != nil {
		t.Fatal(err)
	}
	from := audit.Entry{Actor: "anonymous", SourceIP: "198.51.100.9"}
	limit := staff.DefaultConfig().MaxAccountSourceFailures
	for i := range limit {
		s := a
		if i%2 == 1 {
			s = b
		}
		if _, err := s.Authenticate(ctx, from, staff.PasswordSignIn{Email: "ana.ops@example.com", Password: "wrong password number"}); !errors.Is(err, staff.ErrBadCredentials) {
			t.Fatalf("attempt %d: %v, want bad credentials", i+1, err)
		}
	}
	if _, err := a.Authenticate(ctx, from, staff.PasswordSignIn{Email: "ana.ops@example.com", Password: "wrong password again"}); apperr.KindOf(err) != apperr.TooMany {
		t.Errorf("after %d failures split over two replicas: %v, want too many", limit, err)
	}
}

// TestTwoFactorAcrossReplicas: a secret sealed by one replica opens on
// another with the same key, a code is accepted once even when both
// replicas check it at the same moment, and a replica with another key
// cannot open it.
func TestTwoFactorAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	dsn := peertest.StoreDSNForTest(t)
	a, _ := replica(t, dsn, testKey(1))
	b, _ := replica(t, dsn, testKey(1))
	other, _ := replica(t, dsn, testKey(2))
	u, _, err := a.Create(ctx, admin, staff.NewUser{Email: "ops@example.com", Roles: []staff.Role{staff.Ops}})
	if err != nil {
		t.Fatal(err)
	}
	enrol, err := a.BeginEnrolment(u)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	first, _ := totp.GenerateCode(enrol.Secret, now.Add(-30*time.Second))
	if err := a.ConfirmEnrolment(ctx, admin, u.ID, enrol.Secret, first); err != nil {
		t.Fatal(err)
	}
	code, _ := totp.GenerateCode(enrol.Secret, now)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []*staff.Service{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.VerifyCode(ctx, admin, u.ID, code) }()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Errorf("one code checked on two replicas at once: %v and %v, want accepted exactly once", errs[0], errs[1])
	}
	later, _ := totp.GenerateCode(enrol.Secret, now.Add(30*time.Second))
	if err := other.VerifyCode(ctx, admin, u.ID, later); err == nil {
		t.Error("a replica with another key opened the two-factor secret")
	}
	if err := b.VerifyCode(ctx, admin, u.ID, later); err != nil {
		t.Errorf("the next code on the other replica: %v", err)
	}
}

// A token's last use is recorded to the minute: a script calling the API
// many times a second writes it once a minute, and a use a minute later is
// recorded again.
func TestTokenLastUseIsKeptToTheMinute(t *testing.T) {
	ctx := context.Background()
	dsn := peertest.StoreDSNForTest(t)
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sealer, err := staff.NewSealer(testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	cfg := staff.DefaultConfig()
	cfg.Hash = fastHash
	var mu sync.Mutex
	at := time.Now().UTC().Truncate(time.Second)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return at }
	advance := func(d time.Duration) { mu.Lock(); at = at.Add(d); mu.Unlock() }
	s := staff.NewService(db, audit.New(db, now), sealer, cfg, now)
	u, _, err := s.Create(ctx, admin, staff.NewUser{Email: "script@example.com", Roles: []staff.Role{staff.Ops}})
	if err != nil {
		t.Fatal(err)
	}
	plain, _, err := s.CreateToken(ctx, admin, u.ID, staff.NewToken{Name: "ci", Scopes: []string{"all"}})
	if err != nil {
		t.Fatal(err)
	}
	lastUsed := func() time.Time {
		t.Helper()
		toks, err := s.ListTokens(ctx, u.ID)
		if err != nil || len(toks) != 1 {
			t.Fatalf("tokens: %v, %v", toks, err)
		}
		return toks[0].LastUsedAt
	}
	first := now()
	for i := 0; i < 5; i++ {
		if _, _, err := s.AuthenticateToken(ctx, plain); err != nil {
			t.Fatal(err)
		}
		advance(5 * time.Second)
	}
	if got := lastUsed(); !got.Equal(first) {
		t.Errorf("after five uses within 25 s: last used %v, want the first use %v", got, first)
	}
	advance(time.Minute)
	if _, _, err := s.AuthenticateToken(ctx, plain); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(); !got.Equal(now()) {
		t.Errorf("a use a minute later: last used %v, want %v", got, now())
	}
}
