// Package apperr classifies the errors the portal shows to people and
// programs. Handlers return errors; one error handler maps a Kind to an HTTP
// status and a page or JSON body. Only Internal errors are logged in full;
// users see their message (for other kinds) or a request ID (for Internal).
package apperr

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Kind is the class of an error as the user sees it.
type Kind string

// The kinds of error the portal distinguishes.
const (
	Internal     Kind = "internal"
	Invalid      Kind = "invalid"
	NotFound     Kind = "not_found"
	Unauthorized Kind = "unauthorized"
	Forbidden    Kind = "forbidden"
	Conflict     Kind = "conflict"
	TooMany      Kind = "too_many_requests"
)

// Error is an error with a kind and a message safe to show to the user.
// Fields names the offending input fields and what is wrong with each.
type Error struct {
	Kind    Kind
	Message string
	Fields  map[string]string
	Err     error
	// Unprocessable marks an Invalid error whose request was well formed,
	// as the API's document describes it, but is refused by a rule about
	// its meaning or the state it meets (an expiry in the past, a destroy
	// not confirmed): the API answers 422 instead of 400. Pages treat it
	// as any Invalid error.
	Unprocessable bool
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Kind, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Kind, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of kind k with a user-facing message.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of kind k with a user-facing message that wraps err.
func Wrap(k Kind, err error, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...), Err: err}
}

// KindOf returns the kind of err, Internal when it carries none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// MessageOf returns the user-facing message of err, or "" for Internal
// errors, whose details must stay in the log.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Kind != Internal {
		return e.Message
	}
	return ""
}

// IsUnprocessable reports whether err is an Invalid error marked
// Unprocessable.
func IsUnprocessable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == Invalid && e.Unprocessable
}

// FieldsOf returns the per-field messages of err, if any.
func FieldsOf(err error) map[string]string {
	var e *Error
	if errors.As(err, &e) {
		return e.Fields
	}
	return nil
}

// Validation collects per-field messages for one form or request body.
// Its zero value is ready to use.
type Validation map[string]string

// Add records msg for field unless the field already has a message.
func (v *Validation) Add(field, msg string) {
	if *v == nil {
		*v = Validation{}
	}
	if _, ok := (*v)[field]; !ok {
		(*v)[field] = msg
	}
}

// Err returns nil when nothing was recorded, or an Invalid error naming
// every field.
func (v Validation) Err() error {
	if len(v) == 0 {
		return nil
	}
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		parts = append(parts, k+": "+v[k])
	}
	return &Error{Kind: Invalid, Message: strings.Join(parts, "; "), Fields: map[string]string(v)}
}

// WithRules is Err over v and rules together, where rules holds the
// refusals a request well formed by the API's document can still meet
// (see Error.Unprocessable): when only rules refuse, the error is
// Unprocessable.
func (v Validation) WithRules(rules Validation) error {
	if len(v) == 0 {
		err := rules.Err()
		if e, ok := err.(*Error); ok {
			e.Unprocessable = true
		}
		return err
	}
	for k, m := range rules {
		v.Add(k, m)
	}
	return v.Err()
}
