// Package egress bounds where a connector's connections go. A job names the hosts its
// connectors reach (Kafka's bootstrap.servers and the brokers they advertise, a PostgreSQL
// url), and the TaskManager dials them: without a check, a job could make it reach what is
// the TaskManager's and not the job's. The check runs on the address actually dialed, after
// name resolution, so a name that resolves (or is rebound) to a refused address is refused
// as well.
//
// Refused: anything but TCP (Unix-domain sockets are the TaskManager's OS user's: a server
// would authenticate that user by peer credentials); link-local addresses (169.254.0.0/16,
// fe80::/10), which are the cloud instance metadata services (169.254.169.254, ECS's
// 169.254.170.2) and their credentials; the other metadata addresses fd00:ec2::254 (AWS over
// IPv6) and 100.100.100.200 (Alibaba Cloud); the unspecified, multicast and broadcast
// addresses. Allowed: every other address, loopback included (a broker or database beside
// the TaskManager).
package egress

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// metadata are instance metadata addresses outside the link-local ranges.
var metadata = []netip.Addr{
	netip.MustParseAddr("fd00:ec2::254"),
	netip.MustParseAddr("100.100.100.200"),
}

// Check returns an error when a connector must not connect to address (host:port with a
// literal IP) over network.
func Check(network, address string) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return fmt.Errorf("connection to %s over %s refused: connectors connect over TCP only", address, network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("connection to %s refused: not an IP address and port", address)
	}
	ip := ap.Addr().Unmap()
	var why string
	switch {
	case ip.IsLinkLocalUnicast():
		why = "a link-local address (the cloud instance metadata service lives there)"
	case ip.IsUnspecified(), ip.IsMulticast(), ip.IsLinkLocalMulticast(), ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		why = "not a host's address"
	default:
		for _, m := range metadata {
			if ip == m {
				why = "a cloud instance metadata service"
			}
		}
	}
	if why != "" {
		return fmt.Errorf("connection to %s refused: %s, which a job may not reach", address, why)
	}
	return nil
}

// Dialer returns a dialer that refuses the addresses Check refuses, at connect time.
func Dialer(timeout, keepAlive time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: keepAlive, Control: control}
}

func control(network, address string, _ syscall.RawConn) error {
	return Check(network, address)
}
