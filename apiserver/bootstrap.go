package apiserver

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"slices"

	"github.com/alexedwards/argon2id"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/store"
)

// InitialCredential is a built-in account created by Bootstrap and its
// random password, to be shown once.
type InitialCredential struct {
	User     string
	Password string
}

// Bootstrap seeds the built-in permissions and roles (adding what is
// missing, never removing what an administrator granted) and, when the
// database has no users, creates the four built-in accounts sysadmin,
// admin, operator and auditor with random strong passwords, flagged
// must-change-password. It returns those accounts and passwords; on a
// database that already has users it returns none.
func Bootstrap(ctx context.Context, db *store.DB) ([]InitialCredential, error) {
	return bootstrap(ctx, db, DefaultPasswordHashing())
}

func bootstrap(ctx context.Context, db *store.DB, hashing *argon2id.Params) ([]InitialCredential, error) {
	perms := map[string]*ferry.Permission{}
	existing, err := db.ListPermissions(ctx)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	for _, p := range existing {
		perms[p.Name] = p
	}
	for _, spec := range Permissions() {
		if perms[spec.Name] != nil {
			continue
		}
		p := &ferry.Permission{Name: spec.Name, Description: spec.Description, Builtin: true, Restricted: spec.Restricted}
		if err := db.CreatePermission(ctx, p); err != nil {
			return nil, fmt.Errorf("bootstrap: permission %s: %w", spec.Name, err)
		}
		perms[spec.Name] = p
	}
	roles := map[string]*ferry.Role{}
	for _, br := range BuiltinRoles() {
		r, err := db.FindRoleByName(ctx, br.Name)
		if ferry.ErrorCode(err) == ferry.ENOTFOUND {
			r = &ferry.Role{Name: br.Name, Description: br.Description, Builtin: true}
			if err := db.CreateRole(ctx, r); err != nil {
				return nil, fmt.Errorf("bootstrap: role %s: %w", br.Name, err)
			}
			for _, pn := range br.Permissions {
				if err := db.GrantPermission(ctx, r.ID, perms[pn].ID); err != nil {
					return nil, fmt.Errorf("bootstrap: grant %s to %s: %w", pn, br.Name, err)
				}
			}
		} else if err != nil {
			return nil, fmt.Errorf("bootstrap: %w", err)
		} else {
			// Restricted permissions always stay with their built-in role.
			for _, pn := range br.Permissions {
				if specOf(pn).Restricted && !slices.Contains(r.PermissionNames(), pn) {
					if err := db.GrantPermission(ctx, r.ID, perms[pn].ID); err != nil {
						return nil, fmt.Errorf("bootstrap: grant %s to %s: %w", pn, br.Name, err)
					}
				}
			}
		}
		roles[br.Name] = r
	}
	_, n, err := db.ListUsers(ctx, ferry.UserFilter{Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if n > 0 {
		return nil, nil
	}
	var creds []InitialCredential
	for _, br := range BuiltinRoles() {
		pw := RandomPassword()
		hash, err := hashPassword(pw, hashing)
		if err != nil {
			return nil, err
		}
		u := &ferry.User{Username: br.Name, DisplayName: "Built-in " + br.Name, PasswordHash: hash,
			MustChangePassword: true, Builtin: true}
		if err := db.CreateUser(ctx, u); err != nil {
			return nil, fmt.Errorf("bootstrap: user %s: %w", br.Name, err)
		}
		if err := db.AssignRole(ctx, u.ID, roles[br.Name].ID); err != nil {
			return nil, fmt.Errorf("bootstrap: assign %s: %w", br.Name, err)
		}
		creds = append(creds, InitialCredential{User: br.Name, Password: pw})
	}
	return creds, nil
}

// RandomPassword returns a random 20-character password (about 118 bits)
// that satisfies the password policy.
func RandomPassword() string {
	const (
		lower = "abcdefghijkmnopqrstuvwxyz"
		upper = "ABCDEFGHJKLMNPQRSTUVWXYZ"
		digit = "23456789"
		sym   = "-_.+!%"
	)
	all := lower + upper + digit + sym
	pick := func(set string) byte {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
		return set[n.Int64()]
	}
	for {
		out := make([]byte, 20)
		for i := range out {
			out[i] = pick(all)
		}
		if CheckPassword("", string(out), "password") == nil {
			return string(out)
		}
	}
}
