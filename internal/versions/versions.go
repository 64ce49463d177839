// Package versions stores blueprint versions and guardrail exceptions.
//
// A version is the whole blueprint set (the architecture and the nine stack
// files), immutable and content-addressed: its id is blueprints.Digest of
// the set, so saving the same content again returns the existing version.
// Each version records its author, time, message and the version it was
// edited from. File bytes are kept as written, comments included.
//
// Nothing invalid is ever saved: Save parses, validates and resolves every
// stack and runs the compliance guardrails of its jurisdiction; an error
// diagnostic, or a blocking guardrail failure not covered by an active
// exception, refuses the save with a *Rejection and writes nothing.
//
// Exceptions are owned, reasoned and time-limited deviations from one rule
// for one resource of one stack. They stop applying when they expire or are
// revoked. Every save, exception and revocation is in the audit trail, in
// the same transaction as the change.
package versions

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/blueprints"
	"portal/internal/guardrails"
	"portal/internal/regions"
	"portal/internal/store"
)

// Limits on what a version may hold.
const (
	// MaxFileBytes bounds one blueprint file.
	MaxFileBytes = 256 << 10
	// MaxMessage bounds a version's message, in characters.
	MaxMessage = 500
	// ArchitecturePath is the path of the architecture file in a version.
	ArchitecturePath = "architecture.yaml"
	// LayerPath is the path of the environment layer's architecture.
	LayerPath = "layer.yaml"
)

// EnvironmentPath returns the path of environment env's layer parameters,
// e.g. "environments/prod.yaml".
func EnvironmentPath(env string) string { return "environments/" + env + ".yaml" }

// LayerIDs returns the ids of the three environment layers in promotion
// order (dev-global, test-global, prod-global).
func LayerIDs() []string {
	var out []string
	for _, e := range regions.EnvironmentNames() {
		out = append(out, regions.LayerID(e))
	}
	return out
}

// layerPaths are the files of the environment layer: a version holds all of
// them or none (versions saved before layers existed hold none).
func layerPaths() []string {
	out := []string{LayerPath}
	for _, e := range regions.EnvironmentNames() {
		out = append(out, EnvironmentPath(e))
	}
	return out
}

// StackPath returns the path of stack id's parameter file in a version,
// e.g. "stacks/prod-eu.yaml".
func StackPath(id string) string { return "stacks/" + id + ".yaml" }

// StackIDs returns the nine stack ids in catalogue order (dev, test, prod;
// us, eu, apac).
func StackIDs() []string {
	var out []string
	for _, e := range regions.EnvironmentNames() {
		for _, j := range regions.Jurisdictions() {
			out = append(out, regions.StackID(e, j.ID))
		}
	}
	return out
}

// Paths returns the path of every file a version holds: the architecture,
// the stacks in catalogue order, the layer and its environments.
func Paths() []string {
	out := []string{ArchitecturePath}
	for _, id := range StackIDs() {
		out = append(out, StackPath(id))
	}
	return append(out, layerPaths()...)
}

// File is one blueprint file of a version, byte for byte as written.
type File struct {
	Path    string // ArchitecturePath or StackPath(id)
	Content []byte
}

// Version is a saved blueprint set.
type Version struct {
	// ID is the content address: blueprints.Digest of the set (hex SHA-256).
	ID string
	// Seq numbers versions in the order they were saved, from 1.
	Seq int64
	// Parent is the version this one was edited from; "" for the first.
	Parent    string
	ParentSeq int64  // the parent's Seq, 0 without one
	Author    string // audit actor, e.g. "user:3 alice@example.com" or "system"
	Message   string
	CreatedAt time.Time
}

// Short is the first 12 characters of the id, as shown to people.
func (v Version) Short() string { return Short(v.ID) }

// Short abbreviates a version id to 12 characters.
func Short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Draft is a version to be saved.
type Draft struct {
	// Base is the version the files are edited from: its files are kept
	// unless Files replaces them, and it becomes the new version's parent.
	// "" means the latest version (none for the very first).
	Base    string
	Message string
	// Files replace the base's files of the same path. The first version
	// must give every file.
	Files []File
}

