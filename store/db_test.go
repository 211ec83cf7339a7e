package store_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/store"
	_ "github.com/lib/pq"
)

const pgEnv = "FERRY_TEST_POSTGRES_DSN"

// forEachEngine runs fn against a fresh, migrated database on SQLite (in
// t.TempDir) and on PostgreSQL (a schema created for the subtest and
// dropped after it) when FERRY_TEST_POSTGRES_DSN is set.
func forEachEngine(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	forEachDSN(t, func(t *testing.T, dsn string) {
		fn(t, openMigrated(t, dsn))
	})
}

// forEachDSN runs fn with the DSN of a fresh, empty database on each engine.
func forEachDSN(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		fn(t, "sqlite:"+filepath.Join(t.TempDir(), "ferry.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, postgresDSN(t))
	})
}

// postgresDSN creates a schema with a random name in the database named by
// FERRY_TEST_POSTGRES_DSN, drops it when the test ends and returns a DSN
// whose connections use it (search_path). Schemas are much cheaper than
// databases to create and drop.
func postgresDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(pgEnv)
	if dsn == "" {
		t.Skip(pgEnv + " not set (go tool task test starts PostgreSQL)")
	}
	admin, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatalf("open admin connection: %v", err)
	}
	t.Cleanup(func() { admin.Close() })
	var b [6]byte
	rand.Read(b[:])
	name := "ferry_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE SCHEMA " + name); err != nil {
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA IF EXISTS " + name + " CASCADE"); err != nil {
			t.Errorf("drop test schema %s: %v", name, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse %s: %v", pgEnv, err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// open opens dsn and closes it when the test ends.
func open(t *testing.T, dsn string) *store.DB {
	t.Helper()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open(%q): %v", dsn, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func openMigrated(t *testing.T, dsn string) *store.DB {
	t.Helper()
	db := open(t, dsn)
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

// wantCode fails the test unless err is a *ferry.Error with code.
func wantCode(t *testing.T, err error, code string) *ferry.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	fe, ok := err.(*ferry.Error)
	if !ok {
		t.Fatalf("got %T %v, want *ferry.Error %s", err, err, code)
	}
	if fe.Code != code {
		t.Fatalf("got code %s (%v), want %s", fe.Code, err, code)
	}
	return fe
}

// wantField fails the test unless fe names field among its Fields.
func wantField(t *testing.T, fe *ferry.Error, field string) {
	t.Helper()
	for _, f := range fe.Fields {
		if f.Field == field {
			return
		}
	}
	t.Fatalf("error %v does not name field %q", fe, field)
}

func mustNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var ctx = context.Background()

// newUser returns a valid user named name.
func newUser(name string) *ferry.User {
	return &ferry.User{Username: name, DisplayName: "User " + name, Email: name + "@example.test", PasswordHash: "$argon2id$v=19$m=65536,t=1,p=2$c2FsdA$aGFzaA"}
}

// clock is a controllable time source for db.Now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)} }
func label(i int) string                 { return fmt.Sprintf("%03d", i) }
