package apiserver

import (
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferry-migrate/ferry"
)

// Who may call what. This table is the specification of the built-in roles'
// rights: every operation of the API must appear in it.
const (
	public  = "public" // no credentials
	anyone  = "anyone" // any authenticated account
	agent   = "agent"  // an enrolled agent's certificate
	sysadm  = "sysadmin"
	admin   = "admin"
	oper    = "operator"
	auditor = "auditor"
)

var rbacSpec = map[string][]string{
	"get-health": {public}, "get-ready": {public}, "login": {public}, "enroll-agent": {public},
	"agent-heartbeat": {agent}, "agent-events": {agent}, "agent-job-key": {agent}, "get-ca-certificate": {public},

	"logout": {anyone}, "get-me": {anyone}, "change-password": {anyone},
	"list-api-tokens": {anyone}, "create-api-token": {anyone}, "revoke-api-token": {anyone},

	"list-users": {sysadm}, "get-user": {sysadm}, "create-user": {sysadm}, "update-user": {sysadm},
	"delete-user": {sysadm}, "set-user-roles": {sysadm}, "reset-user-password": {sysadm}, "unlock-user": {sysadm},
	"list-permissions": {sysadm}, "list-roles": {sysadm}, "get-role": {sysadm}, "create-role": {sysadm},
	"update-role": {sysadm}, "delete-role": {sysadm}, "set-role-permissions": {sysadm},

	"list-audit": {auditor}, "export-audit": {auditor}, "verify-audit": {auditor},

	"list-hosts": {admin, oper}, "get-host": {admin, oper},
	"revoke-host": {admin}, "create-enrollment-token": {admin}, "list-enrollment-tokens": {admin},

	"list-jobs": {admin, oper}, "get-job": {admin, oper}, "list-job-events": {admin, oper},
	"watch-job-progress": {admin, oper}, "get-job-status": {admin, oper},
	"create-job": {admin}, "update-job": {admin}, "delete-job": {admin},
	"start-job": {admin, oper}, "pause-job": {admin, oper}, "resume-job": {admin, oper},
	"remirror-job": {admin, oper}, "test-cutover-job": {admin, oper}, "end-test-job": {admin, oper},
	"cutover-job": {admin, oper}, "rollback-job": {admin, oper}, "cancel-job": {admin, oper},
}

type apiOp struct {
	id, method, path string
}

func operations(e *testEnv) []apiOp {
	var ops []apiOp
	for path, item := range e.srv.API().OpenAPI().Paths {
		for method, op := range map[string]*huma.Operation{
			http.MethodGet: item.Get, http.MethodPost: item.Post, http.MethodPut: item.Put,
			http.MethodPatch: item.Patch, http.MethodDelete: item.Delete,
		} {
			if op != nil {
				ops = append(ops, apiOp{op.OperationID, method, path})
			}
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].id < ops[j].id })
	return ops
}

var paramRE = regexp.MustCompile(`\{[^}]+\}`)

// concrete fills path parameters with values that pass validation but name
// nothing, so an allowed call ends in 404 or 422, never in a side effect.
func concrete(path string) string {
	return paramRE.ReplaceAllStringFunc(path, func(p string) string {
		if strings.HasPrefix(path, "/api/v1/users") || strings.HasPrefix(path, "/api/v1/roles") || strings.HasPrefix(path, "/api/v1/auth/tokens") {
			return "999999"
		}
		return "aaaaaaaaaaaaaaaa"
	})
}

// TestRBACMatrix calls every operation as every built-in account and checks
// the answer against rbacSpec: allowed calls never answer 401 or 403,
// denied ones answer 403 with a problem naming the permission.
func TestRBACMatrix(t *testing.T) {
	e := newEnv(t)
	// Use API tokens, so that logout does not end the sessions in use.
	tokens := map[string]string{}
	for user, sess := range e.token {
		r := e.expect(e.do("POST", "/api/v1/auth/tokens", sess, map[string]any{"name": "matrix"}), http.StatusCreated)
		var out CreateTokenOutput
		decode(t, r, &out.Body)
		tokens[user] = out.Body.Token
	}
	seen := map[string]bool{}
	for _, op := range operations(e) {
		seen[op.id] = true
		allowed, ok := rbacSpec[op.id]
		if !ok {
			t.Errorf("operation %s (%s %s) is missing from the RBAC specification table", op.id, op.method, op.path)
			continue
		}
		if slices.Contains(allowed, public) || slices.Contains(allowed, agent) {
			continue
		}
		for _, role := range []string{sysadm, admin, oper, auditor} {
			var body any
			if op.method != http.MethodGet && op.method != http.MethodDelete {
				body = "{}"
			}
			r := e.do(op.method, concrete(op.path), tokens[role], body)
			want := slices.Contains(allowed, anyone) || slices.Contains(allowed, role)
			switch {
			case want && (r.Code == http.StatusForbidden || r.Code == http.StatusUnauthorized):
				t.Errorf("%s as %s: %d, want allowed: %s", op.id, role, r.Code, r.Body.String())
			case !want && r.Code != http.StatusForbidden:
				t.Errorf("%s as %s: %d, want 403: %s", op.id, role, r.Code, r.Body.String())
			case !want:
				p := problemOf(t, r)
				if p.Code != ferry.EFORBIDDEN || !strings.Contains(p.Detail, "lacks permission") {
					t.Errorf("%s as %s: problem %+v does not name the missing permission", op.id, role, p)
				}
			}
		}
	}
	for id := range rbacSpec {
		if !seen[id] {
			t.Errorf("RBAC table names %s, which the API does not register", id)
		}
	}
}

