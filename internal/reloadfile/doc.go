// Package reloadfile keeps a value parsed from one or more files and parses
// them again when their content changes, so that certificates, key sets and
// policies can be replaced without a restart.
//
// A change is noticed on use, at most once per check interval, by reading
// the files and comparing a digest of their content: this works the same for
// a file rewritten in place, replaced by a rename, or swapped behind a
// symlink (a Kubernetes secret or config map), needs no watcher goroutine,
// and costs one read of a few small files per interval. A new content that
// does not parse keeps the last good value and is reported once, until the
// files change again.
package reloadfile
