package agent

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/agent/mirror"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// sample is the wire byte count at a moment of a running job.
type sample struct {
	at    time.Time
	bytes int64
}

// bytesAt interpolates the wire byte count at t from samples (sorted).
func bytesAt(s []sample, t time.Time) int64 {
	if len(s) == 0 || !t.After(s[0].at) {
		return 0
	}
	for i := 1; i < len(s); i++ {
		if !t.After(s[i].at) {
			a, b := s[i-1], s[i]
			f := float64(t.Sub(a.at)) / float64(b.at.Sub(a.at))
			return a.bytes + int64(f*float64(b.bytes-a.bytes))
		}
	}
	return s[len(s)-1].bytes
}

func TestSetBandwidthAppliesToRunningTransfer(t *testing.T) {
	const (
		size = 24 << 20
		low  = 2 << 20  // 2M
		high = 16 << 20 // 16M
	)
	env := newEnv(t)
	src, dst := t.TempDir(), t.TempDir()
	data := make([]byte, size)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(src, "big"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	from, to := env.endpoints(src, dst)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Nothing is sending yet: the agent says so.
	err := env.ctl.SetBandwidth(ctx, from.Addr, "live-bw", "8M")
	if !errors.Is(err, wire.ErrUnknownJob) {
		t.Fatalf("SetBandwidth before the job: err = %v, want ErrUnknownJob", err)
	}

	var mu sync.Mutex
	var samples []sample
	started := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		_, err := env.ctl.Mirror(ctx, MirrorRequest{JobID: "live-bw", From: from, To: to,
			Opts: mirror.Options{BWLimit: "2M"}}, func(p mirror.Progress) {
			mu.Lock()
			samples = append(samples, sample{time.Now(), p.WireBytes})
			mu.Unlock()
			if p.WireBytes > 0 {
				once.Do(func() { close(started) })
			}
		})
		done <- err
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("mirror ended before it sent anything: %v", err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := env.ctl.SetBandwidth(ctx, from.Addr, "live-bw", "Mon-Sun 00:00-24:00 16M"); err != nil {
		t.Fatalf("SetBandwidth: %v", err)
	}
	changed := time.Now()
	if err := env.ctl.SetBandwidth(ctx, from.Addr, "live-bw", "16Q"); !errors.Is(err, wire.ErrProtocol) {
		t.Errorf("bad spec: err = %v, want ErrProtocol", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("mirror: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(dst, "big"))
	if err != nil || string(got) != string(data) {
		t.Fatalf("target content differs (err %v)", err)
	}

	mu.Lock()
	defer mu.Unlock()
	// Before the change: the low rate (plus at most one 1 MiB frame of
	// slack per sending worker that reserved before the first sample).
	first := samples[0]
	before := bytesAt(samples, changed) - first.bytes
	lowRate := float64(before) / changed.Sub(first.at).Seconds()
	if lowRate > 1.5*low+float64(4<<20)/changed.Sub(first.at).Seconds() {
		t.Errorf("rate before the change %.2f MiB/s, want about 2", lowRate/(1<<20))
	}
	// Within a second of the change the transfer runs well above the old
	// rate: measure the 250 ms .. 1 s window after it.
	w0, w1 := changed.Add(250*time.Millisecond), changed.Add(time.Second)
	last := samples[len(samples)-1]
	if last.at.Before(w1) {
		// The transfer finished inside the window: measure up to its end.
		w1 = last.at
	}
	after := float64(bytesAt(samples, w1)-bytesAt(samples, w0)) / w1.Sub(w0).Seconds()
	t.Logf("before %.2f MiB/s, 0.25-1 s after the change %.2f MiB/s", lowRate/(1<<20), after/(1<<20))
	if after < 0.5*high {
		t.Errorf("0.25-1 s after raising the limit to 16M the rate was %.2f MiB/s, want ≥ 8", after/(1<<20))
	}
	if err := env.ctl.SetBandwidth(ctx, from.Addr, "live-bw", "off"); !errors.Is(err, wire.ErrUnknownJob) {
		t.Errorf("SetBandwidth after the job ended: err = %v, want ErrUnknownJob", err)
	}
}

// TestVerifyChecksPayloadOptions: verify refuses the payload options a
// mirror refuses (a short key, an unknown level) and accepts good ones.
func TestVerifyChecksPayloadOptions(t *testing.T) {
	env := newEnv(t)
	src, dst := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)
	good := mirror.Options{Encrypt: "aes", Compress: "fast", Key: []byte("0123456789abcdef0123")}
	if _, err := env.mirror(t, src, dst, good); err != nil {
		t.Fatal(err)
	}
	if d := env.verify(t, src, dst, good); len(d) != 0 {
		t.Fatalf("identical trees reported different: %+v", d)
	}
	from, to := env.endpoints(src, dst)
	ctx := context.Background()
	_, err := env.ctl.Verify(ctx, from, to, mirror.Options{Encrypt: "aes", Key: []byte("short")})
	if !errors.Is(err, wire.ErrPermission) {
		t.Errorf("short key: err = %v, want ErrPermission", err)
	}
	_, err = env.ctl.Verify(ctx, from, to, mirror.Options{Compress: "ludicrous"})
	if err == nil {
		t.Error("unknown compression level accepted")
	}
}
