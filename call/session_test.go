package call

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/rtckit/rtckit/internal/testenv"
	"github.com/rtckit/rtckit/peer"
)

// runPair runs a caller and an answerer in one process on loopback and
// returns both reports.
func runPair(t *testing.T, caller, answerer Options) (*Report, *Report, error, error) {
	t.Helper()
	return runPairWith(t, caller, IO{}, func(ctx context.Context, setup Setup, sig Signaler) (*Report, error) {
		return Run(ctx, answerer, setup, sig, IO{})
	})
}

// answerFunc runs the answering side of a test call (bob) on sig.
type answerFunc func(ctx context.Context, setup Setup, sig Signaler) (*Report, error)

// runPairWith runs the caller (alice) with callerIO against answer (bob),
// connected by a trickle pipe, and returns both reports.
func runPairWith(t *testing.T, caller Options, callerIO IO, answer answerFunc) (*Report, *Report, error, error) {
	t.Helper()
	return runPairThrough(t, caller, callerIO, answer, func(p *pipeSignaler) Signaler { return p })
}

// runPairThrough is runPairWith with the caller's end of the pipe wrapped
// by wrap.
func runPairThrough(t *testing.T, caller Options, callerIO IO, answer answerFunc, wrap func(*pipeSignaler) Signaler) (*Report, *Report, error, error) {
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
		rep, err := answer(ctx, Setup{Mode: "test", Self: "bob", Peer: "alice", Polite: true}, b)
		done <- result{rep, err}
	}()
	rep, err := Run(ctx, caller, Setup{Mode: "test", Self: "alice", Peer: "bob", Caller: true}, wrap(a), callerIO)
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

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCallInProcessData sends a file and a chat line next to the media;
// the call ends when the transfer is done.
func TestCallInProcessData(t *testing.T) {
	dir := t.TempDir()
	data := bytes.Repeat([]byte("rtckit "), 100_000)
	path := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	caller := loopbackOptions()
	caller.SendFiles = []string{path}
	caller.Chat = true
	answerer := loopbackOptions()
	answerer.ReceiveDir = dir
	answerer.Chat = true
	var chatOut syncBuffer
	a, b := newPipe(true)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	var arep *Report
	go func() {
		var err error
		arep, err = Run(ctx, answerer, Setup{Mode: "test", Self: "bob", Peer: "alice", Polite: true}, b,
			IO{In: strings.NewReader(""), Out: &chatOut})
		done <- err
	}()
	// The caller's chat line is sent once the channel opens.
	crep, err := Run(ctx, caller, Setup{Mode: "test", Self: "alice", Peer: "bob", Caller: true}, a,
		IO{In: strings.NewReader("hello bob\n"), Out: io.Discard})
	if err != nil {
		t.Fatalf("caller: %v", err)
	}
	if aerr := <-done; aerr != nil {
		t.Fatalf("answerer: %v", aerr)
	}
	if crep.EndReason != EndTransfersDone || len(crep.Files) != 1 || !crep.Files[0].OK {
		t.Errorf("caller: end %q files %+v", crep.EndReason, crep.Files)
	}
	if len(arep.Files) != 1 || !arep.Files[0].OK || arep.Files[0].Size != int64(len(data)) {
		t.Errorf("answerer files %+v", arep.Files)
	}
	got, err := os.ReadFile(filepath.Join(dir, "notes.txt"))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("received file: %d bytes, %v", len(got), err)
	}
	if !strings.Contains(chatOut.String(), "alice: hello bob") {
		t.Errorf("answerer chat output %q, want alice's line", chatOut.String())
	}
}

