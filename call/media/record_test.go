package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rtckit/rtckit/internal/testenv"
)

// tmpfs mounts a tmpfs of the given size (a mount option such as "64k") on
// a temporary directory, unmounted when the test ends.
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		testenv.Require(t, errors.New("mounting a tmpfs needs root"))
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		testenv.Require(t, fmt.Errorf("mount tmpfs on %s: %w", dir, err))
	}
	// Cleanups run last first: this unmounts before TempDir removes dir.
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func TestRecordingOnAFullDiskKeepsWholeFrames(t *testing.T) {
	dir := tmpfs(t, "64k")
	stats, err := runReceiver(t, true, flatten(clipPackets(t, true, ClipFrames)), ReceiveOptions{RecordDir: dir})
	if !errors.Is(err, ErrRecord) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Run returned %v, want ErrRecord and ENOSPC", err)
	}
	rec := stats.Recording
	if rec.Error == "" || rec.Path == "" || rec.Frames == 0 || rec.Frames >= ClipFrames {
		t.Fatalf("recording %+v", rec)
	}
	data, err := os.ReadFile(rec.Path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != rec.Bytes {
		t.Errorf("file has %d bytes, stats say %d", len(data), rec.Bytes)
	}
	if n := binary.LittleEndian.Uint32(data[24:]); uint64(n) != rec.Frames {
		t.Errorf("IVF header counts %d frames, %d were recorded", n, rec.Frames)
	}
	if n := ffprobeInt(t, rec.Path, "nb_read_frames", "-count_frames"); uint64(n) != rec.Frames { //nolint:gosec // small
		t.Errorf("ffprobe decodes %d frames, want %d", n, rec.Frames)
	}
}

func TestRecordingWithoutAWholeFrameIsRemoved(t *testing.T) {
	// One page: the IVF header fits, the 9 KB first keyframe does not.
	dir := tmpfs(t, "4k")
	stats, err := runReceiver(t, true, flatten(clipPackets(t, true, 3)), ReceiveOptions{RecordDir: dir})
	if !errors.Is(err, ErrRecord) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Run returned %v, want ErrRecord and ENOSPC", err)
	}
	if rec := stats.Recording; rec.Path != "" || rec.Frames != 0 || rec.Error == "" {
		t.Errorf("recording %+v", rec)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestRecordingNamesAreNotReused(t *testing.T) {
	dir := t.TempDir()
	packets := flatten(clipPackets(t, false, 5))
	var paths []string
	for range 3 {
		stats, err := runReceiver(t, false, packets, ReceiveOptions{RecordDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, filepath.Base(stats.Recording.Path))
	}
	want := []string{"audio-clip__1_-4660.ogg", "audio-clip__1_-4660-2.ogg", "audio-clip__1_-4660-3.ogg"}
	for i := range want {
		if paths[i] != want[i] {
			t.Errorf("recording %d is %s, want %s", i, paths[i], want[i])
		}
	}
}

func TestRecordBase(t *testing.T) {
	tests := []struct {
		kind, id string
		ssrc     uint32
		want     string
	}{
		{"video", "5b7e8c1a-0f3e-4c4e-9d7e-2c1f5a6b7c8d", 42, "video-5b7e8c1a-0f3e-4c4e-9d7e-2c1f5a6b7c8d-42"},
		{"audio", "../../etc/passwd", 1, "audio-______etc_passwd-1"},
		{"audio", "", 7, "audio-7"},
		{"video", "{ünïcode}", 9, "video-__n_code_-9"},
	}
	for _, tt := range tests {
		if got := recordBase(tt.kind, tt.id, tt.ssrc); got != tt.want {
			t.Errorf("recordBase(%q, %q, %d) = %q, want %q", tt.kind, tt.id, tt.ssrc, got, tt.want)
		}
	}
}
