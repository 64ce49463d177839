package peers

import "syscall"

// sysProcAttr puts the peer in its own process group, so Stop can kill the
// group, and has the kernel kill the peer if the starting process dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
