package bad

import (
	"fmt"
	"math/rand" // want `import "math/rand"`
	"os"        // want `import "os": the core imports only pure standard-library packages`
	"outside"   // want `import "outside"`
	"sync"      // want `import "sync"`
	"time"      // want `import "time"`
)

func useImports() {
	_ = os.Args
	_ = outside.F()
	var mu sync.Mutex
	_ = &mu
	_ = time.Now()
	_ = rand.Int()
	fmt.Println("x")          // want `fmt.Println: of fmt the core may use only Sprintf and Errorf`
	_ = fmt.Sprint("x")       // want `fmt.Sprint: of fmt`
	var _ fmt.Stringer        // want `fmt.Stringer: of fmt`
	_ = fmt.Sprintf("%d", 1)  // allowed
	_ = fmt.Errorf("e %d", 1) // allowed
}
