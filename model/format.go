package model

import (
	"fmt"
	"strings"
)

// These one-line wrappers keep the names the core used when it restated fmt
// and strings by hand; the call sites move to the standard library directly
// and the wrappers then go.

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

func cutPrefix(s, prefix string) (string, bool) { return strings.CutPrefix(s, prefix) }

func cut(s string, sep byte) (before, after string, found bool) {
	return strings.Cut(s, string(sep))
}

func fields(s string) []string { return strings.Fields(s) }
