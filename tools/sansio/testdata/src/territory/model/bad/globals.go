package bad

import (
	"errors"
	"fmt"

	"territory/model/helper"
)

var counter int // want `package-level variable counter: the core keeps no mutable global state`

var cache = map[string]int{} // want `package-level variable cache`

var names = []string{"a", "b"} // want `package-level variable names`

var computed = func() [2]int { return [2]int{1, 2} }() // want `package-level variable computed`

var notConst = [2]int{1, len(names)} // want `package-level variable notConst`

var wrongSentinel error = someError() // want `package-level variable wrongSentinel`

var ptrs = [1]*int{nil} // want `package-level variable ptrs`

var a, b = pair() // want `package-level variable a` `package-level variable b`

var (
	// ErrOK is an error sentinel.
	ErrOK = errors.New("ok")
	// ErrWrapped is an error sentinel made by fmt.Errorf.
	ErrWrapped = fmt.Errorf("wrapped: %w", ErrOK)
	table      = [...]string{"x", "y", "z"}
	keyed      = [3]int{0: 1, 2: 3}
)

var _ error = (*myErr)(nil) // a compile-time assertion is allowed

type myErr struct{}

func (*myErr) Error() string { return "" }

type pt struct{ x, y int }

var origin = [1]int{0}

func someError() error { return nil }

func pair() (int, int) { return 1, 2 }

func writes() {
	ErrOK = nil               // want `assignment to package-level variable ErrOK: package-level variables are read-only`
	table[0] = "w"            // want `assignment to package-level variable table`
	keyed[1]++                // want `\+\+ of package-level variable keyed`
	keyed[2] += 1             // want `assignment to package-level variable keyed`
	p := &table               // want `address of package-level variable table`
	q := &keyed[0]            // want `address of package-level variable keyed`
	s := table[:]             // want `slice of package-level array table`
	helper.ErrHelper = nil    // want `assignment to package-level variable ErrHelper`
	helper.Table[1] = 7       // want `assignment to package-level variable Table`
	for origin[0] = range 3 { // want `assignment to package-level variable origin`
	}
	counter = 2 // want `assignment to package-level variable counter`
	_, _, _ = p, q, s
}

func reads() string {
	local := table // a copy: writing it leaves the table alone
	local[0] = "w"
	t := table[1] + local[0]
	str := "abc"[1:] // slicing a string constant is fine
	var v pt
	v.x = keyed[0] // a local struct
	pp := &v
	pp.y = 2
	return t + str + fmt.Sprint(ErrWrapped) // want `fmt.Sprint: of fmt`
}
