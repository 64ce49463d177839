// Package templates holds the portal's templ components and the typed view
// models they render. Handlers build view models; templates never reach
// into services.
package templates

import "time"

// Page is what the layout needs on every page.
type Page struct {
	Title   string
	Active  string // key of the current navigation item
	User    *UserView
	Nav     []NavItem
	CSRF    string
	Flash   Flash
	Sandbox string // non-empty in the local sandbox: shown as a banner
	// SandboxLinks lead to the sandbox's own peers (its alert inbox, its
	// mail server), shown in the banner.
	SandboxLinks []NavItem
}

// NavItem is one entry of the main navigation. Count, when positive, is
// shown beside the label (what waits for the viewer there).
type NavItem struct {
	Key, Label, Href string
	Count            int
}

// UserView is the signed-in person as the layout shows them.
type UserView struct {
	ID    int64
	Name  string
	Email string
	Roles []string
}

// Flash is a one-time message after a redirect.
type Flash struct {
	Kind FlashKind
	Text string
}

// FlashKind says how a flash message reads.
type FlashKind string

// Flash kinds: the action did what was asked; it did, but something needs
// a look; it failed.
const (
	FlashSuccess FlashKind = "success"
	FlashWarning FlashKind = "warning"
	FlashError   FlashKind = "error"
)

// ErrorView is an error page.
type ErrorView struct {
	Status    int
	Title     string
	Message   string
	RequestID string
	SignedIn  bool
}

// FormErrors maps field names to what is wrong with them.
type FormErrors map[string]string

// Field describes one form field.
type Field struct {
	Name, Label, Type, Value, Hint, Autocomplete string
	Required, Autofocus                          bool
	Error                                        string
	Inputmode, Pattern                           string
}

// LoginView is the sign-in form.
type LoginView struct {
	Email  string
	Next   string
	Error  string
	Notice string
	// SSO names the identity provider when single sign-on is on.
	SSO string
}

// TwoFactorView asks for the second factor: a passkey, a code, or either.
type TwoFactorView struct {
	Email    string
	Error    string
	TOTP     bool
	Passkeys bool
}

// EnrolView offers the ways to add a second factor: a passkey, and (when
// TOTP is set) an authenticator app with a new secret.
type EnrolView struct {
	Email    string
	Required bool
	TOTP     bool
	Secret   string
	QRPNG    string
	Error    string
	// PasskeyProblem says why passkeys cannot be added here, "" when they
	// can.
	PasskeyProblem string
}

