//go:build unix

package main

import (
	"io/fs"
	"os"
	"syscall"
)

// ownGroup reports whether fi's group is the gateway's effective group.
func ownGroup(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Gid) == os.Getegid()
}
