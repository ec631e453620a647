//go:build !unix

package main

import "io/fs"

// ownGroup: no group ownership to rely on here.
func ownGroup(fs.FileInfo) bool { return false }
