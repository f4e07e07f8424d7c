// Command sansio runs the sans-IO analyzer (territory/tools/sansio) on the
// packages named on its command line; make lint runs it as
//
//	go run ./tools/sansio/cmd/sansio -test=false ./model/...
package main

import (
	"territory/tools/sansio"

	"golang.org/x/tools/go/analysis/singlechecker"
)

func main() { singlechecker.Main(sansio.Analyzer) }
