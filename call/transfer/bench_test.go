package transfer

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pion/webrtc/v4"
	"github.com/rtckit/rtckit/internal/pcpair"
	"github.com/rtckit/rtckit/peer"
)

// benchFileSize is the file each benchmark iteration sends.
const benchFileSize = 32 << 20

// BenchmarkTransfer sends a file pion to pion in one process on loopback
// with Send and a Receiver: SHA-256 computed on both sides, the file
// written to disk and renamed into place, so MB/s is the whole transfer.
// Besides MB/s it reports the process's CPU time per MiB and the UDP
// datagrams the kernel dropped for full socket buffers (system-wide), where
// the platform tells them.
//
//   - page-window: pion's defaults and the browser page's flow-control
//     window (1 MiB, resume at 256 KiB).
//   - default: Send's defaults (4 MiB, resume at 1 MiB).
//   - tuned: Send's defaults and 4 MiB UDP socket buffers.
//   - batched: tuned, with datagrams moved in batches (recvmmsg/sendmmsg).
func BenchmarkTransfer(b *testing.B) {
	cases := []struct {
		name string
		cfg  peer.APIConfig
		opts SendOptions
	}{
		{"page-window", peer.APIConfig{}, SendOptions{HighWater: 1 << 20, LowWater: 256 << 10}},
		{"default", peer.APIConfig{}, SendOptions{}},
		{"tuned", peer.APIConfig{UDPSocketBuffer: 4 << 20}, SendOptions{}},
		{"batched", peer.APIConfig{UDPSocketBuffer: 4 << 20, BatchUDP: true}, SendOptions{}},
		{"batched-window", peer.APIConfig{UDPSocketBuffer: 4 << 20, BatchUDP: true, SCTPReceiveBuffer: 8 << 20}, SendOptions{HighWater: 16 << 20, LowWater: 4 << 20}},
		{"window", peer.APIConfig{UDPSocketBuffer: 4 << 20, SCTPReceiveBuffer: 8 << 20}, SendOptions{HighWater: 16 << 20, LowWater: 4 << 20}},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) { benchTransfer(b, bc.cfg, bc.opts) })
	}
}

func benchTransfer(b *testing.B, cfg peer.APIConfig, opts SendOptions) {
	src, dst := b.TempDir(), b.TempDir()
	path := filepath.Join(src, "f")
	writeRandom(b, src, "f", benchFileSize)
	p := pcpair.New(b, cfg)
	ctx := context.Background()
	done := make(chan error, 1)
	rx := &Receiver{Dir: dst, Done: func(r Received, err error) {
		if err == nil {
			err = os.Remove(r.Path)
		}
		done <- err
	}}
	p.Handle(func(dc *webrtc.DataChannel) { rx.Accept(ctx, dc) })
	b.SetBytes(benchFileSize)
	cpu, drops := processCPU(), udpDrops()
	b.ResetTimer()
	for range b.N {
		res, err := Send(ctx, p.A, path, opts)
		if err != nil || !res.OK {
			b.Fatalf("Send: %+v, %v", res, err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if c := processCPU(); c > 0 {
		b.ReportMetric(float64(c-cpu)/1e6/float64(b.N)/(benchFileSize>>20), "cpu-ms/MiB")
	}
	if d := udpDrops(); d >= 0 {
		b.ReportMetric(float64(d-drops)/float64(b.N), "udp-drops/op")
	}
}
