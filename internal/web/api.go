package web

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/staff"
)

//go:embed openapi.json
var openAPIDoc []byte

func (s *Server) apiOpenAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/json", openAPIDoc)
}

// APIUser is a staff account in API responses.
type APIUser struct {
	ID          int64     `json:"id"`
	Email       string    `json:"email"`
	Name        string    `json:"name"`
	Roles       []string  `json:"roles"`
	TOTPEnabled bool      `json:"totp_enabled"`
	Passkeys    int       `json:"passkeys"`
	Disabled    bool      `json:"disabled"`
	CreatedAt   time.Time `json:"created_at"`
}

func apiUser(u staff.User) APIUser {
	out := APIUser{ID: u.ID, Email: u.Email, Name: u.Name, TOTPEnabled: u.TOTPEnabled, Passkeys: u.Passkeys, Disabled: u.Disabled, CreatedAt: u.CreatedAt, Roles: []string{}}
	for _, r := range u.Roles {
		out.Roles = append(out.Roles, string(r))
	}
	return out
}

func (s *Server) apiMe(c echo.Context) error {
	return c.JSON(http.StatusOK, apiUser(*currentUser(c)))
}

func (s *Server) apiStaffList(c echo.Context) error {
	users, err := s.deps.Staff.List(c.Request().Context())
	if err != nil {
		return err
	}
	out := struct {
		Items []APIUser `json:"items"`
	}{Items: []APIUser{}}
	for _, u := range users {
		out.Items = append(out.Items, apiUser(u))
	}
	return c.JSON(http.StatusOK, out)
}

// APIStaffCreate is the body of POST /api/v1/staff.
type APIStaffCreate struct {
	Email string   `json:"email"`
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
}

