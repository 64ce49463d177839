package templates

import (
	"strconv"
	"strings"
	"time"
)

// InvOption is one choice of a select.
type InvOption struct {
	Value, Label string
}

// InventoryFilter is the inventory's filter form, as typed.
type InventoryFilter struct {
	Environment, Jurisdiction, Region, Service, Type, Stack, Tag, Managed, Query string
	Violations                                                                   bool
}

// SettingView is one compliance setting of a resource.
type SettingView struct {
	Label, Value string
	// Bad marks a value that fails what the design asks of patient-data
	// stores (no KMS, public, unversioned, no backups).
	Bad bool
}

// InventoryRow is one resource.
type InventoryRow struct {
	ARN, Name, Environment, AccountID, Region, Service, Type string
	Managed                                                  bool
	Stack, PortalID, Version, Jurisdiction                   string
	JurisdictionByRegion                                     bool
	Violation, Note                                          string
	Tags                                                     []string
	Settings                                                 []SettingView
	InState                                                  bool
	RunID                                                    int64
	BlueprintVersion                                         string
	DetailURL                                                string
}

// SnapshotView is one discovery.
type SnapshotView struct {
	ID                               int64
	State, RequestedBy               string
	CreatedAt, StartedAt, FinishedAt time.Time
	TasksTotal, TasksDone, Resources int
	Calls                            int64
	LastTask, Took                   string
	Errors                           []string
	Percent                          int
}

// ServiceCountView is the count of one service.
type ServiceCountView struct {
	Service, Label                        string
	Total, Managed, Unmanaged, Violations int
	URL                                   string
}

// InventoryView is the inventory page.
type InventoryView struct {
	Filter        InventoryFilter
	Errors        FormErrors
	Latest        *SnapshotView // the discovery listed; nil before the first
	Current       *SnapshotView // a discovery queued or running
	Rows          []InventoryRow
	Total         int
	Counts        []ServiceCountView
	NextURL       string
	FirstURL      string
	ExportURL     string
	Environments  []InvOption
	Jurisdictions []InvOption
	Regions       []InvOption
	Services      []InvOption
	Types         []InvOption
	Stacks        []InvOption
	CanDiscover   bool
	AWSReady      bool
	History       []SnapshotView
	ChangesURL    string
}

// InventoryResourceView is one resource's page.
type InventoryResourceView struct {
	Row      InventoryRow
	Snapshot SnapshotView
	Tags     []TagView
}

// TagView is one tag, with the inventory filtered by it.
type TagView struct {
	Key, Value, URL string
}

// ChangeView is one changed resource between two discoveries.
type ChangeView struct {
	Row     InventoryRow
	Details []string
}

// InventoryChangesView compares two discoveries.
type InventoryChangesView struct {
	From, To                   *SnapshotView
	Added, Removed             []InventoryRow
	Changed                    []ChangeView
	NAdded, NRemoved, NChanged int
	Truncated                  bool
	Snapshots                  []SnapshotView
	Errors                     FormErrors
}

// InventorySummaryView is the inventory's card on the Overview.
type InventorySummaryView struct {
	Discovered                   bool
	At                           time.Time
	Total, Unmanaged, Violations int
	Counts                       []ServiceCountView
}

func upper(s string) string { return strings.ToUpper(s) }

func snapshotOptions(ss []SnapshotView) []InvOption {
	out := make([]InvOption, 0, len(ss))
	for _, s := range ss {
		if s.State != "succeeded" && s.State != "partial" {
			continue
		}
		id := strconv.FormatInt(s.ID, 10)
		out = append(out, InvOption{Value: id, Label: "#" + id + ", " + when(s.FinishedAt) + ", " + strconv.Itoa(s.Resources) + " resources"})
	}
	return out
}

func snapshotValue(s *SnapshotView) string {
	if s == nil {
		return ""
	}
	return strconv.FormatInt(s.ID, 10)
}
