// Package smoke proves the foundation end to end: the real Temporal dev
// server, the real `ferry worker` binary, and a workflow whose activity writes
// through the store to PostgreSQL.
package smoke

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/ferry-migrate/ferry/integration/harness"
	"github.com/ferry-migrate/ferry/workflows"
)

func TestWorkerWritesThroughStoreToPostgres(t *testing.T) {
	bin := harness.Env(t, "FERRY_TEMPORAL_BIN")
	dsn := harness.FreshPostgres(t)
	ferry := harness.FerryBinary(t)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath: bin,
		LogLevel:     "warn",
		ClientOptions: &client.Options{
			Namespace: "default",
		},
	})
	if err != nil {
		t.Fatalf("start Temporal dev server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	c := srv.Client()

	harness.Start(t, nil, ferry, "worker", "--log-format", "json",
		"--database-dsn", dsn, "--temporal-address", srv.FrontendHostPort())

	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        "smoke-" + time.Now().Format("150405.000000000"),
		TaskQueue: workflows.ControlTaskQueue,
	}, workflows.SelfTest, workflows.SelfTestInput{RequestedBy: "smoke-test"})
	if err != nil {
		t.Fatalf("start workflow: %v", err)
	}
	var res workflows.SelfTestResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("workflow: %v", err)
	}

	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var raw []byte
	if err := db.QueryRowContext(ctx, "SELECT value FROM settings WHERE key = $1", res.Key).Scan(&raw); err != nil {
		t.Fatalf("the worker's write is not in PostgreSQL: %v", err)
	}
	var value string
	if err := json.Unmarshal(raw, &value); err != nil {
		t.Fatalf("settings value %q is not a JSON string: %v", raw, err)
	}
	if value != res.Value || !strings.HasPrefix(value, run.GetID()+" by smoke-test at ") {
		t.Fatalf("settings row = %q, workflow reported %q", value, res.Value)
	}
}
