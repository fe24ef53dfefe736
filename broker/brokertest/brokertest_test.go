package brokertest_test

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kchaos/kchaos/broker/brokertest"
)

func TestMain(m *testing.M) { os.Exit(brokertest.Main(m)) }

func dial(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c.Close()
}

func TestStartRestartKill(t *testing.T) {
	p := brokertest.Start(t, brokertest.Set("num.partitions", "2"), brokertest.Metrics("127.0.0.1:0"))
	dial(t, p.Addr())
	if p.MetricsAddr() == "" {
		t.Fatal("no metrics address parsed from the listening line")
	}
	dial(t, p.MetricsAddr())
	dir := p.DataDir()
	p.Restart()
	if p.DataDir() != dir {
		t.Fatalf("data dir changed across restart: %s -> %s", dir, p.DataDir())
	}
	dial(t, p.Addr())
	if !strings.Contains(p.Stderr(), "recovered logs") {
		t.Fatalf("restarted broker did not log recovery:\n%s", p.Stderr())
	}
	p.Kill()
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Fatal("broker still accepts connections after Kill")
	}
	p.Restart() // a killed broker restarts too
	dial(t, p.Addr())
}

func TestBadSettingFailsStart(t *testing.T) {
	// A typo in --set must fail at start-up; Start reports it instead of hanging.
	ft := &fakeTB{TB: t}
	func() {
		defer func() { recover() }()
		brokertest.Start(ft, brokertest.Set("no.such.setting", "1"))
	}()
	if !strings.Contains(ft.msg, "exited before listening") || !strings.Contains(ft.msg, "no.such.setting") {
		t.Fatalf("Start with a bad setting: got %q", ft.msg)
	}
}

// fakeTB records Fatal instead of ending the test.
type fakeTB struct {
	testing.TB
	msg string
}

func (f *fakeTB) Fatal(args ...any) {
	for _, a := range args {
		if e, ok := a.(error); ok {
			f.msg += e.Error()
		}
	}
	panic("fatal")
}

func (f *fakeTB) Helper() {}
