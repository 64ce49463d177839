package access

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"

	staffroles "portal/blueprints/staff-roles"
	portalaccounts "portal/internal/accounts"
	"portal/internal/audit"
	"portal/internal/engine"
	"portal/internal/peers"
	"portal/internal/peers/peertest"
	"portal/internal/staff"
	"portal/internal/store"
)

func TestMain(m *testing.M) { peertest.Main(m) }

// ssoRegion is the home region of the test organization's Identity Center.
const ssoRegion = "eu-central-1"

// clock is a settable clock shared by every service of a harness.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type harness struct {
	svc    *Service
	staff  *staff.Service
	engine *engine.Engine
	db     *store.DB
	clock  *clock
	// cfg reaches an environment's account as the portal's deployer.
	cfg      func(env string) aws.Config
	accounts map[string]string
}

// newHarness builds the service over a fresh database, with dev, test and
// prod each a fresh moto account.
func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx := context.Background()
	m := peertest.MotoForTest(t)
	db := peertest.StoreForTest(t)
	clk := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	alog := audit.New(db, clk.Now)
	sealer, err := staff.NewSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	cfg := staff.DefaultConfig()
	cfg.Hash = staff.HashParams{Memory: 64, Time: 1, Threads: 1}
	st := staff.NewService(db, alog, sealer, cfg, clk.Now)
	accounts := map[string]string{}
	for _, env := range Environments {
		accounts[env] = peertest.AccountForTest(t)
	}
	// The organization's management account, where Identity Center lives.
	accounts[portalaccounts.Management] = peertest.AccountForTest(t)
	var mu sync.Mutex
	cache := map[string]aws.Config{}
	awsCfg := func(env string) aws.Config {
		mu.Lock()
		defer mu.Unlock()
		if c, ok := cache[env]; ok {
			return c
		}
		region := globalRegion
		if env == portalaccounts.Management {
			region = ssoRegion
		}
		c := peers.AssumeAccount(ctx, m.AWSConfig(region), accounts[env], peertest.TestRole)
		cache[env] = c
		return c
	}
	source := func(env, region string) (aws.Config, error) {
		c := awsCfg(env).Copy()
		c.Region = region
		return c, nil
	}
	reg, err := engine.NewRegistry(Drivers()...)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng := engine.New(reg, source, db, alog, logger, clk.Now)
	ts, err := LoadTemplates(staffroles.FS)
	if err != nil {
		t.Fatal(err)
	}
	envAccounts := map[string]string{}
	for _, env := range Environments {
		envAccounts[env] = accounts[env]
	}
	svc := New(Options{DB: db, Audit: alog, Staff: st, Engine: eng, Templates: ts, Configs: source, Accounts: envAccounts,
		ManagementAccount: accounts[portalaccounts.Management], IdentityCenterRegion: ssoRegion, Logger: logger, Now: clk.Now})
	return &harness{svc: svc, staff: st, engine: eng, db: db, clock: clk, cfg: awsCfg, accounts: accounts}
}

// person creates a staff account with roles and returns it as an actor.
func (h *harness) person(t *testing.T, email string, roles ...staff.Role) Actor {
	t.Helper()
	u, _, err := h.staff.Create(context.Background(), audit.Entry{Actor: "test"}, staff.NewUser{Email: email, Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	return Actor{User: u, Entry: audit.Entry{Actor: u.Label()}}
}

// applyRoles plans and applies env's staff-roles stack, approving it by
// approver when it is prod.
func (h *harness) applyRoles(t *testing.T, env string, by, approver Actor) {
	t.Helper()
	ctx := context.Background()
	p, err := h.svc.PlanRoles(ctx, by, env)
	if err != nil {
		t.Fatal(err)
	}
	if env == "prod" {
		if err := h.svc.ApproveRoles(ctx, approver, p.ID); err != nil {
			t.Fatal(err)
		}
	}
	runID, err := h.svc.ApplyRoles(ctx, by, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.engine.RunNow(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	r, _, err := h.engine.GetRun(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != engine.RunSucceeded {
		t.Fatalf("run %d of %s: state %s (%s), want succeeded", runID, env, r.State, r.Error)
	}
}

// sso reaches the test organization's Identity Center as its admin would.
func (h *harness) sso(t *testing.T) (*ssoadmin.Client, *identitystore.Client, Instance) {
	t.Helper()
	cfg := h.cfg(portalaccounts.Management)
	c := ssoadmin.NewFromConfig(cfg)
	in, err := findInstance(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return c, identitystore.NewFromConfig(cfg), in
}
