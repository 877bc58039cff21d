package transfer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/rtckit/rtckit/internal/pcpair"
	"github.com/rtckit/rtckit/internal/testenv"
	"github.com/rtckit/rtckit/peer"
	"go.uber.org/goleak"
)

// testTimeout bounds every wait of these tests.
const testTimeout = 30 * time.Second

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// outcome is what a Receiver's Done reported.
type outcome struct {
	res Received
	err error
}

// receiveInto makes p's b side receive every transfer into rx, and returns
// where the outcomes arrive.
func receiveInto(ctx context.Context, p *pcpair.Pair, rx *Receiver) <-chan outcome {
	out := make(chan outcome, 4)
	rx.Done = func(res Received, err error) { out <- outcome{res, err} }
	p.Handle(func(dc *webrtc.DataChannel) {
		if dc.Label() == Label {
			rx.Accept(ctx, dc)
		}
	})
	return out
}

// waitOutcome returns the next outcome.
func waitOutcome(t *testing.T, out <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-out:
		return o
	case <-time.After(testTimeout):
		t.Fatal("the receiver reported nothing")
		return outcome{}
	}
}

// writeRandom writes size random bytes to dir/name and returns them.
func writeRandom(t testing.TB, dir, name string, size int) []byte {
	t.Helper()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return data
}

// sha returns the lowercase hex SHA-256 of data.
func sha(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func TestSendReceive(t *testing.T) {
	for _, size := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3<<20 + 7} {
		t.Run(strings.ReplaceAll(time.Duration(size).String(), "ns", "B"), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			p := pcpair.New(t, peer.APIConfig{})
			src, dst := t.TempDir(), t.TempDir()
			data := writeRandom(t, src, "report.bin", size)
			var rxProgress []int64
			rx := &Receiver{Dir: dst, Progress: func(h Header, n int64) { rxProgress = append(rxProgress, n) }}
			out := receiveInto(ctx, p, rx)
			var last, calls int64
			res, err := Send(ctx, p.A, filepath.Join(src, "report.bin"), SendOptions{
				Progress: func(sent, total int64) {
					if sent < last || total != int64(size) {
						t.Errorf("progress (%d, %d) after %d", sent, total, last)
					}
					last, calls = sent, calls+1
				},
			})
			if err != nil || !res.OK {
				t.Fatalf("Send: %+v, %v", res, err)
			}
			if res.Size != int64(size) || res.SHA256 != sha(data) || res.PeerSHA256 != res.SHA256 || res.Name != "report.bin" {
				t.Errorf("Send result %+v", res)
			}
			if last != int64(size) || calls != max(1, int64((size+ChunkSize-1)/ChunkSize)) {
				t.Errorf("progress ended at %d after %d calls", last, calls)
			}
			o := waitOutcome(t, out)
			if o.err != nil || !o.res.OK || o.res.Size != int64(size) || o.res.SHA256 != sha(data) {
				t.Fatalf("received %+v, %v", o.res, o.err)
			}
			if want := filepath.Join(dst, "report.bin"); o.res.Path != want {
				t.Errorf("saved at %q, want %q", o.res.Path, want)
			}
			got, err := os.ReadFile(o.res.Path)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("saved file differs (%d bytes, %v)", len(got), err)
			}
			if len(rxProgress) == 0 || rxProgress[len(rxProgress)-1] != int64(size) {
				t.Errorf("receiver progress %v", rxProgress)
			}
			if names := testenv.DirNames(t, dst); len(names) != 1 {
				t.Errorf("receive dir holds %v, want just the file", names)
			}
		})
	}
}

func TestReceiveUniqueNames(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	p := pcpair.New(t, peer.APIConfig{})
	src, dst := t.TempDir(), t.TempDir()
	writeRandom(t, src, "a.txt", 100)
	out := receiveInto(ctx, p, &Receiver{Dir: dst})
	for _, name := range []string{"../a.txt", "a.txt", `..\..\a.txt`, ".."} {
		if _, err := Send(ctx, p.A, filepath.Join(src, "a.txt"), SendOptions{Name: name}); err != nil {
			t.Fatalf("Send as %q: %v", name, err)
		}
		if o := waitOutcome(t, out); o.err != nil {
			t.Fatalf("receive as %q: %v", name, o.err)
		}
	}
	want := []string{"a (1).txt", "a (2).txt", "a.txt", "file"}
	if got := testenv.DirNames(t, dst); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("receive dir holds %q, want %q", got, want)
	}
}

