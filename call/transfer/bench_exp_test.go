package transfer

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/rtckit/rtckit/internal/pcpair"
)

func expAPI(tb testing.TB) *webrtc.API {
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(s string) bool { return s == "lo" })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if v := os.Getenv("RB"); v != "" {
		n, _ := strconv.Atoi(v)
		se.SetSCTPMaxReceiveBufferSize(uint32(n))
	}
	if os.Getenv("ZC") != "" {
		se.EnableSCTPZeroChecksum(true)
	}
	if v := os.Getenv("MINCWND"); v != "" {
		n, _ := strconv.Atoi(v)
		se.SetSCTPMinCwnd(uint32(n))
	}
	if v := os.Getenv("CASTEP"); v != "" {
		n, _ := strconv.Atoi(v)
		se.SetSCTPCwndCAStep(uint32(n))
	}
	if v := os.Getenv("FASTRTX"); v != "" {
		n, _ := strconv.Atoi(v)
		se.SetSCTPFastRtxWnd(uint32(n))
	}
	me := &webrtc.MediaEngine{}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me))
}

func BenchmarkExp(b *testing.B) {
	size := 32 << 20
	src, dst := b.TempDir(), b.TempDir()
	if v := os.Getenv("DST"); v != "" {
		dst = v
	}
	writeRandom(b, src, "f", size)
	p := pcpair.NewAPI(b, expAPI(b))
	ctx := context.Background()
	done := make(chan error, 1)
	rx := &Receiver{Dir: dst, Done: func(r Received, err error) {
		if err == nil {
			err = os.Remove(r.Path)
		}
		done <- err
	}}
	p.Handle(func(dc *webrtc.DataChannel) { rx.Accept(ctx, dc) })
	var opts SendOptions
	if v := os.Getenv("HW"); v != "" {
		n, _ := strconv.Atoi(v)
		opts.HighWater = uint64(n)
		opts.LowWater = uint64(n / 4)
	}
	b.SetBytes(int64(size))
	drops0 := rcvbufErrors()
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		res, err := Send(ctx, p.A, filepath.Join(src, "f"), opts)
		if err != nil || !res.OK {
			b.Fatal(res, err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/1e6/float64(b.N)/float64(size>>20), "cpu-ms/MiB")
	b.ReportMetric(float64(rcvbufErrors()-drops0)/float64(b.N), "drops/op")
}

func cpuTime() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func rcvbufErrors() int64 {
	data, _ := os.ReadFile("/proc/net/snmp")
	lines := strings.Split(string(data), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		if strings.HasPrefix(lines[i], "Udp:") {
			k, v := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			for j := range k {
				if k[j] == "RcvbufErrors" {
					n, _ := strconv.ParseInt(v[j], 10, 64)
					return n
				}
			}
		}
	}
	return 0
}
