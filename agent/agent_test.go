package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/agent/mirror"
	"github.com/ferry-migrate/ferry/agent/wire"
)

func TestForeignCARefused(t *testing.T) {
	env := newEnv(t)
	stranger := controllerFor(t, newCA(t)) // certificate from another CA
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := stranger.Manifest(ctx, Endpoint{Addr: env.src.Addr().String(), Path: t.TempDir()}, mirror.Options{})
	if err == nil {
		t.Fatal("an agent accepted a controller whose certificate comes from another CA")
	}
	// And a client without any certificate.
	c, err := tls.Dial("tcp", env.src.Addr().String(), &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if err == nil {
		t.Fatal("an agent served a client without a certificate")
	}
}

func TestVersionMismatchOverTLS(t *testing.T) {
	env := newEnv(t)
	nc, err := net.Dial("tcp", env.src.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	tc := tls.Client(nc, env.ctl.TLS)
	c := wire.NewConn(tc)
	_, err = c.Handshake(&wire.Hello{Version: wire.Version + 1, Role: wire.RoleController, Agent: "ferry-from-the-future"})
	if !errors.Is(err, wire.ErrVersionMismatch) {
		t.Fatalf("err = %v, want ErrVersionMismatch", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("v%d", wire.Version)) || !strings.Contains(err.Error(), fmt.Sprintf("v%d", wire.Version+1)) {
		t.Errorf("error does not name both versions: %v", err)
	}
}

func TestAttachWithWrongTokenRefused(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	c, err := Dial(ctx, env.dst.Addr().String(), env.ctl.TLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Send(&wire.Attach{JobID: "nope", Token: "guess"})
	if _, err := wire.Expect[*wire.JobAccepted](c); !errors.Is(err, wire.ErrUnknownJob) {
		t.Fatalf("err = %v, want ErrUnknownJob", err)
	}
}

func TestMirrorErrorsAreClear(t *testing.T) {
	env := newEnv(t)
	_, err := env.mirror(t, "/does/not/exist", t.TempDir(), mirror.Options{})
	if !errors.Is(err, wire.ErrNotFound) {
		t.Errorf("missing source root: err = %v, want ErrNotFound", err)
	}
	_, err = env.mirror(t, t.TempDir(), "relative/path", mirror.Options{})
	if !errors.Is(err, wire.ErrBadPath) {
		t.Errorf("relative target root: err = %v, want ErrBadPath", err)
	}
}

func TestVerifyReportsDifferences(t *testing.T) {
	env := newEnv(t)
	src, dst := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(src, "same"), []byte("same"), 0o644)
	os.WriteFile(filepath.Join(src, "content"), []byte("aaaa"), 0o644)
	os.WriteFile(filepath.Join(src, "mode"), []byte("m"), 0o644)
	os.WriteFile(filepath.Join(src, "missing"), []byte("x"), 0o644)
	if _, err := env.mirror(t, src, dst, mirror.Options{}); err != nil {
		t.Fatal(err)
	}
	if d := env.verify(t, src, dst, mirror.Options{}); len(d) != 0 {
		t.Fatalf("identical trees reported different: %+v", d)
	}
	st, _ := os.Stat(filepath.Join(dst, "content"))
	os.WriteFile(filepath.Join(dst, "content"), []byte("bbbb"), 0o644)
	os.Chtimes(filepath.Join(dst, "content"), st.ModTime(), st.ModTime())
	os.Chmod(filepath.Join(dst, "mode"), 0o600)
	os.Remove(filepath.Join(dst, "missing"))
	os.WriteFile(filepath.Join(dst, "extra"), []byte("e"), 0o644)
	got := map[string]string{}
	for _, d := range env.verify(t, src, dst, mirror.Options{}) {
		var k []string
		for _, x := range d.Kinds {
			k = append(k, string(x))
		}
		got[d.Path] = strings.Join(k, ",")
	}
	// The root's mtime changed too (an entry was removed and one added).
	want := map[string]string{"": "mtime", "content": "content", "mode": "mode", "missing": "missing", "extra": "extra"}
	for p, k := range want {
		if got[p] != k {
			t.Errorf("%s: got %q, want %q", p, got[p], k)
		}
	}
	if len(got) != len(want) {
		t.Errorf("differences %v, want %v", got, want)
	}
}
