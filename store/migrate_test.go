package store_test

import (
	"slices"
	"sync"
	"testing"

	"github.com/ferry-migrate/ferry/store"
	"github.com/uptrace/bun/driver/sqliteshim"
)

var wantTables = []string{
	"alarm_records", "alarm_rules", "api_tokens", "audit_head", "audit_records",
	"enrollment_tokens", "hosts", "job_events", "jobs", "metric_samples", "permissions",
	"report_schedules", "role_permissions", "roles", "schema_migrations",
	"sessions", "settings", "user_roles", "users",
}

func tables(t *testing.T, db *store.DB) []string {
	t.Helper()
	var names []string
	q := "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
	if db.Engine() == store.Postgres {
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name"
	}
	if err := db.Bun().NewRaw(q).Scan(ctx, &names); err != nil {
		t.Fatalf("list tables: %v", err)
	}
	return names
}

func TestMigrateEmptyThenNoop(t *testing.T) {
	forEachDSN(t, func(t *testing.T, dsn string) {
		db := open(t, dsn)
		if got := tables(t, db); len(got) != 0 {
			t.Fatalf("fresh database has tables %v", got)
		}
		mustNoErr(t, db.Migrate(ctx))
		if got := tables(t, db); !slices.Equal(got, wantTables) {
			t.Fatalf("tables after Migrate = %v\nwant %v", got, wantTables)
		}
		first, err := db.AppliedMigrations(ctx)
		mustNoErr(t, err)
		if len(first) == 0 || first[len(first)-1].Version != store.LatestMigration() {
			t.Fatalf("applied = %+v, want up to %d", first, store.LatestMigration())
		}

		mustNoErr(t, db.Migrate(ctx))
		second, err := db.AppliedMigrations(ctx)
		mustNoErr(t, err)
		if len(second) != len(first) {
			t.Fatalf("second Migrate changed the record: %+v -> %+v", first, second)
		}
		for i := range first {
			if first[i].Version != second[i].Version || !first[i].AppliedAt.Equal(second[i].AppliedAt) {
				t.Fatalf("second Migrate re-applied %d: %+v -> %+v", first[i].Version, first[i], second[i])
			}
		}
		if got := tables(t, db); !slices.Equal(got, wantTables) {
			t.Fatalf("tables after second Migrate = %v", got)
		}
	})
}

// Several processes (here: handles) starting at once must not race on the
// schema.
func TestMigrateConcurrently(t *testing.T) {
	forEachDSN(t, func(t *testing.T, dsn string) {
		const n = 4
		dbs := make([]*store.DB, n)
		for i := range dbs {
			dbs[i] = open(t, dsn)
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i, db := range dbs {
			wg.Go(func() { errs[i] = db.Migrate(ctx) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Migrate #%d: %v", i, err)
			}
		}
		applied, err := dbs[0].AppliedMigrations(ctx)
		mustNoErr(t, err)
		if len(applied) != store.LatestMigration() {
			t.Fatalf("applied %d migrations, want %d: %+v", len(applied), store.LatestMigration(), applied)
		}
	})
}

func TestSQLiteIsPureGoWithWAL(t *testing.T) {
	if got := sqliteshim.DriverName(); got != "sqlite" {
		t.Fatalf("sqliteshim picked driver %q, want modernc's \"sqlite\"", got)
	}
	db := openMigrated(t, "sqlite:"+t.TempDir()+"/ferry.db")
	var mode string
	mustNoErr(t, db.Bun().NewRaw("PRAGMA journal_mode").Scan(ctx, &mode))
	if mode != "wal" {
		t.Fatalf("journal_mode = %q, want wal", mode)
	}
	var fk, busy int
	mustNoErr(t, db.Bun().NewRaw("PRAGMA foreign_keys").Scan(ctx, &fk))
	mustNoErr(t, db.Bun().NewRaw("PRAGMA busy_timeout").Scan(ctx, &busy))
	if fk != 1 || busy < 1000 {
		t.Fatalf("foreign_keys = %d, busy_timeout = %d", fk, busy)
	}
}

func TestOpenDSNForms(t *testing.T) {
	dir := t.TempDir()
	for _, dsn := range []string{"sqlite:" + dir + "/a.db", "file:" + dir + "/b.db", dir + "/sub/c.db", ":memory:", "sqlite::memory:"} {
		db := open(t, dsn)
		if db.Engine() != store.SQLite {
			t.Errorf("%s: engine %s", dsn, db.Engine())
		}
		if err := db.Migrate(ctx); err != nil {
			t.Errorf("%s: Migrate: %v", dsn, err)
		}
		if _, err := db.ListRoles(ctx); err != nil {
			t.Errorf("%s: ListRoles: %v", dsn, err)
		}
	}
	if _, err := store.Open(ctx, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"); err == nil {
		t.Error("Open of an unreachable PostgreSQL succeeded")
	}
}
