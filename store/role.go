package store

import (
	"context"
	"fmt"

	"github.com/ferry-migrate/ferry"
	"github.com/uptrace/bun"
)

// userRole links a user to a role (users ↔ roles, many-to-many).
type userRole struct {
	bun.BaseModel `bun:"table:user_roles"`

	UserID int64       `bun:"user_id,pk"`
	User   *ferry.User `bun:"rel:belongs-to,join:user_id=id"`
	RoleID int64       `bun:"role_id,pk"`
	Role   *ferry.Role `bun:"rel:belongs-to,join:role_id=id"`
}

// rolePermission links a role to a permission (roles ↔ permissions).
type rolePermission struct {
	bun.BaseModel `bun:"table:role_permissions"`

	RoleID       int64             `bun:"role_id,pk"`
	Role         *ferry.Role       `bun:"rel:belongs-to,join:role_id=id"`
	PermissionID int64             `bun:"permission_id,pk"`
	Permission   *ferry.Permission `bun:"rel:belongs-to,join:permission_id=id"`
}

// CreateRole stores a new role and sets its ID and timestamps. Permissions
// are ignored; use GrantPermission.
// Returns EINVALID if the role does not validate, ECONFLICT if the name is
// taken.
func (db *DB) CreateRole(ctx context.Context, r *ferry.Role) error {
	if err := r.Validate(); err != nil {
		return err
	}
	r.CreatedAt = db.now()
	r.UpdatedAt = r.CreatedAt
	if _, err := db.w.NewInsert().Model(r).Exec(ctx); err != nil {
		return translate(err, "roles", opWrite, "create role")
	}
	return nil
}

// FindRoleByID returns the role with its permissions.
// Returns ENOTFOUND if no role has that ID.
func (db *DB) FindRoleByID(ctx context.Context, id int64) (*ferry.Role, error) {
	r := new(ferry.Role)
	err := db.r.NewSelect().Model(r).Relation("Permissions", orderByName).Where("?TableAlias.id = ?", id).Scan(ctx)
	if err != nil {
		return nil, notFound(err, "find role", "role %d not found", id)
	}
	return r, nil
}

// FindRoleByName returns the role with its permissions.
// Returns ENOTFOUND if no role has that name.
func (db *DB) FindRoleByName(ctx context.Context, name string) (*ferry.Role, error) {
	if err := checkText("name", name); err != nil {
		return nil, err
	}
	r := new(ferry.Role)
	err := db.r.NewSelect().Model(r).Relation("Permissions", orderByName).Where("?TableAlias.name = ?", name).Scan(ctx)
	if err != nil {
		return nil, notFound(err, "find role", "role %q not found", name)
	}
	return r, nil
}

// ListRoles returns every role with its permissions, ordered by name.
func (db *DB) ListRoles(ctx context.Context) ([]*ferry.Role, error) {
	var roles []*ferry.Role
	if err := db.r.NewSelect().Model(&roles).Relation("Permissions", orderByName).Order("name").Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: list roles: %w", err)
	}
	return roles, nil
}

// UpdateRole writes the role's name and description.
// Returns EINVALID if r does not validate, ENOTFOUND if the role does not
// exist, ECONFLICT if the new name is taken.
func (db *DB) UpdateRole(ctx context.Context, r *ferry.Role) error {
	if err := r.Validate(); err != nil {
		return err
	}
	r.UpdatedAt = db.now()
	res, err := db.w.NewUpdate().Model(r).Column("name", "description", "updated_at").WherePK().Exec(ctx)
	if err != nil {
		return translate(err, "roles", opWrite, "update role")
	}
	return affected(res, "role %d not found", r.ID)
}

// DeleteRole deletes the role; users holding it lose it. Refusing to delete
// built-in roles is the caller's policy.
// Returns ENOTFOUND if the role does not exist.
func (db *DB) DeleteRole(ctx context.Context, id int64) error {
	res, err := db.w.NewDelete().Model((*ferry.Role)(nil)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return translate(err, "roles", opDelete, "delete role")
	}
	return affected(res, "role %d not found", id)
}

// CreatePermission stores a new permission and sets its ID.
// Returns EINVALID if it does not validate, ECONFLICT if the name is taken.
func (db *DB) CreatePermission(ctx context.Context, p *ferry.Permission) error {
	if err := p.Validate(); err != nil {
		return err
	}
	p.CreatedAt = db.now()
	if _, err := db.w.NewInsert().Model(p).Exec(ctx); err != nil {
		return translate(err, "permissions", opWrite, "create permission")
	}
	return nil
}

// FindPermissionByName returns the named permission.
// Returns ENOTFOUND if it does not exist.
func (db *DB) FindPermissionByName(ctx context.Context, name string) (*ferry.Permission, error) {
	if err := checkText("name", name); err != nil {
		return nil, err
	}
	p := new(ferry.Permission)
	if err := db.r.NewSelect().Model(p).Where("name = ?", name).Scan(ctx); err != nil {
		return nil, notFound(err, "find permission", "permission %q not found", name)
	}
	return p, nil
}

// ListPermissions returns every permission ordered by name.
func (db *DB) ListPermissions(ctx context.Context) ([]*ferry.Permission, error) {
	var perms []*ferry.Permission
	if err := db.r.NewSelect().Model(&perms).Order("name").Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: list permissions: %w", err)
	}
	return perms, nil
}

