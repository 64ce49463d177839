package templates

import (
	"fmt"
	"slices"
	"time"
)

// AWSAccessNav names the AWS access sub-pages, for the tabs.
var AWSAccessNav = []NavItem{
	{Key: "matrix", Label: "Who holds what", Href: "/access/aws"},
	{Key: "elevate", Label: "Request elevation", Href: "/access/aws/elevate"},
	{Key: "roles", Label: "Roles in AWS", Href: "/access/aws/roles"},
	{Key: "reviews", Label: "Reviews", Href: "/access/aws/reviews"},
	{Key: "consistency", Label: "Consistency", Href: "/access/aws/consistency"},
}

// AWSRoleInfo describes one staff role in AWS.
type AWSRoleInfo struct {
	Name, Title, Description string
	PortalRoles              string
	// Limits says where it may be held permanently and how long elevations last.
	Limits string
}

// AWSGrantRow is one grant or request.
type AWSGrantRow struct {
	ID                     int64
	UserID                 int64
	Email                  string
	Environment, Role      string
	Kind, State, Reason    string
	Minutes                int
	RequestedBy, DecidedBy ActorView
	RequestedAt, ExpiresAt time.Time
	EndedAt                time.Time
	EndReason              string
	CanDecide, CanRevoke   bool
	Now                    time.Time
	// IAMPending is why IAM does not reflect the grant yet (the last
	// error of its retried sync); "" when IAM matches.
	IAMPending string
}

// Left is the time left of an active elevation, for the countdown.
func (g AWSGrantRow) Left() string {
	d := g.ExpiresAt.Sub(g.Now)
	if d <= 0 {
		return "ending now"
	}
	h, m := int(d.Hours()), int(d.Minutes())%60
	if h > 0 {
		return fmt.Sprintf("%d h %02d min left", h, m)
	}
	return fmt.Sprintf("%d min left", int(d.Minutes())+1)
}

// AWSMatrixCell is what one person holds in one environment.
type AWSMatrixCell struct {
	Environment string
	Holds       []AWSHolding
}

// AWSHolding is one role held (or awaited) in a cell.
type AWSHolding struct {
	Role, State string // "standing", "elevated", "pending"
	GrantID     int64
	ExpiresAt   time.Time
	// IAMPending is why IAM does not reflect the grant yet ("" when it
	// does).
	IAMPending string
}

// AWSMatrixRow is one person.
type AWSMatrixRow struct {
	UserID      int64
	Email       string
	PortalRoles string
	Disabled    bool
	Cells       []AWSMatrixCell
}

// AWSAccessView is the matrix page.
type AWSAccessView struct {
	Configured   bool
	IsAdmin      bool
	Environments []string
	Accounts     map[string]string
	Rows         []AWSMatrixRow
	Pending      []AWSGrantRow
	Elevations   []AWSGrantRow
	Roles        []AWSRoleInfo
	StaffOptions []Option
	RoleOptions  []Option
	EnvOptions   []Option
	Reason       string
	Errors       map[string]string
	Problems     int
}

// AWSElevateView is the elevation request page.
type AWSElevateView struct {
	Configured    bool
	RoleOptions   []Option
	EnvOptions    []Option
	MinuteOptions []Option
	Reason        string
	Errors        map[string]string
	Mine          []AWSGrantRow
	Roles         []AWSRoleInfo
}

// AWSRolePlanRow is one environment on the roles page.
type AWSRolePlanRow struct {
	Environment, Account, Stack string
	PlanID                      int64
	Changes                     string
	HasChanges                  bool
	CreatedBy                   ActorView
	CreatedAt                   time.Time
	ApprovedBy                  ActorView
	NeedsApproval               bool
	CanApprove                  bool
	RunID                       int64
	Blocking                    []string
}

// AWSRolesView is the roles page.
type AWSRolesView struct {
	Configured bool
	IsAdmin    bool
	Envs       []AWSRolePlanRow
	Roles      []AWSRoleInfo
}

// AWSReviewRow is one campaign.
type AWSReviewRow struct {
	ID                     int64
	Title                  string
	OpenedBy               ActorView
	OpenedAt, ClosedAt     time.Time
	Items, Decided, Revoke int
}

// AWSReviewItemRow is one grant under review.
type AWSReviewItemRow struct {
	ID, GrantID          int64
	Email, PortalRoles   string
	Environment, Role    string
	Kind, Principal      string
	GrantedAt, ExpiresAt time.Time
	LastUsed             time.Time
	Decision             string
	DecidedBy            ActorView
	Note                 string
}

// AWSReviewsView lists campaigns.
type AWSReviewsView struct {
	IsAdmin  bool
	Reviews  []AWSReviewRow
	NextPage string
	Errors   map[string]string
}

// AWSReviewView is one campaign.
type AWSReviewView struct {
	IsAdmin bool
	Review  AWSReviewRow
	Items   []AWSReviewItemRow
	// Problem says why closing was refused (the undecided grants).
	Problem string
}

// AWSFindingRow is one disagreement.
type AWSFindingRow struct {
	UserID            int64
	Email             string
	Environment, Role string
	GrantID           int64
	Problem           string
}

// AWSConsistencyView is the consistency page.
type AWSConsistencyView struct {
	Configured bool
	Findings   []AWSFindingRow
	Error      string
	// IdentityCenter describes the instance the assignments are read from
	// (management account and region).
	IdentityCenter string
	// Assignments are the staff permission sets' account assignments as
	// Identity Center reports them.
	Assignments     []AWSAssignmentRow
	AssignmentError string
}

// AWSAssignmentRow is one account assignment read from Identity Center.
type AWSAssignmentRow struct {
	Environment, Account, PermissionSet, PrincipalType, Principal string
}

// clockMin is a time as HH:MM UTC.
func clockMin(t time.Time) string { return t.UTC().Format("15:04 UTC") }

// awsTabsFor lists the tabs u may open.
func awsTabsFor(u *UserView) []NavItem {
	var out []NavItem
	for _, n := range AWSAccessNav {
		if n.Key == "elevate" || (u != nil && (slices.Contains(u.Roles, "admin") || slices.Contains(u.Roles, "compliance"))) {
			out = append(out, n)
		}
	}
	return out
}
