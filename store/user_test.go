package store_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/store"
)

func TestUserCRUD(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		u := newUser("alice")
		mustNoErr(t, db.CreateUser(ctx, u))
		if u.ID == 0 {
			t.Fatal("CreateUser did not set ID")
		}
		got, err := db.FindUserByName(ctx, "alice")
		mustNoErr(t, err)
		if got.ID != u.ID || got.Email != u.Email || got.PasswordHash != u.PasswordHash || !got.CreatedAt.Equal(u.CreatedAt) {
			t.Fatalf("round trip: got %+v, want %+v", got, u)
		}
		got.DisplayName = "Alice A."
		got.MustChangePassword = true
		got.LockedUntil = time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
		mustNoErr(t, db.UpdateUser(ctx, got))
		again, err := db.FindUserByID(ctx, u.ID)
		mustNoErr(t, err)
		if again.DisplayName != "Alice A." || !again.MustChangePassword || !again.LockedUntil.Equal(got.LockedUntil) {
			t.Fatalf("after update: %+v", again)
		}

		wantCode(t, db.CreateUser(ctx, newUser("alice")), ferry.ECONFLICT)
		_, err = db.FindUserByName(ctx, "nobody")
		wantCode(t, err, ferry.ENOTFOUND)
		wantCode(t, db.DeleteUser(ctx, 999999), ferry.ENOTFOUND)
		mustNoErr(t, db.DeleteUser(ctx, u.ID))
		_, err = db.FindUserByID(ctx, u.ID)
		wantCode(t, err, ferry.ENOTFOUND)
	})
}

func TestRolesAndPermissions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		alice := newUser("alice")
		mustNoErr(t, db.CreateUser(ctx, alice))
		ops := &ferry.Role{Name: "ops"}
		audit := &ferry.Role{Name: "audit"}
		mustNoErr(t, db.CreateRole(ctx, ops))
		mustNoErr(t, db.CreateRole(ctx, audit))
		perms := map[string]*ferry.Permission{}
		for _, n := range []string{"jobs:read", "jobs:operate", "audit:read"} {
			p := &ferry.Permission{Name: n}
			mustNoErr(t, db.CreatePermission(ctx, p))
			perms[n] = p
		}
		mustNoErr(t, db.GrantPermission(ctx, ops.ID, perms["jobs:read"].ID))
		mustNoErr(t, db.GrantPermission(ctx, ops.ID, perms["jobs:operate"].ID))
		mustNoErr(t, db.GrantPermission(ctx, ops.ID, perms["jobs:operate"].ID)) // idempotent
		mustNoErr(t, db.GrantPermission(ctx, audit.ID, perms["audit:read"].ID))
		mustNoErr(t, db.GrantPermission(ctx, audit.ID, perms["jobs:read"].ID))

		none, err := db.UserPermissions(ctx, alice.ID)
		mustNoErr(t, err)
		if len(none) != 0 {
			t.Fatalf("user without roles has %v", none)
		}
		mustNoErr(t, db.AssignRole(ctx, alice.ID, ops.ID))
		mustNoErr(t, db.AssignRole(ctx, alice.ID, audit.ID))
		mustNoErr(t, db.AssignRole(ctx, alice.ID, audit.ID))
		got, err := db.UserPermissions(ctx, alice.ID)
		mustNoErr(t, err)
		if want := []string{"audit:read", "jobs:operate", "jobs:read"}; !slices.Equal(got, want) {
			t.Fatalf("UserPermissions = %v, want %v", got, want)
		}
		u, err := db.FindUserByID(ctx, alice.ID)
		mustNoErr(t, err)
		if !u.HasRole("ops") || !u.HasRole("audit") || len(u.Roles) != 2 {
			t.Fatalf("user roles = %+v", u.Roles)
		}
		r, err := db.FindRoleByName(ctx, "ops")
		mustNoErr(t, err)
		if want := []string{"jobs:operate", "jobs:read"}; !slices.Equal(r.PermissionNames(), want) {
			t.Fatalf("ops permissions = %v, want %v", r.PermissionNames(), want)
		}

		mustNoErr(t, db.RevokePermission(ctx, ops.ID, perms["jobs:operate"].ID))
		wantCode(t, db.RevokePermission(ctx, ops.ID, perms["jobs:operate"].ID), ferry.ENOTFOUND)
		mustNoErr(t, db.UnassignRole(ctx, alice.ID, audit.ID))
		got, err = db.UserPermissions(ctx, alice.ID)
		mustNoErr(t, err)
		if want := []string{"jobs:read"}; !slices.Equal(got, want) {
			t.Fatalf("after revoke: %v, want %v", got, want)
		}

		// References that do not exist are named.
		fe := wantCode(t, db.AssignRole(ctx, alice.ID, 424242), ferry.EINVALID)
		wantField(t, fe, "roleId")
		fe = wantCode(t, db.GrantPermission(ctx, 424242, perms["jobs:read"].ID), ferry.EINVALID)
		wantField(t, fe, "roleId")
		wantCode(t, db.CreateRole(ctx, &ferry.Role{Name: "ops"}), ferry.ECONFLICT)
		wantCode(t, db.CreatePermission(ctx, &ferry.Permission{Name: "jobs:read"}), ferry.ECONFLICT)

		roles, err := db.ListRoles(ctx)
		mustNoErr(t, err)
		if len(roles) != 2 || roles[0].Name != "audit" {
			t.Fatalf("ListRoles = %+v", roles)
		}
		users, n, err := db.ListUsers(ctx, ferry.UserFilter{Role: "ops"})
		mustNoErr(t, err)
		if n != 1 || users[0].Username != "alice" {
			t.Fatalf("ListUsers(role ops) = %d %+v", n, users)
		}
		mustNoErr(t, db.DeleteRole(ctx, ops.ID))
		got, err = db.UserPermissions(ctx, alice.ID)
		mustNoErr(t, err)
		if len(got) != 0 {
			t.Fatalf("after deleting role: %v", got)
		}
	})
}

func TestEnsureIsIdempotentAndConcurrent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		var wg sync.WaitGroup
		ids := make([]int64, 8)
		roleIDs := make([]int64, 8)
		errs := make([]error, 16)
		for i := range ids {
			wg.Go(func() {
				p := &ferry.Permission{Name: ferry.PermAuditRead, Builtin: true, Restricted: true, Description: "read the log"}
				errs[2*i] = db.EnsurePermission(ctx, p)
				ids[i] = p.ID
				r := &ferry.Role{Name: ferry.RoleAuditor, Builtin: true}
				errs[2*i+1] = db.EnsureRole(ctx, r)
				roleIDs[i] = r.ID
			})
		}
		wg.Wait()
		for _, err := range errs {
			mustNoErr(t, err)
		}
		for i := range ids {
			if ids[i] == 0 || ids[i] != ids[0] || roleIDs[i] == 0 || roleIDs[i] != roleIDs[0] {
				t.Fatalf("ensured ids differ: %v %v", ids, roleIDs)
			}
		}
		p := &ferry.Permission{Name: ferry.PermAuditRead, Builtin: true, Description: "changed"}
		mustNoErr(t, db.EnsurePermission(ctx, p))
		if p.ID != ids[0] || p.Description != "changed" || p.Restricted {
			t.Fatalf("second ensure: %+v", p)
		}
		perms, err := db.ListPermissions(ctx)
		mustNoErr(t, err)
		if len(perms) != 1 {
			t.Fatalf("%d permissions", len(perms))
		}
	})
}
