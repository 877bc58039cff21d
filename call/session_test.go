package call

import (
	"context"
	"testing"
	"time"

	"github.com/rtckit/rtckit/peer"
)

// runPair runs a caller and an answerer in one process on loopback and
// returns both reports.
func runPair(t *testing.T, caller, answerer Options) (*Report, *Report, error, error) {
	t.Helper()
	a, b := newPipe(true)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	type result struct {
		rep *Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := Run(ctx, answerer, Setup{Mode: "test", Self: "bob", Peer: "alice", Polite: true}, b, IO{})
		done <- result{rep, err}
	}()
	rep, err := Run(ctx, caller, Setup{Mode: "test", Self: "alice", Peer: "bob", Caller: true}, a, IO{})
	r := <-done
	return rep, r.rep, err, r.err
}

func loopbackOptions() Options {
	return Options{ICE: peer.ICEConfig{IncludeLoopback: true, Interfaces: []string{"lo"}, Networks: []string{"udp4"}}}
}

func TestCallInProcess(t *testing.T) {
	caller := loopbackOptions()
	caller.Duration = 1500 * time.Millisecond
	caller.Verify = true
	answerer := loopbackOptions()
	answerer.Verify = true
	crep, arep, cerr, aerr := runPair(t, caller, answerer)
	if cerr != nil || aerr != nil {
		t.Fatalf("caller %v, answerer %v", cerr, aerr)
	}
	for _, rep := range []*Report{crep, arep} {
		t.Logf("%s: %+v", rep.Role, rep.Tracks)
	}
}
