package apiserver

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferry-migrate/ferry"
)

// HostFacts is what an agent reports about its host at enrollment and with
// heartbeats.
type HostFacts struct {
	Hostname     string           `json:"hostname" minLength:"1" maxLength:"253"`
	OS           string           `json:"os" minLength:"1" maxLength:"32" doc:"GOOS, e.g. linux"`
	Platform     string           `json:"platform,omitempty" maxLength:"128" doc:"Distribution and version, e.g. Debian 12"`
	Arch         string           `json:"arch" minLength:"1" maxLength:"32" doc:"GOARCH, e.g. amd64"`
	Kernel       string           `json:"kernel,omitempty" maxLength:"256"`
	CPUs         int              `json:"cpus" minimum:"0" maximum:"65536"`
	MemoryBytes  int64            `json:"memoryBytes" minimum:"0"`
	Disks        []ferry.HostDisk `json:"disks,omitempty" maxItems:"256"`
	Addresses    []string         `json:"addresses,omitempty" maxItems:"64" doc:"IP addresses of the host"`
	DataAddr     string           `json:"dataAddr,omitempty" maxLength:"256" doc:"host:port other agents reach this agent's data channel on (ferry agent --advertise)"`
	AgentVersion string           `json:"agentVersion" minLength:"1" maxLength:"64"`
}

// validate checks what the schema cannot: DataAddr is host:port with a
// numeric port. prefix is the facts' location in the body.
func (f *HostFacts) validate(prefix string) error {
	if f == nil || f.DataAddr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(f.DataAddr)
	if err != nil || host == "" {
		return invalidField(prefix+".dataAddr", "must be HOST:PORT")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return invalidField(prefix+".dataAddr", "must have a port from 1 to 65535")
	}
	return nil
}

func (f *HostFacts) apply(h *ferry.Host) {
	h.Hostname, h.OS, h.Platform, h.Arch, h.Kernel = f.Hostname, f.OS, f.Platform, f.Arch, f.Kernel
	h.CPUs, h.MemoryBytes, h.AgentVersion = f.CPUs, f.MemoryBytes, f.AgentVersion
	h.Disks = nonNil(f.Disks)
	h.Addresses = nonNil(f.Addresses)
	h.DataAddr = f.DataAddr
}

// HostView is a host as the API shows it.
type HostView struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	Status          ferry.HostStatus  `json:"status" enum:"online,offline,revoked"`
	Hostname        string            `json:"hostname"`
	OS              string            `json:"os"`
	Platform        string            `json:"platform"`
	Arch            string            `json:"arch"`
	Kernel          string            `json:"kernel"`
	CPUs            int               `json:"cpus"`
	MemoryBytes     int64             `json:"memoryBytes"`
	Disks           []ferry.HostDisk  `json:"disks"`
	Addresses       []string          `json:"addresses"`
	DataAddr        string            `json:"dataAddr,omitempty" doc:"Address of the agent's data channel"`
	AgentVersion    string            `json:"agentVersion"`
	TaskQueue       string            `json:"taskQueue"`
	CertSerial      string            `json:"certSerial"`
	CertFingerprint string            `json:"certFingerprint"`
	CertNotAfter    time.Time         `json:"certNotAfter,omitzero"`
	Metrics         ferry.HostMetrics `json:"metrics"`
	LastSeenAt      time.Time         `json:"lastSeenAt,omitzero"`
	RevokedAt       time.Time         `json:"revokedAt,omitzero"`
	CreatedAt       time.Time         `json:"createdAt"`
}

// EnrollmentTokenView is an enrollment token without its secret.
type EnrollmentTokenView struct {
	ID          int64     `json:"id"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"createdAt"`
	ExpiresAt   time.Time `json:"expiresAt"`
	UsedAt      time.Time `json:"usedAt,omitzero"`
	HostID      string    `json:"hostId,omitempty"`
}

// CreateEnrollmentTokenInput is the body of create-enrollment-token.
type CreateEnrollmentTokenInput struct {
	Body struct {
		Description string `json:"description,omitempty" maxLength:"512"`
		TTLSeconds  int    `json:"ttlSeconds,omitempty" minimum:"0" maximum:"2592000" doc:"Lifetime; 0 means one hour"`
	}
}

