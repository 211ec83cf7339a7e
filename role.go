package ferry

import (
	"regexp"
	"strings"
	"time"
)

// Names of the built-in roles. The three powers — user administration,
// business operation and audit — are separated: no built-in role holds two.
const (
	RoleSysadmin = "sysadmin" // users and rights only
	RoleAdmin    = "admin"    // business operations
	RoleOperator = "operator" // operations on the modules granted to it
	RoleAuditor  = "auditor"  // reads the operation log only
)

// Permission names, "module:action". The API declares one per operation.
const (
	PermJobsRead       = "jobs:read"
	PermJobsManage     = "jobs:manage"  // create, change, delete
	PermJobsOperate    = "jobs:operate" // start, pause, cutover, …
	PermHostsRead      = "hosts:read"
	PermHostsManage    = "hosts:manage"
	PermUsersManage    = "users:manage"
	PermRolesManage    = "roles:manage"
	PermAuditRead      = "audit:read"
	PermReportsRead    = "reports:read"
	PermReportsManage  = "reports:manage"
	PermAlarmsRead     = "alarms:read"
	PermAlarmsManage   = "alarms:manage"
	PermBackupManage   = "backup:manage"
	PermSettingsManage = "settings:manage"
	PermMonitorRead    = "monitor:read"
)

// Role is a named set of permissions granted to users.
type Role struct {
	ID          int64     `bun:"id,pk,autoincrement" json:"id"`
	Name        string    `bun:"name,nullzero" json:"name"`
	Description string    `bun:"description" json:"description"`
	Builtin     bool      `bun:"builtin" json:"builtin"`
	CreatedAt   time.Time `bun:"created_at" json:"createdAt"`
	UpdatedAt   time.Time `bun:"updated_at" json:"updatedAt"`

	// Permissions is filled by the store's Find and List methods; it is
	// ignored on writes (use GrantPermission and RevokePermission).
	Permissions []*Permission `bun:"m2m:role_permissions,join:Role=Permission" json:"permissions,omitempty"`
}

// Validate returns EINVALID with one FieldError per invalid field.
func (r *Role) Validate() error {
	var fe fieldErrors
	if msg := validName(r.Name); msg != "" {
		fe.add("name", "%s", msg)
	}
	fe.text("description", r.Description, 0, 512)
	return fe.err("role")
}

// PermissionNames returns the names of the loaded Permissions.
func (r *Role) PermissionNames() []string {
	names := make([]string, 0, len(r.Permissions))
	for _, p := range r.Permissions {
		names = append(names, p.Name)
	}
	return names
}

// Permission is the right to perform one action on one module.
type Permission struct {
	ID          int64  `bun:"id,pk,autoincrement" json:"id"`
	Name        string `bun:"name,nullzero" json:"name"`
	Description string `bun:"description" json:"description"`
	Builtin     bool   `bun:"builtin" json:"builtin"`
	// Restricted permissions belong to one power (user administration or
	// audit) and may not be granted to roles outside it.
	Restricted bool      `bun:"restricted" json:"restricted"`
	CreatedAt  time.Time `bun:"created_at" json:"createdAt"`
}

var permissionRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}:[a-z][a-z0-9_-]{0,31}$`)

// Validate returns EINVALID with one FieldError per invalid field.
func (p *Permission) Validate() error {
	var fe fieldErrors
	if p.Name == "" {
		fe.add("name", "is required")
	} else if !permissionRE.MatchString(p.Name) {
		fe.add("name", `must look like "module:action" (lowercase letters, digits, '_' or '-')`)
	}
	fe.text("description", p.Description, 0, 512)
	return fe.err("permission")
}

// Module returns the part of the name before the colon.
func (p *Permission) Module() string { m, _, _ := strings.Cut(p.Name, ":"); return m }

// Action returns the part of the name after the colon.
func (p *Permission) Action() string { _, a, _ := strings.Cut(p.Name, ":"); return a }
