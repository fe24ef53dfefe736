// Package jaas parses JAAS configurations the way Kafka's JaasConfig does: the value of
// sasl.jaas.config on a client and of listener.name.<l>.<mechanism>.sasl.jaas.config on a
// broker.
package jaas

import (
	"errors"
	"fmt"
	"strings"
)

// LoginModule is one entry of a JAAS configuration such as sasl.jaas.config:
// `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";`.
type LoginModule struct {
	// Class is the login module's class name.
	Class string
	// Flag is required, requisite, sufficient or optional.
	Flag string
	// Options are the key=value options, values unquoted.
	Options map[string]string
}

// Login module classes, by the mechanism they log in with.
const (
	PlainLoginModule  = "org.apache.kafka.common.security.plain.PlainLoginModule"
	ScramLoginModule  = "org.apache.kafka.common.security.scram.ScramLoginModule"
	OAuthLoginModule  = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
	AWSIAMLoginModule = "software.amazon.msk.auth.iam.IAMLoginModule"
)

// Parse parses a JAAS configuration the way Kafka's JaasConfig does: login modules, each
// a class name, a control flag and key=value options (values bare words or double-quoted
// strings with backslash escapes) ended by ';'; // and /* */ comments. Errors never quote
// option values, which hold passwords.
func Parse(s string) ([]LoginModule, error) {
	t := &jaasTokens{s: s}
	var mods []LoginModule
	for {
		tok, kind, err := t.next()
		if err != nil {
			return nil, err
		}
		if kind == tokEOF {
			break
		}
		if kind != tokWord {
			return nil, fmt.Errorf("jaas: want a login module class name, got %s", describe(tok, kind))
		}
		m := LoginModule{Class: tok, Options: map[string]string{}}
		flag, kind, err := t.next()
		if err != nil {
			return nil, err
		}
		switch strings.ToLower(flag) {
		case "required", "requisite", "sufficient", "optional":
			m.Flag = strings.ToLower(flag)
		default:
			return nil, fmt.Errorf("jaas: login module %s: want a control flag (required, requisite, sufficient, optional), got %s", m.Class, describe(flag, kind))
		}
		for {
			key, kind, err := t.next()
			if err != nil {
				return nil, err
			}
			if kind == tokSemicolon {
				break
			}
			if kind != tokWord {
				return nil, fmt.Errorf("jaas: login module %s: want an option name or ';' at the end", m.Class)
			}
			if _, eq, err := t.next(); err != nil || eq != tokEquals {
				return nil, fmt.Errorf("jaas: login module %s: option %s: want '=' and a value", m.Class, key)
			}
			val, kind, err := t.next()
			if err != nil {
				return nil, fmt.Errorf("jaas: login module %s: option %s: %w", m.Class, key, err)
			}
			if kind != tokWord && kind != tokQuoted {
				return nil, fmt.Errorf("jaas: login module %s: option %s: want a value", m.Class, key)
			}
			m.Options[key] = val
		}
		mods = append(mods, m)
	}
	if len(mods) == 0 {
		return nil, errors.New("jaas: no login module")
	}
	return mods, nil
}

// describe names a token for an error without quoting a quoted string, which may be a secret.
func describe(tok string, kind jaasToken) string {
	switch kind {
	case tokEOF:
		return "the end"
	case tokQuoted:
		return "a quoted string"
	}
	return fmt.Sprintf("%q", tok)
}

type jaasToken int

const (
	tokEOF jaasToken = iota
	tokWord
	tokQuoted
	tokEquals
	tokSemicolon
	tokOther
)

type jaasTokens struct {
	s string
	i int
}

// next returns the next token, skipping whitespace and comments.
func (t *jaasTokens) next() (string, jaasToken, error) {
	for t.i < len(t.s) {
		switch {
		case strings.ContainsRune(" \t\r\n\f", rune(t.s[t.i])):
			t.i++
		case strings.HasPrefix(t.s[t.i:], "//"):
			if j := strings.IndexByte(t.s[t.i:], '\n'); j >= 0 {
				t.i += j + 1
			} else {
				t.i = len(t.s)
			}
		case strings.HasPrefix(t.s[t.i:], "/*"):
			j := strings.Index(t.s[t.i+2:], "*/")
			if j < 0 {
				return "", tokOther, errors.New("jaas: unterminated /* comment")
			}
			t.i += j + 4
		default:
			return t.token()
		}
	}
	return "", tokEOF, nil
}

func (t *jaasTokens) token() (string, jaasToken, error) {
	c := t.s[t.i]
	switch {
	case c == '=':
		t.i++
		return "=", tokEquals, nil
	case c == ';':
		t.i++
		return ";", tokSemicolon, nil
	case c == '"':
		var b strings.Builder
		for t.i++; t.i < len(t.s); t.i++ {
			switch c := t.s[t.i]; c {
			case '"':
				t.i++
				return b.String(), tokQuoted, nil
			case '\\':
				t.i++
				if t.i == len(t.s) {
					return "", tokOther, errors.New("jaas: unterminated quoted value")
				}
				switch e := t.s[t.i]; e {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				case 'r':
					b.WriteByte('\r')
				default:
					b.WriteByte(e)
				}
			default:
				b.WriteByte(c)
			}
		}
		return "", tokOther, errors.New("jaas: unterminated quoted value")
	case isJAASWordByte(c):
		j := t.i
		for j < len(t.s) && isJAASWordByte(t.s[j]) {
			j++
		}
		w := t.s[t.i:j]
		t.i = j
		return w, tokWord, nil
	}
	t.i++
	return string(c), tokOther, nil
}

// isJAASWordByte reports whether c may appear in a bare word: letters, digits, non-ASCII and
// the characters Kafka's tokenizer adds (- _ $ { } . and, for URLs and paths, : / @).
func isJAASWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80 ||
		strings.IndexByte("-_${}.:/@", c) >= 0
}
