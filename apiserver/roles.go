package apiserver

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferry-migrate/ferry"
)

// RoleView is a role as the API shows it.
type RoleView struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Builtin     bool      `json:"builtin"`
	Power       string    `json:"power,omitempty" doc:"The separated power the role's permissions belong to; empty for a role without permissions"`
	Permissions []string  `json:"permissions"`
	CreatedAt   time.Time `json:"createdAt"`
}

func roleView(r *ferry.Role) RoleView {
	v := RoleView{ID: r.ID, Name: r.Name, Description: r.Description, Builtin: r.Builtin,
		Permissions: nonNil(r.PermissionNames()), CreatedAt: r.CreatedAt}
	slices.Sort(v.Permissions)
	if len(v.Permissions) > 0 {
		v.Power = string(powerOf(v.Permissions[0]))
	}
	return v
}

// PermissionView is one permission of the catalog.
type PermissionView struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Power       string `json:"power"`
	Restricted  bool   `json:"restricted" doc:"Belongs to user administration or audit and is never granted outside it"`
}

// RoleListOutput lists roles.
type RoleListOutput struct {
	Body struct {
		Items []RoleView `json:"items"`
	}
}

// RoleOutput is one role.
type RoleOutput struct {
	Body RoleView
}

// PermissionListOutput lists permissions.
type PermissionListOutput struct {
	Body struct {
		Items []PermissionView `json:"items"`
	}
}

// CreateRoleInput is the body of create-role.
type CreateRoleInput struct {
	Body struct {
		Name        string   `json:"name" pattern:"^[a-z0-9][a-z0-9._-]{0,63}$" patternDescription:"1-64 lowercase letters, digits, '.', '_' or '-'" maxLength:"64"`
		Description string   `json:"description,omitempty" maxLength:"512"`
		Permissions []string `json:"permissions,omitempty" maxItems:"64"`
	}
}

// UpdateRoleInput changes a role's description.
type UpdateRoleInput struct {
	IDPath
	Body struct {
		Description *string `json:"description,omitempty" maxLength:"512"`
	}
}

// SetRolePermissionsInput replaces a role's permissions.
type SetRolePermissionsInput struct {
	IDPath
	Body struct {
		Permissions []string `json:"permissions" maxItems:"64" doc:"Permission names; the role's permissions become exactly these"`
	}
}

func (s *Server) registerRoles() {
	tags := []string{"Roles"}
	perm := policy{Access: AccessPermission, Permission: ferry.PermRolesManage}
	register(s, huma.Operation{OperationID: "list-permissions", Method: http.MethodGet, Path: "/api/v1/permissions", Tags: tags,
		Summary: "List every permission"}, perm, s.listPermissions)
	register(s, huma.Operation{OperationID: "list-roles", Method: http.MethodGet, Path: "/api/v1/roles", Tags: tags,
		Summary: "List roles with their permissions"}, perm, s.listRoles)
	register(s, huma.Operation{OperationID: "get-role", Method: http.MethodGet, Path: "/api/v1/roles/{id}", Tags: tags,
		Summary: "Get a role", Errors: []int{http.StatusNotFound}}, perm, s.getRole)
	register(s, huma.Operation{OperationID: "create-role", Method: http.MethodPost, Path: "/api/v1/roles", Tags: tags,
		Summary: "Create a role", DefaultStatus: http.StatusCreated, Errors: []int{http.StatusConflict}}, perm, s.createRole)
	register(s, huma.Operation{OperationID: "update-role", Method: http.MethodPatch, Path: "/api/v1/roles/{id}", Tags: tags,
		Summary: "Change a role's description", Errors: []int{http.StatusNotFound}}, perm, s.updateRole)
	register(s, huma.Operation{OperationID: "delete-role", Method: http.MethodDelete, Path: "/api/v1/roles/{id}", Tags: tags,
		Summary: "Delete a role (not a built-in one)", DefaultStatus: http.StatusNoContent,
		Errors: []int{http.StatusNotFound, http.StatusConflict}}, perm, s.deleteRole)
	register(s, huma.Operation{OperationID: "set-role-permissions", Method: http.MethodPut, Path: "/api/v1/roles/{id}/permissions", Tags: tags,
		Summary: "Replace a role's permissions",
		Description: "A role may not combine separated powers; a built-in role receives permissions of its own power only " +
			"and keeps its restricted permissions.",
		Errors: []int{http.StatusNotFound, http.StatusConflict}}, perm, s.setRolePermissions)
}

func (s *Server) listPermissions(ctx context.Context, _ *struct{}) (*PermissionListOutput, error) {
	perms, err := s.db.ListPermissions(ctx)
	if err != nil {
		return nil, err
	}
	out := &PermissionListOutput{}
	out.Body.Items = []PermissionView{}
	for _, p := range perms {
		out.Body.Items = append(out.Body.Items, PermissionView{Name: p.Name, Description: p.Description,
			Power: string(powerOf(p.Name)), Restricted: p.Restricted})
	}
	return out, nil
}

