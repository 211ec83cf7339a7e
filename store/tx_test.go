package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/store"
)

func TestInTx(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		role := &ferry.Role{Name: "ops"}
		mustNoErr(t, db.CreateRole(ctx, role))

		// Commit: a user, its role and the audit record land together.
		err := db.InTx(ctx, func(ctx context.Context, tx *store.DB) error {
			u := newUser("alice")
			if err := tx.CreateUser(ctx, u); err != nil {
				return err
			}
			if err := tx.AssignRole(ctx, u.ID, role.ID); err != nil {
				return err
			}
			if got, err := tx.FindUserByName(ctx, "alice"); err != nil || !got.HasRole("ops") {
				t.Errorf("inside the transaction: %+v %v", got, err)
			}
			return tx.AppendAudit(ctx, &ferry.AuditRecord{Actor: "root", Action: "users.create", Target: "user:alice", Result: ferry.AuditSuccess})
		})
		mustNoErr(t, err)
		u, err := db.FindUserByName(ctx, "alice")
		mustNoErr(t, err)
		if !u.HasRole("ops") {
			t.Fatal("role assignment not committed")
		}

		// Rollback: nothing of a failed transaction remains, the audit chain
		// included.
		boom := errors.New("boom")
		err = db.InTx(ctx, func(ctx context.Context, tx *store.DB) error {
			mustNoErr(t, tx.CreateUser(ctx, newUser("bob")))
			mustNoErr(t, tx.AppendAudit(ctx, &ferry.AuditRecord{Actor: "root", Action: "users.create", Target: "user:bob", Result: ferry.AuditSuccess}))
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx returned %v", err)
		}
		_, err = db.FindUserByName(ctx, "bob")
		wantCode(t, err, ferry.ENOTFOUND)
		mustNoErr(t, db.AppendAudit(ctx, &ferry.AuditRecord{Actor: "root", Action: "users.delete", Target: "user:x", Result: ferry.AuditFailure}))
		v, err := db.VerifyAuditChain(ctx)
		mustNoErr(t, err)
		if !v.Valid || v.Checked != 2 {
			t.Fatalf("audit after rollback: %+v", v)
		}

		// A store error inside the transaction comes out unchanged.
		err = db.InTx(ctx, func(ctx context.Context, tx *store.DB) error {
			return tx.CreateUser(ctx, newUser("alice"))
		})
		wantCode(t, err, ferry.ECONFLICT)
		if err := db.InTx(ctx, func(ctx context.Context, tx *store.DB) error { return tx.Close() }); err == nil {
			t.Fatal("Close inside InTx succeeded")
		}
	})
}
