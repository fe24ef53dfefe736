package clientconfig

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Property is one Kafka client property and where it was set.
type Property struct {
	// Key is the property name, Kafka's spelling (security.protocol, linger.ms, ...).
	Key string
	// Value is the unescaped value. It may be a secret (see IsSecret): never print it.
	Value string
	// Where names the source for error messages: "FILE:LINE", or "FILE:LINE (commonConfig)"
	// for a block of an OMB driver file.
	Where string
}

// String names the property and its source, never its value (it may be a secret).
func (p Property) String() string { return p.Where + ": " + p.Key }

// Properties is an ordered set of client properties; setting a key again replaces its value
// and source, as java.util.Properties does.
type Properties struct {
	list []Property
}

// Set adds or replaces key.
func (ps *Properties) Set(key, value, where string) {
	for i := range ps.list {
		if ps.list[i].Key == key {
			ps.list[i] = Property{Key: key, Value: value, Where: where}
			return
		}
	}
	ps.list = append(ps.list, Property{Key: key, Value: value, Where: where})
}

// Get returns key's property.
func (ps *Properties) Get(key string) (Property, bool) {
	if ps == nil {
		return Property{}, false
	}
	for _, p := range ps.list {
		if p.Key == key {
			return p, true
		}
	}
	return Property{}, false
}

// Value returns key's value, or "" when it is not set.
func (ps *Properties) Value(key string) string {
	p, _ := ps.Get(key)
	return p.Value
}

// Delete removes key.
func (ps *Properties) Delete(key string) {
	ps.list = slices.DeleteFunc(ps.list, func(p Property) bool { return p.Key == key })
}

// List returns the properties in the order their keys were first set.
func (ps *Properties) List() []Property {
	if ps == nil {
		return nil
	}
	return slices.Clone(ps.list)
}

// Len is the number of properties.
func (ps *Properties) Len() int {
	if ps == nil {
		return 0
	}
	return len(ps.list)
}

// Merge sets every property of o on ps: o's values win.
func (ps *Properties) Merge(o *Properties) {
	for _, p := range o.List() {
		ps.Set(p.Key, p.Value, p.Where)
	}
}

// LoadProperties reads a Java .properties file (the format of kafka-console-producer's
// --producer.config and of every Kafka client config file).
func LoadProperties(path string) (*Properties, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("clientconfig: %w", err)
	}
	return ParseProperties(path, 1, data)
}

// ParseProperties parses data in java.util.Properties' format: one key and value per
// logical line, the key ending at the first unescaped '=', ':' or whitespace; '#' or '!' as
// the first non-blank character makes a comment line; a line ending in an odd number of
// backslashes continues on the next one (its leading whitespace dropped); \t \n \r \f, \uXXXX
// and backslash-anything escapes. Input that is not UTF-8 is read as ISO-8859-1, as
// Properties.load(InputStream) does. file names the source in errors and Where; firstLine is
// the line number of data's first line in it (1 for a whole file).
func ParseProperties(file string, firstLine int, data []byte) (*Properties, error) {
	text := string(data)
	if !utf8.ValidString(text) {
		runes := make([]rune, len(data))
		for i, b := range data {
			runes[i] = rune(b)
		}
		text = string(runes)
	}
	lines := splitLines(text)
	ps := &Properties{}
	for i := 0; i < len(lines); i++ {
		start := i
		line := strings.TrimLeft(lines[i], " \t\f")
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		// Join continuation lines.
		for continues(line) && i+1 < len(lines) {
			line = line[:len(line)-1] + strings.TrimLeft(lines[i+1], " \t\f")
			i++
		}
		if continues(line) { // a continuation at the end of the input continues into nothing
			line = line[:len(line)-1]
		}
		where := file + ":" + strconv.Itoa(firstLine+start)
		rawKey, rawValue := splitKeyValue(line)
		key, err := unescape(rawKey)
		if err != nil {
			return nil, fmt.Errorf("clientconfig: %s: key: %w", where, err)
		}
		value, err := unescape(rawValue)
		if err != nil {
			return nil, fmt.Errorf("clientconfig: %s: %s: %w", where, key, err)
		}
		ps.Set(key, value, where)
	}
	return ps, nil
}

// splitLines splits at \n, \r\n and \r, the terminators Properties.load accepts.
func splitLines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.Split(s, "\n")
}

// continues reports whether line ends in an odd number of backslashes.
func continues(line string) bool {
	n := 0
	for i := len(line) - 1; i >= 0 && line[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// splitKeyValue splits a logical line (leading whitespace removed) into its raw key and raw
// value: the key ends at the first unescaped '=', ':' or whitespace; whitespace, then at most
// one '=' or ':', then whitespace separate it from the value.
func splitKeyValue(line string) (string, string) {
	end := len(line)
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == '\\' {
			i++
			continue
		}
		if c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\f' {
			end = i
			break
		}
	}
	key, rest := line[:end], line[end:]
	rest = strings.TrimLeft(rest, " \t\f")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
	}
	return key, rest
}

// unescape resolves Properties escapes.
func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+5 > len(s) {
				return "", fmt.Errorf(`malformed \uxxxx escape`)
			}
			n, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
			if err != nil {
				return "", fmt.Errorf(`malformed \uxxxx escape`)
			}
			i += 4
			r := rune(n)
			// A UTF-16 surrogate pair written as two escapes is one character.
			if utf16.IsSurrogate(r) && i+7 <= len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
				if lo, err := strconv.ParseUint(s[i+3:i+7], 16, 16); err == nil {
					if pair := utf16.DecodeRune(r, rune(lo)); pair != utf8.RuneError {
						r = pair
						i += 6
					}
				}
			}
			b.WriteRune(r)
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}