func TestTamperedTransfer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	p := pcpair.New(t, peer.APIConfig{})
	dst := t.TempDir()
	out := receiveInto(ctx, p, &Receiver{Dir: dst})
	data := bytes.Repeat([]byte("x"), 40000)
	h := Header{Name: "x.bin", Size: int64(len(data)), SHA256: sha([]byte("something else"))}
	dc, err := p.A.CreateDataChannel(Label, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := SendOn(ctx, dc, h, bytes.NewReader(data), SendOptions{})
	if !errors.Is(err, ErrRejected) || !errors.Is(err, ErrHashMismatch) || res.OK {
		t.Errorf("SendOn: %+v, %v; want ErrRejected and ErrHashMismatch", res, err)
	}
	if res.PeerSHA256 != sha(data) || res.PeerError != ackHashMismatch {
		t.Errorf("peer answered sha256 %q error %q", res.PeerSHA256, res.PeerError)
	}
	o := waitOutcome(t, out)
	if !errors.Is(o.err, ErrHashMismatch) || o.res.OK || o.res.Path != "" {
		t.Errorf("received %+v, %v; want ErrHashMismatch", o.res, o.err)
	}
	if names := testenv.DirNames(t, dst); len(names) != 0 {
		t.Errorf("receive dir holds %v after a failed transfer", names)
	}
}

func TestTooLarge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	p := pcpair.New(t, peer.APIConfig{})
	src, dst := t.TempDir(), t.TempDir()
	writeRandom(t, src, "big", 2<<20)
	out := receiveInto(ctx, p, &Receiver{Dir: dst, MaxSize: 1 << 20})
	res, err := Send(ctx, p.A, filepath.Join(src, "big"), SendOptions{})
	if !errors.Is(err, ErrRejected) || !errors.Is(err, ErrTooLarge) || res.PeerError != ackTooLarge {
		t.Errorf("Send: %+v, %v; want ErrRejected and ErrTooLarge", res, err)
	}
	o := waitOutcome(t, out)
	if !errors.Is(o.err, ErrTooLarge) || o.res.Size != 0 {
		t.Errorf("received %+v, %v; want ErrTooLarge before any data", o.res, o.err)
	}
	if names := testenv.DirNames(t, dst); len(names) != 0 {
		t.Errorf("receive dir holds %v after a rejection", names)
	}
}

func TestSendErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	p := pcpair.New(t, peer.APIConfig{})
	if _, err := Send(ctx, p.A, t.TempDir(), SendOptions{}); !errors.Is(err, ErrNotRegular) {
		t.Errorf("Send(directory) = %v, want ErrNotRegular", err)
	}
	if _, err := Send(ctx, p.A, filepath.Join(t.TempDir(), "missing"), SendOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Send(missing) = %v, want os.ErrNotExist", err)
	}
}

func TestSendCancelled(t *testing.T) {
	p := pcpair.New(t, peer.APIConfig{})
	src, dst := t.TempDir(), t.TempDir()
	writeRandom(t, src, "f", 3*DefaultHighWater)
	out := receiveInto(context.Background(), p, &Receiver{Dir: dst})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := Send(ctx, p.A, filepath.Join(src, "f"), SendOptions{
		Progress: func(sent, _ int64) {
			if sent >= 1<<20 {
				cancel()
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Send = %v, want context.Canceled", err)
	}
	if o := waitOutcome(t, out); !errors.Is(o.err, ErrClosed) {
		t.Errorf("received %+v, %v; want ErrClosed", o.res, o.err)
	}
	if names := testenv.DirNames(t, dst); len(names) != 0 {
		t.Errorf("receive dir holds %v after a cancelled transfer", names)
	}
}
