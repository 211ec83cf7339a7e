package store_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/store"
)

func TestHostCRUDAndHeartbeat(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		clk := newClock()
		db.Now = clk.now
		h := &ferry.Host{
			Name: "web1", Hostname: "web1.example.test", OS: "linux", Platform: "Debian 12", Arch: "amd64",
			Kernel: "6.1.0", CPUs: 8, MemoryBytes: 32 << 30, AgentVersion: "0.1.0",
			Disks:      []ferry.HostDisk{{Device: "/dev/sda1", MountPoint: "/", FSType: "ext4", TotalBytes: 100 << 30, FreeBytes: 60 << 30}},
			Addresses:  []string{"192.0.2.10", "2001:db8::10"},
			CertSerial: "42", CertFingerprint: "ab12", CertNotAfter: clk.t.Add(365 * 24 * time.Hour),
		}
		mustNoErr(t, db.CreateHost(ctx, h))
		if len(h.ID) != 16 || h.TaskQueue() != "host-"+h.ID {
			t.Fatalf("id %q queue %q", h.ID, h.TaskQueue())
		}
		got, err := db.FindHostByID(ctx, h.ID)
		mustNoErr(t, err)
		if got.Platform != "Debian 12" || !slices.Equal(got.Addresses, h.Addresses) || len(got.Disks) != 1 || got.Disks[0] != h.Disks[0] || !got.CertNotAfter.Equal(h.CertNotAfter.Truncate(time.Microsecond)) {
			t.Fatalf("round trip: %+v", got)
		}
		if s := got.Status(clk.t, time.Minute); s != ferry.HostOffline {
			t.Fatalf("status before any heartbeat = %s", s)
		}

		clk.advance(time.Second)
		m := ferry.HostMetrics{CPUPercent: 12.5, Load1: 0.7, MemoryUsedBytes: 1 << 30, MemoryTotalBytes: 32 << 30, Disks: h.Disks}
		mustNoErr(t, db.Heartbeat(ctx, h.ID, m))
		got, err = db.FindHostByID(ctx, h.ID)
		mustNoErr(t, err)
		if !got.LastSeenAt.Equal(clk.t.Truncate(time.Microsecond)) || got.Metrics.CPUPercent != 12.5 || len(got.Metrics.Disks) != 1 || got.Metrics.Time.IsZero() {
			t.Fatalf("after heartbeat: seen %v metrics %+v", got.LastSeenAt, got.Metrics)
		}
		if s := got.Status(clk.t.Add(30*time.Second), time.Minute); s != ferry.HostOnline {
			t.Fatalf("status 30s after heartbeat = %s", s)
		}
		if s := got.Status(clk.t.Add(2*time.Minute), time.Minute); s != ferry.HostOffline {
			t.Fatalf("status 2m after heartbeat = %s", s)
		}

		got.AgentVersion = "0.2.0"
		got.Name = "web1-new"
		mustNoErr(t, db.UpdateHost(ctx, got))
		hosts, n, err := db.ListHosts(ctx, ferry.HostFilter{Query: "WEB1"})
		mustNoErr(t, err)
		if n != 1 || hosts[0].AgentVersion != "0.2.0" || hosts[0].Metrics.CPUPercent != 12.5 {
			t.Fatalf("list: %d %+v", n, hosts)
		}

		mustNoErr(t, db.RevokeHost(ctx, h.ID))
		wantCode(t, db.Heartbeat(ctx, h.ID, m), ferry.EFORBIDDEN)
		wantCode(t, db.Heartbeat(ctx, "nohost", m), ferry.ENOTFOUND)
		yes := true
		_, n, err = db.ListHosts(ctx, ferry.HostFilter{Revoked: &yes})
		mustNoErr(t, err)
		if n != 1 {
			t.Fatalf("revoked hosts = %d", n)
		}
		mustNoErr(t, db.DeleteHost(ctx, h.ID))
		_, err = db.FindHostByID(ctx, h.ID)
		wantCode(t, err, ferry.ENOTFOUND)
	})
}

