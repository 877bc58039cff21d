package cmd

import (
	"github.com/rtckit/rtckit/peer"
	"github.com/spf13/pflag"
)

// addICEFlags binds the ICE options shared by every command that makes a
// PeerConnection.
func addICEFlags(f *pflag.FlagSet, c *peer.ICEConfig) {
	f.StringArrayVar(&c.STUN, "stun", nil, "STUN server URI, stun:host[:port] (repeatable)")
	f.StringArrayVar(&c.TURN, "turn", nil, "TURN server URI, turn:[user:pass@]host[:port][?transport=udp|tcp] or turns: (repeatable)")
	f.StringVar(&c.TURNUser, "turn-user", "", "TURN username for servers whose URI has none")
	f.StringVar(&c.TURNPass, "turn-pass", "", "TURN password for servers whose URI has none")
	f.StringVar(&c.TURNSecret, "turn-secret", "", "shared secret to mint TURN REST credentials (coturn use-auth-secret)")
	f.DurationVar(&c.TURNTTL, "turn-ttl", peer.DefaultTURNTTL, "lifetime of minted TURN REST credentials")
	f.StringSliceVar(&c.Networks, "network", nil, "candidate network types: udp4, udp6, tcp4, tcp6 (default all)")
	f.StringSliceVar(&c.Interfaces, "interface", nil, "gather host candidates only on these interfaces")
	f.StringSliceVar(&c.ExcludeInterfaces, "exclude-interface", nil, "never gather host candidates on these interfaces")
	f.StringVar(&c.MDNS, "mdns", peer.MDNSDisabled, "mDNS host candidates: disabled, query or gather")
	f.StringVar(&c.Policy, "ice-policy", peer.PolicyAll, "ICE transport policy: all, or relay to use TURN only")
	f.BoolVar(&c.IncludeLoopback, "include-loopback", false, "gather loopback host candidates too")
}