// DeletePermission deletes the permission and every grant of it.
// Returns ENOTFOUND if it does not exist.
func (db *DB) DeletePermission(ctx context.Context, id int64) error {
	res, err := db.w.NewDelete().Model((*ferry.Permission)(nil)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return translate(err, "permissions", opDelete, "delete permission")
	}
	return affected(res, "permission %d not found", id)
}

// GrantPermission gives the role the permission; granting twice is a no-op.
// Returns EINVALID naming role_id or permission_id if either does not exist.
func (db *DB) GrantPermission(ctx context.Context, roleID, permissionID int64) error {
	link := &rolePermission{RoleID: roleID, PermissionID: permissionID}
	_, err := db.w.NewInsert().Model(link).On("CONFLICT (role_id, permission_id) DO NOTHING").Exec(ctx)
	if err != nil {
		return db.translateRefs(ctx, db.w, err, "role_permissions",
			map[string]any{"role_id": roleID, "permission_id": permissionID}, "grant permission")
	}
	return nil
}

// RevokePermission takes the permission from the role.
// Returns ENOTFOUND if the role did not hold it.
func (db *DB) RevokePermission(ctx context.Context, roleID, permissionID int64) error {
	res, err := db.w.NewDelete().Model((*rolePermission)(nil)).
		Where("role_id = ? AND permission_id = ?", roleID, permissionID).Exec(ctx)
	if err != nil {
		return translate(err, "role_permissions", opDelete, "revoke permission")
	}
	return affected(res, "role %d does not hold permission %d", roleID, permissionID)
}

// AssignRole gives the user the role; assigning twice is a no-op.
// Returns EINVALID naming user_id or role_id if either does not exist.
func (db *DB) AssignRole(ctx context.Context, userID, roleID int64) error {
	link := &userRole{UserID: userID, RoleID: roleID}
	_, err := db.w.NewInsert().Model(link).On("CONFLICT (user_id, role_id) DO NOTHING").Exec(ctx)
	if err != nil {
		return db.translateRefs(ctx, db.w, err, "user_roles",
			map[string]any{"user_id": userID, "role_id": roleID}, "assign role")
	}
	return nil
}

// UnassignRole takes the role from the user.
// Returns ENOTFOUND if the user did not hold it.
func (db *DB) UnassignRole(ctx context.Context, userID, roleID int64) error {
	res, err := db.w.NewDelete().Model((*userRole)(nil)).
		Where("user_id = ? AND role_id = ?", userID, roleID).Exec(ctx)
	if err != nil {
		return translate(err, "user_roles", opDelete, "unassign role")
	}
	return affected(res, "user %d does not hold role %d", userID, roleID)
}

// UserPermissions returns the names of every permission the user holds
// through any of its roles, sorted and without duplicates. A user without
// roles, or an unknown user, has none.
func (db *DB) UserPermissions(ctx context.Context, userID int64) ([]string, error) {
	names := []string{}
	err := db.r.NewSelect().
		ColumnExpr("DISTINCT p.name").
		TableExpr("permissions AS p").
		Join("JOIN role_permissions AS rp ON rp.permission_id = p.id").
		Join("JOIN user_roles AS ur ON ur.role_id = rp.role_id").
		Where("ur.user_id = ?", userID).
		OrderExpr("p.name").
		Scan(ctx, &names)
	if err != nil {
		return nil, fmt.Errorf("store: user permissions: %w", err)
	}
	return names, nil
}

// EnsurePermission creates the permission, or brings the description and
// flags of the existing one of that name up to date, and fills p with the
// stored row. Safe to run at every start-up, from several processes at once.
// Returns EINVALID if it does not validate.
func (db *DB) EnsurePermission(ctx context.Context, p *ferry.Permission) error {
	if err := p.Validate(); err != nil {
		return err
	}
	p.CreatedAt = db.now()
	_, err := db.w.NewInsert().Model(p).
		On("CONFLICT (name) DO UPDATE").
		Set("description = EXCLUDED.description").
		Set("builtin = EXCLUDED.builtin").
		Set("restricted = EXCLUDED.restricted").
		Exec(ctx)
	if err != nil {
		return translate(err, "permissions", opWrite, "ensure permission")
	}
	if err := db.w.NewSelect().Model(p).Where("name = ?", p.Name).Scan(ctx); err != nil {
		return fmt.Errorf("store: read ensured permission: %w", err)
	}
	return nil
}

// EnsureRole creates the role, or brings the description and built-in flag
// of the existing one of that name up to date, and fills r with the stored
// row (without permissions). Safe to run at every start-up, from several
// processes at once.
// Returns EINVALID if it does not validate.
func (db *DB) EnsureRole(ctx context.Context, r *ferry.Role) error {
	if err := r.Validate(); err != nil {
		return err
	}
	r.CreatedAt = db.now()
	r.UpdatedAt = r.CreatedAt
	_, err := db.w.NewInsert().Model(r).
		On("CONFLICT (name) DO UPDATE").
		Set("description = EXCLUDED.description").
		Set("builtin = EXCLUDED.builtin").
		Exec(ctx)
	if err != nil {
		return translate(err, "roles", opWrite, "ensure role")
	}
	r.Permissions = nil
	if err := db.w.NewSelect().Model(r).Where("name = ?", r.Name).Scan(ctx); err != nil {
		return fmt.Errorf("store: read ensured role: %w", err)
	}
	return nil
}
