package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtckit/rtckit/internal/testenv"
)

// makeMedia runs ffmpeg to make a short test file and returns its path.
func makeMedia(t *testing.T, name string, args ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	cmd := exec.CommandContext(t.Context(), "ffmpeg", append(append([]string{"-v", "error", "-y"}, args...), path)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v: %s", name, err, out)
	}
	return path
}

// TestCallMediaFiles sends files instead of the clip — VP9 in IVF, and
// H.264 Annex-B with Ogg Opus — and checks that the receiver gets and
// records that codec, and that ffprobe reads the recordings.
func TestCallMediaFiles(t *testing.T) {
	testenv.RequireProgram(t, "ffmpeg", "ffprobe")
	src := []string{"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=2"}
	vp9 := makeMedia(t, "clip.ivf", append(src, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-g", "30")...)
	h264 := makeMedia(t, "clip.h264", append(src, "-c:v", "libx264", "-profile:v", "baseline", "-g", "30", "-bsf:v", "h264_mp4toannexb", "-f", "h264")...)
	opus := makeMedia(t, "tone.ogg", "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "libopus", "-ar", "48000")
	cases := []struct {
		name, video, audio, codec string
	}{
		{"vp9 ivf", vp9, "", "video/VP9"},
		{"h264 and opus", h264, opus, "video/H264"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hub := startHub(t)
			rec := t.TempDir()
			bob := startCall(t, "--hub", hub, "--as", "bob", "--answer", "--wait", "20s", "--include-loopback",
				"--record", rec, "--no-video", "--no-audio")
			args := []string{"--hub", hub, "--as", "alice", "--to", "bob", "--wait", "10s", "--include-loopback",
				"--duration", "3s", "--video", tc.video}
			if tc.audio != "" {
				args = append(args, "--audio", tc.audio)
			} else {
				args = append(args, "--no-audio")
			}
			alice := startCall(t, args...)
			if code, rep := alice.wait(t); code != 0 || rep == nil || !rep.OK {
				t.Fatalf("alice: exit %d, report %+v; stderr %s", code, rep, alice.stderr.String())
			}
			code, rep := bob.wait(t)
			if code != 0 || rep == nil || !rep.OK {
				t.Fatalf("bob: exit %d, report %+v; stderr %s", code, rep, bob.stderr.String())
			}
			v, ok := track(rep, "in", "video")
			if !ok || !strings.EqualFold(v.Codec, tc.codec) || v.Frames < 30 || v.Recording == "" {
				t.Fatalf("bob: video %+v, want %s frames recorded", v, tc.codec)
			}
			t.Logf("%s: %s", filepath.Base(v.Recording), ffprobeOK(t, v.Recording))
			a, ok := track(rep, "in", "audio")
			if tc.audio != "" && (!ok || a.Frames < 50 || a.Recording == "") {
				t.Errorf("bob: audio %+v, want Opus frames recorded", a)
			}
			if tc.audio == "" && ok {
				t.Errorf("bob: received audio %+v with --no-audio on the sender", a)
			}
			if o, ok := track(rep, "out", "video"); ok {
				t.Errorf("bob sent video %+v with --no-video", o)
			}
		})
	}
}
