package templates

import "net/url"

// SSOErrorView is a refused single sign-on or an ended access.
type SSOErrorView struct {
	Provider               string
	Reason                 string
	Title, Message, Detail string
	RequestID              string
	// Retry offers to start a new sign-in through the provider.
	Retry bool
}

func ssoStartURL(next string) string {
	if next == "" || next == "/" {
		return "/login/sso"
	}
	return "/login/sso?next=" + url.QueryEscape(next)
}
