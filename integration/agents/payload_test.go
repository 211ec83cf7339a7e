package agents

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/apiserver"
)

// TestCompressedEncryptedJob: a job created through the API with
// compression=fast and encryption=aes runs between two agents to
// cutover_complete. The source agent fetched the job key from the control
// plane (audited as agent-job-key), its sends went compressed over the
// wire, and the key appears in no process output.
func TestCompressedEncryptedJob(t *testing.T) {
	c := newCluster(t)
	a, b := c.startAgent("a"), c.startAgent("b")
	srcPath, dstPath := filepath.Join(c.dir, "src", "app"), filepath.Join(c.dir, "dst", "app")
	line := []byte("2026-11-25T12:00:00Z INFO request served path=/api/v1/things status=200 duration=3ms\n")
	var total int64
	for i := range 8 {
		p := filepath.Join(srcPath, fmt.Sprintf("d%d", i%2), fmt.Sprintf("log%d.txt", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat(line, 3000+i*500)
		total += int64(len(data))
		if err := os.WriteFile(p, data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Dir(dstPath), 0o755)
	var j apiserver.JobView
	c.mustCall("POST", "/api/v1/jobs", map[string]any{"name": "sealed", "sourceHostId": a.hostID, "sourcePaths": []string{srcPath},
		"targetHostId": b.hostID, "targetPath": dstPath, "lagThresholdSeconds": 5, "compression": "fast", "encryption": "aes"}, &j, http.StatusCreated)
	c.waitState(j.ID, ferry.JobPending, 30*time.Second)
	c.mustCall("POST", "/api/v1/jobs/"+j.ID+"/actions/start", nil, nil, http.StatusOK)
	c.cutover(j.ID, 2*time.Minute)
	if d := differences(t, srcPath, dstPath); len(d) != 0 {
		t.Fatalf("%d differences after cutover: %v", len(d), d)
	}

	// The source agent's sends: payload bytes against bytes on the wire.
	var sent, wire int64
	for l := range strings.Lines(a.p.Output()) {
		var e struct {
			Msg       string `json:"msg"`
			BytesSent int64  `json:"bytes_sent"`
			Wire      int64  `json:"wire"`
		}
		if json.Unmarshal([]byte(strings.TrimSpace(l)), &e) == nil && e.Msg == "send done" {
			sent, wire = sent+e.BytesSent, wire+e.Wire
		}
	}
	t.Logf("tree %d bytes; source sent %d payload bytes in %d bytes on the wire", total, sent, wire)
	if sent < total || wire <= 0 || wire > sent/4 {
		t.Errorf("compression not applied: %d payload bytes, %d on the wire (tree %d)", sent, wire, total)
	}

	db, err := sql.Open("postgres", c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var key []byte
	if err := db.QueryRow("SELECT encryption_key FROM jobs WHERE id = $1", j.ID).Scan(&key); err != nil || len(key) < 16 {
		t.Fatalf("stored key: %d bytes, %v", len(key), err)
	}
	var fetched int
	if err := db.QueryRow("SELECT count(*) FROM audit_records WHERE action = 'agent-job-key' AND result = $1 AND actor = $2",
		string(ferry.AuditSuccess), "host:"+a.hostID).Scan(&fetched); err != nil || fetched == 0 {
		t.Errorf("audited key fetches by the source host: %d, %v", fetched, err)
	}
	for name, out := range map[string]string{"source agent": a.p.Output(), "target agent": b.p.Output(),
		"worker": c.worker.p.Output()} {
		for _, enc := range []string{string(key), hex.EncodeToString(key), base64.StdEncoding.EncodeToString(key)} {
			if strings.Contains(out, enc) {
				t.Errorf("the job key appears in the %s's output", name)
			}
		}
	}
}