// PasskeyRow is one registered passkey.
type PasskeyRow struct {
	ID         int64
	Name       string
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// ConfirmView asks for the password again.
type ConfirmView struct {
	Purpose string // what it is for, e.g. "set up two-factor authentication"
	Next    string
	Error   string
}

// PasswordView is the change-password form.
type PasswordView struct {
	Forced bool
	Errors FormErrors
}

// AccountView is the signed-in person's own account page.
type AccountView struct {
	Email       string
	Name        string
	Roles       []string
	TOTPEnabled bool
	Requires2FA bool
	Passkeys    []PasskeyRow
	// SSO names the identity provider the person signs in through, "" for
	// a local account.
	SSO string
}

// OverviewView is the landing page.
type OverviewView struct {
	Name        string
	Roles       []string
	Areas       []AreaCard
	Recent      []AuditRow
	CanSeeAudit bool
	// Inventory is the count of resources per service; nil for those who
	// may not see the inventory.
	Inventory *InventorySummaryView
	// Emergencies are the emergency changes not yet through the normal
	// road, flagged until they are.
	Emergencies []EmergencyView
	// Waiting is how many decisions wait for the viewer.
	Waiting int
}

// AreaCard links to an area from the overview.
type AreaCard struct {
	Label, Href, Summary string
}

// EmptyArea is the page of an area that has nothing to show yet.
type EmptyArea struct {
	Heading string
	What    string // what will appear here
	How     string // how to get it there
}

// StaffRow is one account in the staff list.
type StaffRow struct {
	ID         int64
	Email      string
	Name       string
	Roles      []string
	TwoFactor  bool // an authenticator app or a passkey
	Disabled   bool
	MustChange bool
	CreatedAt  time.Time
	// SSO is set for an account that signs in through the identity
	// provider; Link says what the provider last said about it.
	SSO  bool
	Link *SSOLinkView
}

// StaffListView is the staff list.
type StaffListView struct {
	Rows []StaffRow
}

// StaffFormView creates an account.
type StaffFormView struct {
	Email    string
	Name     string
	Roles    []string
	AllRoles []RoleOption
	Errors   FormErrors
}

// RoleOption is a role checkbox.
type RoleOption struct {
	Value, Label, Description string
	Checked                   bool
}

// StaffDetailView shows and edits one account.
type StaffDetailView struct {
	Row         StaffRow
	RoleOpts    []RoleOption
	IsSelf      bool
	Errors      FormErrors
	OneTime     string // a one-time password just issued, shown once
	Requires2FA bool
}

// TokenRow is one API token.
type TokenRow struct {
	ID         int64
	Name       string
	Prefix     string
	Access     string // what its scopes allow, in words
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastUsedAt time.Time
	RevokedAt  time.Time
	// State is "active", "expiring" (within a week), "expired" or "revoked".
	State string
	// RevokedReason says what revoked it when its owner did not.
	RevokedReason string
}

// TokenForm is the new-token form as filled in.
type TokenForm struct {
	Name string
	Life int
	// Access is "read", "all" or "areas".
	Access    string
	Areas     []string
	AreasRead bool
}

// TokenAreaOption is one area a token can be limited to.
type TokenAreaOption struct {
	Name, Label string
}

// AccessView is the Access page.
type AccessView struct {
	Tokens     []TokenRow
	NewToken   string // a token just created, shown once
	NewExpires time.Time
	Form       TokenForm
	Lives      []int
	Areas      []TokenAreaOption
	Errors     FormErrors
	IsAdmin    bool
	Staff      []StaffRow
}

// AuditRow is one audit record.
type AuditRow struct {
	Seq       int64
	At        time.Time
	Actor     string
	Action    string
	Target    string
	SourceIP  string
	RequestID string
	Details   string
}

// AuditFilter is the audit page's filter form.
type AuditFilter struct {
	Actor, Action, Target, Query, Since, Until string
}

// AuditView is the audit page.
type AuditView struct {
	Filter    AuditFilter
	Actions   []string
	Rows      []AuditRow
	NextURL   string
	ExportURL string
	Errors    FormErrors
	Integrity AuditIntegrityView
	// Saved are the viewer's saved searches of the trail.
	Saved SavedQueriesView
}

// AuditIntegrityView says how the audit trail is protected: the key that seals
// it and where its head is anchored.
type AuditIntegrityView struct {
	KeyID   string // the current audit key
	KeyIDs  []string
	Anchors *AnchoringView // nil when anchoring is off
}

// AnchoringView is the anchoring of the audit chain.
type AnchoringView struct {
	Location  string // s3://bucket/prefix
	Account   string
	Interval  string
	Retention string
	// LastSeq and LastAt are the newest anchor this portal wrote (0 when
	// none yet); LastRun and LastError the last anchoring run.
	LastSeq   int64
	LastAt    time.Time
	LastRun   time.Time
	LastError string
}

// ChainView is the result of verifying the audit chain.
type ChainView struct {
	OK          bool
	Checked     int
	FirstBroken int64
	Reason      string
	HeadSeq     int64
	HeadHash    string
	CheckedAt   time.Time
	// KeyID seals the head; Unkeyed counts records from before keying.
	KeyID   string
	Unkeyed int64
	// Anchored: the chain was checked against Anchors anchors, the newest
	// holding record AnchorSeq from AnchorAt; AnchorsError says why the
	// anchors could not be read. Unanchored: anchoring is off.
	Anchored     bool
	Unanchored   bool
	Anchors      int
	AnchorSeq    int64
	AnchorAt     time.Time
	AnchorsError string
}
