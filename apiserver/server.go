// Package apiserver is Ferry's OpenAPI server: Huma v2 handlers, the embedded
// browser UI, health and readiness probes and Prometheus metrics.
//
// Every operation declares an access policy when it is registered (see
// rbac.go); one middleware authenticates the caller and enforces it, another
// records metrics and appends audit records. Errors of every kind are RFC
// 9457 problem documents built in one place (errors.go).
//
// Wiring a serving process:
//
//	creds, _ := apiserver.Bootstrap(ctx, db) // built-in accounts, once
//	srv, _ := apiserver.New(apiserver.Config{DB: db, CA: ca,
//		Engine: &apiserver.TemporalEngine{Client: tc, Hosts: db}, …})
//	https := srv.AgentTLS(tlsConfig) // agents heartbeat with their certificates
//	http.Serve(l, srv.Handler())
package apiserver

import (
	"context"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/agent/pki"
	"github.com/ferry-migrate/ferry/store"
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

// AuthConfig tunes authentication. Zero fields take the defaults.
type AuthConfig struct {
	// SessionTTL is how long a login session lasts (default 12 h).
	SessionTTL time.Duration
	// LockoutThreshold consecutive failed logins lock the account
	// (default 5) for LockoutDuration (default 15 min).
	LockoutThreshold int
	LockoutDuration  time.Duration
	// SecureCookie marks the session cookie Secure even on plain HTTP
	// requests (it always is on HTTPS ones).
	SecureCookie bool
}

// Config holds the server's dependencies. Only Logger may be nil for a
// server that generates the OpenAPI document; a serving server needs DB.
type Config struct {
	Logger *slog.Logger
	// DB is the control plane's database.
	DB *store.DB
	// Engine runs jobs (the TemporalEngine); nil makes job actions answer
	// 503.
	Engine JobEngine
	// CA issues agent certificates at enrollment; nil refuses enrollment.
	CA *pki.CA
	// AgentCertTTL is the lifetime of enrolled agents' certificates
	// (default pki.LeafValidity).
	AgentCertTTL time.Duration
	// HostOfflineAfter: a host without heartbeat for this long is offline
	// (default 90 s).
	HostOfflineAfter time.Duration
	Auth             AuthConfig
	// PasswordHashing are the argon2id parameters of new password hashes
	// (default DefaultPasswordHashing).
	PasswordHashing *argon2id.Params
	// Ready maps a dependency name to its probe; /readyz fails while any fails.
	Ready map[string]Pinger
	// TemporalUIURL is the base URL of the Temporal web UI, linked from the UI
	// and from each job; TemporalNamespace its namespace (default "default").
	TemporalUIURL     string
	TemporalNamespace string
	// Registry collects the Prometheus metrics served at /metrics; nil makes one.
	Registry *prometheus.Registry
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Server is the HTTP handler of the control plane.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	api     huma.API
	reg     *prometheus.Registry
	landing *template.Template
	metrics *metrics
	db      *store.DB
	now     func() time.Time
	revoked *revocations
	// dummyHash is checked against when a login names no user, so that
	// the answer takes as long as for a wrong password.
	dummyHash string
}

// installProblems makes every error response of Huma a Problem. Huma reads
// its error constructor from package variables (when it builds the schema
// and when it answers), so they are set once per process, before the first
// operation is registered; newProblem keeps no state of its own.
var installProblems sync.Once

// New builds the server and registers every operation.
func New(cfg Config) (*Server, error) {
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), reg: cfg.Registry, db: cfg.DB, now: cfg.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.applyDefaults()
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
		s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m, err := newMetrics(s.reg)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	if err := s.reg.Register(newJobCollector(s)); err != nil {
		return nil, fmt.Errorf("register job metrics: %w", err)
	}
	s.revoked = newRevocations(s)
	if s.dummyHash, err = hashPassword(ferry.NewSecret(""), s.cfg.PasswordHashing); err != nil {
		return nil, err
	}

	installProblems.Do(func() {
		huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
			return newProblem(nil, status, msg, errs...)
		}
		huma.NewErrorWithContext = newProblem
	})

	hc := huma.DefaultConfig("Ferry API", Version)
	hc.Info.Description = "Ferry control plane: hosts, migration jobs, users and rights, audit, alarms, reports and metadata backup.\n\n" +
		"Authenticate with `POST /api/v1/auth/login`; send the returned token as `Authorization: Bearer <token>` " +
		"(browsers get an HttpOnly session cookie). Errors are RFC 9457 problem documents."
	// Huma's bundled docs page loads scripts from a CDN; the offline docs
	// page is served separately (docs.go).
	hc.DocsPath = ""
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer":           {Type: "http", Scheme: "bearer", Description: "A session token from login, or a personal API token"},
		"session":          {Type: "apiKey", In: "cookie", Name: SessionCookie, Description: "The browser session cookie set by login"},
		"agentCertificate": {Type: "mutualTLS", Description: "The client certificate an agent received at enrollment"},
	}
	s.api = humago.New(s.mux, hc)
	s.api.UseMiddleware(s.observe, s.authorize, s.rejectNUL)

	s.registerHealth()
	s.registerAuth()
	s.registerUsers()
	s.registerRoles()
	s.registerAudit()
	s.registerHosts()
	s.registerAgentEvents()
	s.registerAgentKeys()
	s.registerCACert()
	s.registerJobs()
	s.registerProgress()

	tpl, err := template.ParseFS(ui.Assets(), "index.html")
	if err != nil {
		return nil, err
	}
	s.landing = tpl
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	s.registerDocs()
	s.mux.HandleFunc("GET /{$}", s.serveLanding)
	s.mux.Handle("GET /", http.FileServerFS(ui.Assets()))
	return s, nil
}

func (s *Server) applyDefaults() {
	a := &s.cfg.Auth
	if a.SessionTTL <= 0 {
		a.SessionTTL = 12 * time.Hour
	}
	if a.LockoutThreshold <= 0 {
		a.LockoutThreshold = 5
	}
	if a.LockoutDuration <= 0 {
		a.LockoutDuration = 15 * time.Minute
	}
	if s.cfg.PasswordHashing == nil {
		s.cfg.PasswordHashing = DefaultPasswordHashing()
	}
	if s.cfg.AgentCertTTL <= 0 {
		s.cfg.AgentCertTTL = pki.LeafValidity
	}
	if s.cfg.HostOfflineAfter <= 0 {
		s.cfg.HostOfflineAfter = 90 * time.Second
	}
	if s.cfg.TemporalNamespace == "" {
		s.cfg.TemporalNamespace = "default"
	}
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