// CreateEnrollmentTokenOutput shows the secret once.
type CreateEnrollmentTokenOutput struct {
	Body struct {
		Token string              `json:"token" doc:"Pass to: ferry agent --enroll URL --token TOKEN; shown only now"`
		Info  EnrollmentTokenView `json:"enrollmentToken"`
	}
}

// EnrollInput is an agent's enrollment request.
type EnrollInput struct {
	Body struct {
		Token string    `json:"token" minLength:"1" maxLength:"128" doc:"The one-time enrollment token"`
		Name  string    `json:"name,omitempty" maxLength:"253" doc:"Display name; default the hostname"`
		Facts HostFacts `json:"facts"`
		CSR   string    `json:"csr,omitempty" maxLength:"16384" doc:"PEM certificate request; without one the server generates the key and returns it"`
	}
}

// EnrollOutput is the enrolled host's identity.
type EnrollOutput struct {
	Body EnrollResult
}

// EnrollResult is what an agent receives at enrollment.
type EnrollResult struct {
	HostID      string `json:"hostId"`
	TaskQueue   string `json:"taskQueue" doc:"The Temporal task queue the agent polls"`
	Certificate string `json:"certificate" doc:"PEM certificate for the data channel and the API"`
	Key         string `json:"key,omitempty" doc:"PEM private key, only when no CSR was sent"`
	CA          string `json:"ca" doc:"PEM certificate of the control plane's CA"`
}

// HeartbeatInput is an agent's heartbeat.
type HeartbeatInput struct {
	Body struct {
		Facts   *HostFacts        `json:"facts,omitempty" doc:"Refreshed facts, when they changed"`
		Metrics ferry.HostMetrics `json:"metrics"`
	}
}

// HeartbeatOutput tells the agent its state.
type HeartbeatOutput struct {
	Body struct {
		HostID string    `json:"hostId"`
		Time   time.Time `json:"time" doc:"Server time, for clock-skew checks"`
		// RevokedSerials lets agents refuse revoked peers on the data
		// channel too.
		RevokedSerials []string `json:"revokedSerials" doc:"Hex serial numbers of revoked hosts' certificates"`
	}
}

// ListHostsInput filters list-hosts.
type ListHostsInput struct {
	PageQuery
	Query   string `query:"q" maxLength:"253" doc:"Substring of name or hostname"`
	Revoked string `query:"revoked" enum:"true,false" doc:"Only revoked (true) or only active (false) hosts"`
}

// HostListOutput is a page of hosts.
type HostListOutput struct {
	Body struct {
		PageInfo
		Items []HostView `json:"items"`
	}
}

// HostIDPath is a host ID in a path.
type HostIDPath struct {
	ID string `path:"id" pattern:"^[a-z2-7]{16}$" patternDescription:"16-character host ID"`
}

// HostOutput is one host.
type HostOutput struct {
	Body HostView
}

// EnrollmentTokenListOutput lists enrollment tokens.
type EnrollmentTokenListOutput struct {
	Body struct {
		Items []EnrollmentTokenView `json:"items"`
	}
}

