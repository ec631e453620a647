//go:build chaos && linux

package chaos_test

import "syscall"

// dieWithParent makes a process the suite starts die with the test
// process, so that a test killed by its timeout leaves none behind.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
