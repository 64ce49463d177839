package loadtest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"portal/internal/app"
	"portal/internal/staff"
)

// TestLoadSignsInWithTwoFactor: the load clients sign in through the
// password and two-factor forms, each with its own account, and their
// pages then answer 200.
func TestLoadSignsInWithTwoFactor(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	accts, err := PrepareAccounts(ctx, dir, "load", 3, staff.Compliance, staff.Finance)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := app.ParseServe([]string{"-addr", "127.0.0.1:0", "-data-dir", filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		a.Close()
	}()
	res, err := Load(ctx, LoadConfig{BaseURL: a.URL(), Accounts: accts, Clients: 3, Duration: time.Second,
		Pages: []Page{{Name: "Account", Path: "/account"}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total.Requests == 0 || res.Total.Failed > 0 {
		t.Errorf("got %d requests, %d failed (%v); want some, none failed", res.Total.Requests, res.Total.Failed, res.Errors)
	}
	if res.UptimeStart == "" || res.UptimeEnd == "" {
		t.Errorf("got uptime %q and %q, want the load average at the start and the end", res.UptimeStart, res.UptimeEnd)
	}

	// With a think time of 1 s (pauses of 0.5 to 1.5 s, the first 0 to
	// 1 s), each client asks for its first page within the first second
	// and for at most three pages in 1.5 s, where a closed loop asks for
	// hundreds.
	res, err = Load(ctx, LoadConfig{BaseURL: a.URL(), Accounts: accts, Clients: 3, Duration: 1500 * time.Millisecond,
		Pages: []Page{{Name: "Account", Path: "/account"}}, Think: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total.Requests < 3 || res.Total.Requests > 9 || res.Total.Failed > 0 || res.ThinkMs != 1000 {
		t.Errorf("think time: got %d requests, %d failed, think %v ms; want 3 to 9, none failed, 1000 ms", res.Total.Requests, res.Total.Failed, res.ThinkMs)
	}
}
