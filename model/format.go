package model

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// The core may not import fmt, strings or encoding/binary: each reaches os or
// sync (go list -deps), and the sans-IO rule is checked on the whole
// dependency graph. These few helpers replace what the core needs of them.

// Stringer is fmt.Stringer, restated.
type Stringer interface{ String() string }

// sprintf formats the verbs %d %x %s %q %v %w %T-free subset used by the core,
// with an optional zero-padded width (%05d, %016x). Unknown verbs print as is.
func sprintf(format string, args ...any) string {
	buf := make([]byte, 0, len(format)+16*len(args))
	ai := 0
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 == len(format) {
			buf = append(buf, c)
			continue
		}
		i++
		if format[i] == '%' {
			buf = append(buf, '%')
			continue
		}
		zero := false
		width := 0
		if format[i] == '0' {
			zero = true
			i++
		}
		for i < len(format) && format[i] >= '1' && format[i] <= '9' || (width > 0 && i < len(format) && format[i] == '0') {
			width = width*10 + int(format[i]-'0')
			i++
		}
		if i == len(format) {
			break
		}
		verb := format[i]
		if ai >= len(args) {
			buf = append(buf, "%!"...)
			buf = append(buf, verb)
			continue
		}
		s := formatArg(args[ai], verb)
		ai++
		pad := byte(' ')
		if zero {
			pad = '0'
		}
		for n := utf8.RuneCountInString(s); n < width; n++ {
			buf = append(buf, pad)
		}
		buf = append(buf, s...)
	}
	return string(buf)
}

func formatArg(a any, verb byte) string {
	base := 10
	if verb == 'x' {
		base = 16
	}
	switch v := a.(type) {
	case string:
		if verb == 'q' {
			return strconv.Quote(v)
		}
		return v
	case []byte:
		if verb == 'q' {
			return strconv.Quote(string(v))
		}
		return string(v)
	case error:
		return v.Error()
	case Stringer:
		return v.String()
	case int:
		return strconv.FormatInt(int64(v), base)
	case int64:
		return strconv.FormatInt(v, base)
	case int32:
		return strconv.FormatInt(int64(v), base)
	case uint:
		return strconv.FormatUint(uint64(v), base)
	case uint64:
		return strconv.FormatUint(v, base)
	case uint32:
		return strconv.FormatUint(uint64(v), base)
	case uint8:
		return strconv.FormatUint(uint64(v), base)
	case SubgraphID:
		return strconv.FormatUint(uint64(v), base)
	case HostID:
		return strconv.FormatUint(uint64(v), base)
	case NeuronID:
		return strconv.FormatUint(uint64(v), base)
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return "<nil>"
	}
	// Every type the core formats is listed above; a test formats each.
	return "%!(unsupported type)"
}

// wrapped is an error with context around a cause (fmt.Errorf's %w).
type wrapped struct {
	msg   string
	cause error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.cause }

// errorf formats an error; a %w argument becomes the cause that errors.Is
// and errors.As find.
func errorf(format string, args ...any) error {
	var cause error
	for _, a := range args {
		if e, ok := a.(error); ok && cause == nil {
			cause = e
		}
	}
	msg := sprintf(format, args...)
	if cause == nil || !containsVerbW(format) {
		return errors.New(msg)
	}
	return &wrapped{msg: msg, cause: cause}
}

func containsVerbW(format string) bool {
	for i := 0; i+1 < len(format); i++ {
		if format[i] == '%' && format[i+1] == 'w' {
			return true
		}
	}
	return false
}

// hasPrefix, cutPrefix, cut and fields restate the few strings functions used.
func hasPrefix(s, prefix string) bool { return len(s) >= len(prefix) && s[:len(prefix)] == prefix }

func cutPrefix(s, prefix string) (string, bool) {
	if !hasPrefix(s, prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

func cut(s string, sep byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// fields splits on runs of ASCII spaces and tabs.
func fields(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		space := i == len(s) || s[i] == ' ' || s[i] == '\t' || s[i] == '\n'
		switch {
		case space && start >= 0:
			out = append(out, s[start:i])
			start = -1
		case !space && start < 0:
			start = i
		}
	}
	return out
}
