// Package helper is one of the core's own packages: the core may import it.
package helper

import "errors"

// ErrHelper is an error sentinel of another core package.
var ErrHelper = errors.New("helper")

// Table is a lookup table of another core package.
var Table = [2]int{1, 2}

// Pipe returns a channel: its declaration is flagged here, not at the caller.
func Pipe() chan int { return nil } // want `channel type`
