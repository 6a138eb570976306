// Package rtctest holds what the pion/webrtc tests share.
package rtctest

import (
	"net"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// LoopbackAPI makes peer connections that gather host candidates on
// loopback IPv4 only, in the clear (no mDNS): a test call never touches
// another address.
func LoopbackAPI() *webrtc.API {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	return webrtc.NewAPI(webrtc.WithSettingEngine(se))
}
