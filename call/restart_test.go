package call

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/transport/v5/vnet"
	"github.com/rtckit/rtckit/internal/vnetlab"
	"github.com/rtckit/rtckit/peer"
)

// TestCallICERestart cuts the network between two peers mid-call until ICE
// fails, then restores it: the caller restarts ICE, the call reconnects and
// ends normally, and frames still verify.
func TestCallICERestart(t *testing.T) {
	lab := vnetlab.New(t)
	var blocked atomic.Bool
	lab.AddFilter(func(vnet.Chunk) bool { return !blocked.Load() })
	aliceNet, bobNet := lab.Host("203.0.113.10"), lab.Host("203.0.113.20")
	lab.Start()
	api := func(n *vnet.Net) IO {
		return IO{API: peer.APIConfig{Net: n, ICEDisconnectedTimeout: 500 * time.Millisecond,
			ICEFailedTimeout: time.Second, ICEKeepaliveInterval: 200 * time.Millisecond}}
	}
	opts := Options{ICE: peer.ICEConfig{Networks: []string{"udp4"}}, Verify: true}
	caller := opts
	caller.Duration = 6 * time.Second
	// The network is cut once the caller is connected, and restored when
	// it starts the ICE restart, as its log says.
	var connectedOnce sync.Once
	callerIO := api(aliceNet)
	callerIO.Logger = slog.New(logHook{func(r slog.Record) {
		state := ""
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "state" {
				state = a.Value.String()
			}
			return true
		})
		switch {
		case r.Message == "call: ICE state" && state == "connected":
			connectedOnce.Do(func() {
				time.AfterFunc(time.Second, func() { blocked.Store(true) })
			})
		case r.Message == "call: ICE failed, restarting":
			blocked.Store(false)
		}
	}})
	crep, arep, cerr, aerr := runPairWith(t, caller, callerIO, func(ctx context.Context, setup Setup, sig Signaler) (*Report, error) {
		return Run(ctx, opts, setup, sig, api(bobNet))
	})
	if cerr != nil || aerr != nil {
		t.Fatalf("caller: %v; answerer: %v", cerr, aerr)
	}
	if crep.ICERestarts+arep.ICERestarts == 0 {
		t.Errorf("no ICE restart: caller %d, answerer %d", crep.ICERestarts, arep.ICERestarts)
	}
	if crep.EndReason != EndDuration {
		t.Errorf("caller ended %q, want %q", crep.EndReason, EndDuration)
	}
	for _, tr := range crep.Tracks {
		if tr.Direction == "in" && (tr.Verified == 0 || tr.Mismatched != 0) {
			t.Errorf("caller received %+v", tr)
		}
	}
	t.Logf("restarts: caller %d, answerer %d; phases %+v", crep.ICERestarts, arep.ICERestarts, crep.Phases)
}

// logHook is a slog.Handler that passes every record to fn.
type logHook struct{ fn func(slog.Record) }

func (h logHook) Enabled(context.Context, slog.Level) bool      { return true }
func (h logHook) Handle(_ context.Context, r slog.Record) error { h.fn(r); return nil }
func (h logHook) WithAttrs([]slog.Attr) slog.Handler            { return h }
func (h logHook) WithGroup(string) slog.Handler                 { return h }
