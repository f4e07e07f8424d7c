package bad

import (
	"os"
	"sync"
	"testing"
)

var testGlobal = map[int]int{}

// Test files are not the core: nothing here is flagged.
func TestAnything(t *testing.T) {
	var mu sync.Mutex
	mu.Lock()
	c := make(chan int)
	go func() { c <- 1 }()
	<-c
	for k := range testGlobal {
		_ = k
	}
	_ = os.Args
}
