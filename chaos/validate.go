package chaos

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kchaos/kchaos/workloads"
)

// targetError marks a validation error about the target, so the parser can point at it.
type targetError struct{ msg string }

func (e *targetError) Error() string { return "chaos: " + e.msg }

// Validate checks a fault built in code or read from JSON: a known kind, a target the kind
// accepts, the parameters it needs with values of the right type, and sane durations.
func (f Fault) Validate() error {
	if err := f.validate(); err != nil {
		if f.Pos != "" {
			return fmt.Errorf("chaos: %s: %s", f.Pos, strings.TrimPrefix(err.Error(), "chaos: "))
		}
		return err
	}
	return nil
}

func (f *Fault) validate() error {
	info, ok := kinds[f.Kind]
	if !ok {
		names := make([]string, 0, len(kinds))
		for _, k := range Kinds() {
			names = append(names, string(k))
		}
		return fmt.Errorf("chaos: unknown fault kind %q; want one of %s", f.Kind, strings.Join(names, ", "))
	}
	switch info.target {
	case "none":
		if !f.Target.IsZero() {
			return &targetError{fmt.Sprintf("%s picks its brokers itself and takes no target", f.Kind)}
		}
	case "required":
		if f.Target.IsZero() {
			return &targetError{fmt.Sprintf("%s needs a target", f.Kind)}
		}
	case "optional":
		if f.Target.IsZero() && f.Kind != Random {
			f.Target = Target{Sel: SelRandom}
		}
	}
	if (info.class == "consumer") != (f.Target.Sel == SelConsumer) {
		if info.class == "consumer" {
			return &targetError{fmt.Sprintf("%s needs target consumer(N), not %s", f.Kind, f.Target)}
		}
		return &targetError{fmt.Sprintf("%s acts on brokers; consumer(N) is for crash-consumer, restart-consumer and stall-consumer", f.Kind)}
	}
	switch f.Kind {
	case LeaderIsolateFromFollowers, Reassign, ElectLeader, AddBroker:
		if f.Target.Sel != SelLeader {
			return &targetError{fmt.Sprintf("%s needs target leader(topic,partition) or leader(topic), not %s", f.Kind, f.Target)}
		}
	}
	if f.Target.Sel == SelClients && !slices.Contains(clientKinds, f.Kind) {
		return &targetError{fmt.Sprintf("%s acts on brokers; target clients is for %s", f.Kind, kindList(clientKinds))}
	}
	for name := range f.Params {
		if _, _, dotted := strings.Cut(name, "."); dotted && f.Kind == Random {
			continue
		}
		if !slices.Contains(info.params, name) && !slices.Contains(info.params, "!"+name) {
			return fmt.Errorf("chaos: %s does not take param %q (it takes %s)", f.Kind, name, paramList(info.params))
		}
	}
	for _, p := range info.params {
		if name, ok := strings.CutPrefix(p, "!"); ok && f.Params[name] == "" {
			return fmt.Errorf("chaos: %s needs param %q", f.Kind, name)
		}
	}
	for name, v := range f.Params {
		if k, pn, dotted := strings.Cut(name, "."); dotted && f.Kind == Random {
			sub := Fault{Kind: Kind(k), Params: map[string]string{pn: v}}
			ki, ok := kinds[sub.Kind]
			if !ok || sub.Kind == Random {
				return fmt.Errorf("chaos: random param %s: %q is not a fault kind", name, k)
			}
			if !slices.Contains(ki.params, pn) && !slices.Contains(ki.params, "!"+pn) {
				return fmt.Errorf("chaos: random param %s: %s does not take param %q (it takes %s)", name, k, pn, paramList(ki.params))
			}
			if err := checkParam(sub.Kind, pn, v); err != nil {
				return err
			}
			continue
		}
		if err := checkParam(f.Kind, name, v, f.Params); err != nil {
			return err
		}
	}
	if f.Every > 0 && f.For >= f.Every && !f.Kind.Instant() {
		return fmt.Errorf("chaos: for (%s) must be shorter than every (%s), or the repeats would overlap", f.For, f.Every)
	}
	if f.Kind == Random {
		if f.Every > 0 {
			return fmt.Errorf("chaos: random runs to the end of the run; it takes no every")
		}
		if f.For <= 0 {
			return fmt.Errorf("chaos: random needs for: the mean duration of each fault")
		}
	}
	return nil
}

// clientKinds are the kinds that accept target clients.
var clientKinds = []Kind{ClockSkew, Corrupt, Duplicate, Reorder}

// modes are the values param "mode" takes per kind (network kinds: blackhole or reset).
var modes = map[Kind][]string{
	CorruptFile: {"bitflip", "truncate"},
	Reassign:    {"move", "shrink", "grow"},
	CPUStress:   {"cgroup", "hog"},
}

// choices are the values of enumerated params.
var choices = map[string][]string{
	"where":   {"batches", "produce", "anywhere"},
	"file":    {"log", "index", "timeindex"},
	"segment": {"closed", "active"},
	"type":    {"preferred", "unclean"},
	"errno":   {"EIO", "ENOSPC"},
	"scope":   {"all", "controller", "brokers", "clients"},
	"down":    {"stop", "kill"},
	"pick":    {"random", "rotate"},
}

func kindList(ks []Kind) string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = string(k)
	}
	return strings.Join(out, ", ")
}

// parseSignedDuration parses Go duration text that may be negative ("-30s").
func parseSignedDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("chaos: %q is not a duration; use 30s, -1m", s)
	}
	return d, nil
}

