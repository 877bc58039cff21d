//go:build mediadevices

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rtckit/rtckit/call"
	"github.com/rtckit/rtckit/internal/testenv"
)

// captureBuild builds, once, rtckit with the mediadevices tag next to the
// binary TestMain built (and removes).
var captureBuild = sync.OnceValues(func() (string, error) {
	if err := exec.Command("pkg-config", "--exists", "vpx").Run(); err != nil {
		return "", fmt.Errorf("%w: pkg-config finds no libvpx (libvpx-dev): %v", errNoCaptureBuild, err)
	}
	bin := filepath.Join(filepath.Dir(rtckitBin), "rtckit-mediadevices")
	out, err := exec.Command("go", "build", "-tags", "mediadevices", "-o", bin, "..").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build -tags mediadevices: %v: %s", err, out)
	}
	return bin, nil
})

// errNoCaptureBuild marks a missing prerequisite of the capture build.
var errNoCaptureBuild = errors.New("cannot build rtckit with -tags mediadevices")

// captureBin returns the rtckit built with the mediadevices tag.
func captureBin(t *testing.T) string {
	t.Helper()
	testenv.RequireProgram(t, "pkg-config")
	bin, err := captureBuild()
	if errors.Is(err, errNoCaptureBuild) {
		testenv.Require(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestCallCaptureTestSource calls, through `signal serve`, from an rtckit
// built with the mediadevices tag that sends the generated test source
// (--capture test) to a receiver that records: the receiver gets VP8 video
// frames and Opus audio that ffprobe accepts, and the sender's report
// counts the packets of both tracks.
func TestCallCaptureTestSource(t *testing.T) {
	testenv.RequireProgram(t, "ffprobe")
	bin := captureBin(t)
	hub := startHub(t)
	rec := t.TempDir()
	bob := startCall(t, "--hub", hub, "--as", "bob", "--answer", "--wait", "20s", "--include-loopback",
		"--no-video", "--no-audio", "--record", rec, "--min-frames", "30")
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	alice := startCallCmd(t, exec.CommandContext(ctx, bin, "--json", "call", "--hub", hub, "--as", "alice",
		"--to", "bob", "--wait", "10s", "--include-loopback", "--capture", call.CaptureTest, "--duration", "3s"), cancel)

	code, rep := alice.wait(t)
	if rep == nil || code != 0 || !rep.OK {
		t.Fatalf("alice: exit %d, report %+v; stderr: %s", code, rep, alice.stderr.String())
	}
	bcode, brep := bob.wait(t)
	if brep == nil || bcode != 0 || !brep.OK {
		t.Fatalf("bob: exit %d, report %+v; stderr: %s", bcode, brep, bob.stderr.String())
	}
	if len(brep.Checks) != 1 || !brep.Checks[0].OK {
		t.Errorf("bob: checks %+v, want min-frames passed", brep.Checks)
	}
	for _, want := range []struct{ kind, codec, ffprobe string }{
		{"video", "video/VP8", "vp8"},
		{"audio", "audio/opus", "opus"},
	} {
		in, ok := track(brep, "in", want.kind)
		if !ok || !strings.EqualFold(in.Codec, want.codec) || in.Frames == 0 || in.Packets == 0 {
			t.Errorf("bob: received %s %+v, want %s frames", want.kind, in, want.codec)
			continue
		}
		// The sender's captured track with the SSRC bob received.
		var out *call.TrackReport
		for i, tr := range rep.Tracks {
			if tr.Direction == "out" && tr.SSRC == in.SSRC {
				out = &rep.Tracks[i]
			}
		}
		if out == nil || out.Packets == 0 || out.Bytes == 0 {
			t.Errorf("alice: sent %s (SSRC %d) %+v, want packets", want.kind, in.SSRC, out)
		}
		if in.Recording == "" || filepath.Dir(in.Recording) != rec {
			t.Errorf("bob: %s recording %q, want a file in %s", want.kind, in.Recording, rec)
			continue
		}
		probe := ffprobeOK(t, in.Recording)
		codec, frames, _ := strings.Cut(probe, ",")
		if n, err := strconv.Atoi(frames); codec != want.ffprobe || err != nil || n == 0 {
			t.Errorf("bob: ffprobe %s: %q, want %s frames", filepath.Base(in.Recording), probe, want.ffprobe)
		}
		t.Logf("%s: %s", filepath.Base(in.Recording), probe)
	}
}
