package egress

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		network, addr string
		ok            bool
	}{
		{"tcp", "127.0.0.1:9092", true},
		{"tcp", "[::1]:5432", true},
		{"tcp4", "10.1.2.3:9092", true},
		{"tcp", "203.0.113.7:443", true},
		{"tcp", "169.254.169.254:80", false},
		{"tcp4", "169.254.170.2:80", false},
		{"tcp", "[::ffff:169.254.169.254]:80", false},
		{"tcp6", "[fe80::1%eth0]:80", false},
		{"tcp6", "[fd00:ec2::254]:80", false},
		{"tcp", "100.100.100.200:80", false},
		{"tcp", "0.0.0.0:9092", false},
		{"tcp", "[::]:9092", false},
		{"tcp", "224.0.0.1:9092", false},
		{"tcp", "255.255.255.255:9092", false},
		{"unix", "/var/run/postgresql/.s.PGSQL.5432", false},
		{"udp", "127.0.0.1:53", false},
		{"tcp", "metadata.google.internal:80", false}, // not resolved: the dialer checks addresses
	} {
		err := Check(tc.network, tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("Check(%s, %s) = %v, want ok %v", tc.network, tc.addr, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "refused") {
			t.Errorf("Check(%s, %s): %v does not say the connection was refused", tc.network, tc.addr, err)
		}
	}
}

// The dialer refuses a metadata address before connecting, and connects to an allowed one.
func TestDialer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	d := Dialer(2*time.Second, 0)
	c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("loopback: %v", err)
	}
	c.Close()
	if _, err := d.DialContext(context.Background(), "tcp", "169.254.169.254:80"); err == nil || !strings.Contains(err.Error(), "link-local") {
		t.Errorf("metadata address: %v", err)
	}
	if _, err := d.DialContext(context.Background(), "unix", "/tmp/x.sock"); err == nil || !strings.Contains(err.Error(), "TCP only") {
		t.Errorf("unix socket: %v", err)
	}
}
