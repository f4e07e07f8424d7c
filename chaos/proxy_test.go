package chaos

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// echo serves lines back on a loopback port.
func echo(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if _, err := c.Write(append(sc.Bytes(), '\n')); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// roundTrip sends a line through addr and waits up to d for it back.
func roundTrip(addr string, d time.Duration) (time.Duration, error) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, d)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return 0, err
	}
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func TestProxyFaultsAreReal(t *testing.T) {
	p, err := NewProxy("test", echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := roundTrip(p.Addr(), time.Second); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.Cut()
	if _, err := roundTrip(p.Addr(), 300*time.Millisecond); err == nil {
		t.Fatal("a cut proxy still passes traffic")
	}
	if err := p.Heal(); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(p.Addr(), time.Second); err != nil {
		t.Fatalf("after the heal: %v", err)
	}
	if err := p.Partition(); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(p.Addr(), 300*time.Millisecond); err == nil {
		t.Fatal("a partitioned proxy still passes traffic")
	}
	if err := p.Unpartition(); err != nil {
		t.Fatal(err)
	}
	if err := p.Slow(100); err != nil {
		t.Fatal(err)
	}
	if d, err := roundTrip(p.Addr(), 2*time.Second); err != nil || d < 200*time.Millisecond {
		t.Fatalf("100 ms each way: round trip %v %v", d, err)
	}
	if err := p.Unslow(); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(p.Addr(), time.Second); err != nil {
		t.Fatalf("after unslow: %v", err)
	}
}
