// Package store keeps Ferry's control-plane data in PostgreSQL (through
// lib/pq) or in SQLite (pure Go, modernc.org/sqlite through bun's
// sqliteshim) with bun. One schema and one set of migrations serve both
// engines; driver errors are translated into *ferry.Error so the API can
// show what was wrong.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/lib/pq"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"
)

// Engine names a database engine.
type Engine string

const (
	Postgres Engine = "postgres"
	SQLite   Engine = "sqlite"
)

// DB is the control plane's database. It is safe for concurrent use.
//
// On SQLite every write goes through one connection whose transactions
// start with BEGIN IMMEDIATE, so writers queue inside the process instead
// of failing with "database is locked"; reads use a pool of read-only
// connections that WAL lets run beside the writer. On PostgreSQL both are
// the same pool.
type DB struct {
	engine Engine
	w      bun.IDB // writes and read-modify-write transactions
	r      bun.IDB // plain reads
	// wdb and rdb are the connection pools behind w and r; a DB bound to a
	// transaction by InTx shares them but must not close them.
	wdb, rdb *bun.DB
	tx       bool

	// Now returns the current time; tests may replace it before use.
	Now func() time.Time
	// Logger receives migration notices; nil discards them.
	Logger *slog.Logger
}

// Open connects to the database named by dsn and checks that it answers.
// It does not migrate; call Migrate.
//
// dsn is either a PostgreSQL URL (postgres://user@host:port/db?sslmode=…)
// or an SQLite database: "sqlite:PATH", "file:PATH" or a plain PATH
// (":memory:" for a private in-memory database). The SQLite file and its
// parent directory are created when missing.
func Open(ctx context.Context, dsn string) (*DB, error) {
	db := &DB{Now: time.Now}
	var err error
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		err = db.openPostgres(ctx, dsn)
	} else {
		err = db.openSQLite(ctx, dsn)
	}
	if err != nil {
		return nil, err
	}
	db.register()
	db.w, db.r = db.wdb, db.rdb
	return db, nil
}

func (db *DB) openPostgres(ctx context.Context, dsn string) error {
	connector, err := pq.NewConnector(dsn)
	if err != nil {
		return fmt.Errorf("store: postgres DSN: %w", err)
	}
	sqldb := sql.OpenDB(connector)
	sqldb.SetMaxOpenConns(32)
	sqldb.SetMaxIdleConns(8)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	db.engine = Postgres
	db.wdb = bun.NewDB(sqldb, pgdialect.New())
	db.rdb = db.wdb
	if err := sqldb.PingContext(ctx); err != nil {
		sqldb.Close()
		return fmt.Errorf("store: connect to postgres: %w", err)
	}
	return nil
}

// sqlitePath extracts the file path from an SQLite DSN.
func sqlitePath(dsn string) string {
	for _, p := range []string{"sqlite://", "sqlite:", "file:"} {
		if rest, ok := strings.CutPrefix(dsn, p); ok {
			dsn = rest
			break
		}
	}
	path, _, _ := strings.Cut(dsn, "?")
	return path
}