func (s *Server) registerHosts() {
	tags := []string{"Hosts"}
	read := policy{Access: AccessPermission, Permission: ferry.PermHostsRead}
	manage := policy{Access: AccessPermission, Permission: ferry.PermHostsManage}
	register(s, huma.Operation{OperationID: "list-hosts", Method: http.MethodGet, Path: "/api/v1/hosts", Tags: tags,
		Summary: "List hosts"}, read, s.listHosts)
	register(s, huma.Operation{OperationID: "get-host", Method: http.MethodGet, Path: "/api/v1/hosts/{id}", Tags: tags,
		Summary: "Get a host", Errors: []int{http.StatusNotFound}}, read, s.getHost)
	register(s, huma.Operation{OperationID: "revoke-host", Method: http.MethodPost, Path: "/api/v1/hosts/{id}/revoke", Tags: tags,
		Summary: "Revoke a host: its certificate is refused from now on", Errors: []int{http.StatusNotFound}}, manage, s.revokeHost)
	register(s, huma.Operation{OperationID: "create-enrollment-token", Method: http.MethodPost, Path: "/api/v1/hosts/enrollment-tokens", Tags: tags,
		Summary: "Create a one-time enrollment token for a new host", DefaultStatus: http.StatusCreated}, manage, s.createEnrollmentToken)
	register(s, huma.Operation{OperationID: "list-enrollment-tokens", Method: http.MethodGet, Path: "/api/v1/hosts/enrollment-tokens", Tags: tags,
		Summary: "List enrollment tokens"}, manage, s.listEnrollmentTokens)
	register(s, huma.Operation{OperationID: "enroll-agent", Method: http.MethodPost, Path: "/api/v1/agents/enroll", Tags: []string{"Agents"},
		Summary:     "Register a host with a one-time enrollment token",
		Description: "Authenticated by the enrollment token in the body. Returns the host's certificate issued by the control plane's CA.",
		Errors:      []int{http.StatusUnauthorized, http.StatusServiceUnavailable}}, policy{Access: AccessPublic}, s.enroll)
	register(s, huma.Operation{OperationID: "agent-heartbeat", Method: http.MethodPost, Path: "/api/v1/agents/heartbeat", Tags: []string{"Agents"},
		Summary: "Report that the agent is alive, with fresh facts and metrics",
		Description: "Authenticated by the agent's client certificate (mutual TLS on the HTTPS listener). " +
			"A revoked host's certificate is refused."}, policy{Access: AccessHost, NoAudit: true}, s.heartbeat)
}

func (s *Server) hostView(h *ferry.Host) HostView {
	return HostView{ID: h.ID, Name: h.Name, Status: h.Status(s.now(), s.cfg.HostOfflineAfter), Hostname: h.Hostname,
		OS: h.OS, Platform: h.Platform, Arch: h.Arch, Kernel: h.Kernel, CPUs: h.CPUs, MemoryBytes: h.MemoryBytes,
		Disks: nonNil(h.Disks), Addresses: nonNil(h.Addresses), DataAddr: h.DataAddr, AgentVersion: h.AgentVersion, TaskQueue: h.TaskQueue(),
		CertSerial: h.CertSerial, CertFingerprint: h.CertFingerprint, CertNotAfter: h.CertNotAfter, Metrics: h.Metrics,
		LastSeenAt: h.LastSeenAt, RevokedAt: h.RevokedAt, CreatedAt: h.CreatedAt}
}

func (s *Server) listHosts(ctx context.Context, in *ListHostsInput) (*HostListOutput, error) {
	f := ferry.HostFilter{Query: in.Query, Offset: in.Offset, Limit: in.Limit}
	if in.Revoked != "" {
		v := in.Revoked == "true"
		f.Revoked = &v
	}
	hosts, total, err := s.db.ListHosts(ctx, f)
	if err != nil {
		return nil, err
	}
	out := &HostListOutput{}
	out.Body.PageInfo = pageInfo(total, in.Offset, in.Limit)
	out.Body.Items = []HostView{}
	for _, h := range hosts {
		out.Body.Items = append(out.Body.Items, s.hostView(h))
	}
	return out, nil
}

func (s *Server) getHost(ctx context.Context, in *HostIDPath) (*HostOutput, error) {
	h, err := s.db.FindHostByID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	return &HostOutput{Body: s.hostView(h)}, nil
}

func (s *Server) revokeHost(ctx context.Context, in *HostIDPath) (*HostOutput, error) {
	setTarget(ctx, "host:%s", in.ID)
	if err := s.db.RevokeHost(ctx, in.ID); err != nil {
		return nil, err
	}
	s.revoked.invalidate()
	return s.getHost(ctx, in)
}

func (s *Server) createEnrollmentToken(ctx context.Context, in *CreateEnrollmentTokenInput) (*CreateEnrollmentTokenOutput, error) {
	ttl := time.Duration(in.Body.TTLSeconds) * time.Second
	if ttl == 0 {
		ttl = time.Hour
	}
	secret := ferry.NewSecret(enrollmentPrefix)
	t := &ferry.EnrollmentToken{TokenHash: ferry.HashSecret(secret), Description: in.Body.Description,
		CreatedByID: principalOf(ctx).User.ID, ExpiresAt: s.now().Add(ttl)}
	if err := s.db.CreateEnrollmentToken(ctx, t); err != nil {
		return nil, err
	}
	setTarget(ctx, "enrollment-token:%d", t.ID)
	out := &CreateEnrollmentTokenOutput{}
	out.Body.Token = secret
	out.Body.Info = enrollmentTokenView(t)
	return out, nil
}

