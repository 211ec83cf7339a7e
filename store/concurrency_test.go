package store_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
)

// writers × opsPerWriter mixed writes run at once: users, audit appends,
// job events, job state changes and heartbeats, with reads in between. None
// may fail (in particular not with "database is locked"), every row must
// land, and the audit chain must not fork.
const (
	writers      = 20
	opsPerWriter = 25
)

func TestConcurrentWriters(t *testing.T) {
	forEachDSN(t, func(t *testing.T, dsn string) {
		db := openMigrated(t, dsn)
		// A second handle on the same database stands for a second process
		// (the API server and the worker both write).
		other := open(t, dsn)
		a, b := newHost(t, db, "a"), newHost(t, db, "b")
		j := newJob(a, b, "busy")
		mustNoErr(t, db.CreateJob(ctx, j))

		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, writers*opsPerWriter*5)
		for w := range writers {
			h := db
			if w%2 == 1 {
				h = other
			}
			wg.Go(func() {
				for i := range opsPerWriter {
					name := fmt.Sprintf("w%02d-%03d", w, i)
					if err := h.CreateUser(ctx, newUser(name)); err != nil {
						errs <- fmt.Errorf("%s create user: %w", name, err)
					}
					if err := h.AppendAudit(ctx, &ferry.AuditRecord{Actor: name, Action: "users.create", Target: "user:" + name, Result: ferry.AuditSuccess}); err != nil {
						errs <- fmt.Errorf("%s append audit: %w", name, err)
					}
					if err := h.AppendJobEvent(ctx, &ferry.JobEvent{JobID: j.ID, Type: ferry.JobEventProgress, Message: name}); err != nil {
						errs <- fmt.Errorf("%s append event: %w", name, err)
					}
					if _, err := h.SetJobState(ctx, j.ID, ferry.JobSyncing, name, "system"); err != nil {
						errs <- fmt.Errorf("%s set state: %w", name, err)
					}
					if err := h.Heartbeat(ctx, a.ID, ferry.HostMetrics{CPUPercent: float64(i)}); err != nil {
						errs <- fmt.Errorf("%s heartbeat: %w", name, err)
					}
					if _, _, err := h.ListJobEvents(ctx, ferry.JobEventFilter{JobID: j.ID, Limit: 5}); err != nil {
						errs <- fmt.Errorf("%s list events: %w", name, err)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		elapsed := time.Since(start)
		failed := 0
		for err := range errs {
			failed++
			if failed <= 10 {
				t.Error(err)
			}
			if strings.Contains(err.Error(), "locked") || strings.Contains(err.Error(), "SQLITE_BUSY") {
				t.Errorf("lock error: %v", err)
			}
		}
		if failed > 0 {
			t.Fatalf("%d of %d writes failed", failed, writers*opsPerWriter*5)
		}
		writes := writers * opsPerWriter * 5
		t.Logf("%s: %d writes by %d writers on 2 handles in %v (%.0f writes/s)",
			db.Engine(), writes, writers, elapsed.Round(time.Millisecond), float64(writes)/elapsed.Seconds())

		_, users, err := db.ListUsers(ctx, ferry.UserFilter{Limit: 1})
		mustNoErr(t, err)
		_, events, err := db.ListJobEvents(ctx, ferry.JobEventFilter{JobID: j.ID, Limit: 1})
		mustNoErr(t, err)
		if users != writers*opsPerWriter || events != 2*writers*opsPerWriter {
			t.Fatalf("%d users and %d events, want %d and %d", users, events, writers*opsPerWriter, 2*writers*opsPerWriter)
		}
		v, err := db.VerifyAuditChain(ctx)
		mustNoErr(t, err)
		if !v.Valid || v.Checked != writers*opsPerWriter {
			t.Fatalf("audit chain after concurrent appends: %+v", v)
		}
	})
}

// Writes wait for a long write transaction instead of failing.
func TestSQLiteWriterWaitsForLongTransaction(t *testing.T) {
	dsn := "sqlite:" + t.TempDir() + "/ferry.db"
	db := openMigrated(t, dsn)
	other := open(t, dsn)
	tx, err := other.Bun().BeginTx(ctx, nil) // BEGIN IMMEDIATE: holds the write lock
	mustNoErr(t, err)
	_, err = tx.ExecContext(ctx, "UPDATE audit_head SET last_id = last_id WHERE id = 1")
	mustNoErr(t, err)
	done := make(chan error, 1)
	go func() { done <- db.CreateUser(ctx, newUser("patient")) }()
	select {
	case err := <-done:
		t.Fatalf("write finished while another handle held the write lock: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	mustNoErr(t, tx.Commit())
	select {
	case err := <-done:
		mustNoErr(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("write still blocked after the lock was released")
	}
	if _, err := db.FindUserByName(ctx, "patient"); err != nil {
		t.Fatal(err)
	}
}