func (s *Server) listRoles(ctx context.Context, _ *struct{}) (*RoleListOutput, error) {
	roles, err := s.db.ListRoles(ctx)
	if err != nil {
		return nil, err
	}
	out := &RoleListOutput{}
	out.Body.Items = []RoleView{}
	for _, r := range roles {
		out.Body.Items = append(out.Body.Items, roleView(r))
	}
	return out, nil
}

func (s *Server) getRole(ctx context.Context, in *IDPath) (*RoleOutput, error) {
	r, err := s.db.FindRoleByID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	return &RoleOutput{Body: roleView(r)}, nil
}

// checkPermissionNames returns EINVALID naming the first unknown or repeated
// permission.
func (s *Server) checkPermissionNames(ctx context.Context, names []string) error {
	perms, err := s.db.ListPermissions(ctx)
	if err != nil {
		return err
	}
	for i, n := range names {
		if slices.Index(names, n) != i {
			return invalidField("permissions", "permission %q is listed twice", n)
		}
		if !slices.ContainsFunc(perms, func(p *ferry.Permission) bool { return p.Name == n }) {
			return invalidField("permissions", "no permission named %q", n)
		}
	}
	return nil
}

func (s *Server) createRole(ctx context.Context, in *CreateRoleInput) (*RoleOutput, error) {
	b := &in.Body
	setTarget(ctx, "role:%s", b.Name)
	if err := s.checkPermissionNames(ctx, b.Permissions); err != nil {
		return nil, err
	}
	if err := checkRolePermissions(b.Name, false, b.Permissions); err != nil {
		return nil, err
	}
	r := &ferry.Role{Name: b.Name, Description: b.Description}
	if err := s.db.CreateRole(ctx, r); err != nil {
		return nil, err
	}
	if err := s.setRolePerms(ctx, r, b.Permissions); err != nil {
		return nil, err
	}
	return s.getRole(ctx, &IDPath{ID: r.ID})
}

func (s *Server) updateRole(ctx context.Context, in *UpdateRoleInput) (*RoleOutput, error) {
	r, err := s.db.FindRoleByID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	setTarget(ctx, "role:%s", r.Name)
	if in.Body.Description != nil {
		r.Description = *in.Body.Description
	}
	if err := s.db.UpdateRole(ctx, r); err != nil {
		return nil, err
	}
	return s.getRole(ctx, &IDPath{ID: r.ID})
}

func (s *Server) deleteRole(ctx context.Context, in *IDPath) (*struct{}, error) {
	r, err := s.db.FindRoleByID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	setTarget(ctx, "role:%s", r.Name)
	if r.Builtin {
		return nil, ferry.Errorf(ferry.ECONFLICT, "%s is a built-in role and cannot be deleted", r.Name)
	}
	return nil, s.db.DeleteRole(ctx, r.ID)
}

func (s *Server) setRolePermissions(ctx context.Context, in *SetRolePermissionsInput) (*RoleOutput, error) {
	r, err := s.db.FindRoleByID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	setTarget(ctx, "role:%s", r.Name)
	setDetail(ctx, "permissions %v", in.Body.Permissions)
	if err := s.checkPermissionNames(ctx, in.Body.Permissions); err != nil {
		return nil, err
	}
	if err := checkRolePermissions(r.Name, r.Builtin, in.Body.Permissions); err != nil {
		return nil, err
	}
	// The users holding the role must not end up combining powers through
	// their other roles.
	users, _, err := s.db.ListUsers(ctx, ferry.UserFilter{Role: r.Name, Limit: ferry.MaxPageSize})
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		perms := map[string][]string{r.Name: in.Body.Permissions}
		for _, other := range u.Roles {
			if other.ID == r.ID {
				continue
			}
			o, err := s.db.FindRoleByID(ctx, other.ID)
			if err != nil {
				return nil, err
			}
			perms[o.Name] = o.PermissionNames()
		}
		if err := checkUserRoles(u.Username, perms); err != nil {
			return nil, err
		}
	}
	if err := s.setRolePerms(ctx, r, in.Body.Permissions); err != nil {
		return nil, err
	}
	return s.getRole(ctx, &IDPath{ID: r.ID})
}

// setRolePerms makes the role's permissions exactly names (already
// checked): it grants the missing ones and revokes the others.
func (s *Server) setRolePerms(ctx context.Context, r *ferry.Role, names []string) error {
	perms, err := s.db.ListPermissions(ctx)
	if err != nil {
		return err
	}
	ids := map[string]int64{}
	for _, p := range perms {
		ids[p.Name] = p.ID
	}
	have := r.PermissionNames()
	for _, p := range r.Permissions {
		if !slices.Contains(names, p.Name) {
			if err := s.db.RevokePermission(ctx, r.ID, p.ID); err != nil {
				return err
			}
		}
	}
	for _, n := range names {
		if !slices.Contains(have, n) {
			if err := s.db.GrantPermission(ctx, r.ID, ids[n]); err != nil {
				return err
			}
		}
	}
	return nil
}
