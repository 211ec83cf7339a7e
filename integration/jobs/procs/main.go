// Command procs runs one piece of Ferry as its own process for the kill -9
// tests of integration/jobs, built from the same constructors `ferry agent`
// and `ferry worker` use:
//
//	procs host    -temporal ADDR -ca DIR -data-dir DIR -host-id ID -listen ADDR
//	procs control -temporal ADDR -dsn DSN -task-queue TQ
//
// It prints "ready ADDR" once serving and runs until killed.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/ferry-migrate/ferry/activities"
	"github.com/ferry-migrate/ferry/agent"
	"github.com/ferry-migrate/ferry/agent/pki"
	"github.com/ferry-migrate/ferry/store"
	"github.com/ferry-migrate/ferry/worker"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: procs host|control [flags]")
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "host":
		err = runHost(ctx, os.Args[2:], log)
	case "control":
		err = runControl(ctx, os.Args[2:], log)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "procs:", err)
		os.Exit(1)
	}
}

func dial(addr string, log *slog.Logger) (client.Client, error) {
	return client.Dial(client.Options{HostPort: addr, Logger: sdklog.NewStructuredLogger(log)})
}

// runHost is an agent: the data channel and the host worker.
func runHost(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("host", flag.ExitOnError)
	temporal := fs.String("temporal", "", "Temporal address")
	caDir := fs.String("ca", "", "CA directory")
	dataDir := fs.String("data-dir", "", "agent data directory")
	hostID := fs.String("host-id", "", "host ID")
	listen := fs.String("listen", "127.0.0.1:0", "data channel address")
	ckpt := fs.Int64("checkpoint-bytes", 0, "checkpoint interval")
	fs.Parse(args)
	id, err := pki.LoadOrIssue(*caDir, filepath.Join(*dataDir, "identity"), "agent-"+*hostID, nil)
	if err != nil {
		return err
	}
	a, err := agent.New(agent.Config{Listen: *listen, DataDir: filepath.Join(*dataDir, "data"), ServerTLS: id.ServerTLS(),
		ClientTLS: id.ClientTLS(), Log: log, CheckpointBytes: *ckpt})
	if err != nil {
		return err
	}
	go a.Serve(ctx)
	c, err := dial(*temporal, log)
	if err != nil {
		return err
	}
	defer c.Close()
	h := &activities.Host{ID: *hostID, AgentVersion: "v0.1.0", HeartbeatEvery: 500 * time.Millisecond,
		Engine: &activities.AgentEngine{Controller: &agent.Controller{TLS: id.ClientTLS()}, SelfAddr: a.Addr().String(),
			SyncInterval: 200 * time.Millisecond}}
	w, err := worker.NewHost(c, h, sdkworker.Options{WorkerStopTimeout: 3 * time.Second})
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return err
	}
	fmt.Println("ready", a.Addr().String())
	<-ctx.Done()
	w.Stop()
	return a.Close()
}

// runControl is `ferry worker`: workflows and controller activities.
func runControl(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("control", flag.ExitOnError)
	temporal := fs.String("temporal", "", "Temporal address")
	dsn := fs.String("dsn", "", "store DSN")
	tq := fs.String("task-queue", "", "control task queue")
	fs.Parse(args)
	db, err := store.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	c, err := dial(*temporal, log)
	if err != nil {
		return err
	}
	defer c.Close()
	w, err := worker.New(worker.Config{Client: c, TaskQueue: *tq, Controller: &activities.Controller{
		Settings: db, Events: db, JobStates: db, Schedules: c.ScheduleClient(),
	}})
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return err
	}
	fmt.Println("ready", *tq)
	<-ctx.Done()
	w.Stop()
	return nil
}
