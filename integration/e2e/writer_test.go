package e2e

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the live writer's database engine
)

// The live application of the source system: it commits SQLite transactions
// into ROOT/var/lib/ferry-app/app.db and appends to ROOT/var/log/ferry-app.log,
// printing the id of every committed transaction. It runs as a child process
// (this test binary re-executed) so that the pre-cutover hook can stop it.
const writerEnv = "FERRY_E2E_WRITER_ROOT"

func TestMain(m *testing.M) {
	if root := os.Getenv(writerEnv); root != "" {
		os.Exit(runWriter(root))
	}
	os.Exit(m.Run())
}

func runWriter(root string) int {
	dbDir := filepath.Join(root, "var/lib/ferry-app")
	if err := os.MkdirAll(dbDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dbDir, "app.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(5000)")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS txns (id INTEGER PRIMARY KEY, at TEXT NOT NULL, payload BLOB NOT NULL)`); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	logf, err := os.OpenFile(filepath.Join(root, "var/log/ferry-app.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer logf.Close()
	var last int64
	_ = db.QueryRow(`SELECT COALESCE(MAX(id), 0) FROM txns`).Scan(&last)
	stop := make(chan os.Signal, 1)
	signalNotify(stop)
	payload := []byte(strings.Repeat("ferry", 200))
	for id := last + 1; ; id++ {
		select {
		case <-stop:
			return 0
		default:
		}
		at := time.Now().UTC().Format(time.RFC3339Nano)
		if _, err := db.Exec(`INSERT INTO txns (id, at, payload) VALUES (?, ?, ?)`, id, at, payload); err != nil {
			fmt.Fprintln(os.Stderr, "insert:", err)
			return 1
		}
		fmt.Fprintf(logf, "%s committed %d\n", at, id)
		fmt.Printf("committed %d\n", id)
		time.Sleep(20 * time.Millisecond)
	}
}

// writer is the running live application seen from the test.
type writer struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	last int64 // guarded by mu: highest committed id reported
	done chan struct{}
}

// startWriter runs the live application against root (inside the host's
// namespace when ns is not empty).
func startWriter(t *testing.T, root string, wrap func(*exec.Cmd) *exec.Cmd) *writer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), writerEnv+"="+root)
	if wrap != nil {
		cmd = wrap(cmd)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &writer{cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if n, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
				if id, err := strconv.ParseInt(n, 10, 64); err == nil {
					w.mu.Lock()
					w.last = id
					w.mu.Unlock()
				}
			}
		}
		_ = cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

// lastCommitted is the highest transaction id the writer reported committed.
func (w *writer) lastCommitted() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// stop ends the writer with SIGTERM and waits.
func (w *writer) stop() {
	select {
	case <-w.done:
		return
	default:
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}

// checkDatabase opens the migrated database and checks integrity and that
// every transaction up to want is there.
func checkDatabase(ctx context.Context, t *testing.T, path string, want int64) {
	t.Helper()
	// A copy: opening a WAL database, even read-only, creates files beside it.
	dir := t.TempDir()
	for _, suffix := range []string{"", "-wal"} {
		if b, err := os.ReadFile(path + suffix); err == nil {
			if err := os.WriteFile(filepath.Join(dir, "app.db"+suffix), b, 0o600); err != nil {
				t.Fatal(err)
			}
		} else if suffix == "" {
			t.Fatalf("the migrated database: %v", err)
		}
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ic string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&ic); err != nil || ic != "ok" {
		t.Fatalf("integrity_check of the migrated database: %q %v", ic, err)
	}
	var n, maxID int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(MAX(id),0) FROM txns").Scan(&n, &maxID); err != nil {
		t.Fatal(err)
	}
	if maxID < want || n != maxID {
		t.Fatalf("migrated database holds %d transactions up to id %d; the writer committed up to %d", n, maxID, want)
	}
}
