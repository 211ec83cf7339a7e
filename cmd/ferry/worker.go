package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/ferry-migrate/ferry/activities"
	"github.com/ferry-migrate/ferry/store"
	"github.com/ferry-migrate/ferry/worker"
)

func newWorkerCmd() *cobra.Command {
	var cfg controlConfig
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run the control-plane Temporal worker (workflows and controller activities)",
		Long: `Run the control-plane Temporal worker. It polls the task queue "ferry-control"
for Ferry's workflows (migration jobs, waves, reports, backups, compares) and
runs the controller activities: database writes, notifications, reports and
metadata backups. Run as many as you like; Temporal spreads the work.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.validateCore(); err != nil {
				return err
			}
			ctx := cmd.Context()
			log := slog.Default()
			db, err := openStore(ctx, cfg.DatabaseDSN)
			if err != nil {
				return err
			}
			defer db.Close()
			tc, err := dialTemporal(ctx, cfg.TemporalAddress, cfg.TemporalNamespace, log)
			if err != nil {
				return err
			}
			defer tc.Close()
			return runWorker(ctx, tc, db, cfg.TaskQueue, log)
		},
	}
	cfg.addCoreFlags(cmd.Flags(), "sqlite:var/ferry.db", "")
	return cmd
}

// runWorker runs the control-plane worker until ctx ends.
func runWorker(ctx context.Context, tc client.Client, db *store.DB, taskQueue string, log *slog.Logger) error {
	w, err := worker.New(worker.Config{
		Client:    tc,
		TaskQueue: taskQueue,
		Controller: &activities.Controller{
			Settings:  db,
			Events:    db,
			JobStates: db,
			Schedules: tc.ScheduleClient(),
		},
	})
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	log.Info("control-plane worker polling", "task_queue", taskQueue)
	<-ctx.Done()
	w.Stop()
	return nil
}
