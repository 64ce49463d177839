//go:build !linux

package peers

import "syscall"

// sysProcAttr puts the peer in its own process group, so Stop can kill the
// group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
