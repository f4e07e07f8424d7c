// Package outside is not a core package.
package outside

// F is anything.
func F() int { return 1 }
