package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// controlConfig is the configuration of the control plane (`ferry server`,
// `ferry worker`, `ferry dev`). Every field is a flag and a FERRY_* variable.
type controlConfig struct {
	DatabaseDSN       string
	TemporalAddress   string
	TemporalNamespace string
	TemporalUIURL     string
	TaskQueue         string

	HTTPListen  string
	HTTPSListen string
	TLSCert     string
	TLSKey      string

	S3Endpoint  string
	S3Bucket    string
	S3AccessKey string
	S3SecretKey string
	S3Insecure  bool
	BackupDir   string

	SMTPAddr     string
	SMTPUser     string
	SMTPPassword string
	SMTPFrom     string

	CADir string

	// InitialCredentials receives the built-in accounts' first passwords.
	InitialCredentials string
}

// addCoreFlags registers the storage, Temporal and CA flags.
func (c *controlConfig) addCoreFlags(fs *pflag.FlagSet, defDSN, defCA string) {
	fs.StringVar(&c.DatabaseDSN, "database-dsn", defDSN,
		"database: postgres://user:pass@host:5432/db?sslmode=… for PostgreSQL, or sqlite:PATH for the embedded SQLite file")
	fs.StringVar(&c.TemporalAddress, "temporal-address", "127.0.0.1:7233", "Temporal frontend host:port")
	fs.StringVar(&c.TemporalNamespace, "temporal-namespace", "default", "Temporal namespace")
	fs.StringVar(&c.TaskQueue, "task-queue", "ferry-control",
		"Temporal task queue of the control plane's workflows; server and workers of one installation must agree")
	fs.StringVar(&c.TemporalUIURL, "temporal-ui-url", "http://127.0.0.1:8233", "Temporal web UI base URL, linked from jobs")
	fs.StringVar(&c.CADir, "ca-dir", defCA, "directory of the control plane's certificate authority that issues agent certificates (created if missing)")
}

// addServeFlags registers the API server's listener, TLS, object store and
// SMTP flags.
func (c *controlConfig) addServeFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.HTTPListen, "http-listen", "127.0.0.1:8080", "address of the plain HTTP listener (empty to disable)")
	fs.StringVar(&c.HTTPSListen, "https-listen", "", "address of the HTTPS listener (empty to disable)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate for the HTTPS listener")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key for the HTTPS listener")
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", "", "S3/MinIO endpoint host:port for metadata backups (empty: use --backup-dir)")
	fs.StringVar(&c.S3Bucket, "s3-bucket", "ferry-backups", "S3 bucket for metadata backups")
	fs.StringVar(&c.S3AccessKey, "s3-access-key", "", "S3 access key")
	fs.StringVar(&c.S3SecretKey, "s3-secret-key", "", "S3 secret key")
	fs.BoolVar(&c.S3Insecure, "s3-insecure", false, "talk plain HTTP to the S3 endpoint")
	fs.StringVar(&c.BackupDir, "backup-dir", "", "local directory used as object store when no S3 endpoint is set")
	fs.StringVar(&c.SMTPAddr, "smtp-addr", "", "SMTP server host:port for alarm and report e-mail (empty: no e-mail)")
	fs.StringVar(&c.SMTPUser, "smtp-user", "", "SMTP user name")
	fs.StringVar(&c.SMTPPassword, "smtp-password", "", "SMTP password")
	fs.StringVar(&c.SMTPFrom, "smtp-from", "ferry@localhost", "sender address of Ferry's e-mail")
}

// validateCore checks the storage and Temporal settings; the error names the
// bad setting.
func (c *controlConfig) validateCore() error {
	if err := validateDSN(c.DatabaseDSN); err != nil {
		return settingError("database-dsn", err)
	}
	if err := validateHostPort(c.TemporalAddress, false); err != nil {
		return settingError("temporal-address", err)
	}
	if strings.TrimSpace(c.TaskQueue) == "" {
		return settingError("task-queue", fmt.Errorf("must not be empty"))
	}
	if strings.TrimSpace(c.TemporalNamespace) == "" {
		return settingError("temporal-namespace", fmt.Errorf("must not be empty"))
	}
	if c.TemporalUIURL != "" {
		if u, err := url.Parse(c.TemporalUIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return settingError("temporal-ui-url", fmt.Errorf("%q is not an http(s) URL", c.TemporalUIURL))
		}
	}
	return nil
}

// validateServe checks the listener, TLS, S3 and SMTP settings.
func (c *controlConfig) validateServe() error {
	if c.HTTPListen == "" && c.HTTPSListen == "" {
		return settingError("http-listen", fmt.Errorf("at least one of --http-listen and --https-listen is needed"))
	}
	if c.HTTPListen != "" {
		if err := validateHostPort(c.HTTPListen, true); err != nil {
			return settingError("http-listen", err)
		}
	}
	if c.HTTPSListen != "" {
		if err := validateHostPort(c.HTTPSListen, true); err != nil {
			return settingError("https-listen", err)
		}
		if (c.TLSCert == "") != (c.TLSKey == "") {
			return settingError("tls-cert", fmt.Errorf("--tls-cert and --tls-key go together"))
		}
		for name, p := range map[string]string{"tls-cert": c.TLSCert, "tls-key": c.TLSKey} {
			if p == "" {
				continue
			}
			if _, err := os.Stat(p); err != nil {
				return settingError(name, err)
			}
		}
	}
	if c.S3Endpoint != "" {
		if err := validateHostPort(c.S3Endpoint, false); err != nil {
			return settingError("s3-endpoint", err)
		}
		if c.S3AccessKey == "" || c.S3SecretKey == "" {
			return settingError("s3-access-key", fmt.Errorf("an S3 endpoint needs --s3-access-key and --s3-secret-key"))
		}
		if c.S3Bucket == "" {
			return settingError("s3-bucket", fmt.Errorf("must not be empty"))
		}
	}
	if c.SMTPAddr != "" {
		if err := validateHostPort(c.SMTPAddr, false); err != nil {
			return settingError("smtp-addr", err)
		}
		if !strings.Contains(c.SMTPFrom, "@") {
			return settingError("smtp-from", fmt.Errorf("%q is not an e-mail address", c.SMTPFrom))
		}
	}
	return nil
}

func settingError(flag string, err error) error {
	return fmt.Errorf("invalid setting --%s (%s): %w", flag, envName(flag), err)
}

func validateDSN(dsn string) error {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return fmt.Errorf("not a valid URL: %v", err)
		}
		if u.Host == "" {
			return fmt.Errorf("PostgreSQL DSN names no host")
		}
		return nil
	case strings.HasPrefix(dsn, "sqlite:"):
		if strings.TrimPrefix(dsn, "sqlite:") == "" {
			return fmt.Errorf("sqlite: needs a file path")
		}
		return nil
	case dsn == "":
		return fmt.Errorf("must not be empty")
	default:
		return fmt.Errorf("unsupported %q: use postgres://… or sqlite:PATH", redactDSN(dsn))
	}
}

// redactDSN hides a password in a DSN for error messages.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return dsn
}

func validateHostPort(addr string, listen bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if port == "" {
		return fmt.Errorf("%q has no port", addr)
	}
	if !listen && host == "" {
		return fmt.Errorf("%q has no host", addr)
	}
	return nil
}