// paramSigned returns a signed duration param, or def when absent.
func (f Fault) paramSigned(name string, def time.Duration) time.Duration {
	if v, ok := f.Params[name]; ok {
		if d, err := parseSignedDuration(v); err == nil {
			return d
		}
	}
	return def
}

// paramInt returns an integer param, or def when absent.
func (f Fault) paramInt(name string, def int) int {
	if v, ok := f.Params[name]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

// paramRate returns a probability param, or def when absent.
func (f Fault) paramRate(name string, def float64) float64 {
	if v, ok := f.Params[name]; ok {
		if r, err := parseRate(v); err == nil {
			return r
		}
	}
	return def
}

func paramList(ps []string) string {
	if len(ps) == 0 {
		return "none"
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = strings.TrimPrefix(p, "!")
	}
	return strings.Join(out, ", ")
}

func checkParam(k Kind, name, v string, mixParams ...map[string]string) error {
	var params map[string]string
	if len(mixParams) > 0 {
		params = mixParams[0]
	}
	bad := func(want string) error {
		return fmt.Errorf("chaos: %s param %s=%q: want %s", k, name, v, want)
	}
	switch name {
	case "from":
		if k == Isolate {
			if v != "peers" && v != "clients" && v != "both" {
				return bad("peers, clients or both")
			}
			return nil
		}
		t, err := ParseTarget(v)
		if err != nil {
			return fmt.Errorf("chaos: %s param from: %w", k, err)
		}
		if t.IsZero() {
			return bad("a target")
		}
	case "links":
		if v != "peers" && v != "clients" && v != "both" {
			return bad("peers, clients or both")
		}
	case "mode":
		want := modes[k]
		if want == nil {
			want = []string{"blackhole", "reset"}
		}
		if !slices.Contains(want, v) {
			return bad(strings.Join(want, " or "))
		}
	case "delay", "jitter", "rto", "gap":
		if _, err := parseDuration(v); err != nil {
			return bad("a duration (200ms, 1s)")
		}
	case "period", "window":
		if d, err := parseDuration(v); err != nil || d <= 0 {
			return bad("a positive duration (100ms, 1s)")
		}
	case "offset", "delta":
		d, err := parseSignedDuration(v)
		if err != nil {
			return bad("a duration, negative for the past (30s, -1m)")
		}
		if d == 0 && k != ClockSkew {
			return bad("a duration other than 0")
		}
	case "where", "file", "segment", "type", "errno", "scope", "down", "pick":
		want := choices[name]
		if !slices.Contains(want, v) {
			return bad(strings.Join(want, ", "))
		}
	case "ops":
		for _, op := range strings.Split(v, ",") {
			if !slices.Contains([]string{"read", "write", "fsync"}, strings.TrimSpace(op)) {
				return bad("a list of read, write, fsync")
			}
		}
	case "flips", "workers", "partition":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || (name != "partition" && (n == 0 || n > 4096)) {
			return bad("a count")
		}
	case "topic":
		if v == "" {
			return bad("a topic name")
		}
	case "cpus":
		c, err := strconv.ParseFloat(v, 64)
		if err != nil || c <= 0 || c > 1024 {
			return bad("a number of CPUs above 0 (0.2: a fifth of one)")
		}
	case "limit":
		if s, err := workloads.ParseSize(v); err != nil || s <= 0 {
			return bad("a size (64MiB)")
		}
	case "rate":
		if k == Loss || k == DropResponses || k == Corrupt || k == Duplicate || k == Reorder || k == IOError {
			if _, err := parseRate(v); err != nil {
				return bad("a probability in [0,1] or a percentage (5%)")
			}
			return nil
		}
		if s, err := workloads.ParseSize(v); err != nil || s <= 0 {
			return bad("bytes per second as a size (1MiB, 500KB)")
		}
	case "kinds":
		for _, s := range strings.Split(v, ",") {
			kk := Kind(strings.TrimSpace(s))
			if a, ok := kindAliases[string(kk)]; ok {
				kk = a
			}
			info, ok := kinds[kk]
			if !ok || kk == Random {
				return bad("a list of fault kinds")
			}
			for _, p := range info.params {
				if req, ok := strings.CutPrefix(p, "!"); ok && params[string(kk)+"."+req] == "" {
					return fmt.Errorf("chaos: random cannot pick %s: it needs param %s; give it as %s.%s", kk, req, kk, req)
				}
			}
		}
	}
	return nil
}

// parseRate parses "0.05" or "5%".
func parseRate(v string) (float64, error) {
	s := strings.TrimSpace(v)
	div := 1.0
	if p, ok := strings.CutSuffix(s, "%"); ok {
		s, div = p, 100
	}
	r, err := strconv.ParseFloat(s, 64)
	if err != nil || r/div < 0 || r/div > 1 {
		return 0, fmt.Errorf("chaos: rate %q is not in [0,1]", v)
	}
	return r / div, nil
}

// paramDuration returns a duration param, or def when absent.
func (f Fault) paramDuration(name string, def time.Duration) time.Duration {
	if v, ok := f.Params[name]; ok {
		if d, err := parseDuration(v); err == nil {
			return d.D()
		}
	}
	return def
}

// param returns a param, or def when absent.
func (f Fault) param(name, def string) string {
	if v, ok := f.Params[name]; ok && v != "" {
		return v
	}
	return def
}
