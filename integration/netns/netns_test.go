package netns

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Two hosts reach each other and the root namespace through the bridge, and a
// downed link cuts them off.
func TestHostsTalkAcrossNamespaces(t *testing.T) {
	topo := New(t, "src", "dst")
	src, dst := topo.Hosts["src"], topo.Hosts["dst"]

	// A listener in the root namespace, reached from inside src.
	l, err := net.Listen("tcp", topo.Gateway+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Write([]byte("echo " + line))
	}()
	port := l.Addr().(*net.TCPAddr).Port
	out, err := src.Command("bash", "-c", "exec 3<>/dev/tcp/"+topo.Gateway+"/"+itoa(port)+"; echo hello >&3; head -n1 <&3").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "echo hello" {
		t.Fatalf("src → root namespace: %v %q", err, out)
	}
	if out, err := src.Command("ping", "-c1", "-W2", dst.Addr).CombinedOutput(); err != nil {
		// ping may be missing; fall back to a TCP probe that must be refused (no listener), not time out.
		probe := src.Command("bash", "-c", "timeout 3 bash -c 'exec 3<>/dev/tcp/"+dst.Addr+"/9' 2>&1; echo rc=$?")
		o2, _ := probe.CombinedOutput()
		if !strings.Contains(string(o2), "refused") {
			t.Fatalf("src → dst unreachable: ping %v %s; tcp probe %s", err, out, o2)
		}
	}
	// A downed link: the same probe now fails without a refusal.
	src.SetLink(t, false)
	start := time.Now()
	o3, _ := src.Command("bash", "-c", "timeout 2 bash -c 'exec 3<>/dev/tcp/"+topo.Gateway+"/"+itoa(port)+"' 2>&1; echo rc=$?").CombinedOutput()
	if strings.Contains(string(o3), "rc=0") {
		t.Fatalf("connection succeeded over a downed link after %s: %s", time.Since(start), o3)
	}
	src.SetLink(t, true)
}

func itoa(i int) string { return strconv.Itoa(i) }
