package turnapp

import (
	"encoding/json"
	"fmt"
	"net"

	"github.com/pion/turn/v4"
)

// binding is everything that takes new sockets to change. Its JSON form is
// the usage-pool key, so equal bindings share one running server.
type binding struct {
	Realm     string         `json:"realm"`
	Listeners []listenerSpec `json:"listeners"`
	RelayIP   string         `json:"relay_ip"`  // where relay sockets are bound
	PublicIP  string         `json:"public_ip"` // the relay address peers are told
	MinPort   uint16         `json:"min_port"`
	MaxPort   uint16         `json:"max_port"`
	// ReceiveBuffer is each UDP listener socket's (App.ReceiveBuffer).
	ReceiveBuffer int64 `json:"receive_buffer"`
}

// listenerSpec is one socket: network udp, tcp or tls.
type listenerSpec struct {
	Network string `json:"network"`
	Address string `json:"address"`
}

func (b *binding) key() string {
	k, _ := json.Marshal(b) // plain strings and numbers: cannot fail
	return "turn.server." + string(k)
}

// relayGenerator picks relay sockets on RelayIP and advertises PublicIP.
func (b *binding) relayGenerator() (turn.RelayAddressGenerator, error) {
	public := net.ParseIP(b.PublicIP)
	if public == nil {
		return nil, fmt.Errorf("turn: invalid public_ip %q", b.PublicIP)
	}
	if b.MinPort != 0 {
		return &turn.RelayAddressGeneratorPortRange{
			RelayAddress: public,
			Address:      b.RelayIP,
			MinPort:      b.MinPort,
			MaxPort:      b.MaxPort,
		}, nil
	}
	return &turn.RelayAddressGeneratorStatic{RelayAddress: public, Address: b.RelayIP}, nil
}
