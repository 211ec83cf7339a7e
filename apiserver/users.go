package apiserver

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferry-migrate/ferry"
)

// Shapes of names in inputs (the store validates them again).
const (
	namePattern = `^[a-z0-9][a-z0-9._-]{0,63}$`
	permPattern = `^[a-z][a-z0-9_-]{0,31}:[a-z][a-z0-9_-]{0,31}$`
)

// PageQuery is the pagination of every list.
type PageQuery struct {
	Offset int `query:"offset" minimum:"0" maximum:"100000000" doc:"Items to skip"`
	Limit  int `query:"limit" minimum:"0" maximum:"1000" doc:"Page size; 0 means 50"`
}

// PageInfo describes the returned page.
type PageInfo struct {
	Total  int `json:"total" doc:"Items matching the filter"`
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
}

func pageInfo(total, offset, limit int) PageInfo {
	if limit <= 0 {
		limit = ferry.DefaultPageSize
	}
	return PageInfo{Total: total, Offset: offset, Limit: limit}
}

// ListUsersInput filters list-users.
type ListUsersInput struct {
	PageQuery
	Query string `query:"q" maxLength:"128" doc:"Substring of username, display name or e-mail"`
	Role  string `query:"role" maxLength:"64" doc:"Only users holding this role"`
}

// UserListOutput is a page of users.
type UserListOutput struct {
	Body struct {
		PageInfo
		Items []UserView `json:"items"`
	}
}

// UserOutput is one user.
type UserOutput struct {
	Body UserView
}

// CreateUserInput is the body of create-user.
type CreateUserInput struct {
	Body struct {
		Username    string   `json:"username" pattern:"^[a-z0-9][a-z0-9._-]{0,63}$" patternDescription:"1-64 lowercase letters, digits, '.', '_' or '-'" maxLength:"64"`
		DisplayName string   `json:"displayName,omitempty" maxLength:"128"`
		Email       string   `json:"email,omitempty" maxLength:"254" format:"email"`
		Password    string   `json:"password" minLength:"1" maxLength:"256" doc:"Initial password; the user must change it at first login unless mustChangePassword is false"`
		Roles       []string `json:"roles,omitempty" maxItems:"32" doc:"Role names"`
		// MustChangePassword defaults to true.
		MustChangePassword *bool `json:"mustChangePassword,omitempty" doc:"Default true"`
	}
}

// UpdateUserInput is the body of update-user; absent fields are unchanged.
type UpdateUserInput struct {
	IDPath
	Body struct {
		DisplayName *string `json:"displayName,omitempty" maxLength:"128"`
		Email       *string `json:"email,omitempty" maxLength:"254"`
		Disabled    *bool   `json:"disabled,omitempty"`
	}
}

// SetUserRolesInput replaces a user's roles.
type SetUserRolesInput struct {
	IDPath
	Body struct {
		Roles []string `json:"roles" maxItems:"32" doc:"Role names; the user's roles become exactly these"`
	}
}

// ResetPasswordInput sets a user's password.
type ResetPasswordInput struct {
	IDPath
	Body struct {
		Password string `json:"password" minLength:"1" maxLength:"256"`
	}
}

