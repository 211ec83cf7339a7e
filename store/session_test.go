package store_test

import (
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/store"
)

func TestSessions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		clk := newClock()
		db.Now = clk.now
		u := newUser("alice")
		mustNoErr(t, db.CreateUser(ctx, u))
		r := &ferry.Role{Name: "admin"}
		mustNoErr(t, db.CreateRole(ctx, r))
		mustNoErr(t, db.AssignRole(ctx, u.ID, r.ID))

		secret := ferry.NewSecret("fss_")
		s := &ferry.Session{UserID: u.ID, TokenHash: ferry.HashSecret(secret), SourceAddr: "198.51.100.4", UserAgent: "test", ExpiresAt: clk.t.Add(time.Hour)}
		mustNoErr(t, db.CreateSession(ctx, s))
		got, err := db.FindSessionByHash(ctx, ferry.HashSecret(secret))
		mustNoErr(t, err)
		if got.ID != s.ID || got.User == nil || got.User.Username != "alice" || !got.User.HasRole("admin") {
			t.Fatalf("session %+v user %+v", got, got.User)
		}
		_, err = db.FindSessionByHash(ctx, ferry.HashSecret("fss_other"))
		wantCode(t, err, ferry.ENOTFOUND)

		clk.advance(50 * time.Minute)
		mustNoErr(t, db.TouchSession(ctx, s.ID, clk.t.Add(time.Hour)))
		clk.advance(30 * time.Minute) // past the first expiry, inside the slid one
		_, err = db.FindSessionByHash(ctx, s.TokenHash)
		mustNoErr(t, err)
		clk.advance(time.Hour)
		_, err = db.FindSessionByHash(ctx, s.TokenHash)
		wantCode(t, err, ferry.ENOTFOUND)
		n, err := db.DeleteExpiredSessions(ctx)
		mustNoErr(t, err)
		if n != 1 {
			t.Fatalf("deleted %d expired sessions", n)
		}
		wantCode(t, db.DeleteSession(ctx, s.ID), ferry.ENOTFOUND)

		for range 3 {
			mustNoErr(t, db.CreateSession(ctx, &ferry.Session{UserID: u.ID, TokenHash: ferry.HashSecret(ferry.NewSecret("fss_")), ExpiresAt: clk.t.Add(time.Hour)}))
		}
		n, err = db.DeleteUserSessions(ctx, u.ID)
		mustNoErr(t, err)
		if n != 3 {
			t.Fatalf("deleted %d user sessions", n)
		}
		dup := &ferry.Session{UserID: u.ID, TokenHash: ferry.HashSecret("x"), ExpiresAt: clk.t.Add(time.Hour)}
		mustNoErr(t, db.CreateSession(ctx, dup))
		dup2 := *dup
		wantCode(t, db.CreateSession(ctx, &dup2), ferry.ECONFLICT)
		fe := wantCode(t, db.CreateSession(ctx, &ferry.Session{UserID: 99999, TokenHash: ferry.HashSecret("y"), ExpiresAt: clk.t.Add(time.Hour)}), ferry.EINVALID)
		wantField(t, fe, "userId")

		// Deleting the user ends its sessions.
		mustNoErr(t, db.DeleteUser(ctx, u.ID))
		_, err = db.FindSessionByHash(ctx, dup.TokenHash)
		wantCode(t, err, ferry.ENOTFOUND)
	})
}

func TestLoginFailuresLockOut(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		clk := newClock()
		db.Now = clk.now
		u := newUser("alice")
		mustNoErr(t, db.CreateUser(ctx, u))
		for i := 1; i <= 4; i++ {
			got, err := db.RecordLoginFailure(ctx, u.ID, 5, 15*time.Minute)
			mustNoErr(t, err)
			if got.FailedLogins != i || got.Locked(clk.t) {
				t.Fatalf("after %d failures: %d locked=%v", i, got.FailedLogins, got.Locked(clk.t))
			}
		}
		got, err := db.RecordLoginFailure(ctx, u.ID, 5, 15*time.Minute)
		mustNoErr(t, err)
		if !got.Locked(clk.t) || got.Locked(clk.t.Add(16*time.Minute)) {
			t.Fatalf("lock until %v", got.LockedUntil)
		}
		stored, err := db.FindUserByID(ctx, u.ID)
		mustNoErr(t, err)
		if !stored.Locked(clk.t) {
			t.Fatal("lock not stored")
		}
		mustNoErr(t, db.RecordLoginSuccess(ctx, u.ID))
		stored, err = db.FindUserByID(ctx, u.ID)
		mustNoErr(t, err)
		if stored.Locked(clk.t) || stored.FailedLogins != 0 || stored.LastLoginAt.IsZero() {
			t.Fatalf("after success: %+v", stored)
		}
		_, err = db.RecordLoginFailure(ctx, 99999, 5, time.Minute)
		wantCode(t, err, ferry.ENOTFOUND)
	})
}

func TestAPITokens(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		clk := newClock()
		db.Now = clk.now
		u := newUser("robot")
		mustNoErr(t, db.CreateUser(ctx, u))
		secret := ferry.NewSecret("fat_")
		tok := &ferry.APIToken{UserID: u.ID, Name: "ci", Prefix: secret[:8], TokenHash: ferry.HashSecret(secret)}
		mustNoErr(t, db.CreateAPIToken(ctx, tok))
		clk.advance(time.Minute)
		got, err := db.FindAPITokenByHash(ctx, ferry.HashSecret(secret))
		mustNoErr(t, err)
		if got.ID != tok.ID || got.User.Username != "robot" || !got.LastUsedAt.Equal(clk.t.Truncate(time.Microsecond)) {
			t.Fatalf("token %+v", got)
		}
		expiring := &ferry.APIToken{UserID: u.ID, Name: "short", TokenHash: ferry.HashSecret("fat_short"), ExpiresAt: clk.t.Add(time.Hour)}
		mustNoErr(t, db.CreateAPIToken(ctx, expiring))
		_, err = db.FindAPITokenByHash(ctx, expiring.TokenHash)
		mustNoErr(t, err)
		clk.advance(2 * time.Hour)
		_, err = db.FindAPITokenByHash(ctx, expiring.TokenHash)
		wantCode(t, err, ferry.ENOTFOUND)

		mustNoErr(t, db.RevokeAPIToken(ctx, u.ID, tok.ID))
		mustNoErr(t, db.RevokeAPIToken(ctx, u.ID, tok.ID))
		_, err = db.FindAPITokenByHash(ctx, tok.TokenHash)
		wantCode(t, err, ferry.ENOTFOUND)
		wantCode(t, db.RevokeAPIToken(ctx, u.ID+1, tok.ID), ferry.ENOTFOUND)
		list, err := db.ListAPITokens(ctx, u.ID)
		mustNoErr(t, err)
		if len(list) != 2 || list[1].RevokedAt.IsZero() || list[1].Prefix != secret[:8] {
			t.Fatalf("list %+v", list)
		}
	})
}
