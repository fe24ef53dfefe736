package workloads

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// Size is a number of bytes. In YAML it is a plain integer (OMB's messageSize: 1024) or a
// string with a unit: B, KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000),
// e.g. "16KiB".
type Size int64

// String formats s with the largest binary unit that divides it exactly ("16KiB", "1MiB", "100B").
func (s Size) String() string {
	units := []struct {
		n    int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}}
	for _, u := range units {
		if s != 0 && int64(s)%u.n == 0 {
			return strconv.FormatInt(int64(s)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// ParseSize parses "16KiB", "1MB", "100", "100B".
func ParseSize(text string) (Size, error) {
	t := strings.TrimSpace(text)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.n
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size; use bytes or a unit: 100, 16KiB, 1MiB, 1GiB, 1KB, 1MB", text)
	}
	return Size(n * mult), nil
}

// UnmarshalYAML decodes an integer or a size string.
func (s *Size) UnmarshalYAML(n ast.Node) error {
	v, err := ParseSize(scalarText(n))
	if err != nil {
		return &nodeError{node: n, msg: err.Error()}
	}
	*s = v
	return nil
}

// Duration is a time span. In YAML it is a Go duration string: "500ms", "30s", "2m", "1h30m".
type Duration time.Duration

// String formats d the way time.Duration does ("30s", "2m0s").
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML decodes a duration string. A bare number is refused, since its unit would be
// a guess.
func (d *Duration) UnmarshalYAML(n ast.Node) error {
	text := scalarText(n)
	v, err := time.ParseDuration(strings.TrimSpace(text))
	if err != nil || v < 0 {
		return &nodeError{node: n, msg: fmt.Sprintf("%q is not a duration; use a number with a unit: 500ms, 30s, 2m, 1h", text)}
	}
	*d = Duration(v)
	return nil
}

// scalarText returns the text of a scalar node without quotes, or the node's YAML for others.
func scalarText(n ast.Node) string {
	if sn, ok := n.(ast.ScalarNode); ok {
		if v := sn.GetValue(); v != nil {
			return fmt.Sprint(v)
		}
		return ""
	}
	return n.String()
}

// nodeError is a decoding error at a node; Load turns it into a positioned error.
type nodeError struct {
	node ast.Node
	msg  string
}

func (e *nodeError) Error() string { return e.msg }
