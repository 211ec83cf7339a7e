// Package netns builds test hosts as Linux network namespaces: each host gets
// its own namespace, a veth pair into a bridge in the root namespace and an
// address in 198.18.0.0/24 (the range RFC 2544 sets aside for benchmarking),
// so that traffic between hosts really crosses a network stack and can be
// cut. Everything is torn down when the test ends, also when it fails.
package netns

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Subnet is the prefix every test host's address is in.
const Subnet = "198.18.0"

// Host is one test host.
type Host struct {
	Name string // the test's name for it ("src")
	NS   string // the network namespace
	Addr string // its IPv4 address
	veth string // root-namespace end of its veth pair
}

// Topology is a bridge and the hosts attached to it.
type Topology struct {
	Bridge  string
	Gateway string // the root namespace's address on the bridge
	Hosts   map[string]*Host
}

// Require skips the test unless it can create network namespaces.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("network namespaces need the ip command (Debian package iproute2)")
	}
}

// New creates the bridge and one namespace per name.
func New(t testing.TB, names ...string) *Topology {
	t.Helper()
	Require(t)
	id := randomID()
	topo := &Topology{Bridge: "fbr" + id, Gateway: Subnet + ".1", Hosts: map[string]*Host{}}
	t.Cleanup(func() { topo.teardown(t) })
	run(t, "ip", "link", "add", topo.Bridge, "type", "bridge")
	run(t, "ip", "addr", "add", topo.Gateway+"/24", "dev", topo.Bridge)
	run(t, "ip", "link", "set", topo.Bridge, "up")
	for i, name := range names {
		h := &Host{Name: name, NS: "ferry-" + name + "-" + id, Addr: fmt.Sprintf("%s.%d", Subnet, i+2),
			veth: fmt.Sprintf("fv%d%s", i, id)}
		topo.Hosts[name] = h
		run(t, "ip", "netns", "add", h.NS)
		run(t, "ip", "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.NS)
		run(t, "ip", "link", "set", h.veth, "master", topo.Bridge)
		run(t, "ip", "link", "set", h.veth, "up")
		run(t, "ip", "-n", h.NS, "addr", "add", h.Addr+"/24", "dev", "eth0")
		run(t, "ip", "-n", h.NS, "link", "set", "eth0", "up")
		run(t, "ip", "-n", h.NS, "link", "set", "lo", "up")
		run(t, "ip", "-n", h.NS, "route", "add", "default", "via", topo.Gateway)
	}
	return topo
}

// Command returns a command that runs inside the host's namespace.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// SetLink brings the host's link up or down: down cuts it off the network
// while its processes keep running.
func (h *Host) SetLink(t testing.TB, up bool) {
	t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	run(t, "ip", "link", "set", h.veth, state)
}

func (topo *Topology) teardown(t testing.TB) {
	for _, h := range topo.Hosts {
		// Processes still inside keep a namespace alive; kill them first.
		if out, err := exec.Command("ip", "netns", "pids", h.NS).Output(); err == nil {
			for _, pid := range strings.Fields(string(out)) {
				_ = exec.Command("kill", "-9", pid).Run()
			}
		}
		_ = exec.Command("ip", "netns", "del", h.NS).Run()
		_ = exec.Command("ip", "link", "del", h.veth).Run()
	}
	_ = exec.Command("ip", "link", "del", topo.Bridge).Run()
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func randomID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
