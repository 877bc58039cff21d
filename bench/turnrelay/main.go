// Command turnrelay measures TURN relay throughput of `rtckit turn serve`
// and coturn on loopback: a pion TURN client allocates a relay and keeps a
// window of datagrams in flight to a UDP echo peer, through the relay and
// back, for a fixed time. It also runs coturn's own turnutils_uclient
// against both servers as a compatibility and latency check.
// bench/turnrelay.sh builds rtckit and runs it.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pion/turn/v5"
	"github.com/rtckit/rtckit/internal/coturn"
)

const (
	user, pass = "bench", "bench-password"
	payload    = 1000
	window     = 64
)

func main() {
	bin := flag.String("rtckit", "rtckit", "path of the rtckit binary")
	runs := flag.Int("runs", 3, "runs per server")
	dur := flag.Duration("duration", 3*time.Second, "length of one throughput run")
	flag.Parse()
	if err := run(*bin, *runs, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "turnrelay:", err)
		os.Exit(1)
	}
}

type result struct {
	msgsPerSec float64
	mbitPerSec float64
	lossPct    float64
}

func run(bin string, runs int, dur time.Duration) error {
	ctx := context.Background()
	lo := netip.MustParseAddr("127.0.0.1")
	cport, err := coturn.FreePortPair(lo)
	if err != nil {
		return err
	}
	ct, err := coturn.Start(ctx, coturn.Config{ListenIPs: []netip.Addr{lo}, Port: cport, Users: []string{user + ":" + pass}, AllowLoopbackPeers: true,
		Extra: []string{"--no-tcp-relay"}})
	if err != nil {
		return err
	}
	defer ct.Close()
	rport, err := coturn.FreePortPair(lo)
	if err != nil {
		return err
	}
	stop, err := startTurnServe(bin, rport)
	if err != nil {
		return err
	}
	defer stop()

	servers := []struct {
		name string
		addr string
	}{{"rtckit turn serve", fmt.Sprintf("127.0.0.1:%d", rport)}, {"coturn 4.6", fmt.Sprintf("127.0.0.1:%d", cport)}}
	fmt.Printf("| server | datagrams/s (median) | Mbit/s | loss | turnutils_uclient -n 50 -m 2: loss, avg RTT |\n| --- | ---: | ---: | ---: | --- |\n")
	for _, s := range servers {
		var rs []result
		for range runs {
			r, err := throughput(ctx, s.addr, dur)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			rs = append(rs, r)
		}
		slices.SortFunc(rs, func(a, b result) int { return int(a.msgsPerSec - b.msgsPerSec) })
		m := rs[len(rs)/2]
		uc, err := uclient(ctx, s.addr)
		if err != nil {
			uc = "failed: " + err.Error()
		}
		fmt.Printf("| %s | %.0f | %.0f | %.2f%% | %s |\n", s.name, m.msgsPerSec, m.mbitPerSec, m.lossPct, uc)
	}
	return nil
}

// startTurnServe runs `rtckit turn serve` and waits for its listening line.
func startTurnServe(bin string, port int) (func(), error) {
	cmd := exec.Command(bin, "--json", "turn", "serve", "--listen", "127.0.0.1", "--port", strconv.Itoa(port),
		"--tcp=false", "--user", user+":"+pass, "--allow-loopback-peers", "--quota", "0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ready <- sc.Scan()
		for sc.Scan() {
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			stop()
			return nil, errors.New("rtckit turn serve exited before listening")
		}
	case <-time.After(10 * time.Second):
		stop()
		return nil, errors.New("rtckit turn serve did not start")
	}
	return stop, nil
}

// throughput allocates a relay on server and keeps window datagrams in
// flight to an echo peer for dur.
func throughput(ctx context.Context, server string, dur time.Duration) (result, error) {
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return result{}, err
	}
	defer peer.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := peer.ReadFromUDP(buf)
			if err != nil {
				return
			}
			_, _ = peer.WriteToUDP(buf[:n], from)
		}
	}()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	defer conn.Close()
	client, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: server, TURNServerAddr: server, Conn: conn, Username: user, Password: pass})
	if err != nil {
		return result{}, err
	}
	defer client.Close()
	if err := client.Listen(); err != nil {
		return result{}, err
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	relay, err := client.AllocateWithContext(actx)
	if err != nil {
		return result{}, err
	}
	defer relay.Close()
	credits := make(chan struct{}, window)
	for range window {
		credits <- struct{}{}
	}
	received := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			_ = relay.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if _, _, err := relay.ReadFrom(buf); err != nil {
				return
			}
			received++
			select {
			case credits <- struct{}{}:
			default:
			}
		}
	}()
	msg := make([]byte, payload)
	sent := 0
	start := time.Now()
	deadline := start.Add(dur)
	for time.Now().Before(deadline) {
		select {
		case <-credits:
		case <-time.After(100 * time.Millisecond):
			credits <- struct{}{} // a datagram was lost: free its slot
			continue
		}
		binary.BigEndian.PutUint64(msg, uint64(sent))
		if _, err := relay.WriteTo(msg, peer.LocalAddr()); err != nil {
			return result{}, err
		}
		sent++
	}
	elapsed := time.Since(start)
	<-done
	return result{
		msgsPerSec: float64(received) / elapsed.Seconds(),
		mbitPerSec: float64(received*payload*8) / elapsed.Seconds() / 1e6,
		lossPct:    100 * float64(sent-received) / float64(sent),
	}, nil
}

var (
	lostRe = regexp.MustCompile(`Total lost packets (\d+) \(([\d.]+)%\)`)
	rttRe  = regexp.MustCompile(`Average round trip delay ([\d.]+) ms`)
)

// uclient runs coturn's turnutils_uclient through server with its peer tool.
func uclient(ctx context.Context, server string) (string, error) {
	host, port, _ := net.SplitHostPort(server)
	probe, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return "", err
	}
	peerPort := probe.LocalAddr().(*net.UDPAddr).Port
	_ = probe.Close()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	p := exec.CommandContext(ctx, "turnutils_peer", "-L", "127.0.0.1", "-p", strconv.Itoa(peerPort))
	if err := p.Start(); err != nil {
		return "", err
	}
	defer func() { _ = p.Process.Kill(); _ = p.Wait() }()
	out, err := exec.CommandContext(ctx, "turnutils_uclient", "-u", user, "-w", pass, "-e", "127.0.0.1",
		"-r", strconv.Itoa(peerPort), "-n", "50", "-m", "2", "-p", port, host).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, lastLine(string(out)))
	}
	lost, rtt := lostRe.FindStringSubmatch(string(out)), rttRe.FindStringSubmatch(string(out))
	if lost == nil || rtt == nil {
		return "", errors.New("unexpected output: " + lastLine(string(out)))
	}
	return fmt.Sprintf("%s lost (%s%%), %s ms", lost[1], lost[2], rtt[1]), nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
