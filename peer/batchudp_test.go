package peer

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/transport/v5/stdnet"
)

// listenBatch opens a batchConn on loopback of the given network.
func listenBatch(t *testing.T, network, ip string) *batchConn {
	t.Helper()
	host, err := stdnet.NewNet()
	if err != nil {
		t.Fatal(err)
	}
	c, err := batchNet{Net: host, buffer: 4 << 20}.ListenUDP(network, &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
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
