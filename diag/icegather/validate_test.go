package icegather

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rtckit/rtckit/peer"
)

// TestValidate: every option error is found without the network, so a
// command can report it before printing anything.
func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		ice  peer.ICEConfig
		opts Options
		want string // empty: valid
	}{
		{"host only", peer.ICEConfig{}, Options{Require: []string{TypeHost}}, ""},
		{"stun and turn", peer.ICEConfig{STUN: []string{"stun:192.0.2.1"}, TURN: []string{"turn:u:p@192.0.2.1?transport=tcp"}},
			Options{Require: []string{TypeHost, TypeSrflx, TypeRelay}, RelayCheck: true}, ""},
		{"turns over TLS", peer.ICEConfig{TURN: []string{"turns:u:p@turn.example.net"}}, Options{Require: []string{TypeRelay}}, ""},
		{"srflx from a TURN server", peer.ICEConfig{TURN: []string{"turn:u:p@192.0.2.1"}}, Options{Require: []string{TypeSrflx}}, ""},
		{"relay policy requiring relay", peer.ICEConfig{TURN: []string{"turn:u:p@192.0.2.1"}, Policy: peer.PolicyRelay}, Options{Require: []string{TypeRelay}}, ""},
		{"stuns", peer.ICEConfig{STUN: []string{"stuns:stun.example.net"}}, Options{}, "stuns: is not supported"},
		{"unknown type", peer.ICEConfig{}, Options{Require: []string{"prflx"}}, "unknown candidate type"},
		{"relay without TURN", peer.ICEConfig{STUN: []string{"stun:192.0.2.1"}}, Options{Require: []string{TypeRelay}}, "needs a TURN server"},
		{"srflx without servers", peer.ICEConfig{}, Options{Require: []string{TypeSrflx}}, "needs a STUN or TURN server"},
		{"srflx with relay policy", peer.ICEConfig{TURN: []string{"turn:u:p@192.0.2.1"}, Policy: peer.PolicyRelay}, Options{Require: []string{TypeSrflx}}, "can never be met"},
		{"relay check without TURN", peer.ICEConfig{STUN: []string{"stun:192.0.2.1"}}, Options{RelayCheck: true}, ErrNoTURN.Error()},
		{"bad network", peer.ICEConfig{Networks: []string{"udp5"}}, Options{}, "unknown network type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A URI the ICE agent cannot use fails already in Servers.
			servers, err := tt.ice.Servers(time.Unix(0, 0))
			if err == nil {
				tt.opts.Servers, tt.opts.ICE = servers, tt.ice
				err = tt.opts.Validate()
			}
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error mentioning %q", err, tt.want)
			case tt.want != "" && !errors.Is(err, peer.ErrICEConfig) && !errors.Is(err, ErrNoTURN):
				t.Errorf("Validate() = %v, want it to wrap peer.ErrICEConfig", err)
			}
		})
	}
}

// TestValidateSTUNS: servers given to Gather directly, not through
// peer.ICEConfig.Servers, are checked too.
func TestValidateSTUNS(t *testing.T) {
	u, err := peer.ParseICEServerURI("stuns:stun.example.net")
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Servers: []peer.ICEServer{{URI: u}}}
	if err := opts.Validate(); !errors.Is(err, peer.ErrICEConfig) || !strings.Contains(err.Error(), "stuns: is not supported") {
		t.Errorf("Validate() = %v, want stuns: refused", err)
	}
}
