package media

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtckit/rtckit/internal/testenv"
)

// runFFmpeg runs ffmpeg with args, quietly, failing the test on error.
func runFFmpeg(t testing.TB, args ...string) {
	t.Helper()
	testenv.RequireProgram(t, "ffmpeg")
	cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-v", "error", "-y"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// ffprobe runs ffprobe -v error on path with args and returns its output;
// anything on stderr (a complaint about the file) fails the test.
func ffprobe(t testing.TB, path string, args ...string) string {
	t.Helper()
	testenv.RequireProgram(t, "ffprobe")
	cmd := exec.Command("ffprobe", append(append([]string{"-v", "error"}, args...), path)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, stderr.String())
	}
	return string(out)
}

// ffprobeInt returns one integer stream entry (such as nb_read_packets) of
// the first stream of path.
func ffprobeInt(t testing.TB, path, entry string, args ...string) int {
	t.Helper()
	out := ffprobe(t, path, append(args, "-select_streams", "0", "-show_entries", "stream="+entry, "-of", "csv=p=0")...)
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("ffprobe %s: %s is %q", path, entry, out)
	}
	return n
}

func TestOpenFilesMadeByFFmpeg(t *testing.T) {
	testenv.RequireProgram(t, "ffmpeg", "ffprobe")
	dir := t.TempDir()
	video := []string{"-f", "lavfi", "-i", "testsrc2=size=128x96:rate=25", "-frames:v", "20", "-pix_fmt", "yuv420p"}
	tests := []struct {
		name  string
		file  string
		args  []string
		mime  string
		opts  OpenOptions
		frame time.Duration
	}{
		{"h264", "v.h264", append(video, "-c:v", "libx264", "-profile:v", "baseline", "-g", "10", "-bsf:v", "h264_metadata=aud=insert", "-f", "h264"),
			"video/H264", OpenOptions{FrameRate: 25}, 40 * time.Millisecond},
		{"h264 with b-frames", "b.264", append(video, "-c:v", "libx264", "-profile:v", "high", "-bf", "2", "-x264-params", "slices=2", "-f", "h264"),
			"video/H264", OpenOptions{FrameRate: 25}, 40 * time.Millisecond},
		{"vp9", "v9.ivf", append(video, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "10", "-f", "ivf"),
			"video/VP9", OpenOptions{}, 40 * time.Millisecond},
		{"av1", "av1.ivf", append(video, "-c:v", "libaom-av1", "-usage", "realtime", "-cpu-used", "8", "-g", "10", "-f", "ivf"),
			"video/AV1", OpenOptions{}, 40 * time.Millisecond},
		{"opus, many packets a page", "a.opus", []string{"-f", "lavfi", "-i", "sine=duration=2", "-c:a", "libopus", "-frame_duration", "10", "-f", "ogg"},
			"audio/opus", OpenOptions{}, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			runFFmpeg(t, append(tt.args, path)...)
			src, err := Open(path, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := src.Codec().MimeType; got != tt.mime {
				t.Errorf("codec %s, want %s", got, tt.mime)
			}
			frames, durs := readAll(t, src, 1000)
			want := ffprobeInt(t, path, "nb_read_packets", "-count_packets")
			if len(frames) != want {
				t.Errorf("read %d frames, ffprobe counts %d", len(frames), want)
			}
			for i, d := range durs {
				if d != tt.frame {
					t.Errorf("frame %d lasts %v, want %v", i, d, tt.frame)
					break
				}
			}
		})
	}
}

func TestClipFilesAsMade(t *testing.T) {
	ivf, ogg := filepath.Join("clip", "clip.ivf"), filepath.Join("clip", "clip.ogg")
	info := ffprobe(t, ivf, "-count_frames", "-show_entries", "stream=codec_name,profile,pix_fmt,width,height,r_frame_rate,nb_read_frames", "-of", "csv=p=0")
	if want := "vp8,0,320,240,yuv420p,30/1,90"; strings.TrimSpace(info) != want {
		t.Errorf("clip.ivf: ffprobe says %q, want %q", strings.TrimSpace(info), want)
	}
	info = ffprobe(t, ogg, "-count_packets", "-show_entries", "stream=codec_name,sample_rate,channels,nb_read_packets", "-of", "csv=p=0")
	if want := "opus,48000,1,150"; strings.TrimSpace(info) != want {
		t.Errorf("clip.ogg: ffprobe says %q, want %q", strings.TrimSpace(info), want)
	}
}

func TestReceiveFilesMadeByFFmpeg(t *testing.T) {
	testenv.RequireProgram(t, "ffmpeg", "ffprobe")
	dir := t.TempDir()
	video := []string{"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30", "-frames:v", "45", "-pix_fmt", "yuv420p", "-g", "15"}
	tests := []struct {
		name   string
		args   []string
		codec  webrtc.RTPCodecCapability
		verify bool // the depacketized frame equals the sent one
	}{
		{"h264.h264", append(video, "-c:v", "libx264", "-profile:v", "baseline", "-bsf:v", "h264_metadata=aud=insert", "-f", "h264"), codecH264, true},
		{"vp9.ivf", append(video, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-f", "ivf"), codecVP9, true},
		{"av1.ivf", append(video, "-c:v", "libaom-av1", "-usage", "realtime", "-cpu-used", "8", "-f", "ivf"), codecAV1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name)
			runFFmpeg(t, append(tt.args, path)...)
			src, err := Open(path, OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			v := NewVerifier()
			if _, err := v.AddSource(src); err != nil {
				t.Fatal(err)
			}
			if src, err = Open(path, OpenOptions{}); err != nil {
				t.Fatal(err)
			}
			packets := flatten(packetize(t, src, 45))
			track := newFakeTrack(len(packets))
			for _, p := range packets {
				track.packets <- p
			}
			close(track.packets)
			recDir := t.TempDir()
			r, err := newReceiver(track, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecParameters{RTPCodecCapability: tt.codec}, "v", 1, ReceiveOptions{RecordDir: recDir, Verify: v})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			s := r.Stats()
			if s.Frames != 45 || s.Keyframes != 3 || s.Recording.Frames != 45 {
				t.Errorf("%d frames, %d keyframes, %d recorded; want 45, 3, 45", s.Frames, s.Keyframes, s.Recording.Frames)
			}
			if tt.verify && s.Verify.Verified != 45 {
				t.Errorf("verified %d of 45 frames", s.Verify.Verified)
			}
			if n := ffprobeInt(t, s.Recording.Path, "nb_read_frames", "-count_frames"); n != 45 {
				t.Errorf("ffprobe decodes %d frames of the recording, want 45", n)
			}
		})
	}
}
