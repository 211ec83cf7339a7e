// Package hostinfo reads what an agent reports about its host to the control
// plane: static facts (OS, kernel, CPUs, memory, disks, addresses) at
// enrollment and when they change, and a metrics sample with every
// heartbeat. It reads Linux's /proc and /etc/os-release and calls uname and
// statfs; nothing here needs the control plane.
package hostinfo

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ferry-migrate/ferry"
)

// Info is the static description of a host.
type Info struct {
	Hostname    string
	OS          string // GOOS
	Platform    string // PRETTY_NAME of /etc/os-release, e.g. "Debian GNU/Linux 12 (bookworm)"
	Arch        string // GOARCH
	Kernel      string // uname release, e.g. "6.1.0-18-amd64"
	CPUs        int
	MemoryBytes int64
	Disks       []ferry.HostDisk
	Addresses   []string // non-loopback IP addresses, IPv4 first
}

// Facts reads the host's facts. Parts that cannot be read (no
// /etc/os-release, an unreadable mount) are left empty; it returns an error
// only when the hostname or the memory size cannot be read.
func Facts() (Info, error) {
	var in Info
	var err error
	if in.Hostname, err = os.Hostname(); err != nil {
		return in, fmt.Errorf("hostinfo: hostname: %w", err)
	}
	in.OS, in.Arch, in.CPUs = runtime.GOOS, runtime.GOARCH, runtime.NumCPU()
	in.Platform = platform("/etc/os-release")
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		in.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	mem, err := meminfo()
	if err != nil {
		return in, err
	}
	in.MemoryBytes = mem["MemTotal"]
	in.Disks = Disks()
	in.Addresses = Addresses()
	return in, nil
}

// platform returns PRETTY_NAME (else NAME VERSION_ID) of an os-release file.
func platform(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	kv := map[string]string{}
	for line := range strings.Lines(string(data)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, `"'`)
		}
		kv[k] = v
	}
	if p := kv["PRETTY_NAME"]; p != "" {
		return p
	}
	return strings.TrimSpace(kv["NAME"] + " " + kv["VERSION_ID"])
}

// meminfo returns /proc/meminfo's fields in bytes.
func meminfo() (map[string]int64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return nil, fmt.Errorf("hostinfo: %w", err)
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		out[k] = n
	}
	if out["MemTotal"] <= 0 {
		return nil, fmt.Errorf("hostinfo: no MemTotal in /proc/meminfo")
	}
	return out, nil
}

// Disks returns the mounted block-device filesystems (the device path starts
// with "/"), each device once at its first mount point, with total and free
// (available to unprivileged users) bytes from statfs.
func Disks() []ferry.HostDisk {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []ferry.HostDisk
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasPrefix(f[0], "/") || seen[f[0]] {
			continue
		}
		dev, mnt, fstype := unescapeMount(f[0]), unescapeMount(f[1]), f[2]
		var st unix.Statfs_t
		if unix.Statfs(mnt, &st) != nil || st.Blocks == 0 {
			continue
		}
		seen[f[0]] = true
		bs := int64(st.Bsize)
		out = append(out, ferry.HostDisk{Device: dev, MountPoint: mnt, FSType: fstype,
			TotalBytes: int64(st.Blocks) * bs, FreeBytes: int64(st.Bavail) * bs})
	}
	return out
}

// unescapeMount undoes the octal escapes (\040 for a space) of /proc/mounts.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Addresses returns the IP addresses of the host's interfaces that are up,
// without loopback and link-local ones, IPv4 before IPv6.
func Addresses() []string {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var v4, v6 []string
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() || ipn.IP.IsLinkLocalMulticast() {
				continue
			}
			if ipn.IP.To4() != nil {
				v4 = append(v4, ipn.IP.String())
			} else {
				v6 = append(v6, ipn.IP.String())
			}
		}
	}
	return slices.Concat(v4, v6)
}
