package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferry-migrate/ferry"
)

// Power is one of the three separated powers. No built-in role holds two,
// no role may be given permissions of two, and no user may hold roles of two.
type Power string

const (
	PowerUserAdmin Power = "user-administration"
	PowerBusiness  Power = "business-operation"
	PowerAudit     Power = "audit"
)

// PermissionSpec is one permission of the built-in catalog.
type PermissionSpec struct {
	Name        string
	Description string
	Power       Power
	// Restricted permissions belong to the user-administration or audit
	// power: they are never granted outside it.
	Restricted bool
}

// Permissions returns the built-in permission catalog.
func Permissions() []PermissionSpec {
	return []PermissionSpec{
		{ferry.PermUsersManage, "Create, change and delete users and their role assignments", PowerUserAdmin, true},
		{ferry.PermRolesManage, "Create, change and delete roles and their permissions", PowerUserAdmin, true},
		{ferry.PermAuditRead, "Read, export and verify the operation log", PowerAudit, true},
		{ferry.PermJobsRead, "See migration jobs, their events and progress", PowerBusiness, false},
		{ferry.PermJobsOperate, "Start, pause, resume, cut over, roll back and cancel jobs", PowerBusiness, false},
		{ferry.PermJobsManage, "Create, change and delete jobs", PowerBusiness, false},
		{ferry.PermHostsRead, "See hosts and their state", PowerBusiness, false},
		{ferry.PermHostsManage, "Create enrollment tokens, rename and revoke hosts", PowerBusiness, false},
		{ferry.PermReportsRead, "See and download reports", PowerBusiness, false},
		{ferry.PermReportsManage, "Define and schedule reports", PowerBusiness, false},
		{ferry.PermAlarmsRead, "See alarms and their records", PowerBusiness, false},
		{ferry.PermAlarmsManage, "Define alarm rules and acknowledge alarms", PowerBusiness, false},
		{ferry.PermBackupManage, "Back up and restore the control plane's metadata", PowerBusiness, false},
		{ferry.PermSettingsManage, "Change the control plane's settings", PowerBusiness, false},
		{ferry.PermMonitorRead, "See monitoring charts", PowerBusiness, false},
	}
}

// BuiltinRole is one built-in role and its default permissions.
type BuiltinRole struct {
	Name        string
	Description string
	Power       Power
	Permissions []string
}

// BuiltinRoles returns the four built-in roles with their default rights.
func BuiltinRoles() []BuiltinRole {
	return []BuiltinRole{
		{ferry.RoleSysadmin, "System administrator: users, roles and rights only", PowerUserAdmin,
			[]string{ferry.PermUsersManage, ferry.PermRolesManage}},
		{ferry.RoleAdmin, "Administrator: every business operation", PowerBusiness,
			[]string{ferry.PermJobsRead, ferry.PermJobsOperate, ferry.PermJobsManage, ferry.PermHostsRead,
				ferry.PermHostsManage, ferry.PermReportsRead, ferry.PermReportsManage, ferry.PermAlarmsRead,
				ferry.PermAlarmsManage, ferry.PermBackupManage, ferry.PermSettingsManage, ferry.PermMonitorRead}},
		{ferry.RoleOperator, "Operator: operations on the modules granted to it (by default jobs and hosts)", PowerBusiness,
			[]string{ferry.PermJobsRead, ferry.PermJobsOperate, ferry.PermHostsRead}},
		{ferry.RoleAuditor, "Auditor: reads the operation log only", PowerAudit,
			[]string{ferry.PermAuditRead}},
	}
}

// powerOf returns the power a permission belongs to. Permissions outside the
// catalog (added by later modules) are business permissions.
func powerOf(perm string) Power {
	for _, p := range Permissions() {
		if p.Name == perm {
			return p.Power
		}
	}
	return PowerBusiness
}

func builtinRole(name string) (BuiltinRole, bool) {
	for _, r := range BuiltinRoles() {
		if r.Name == name {
			return r, true
		}
	}
	return BuiltinRole{}, false
}