// TestTransfersCutShort: a call that ends (--duration) while a file is on
// its way reports that transfer, and the file it never started, as
// failed on the sending side; the receiving side reports its transfer
// failed and leaves nothing in its directory.
func TestTransfersCutShort(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	big, small := filepath.Join(src, "big.bin"), filepath.Join(src, "small.txt")
	// Far more than a transfer moves in the call's 200 ms.
	if err := os.WriteFile(big, bytes.Repeat([]byte{7}, 64<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(small, []byte("later"), 0o600); err != nil {
		t.Fatal(err)
	}
	caller := loopbackOptions()
	caller.SendFiles = []string{big, small}
	caller.Duration = 200 * time.Millisecond
	caller.Media.NoVideo, caller.Media.NoAudio = true, true
	answerer := loopbackOptions()
	answerer.ReceiveDir = dst
	answerer.Media.NoVideo, answerer.Media.NoAudio = true, true
	crep, arep, cerr, aerr := runPair(t, caller, answerer)
	if !errors.Is(cerr, ErrCheckFailed) || crep.EndReason != EndDuration || crep.OK {
		t.Errorf("caller: %v, end %q, ok %v; want a failed check after the duration", cerr, crep.EndReason, crep.OK)
	}
	if len(crep.Files) != 2 {
		t.Fatalf("caller's files %+v, want both", crep.Files)
	}
	if f := crep.Files[0]; f.Path != big || f.OK || !strings.Contains(f.Error, "before the transfer completed") {
		t.Errorf("the file cut short: %+v", f)
	}
	if f := crep.Files[1]; f.Path != small || f.OK || !strings.Contains(f.Error, "before the transfer started") {
		t.Errorf("the file not started: %+v", f)
	}
	if !errors.Is(aerr, ErrCheckFailed) || len(arep.Files) != 1 || arep.Files[0].OK {
		t.Errorf("answerer: %v, files %+v; want one failed transfer", aerr, arep.Files)
	}
	if names := testenv.DirNames(t, dst); len(names) != 0 {
		t.Errorf("the receive directory holds %v after a transfer cut short", names)
	}
}

// TestCallEcho: the answerer sends back what it receives, so the caller
// receives its own clip, and every frame verifies.
func TestCallEcho(t *testing.T) {
	caller := loopbackOptions()
	caller.Duration = 2 * time.Second
	caller.Verify = true
	answerer := loopbackOptions()
	answerer.Echo = true
	crep, arep, cerr, aerr := runPair(t, caller, answerer)
	if cerr != nil || aerr != nil {
		t.Fatalf("caller %v, answerer %v", cerr, aerr)
	}
	for _, kind := range []string{"video", "audio"} {
		var in TrackReport
		for _, tr := range crep.Tracks {
			if tr.Direction == "in" && tr.Kind == kind {
				in = tr
			}
		}
		if in.Verified < 20 || in.Mismatched != 0 {
			t.Errorf("caller received %s %+v, want its own frames back", kind, in)
		}
	}
	if len(arep.Tracks) == 0 {
		t.Errorf("answerer report has no tracks")
	}
}

// TestPreparedAnswerer: an answerer whose peer connection was made before
// the offer (as on a hub) has its candidates gathered before the offer and
// completes the call, and a Prepared runs once.
func TestPreparedAnswerer(t *testing.T) {
	answerer := loopbackOptions()
	answerer.Verify = true
	prep, err := Prepare(answerer, nil, IO{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = prep.Close() }()
	select {
	case <-webrtc.GatheringCompletePromise(prep.s.pc):
	case <-time.After(10 * time.Second):
		t.Fatalf("gathering state %s before the offer, want complete", prep.s.pc.ICEGatheringState())
	}
	caller := loopbackOptions()
	caller.Duration = time.Second
	caller.Verify = true
	crep, arep, cerr, aerr := runPairWith(t, caller, IO{}, func(ctx context.Context, setup Setup, sig Signaler) (*Report, error) {
		return prep.Run(ctx, setup, sig)
	})
	if cerr != nil || aerr != nil {
		t.Fatalf("caller %v, answerer %v", cerr, aerr)
	}
	for _, rep := range []*Report{crep, arep} {
		if !rep.OK || len(rep.Tracks) == 0 {
			t.Errorf("%s report: ok %v, %d tracks, error %q", rep.Role, rep.OK, len(rep.Tracks), rep.Error)
		}
	}
	_, b := newPipe(true)
	if _, err := prep.Run(t.Context(), Setup{}, b); !errors.Is(err, ErrUsage) {
		t.Errorf("second Run: %v, want ErrUsage", err)
	}
}

// lostHangUps is a signaler whose hang-up never arrives, like a hub that
// died during the call; it counts the offers sent when offers is set.
type lostHangUps struct {
	*pipeSignaler
	offers *atomic.Int32
}

func (l lostHangUps) Send(ctx context.Context, s Signal) error {
	if s.HangUp {
		return nil
	}
	if l.offers != nil && s.Description != nil && s.Description.Type == webrtc.SDPTypeOffer {
		l.offers.Add(1)
	}
	return l.pipeSignaler.Send(ctx, s)
}

// TestHangUpWithoutSignaling: a media-only call (no data channel, so no
// SCTP) whose hang-up message is lost still ends at once on the answering
// side: the caller's RTCP BYE says it left.
func TestHangUpWithoutSignaling(t *testing.T) {
	caller := loopbackOptions()
	caller.Duration = time.Second
	answer := func(ctx context.Context, setup Setup, sig Signaler) (*Report, error) {
		return Run(ctx, loopbackOptions(), setup, sig, IO{})
	}
	crep, arep, cerr, aerr := runPairThrough(t, caller, IO{}, answer, func(p *pipeSignaler) Signaler { return lostHangUps{pipeSignaler: p} })
	if cerr != nil {
		t.Fatalf("caller: %v", cerr)
	}
	if crep.EndReason != EndDuration {
		t.Errorf("caller ended %q, want %q", crep.EndReason, EndDuration)
	}
	if arep == nil {
		t.Fatalf("answerer: no report: %v", aerr)
	}
	// Without the BYE it would end only when ICE fails, after the pair's
	// 30 s bound: as interrupted or dropped.
	if aerr != nil || arep.EndReason != EndPeerHungUp {
		t.Fatalf("answerer ended %q (%v), want %q", arep.EndReason, aerr, EndPeerHungUp)
	}
}

// TestReceiveOnlyHangUpWithoutSignaling: a side that sends no media has no
// source to say goodbye for; its hang-up still ends a media-only call at
// once on the sending side when the hang-up message is lost.
func TestReceiveOnlyHangUpWithoutSignaling(t *testing.T) {
	receiveOnly := loopbackOptions()
	receiveOnly.Media.NoVideo, receiveOnly.Media.NoAudio = true, true
	receiveOnly.Duration = time.Second
	silent := receiveOnly
	silent.Duration = 0
	tests := []struct {
		name             string
		caller, answerer Options
		// hangsUp is the role that hangs up (--duration); the other side
		// must see the hang-up.
		hangsUp string
	}{
		{"caller receives only", receiveOnly, loopbackOptions(), "caller"},
		{"answerer receives only", loopbackOptions(), receiveOnly, "answerer"},
		// No RTP either way: the caller's control channel carries the bye.
		{"neither sends media", receiveOnly, silent, "caller"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Neither side's hang-up message arrives.
			var callerOffers, answererOffers atomic.Int32
			answer := func(ctx context.Context, setup Setup, sig Signaler) (*Report, error) {
				return Run(ctx, tt.answerer, setup, lostHangUps{sig.(*pipeSignaler), &answererOffers}, IO{})
			}
			start := time.Now()
			crep, arep, cerr, aerr := runPairThrough(t, tt.caller, IO{}, answer, func(p *pipeSignaler) Signaler {
				return lostHangUps{p, &callerOffers}
			})
			// The first offer, and at most one more for the control channel.
			if c, a := callerOffers.Load(), answererOffers.Load(); c < 1 || c > 2 || a != 0 {
				t.Errorf("the caller sent %d offers and the answerer %d; want 1 or 2, and none", c, a)
			}
			if crep == nil || arep == nil {
				t.Fatalf("caller %v, answerer %v: a report is missing", cerr, aerr)
			}
			quitter, sender, sendErr := crep, arep, aerr
			if tt.hangsUp == "answerer" {
				quitter, sender, sendErr = arep, crep, cerr
			}
			if quitter.EndReason != EndDuration {
				t.Errorf("%s ended %q (%s), want %q", quitter.Role, quitter.EndReason, quitter.Error, EndDuration)
			}
			// Without its BYE the sending side would end only when ICE
			// fails, after the pair's 30 s bound.
			if sendErr != nil || sender.EndReason != EndPeerHungUp {
				t.Fatalf("%s ended %q (%v), want %q", sender.Role, sender.EndReason, sendErr, EndPeerHungUp)
			}
			for _, tr := range sender.Tracks {
				if tr.Direction == "out" && (tr.Lost < 0 || tr.LossFraction < 0 || tr.LossFraction > 1) {
					t.Errorf("%s sent track %+v: the last receiver report is not a plausible one", sender.Role, tr)
				}
			}
			t.Logf("the call ended %v after it began", time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestCallReceiveOnly: a caller that sends nothing still makes a call and
// receives the answerer's media, every frame verified.
func TestCallReceiveOnly(t *testing.T) {
	caller := loopbackOptions()
	caller.Duration = 1500 * time.Millisecond
	caller.Verify = true
	caller.Media.NoVideo, caller.Media.NoAudio = true, true
	crep, _, cerr, aerr := runPair(t, caller, loopbackOptions())
	if cerr != nil || aerr != nil {
		t.Fatalf("caller %v, answerer %v", cerr, aerr)
	}
	var in, out int
	for _, tr := range crep.Tracks {
		switch {
		case tr.Direction == "out":
			out++
		case tr.Kind == "video" && tr.Verified > 0 && tr.Mismatched == 0:
			in++
		}
	}
	if in != 1 || out != 0 {
		t.Fatalf("caller tracks %+v: want verified video in, nothing out", crep.Tracks)
	}
}

// TestHangUpBeforeSCTP: a call that ends as soon as it connects (its only
// file to send is gone) says its hang-up on the control channel once SCTP
// has opened it, so that the peer of a data-only call without hub ends at
// once instead of when ICE fails.
func TestHangUpBeforeSCTP(t *testing.T) {
	caller := loopbackOptions()
	caller.Media.NoVideo, caller.Media.NoAudio = true, true
	caller.SendFiles = []string{filepath.Join(t.TempDir(), "gone.bin")}
	answerer := loopbackOptions()
	answerer.Media.NoVideo, answerer.Media.NoAudio = true, true
	answerer.ReceiveDir = t.TempDir()
	answer := func(ctx context.Context, setup Setup, sig Signaler) (*Report, error) {
		return Run(ctx, answerer, setup, lostHangUps{pipeSignaler: sig.(*pipeSignaler)}, IO{})
	}
	crep, arep, cerr, aerr := runPairThrough(t, caller, IO{}, answer, func(p *pipeSignaler) Signaler { return lostHangUps{pipeSignaler: p} })
	if !errors.Is(cerr, ErrCheckFailed) || crep == nil || crep.EndReason != EndTransfersDone {
		t.Fatalf("caller: %v, report %+v; want a failed transfer", cerr, crep)
	}
	if aerr != nil || arep == nil || arep.EndReason != EndPeerHungUp {
		t.Fatalf("answerer: %v, report %+v; want %q", aerr, arep, EndPeerHungUp)
	}
}

// TestCallInterruptedBeforeConnect: a caller stopped (SIGINT) while its
// offer waits for an answer ends as interrupted, and says so, as a call
// that could not be set up.
func TestCallInterruptedBeforeConnect(t *testing.T) {
	a, b := newPipe(true)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		// bob gets the offer and never answers; then alice is stopped.
		for {
			select {
			case sig := <-b.Signals():
				if sig.Description != nil {
					cancel()
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	rep, err := Run(ctx, loopbackOptions(), Setup{Mode: "test", Self: "alice", Peer: "bob", Caller: true}, a, IO{})
	if !errors.Is(err, ErrSetup) || !strings.Contains(err.Error(), "interrupted before the call connected") {
		t.Fatalf("Run = %v, want ErrSetup saying it was interrupted before connecting", err)
	}
	if rep == nil || rep.EndReason != EndInterrupted || rep.OK {
		t.Errorf("report %+v, want end reason %q and not ok", rep, EndInterrupted)
	}
}

func TestPeerSendsMedia(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
	for _, tt := range []struct {
		name, sdp string
		want      bool
	}{
		{"sendrecv video", head + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendrecv\r\n", true},
		{"sendonly audio", head + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\n", true},
		{"no direction: sendrecv", head + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", true},
		{"recvonly and inactive", head + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=inactive\r\n", false},
		{"rejected", head + "m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=sendrecv\r\n", false},
		{"data only", head + "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n", false},
		{"unparsable", "not sdp", true},
	} {
		if got := peerSendsMedia(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: tt.sdp}); got != tt.want {
			t.Errorf("%s: peerSendsMedia = %v, want %v", tt.name, got, tt.want)
		}
	}
}