func TestEnrollmentTokenIsOneTime(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		clk := newClock()
		db.Now = clk.now
		secret := ferry.NewSecret("fet_")
		tok := &ferry.EnrollmentToken{TokenHash: ferry.HashSecret(secret), Description: "rack 4", ExpiresAt: clk.t.Add(time.Hour)}
		mustNoErr(t, db.CreateEnrollmentToken(ctx, tok))

		// Ten agents race for one token: exactly one host is registered.
		var wg sync.WaitGroup
		results := make([]error, 10)
		for i := range results {
			wg.Go(func() {
				results[i] = db.Enroll(ctx, ferry.HashSecret(secret), &ferry.Host{Name: "agent-" + label(i)})
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range results {
			switch ferry.ErrorCode(err) {
			case "":
				ok++
			case ferry.EUNAUTHORIZED:
			default:
				t.Fatalf("enroll: %v", err)
			}
		}
		_, hosts, err := db.ListHosts(ctx, ferry.HostFilter{})
		mustNoErr(t, err)
		if ok != 1 || hosts != 1 {
			t.Fatalf("%d enrollments succeeded, %d hosts exist; want 1 and 1", ok, hosts)
		}
		toks, err := db.ListEnrollmentTokens(ctx, time.Time{})
		mustNoErr(t, err)
		if len(toks) != 1 || toks[0].UsedAt.IsZero() || toks[0].HostID == "" {
			t.Fatalf("token after use: %+v", toks[0])
		}

		wantCode(t, db.Enroll(ctx, ferry.HashSecret("fet_wrong"), &ferry.Host{Name: "x"}), ferry.EUNAUTHORIZED)
		late := &ferry.EnrollmentToken{TokenHash: ferry.HashSecret("fet_late"), ExpiresAt: clk.t.Add(time.Minute)}
		mustNoErr(t, db.CreateEnrollmentToken(ctx, late))
		clk.advance(2 * time.Minute)
		wantCode(t, db.Enroll(ctx, late.TokenHash, &ferry.Host{Name: "late"}), ferry.EUNAUTHORIZED)

		// A host name clash leaves the token usable.
		fresh := &ferry.EnrollmentToken{TokenHash: ferry.HashSecret("fet_fresh"), ExpiresAt: clk.t.Add(time.Hour)}
		mustNoErr(t, db.CreateEnrollmentToken(ctx, fresh))
		taken, _, err := db.ListHosts(ctx, ferry.HostFilter{})
		mustNoErr(t, err)
		wantCode(t, db.Enroll(ctx, fresh.TokenHash, &ferry.Host{Name: taken[0].Name}), ferry.ECONFLICT)
		mustNoErr(t, db.Enroll(ctx, fresh.TokenHash, &ferry.Host{Name: "other"}))
		wantCode(t, db.Enroll(ctx, fresh.TokenHash, &ferry.Host{Name: "third"}), ferry.EUNAUTHORIZED)
		mustNoErr(t, db.DeleteEnrollmentToken(ctx, late.ID))
		wantCode(t, db.DeleteEnrollmentToken(ctx, late.ID), ferry.ENOTFOUND)
	})
}

func TestHostDataAddr(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		h := &ferry.Host{Name: "data1", Hostname: "data1", DataAddr: "192.0.2.7:7780"}
		mustNoErr(t, db.CreateHost(ctx, h))
		got, err := db.FindHostByID(ctx, h.ID)
		mustNoErr(t, err)
		if got.DataAddr != "192.0.2.7:7780" {
			t.Fatalf("created data address %q", got.DataAddr)
		}
		got.DataAddr = "[2001:db8::7]:7781"
		mustNoErr(t, db.UpdateHost(ctx, got))
		got, err = db.FindHostByID(ctx, h.ID)
		mustNoErr(t, err)
		if got.DataAddr != "[2001:db8::7]:7781" {
			t.Fatalf("updated data address %q", got.DataAddr)
		}
		got.DataAddr = string(make([]byte, 300))
		if err := db.UpdateHost(ctx, got); ferry.ErrorCode(err) != ferry.EINVALID {
			t.Fatalf("300-byte data address: %v", err)
		}
	})
}