func enrollmentTokenView(t *ferry.EnrollmentToken) EnrollmentTokenView {
	return EnrollmentTokenView{ID: t.ID, Description: t.Description, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt,
		UsedAt: t.UsedAt, HostID: t.HostID}
}

func (s *Server) listEnrollmentTokens(ctx context.Context, _ *struct{}) (*EnrollmentTokenListOutput, error) {
	toks, err := s.db.ListEnrollmentTokens(ctx, time.Time{})
	if err != nil {
		return nil, err
	}
	out := &EnrollmentTokenListOutput{}
	out.Body.Items = []EnrollmentTokenView{}
	for _, t := range toks {
		out.Body.Items = append(out.Body.Items, enrollmentTokenView(t))
	}
	return out, nil
}

func (s *Server) enroll(ctx context.Context, in *EnrollInput) (*EnrollOutput, error) {
	if s.cfg.CA == nil {
		return nil, huma.Error503ServiceUnavailable("this server has no CA to issue agent certificates")
	}
	b := &in.Body
	st := stateOf(ctx)
	st.actor = "agent:" + b.Facts.Hostname
	if err := b.Facts.validate("body.facts"); err != nil {
		return nil, err
	}
	var csr *x509.CertificateRequest
	if b.CSR != "" {
		blk, _ := pem.Decode([]byte(b.CSR))
		if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
			return nil, invalidField("csr", "must be a PEM certificate request")
		}
		c, err := x509.ParseCertificateRequest(blk.Bytes)
		if err != nil || c.CheckSignature() != nil {
			return nil, invalidField("csr", "is not a valid, self-signed certificate request")
		}
		csr = c
	}
	h := &ferry.Host{ID: ferry.NewID(), Name: b.Name}
	if h.Name == "" {
		h.Name = b.Facts.Hostname
	}
	b.Facts.apply(h)
	setTarget(ctx, "host:%s", h.ID)
	sans := append([]string{b.Facts.Hostname}, b.Facts.Addresses...)
	var certPEM, keyPEM []byte
	var err error
	if csr != nil {
		certPEM, err = s.cfg.CA.SignCSR([]byte(b.CSR), h.ID, sans, s.cfg.AgentCertTTL)
	} else {
		certPEM, keyPEM, err = s.cfg.CA.Issue(h.ID, sans, s.cfg.AgentCertTTL)
	}
	if err != nil {
		return nil, fmt.Errorf("issue agent certificate: %w", err)
	}
	blk, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse issued certificate: %w", err)
	}
	sum := sha256.Sum256(cert.Raw)
	h.CertSerial = cert.SerialNumber.Text(16)
	h.CertFingerprint = hex.EncodeToString(sum[:])
	h.CertNotAfter = cert.NotAfter
	h.LastSeenAt = s.now()
	// The token is consumed and the host created in one transaction: a
	// token enrolls at most one host.
	if err := s.db.Enroll(ctx, ferry.HashSecret(b.Token), h); err != nil {
		setDetail(ctx, "%s", ferry.ErrorMessage(err))
		if ferry.ErrorCode(err) == ferry.EUNAUTHORIZED {
			return nil, unauthorized("the enrollment token is unknown, expired or already used")
		}
		return nil, err
	}
	st.actor = "host:" + h.ID
	return &EnrollOutput{Body: EnrollResult{HostID: h.ID, TaskQueue: h.TaskQueue(), Certificate: string(certPEM),
		Key: string(keyPEM), CA: string(s.cfg.CA.CertPEM)}}, nil
}