// Finding is a guardrail result of one stack.
type Finding struct {
	Stack string
	guardrails.Result
}

// Rejection is why a draft was not saved: its error diagnostics, and the
// blocking guardrail failures no active exception covers. It unwraps to an
// apperr.Invalid error.
type Rejection struct {
	Diagnostics []blueprints.Diagnostic
	Blocking    []Finding
}

func (r *Rejection) Error() string { return "versions: " + r.summary() }

func (r *Rejection) summary() string {
	var parts []string
	if n := len(r.Diagnostics); n > 0 {
		parts = append(parts, plural(n, "error", "errors"))
	}
	if n := len(r.Blocking); n > 0 {
		parts = append(parts, plural(n, "blocking guardrail failure", "blocking guardrail failures"))
	}
	return "the blueprint was not saved: " + strings.Join(parts, " and ")
}

// Unwrap classifies the rejection as invalid input.
func (r *Rejection) Unwrap() error { return apperr.New(apperr.Invalid, "%s", r.summary()) }

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Checked is a blueprint set validated and resolved, ready for guardrails.
type Checked struct {
	// Files are the set's files in Paths order.
	Files []File
	// ID is the set's content address; "" when the set has errors.
	ID string
	// Diagnostics are every problem found, errors and warnings.
	Diagnostics []blueprints.Diagnostic
	// Stacks are the stacks that resolved, by id (the environment layers,
	// prod-global..., among them).
	Stacks map[string]*blueprints.Stack
}

// Valid reports whether no diagnostic is an error.
func (c *Checked) Valid() bool { return !blueprints.HasErrors(c.Diagnostics) }

// Errors returns the error diagnostics.
func (c *Checked) Errors() []blueprints.Diagnostic {
	var out []blueprints.Diagnostic
	for _, d := range c.Diagnostics {
		if d.Severity == blueprints.SeverityError {
			out = append(out, d)
		}
	}
	return out
}

// File returns the file at path.
func (c *Checked) File(p string) (File, bool) {
	for _, f := range c.Files {
		if f.Path == p {
			return f, true
		}
	}
	return File{}, false
}

// Service stores versions and exceptions. It is safe for concurrent use.
type Service struct {
	db    *store.DB
	audit *audit.Log
	now   func() time.Time

	mu    sync.Mutex
	cache map[string]*Checked // by version id; versions are immutable
	order []string            // cache keys, oldest first
}

// cacheSize bounds the checked sets kept in memory: validating a set takes
// tens of milliseconds, and pages show the latest few versions.
const cacheSize = 8

// New returns a Service over db that records in log. now is the clock;
// nil means time.Now.
func New(db *store.DB, log *audit.Log, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, audit: log, now: now, cache: map[string]*Checked{}}
}

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.now() }