// decodeJSON reads a JSON body strictly: unknown fields, wrong types and
// trailing data are errors that name the field.
func decodeJSON(c echo.Context, v any) error {
	if ct := c.Request().Header.Get(echo.HeaderContentType); !strings.HasPrefix(ct, echo.MIMEApplicationJSON) {
		return apperr.New(apperr.Invalid, "the body must be JSON (Content-Type: application/json)")
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return jsonError(err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return apperr.New(apperr.Invalid, "the body holds more than one JSON value")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apperr.New(apperr.Invalid, "the body holds data after the JSON value")
	}
	// encoding/json leaves a field untouched on null, which would read
	// {"name": null} as no name; the document declares no field nullable,
	// so null is refused wherever it is.
	var raw any
	if err := json.Unmarshal(body, &raw); err != nil {
		return jsonError(err)
	}
	if field, ok := nullAt(raw, ""); ok {
		if field == "" {
			field = "(body)"
		}
		return &apperr.Error{Kind: apperr.Invalid, Message: field + ": must not be null (leave the field out instead)",
			Fields: map[string]string{field: "must not be null (leave the field out instead)"}}
	}
	return nil
}

// nullAt finds a null in a decoded JSON value and returns its path
// (files[0].content), or false when there is none.
func nullAt(v any, path string) (string, bool) {
	switch v := v.(type) {
	case nil:
		return path, true
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if f, ok := nullAt(v[k], p); ok {
				return f, true
			}
		}
	case []any:
		for i, e := range v {
			if f, ok := nullAt(e, fmt.Sprintf("%s[%d]", path, i)); ok {
				return f, true
			}
		}
	}
	return "", false
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return apperr.New(apperr.Invalid, "the body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.New(apperr.Invalid, "the body is not valid JSON: it ends before the JSON value does")
	case errors.As(err, &syn):
		return apperr.New(apperr.Invalid, "the body is not valid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		return &apperr.Error{Kind: apperr.Invalid, Message: fmt.Sprintf("%s: must be %s, not %s", field, typ.Type, typ.Value),
			Fields: map[string]string{field: fmt.Sprintf("must be %s, not %s", typ.Type, typ.Value)}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &apperr.Error{Kind: apperr.Invalid, Message: field + ": is not a known field", Fields: map[string]string{field: "is not a known field"}}
	}
	return apperr.New(apperr.Invalid, "the body could not be read: %v", err)
}

func (s *Server) apiStaffCreate(c echo.Context) error {
	var body APIStaffCreate
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	var v apperr.Validation
	roles, err := staff.ParseRoles(body.Roles)
	if err != nil {
		v.Add("roles", err.Error())
	}
	n := staff.NewUser{Email: body.Email, Name: body.Name, Roles: roles}
	if err := n.Validate(); err != nil {
		for k, m := range apperr.FieldsOf(err) {
			v.Add(k, m)
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	u, otp, err := s.deps.Staff.Create(c.Request().Context(), who(c), n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, struct {
		User            APIUser `json:"user"`
		OneTimePassword string  `json:"one_time_password"`
	}{apiUser(u), otp})
}

// APIAuditRecord is an audit record in API responses.
type APIAuditRecord struct {
	Seq       int64          `json:"seq"`
	At        time.Time      `json:"at"`
	Actor     string         `json:"actor"`
	Who       *APIActor      `json:"who,omitempty"`
	Action    string         `json:"action"`
	Target    string         `json:"target"`
	SourceIP  string         `json:"source_ip"`
	RequestID string         `json:"request_id"`
	Details   map[string]any `json:"details"`
	PrevHash  string         `json:"prev_hash"`
	Hash      string         `json:"hash"`
}

func (s *Server) apiAuditList(c echo.Context) error {
	f, _, err := parseAuditFilter(c.QueryParams())
	if err != nil {
		return err
	}
	recs, more, err := s.deps.Audit.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := struct {
		Items      []APIAuditRecord `json:"items"`
		NextBefore int64            `json:"next_before,omitempty"`
	}{Items: []APIAuditRecord{}}
	for _, r := range recs {
		out.Items = append(out.Items, APIAuditRecord{Seq: r.Seq, At: r.At, Actor: r.Actor, Who: apiActor(r.Actor), Action: r.Action, Target: r.Target,
			SourceIP: r.SourceIP, RequestID: r.RequestID, Details: r.Details, PrevHash: r.PrevHash, Hash: r.Hash})
	}
	if more && len(recs) > 0 {
		out.NextBefore = recs[len(recs)-1].Seq
	}
	return c.JSON(http.StatusOK, out)
}

// APIVerification is the result of verifying the audit chain.
type APIVerification struct {
	OK          bool   `json:"ok"`
	Checked     int    `json:"checked"`
	FirstBroken int64  `json:"first_broken,omitempty"`
	Reason      string `json:"reason,omitempty"`
	HeadSeq     int64  `json:"head_seq"`
	HeadHash    string `json:"head_hash"`
	KeyID       string `json:"key_id,omitempty"`
	// Anchoring: "checked" (against Anchors anchors in the audit account,
	// the newest holding record AnchorSeq), "unreadable" (AnchorsError
	// says why), "none yet", or "off" (anchoring is not configured).
	Anchoring    string     `json:"anchoring"`
	Anchors      int        `json:"anchors,omitempty"`
	AnchorSeq    int64      `json:"anchor_seq,omitempty"`
	AnchorAt     *time.Time `json:"anchor_at,omitempty"`
	AnchorsError string     `json:"anchors_error,omitempty"`
}

// apiAuditVerify verifies the chain as the verification page does: the
// seals, and the chain against the anchors in the audit account, so a
// trail re-sealed from its start is caught through the API too.
func (s *Server) apiAuditVerify(c echo.Context) error {
	v, err := s.verifyChain(c)
	if err != nil {
		return err
	}
	out := APIVerification{OK: v.OK, Checked: v.Checked, FirstBroken: v.FirstBroken, Reason: v.Reason, HeadSeq: v.HeadSeq, HeadHash: v.HeadHash,
		KeyID: v.KeyID, Anchors: v.Anchors, AnchorSeq: v.AnchorSeq, AnchorsError: v.AnchorsError}
	switch {
	case v.Unanchored:
		out.Anchoring = "off"
	case v.Anchored:
		out.Anchoring = "checked"
		at := v.AnchorAt
		out.AnchorAt = &at
	case v.Anchors == 0 && strings.HasPrefix(v.AnchorsError, "no anchor"):
		out.Anchoring = "none yet"
	default:
		out.Anchoring = "unreadable"
	}
	return c.JSON(http.StatusOK, out)
}