func (db *DB) openSQLite(ctx context.Context, dsn string) error {
	if sqliteshim.DriverName() != "sqlite" {
		return fmt.Errorf("store: sqliteshim selected driver %q, want the pure-Go modernc driver", sqliteshim.DriverName())
	}
	path := sqlitePath(dsn)
	if path == "" {
		return fmt.Errorf("store: empty SQLite path in DSN %q", dsn)
	}
	memory := path == ":memory:"
	if !memory {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("store: create SQLite directory: %w", err)
		}
	}
	common := url.Values{}
	common.Add("_pragma", "busy_timeout(10000)")
	common.Add("_pragma", "foreign_keys(1)")
	common.Add("_pragma", "synchronous(NORMAL)")
	wq := url.Values{"_pragma": append([]string{"journal_mode(WAL)"}, common["_pragma"]...), "_txlock": {"immediate"}}
	rq := url.Values{"_pragma": append([]string{"query_only(1)"}, common["_pragma"]...)}
	name := "file:" + path

	wdb, err := sql.Open(sqliteshim.ShimName, name+"?"+wq.Encode())
	if err != nil {
		return fmt.Errorf("store: open SQLite %s: %w", path, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	db.engine = SQLite
	db.wdb = bun.NewDB(wdb, sqlitedialect.New())
	if err := wdb.PingContext(ctx); err != nil {
		wdb.Close()
		return fmt.Errorf("store: open SQLite %s: %w", path, err)
	}
	if memory {
		db.rdb = db.wdb // another connection would see another database
		return nil
	}
	rdb, err := sql.Open(sqliteshim.ShimName, name+"?"+rq.Encode())
	if err != nil {
		wdb.Close()
		return fmt.Errorf("store: open SQLite %s for reading: %w", path, err)
	}
	rdb.SetMaxOpenConns(max(4, runtime.NumCPU()))
	rdb.SetMaxIdleConns(max(4, runtime.NumCPU()))
	db.rdb = bun.NewDB(rdb, sqlitedialect.New())
	if err := rdb.PingContext(ctx); err != nil {
		wdb.Close()
		rdb.Close()
		return fmt.Errorf("store: open SQLite %s for reading: %w", path, err)
	}
	return nil
}

// register tells bun about the link tables behind many-to-many relations.
func (db *DB) register() {
	for _, b := range []*bun.DB{db.wdb, db.rdb} {
		b.RegisterModel((*userRole)(nil), (*rolePermission)(nil))
	}
}

// Engine reports which database engine is in use.
func (db *DB) Engine() Engine { return db.engine }

// Bun returns the underlying bun handle for writes, for tools that need raw
// access (metadata backup, the integration tests). Store methods are the
// supported interface.
func (db *DB) Bun() *bun.DB { return db.wdb }

// Ping checks that the database answers, for readiness probes.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.wdb.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	if err := db.rdb.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping readers: %w", err)
	}
	return nil
}

// Close closes every connection. Closing a DB bound to a transaction is an
// error; the transaction ends when the InTx function returns.
func (db *DB) Close() error {
	if db.tx {
		return errors.New("store: Close called inside InTx")
	}
	err := db.wdb.Close()
	if db.rdb != db.wdb {
		if rerr := db.rdb.Close(); err == nil {
			err = rerr
		}
	}
	return err
}

// InTx runs fn in one write transaction (BEGIN IMMEDIATE on SQLite) with a
// DB bound to it: every store method called on tx joins the transaction,
// which commits when fn returns nil and rolls back otherwise. Use it to make
// several changes atomic, e.g. a mutation and its audit record. Nested InTx
// calls use savepoints.
//
// fn must use only tx, never the outer DB: on SQLite the writer is one
// connection, which the transaction holds until fn returns. When a store
// method fails inside fn, return its error: PostgreSQL refuses every
// further statement of a transaction once one has failed.
func (db *DB) InTx(ctx context.Context, fn func(ctx context.Context, tx *DB) error) error {
	return db.w.RunInTx(ctx, nil, func(ctx context.Context, btx bun.Tx) error {
		bound := *db
		bound.w, bound.r, bound.tx = &btx, &btx, true
		return fn(ctx, &bound)
	})
}

// now returns the current time in UTC, truncated to the microseconds both
// engines keep, so values read back compare equal to values written.
func (db *DB) now() time.Time { return db.Now().UTC().Truncate(time.Microsecond) }

// inTx runs fn in a write transaction (BEGIN IMMEDIATE on SQLite). fn must
// use tx only: on SQLite the writer has a single connection.
func (db *DB) inTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	return db.w.RunInTx(ctx, nil, fn)
}

// page returns a sane offset and limit for a List call.
func page(offset, limit int) (int64, int64) {
	if offset < 0 {
		offset = 0
	}
	switch {
	case limit <= 0:
		limit = ferry.DefaultPageSize
	case limit > ferry.MaxPageSize:
		limit = ferry.MaxPageSize
	}
	return int64(offset), int64(limit)
}

// likePattern escapes s for a LIKE pattern matched with ESCAPE '\'.
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}

// utc normalises t for storage; the zero time stays zero.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

// affected returns ENOTFOUND (with the formatted message) when res changed
// no row.
func affected(res sql.Result, format string, args ...any) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: rows affected: %w", err)
	}
	if n == 0 {
		return ferry.Errorf(ferry.ENOTFOUND, format, args...)
	}
	return nil
}

// forUpdate locks the selected rows until the transaction ends. SQLite needs
// no row lock: its write transactions are serialised by BEGIN IMMEDIATE.
func (db *DB) forUpdate(q *bun.SelectQuery) *bun.SelectQuery {
	if db.engine == Postgres {
		return q.For("UPDATE")
	}
	return q
}
