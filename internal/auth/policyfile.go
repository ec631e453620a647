package auth

import (
	"fmt"
	"log/slog"

	"github.com/upvest-gateway/gateway/internal/reloadfile"
)

// PolicyFile is a policy read from a YAML file and read again when the file
// changes (looked at on use, at most once per check interval). A new content
// that does not parse keeps the previous policy, and the error is logged. It
// is safe for concurrent use.
type PolicyFile struct {
	v *reloadfile.Value[*Policy]
}

// LoadPolicyFile reads the policy at path now (an error is returned: there
// is no previous policy to keep); knownMethods are the full method names its
// patterns are checked against (see MethodsOf).
func LoadPolicyFile(path string, knownMethods []string, opts ...PolicyFileOption) (*PolicyFile, error) {
	known, err := newKnownMethods(knownMethods)
	if err != nil {
		return nil, err
	}
	o := policyFileOptions{logger: slog.Default(), checkInterval: reloadfile.DefaultCheckInterval}
	for _, opt := range opts {
		if opt != nil {
			opt.applyPolicyFile(&o)
		}
	}
	f := &PolicyFile{}
	f.v, err = reloadfile.New(func(c [][]byte) (*Policy, error) { return parsePolicy(c[0], known) }, []string{path},
		reloadfile.WithCheckInterval(o.checkInterval),
		reloadfile.WithErrorReport(func(err error) {
			o.logger.Error("auth: the new policy does not load; still applying the previous one", "policy_file", path, "err", err)
		}),
		reloadfile.WithReloadReport(func() {
			o.logger.Info("auth: policy reloaded", "policy_file", path, "callers", len(f.v.Current().callers))
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("auth: policy file %s: %w", path, err)
	}
	return f, nil
}

// Policy is the current policy, after looking at the file if the check
// interval has passed.
func (f *PolicyFile) Policy() *Policy { return f.v.Get() }

// Reload reads the file now (e.g. on SIGHUP). The error is what kept the
// previous policy.
func (f *PolicyFile) Reload() error {
	_, err := f.v.Reload()
	return err
}
