package publish

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"modelpub/core/hub"
)

// Account is what the token may do, from whoami.
type Account struct {
	User string
	Role string // the token's role: "read", "write", "admin", "contributor", "fineGrained", …
	// Namespaces the token can write to: the user's own, then its orgs
	// where its role is not "read".
	Namespaces []string
}

// CheckAccount asks the Hub who the token belongs to and where it may
// write. The GUI calls it to fill its namespace picker; Run calls it first.
func CheckAccount(ctx context.Context, c *hub.Client) (*Account, error) {
	u, err := c.WhoAmI(ctx)
	if err != nil {
		if errors.Is(err, hub.ErrUnauthorized) {
			return nil, fmt.Errorf("the Hub refused the token: %w", err)
		}
		return nil, err
	}
	a := &Account{User: u.Name, Role: u.Auth.AccessToken.Role, Namespaces: []string{u.Name}}
	for _, o := range u.Orgs {
		if o.RoleInOrg != "read" {
			a.Namespaces = append(a.Namespaces, o.Name)
		}
	}
	return a, nil
}

// CanWrite reports whether the account may create and push repositories in
// namespace ns, and if not, why.
func (a *Account) CanWrite(ns string) error {
	if a.Role == "read" {
		return ErrReadOnlyToken
	}
	for _, n := range a.Namespaces {
		if strings.EqualFold(n, ns) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s (user %s) can write to %s, not to %q; choose one of those, or ask an admin of %q for the write role",
		ErrNamespace, a.User, a.User, strings.Join(a.Namespaces, ", "), ns, ns)
}

// check runs whoami, fills in the namespace and checks write access. In
// a dry run, missing write access is a warning.
func (j *job) check(ctx context.Context) error {
	j.ev.emit(Event{Step: StepCheck, Message: "checking the token with " + j.client.Endpoint()})
	a, err := CheckAccount(ctx, j.client)
	if err != nil {
		return err
	}
	if j.id.Namespace == "" {
		j.id.Namespace = a.User
	}
	if err := a.CanWrite(j.id.Namespace); err != nil {
		if !j.opts.DryRun {
			return err
		}
		j.warn(StepCheck, "the publish itself would stop here: "+err.Error())
	}
	j.ev.emit(Event{Step: StepCheck, Message: fmt.Sprintf("logged in as %s (token role %s), publishing to %s", a.User, a.Role, j.id)})
	return nil
}

// checkAndRead checks the token and reads the target as the Hub holds
// it. A dry run needs neither: without a token the Hub is not asked, and
// a Hub it cannot read is a warning; the plan then cannot compare.
func (j *job) checkAndRead(ctx context.Context) error {
	if j.client == nil {
		// A dry run without a token: no step runs against the Hub (the
		// done message says the remote is unknown).
		return nil
	}
	err := j.check(ctx)
	if err == nil {
		j.ev.emit(Event{Step: StepCheck, Message: "reading " + j.id.String() + " on the Hub"})
		j.remote, err = j.readRemote(ctx)
	}
	if err != nil {
		if !j.opts.DryRun {
			return err
		}
		j.remote = nil
		j.warn(StepCheck, "the Hub could not be read, so the plan cannot tell what it already holds: "+err.Error())
		return nil
	}
	j.res.Remote = j.remote
	j.ev.emit(Event{Step: StepCheck, Done: true, Message: j.remote.Describe()})
	return nil
}

// warn records a warning in the result and reports it.
func (j *job) warn(step Step, msg string) {
	j.res.Warnings = append(j.res.Warnings, msg)
	j.ev.emit(Event{Step: step, Warning: true, Message: "warning: " + msg})
}
