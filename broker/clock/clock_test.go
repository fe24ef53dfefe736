package clock

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestModeTextRoundTrip(t *testing.T) {
	for _, c := range []struct {
		text string
		m    Mode
	}{
		{"", Mode{}},
		{"offset=30s", Mode{Offset: 30 * time.Second}},
		{"offset=-1m30s", Mode{Offset: -90 * time.Second}},
		{"offset=5s strobe=2s,100ms", Mode{Offset: 5 * time.Second, StrobeDelta: 2 * time.Second, StrobePeriod: 100 * time.Millisecond}},
		{"strobe=-10s,50ms", Mode{StrobeDelta: -10 * time.Second, StrobePeriod: 50 * time.Millisecond}},
	} {
		m, err := ParseMode(c.text)
		if err != nil || m != c.m {
			t.Errorf("ParseMode(%q) = %+v, %v; want %+v", c.text, m, err, c.m)
		}
		if m.String() != c.text {
			t.Errorf("%+v.String() = %q, want %q", m, m.String(), c.text)
		}
	}
	for _, bad := range []string{"offset=soon", "strobe=1s", "strobe=1s,0s", "skew=1s", "offset"} {
		if _, err := ParseMode(bad); err == nil {
			t.Errorf("ParseMode(%q) accepted", bad)
		}
	}
}

// TestClockFollowsControlFile shifts a clock through its control file and back, and checks a
// malformed file counts as the true time.
func TestClockFollowsControlFile(t *testing.T) {
	dir := t.TempDir()
	c, err := New(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	near := func(want time.Duration) bool {
		d := c.Now().Sub(time.Now())
		return d > want-time.Second && d < want+time.Second
	}
	wait := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: clock at %v from the true time", what, c.Now().Sub(time.Now()))
			}
			time.Sleep(CheckInterval / 4)
		}
	}
	if !near(0) {
		t.Fatal("a new clock is not at the true time")
	}
	if err := SetMode(dir, Mode{Offset: -time.Hour}); err != nil {
		t.Fatal(err)
	}
	wait("an hour behind", func() bool { return near(-time.Hour) })
	if err := os.WriteFile(filepath.Join(dir, ControlFile), []byte("offset=yesterday\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wait("a malformed control file is the true time", func() bool { return near(0) })
	if err := SetMode(dir, Mode{StrobeDelta: time.Hour, StrobePeriod: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	var ahead, now bool
	wait("both sides of a strobe", func() bool {
		ahead = ahead || near(time.Hour)
		now = now || near(0)
		return ahead && now
	})
	if err := SetMode(dir, Mode{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ControlFile)); !os.IsNotExist(err) {
		t.Fatalf("SetMode of the true time left the control file: %v", err)
	}
	wait("true time", func() bool { return near(0) })
	var nilClock *Clock
	if d := nilClock.Now().Sub(time.Now()); d > time.Second || d < -time.Second {
		t.Fatalf("a nil clock is %v off", d)
	}
}