// checkRolePermissions enforces separation of powers on the permission set a
// role would hold. Returns ECONFLICT when the set spans two powers, when a
// built-in role would receive a permission outside its power, or when a
// built-in role of a restricted power would lose one of its restricted
// permissions.
func checkRolePermissions(role string, builtin bool, perms []string) error {
	powers := map[Power][]string{}
	for _, p := range perms {
		powers[powerOf(p)] = append(powers[powerOf(p)], p)
	}
	if len(powers) > 1 {
		var parts []string
		for pw, ps := range powers {
			parts = append(parts, fmt.Sprintf("%s (%s)", pw, strings.Join(ps, ", ")))
		}
		sort.Strings(parts)
		return ferry.Errorf(ferry.ECONFLICT, "role %q would combine separated powers: %s", role, strings.Join(parts, " and "))
	}
	if !builtin {
		return nil
	}
	br, ok := builtinRole(role)
	if !ok {
		return nil
	}
	for _, p := range perms {
		if powerOf(p) != br.Power {
			return ferry.Errorf(ferry.ECONFLICT, "permission %q belongs to %s and cannot be granted to built-in role %q (%s)", p, powerOf(p), role, br.Power)
		}
	}
	for _, p := range br.Permissions {
		spec := specOf(p)
		if spec.Restricted && !slices.Contains(perms, p) {
			return ferry.Errorf(ferry.ECONFLICT, "restricted permission %q cannot be removed from built-in role %q", p, role)
		}
	}
	return nil
}

func specOf(perm string) PermissionSpec {
	for _, p := range Permissions() {
		if p.Name == perm {
			return p
		}
	}
	return PermissionSpec{Name: perm, Power: PowerBusiness}
}

// checkUserRoles enforces that one user's roles stay within one power.
// roles maps role name to that role's permission names.
func checkUserRoles(user string, roles map[string][]string) error {
	powers := map[Power][]string{}
	for name, perms := range roles {
		seen := map[Power]bool{}
		for _, p := range perms {
			pw := powerOf(p)
			if !seen[pw] {
				seen[pw] = true
				powers[pw] = append(powers[pw], name)
			}
		}
	}
	if len(powers) > 1 {
		var parts []string
		for pw, rs := range powers {
			sort.Strings(rs)
			parts = append(parts, fmt.Sprintf("%s (%s)", pw, strings.Join(rs, ", ")))
		}
		sort.Strings(parts)
		return ferry.Errorf(ferry.ECONFLICT, "user %q would combine separated powers: %s", user, strings.Join(parts, " and "))
	}
	return nil
}

// Access says who may call an operation.
type Access int

const (
	// AccessPublic needs no credentials (health, login, agent enrollment).
	AccessPublic Access = iota
	// AccessAuthenticated needs a valid session or API token, no permission.
	AccessAuthenticated
	// AccessPermission needs a valid session or API token whose user holds
	// the operation's permission.
	AccessPermission
	// AccessHost needs a verified agent client certificate (mutual TLS).
	AccessHost
)

// policy is an operation's declared access rule.
type policy struct {
	Access     Access
	Permission string
	// AllowPasswordChange lets an account flagged must-change-password call
	// the operation (change-password, logout, who-am-i).
	AllowPasswordChange bool
	// NoAudit skips the audit record of a mutating call (agent heartbeats).
	NoAudit bool
	// AuditReads audits every call, reads included (secrets handed out).
	AuditReads bool
}

// metaPolicy is the key of the operation metadata carrying its policy.
const metaPolicy = "ferry-policy"

// register registers an operation with its access policy. Every operation of
// the API goes through here or through registerSSE, so the one middleware
// (authorize) finds its policy in the operation's metadata; an operation
// without one is refused.
func register[I, O any](s *Server, op huma.Operation, pol policy, h func(context.Context, *I) (*O, error)) {
	withPolicy(&op, pol)
	huma.Register(s.api, op, h)
}

func withPolicy(op *huma.Operation, pol policy) {
	if op.Metadata == nil {
		op.Metadata = map[string]any{}
	}
	op.Metadata[metaPolicy] = pol
	if pol.Access != AccessPublic {
		op.Security = []map[string][]string{{"bearer": {}}, {"session": {}}}
		if pol.Access == AccessHost {
			op.Security = []map[string][]string{{"agentCertificate": {}}}
		}
		op.Errors = appendStatus(op.Errors, http.StatusUnauthorized)
	}
	if pol.Access == AccessPermission {
		if op.Extensions == nil {
			op.Extensions = map[string]any{}
		}
		op.Extensions["x-ferry-permission"] = pol.Permission
		op.Errors = appendStatus(op.Errors, http.StatusForbidden)
		if op.Description != "" {
			op.Description += "\n\n"
		}
		op.Description += "Requires permission `" + pol.Permission + "`."
	}
	op.Errors = appendStatus(op.Errors, http.StatusUnprocessableEntity)
}

func appendStatus(list []int, s int) []int {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func policyOf(op *huma.Operation) (policy, bool) {
	if op == nil {
		return policy{}, false
	}
	p, ok := op.Metadata[metaPolicy].(policy)
	return p, ok
}
