package peer

import (
	"errors"
	"testing"
	"time"
)

func TestICEConfigServers(t *testing.T) {
	tests := []struct {
		name    string
		cfg     ICEConfig
		wantErr bool
	}{
		{"stun and turn", ICEConfig{STUN: []string{"stun:127.0.0.1"}, TURN: []string{"turn:u:p@127.0.0.1?transport=tcp"}}, false},
		{"turns", ICEConfig{TURN: []string{"turns:u:p@turn.example.test"}}, false},
		{"stuns is skipped by ICE", ICEConfig{STUN: []string{"stuns:127.0.0.1"}}, true},
		{"turn given as stun", ICEConfig{STUN: []string{"turn:u:p@127.0.0.1"}}, true},
		{"stun given as turn", ICEConfig{TURN: []string{"stun:127.0.0.1"}}, true},
		{"turn without credentials", ICEConfig{TURN: []string{"turn:127.0.0.1"}}, true},
		{"turn user without password", ICEConfig{TURN: []string{"turn:u@127.0.0.1"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			servers, err := tt.cfg.Servers(time.Unix(0, 0))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Servers = %v, want an error", servers)
				}
				if !errors.Is(err, ErrICEConfig) && !errors.Is(err, ErrBadURI) {
					t.Errorf("error %v is neither ErrICEConfig nor ErrBadURI", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := len(tt.cfg.STUN) + len(tt.cfg.TURN); len(servers) != want {
				t.Errorf("%d servers, want %d", len(servers), want)
			}
		})
	}
}
