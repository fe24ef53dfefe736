package workloads

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// Claim is one entry of a workload's claims section: a claim of CLAIMS.md by its number and
// the configurations on its unsafe side (the setting the lore warns about) and on its safe
// side (the one it recommends), selected by their values:
//
//	claims:
//	  - {id: 2, unsafe: {acks: 1}, safe: {acks: all}}
//	  - {id: 17, unsafe: {consumer.mode: group}, safe: {consumer.mode: [batch, async]}}
//	  - {id: 7}   # no sides: the rule compares every configuration
type Claim struct {
	// ID is the claim's number in CLAIMS.md.
	ID int
	// Unsafe and Safe select the configurations of each side; both are empty when All.
	Unsafe, Safe ClaimSide
	// All is set for an entry without sides: every configuration takes part.
	All bool
	// Pos is where the entry is written, "file:line".
	Pos string
}

// ClaimSide is one side of a claim.
type ClaimSide struct {
	// Match selects configurations: one has to match every entry.
	Match []Matcher
	// Configs are the names of the configurations that match, in plan order.
	Configs []string
}

// Matcher selects configurations whose field has one of the values, compared after
// defaults and units are applied (acks -1 matches all, 16KiB matches 16384).
type Matcher struct {
	// Field is the key as written (an alias such as acks, or a dotted path); Path the field
	// it names; Values the values as written.
	Field  string
	Path   string
	Values []string
	nodes  []ast.Node
}

// String is "field=value" or "field=[a b]".
func (m Matcher) String() string {
	if len(m.Values) == 1 {
		return m.Field + "=" + m.Values[0]
	}
	return m.Field + "=[" + strings.Join(m.Values, " ") + "]"
}

// String lists the side's matchers, "acks=1,replicationFactor=3".
func (s ClaimSide) String() string {
	parts := make([]string, len(s.Match))
	for i, m := range s.Match {
		parts[i] = m.String()
	}
	return strings.Join(parts, ",")
}

