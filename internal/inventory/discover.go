package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/middleware"

	"portal/internal/engine"
	"portal/internal/regions"
)

// ConfigSource returns the AWS configuration for an environment's account
// in a region (accounts.Accounts.Config in production).
type ConfigSource func(environment, region string) (aws.Config, error)

// Discoverer lists what exists in every environment account.
type Discoverer struct {
	Configs      ConfigSource
	Environments []regions.Environment
	// Regions are scanned in every account; default AllowedRegions().
	Regions []string
	// Parallelism bounds how many account/region tasks run at once
	// (default 8).
	Parallelism int
	// GlobalRegion is where global services are called (default us-east-1).
	GlobalRegion string
}

// Progress is reported as tasks finish.
type Progress struct {
	Total, Done int
	Calls       int64
	Last        string // the task that just finished, e.g. "dev eu-central-1"
}

// TaskError is a task that failed; the rest of the discovery goes on.
type TaskError struct {
	Task  string `json:"task"`
	Error string `json:"error"`
}

// Result is one discovery.
type Result struct {
	Resources []Resource
	Calls     int64
	Tasks     int
	Errors    []TaskError
	Took      time.Duration
}

type task struct {
	name string
	env  regions.Environment
	run  func(ctx context.Context, env regions.Environment, cfg func(region string) (aws.Config, error)) ([]Resource, error)
}

// Discover runs every task (one per account and region, one per account
// for global services and S3), at most Parallelism at once, calling
// progress after each. A failed task is reported in Result.Errors and the
// others go on; only a cancelled ctx stops the discovery.
func (d *Discoverer) Discover(ctx context.Context, progress func(Progress)) (Result, error) {
	start := time.Now()
	regs := d.Regions
	if len(regs) == 0 {
		regs = AllowedRegions()
	}
	global := d.GlobalRegion
	if global == "" {
		global = "us-east-1"
	}
	par := d.Parallelism
	if par <= 0 {
		par = 8
	}
	var calls atomic.Int64
	configs := func(env string) func(region string) (aws.Config, error) {
		return func(region string) (aws.Config, error) {
			cfg, err := d.Configs(env, region)
			if err != nil {
				return cfg, err
			}
			cfg = cfg.Copy()
			cfg.APIOptions = append(slices.Clone(cfg.APIOptions), countCalls(&calls))
			return cfg, nil
		}
	}
	var tasks []task
	for _, e := range d.Environments {
		for _, r := range regs {
			region := r
			tasks = append(tasks, task{name: e.Name + " " + region, env: e, run: func(ctx context.Context, env regions.Environment, cfg func(string) (aws.Config, error)) ([]Resource, error) {
				return discoverRegion(ctx, env, region, cfg)
			}})
		}
		tasks = append(tasks, task{name: e.Name + " global services", env: e, run: func(ctx context.Context, env regions.Environment, cfg func(string) (aws.Config, error)) ([]Resource, error) {
			return discoverGlobal(ctx, env, global, cfg)
		}})
		tasks = append(tasks, task{name: e.Name + " S3 buckets", env: e, run: func(ctx context.Context, env regions.Environment, cfg func(string) (aws.Config, error)) ([]Resource, error) {
			return discoverBuckets(ctx, env, global, cfg)
		}})
	}

	var (
		mu    sync.Mutex
		found [][]Resource
		errs  []TaskError
		done  int
		wg    sync.WaitGroup
		sem   = make(chan struct{}, par)
	)
	for _, t := range tasks {
		wg.Add(1)
		go func(t task) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			res, err := t.run(ctx, t.env, configs(t.env.Name))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, TaskError{Task: t.name, Error: engine.Explain(err)})
			}
			found = append(found, res)
			done++
			if progress != nil {
				progress(Progress{Total: len(tasks), Done: done, Calls: calls.Load(), Last: t.name})
			}
		}(t)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Task < errs[j].Task })
	return Result{Resources: merge(found), Calls: calls.Load(), Tasks: len(tasks), Errors: errs, Took: time.Since(start)}, nil
}

// merge de-duplicates resources by ARN (the tagging API can answer the same
// resource in several regions: moto returns every region's buckets in each
// region's answer). A record from a describe call decides the region and
// settings (buckets are placed by GetBucketLocation); tags are united.
func merge(lists [][]Resource) []Resource {
	byARN := map[string]*Resource{}
	for _, l := range lists {
		for i := range l {
			r := l[i]
			prev, ok := byARN[r.ARN]
			if !ok {
				byARN[r.ARN] = &r
				continue
			}
			if r.described && !prev.described {
				*prev, r = r, *prev
			}
			for k, v := range r.Tags {
				if _, ok := prev.Tags[k]; !ok {
					prev.Tags[k] = v
				}
			}
			if prev.Settings.Empty() {
				prev.Settings = r.Settings
			}
		}
	}
	out := make([]Resource, 0, len(byARN))
	for _, r := range byARN {
		Classify(r)
		out = append(out, *r)
	}
	SortResources(out)
	return out
}

// SortResources orders resources as the pages list them: environment in
// promotion order, region, service, type, ARN.
func SortResources(rs []Resource) {
	envIdx := func(e string) int {
		if i := slices.Index(regions.EnvironmentNames(), e); i >= 0 {
			return i
		}
		return 99
	}
	sort.Slice(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.Environment != b.Environment {
			return envIdx(a.Environment) < envIdx(b.Environment)
		}
		if a.Region != b.Region {
			return a.Region < b.Region
		}
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return a.ARN < b.ARN
	})
}

// countCalls adds a middleware counting every API operation called.
func countCalls(n *atomic.Int64) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("InventoryCallCounter",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				n.Add(1)
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	}
}

// joinErrs names which calls of a task failed.
func joinErrs(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

func callErr(what string, err error) error {
	return fmt.Errorf("%s: %s", what, engine.Explain(err))
}
