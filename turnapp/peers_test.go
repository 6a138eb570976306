package turnapp

import (
	"net"
	"testing"
)

func TestPeerPolicy(t *testing.T) {
	def, err := newPeerPolicy(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// allow_peers names IPv4 addresses that 6to4 addresses embed: 8.8.4.4
	// (public) and 10.9.9.9 (private).
	custom, err := newPeerPolicy([]string{"203.0.114.0/24", "2001:db8:1::/48"},
		[]string{"127.0.0.1/32", "10.1.2.3", "fd00::5/128", "8.8.4.4", "10.9.9.9"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ip             string
		def, withLists bool
	}{
		{"8.8.8.8", true, true},
		{"2606:4700::1111", true, true},
		{"127.0.0.1", false, true},
		{"127.0.0.2", false, false},
		{"10.0.0.1", false, false},
		{"10.1.2.3", false, true},
		{"172.16.0.1", false, false},
		{"172.31.255.255", false, false},
		{"172.32.0.1", true, true},
		{"192.168.1.1", false, false},
		{"169.254.169.254", false, false},
		{"100.64.0.1", false, false},
		{"100.127.255.255", false, false},
		{"100.128.0.1", true, true},
		{"224.0.0.1", false, false},
		{"239.255.255.250", false, false},
		{"255.255.255.255", false, false},
		{"240.0.0.1", false, false},
		{"0.0.0.0", false, false},
		{"198.18.0.1", false, false},
		{"203.0.114.7", true, false},
		{"192.0.2.1", false, false},        // TEST-NET-1
		{"198.51.100.200", false, false},   // TEST-NET-2
		{"203.0.113.7", false, false},      // TEST-NET-3
		{"192.88.99.1", false, false},      // 6to4 relay anycast
		{"192.88.100.1", true, true},       // just past it
		{"168.63.129.16", false, false},    // Azure host endpoint
		{"168.63.129.17", true, true},      // only that one address
		{"64:ff9b:1::a00:1", false, false}, // local-use NAT64
		{"64:ff9b:2::1", true, true},       // past the /48
		{"2001::1", false, false},          // Teredo
		{"2001:1ff:ffff::1", false, false}, // end of 2001::/23
		{"2001:200::1", true, true},        // just past 2001::/23
		{"2002:808:808::1", false, false},  // 6to4 of 8.8.8.8: 6to4 is denied as a whole
		{"2002:808:404::1", false, true},   // 6to4 of 8.8.4.4, which allow_peers names
		{"2002:a09:909::1", false, true},   // 6to4 of 10.9.9.9, which allow_peers names
		{"2002:a00:1::1", false, false},    // 6to4 of 10.0.0.1
		{"2003::1", true, true},            // past 2002::/16
		{"fec0::1", false, false},          // site-local
		{"feff::1", false, false},          // end of fec0::/10
		{"ff00::1", false, false},
		{"::1", false, false},
		{"::", false, false},
		{"fc00::1", false, false},
		{"fd00::5", false, true},
		{"fe80::1", false, false},
		{"ff02::1", false, false},
		{"::ffff:10.0.0.1", false, false},
		{"::ffff:127.0.0.1", false, true},
		{"::ffff:8.8.8.8", true, true},
		{"64:ff9b::a00:1", false, false},     // NAT64 of 10.0.0.1
		{"64:ff9b::a9fe:a9fe", false, false}, // NAT64 of 169.254.169.254
		{"64:ff9b::808:808", true, true},     // NAT64 of 8.8.8.8
		{"2001:db8:1::1", false, false},
	}
	for _, tc := range tests {
		ip := net.ParseIP(tc.ip)
		if got := def.permits(ip); got != tc.def {
			t.Errorf("default policy, %s: permits = %v, want %v", tc.ip, got, tc.def)
		}
		if got := custom.permits(ip); got != tc.withLists {
			t.Errorf("with deny/allow lists, %s: permits = %v, want %v", tc.ip, got, tc.withLists)
		}
	}
	if def.permits(nil) {
		t.Error("nil IP permitted")
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "1.2.3"} {
		if _, err := newPeerPolicy([]string{bad}, nil); err == nil {
			t.Errorf("deny_peers %q accepted", bad)
		}
		if _, err := newPeerPolicy(nil, []string{bad}); err == nil {
			t.Errorf("allow_peers %q accepted", bad)
		}
	}
}
