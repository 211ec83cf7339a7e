package apiserver

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/store"
)

func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	creds, err := Bootstrap(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range creds {
		names = append(names, c.User)
		if err := CheckPassword(c.User, c.Password, "password"); err != nil || len(c.Password) < 20 {
			t.Errorf("%s: generated password %q breaks the policy: %v", c.User, c.Password, err)
		}
		u, err := db.FindUserByName(ctx, c.User)
		if err != nil {
			t.Fatal(err)
		}
		if !u.MustChangePassword || !u.Builtin || len(u.Roles) != 1 || u.Roles[0].Name != c.User {
			t.Errorf("%s: %+v", c.User, u)
		}
		if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=65536,t=2,p=2$") {
			t.Errorf("%s: hash %q does not use the production argon2id parameters", c.User, u.PasswordHash)
		}
	}
	if !slices.Equal(names, []string{"sysadmin", "admin", "operator", "auditor"}) {
		t.Fatalf("accounts %v", names)
	}
	perms, err := db.UserPermissions(ctx, mustUser(t, db, "auditor").ID)
	if err != nil || !slices.Equal(perms, []string{ferry.PermAuditRead}) {
		t.Errorf("auditor permissions %v, %v", perms, err)
	}
	// A second start creates nothing and repairs a lost restricted grant.
	role, _ := db.FindRoleByName(ctx, "sysadmin")
	p, _ := db.FindPermissionByName(ctx, ferry.PermUsersManage)
	if err := db.RevokePermission(ctx, role.ID, p.ID); err != nil {
		t.Fatal(err)
	}
	again, err := Bootstrap(ctx, db)
	if err != nil || len(again) != 0 {
		t.Fatalf("second Bootstrap: %v, %v", again, err)
	}
	role, _ = db.FindRoleByName(ctx, "sysadmin")
	if !slices.Contains(role.PermissionNames(), ferry.PermUsersManage) {
		t.Error("second Bootstrap did not restore users:manage to sysadmin")
	}
}

func mustUser(t *testing.T, db *store.DB, name string) *ferry.User {
	t.Helper()
	u, err := db.FindUserByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
