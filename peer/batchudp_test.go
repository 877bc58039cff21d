package peer

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/transport/v5/stdnet"
	"github.com/rtckit/rtckit/internal/testenv"
	"golang.org/x/net/ipv4"
)

// listenBatch opens a batchConn on loopback of the given network.
func listenBatch(t *testing.T, network, ip string) *batchConn {
	t.Helper()
	host, err := stdnet.NewNet()
	if err != nil {
		t.Fatal(err)
	}
	c, err := hostNet{Net: host, buffer: 4 << 20, batch: true}.ListenUDP(network, &net.UDPAddr{IP: net.ParseIP(ip)})
	testenv.Require(t, err) // an IPv6 loopback may be missing outside CI
	t.Cleanup(func() { _ = c.Close() })
	return c.(*batchConn)
}

// TestBatchConnCarriesEveryDatagram: datagrams of every size up to 8 KiB
// written by several goroutines at once arrive whole, once each, with the
// sender's address, over IPv4 and IPv6.
func TestBatchConnCarriesEveryDatagram(t *testing.T) {
	for _, fam := range []struct{ network, ip string }{{"udp4", "127.0.0.1"}, {"udp6", "::1"}} {
		t.Run(fam.network, func(t *testing.T) {
			a, b := listenBatch(t, fam.network, fam.ip), listenBatch(t, fam.network, fam.ip)
			dst := b.LocalAddr().(*net.UDPAddr).AddrPort()
			const writers, each = 4, 300
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := range each {
						p := datagram(w, i)
						if _, err := a.WriteToAddrPort(p, dst); err != nil {
							t.Errorf("write %d/%d: %v", w, i, err)
							return
						}
					}
				})
			}
			seen := map[string]bool{}
			buf := make([]byte, batchReadBuffer)
			_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
			for len(seen) < writers*each {
				n, from, err := b.ReadFromAddrPort(buf)
				if err != nil {
					t.Fatalf("after %d datagrams: %v", len(seen), err)
				}
				if from != a.LocalAddr().(*net.UDPAddr).AddrPort() {
					t.Fatalf("from %v, want %v", from, a.LocalAddr())
				}
				var w, i int
				if _, err := fmt.Sscanf(string(buf[:n]), "%d/%d:", &w, &i); err != nil || !bytes.Equal(buf[:n], datagram(w, i)) {
					t.Fatalf("damaged datagram of %d bytes", n)
				}
				key := fmt.Sprint(w, "/", i)
				if seen[key] {
					t.Fatalf("datagram %s twice", key)
				}
				seen[key] = true
			}
			wg.Wait()
		})
	}
}

// datagram is the i-th datagram of writer w: a header and a filler of a
// size that varies from a few bytes to 8 KiB.
func datagram(w, i int) []byte {
	head := fmt.Sprintf("%d/%d:", w, i)
	size := (i*7919 + w*104729) % (batchReadBuffer - len(head))
	return append([]byte(head), bytes.Repeat([]byte{byte(i)}, size)...)
}

// TestBatchConnClose: Close returns once queued datagrams are handed to the
// kernel, later writes fail with net.ErrClosed and a blocked reader returns.
func TestBatchConnClose(t *testing.T) {
	a, b := listenBatch(t, "udp4", "127.0.0.1"), listenBatch(t, "udp4", "127.0.0.1")
	dst := b.LocalAddr().(*net.UDPAddr).AddrPort()
	for i := range 50 {
		if _, err := a.WriteToAddrPort([]byte{byte(i)}, dst); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteToAddrPort([]byte("late"), dst); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after Close: %v, want net.ErrClosed", err)
	}
	buf := make([]byte, 16)
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range 50 {
		if n, _, err := b.ReadFromAddrPort(buf); err != nil || n != 1 || buf[0] != byte(i) {
			t.Fatalf("datagram %d: %q, %v", i, buf[:n], err)
		}
	}
	readErr := make(chan error, 1)
	go func() {
		_, _, err := b.ReadFromAddrPort(buf)
		readErr <- err
	}()
	_ = b.Close()
	select {
	case err := <-readErr:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("read on a closed conn: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a blocked read did not return after Close")
	}
}