func (s *Server) registerUsers() {
	tags := []string{"Users"}
	perm := policy{Access: AccessPermission, Permission: ferry.PermUsersManage}
	register(s, huma.Operation{OperationID: "list-users", Method: http.MethodGet, Path: "/api/v1/users", Tags: tags,
		Summary: "List users"}, perm, s.listUsers)
	register(s, huma.Operation{OperationID: "get-user", Method: http.MethodGet, Path: "/api/v1/users/{id}", Tags: tags,
		Summary: "Get a user", Errors: []int{http.StatusNotFound}}, perm, s.getUser)
	register(s, huma.Operation{OperationID: "create-user", Method: http.MethodPost, Path: "/api/v1/users", Tags: tags,
		Summary: "Create a user", DefaultStatus: http.StatusCreated, Errors: []int{http.StatusConflict}}, perm, s.createUser)
	register(s, huma.Operation{OperationID: "update-user", Method: http.MethodPatch, Path: "/api/v1/users/{id}", Tags: tags,
		Summary: "Change a user's name, e-mail or disabled flag", Errors: []int{http.StatusNotFound, http.StatusConflict}}, perm, s.updateUser)
	register(s, huma.Operation{OperationID: "delete-user", Method: http.MethodDelete, Path: "/api/v1/users/{id}", Tags: tags,
		Summary: "Delete a user (not a built-in account)", DefaultStatus: http.StatusNoContent,
		Errors: []int{http.StatusNotFound, http.StatusConflict}}, perm, s.deleteUser)
	register(s, huma.Operation{OperationID: "set-user-roles", Method: http.MethodPut, Path: "/api/v1/users/{id}/roles", Tags: tags,
		Summary:     "Replace a user's roles",
		Description: "The roles of one user may not combine separated powers (user administration, business operation, audit).",
		Errors:      []int{http.StatusNotFound, http.StatusConflict}}, perm, s.setUserRoles)
	register(s, huma.Operation{OperationID: "reset-user-password", Method: http.MethodPost, Path: "/api/v1/users/{id}/password", Tags: tags,
		Summary: "Set a user's password; the user must change it at next login", DefaultStatus: http.StatusNoContent,
		Errors: []int{http.StatusNotFound}}, perm, s.resetUserPassword)
	register(s, huma.Operation{OperationID: "unlock-user", Method: http.MethodPost, Path: "/api/v1/users/{id}/unlock", Tags: tags,
		Summary: "Clear a user's lockout", DefaultStatus: http.StatusNoContent,
		Errors: []int{http.StatusNotFound}}, perm, s.unlockUser)
}

func (s *Server) listUsers(ctx context.Context, in *ListUsersInput) (*UserListOutput, error) {
	users, total, err := s.db.ListUsers(ctx, ferry.UserFilter{Query: in.Query, Role: in.Role, Offset: in.Offset, Limit: in.Limit})
	if err != nil {
		return nil, err
	}
	out := &UserListOutput{}
	out.Body.PageInfo = pageInfo(total, in.Offset, in.Limit)
	out.Body.Items = []UserView{}
	for _, u := range users {
		out.Body.Items = append(out.Body.Items, userView(u))
	}
	return out, nil
}

func (s *Server) getUser(ctx context.Context, in *IDPath) (*UserOutput, error) {
	u, err := s.db.FindUserByID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	return &UserOutput{Body: userView(u)}, nil
}

