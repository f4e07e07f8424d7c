package bad

import "territory/model/helper"

func concurrency() {
	go func() {}()         // want `go statement: the core starts no goroutine`
	c := make(chan int, 1) // want `channel type`
	c <- 1                 // want `channel send`
	<-c                    // want `channel receive`
	v, ok := <-c           // want `channel receive`
	_, _ = v, ok
	select {} // want `select statement`
}

func closes(c chan<- int) { // want `channel type`
	close(c) // want `close of a channel`
}

func ranges() {
	p := helper.Pipe()
	for range p { // want `range over a channel`
	}
	p <- 2 // want `channel send`
}

type withChan struct {
	c <-chan chan int // want `channel type`
}
