// Package clock is the reference broker's wall clock: the one time source behind every
// wall-clock read that matters to Kafka's semantics — LogAppendTime and the timestamps of
// records the broker writes itself, retention and segment age (log.retention.ms,
// segment.ms, flush.ms), producer-id expiration, transaction timeouts, group session and
// rebalance timeouts, offset commit times and the ISR's replica.lag.time.max.ms — so the
// chaos controller can shift it at run time, one broker at a time.
//
// Why a seam in the broker rather than a shifted clock from outside: a Go program reads
// CLOCK_REALTIME and CLOCK_MONOTONIC through the vDSO, not through libc, so LD_PRELOAD
// tricks (libfaketime) never reach it; setting the host's clock (clock_settime, date -s)
// shifts every process on the host, not one broker of a local cluster; and Linux time
// namespaces (CLONE_NEWTIME) offset only CLOCK_MONOTONIC and CLOCK_BOOTTIME, never
// CLOCK_REALTIME. What a broker process can be made to see from outside is therefore the
// host's wall clock (for a whole host: the ssh driver's templates, `date -s`, chrony) and
// nothing per process; what it sees through this package is per broker and changes at once.
// Timers, tickers, sleeps and Raft's election and heartbeat timeouts stay on Go's monotonic
// clock, as the JVM's nanoTime-based timers do in Kafka: a clock fault moves what the broker
// believes the time is, not how fast its timers fire. The controller quorum's broker session
// timeouts are monotonic in Kafka too (broker.session.timeout.ms) and are not shifted.
//
// The control file DATA_DIR/.kchaos-clock holds the fault in force, reread at most every
// CheckInterval:
//
//	offset=30s                 the clock runs 30s ahead (offset=-1m: a minute behind)
//	offset=5s strobe=2s,100ms  5s ahead, and every other 100ms another 2s ahead
//	(empty)                    no fault; an absent file is the same
//
// A strobe flips on the real clock's period boundaries, so two brokers strobing with the same
// period flip together. A change of the control file is a jump of the clock: forward or
// backward, like an NTP step, never a slew.
package clock

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kchaos/kchaos/broker/controlfile"
)

// ControlFile is the name of the control file in the data directory.
const ControlFile = ".kchaos-clock"

// CheckInterval is how often, at most, Now rereads the control file: 20ms.
const CheckInterval = controlfile.CheckInterval

// Mode is a clock fault as the control file states it; the zero Mode is the true time.
type Mode struct {
	// Offset is added to the true time.
	Offset time.Duration
	// StrobeDelta is added on top of Offset during every other StrobePeriod; 0 means no strobe.
	StrobeDelta  time.Duration
	StrobePeriod time.Duration
}

// String returns the control file text of m ("" for the zero Mode).
func (m Mode) String() string {
	var parts []string
	if m.Offset != 0 {
		parts = append(parts, "offset="+m.Offset.String())
	}
	if m.StrobeDelta != 0 && m.StrobePeriod > 0 {
		parts = append(parts, "strobe="+m.StrobeDelta.String()+","+m.StrobePeriod.String())
	}
	return strings.Join(parts, " ")
}

// ParseMode parses control file text; blank text is the true time.
func ParseMode(s string) (Mode, error) {
	var m Mode
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		switch {
		case ok && k == "offset":
			d, err := time.ParseDuration(v)
			if err != nil {
				return Mode{}, fmt.Errorf("clock: control %q: offset %q is not a duration", s, v)
			}
			m.Offset = d
		case ok && k == "strobe":
			ds, ps, ok := strings.Cut(v, ",")
			d, err1 := time.ParseDuration(ds)
			p, err2 := time.ParseDuration(ps)
			if !ok || err1 != nil || err2 != nil || p <= 0 {
				return Mode{}, fmt.Errorf("clock: control %q: want strobe=DELTA,PERIOD like strobe=2s,100ms", s)
			}
			m.StrobeDelta, m.StrobePeriod = d, p
		default:
			return Mode{}, fmt.Errorf("clock: control %q: want offset=DURATION and/or strobe=DELTA,PERIOD", s)
		}
	}
	return m, nil
}

// shift returns how far m moves the true time real.
func (m Mode) shift(real time.Time) time.Duration {
	d := m.Offset
	if m.StrobeDelta != 0 && m.StrobePeriod > 0 && (real.UnixNano()/int64(m.StrobePeriod))%2 == 1 {
		d += m.StrobeDelta
	}
	return d
}

// SetMode writes m to the control file of the broker whose data directory is dataDir,
// atomically. The zero Mode removes the file.
func SetMode(dataDir string, m Mode) error {
	return controlfile.Set(filepath.Join(dataDir, ControlFile), m.String())
}

// Clock is a broker's wall clock. The zero value and nil are the true time. It is safe for
// concurrent use.
type Clock struct {
	control string
	logger  *slog.Logger

	poll    controlfile.Poller
	mode    atomic.Pointer[Mode]
	badText atomic.Pointer[string]
}

// New returns the clock of the broker whose data directory is dataDir; logger (nil:
// slog.Default()) hears about every change and about malformed control files.
func New(dataDir string, logger *slog.Logger) (*Clock, error) {
	if logger == nil {
		logger = slog.Default()
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("clock: %w", err)
	}
	c := &Clock{control: filepath.Join(abs, ControlFile), logger: logger}
	c.mode.Store(&Mode{})
	c.reload()
	return c, nil
}

// Now returns the broker's idea of the current time: the true wall-clock time moved by the
// fault in force. It carries no monotonic reading, so comparing two of its values compares
// wall-clock times, jumps included, as a JVM comparing currentTimeMillis values does.
func (c *Clock) Now() time.Time {
	real := time.Now()
	if c == nil || c.control == "" {
		return real.Round(0)
	}
	return real.Add(c.Mode().shift(real)).Round(0)
}

// Mode returns the fault in force, rereading the control file if CheckInterval has passed.
func (c *Clock) Mode() Mode {
	if c == nil || c.control == "" {
		return Mode{}
	}
	if c.poll.Due() {
		c.reload()
	}
	return *c.mode.Load()
}

// reload reads the control file; a missing or malformed file is the true time.
func (c *Clock) reload() {
	b, err := os.ReadFile(c.control)
	m := Mode{}
	if err == nil {
		pm, perr := ParseMode(string(b))
		if perr != nil {
			if bad := c.badText.Load(); bad == nil || *bad != string(b) {
				s := string(b)
				c.badText.Store(&s)
				c.logger.Warn("clock: ignoring control file", "err", perr)
			}
		} else {
			m = pm
		}
	}
	if cur := c.mode.Load(); *cur != m {
		c.logger.Info("clock: wall clock changed", "from", cur.String(), "to", m.String())
		c.mode.Store(&m)
	}
}