// Check validates files as a whole set without saving anything: every file
// parsed, the set complete (the architecture and the nine stacks), every
// stack resolved.
func Check(files []File) *Checked {
	c := &Checked{Stacks: map[string]*blueprints.Stack{}}
	byPath := map[string]File{}
	for _, f := range files {
		byPath[f.Path] = f
	}
	var parsed []*blueprints.File
	bad := map[string]bool{} // files with error diagnostics
	hasLayer := slices.ContainsFunc(layerPaths(), func(p string) bool { _, ok := byPath[p]; return ok })
	for _, p := range Paths() {
		f, ok := byPath[p]
		if !ok && !hasLayer && slices.Contains(layerPaths(), p) {
			continue // a version from before environment layers
		}
		if !ok {
			msg := "missing: a version holds the architecture and all nine stack files"
			if slices.Contains(layerPaths(), p) {
				msg = "missing: a version with an environment layer holds layer.yaml and environments/<env>.yaml for dev, test and prod"
			}
			c.Diagnostics = append(c.Diagnostics, blueprints.Diagnostic{File: p, Line: 1, Column: 1, Message: msg})
			bad[p] = true
			continue
		}
		delete(byPath, p)
		c.Files = append(c.Files, f)
		pf, ds := blueprints.Parse(p, f.Content)
		c.Diagnostics = append(c.Diagnostics, ds...)
		if pf == nil || blueprints.HasErrors(ds) {
			bad[p] = true
		}
		if pf != nil {
			parsed = append(parsed, pf)
		}
	}
	for p := range byPath {
		c.Diagnostics = append(c.Diagnostics, blueprints.Diagnostic{File: p, Line: 1, Column: 1,
			Message: "unknown file: a version holds architecture.yaml, stacks/<stack>.yaml for the nine stacks, layer.yaml and environments/<env>.yaml"})
	}
	set, ds := blueprints.NewSet(parsed)
	c.Diagnostics = append(c.Diagnostics, ds...)
	if set.Architecture != nil && !bad[ArchitecturePath] {
		for _, f := range set.Stacks {
			if bad[f.Name] {
				continue
			}
			st, ds := set.Resolve(f.Params.Stack)
			c.Diagnostics = append(c.Diagnostics, ds...)
			if st != nil {
				c.Stacks[st.ID] = st
			}
		}
	}
	if set.Layer != nil && !bad[LayerPath] {
		for _, f := range set.Environments {
			if bad[f.Name] {
				continue
			}
			st, ds := set.Resolve(f.Params.Stack)
			c.Diagnostics = append(c.Diagnostics, ds...)
			if st != nil {
				c.Stacks[st.ID] = st
			}
		}
	}
	linked := make([]*blueprints.Stack, 0, len(c.Stacks))
	for _, st := range c.Stacks {
		linked = append(linked, st)
	}
	blueprints.Link(linked)
	c.Diagnostics = dedupe(c.Diagnostics)
	if c.Valid() {
		c.ID = set.Version()
	}
	return c
}