// authenticateHost identifies an agent by its verified client certificate.
func (s *Server) authenticateHost(hctx huma.Context) (*ferry.Host, error) {
	cs := hctx.TLS()
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return nil, unauthorized("agents authenticate with their client certificate over HTTPS")
	}
	if s.cfg.CA == nil {
		return nil, unauthorized("this server has no CA to verify agent certificates")
	}
	leaf := cs.PeerCertificates[0]
	roots := x509.NewCertPool()
	roots.AddCert(s.cfg.CA.Cert)
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: s.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, unauthorized("the client certificate was not issued by this control plane")
	}
	if s.IsRevoked(leaf.SerialNumber) {
		return nil, unauthorized("the host's certificate is revoked")
	}
	h, err := s.db.FindHostByID(hctx.Context(), leaf.Subject.CommonName)
	if err != nil {
		if ferry.ErrorCode(err) == ferry.ENOTFOUND {
			return nil, unauthorized("no host for this certificate")
		}
		return nil, err
	}
	if !h.RevokedAt.IsZero() {
		return nil, unauthorized("the host is revoked")
	}
	if h.CertSerial != leaf.SerialNumber.Text(16) {
		return nil, unauthorized("the certificate is not the host's current one")
	}
	return h, nil
}

func (s *Server) heartbeat(ctx context.Context, in *HeartbeatInput) (*HeartbeatOutput, error) {
	h := stateOf(ctx).host
	if h == nil {
		return nil, errors.New("heartbeat without host")
	}
	if err := in.Body.Facts.validate("body.facts"); err != nil {
		return nil, err
	}
	if in.Body.Facts != nil {
		in.Body.Facts.apply(h)
		if err := s.db.UpdateHost(ctx, h); err != nil {
			return nil, err
		}
	}
	if err := s.db.Heartbeat(ctx, h.ID, in.Body.Metrics); err != nil {
		return nil, err
	}
	out := &HeartbeatOutput{}
	out.Body.HostID = h.ID
	out.Body.Time = s.now()
	out.Body.RevokedSerials = s.revoked.list()
	return out, nil
}

// AgentTLS returns a copy of base (the HTTPS listener's configuration, with
// its certificate) that also asks clients for a certificate and verifies
// any it gets against the control plane's CA, so that agents can heartbeat
// with the certificate they received at enrollment. Browsers and CLI
// clients without a certificate are unaffected. Certificates of revoked
// hosts fail the handshake. Without a CA it returns base unchanged.
//
// For agents to trust the server, its certificate should be issued by the
// same CA (pki.LoadOrIssue) or by a CA the agents are given.
func (s *Server) AgentTLS(base *tls.Config) *tls.Config {
	if s.cfg.CA == nil || base == nil {
		return base
	}
	c := base.Clone()
	pool := x509.NewCertPool()
	pool.AddCert(s.cfg.CA.Cert)
	c.ClientCAs = pool
	c.ClientAuth = tls.VerifyClientCertIfGiven
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) > 0 && s.IsRevoked(cs.PeerCertificates[0].SerialNumber) {
			return fmt.Errorf("certificate of a revoked host")
		}
		return nil
	}
	return c
}

// list returns the revoked certificate serials (hex), sorted, for the
// agents' own revocation checks on the data channel.
func (r *revocations) list() []string {
	r.contains("") // reloads the cache when it is stale
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.serials))
	for s := range r.serials {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// HeartbeatReply is the server's answer to a heartbeat.
type HeartbeatReply struct {
	HostID string
	// Time is the server's time, for clock-skew checks.
	Time time.Time
	// RevokedSerials are the hex serial numbers of revoked hosts'
	// certificates, which the agent refuses on its data channel.
	RevokedSerials []string
}

// Heartbeat is SendHeartbeat returning the server's whole reply. Returns an
// *APIError with status 401 when the host is unknown or revoked (or a TLS
// handshake error when the server refuses the revoked certificate outright).
func Heartbeat(ctx context.Context, client *http.Client, baseURL string, facts *HostFacts, m ferry.HostMetrics) (*HeartbeatReply, error) {
	var in HeartbeatInput
	in.Body.Facts, in.Body.Metrics = facts, m
	var out HeartbeatOutput
	if err := postJSON(ctx, client, strings.TrimRight(baseURL, "/")+"/api/v1/agents/heartbeat", in.Body, &out.Body); err != nil {
		return nil, fmt.Errorf("heartbeat: %w", err)
	}
	return &HeartbeatReply{HostID: out.Body.HostID, Time: out.Body.Time, RevokedSerials: out.Body.RevokedSerials}, nil
}