// TestBatchConnWriteToRejectsOtherAddresses: WriteTo takes only UDP addresses.
func TestBatchConnWriteToRejectsOtherAddresses(t *testing.T) {
	a := listenBatch(t, "udp4", "127.0.0.1")
	if _, err := a.WriteTo([]byte("x"), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); err == nil {
		t.Error("WriteTo a TCP address succeeded")
	}
	if _, err := a.WriteToUDP([]byte("x"), net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:9"))); err != nil {
		t.Errorf("WriteToUDP: %v", err)
	}
}

// TestBatchConnSegmentsRuns: a queued burst of equal datagrams (full SCTP
// packets in DTLS) leaves in segmented sends where the platform has UDP
// GSO, and arrives whole and in order both at another batchConn (coalesced
// by GRO where available) and at a plain UDP socket, which sees separate
// datagrams.
func TestBatchConnSegmentsRuns(t *testing.T) {
	a, b := listenBatch(t, "udp4", "127.0.0.1"), listenBatch(t, "udp4", "127.0.0.1")
	plain, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = plain.Close() }()
	_ = plain.SetReadBuffer(4 << 20)
	const count, size = 400, 1228
	send := func(dst netip.AddrPort) {
		// One queued burst handed to the flusher's send at once, as when
		// the writer outpaces the system calls.
		ua := net.UDPAddrFromAddrPort(dst)
		burst := make([]ipv4.Message, count)
		for i := range burst {
			p := bytes.Repeat([]byte{byte(i)}, size)
			if i%50 == 49 {
				p = p[:100] // a short one ends a run
			}
			burst[i] = ipv4.Message{Buffers: [][]byte{p}, Addr: ua}
		}
		if err := a.send(burst); err != nil {
			t.Fatal(err)
		}
	}
	check := func(read func([]byte) (int, error)) {
		t.Helper()
		buf := make([]byte, groReadBuffer)
		for i := range count {
			n, err := read(buf)
			want := size
			if i%50 == 49 {
				want = 100
			}
			if err != nil || n != want || buf[0] != byte(i) || buf[n-1] != byte(i) {
				t.Fatalf("datagram %d: %d bytes starting %d, %v; want %d bytes of %d", i, n, buf[0], err, want, byte(i))
			}
		}
	}
	send(b.LocalAddr().(*net.UDPAddr).AddrPort())
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	check(func(p []byte) (int, error) { n, _, err := b.ReadFromAddrPort(p); return n, err })
	send(plain.LocalAddr().(*net.UDPAddr).AddrPort())
	_ = plain.SetReadDeadline(time.Now().Add(5 * time.Second))
	check(func(p []byte) (int, error) { n, _, err := plain.ReadFromUDPAddrPort(p); return n, err })
	t.Logf("segmented sends %d, coalesced reads %d", a.gsoSends.Load(), b.groReads.Load())
	if offloadSupported && (a.gsoSends.Load() == 0 || b.groReads.Load() == 0) {
		t.Errorf("segmented sends %d, coalesced reads %d: want both on Linux", a.gsoSends.Load(), b.groReads.Load())
	}
}

// refuseGSO is a batchIO whose path refuses segmented sends, as a device
// without checksum offload does (EIO).
type refuseGSO struct {
	batchIO
	refused int
}

func (r *refuseGSO) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	for i, m := range ms {
		if len(m.Buffers) > 1 {
			r.refused++
			n := 0
			if i > 0 {
				var err error
				if n, err = r.batchIO.WriteBatch(ms[:i], flags); err != nil {
					return n, err
				}
			}
			return n, &net.OpError{Op: "sendmmsg", Net: "udp", Err: os.NewSyscallError("sendmmsg", syscall.EIO)}
		}
	}
	return r.batchIO.WriteBatch(ms, flags)
}