func (s *Server) createUser(ctx context.Context, in *CreateUserInput) (*UserOutput, error) {
	b := &in.Body
	setTarget(ctx, "user:%s", b.Username)
	if err := CheckPassword(b.Username, b.Password, "password"); err != nil {
		return nil, err
	}
	roles, err := s.resolveRoles(ctx, b.Username, b.Roles)
	if err != nil {
		return nil, err
	}
	hash, err := hashPassword(b.Password, s.cfg.PasswordHashing)
	if err != nil {
		return nil, err
	}
	u := &ferry.User{Username: b.Username, DisplayName: b.DisplayName, Email: b.Email, PasswordHash: hash,
		MustChangePassword: b.MustChangePassword == nil || *b.MustChangePassword, PasswordChangedAt: s.now()}
	if err := s.db.CreateUser(ctx, u); err != nil {
		return nil, err
	}
	for _, r := range roles {
		if err := s.db.AssignRole(ctx, u.ID, r.ID); err != nil {
			return nil, err
		}
	}
	u, err = s.db.FindUserByID(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return &UserOutput{Body: userView(u)}, nil
}

// resolveRoles loads the named roles and checks that together they stay
// within one power.
func (s *Server) resolveRoles(ctx context.Context, username string, names []string) ([]*ferry.Role, error) {
	var roles []*ferry.Role
	perms := map[string][]string{}
	for i, n := range names {
		if slices.Index(names, n) != i {
			return nil, invalidField("roles", "role %q is listed twice", n)
		}
		r, err := s.db.FindRoleByName(ctx, n)
		if ferry.ErrorCode(err) == ferry.ENOTFOUND {
			return nil, invalidField("roles", "no role named %q", n)
		} else if err != nil {
			return nil, err
		}
		roles = append(roles, r)
		perms[r.Name] = r.PermissionNames()
	}
	if err := checkUserRoles(username, perms); err != nil {
		return nil, err
	}
	return roles, nil
}

func (s *Server) updateUser(ctx context.Context, in *UpdateUserInput) (*UserOutput, error) {
	u, err := s.db.FindUserByID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	setTarget(ctx, "user:%s", u.Username)
	if in.Body.DisplayName != nil {
		u.DisplayName = *in.Body.DisplayName
	}
	if in.Body.Email != nil {
		u.Email = *in.Body.Email
	}
	if in.Body.Disabled != nil {
		if *in.Body.Disabled && u.ID == principalOf(ctx).User.ID {
			return nil, ferry.Errorf(ferry.ECONFLICT, "you cannot disable your own account")
		}
		u.Disabled = *in.Body.Disabled
	}
	if err := s.db.UpdateUser(ctx, u); err != nil {
		return nil, err
	}
	return &UserOutput{Body: userView(u)}, nil
}

func (s *Server) deleteUser(ctx context.Context, in *IDPath) (*struct{}, error) {
	u, err := s.db.FindUserByID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	setTarget(ctx, "user:%s", u.Username)
	switch {
	case u.Builtin:
		return nil, ferry.Errorf(ferry.ECONFLICT, "%s is a built-in account and cannot be deleted; disable it instead", u.Username)
	case u.ID == principalOf(ctx).User.ID:
		return nil, ferry.Errorf(ferry.ECONFLICT, "you cannot delete your own account")
	}
	return nil, s.db.DeleteUser(ctx, u.ID)
}

func (s *Server) setUserRoles(ctx context.Context, in *SetUserRolesInput) (*UserOutput, error) {
	u, err := s.db.FindUserByID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	setTarget(ctx, "user:%s", u.Username)
	setDetail(ctx, "roles %v", in.Body.Roles)
	roles, err := s.resolveRoles(ctx, u.Username, in.Body.Roles)
	if err != nil {
		return nil, err
	}
	if u.ID == principalOf(ctx).User.ID && !slices.ContainsFunc(roles, func(r *ferry.Role) bool {
		return slices.Contains(r.PermissionNames(), ferry.PermUsersManage)
	}) {
		return nil, ferry.Errorf(ferry.ECONFLICT, "you cannot remove your own user administration rights")
	}
	want := map[int64]bool{}
	for _, r := range roles {
		want[r.ID] = true
	}
	have := map[int64]bool{}
	for _, r := range u.Roles {
		have[r.ID] = true
		if !want[r.ID] {
			if err := s.db.UnassignRole(ctx, u.ID, r.ID); err != nil {
				return nil, err
			}
		}
	}
	for _, r := range roles {
		if !have[r.ID] {
			if err := s.db.AssignRole(ctx, u.ID, r.ID); err != nil {
				return nil, err
			}
		}
	}
	u, err = s.db.FindUserByID(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return &UserOutput{Body: userView(u)}, nil
}

func (s *Server) resetUserPassword(ctx context.Context, in *ResetPasswordInput) (*struct{}, error) {
	u, err := s.db.FindUserByID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	setTarget(ctx, "user:%s", u.Username)
	if err := CheckPassword(u.Username, in.Body.Password, "password"); err != nil {
		return nil, err
	}
	hash, err := hashPassword(in.Body.Password, s.cfg.PasswordHashing)
	if err != nil {
		return nil, err
	}
	u.PasswordHash = hash
	u.MustChangePassword = true
	u.PasswordChangedAt = s.now()
	if err := s.db.UpdateUser(ctx, u); err != nil {
		return nil, err
	}
	// Sessions opened with the old password end now.
	_, err = s.db.DeleteUserSessions(ctx, u.ID)
	return nil, err
}

func (s *Server) unlockUser(ctx context.Context, in *IDPath) (*struct{}, error) {
	u, err := s.db.FindUserByID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	setTarget(ctx, "user:%s", u.Username)
	u.FailedLogins = 0
	u.LockedUntil = time.Time{}
	return nil, s.db.UpdateUser(ctx, u)
}