func dedupe(ds []blueprints.Diagnostic) []blueprints.Diagnostic {
	seen := map[string]bool{}
	out := ds[:0:0]
	for _, d := range ds {
		k := d.String()
		if !seen[k] {
			seen[k] = true
			out = append(out, d)
		}
	}
	order := map[string]int{}
	for i, p := range Paths() {
		order[p] = i
	}
	slices.SortStableFunc(out, func(a, b blueprints.Diagnostic) int {
		if oa, ob := order[a.File], order[b.File]; oa != ob {
			return oa - ob
		}
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	return out
}

// Evaluate runs the guardrails of every stack of c with the given
// exceptions at now, in catalogue order, the environment layers last.
func Evaluate(c *Checked, exceptions []guardrails.Exception, now time.Time) []guardrails.Report {
	var out []guardrails.Report
	for _, id := range append(StackIDs(), LayerIDs()...) {
		if st := c.Stacks[id]; st != nil {
			out = append(out, guardrails.Evaluate(st, exceptions, now))
		}
	}
	return out
}

// Blocking returns the blocking failures of reports.
func Blocking(reports []guardrails.Report) []Finding {
	var out []Finding
	for _, r := range reports {
		for _, res := range r.Blocking() {
			out = append(out, Finding{Stack: r.Stack, Result: res})
		}
	}
	return out
}

// validateFiles checks what people send before any parsing: known paths,
// size, UTF-8, each path once.
func validateFiles(files []File) error {
	// A path given twice or a file too large in bytes is well formed by
	// the API's document (which counts characters and cannot ask for
	// unique paths): rules, 422 in the API.
	var v, rules apperr.Validation
	known := Paths()
	seen := map[string]bool{}
	for _, f := range files {
		switch {
		case !slices.Contains(known, f.Path):
			v.Add("files", fmt.Sprintf("%q is not a blueprint file: use architecture.yaml, stacks/<stack>.yaml for one of the nine stacks, layer.yaml or environments/<env>.yaml", f.Path))
		case seen[f.Path]:
			rules.Add("files", fmt.Sprintf("%s is given twice", f.Path))
		case len(f.Content) > MaxFileBytes:
			rules.Add("files", fmt.Sprintf("%s is larger than %d KiB", f.Path, MaxFileBytes>>10))
		case !utf8.Valid(f.Content):
			v.Add("files", fmt.Sprintf("%s is not UTF-8 text", f.Path))
		}
		seen[f.Path] = true
	}
	return v.WithRules(rules)
}

// Merge returns base's files with those of over replacing the same path, in
// Paths order.
func Merge(base, over []File) []File {
	m := map[string]File{}
	for _, f := range base {
		m[f.Path] = f
	}
	for _, f := range over {
		m[f.Path] = f
	}
	var out []File
	for _, p := range Paths() {
		if f, ok := m[p]; ok {
			out = append(out, f)
			delete(m, p)
		}
	}
	for _, f := range over {
		if _, ok := m[f.Path]; ok {
			out = append(out, f)
		}
	}
	return out
}

// Prepared is a draft merged with its base and checked, not yet saved.
type Prepared struct {
	Base    *Version // nil for the first version
	Checked *Checked
	Reports []guardrails.Report
	// Changed lists the paths whose bytes differ from the base.
	Changed []string
}

// Rejection returns why p cannot be saved, or nil.
func (p *Prepared) Rejection() *Rejection {
	r := &Rejection{Diagnostics: p.Checked.Errors(), Blocking: Blocking(p.Reports)}
	if len(r.Diagnostics) == 0 && len(r.Blocking) == 0 {
		return nil
	}
	return r
}

// Prepare merges d with its base version and checks the result with the
// exceptions in force now, without saving anything. Use it for previews;
// Save prepares again.
func (s *Service) Prepare(ctx context.Context, d Draft) (*Prepared, error) {
	if err := validateFiles(d.Files); err != nil {
		return nil, err
	}
	p := &Prepared{}
	var baseFiles []File
	if d.Base != "" {
		v, err := s.Get(ctx, d.Base)
		if err != nil {
			return nil, err
		}
		p.Base = &v
	} else if v, err := s.Latest(ctx); err == nil {
		p.Base = &v
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if p.Base != nil {
		var err error
		if baseFiles, err = s.Files(ctx, p.Base.ID); err != nil {
			return nil, err
		}
	}
	files := Merge(baseFiles, d.Files)
	for _, f := range files {
		if i := slices.IndexFunc(baseFiles, func(b File) bool { return b.Path == f.Path }); i < 0 || string(baseFiles[i].Content) != string(f.Content) {
			p.Changed = append(p.Changed, f.Path)
		}
	}
	p.Checked = Check(files)
	exc, err := s.activeExceptions(ctx)
	if err != nil {
		return nil, err
	}
	p.Reports = Evaluate(p.Checked, exc, s.now())
	return p, nil
}

// Save checks d and stores it as a new version, returning it and true. When
// a version with the same content exists it returns that one and false,
// storing nothing. A draft with errors or an unexcepted blocking guardrail
// failure returns a *Rejection and stores nothing.
func (s *Service) Save(ctx context.Context, by audit.Entry, d Draft) (Version, bool, error) {
	var v apperr.Validation
	d.Message = strings.TrimSpace(d.Message)
	if d.Message == "" {
		v.Add("message", "is required: say what changed and why")
	} else if utf8.RuneCountInString(d.Message) > MaxMessage {
		v.Add("message", fmt.Sprintf("is longer than %d characters", MaxMessage))
	}
	if len(d.Files) == 0 {
		v.Add("files", "are required: give at least one changed file")
	}
	if err := v.Err(); err != nil {
		return Version{}, false, err
	}
	p, err := s.Prepare(ctx, d)
	if err != nil {
		return Version{}, false, err
	}
	return s.SavePrepared(ctx, by, p, d.Message)
}

// SavePrepared saves a draft already prepared (after showing its preview)
// with message, as Save does: a *Rejection when p cannot be saved, the
// existing version and false when its content is already stored.
func (s *Service) SavePrepared(ctx context.Context, by audit.Entry, p *Prepared, message string) (Version, bool, error) {
	message = strings.TrimSpace(message)
	if message == "" || utf8.RuneCountInString(message) > MaxMessage {
		return Version{}, false, &apperr.Error{Kind: apperr.Invalid, Message: "message: is required, at most 500 characters",
			Fields: map[string]string{"message": fmt.Sprintf("is required, at most %d characters", MaxMessage)}}
	}
	if r := p.Rejection(); r != nil {
		return Version{}, false, r
	}
	parent := ""
	if p.Base != nil {
		parent = p.Base.ID
	}
	return s.insert(ctx, by, p.Checked, parent, message, p.Changed)
}

// Import saves the files of fsys (architecture.yaml and stacks/*.yaml) as
// the first version, when no version exists yet. It returns the version and
// whether it was created.
func (s *Service) Import(ctx context.Context, by audit.Entry, fsys fs.FS, message string) (Version, bool, error) {
	if v, err := s.Latest(ctx); err == nil {
		return v, false, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return Version{}, false, err
	}
	files, err := ReadFS(fsys)
	if err != nil {
		return Version{}, false, err
	}
	return s.Save(ctx, by, Draft{Message: message, Files: files})
}

// ReadFS reads every blueprint file of a version from fsys, laid out like
// the repository's blueprints/ folder (the environment layer's files are
// read when layer.yaml is there).
func ReadFS(fsys fs.FS) ([]File, error) {
	var out []File
	_, err := fs.Stat(fsys, LayerPath)
	withLayer := err == nil
	for _, p := range Paths() {
		if !withLayer && slices.Contains(layerPaths(), p) {
			continue
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("versions: read %s: %w", path.Clean(p), err)
		}
		out = append(out, File{Path: p, Content: b})
	}
	return out, nil
}

// Checked returns version id's files validated and resolved (cached:
// versions never change).
func (s *Service) Checked(ctx context.Context, id string) (*Checked, error) {
	s.mu.Lock()
	c := s.cache[id]
	s.mu.Unlock()
	if c != nil {
		return c, nil
	}
	files, err := s.Files(ctx, id)
	if err != nil {
		return nil, err
	}
	c = Check(files)
	s.remember(id, c)
	return c, nil
}

func (s *Service) remember(id string, c *Checked) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cache[id]; ok {
		return
	}
	s.cache[id] = c
	s.order = append(s.order, id)
	if len(s.order) > cacheSize {
		delete(s.cache, s.order[0])
		s.order = s.order[1:]
	}
}

// Resolve returns stack stackID resolved from version versionID ("" for the
// latest) and the version's id.
func (s *Service) Resolve(ctx context.Context, versionID, stackID string) (*blueprints.Stack, string, error) {
	if versionID == "" {
		v, err := s.Latest(ctx)
		if errors.Is(err, store.ErrNotFound) {
			return nil, "", apperr.New(apperr.NotFound, "no blueprint version has been saved yet")
		} else if err != nil {
			return nil, "", err
		}
		versionID = v.ID
	}
	c, err := s.Checked(ctx, versionID)
	if err != nil {
		return nil, "", err
	}
	st := c.Stacks[stackID]
	if st == nil {
		return nil, "", apperr.New(apperr.NotFound, "version %s has no stack %q (stacks are named like prod-eu)", Short(versionID), stackID)
	}
	return st, versionID, nil
}

// Report evaluates the guardrails of stack stackID of version versionID
// ("" for the latest) with the exceptions in force now.
func (s *Service) Report(ctx context.Context, versionID, stackID string) (guardrails.Report, string, error) {
	st, id, err := s.Resolve(ctx, versionID, stackID)
	if err != nil {
		return guardrails.Report{}, "", err
	}
	exc, err := s.Exceptions(ctx, stackID)
	if err != nil {
		return guardrails.Report{}, "", err
	}
	return guardrails.Evaluate(st, exc, s.now()), id, nil
}

// Reports evaluates the guardrails of every stack of version versionID
// ("" for the latest), in catalogue order.
func (s *Service) Reports(ctx context.Context, versionID string) ([]guardrails.Report, string, error) {
	if versionID == "" {
		v, err := s.Latest(ctx)
		if errors.Is(err, store.ErrNotFound) {
			return nil, "", apperr.New(apperr.NotFound, "no blueprint version has been saved yet")
		} else if err != nil {
			return nil, "", err
		}
		versionID = v.ID
	}
	c, err := s.Checked(ctx, versionID)
	if err != nil {
		return nil, "", err
	}
	exc, err := s.activeExceptions(ctx)
	if err != nil {
		return nil, "", err
	}
	return Evaluate(c, exc, s.now()), versionID, nil
}