// TestBatchConnFallsBackWithoutGSO: when the path refuses a segmented
// send, that run and every later datagram go out one by one, none lost.
func TestBatchConnFallsBackWithoutGSO(t *testing.T) {
	a, b := listenBatch(t, "udp4", "127.0.0.1"), listenBatch(t, "udp4", "127.0.0.1")
	fake := &refuseGSO{batchIO: a.io}
	a.io = fake
	ua := b.LocalAddr().(*net.UDPAddr)
	var burst []ipv4.Message
	for i := range 30 {
		size := 1000
		if i < 2 {
			size = 50 + i // two single datagrams before the first run
		}
		burst = append(burst, ipv4.Message{Buffers: [][]byte{bytes.Repeat([]byte{byte(i)}, size)}, Addr: ua})
	}
	if err := a.send(burst); err != nil {
		t.Fatal(err)
	}
	if offloadSupported && (fake.refused != 1 || a.gso) {
		t.Errorf("refused %d segmented sends, gso still %v; want one refusal and GSO off", fake.refused, a.gso)
	}
	buf := make([]byte, groReadBuffer)
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range 30 {
		n, _, err := b.ReadFromAddrPort(buf)
		if err != nil || n == 0 || buf[0] != byte(i) {
			t.Fatalf("datagram %d: %d bytes starting %d, %v", i, n, buf[0], err)
		}
	}
}

// scriptedReads is a batchIO whose reads return batches of three
// datagrams and record, per call, how many times a consumer had run.
type scriptedReads struct {
	batchIO
	consumed *atomic.Int64
	seen     []int64
}

func (s *scriptedReads) ReadBatch(ms []ipv4.Message, _ int) (int, error) {
	s.seen = append(s.seen, s.consumed.Load())
	for i := range 3 {
		ms[i].N = copy(ms[i].Buffers[0], []byte{byte(i)})
		ms[i].NN = 0
		ms[i].Addr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	}
	return 3, nil
}

// TestBatchConnYieldsBetweenBatches: on one processor, a goroutine made
// runnable by the datagrams of one batch (pion's next stage) runs before
// the reader takes the next batch from the socket.
func TestBatchConnYieldsBetweenBatches(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	b := listenBatch(t, "udp4", "127.0.0.1")
	var consumed atomic.Int64
	fake := &scriptedReads{batchIO: b.io, consumed: &consumed}
	b.io = fake
	b.gro = false
	buf := make([]byte, 16)
	ready := make(chan struct{}, 8)
	done := make(chan struct{})
	go func() { // the consumer: runs only when the reader lets it
		defer close(done)
		for range 2 {
			<-ready
			consumed.Add(1)
		}
	}()
	for i := range 6 {
		if _, _, err := b.ReadFromAddrPort(buf); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			ready <- struct{}{}
			ready <- struct{}{}
		}
	}
	<-done
	if len(fake.seen) != 2 || fake.seen[0] != 0 || fake.seen[1] == 0 {
		t.Fatalf("consumer runs seen by each batch read: %v; want [0 >0]", fake.seen)
	}
}

// TestBatchConnDeadlineSparesQueued: a deadline set between a write and
// Close (ICE does so as it closes a candidate) does not drop the queued
// datagrams; a writer that finds the queue full gives up at the deadline.
func TestBatchConnDeadlineSparesQueued(t *testing.T) {
	a, b := listenBatch(t, "udp4", "127.0.0.1"), listenBatch(t, "udp4", "127.0.0.1")
	dst := b.LocalAddr().(*net.UDPAddr).AddrPort()
	for i := range 3 {
		if _, err := a.WriteToAddrPort(bytes.Repeat([]byte{byte(i)}, 57-i*9), dst); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.SetDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 128)
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range 3 {
		if n, _, err := b.ReadFromAddrPort(buf); err != nil || n != 57-i*9 || buf[0] != byte(i) {
			t.Fatalf("datagram %d: %d bytes starting %d, %v", i, n, buf[0], err)
		}
	}

	c := listenBatch(t, "udp4", "127.0.0.1")
	c.wmu.Lock()
	for range batchQueueMax { // a queue the flusher has not taken yet
		c.queue = append(c.queue, ipv4.Message{Buffers: [][]byte{{0}}, Addr: b.LocalAddr()})
	}
	c.wmu.Unlock()
	_ = c.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := c.WriteToAddrPort([]byte{1}, dst); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("write to a full queue past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
}
