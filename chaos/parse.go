package chaos

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/kchaos/kchaos/workloads"
)

// Parse reads a workload's chaos section: a YAML sequence of faults, each a mapping with
// kind, target, at, for, every and params (kinds, gap and scope of a random mix may also be written
// beside kind). Errors name file:line of the offending value, all of them at once. A nil raw
// means no faults.
func Parse(raw *workloads.Raw) ([]Fault, error) {
	if raw == nil || raw.Node == nil {
		return nil, nil
	}
	return parseNode(raw.File, raw.Node)
}

// ParseYAML parses src, a chaos section on its own (a YAML sequence of faults), as if it
// were in file.
func ParseYAML(file string, src []byte) ([]Fault, error) {
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		return nil, fmt.Errorf("chaos: %s: %w", file, err)
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return nil, nil
	}
	return parseNode(file, f.Docs[0].Body)
}

func parseNode(file string, n ast.Node) ([]Fault, error) {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		return nil, posErr(file, n, "chaos must be a list of faults (- kind: kill ...)")
	}
	var out []Fault
	var errs []error
	for _, item := range seq.Values {
		f, err := parseFault(file, item)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, f)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// posErr formats "chaos: file:line: msg".
func posErr(file string, n ast.Node, msg string) error {
	return fmt.Errorf("chaos: %s:%d: %s", file, line(n), msg)
}

func line(n ast.Node) int {
	if n == nil {
		return 0
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line
	}
	return 0
}

// mappingValues returns the key/value pairs of a block or flow mapping.
func mappingValues(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}, true
	}
	return nil, false
}

// scalar returns the text of a scalar node, or false for a sequence or mapping.
func scalar(n ast.Node) (string, bool) {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode, *ast.SequenceNode:
		return "", false
	case *ast.NullNode:
		return "", true
	}
	if tk := n.GetToken(); tk != nil {
		return tk.Value, true
	}
	return "", false
}

// scalarOrList returns a scalar's text, or a sequence of scalars joined with commas.
func scalarOrList(n ast.Node) (string, bool) {
	if s, ok := scalar(n); ok {
		return s, true
	}
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		return "", false
	}
	var parts []string
	for _, v := range seq.Values {
		s, ok := scalar(v)
		if !ok {
			return "", false
		}
		parts = append(parts, strings.TrimSpace(s))
	}
	return strings.Join(parts, ","), true
}

func parseFault(file string, n ast.Node) (Fault, error) {
	values, ok := mappingValues(n)
	if !ok {
		return Fault{}, posErr(file, n, "a fault must be a mapping with kind, target, at, for")
	}
	f := Fault{Pos: file + ":" + strconv.Itoa(line(n))}
	var errs []error
	fail := func(at ast.Node, format string, args ...any) {
		errs = append(errs, posErr(file, at, fmt.Sprintf(format, args...)))
	}
	var kindNode, targetNode ast.Node
	seen := map[string]bool{}
	values, joined := rejoinFlowTargets(values)
	for _, mv := range values {
		key, _ := scalar(mv.Key)
		if seen[key] {
			fail(mv.Key, "%s given twice", key)
			continue
		}
		seen[key] = true
		switch key {
		case "kind", "target", "at", "for", "every":
			s, ok := scalar(mv.Value)
			if !ok {
				fail(mv.Value, "%s must be a single value", key)
				continue
			}
			if j, ok := joined[mv]; ok {
				s = j
			}
			switch key {
			case "kind":
				kindNode = mv.Value
				f.Kind = Kind(strings.TrimSpace(s))
				if k, ok := kindAliases[string(f.Kind)]; ok {
					f.Kind = k
				}
			case "target":
				targetNode = mv.Value
				t, err := ParseTarget(s)
				if err != nil {
					fail(mv.Value, "%s", strings.TrimPrefix(err.Error(), "chaos: "))
					continue
				}
				f.Target = t
			default:
				d, err := parseDuration(s)
				if err != nil {
					fail(mv.Value, "%s: %s", key, strings.TrimPrefix(err.Error(), "chaos: "))
					continue
				}
				switch key {
				case "at":
					f.At = d
				case "for":
					f.For = d
				case "every":
					f.Every = d
				}
			}
		case "params":
			pv, ok := mappingValues(mv.Value)
			if !ok {
				if s, isScalar := scalar(mv.Value); !isScalar || s != "" {
					fail(mv.Value, "params must be a mapping of name: value")
				}
				continue
			}
			pv, pjoined := rejoinFlowTargets(pv)
			for _, p := range pv {
				name, _ := scalar(p.Key)
				v, ok := scalarOrList(p.Value)
				if !ok {
					fail(p.Value, "param %s must be a value or a list of values", name)
					continue
				}
				if j, ok := pjoined[p]; ok {
					v = j
				}
				setParam(&f, name, v)
			}
		case "kinds", "gap", "scope", "pick":
			v, ok := scalarOrList(mv.Value)
			if !ok {
				fail(mv.Value, "%s must be a value or a list of values", key)
				continue
			}
			setParam(&f, key, v)
		default:
			fail(mv.Key, "unknown fault field %q; want kind, target, at, for, every, params", key)
		}
	}
	if kindNode == nil {
		fail(n, "fault has no kind")
	} else if err := f.validate(); err != nil {
		at := kindNode
		var te *targetError
		if errors.As(err, &te) && targetNode != nil {
			at = targetNode
		}
		fail(at, "%s", strings.TrimPrefix(err.Error(), "chaos: "))
	}
	if len(errs) > 0 {
		return Fault{}, errors.Join(errs...)
	}
	return f, nil
}

// rejoinFlowTargets repairs targets written in a flow mapping: YAML splits
// {target: leader(t,0)} at the comma into target "leader(t" and a key "0)" with no value.
// Such a key, following a value with an unclosed parenthesis, is dropped and its text
// returned as the rejoined value of the one before. The nodes are not modified.
func rejoinFlowTargets(values []*ast.MappingValueNode) ([]*ast.MappingValueNode, map[*ast.MappingValueNode]string) {
	out := make([]*ast.MappingValueNode, 0, len(values))
	joined := map[*ast.MappingValueNode]string{}
	for _, mv := range values {
		if n := len(out); n > 0 {
			prev := out[n-1]
			pv, ok1 := scalar(prev.Value)
			if j, ok := joined[prev]; ok {
				pv = j
			}
			key, ok2 := scalar(mv.Key)
			_, isNull := mv.Value.(*ast.NullNode)
			if ok1 && ok2 && (isNull || mv.Value == nil) && strings.Count(pv, "(") > strings.Count(pv, ")") && strings.HasSuffix(key, ")") {
				joined[prev] = pv + "," + key
				continue
			}
		}
		out = append(out, mv)
	}
	return out, joined
}

func setParam(f *Fault, name, v string) {
	if f.Params == nil {
		f.Params = map[string]string{}
	}
	f.Params[name] = strings.TrimSpace(v)
}