// TestBuiltinRolesSeparatePowers checks the built-in roles against the
// catalog: none holds permissions of two powers.
func TestBuiltinRolesSeparatePowers(t *testing.T) {
	for _, r := range BuiltinRoles() {
		if err := checkRolePermissions(r.Name, true, r.Permissions); err != nil {
			t.Errorf("built-in role %s: %v", r.Name, err)
		}
		for _, p := range r.Permissions {
			if powerOf(p) != r.Power {
				t.Errorf("built-in role %s (%s) holds %s of %s", r.Name, r.Power, p, powerOf(p))
			}
		}
	}
}

// TestSeparationOfPowersEnforced tries to combine powers through the API.
func TestSeparationOfPowersEnforced(t *testing.T) {
	e := newEnv(t)
	sa := e.token["sysadmin"]
	roles := map[string]RoleView{}
	var list RoleListOutput
	decode(t, e.expect(e.do("GET", "/api/v1/roles", sa, nil), http.StatusOK), &list.Body)
	for _, r := range list.Body.Items {
		roles[r.Name] = r
	}
	path := func(name string) string { return "/api/v1/roles/" + itoa(roles[name].ID) + "/permissions" }
	refusals := []struct {
		name, path string
		perms      []string
	}{
		{"audit:read to admin", path("admin"), append(roles["admin"].Permissions, ferry.PermAuditRead)},
		{"users:manage to operator", path("operator"), append(roles["operator"].Permissions, ferry.PermUsersManage)},
		{"jobs:read to auditor", path("auditor"), []string{ferry.PermAuditRead, ferry.PermJobsRead}},
		{"audit:read to sysadmin", path("sysadmin"), []string{ferry.PermUsersManage, ferry.PermRolesManage, ferry.PermAuditRead}},
		{"remove users:manage from sysadmin", path("sysadmin"), []string{ferry.PermRolesManage}},
		{"remove audit:read from auditor", path("auditor"), []string{}},
	}
	for _, c := range refusals {
		r := e.do("PUT", c.path, sa, map[string]any{"permissions": c.perms})
		if r.Code != http.StatusConflict {
			t.Errorf("%s: %d, want 409: %s", c.name, r.Code, r.Body.String())
			continue
		}
		if p := problemOf(t, r); p.Code != ferry.ECONFLICT || p.Detail == "" {
			t.Errorf("%s: problem %+v", c.name, p)
		}
	}
	// A custom role may not mix powers either.
	r := e.do("POST", "/api/v1/roles", sa, map[string]any{"name": "mixed", "permissions": []string{ferry.PermJobsRead, ferry.PermAuditRead}})
	if r.Code != http.StatusConflict {
		t.Errorf("mixed custom role: %d, want 409: %s", r.Code, r.Body.String())
	}
	// One user may not hold roles of two powers.
	r = e.expect(e.do("POST", "/api/v1/users", sa, map[string]any{"username": "carol", "password": "Correct-Horse-42", "roles": []string{"admin", "auditor"}}), http.StatusConflict)
	if p := problemOf(t, r); !strings.Contains(p.Detail, "separated powers") {
		t.Errorf("user with admin+auditor: %q does not explain the refusal", p.Detail)
	}
	// Within its power the operator may be granted more.
	e.expect(e.do("PUT", path("operator"), sa, map[string]any{"permissions": append(roles["operator"].Permissions, ferry.PermHostsManage)}), http.StatusOK)
	e.expect(e.do("POST", "/api/v1/hosts/enrollment-tokens", e.token["operator"], map[string]any{}), http.StatusCreated)
	// Built-in roles cannot be deleted.
	e.expect(e.do("DELETE", "/api/v1/roles/"+itoa(roles["auditor"].ID), sa, nil), http.StatusConflict)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
