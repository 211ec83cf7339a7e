// Package apiserver is Ferry's OpenAPI server: Huma v2 handlers, the embedded
// browser UI, health and readiness probes and Prometheus metrics.
package apiserver

import (
	"context"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferry-migrate/ferry/ui"
)

// Version is the API version in the OpenAPI document.
const Version = "0.1.0"

// Pinger is what readiness needs from a dependency: the database, Temporal.
type Pinger interface {
	Ping(ctx context.Context) error
}

// PingFunc adapts a function to Pinger.
type PingFunc func(ctx context.Context) error

// Ping calls f.
func (f PingFunc) Ping(ctx context.Context) error { return f(ctx) }

// Config holds the server's dependencies.
type Config struct {
	Logger *slog.Logger
	// Ready maps a dependency name to its probe; /readyz fails while any fails.
	Ready map[string]Pinger
	// TemporalUIURL is the base URL of the Temporal web UI, linked from the UI.
	TemporalUIURL string
	// Registry collects the Prometheus metrics served at /metrics; nil makes one.
	Registry *prometheus.Registry
}

// Server is the HTTP handler of the control plane.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	api     huma.API
	reg     *prometheus.Registry
	landing *template.Template
}

// New builds the server and registers every operation.
func New(cfg Config) (*Server, error) {
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), reg: cfg.Registry}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
		s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	hc := huma.DefaultConfig("Ferry API", Version)
	hc.Info.Description = "Ferry control plane: hosts, migration jobs, users and rights, audit, alarms, reports and metadata backup."
	// Huma's bundled docs page loads scripts from a CDN; the offline docs
	// page is served separately.
	hc.DocsPath = ""
	s.api = humago.New(s.mux, hc)
	s.registerHealth()

	tpl, err := template.ParseFS(ui.Assets(), "index.html")
	if err != nil {
		return nil, err
	}
	s.landing = tpl
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	s.mux.HandleFunc("GET /{$}", s.serveLanding)
	s.mux.Handle("GET /", http.FileServerFS(ui.Assets()))
	return s, nil
}

// Handler returns the root HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// API returns the Huma API, for tests and for generating the OpenAPI document.
func (s *Server) API() huma.API { return s.api }

func (s *Server) serveLanding(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	data := struct{ TemporalUIURL string }{s.cfg.TemporalUIURL}
	if err := s.landing.Execute(w, data); err != nil {
		s.log.Error("render landing page", "err", err)
	}
}

// UIAssets is the UI's file system (re-exported for the dev command's checks).
func UIAssets() fs.FS { return ui.Assets() }
