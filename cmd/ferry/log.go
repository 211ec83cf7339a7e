package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// logOptions are the persistent logging flags shared by every subcommand.
type logOptions struct {
	format string
	level  string
}

var logOpts logOptions

func addLogFlags(root *cobra.Command) {
	root.PersistentFlags().StringVar(&logOpts.format, "log-format", "auto",
		"log format: text, json, or auto (text on a terminal, JSON otherwise)")
	root.PersistentFlags().StringVar(&logOpts.level, "log-level", "info",
		"minimum log level: debug, info, warn, error")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyEnv(cmd); err != nil {
			return err
		}
		l, err := newLogger(os.Stderr, logOpts)
		if err != nil {
			return err
		}
		slog.SetDefault(l)
		return nil
	}
}

func newLogger(w io.Writer, o logOptions) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(o.level)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", o.level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	format := o.format
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("invalid --log-format %q: want text, json or auto", o.format)
	}
}
