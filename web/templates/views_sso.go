package templates

import (
	"net/url"
	"time"
)

// SSOErrorView is a refused single sign-on or an ended access.
type SSOErrorView struct {
	Provider               string
	Reason                 string
	Title, Message, Detail string
	RequestID              string
	// Retry offers to start a new sign-in through the provider.
	Retry bool
}

// SSOLinkView is a single sign-on account's link to its provider, for
// admins.
type SSOLinkView struct {
	Provider   string
	Suspended  bool
	Reason     string
	Groups     []string
	LastSignIn time.Time
	// Confirmed is when the provider last vouched for the person.
	Confirmed  time.Time
	CheckError string
}

func ssoStartURL(next string) string {
	if next == "" || next == "/" {
		return "/login/sso"
	}
	return "/login/sso?next=" + url.QueryEscape(next)
}
