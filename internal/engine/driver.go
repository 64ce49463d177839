// Package engine turns a resolved blueprint stack into AWS resources: it
// compiles the stack into a dependency graph, plans the difference between
// that graph and what AWS reports, and applies a stored plan by walking the
// graph in parallel where dependencies allow. Runs are recorded step by
// step in the database, so a restart never loses or duplicates work.
//
// Each resource type is handled by a Driver (package drivers); the engine
// owns ordering, reference resolution, diffing, ownership tags, retries and
// persistence.
package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Ownership tags: everything the portal creates carries them, so state can
// be rebuilt from AWS itself.
const (
	TagStack    = "portal:stack"
	TagResource = "portal:resource"
	TagVersion  = "portal:version"
	TagManaged  = "portal:managed-by"
)

// ErrNotFound is returned (wrapped) by Driver.Read when the resource does
// not exist.
var ErrNotFound = errors.New("resource does not exist")

// StackInfo identifies the stack a resource belongs to.
type StackInfo struct {
	ID, Environment, Jurisdiction, Region, Version string
	// AccountID is the AWS account of the stack's environment.
	AccountID string
}

// Env is what a driver gets to reach AWS for one stack.
type Env struct {
	Stack StackInfo
	// Config returns the AWS configuration for the stack's account in
	// region (global services use us-east-1). It carries the engine's
	// retryer and call recorder.
	Config func(region string) aws.Config
	// Logf adds a line to the step's log, shown live on the run page.
	Logf func(format string, args ...any)
}

// Desired is a resource as the blueprint wants it, with every reference
// to another resource replaced by that resource's output. During planning a
// reference to a resource not created yet is Unknown.
type Desired struct {
	ID, Type, Region string
	Fields           map[string]any
	// Tags are the ownership tags the resource must carry.
	Tags map[string]string
}

// Live is a resource as AWS reports it.
type Live struct {
	// PhysicalID is what AWS calls the resource (an ARN, id or name),
	// enough for Read and Delete to find it again.
	PhysicalID string
	Region     string
	// Outputs are the attributes other resources may refer to with
	// ${ref.id.attr}: typically arn, id, name, and per type dns_name,
	// zone_id and so on.
	Outputs map[string]string
	// Fields are the current settings, keyed and shaped like the
	// blueprint's fields, for the engine to diff. A field the driver cannot
	// read is left out and never diffed.
	Fields map[string]any
	// Tags are the resource's tags (ownership tags among them).
	Tags map[string]string
	// DeletionProtected makes destroy refuse the resource.
	DeletionProtected bool
	// Note, when set, is what the plan says about a resource that needs
	// no change instead of "adopted": for a set of none (a replica count
	// of 0), nothing was found and nothing is owned.
	Note string
}

// OwnedBy reports whether the live resource carries stack's ownership tag.
func (l *Live) OwnedBy(stack string) bool { return l != nil && l.Tags[TagStack] == stack }

// Prior is what the portal recorded about a resource after its last
// successful step; nil when the portal has no record (first run, or state
// lost), in which case Read finds the resource by name or ownership tags.
type Prior struct {
	PhysicalID string
	Region     string
	Outputs    map[string]string
}

// FieldChange is one field-level difference.
type FieldChange struct {
	Path    string `json:"path"`
	Before  any    `json:"before"`
	After   any    `json:"after"`
	Replace bool   `json:"replace,omitempty"`
}

// Driver creates, reads, updates and deletes one resource type.
//
// Create and Update return only once the resource is usable by its
// dependants (waiting on AWS where needed). Create must be safe to call
// after a crash that interrupted an earlier Create: drivers pass
// idempotency tokens where AWS takes them, and the engine always calls
// Read (which finds resources by name or ownership tags) before Create.
type Driver interface {
	// Type is the blueprint type the driver handles, e.g. "s3_bucket".
	Type() string
	// ForceNew lists the fields that AWS cannot change in place; a change
	// to one replaces the resource.
	ForceNew() []string
	Read(ctx context.Context, env *Env, d *Desired, prior *Prior) (*Live, error)
	Create(ctx context.Context, env *Env, d *Desired) (*Live, error)
	Update(ctx context.Context, env *Env, d *Desired, live *Live, changes []FieldChange) (*Live, error)
	Delete(ctx context.Context, env *Env, live *Live) error
}

// DataSource is implemented by drivers that only look things up (an AMI by
// name filter): the engine reads them on every plan and never creates,
// updates or deletes them.
type DataSource interface {
	IsDataSource() bool
}

// Noter is implemented by drivers with something to tell the plan's
// reader about a resource beyond its changes (the NS records a parent zone
// outside the estate must be given): PlanNote returns it, or "". live is
// nil when the resource does not exist yet.
type Noter interface {
	PlanNote(d *Desired, live *Live) string
}

// Global is implemented by drivers of global services (IAM, Route 53,
// CloudFront), whose resources live once per account; Region returns the
// region their API is called in.
type Global interface {
	GlobalRegion() string
}

// Registry maps resource types to drivers.
type Registry struct{ drivers map[string]Driver }

// NewRegistry returns a registry of drivers, refusing duplicates.
func NewRegistry(ds ...Driver) (*Registry, error) {
	r := &Registry{drivers: map[string]Driver{}}
	for _, d := range ds {
		if _, dup := r.drivers[d.Type()]; dup {
			return nil, fmt.Errorf("engine: two drivers for %s", d.Type())
		}
		r.drivers[d.Type()] = d
	}
	return r, nil
}

// Driver returns the driver for typ.
func (r *Registry) Driver(typ string) (Driver, bool) {
	d, ok := r.drivers[typ]
	return d, ok
}

// Types lists the registered types, sorted.
func (r *Registry) Types() []string {
	out := make([]string, 0, len(r.drivers))
	for t := range r.drivers {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Unknown stands for a value known only after apply (a reference to a
// resource that does not exist yet).
type Unknown struct{ Ref string }

func (u Unknown) String() string { return "(known after apply: " + u.Ref + ")" }

// IsUnknown reports whether v is, or contains, an Unknown.
func IsUnknown(v any) bool {
	switch x := v.(type) {
	case Unknown:
		return true
	case string:
		return strings.Contains(x, unknownMark)
	case []any:
		for _, e := range x {
			if IsUnknown(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if IsUnknown(e) {
				return true
			}
		}
	}
	return false
}

// unknownMark is embedded in strings that interpolate an unknown value.
const unknownMark = "\x00unknown:"
