package call

import (
	"testing"

	"github.com/pion/webrtc/v4"
)

// TestHasTURN: TURN servers are told apart from STUN ones by scheme, in
// any case.
func TestHasTURN(t *testing.T) {
	for _, tc := range []struct {
		urls []string
		want bool
	}{
		{nil, false},
		{[]string{"stun:127.0.0.1:3478", "stuns:example.net"}, false},
		{[]string{"stun:127.0.0.1:3478", "turn:127.0.0.1:3478?transport=udp"}, true},
		{[]string{"TURNS:example.net:5349"}, true},
		{[]string{"turnx:example.net"}, false},
	} {
		if got := hasTURN([]webrtc.ICEServer{{URLs: tc.urls}}); got != tc.want {
			t.Errorf("hasTURN(%q) = %v, want %v", tc.urls, got, tc.want)
		}
	}
}
