package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ferry-migrate/ferry"
	"github.com/uptrace/bun"
)

// bunKey quotes the settings key column, a keyword in SQL.
var bunKey = bun.Ident("key")

// GetSetting returns the setting.
// Returns ENOTFOUND if it has never been set.
func (db *DB) GetSetting(ctx context.Context, key string) (*ferry.Setting, error) {
	if err := checkText("key", key); err != nil {
		return nil, err
	}
	s := new(ferry.Setting)
	if err := db.r.NewSelect().Model(s).Where("? = ?", bunKey, key).Scan(ctx); err != nil {
		return nil, notFound(err, "get setting", "setting %q not set", key)
	}
	return s, nil
}

// GetSettingInto decodes the setting's JSON value into v and reports
// whether it was set; v is untouched when it was not.
// Returns EINVALID if the stored value does not decode into v.
func (db *DB) GetSettingInto(ctx context.Context, key string, v any) (bool, error) {
	s, err := db.GetSetting(ctx, key)
	if ferry.ErrorCode(err) == ferry.ENOTFOUND {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(s.Value, v); err != nil {
		return true, ferry.Errorf(ferry.EINVALID, "setting %q does not decode into %T: %v", key, v, err)
	}
	return true, nil
}

// PutSetting creates or replaces the setting and sets UpdatedAt.
// Returns EINVALID if it does not validate.
func (db *DB) PutSetting(ctx context.Context, s *ferry.Setting) error {
	if err := s.Validate(); err != nil {
		return err
	}
	s.UpdatedAt = db.now()
	_, err := db.w.NewInsert().Model(s).
		On(`CONFLICT ("key") DO UPDATE`).
		Set("value = EXCLUDED.value").
		Set("updated_by_id = EXCLUDED.updated_by_id").
		Set("updated_at = EXCLUDED.updated_at").
		Exec(ctx)
	if err != nil {
		return db.translateRefs(ctx, db.w, err, "settings", map[string]any{"updated_by_id": s.UpdatedByID}, "put setting")
	}
	return nil
}

// ListSettings returns every setting ordered by key.
func (db *DB) ListSettings(ctx context.Context) ([]*ferry.Setting, error) {
	var ss []*ferry.Setting
	if err := db.r.NewSelect().Model(&ss).Order("key").Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: list settings: %w", err)
	}
	return ss, nil
}

// DeleteSetting removes the setting.
// Returns ENOTFOUND if it was not set.
func (db *DB) DeleteSetting(ctx context.Context, key string) error {
	if err := checkText("key", key); err != nil {
		return err
	}
	res, err := db.w.NewDelete().Model((*ferry.Setting)(nil)).Where("? = ?", bunKey, key).Exec(ctx)
	if err != nil {
		return translate(err, "settings", opDelete, "delete setting")
	}
	return affected(res, "setting %q not set", key)
}
