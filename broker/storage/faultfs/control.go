package faultfs

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kchaos/kchaos/broker/controlfile"
)

// ControlFile is the name of the control file in the data directory.
const ControlFile = ".kchaos-disk-fault"

// CheckInterval is how often, at most, the wrapper rereads the control file: 20ms.
const CheckInterval = controlfile.CheckInterval

// Mode is a disk fault as the control file states it; the zero Mode is no fault.
type Mode struct {
	// Full makes writes, creations and fsyncs fail with ENOSPC.
	Full bool
	// Slow delays each write and fsync; 0 means no delay.
	Slow time.Duration
	// Errno, when set (EIO or ENOSPC), fails the calls of Ops with it, each with chance Rate
	// (0 means 1).
	Errno syscall.Errno
	Ops   Ops
	Rate  float64
}

// Ops is a set of I/O calls an injected error hits.
type Ops uint8

// The calls an injected error can hit: reads (ReadAt, and sendfile, which the broker then
// does not use), writes (Write, file creation) and fsyncs (of files and directories).
const (
	OpRead Ops = 1 << iota
	OpWrite
	OpFsync
)

var opNames = []struct {
	op   Ops
	name string
}{{OpRead, "read"}, {OpWrite, "write"}, {OpFsync, "fsync"}}

// String lists the calls: "read,fsync".
func (o Ops) String() string {
	var out []string
	for _, n := range opNames {
		if o&n.op != 0 {
			out = append(out, n.name)
		}
	}
	return strings.Join(out, ",")
}

// ParseOps parses a comma-separated list of read, write and fsync.
func ParseOps(s string) (Ops, error) {
	var o Ops
	for _, f := range strings.Split(s, ",") {
		i := slices.IndexFunc(opNames, func(n struct {
			op   Ops
			name string
		}) bool {
			return n.name == strings.TrimSpace(f)
		})
		if i < 0 {
			return 0, fmt.Errorf("faultfs: ops %q: want read, write, fsync", s)
		}
		o |= opNames[i].op
	}
	return o, nil
}

// String returns the control file text of m: "full", "slow=DURATION", "error=EIO ops=read,write
// rate=0.5" or "".
func (m Mode) String() string {
	switch {
	case m.Full:
		return "full"
	case m.Slow > 0:
		return "slow=" + m.Slow.String()
	case m.Errno != 0:
		s := "error=" + errnoName(m.Errno) + " ops=" + m.Ops.String()
		if m.Rate > 0 && m.Rate < 1 {
			s += " rate=" + strconv.FormatFloat(m.Rate, 'g', -1, 64)
		}
		return s
	}
	return ""
}

func errnoName(e syscall.Errno) string {
	if e == syscall.ENOSPC {
		return "ENOSPC"
	}
	return "EIO"
}

// ParseMode parses control file text; blank text is no fault.
func ParseMode(s string) (Mode, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Mode{}, nil
	case s == "full":
		return Mode{Full: true}, nil
	case strings.HasPrefix(s, "slow="):
		d, err := time.ParseDuration(strings.TrimPrefix(s, "slow="))
		if err != nil || d < 0 {
			return Mode{}, fmt.Errorf("faultfs: control %q: want slow=DURATION like slow=50ms", s)
		}
		return Mode{Slow: d}, nil
	case strings.HasPrefix(s, "error="):
		m := Mode{Rate: 1}
		for _, f := range strings.Fields(s) {
			k, v, _ := strings.Cut(f, "=")
			var err error
			switch k {
			case "error":
				switch v {
				case "EIO":
					m.Errno = syscall.EIO
				case "ENOSPC":
					m.Errno = syscall.ENOSPC
				default:
					err = fmt.Errorf("want EIO or ENOSPC")
				}
			case "ops":
				m.Ops, err = ParseOps(v)
			case "rate":
				m.Rate, err = strconv.ParseFloat(v, 64)
				if err == nil && (m.Rate <= 0 || m.Rate > 1) {
					err = fmt.Errorf("want a rate in (0,1]")
				}
			default:
				err = fmt.Errorf("unknown field %q", k)
			}
			if err != nil {
				return Mode{}, fmt.Errorf("faultfs: control %q: %v", s, err)
			}
		}
		if m.Ops == 0 {
			return Mode{}, fmt.Errorf("faultfs: control %q: want ops=read,write,fsync (some of them)", s)
		}
		return m, nil
	}
	return Mode{}, fmt.Errorf("faultfs: control %q: want full, slow=DURATION, error=EIO|ENOSPC ops=... [rate=R] or nothing", s)
}

// SetMode writes m to the control file of the broker whose data directory is dataDir,
// atomically, so the broker never reads half a line. The zero Mode removes the file.
func SetMode(dataDir string, m Mode) error {
	return controlfile.Set(filepath.Join(dataDir, ControlFile), m.String())
}
