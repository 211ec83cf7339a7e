package ferry

import "time"

// HostStatus is a host's state as users see it.
type HostStatus string

const (
	HostOnline  HostStatus = "online"
	HostOffline HostStatus = "offline"
	HostRevoked HostStatus = "revoked"
)

// Host is a machine running a Ferry agent, registered through a one-time
// enrollment token. Its agent polls the Temporal task queue TaskQueue().
type Host struct {
	ID       string `bun:"id,pk" json:"id"`
	Name     string `bun:"name,nullzero" json:"name"`
	Hostname string `bun:"hostname" json:"hostname"`
	OS       string `bun:"os" json:"os"`             // GOOS, e.g. "linux": the OS family prechecks compare
	Platform string `bun:"platform" json:"platform"` // distribution and version, e.g. "Debian 12"
	Arch     string `bun:"arch" json:"arch"`
	Kernel   string `bun:"kernel" json:"kernel"`

	CPUs        int        `bun:"cpus" json:"cpus"`
	MemoryBytes int64      `bun:"memory_bytes" json:"memoryBytes"`
	Disks       []HostDisk `bun:"disks" json:"disks"`
	Addresses   []string   `bun:"addresses" json:"addresses"`
	// DataAddr is the host:port other agents reach this host's data channel
	// on, as its agent advertises it ("" when it advertised none).
	DataAddr string `bun:"data_addr" json:"dataAddr,omitempty"`

	AgentVersion    string    `bun:"agent_version" json:"agentVersion"`
	CertSerial      string    `bun:"cert_serial" json:"certSerial"`
	CertFingerprint string    `bun:"cert_fingerprint" json:"certFingerprint"` // hex SHA-256 of the DER certificate
	CertNotAfter    time.Time `bun:"cert_not_after,nullzero" json:"certNotAfter,omitzero"`

	// Metrics is the last sample the agent sent with its heartbeat.
	Metrics    HostMetrics `bun:"metrics" json:"metrics"`
	LastSeenAt time.Time   `bun:"last_seen_at,nullzero" json:"lastSeenAt,omitzero"`
	RevokedAt  time.Time   `bun:"revoked_at,nullzero" json:"revokedAt,omitzero"`
	CreatedAt  time.Time   `bun:"created_at" json:"createdAt"`
	UpdatedAt  time.Time   `bun:"updated_at" json:"updatedAt"`
}

// HostDisk describes one mounted filesystem or block device of a host.
type HostDisk struct {
	Device     string `json:"device"`
	MountPoint string `json:"mountPoint,omitempty"`
	FSType     string `json:"fsType,omitempty"`
	TotalBytes int64  `json:"totalBytes"`
	FreeBytes  int64  `json:"freeBytes"`
}

// HostMetrics is one monitoring sample of a host.
type HostMetrics struct {
	Time             time.Time  `json:"time,omitzero"`
	CPUPercent       float64    `json:"cpuPercent"`
	Load1            float64    `json:"load1"`
	MemoryUsedBytes  int64      `json:"memoryUsedBytes"`
	MemoryTotalBytes int64      `json:"memoryTotalBytes"`
	Disks            []HostDisk `json:"disks,omitempty"`
}

// TaskQueue is the Temporal task queue the host's agent polls.
func (h *Host) TaskQueue() string { return HostTaskQueue(h.ID) }

// HostTaskQueue is the Temporal task queue of the agent on host id.
func HostTaskQueue(id string) string { return "host-" + id }

// Status reports the host's status at now: revoked, online when a heartbeat
// arrived within offlineAfter, else offline.
func (h *Host) Status(now time.Time, offlineAfter time.Duration) HostStatus {
	switch {
	case !h.RevokedAt.IsZero():
		return HostRevoked
	case !h.LastSeenAt.IsZero() && now.Sub(h.LastSeenAt) <= offlineAfter:
		return HostOnline
	}
	return HostOffline
}

// Validate returns EINVALID with one FieldError per invalid field.
func (h *Host) Validate() error {
	var fe fieldErrors
	fe.text("id", h.ID, 0, 64)
	fe.text("name", h.Name, 1, 253)
	fe.text("hostname", h.Hostname, 0, 256)
	fe.text("os", h.OS, 0, 64)
	fe.text("platform", h.Platform, 0, 256)
	fe.text("arch", h.Arch, 0, 64)
	fe.text("kernel", h.Kernel, 0, 256)
	fe.text("dataAddr", h.DataAddr, 0, 256)
	fe.text("agentVersion", h.AgentVersion, 0, 64)
	fe.text("certSerial", h.CertSerial, 0, 128)
	fe.text("certFingerprint", h.CertFingerprint, 0, 128)
	fe.time("certNotAfter", h.CertNotAfter)
	for i, a := range h.Addresses {
		fe.text(indexed("addresses", i), a, 1, 256)
	}
	for i, d := range h.Disks {
		fe.text(indexed("disks", i)+".device", d.Device, 0, 4096)
		fe.text(indexed("disks", i)+".mountPoint", d.MountPoint, 0, 4096)
		fe.text(indexed("disks", i)+".fsType", d.FSType, 0, 64)
	}
	if h.CPUs < 0 {
		fe.add("cpus", "must not be negative")
	}
	if h.MemoryBytes < 0 {
		fe.add("memoryBytes", "must not be negative")
	}
	return fe.err("host")
}

// HostFilter selects hosts in ListHosts. Zero fields match everything.
type HostFilter struct {
	Name    string // exact match
	Query   string // substring of name or hostname
	Revoked *bool  // nil: both
	Offset  int
	Limit   int
}

// EnrollmentToken lets one agent register its host, once, before it expires.
// Only its HashSecret is stored.
type EnrollmentToken struct {
	ID          int64     `bun:"id,pk,autoincrement" json:"id"`
	TokenHash   string    `bun:"token_hash,nullzero" json:"-"`
	Description string    `bun:"description" json:"description"`
	CreatedByID int64     `bun:"created_by_id,nullzero" json:"createdById,omitzero"`
	CreatedAt   time.Time `bun:"created_at" json:"createdAt"`
	ExpiresAt   time.Time `bun:"expires_at" json:"expiresAt"`
	UsedAt      time.Time `bun:"used_at,nullzero" json:"usedAt,omitzero"`
	HostID      string    `bun:"host_id,nullzero" json:"hostId,omitzero"` // host registered with it
}

// Validate returns EINVALID with one FieldError per invalid field.
func (t *EnrollmentToken) Validate() error {
	var fe fieldErrors
	if len(t.TokenHash) != 64 {
		fe.add("tokenHash", "must be a hex SHA-256")
	}
	if t.ExpiresAt.IsZero() {
		fe.add("expiresAt", "is required")
	}
	fe.time("expiresAt", t.ExpiresAt)
	fe.text("description", t.Description, 0, 512)
	return fe.err("enrollment token")
}