// parseClaims reads the claims section and resolves each side against configs.
func parseClaims(file string, r *Raw, configs []RunConfig) ([]Claim, error) {
	if r == nil || r.Node == nil {
		return nil, nil
	}
	seq, ok := r.Node.(*ast.SequenceNode)
	if !ok {
		return nil, fmt.Errorf("workloads: %s:%d:%d: claims: want a list of entries such as {id: 2, unsafe: {acks: 1}, safe: {acks: all}}", file, r.Line, r.Column)
	}
	var out []Claim
	for _, item := range seq.Values {
		c, err := parseClaim(file, item, configs)
		if err != nil {
			return nil, err
		}
		for _, prev := range out {
			if prev.ID == c.ID {
				return nil, fmt.Errorf("workloads: %s: claims: claim %d is declared twice (also at %s)", c.Pos, c.ID, prev.Pos)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

func parseClaim(file string, item ast.Node, configs []RunConfig) (Claim, error) {
	c := Claim{Pos: fmt.Sprintf("%s:%d", file, line(item))}
	where := func(n ast.Node) string { return fmt.Sprintf("%s:%d:%d", file, line(n), column(n)) }
	entries, ok := mappingEntries(item)
	if !ok {
		return c, fmt.Errorf("workloads: %s: claims: want a mapping with id, unsafe and safe", where(item))
	}
	var unsafe, safe ast.Node
	for _, e := range entries {
		switch k := scalarText(e.Key); k {
		case "id":
			n, err := strconv.Atoi(scalarText(e.Value))
			if err != nil || n < 1 {
				return c, fmt.Errorf("workloads: %s: claims.id: %q is not allowed; want the claim's number in CLAIMS.md", where(e.Value), scalarText(e.Value))
			}
			c.ID = n
		case "unsafe":
			unsafe = e.Value
		case "safe":
			safe = e.Value
		default:
			return c, fmt.Errorf("workloads: %s: claims: unknown field %q; allowed: id, unsafe, safe", where(e.Key), k)
		}
	}
	if c.ID == 0 {
		return c, fmt.Errorf("workloads: %s: claims: an entry needs an id", where(item))
	}
	if unsafe == nil && safe == nil {
		c.All = true
		return c, nil
	}
	if unsafe == nil || safe == nil {
		return c, fmt.Errorf("workloads: %s: claims: claim %d needs both an unsafe and a safe side (or neither, to take every configuration)", where(item), c.ID)
	}
	var err error
	if c.Unsafe, err = parseSide(file, "unsafe", unsafe, configs); err != nil {
		return c, err
	}
	if c.Safe, err = parseSide(file, "safe", safe, configs); err != nil {
		return c, err
	}
	for _, n := range c.Unsafe.Configs {
		if slices.Contains(c.Safe.Configs, n) {
			return c, fmt.Errorf("workloads: %s: claims: configuration %s is on both sides of claim %d", where(item), n, c.ID)
		}
	}
	return c, nil
}

// parseSide reads one side's matchers and lists the configurations they select.
func parseSide(file, name string, n ast.Node, configs []RunConfig) (ClaimSide, error) {
	var s ClaimSide
	where := func(n ast.Node) string { return fmt.Sprintf("%s:%d:%d", file, line(n), column(n)) }
	entries, ok := mappingEntries(n)
	if !ok || len(entries) == 0 {
		return s, fmt.Errorf("workloads: %s: claims.%s: want a mapping of field to value, e.g. {acks: 1}", where(n), name)
	}
	for _, e := range entries {
		key := scalarText(e.Key)
		path := key
		if p, ok := MatrixAliases[key]; ok {
			path = p
		}
		if err := checkMatrixPath(path); err != nil {
			return s, fmt.Errorf("workloads: %s: claims.%s.%s: %w", where(e.Key), name, key, err)
		}
		m := Matcher{Field: key, Path: path}
		if seq, ok := e.Value.(*ast.SequenceNode); ok {
			m.nodes = seq.Values
		} else {
			m.nodes = []ast.Node{e.Value}
		}
		if len(m.nodes) == 0 {
			return s, fmt.Errorf("workloads: %s: claims.%s.%s: want a value or a non-empty list of values", where(e.Value), name, key)
		}
		for _, v := range m.nodes {
			if _, ok := v.(ast.ScalarNode); !ok {
				return s, fmt.Errorf("workloads: %s: claims.%s.%s: want a single value", where(v), name, key)
			}
			var w Workload
			if err := setPath(&w, path, v); err != nil {
				return s, positioned(file, err)
			}
			m.Values = append(m.Values, scalarText(v))
		}
		s.Match = append(s.Match, m)
	}
	for i := range configs {
		if s.matches(&configs[i]) {
			s.Configs = append(s.Configs, configs[i].Config)
		}
	}
	if len(s.Configs) == 0 {
		return s, fmt.Errorf("workloads: %s: claims.%s: %s matches no configuration of the matrix", where(n), name, s)
	}
	return s, nil
}

// matches reports whether rc has, for every matcher, one of its values.
func (s ClaimSide) matches(rc *RunConfig) bool {
	for _, m := range s.Match {
		if !m.matches(rc) {
			return false
		}
	}
	return true
}

func (m Matcher) matches(rc *RunConfig) bool {
	have, ok := fieldValue(&rc.Workload, m.Path)
	if !ok {
		return false
	}
	for _, n := range m.nodes {
		var w Workload
		if setPath(&w, m.Path, n) != nil {
			continue
		}
		want, ok := fieldValue(&w, m.Path)
		if ok && normalized(m.Path, want) == normalized(m.Path, have) {
			return true
		}
	}
	return false
}

// fieldValue returns the value at a dotted path of w, dereferenced; false when a pointer
// on the way is nil or a topic config is not set.
func fieldValue(w *Workload, path string) (any, bool) {
	if name, ok := strings.CutPrefix(path, "topicConfig."); ok {
		v, ok := w.TopicConfig[name]
		if !ok {
			return nil, false
		}
		return fmt.Sprint(v), true
	}
	v := reflect.ValueOf(w).Elem()
	for _, part := range strings.Split(path, ".") {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return nil, false
			}
			v = v.Elem()
		}
		f, ok := fieldByTag(v.Type(), part)
		if !ok {
			return nil, false
		}
		v = v.FieldByIndex(f.Index)
	}
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, false
		}
		v = v.Elem()
	}
	return v.Interface(), true
}

// normalized is v as text, with the spellings validation treats alike made equal.
func normalized(path string, v any) string {
	s := fmt.Sprint(v)
	if path == "producer.acks" && s == "-1" {
		return "all"
	}
	return s
}
