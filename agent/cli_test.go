package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ferryBinary builds cmd/ferry into a temporary directory.
func ferryBinary(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go tool to build cmd/ferry")
	}
	bin := filepath.Join(t.TempDir(), "ferry")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/ferry-migrate/ferry/cmd/ferry").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startFerryAgent runs `ferry agent` and returns the process and address.
func startFerryAgent(t *testing.T, bin, ca, dataDir string, extra ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"agent", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--ca", ca, "--log-level", "error"}, extra...)...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		t.Fatal("ferry agent printed no address")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	return cmd, strings.TrimPrefix(sc.Text(), "listening on ")
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestCLIEndToEnd drives the real binary: ca init, two agents, mirror
// --json, verify (exit 0, then 1 with a difference report), and a kill -9 of
// the target agent in the middle of a mirror followed by a resuming re-run.
func TestCLIEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/ferry")
	}
	bin := ferryBinary(t)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	if out, err := exec.Command(bin, "ca", "init", ca).CombinedOutput(); err != nil {
		t.Fatalf("ca init: %v %s", err, out)
	}
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "sub", "a"), []byte("alpha"), 0o644)
	big := make([]byte, 200<<20)
	for i := range big {
		big[i] = byte(i>>12) ^ byte(i*31)
	}
	os.WriteFile(filepath.Join(src, "big"), big, 0o644)

	ckpt := []string{"--checkpoint-bytes", "1048576"}
	_, sAddr := startFerryAgent(t, bin, ca, filepath.Join(dir, "sdata"), ckpt...)
	tgt, tAddr := startFerryAgent(t, bin, ca, filepath.Join(dir, "tdata"), ckpt...)
	from, to := sAddr+":"+src, tAddr+":"+dst

	// Kill -9 the target agent once about a third of the data has moved.
	mirror := exec.Command(bin, "mirror", "--ca", ca, "--from", from, "--to", to, "--json", "--job", "e2e")
	var out1 bytes.Buffer
	mirror.Stdout = &out1
	if err := mirror.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := os.Stat(filepath.Join(dst)); err == nil && st.IsDir() {
			if n := dirBytes(dst); n > int64(len(big))/3 {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	tgt.Process.Signal(syscall.SIGKILL)
	tgt.Wait()
	if err := mirror.Wait(); exitCode(err) != 1 {
		t.Fatalf("mirror after kill -9 of the target: exit %d, want 1", exitCode(err))
	}

	_, tAddr = startFerryAgent(t, bin, ca, filepath.Join(dir, "tdata"), ckpt...)
	to = tAddr + ":" + dst
	out, err := exec.Command(bin, "mirror", "--ca", ca, "--from", from, "--to", to, "--json", "--job", "e2e").Output()
	if err != nil {
		t.Fatalf("re-run: %v %s", err, out)
	}
	var sum struct {
		OK           bool  `json:"ok"`
		Files        int64 `json:"files"`
		ResumedBytes int64 `json:"resumed_bytes"`
		BytesSent    int64 `json:"bytes_sent"`
	}
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatalf("summary: %v: %s", err, out)
	}
	if !sum.OK || sum.Files != 2 || sum.ResumedBytes == 0 || sum.BytesSent >= int64(len(big)) {
		t.Errorf("re-run summary %+v: want a resumed transfer", sum)
	}

	verify := func() (int, string) {
		out, err := exec.Command(bin, "verify", "--ca", ca, "--from", from, "--to", to).Output()
		return exitCode(err), string(out)
	}
	if code, out := verify(); code != 0 || !strings.Contains(out, "identical") {
		t.Fatalf("verify after mirror: exit %d: %s", code, out)
	}
	os.Chmod(filepath.Join(dst, "sub", "a"), 0o600)
	if code, out := verify(); code != 1 || !strings.Contains(out, "mode") || !strings.Contains(out, "sub/a") {
		t.Fatalf("verify with a mode difference: exit %d: %s", code, out)
	}
}

func dirBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
