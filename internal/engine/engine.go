package engine

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"portal/internal/audit"
	"portal/internal/store"

	"portal/internal/accounts"
)

// ConfigSource returns the AWS configuration for an environment's account
// in a region (accounts.Accounts.Config in production).
type ConfigSource func(environment, region string) (aws.Config, error)

// Engine plans and applies stacks.
type Engine struct {
	reg     *Registry
	configs ConfigSource
	db      *store.DB
	audit   *audit.Log
	log     *slog.Logger
	now     func() time.Time

	// Parallelism bounds how many resources are read or changed at once.
	Parallelism int
	// MaxAttempts is how often an AWS call is tried before giving up
	// (throttling and 5xx answers are retried with backoff).
	MaxAttempts int
	// MaxBackoff caps the wait between attempts.
	MaxBackoff time.Duration
	// Lease is how long a runner's claim on a run lasts without renewal
	// (DefaultLease when zero), on the database's clock. A runner renews it
	// twice a second; a run whose lease lapsed is marked interrupted.
	Lease time.Duration
	// OnFinish, when set, is called after a run ends as succeeded, failed
	// or cancelled (not when it is interrupted), in the runner's goroutine,
	// with the run as recorded. Workflows verify and notify from it.
	OnFinish func(ctx context.Context, r Run)
	// BeforeRun, when set, is asked when a run starts (and when it
	// resumes), before any step: an error fails the run with its message
	// and nothing in AWS is touched. Workflows check there that the plan
	// may still run (approvals, the promotion order, guardrails with the
	// exceptions in force).
	BeforeRun func(ctx context.Context, r Run, p *Plan) error
	// OnCall, when set, is told about every AWS call plans and runs make,
	// after it returns (the sandbox writes them as CloudTrail records).
	OnCall func(ctx context.Context, c Call)
	// StackConfigs, when set, gives the AWS configuration of one stack's
	// work instead of the ConfigSource, so its sessions can say which
	// stack and jurisdiction they act for (accounts.StackConfig).
	StackConfigs func(info StackInfo, region string) (aws.Config, error)
}

// New returns an engine.
func New(reg *Registry, configs ConfigSource, db *store.DB, log *audit.Log, logger *slog.Logger, now func() time.Time) *Engine {
	if now == nil {
		now = time.Now
	}
	return &Engine{reg: reg, configs: configs, db: db, audit: log, log: logger, now: now, Parallelism: 8, MaxAttempts: accounts.MaxAttempts, MaxBackoff: accounts.MaxBackoff}
}

// Registry returns the engine's drivers.
func (e *Engine) Registry() *Registry { return e.reg }

// newEnv builds the Env drivers use for one stack, recording every AWS
// call in rec and every log line through logf.
func (e *Engine) newEnv(info StackInfo, rec *recorder, logf func(string, ...any)) (*Env, error) {
	configs := func(region string) (aws.Config, error) {
		if e.StackConfigs != nil {
			return e.StackConfigs(info, region)
		}
		return e.configs(info.Environment, region)
	}
	if _, err := configs(info.Region); err != nil {
		return nil, fmt.Errorf("engine: AWS configuration for %s: %w", info.Environment, err)
	}
	var mu sync.Mutex
	cache := map[string]aws.Config{}
	return &Env{
		Stack: info,
		Config: func(region string) aws.Config {
			mu.Lock()
			defer mu.Unlock()
			if c, ok := cache[region]; ok {
				return c
			}
			c, err := configs(region)
			if err != nil {
				// Checked for the stack's region above; other regions of the
				// same account use the same credentials.
				panic(fmt.Sprintf("engine: AWS configuration for %s/%s: %v", info.Environment, region, err))
			}
			c = c.Copy()
			maxAttempts, maxBackoff := e.MaxAttempts, e.MaxBackoff
			c.Retryer = func() aws.Retryer { return accounts.NewRetryer(maxAttempts, maxBackoff) }
			c.APIOptions = append(append([]func(*middlewareStack) error{}, c.APIOptions...), rec.middleware)
			if e.OnCall != nil {
				c.APIOptions = append(c.APIOptions, callHook(info, e.OnCall, e.now))
			}
			cache[region] = c
			return c
		},
		Logf: logf,
	}, nil
}
