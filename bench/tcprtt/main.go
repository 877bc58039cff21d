// Command tcprtt measures this machine's floor for a relayed message: the
// round trip of a 512-byte message between two processes over loopback
// TCP, an echo server on one core and a client on the other, with a pause
// between messages so that the server's core goes idle as a hub's does
// between messages. What it reports (p50 to max) is what the kernel and the
// CPU's wake-ups cost before any hub code runs.
//
//	go build -o /tmp/tcprtt ./bench/tcprtt
//	taskset -c 1 /tmp/tcprtt -serve 127.0.0.1:19999 &
//	taskset -c 0 /tmp/tcprtt -connect 127.0.0.1:19999 -gap 2ms -duration 10s
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"time"
)

// size is the message size, that of the signaling benchmark's offers.
const size = 512

func main() {
	serve := flag.String("serve", "", "echo server address to listen on")
	connect := flag.String("connect", "", "echo server to measure against")
	gap := flag.Duration("gap", 2*time.Millisecond, "pause between messages (0: back to back)")
	duration := flag.Duration("duration", 10*time.Second, "how long to measure")
	flag.Parse()
	var err error
	switch {
	case *serve != "" && *connect == "":
		err = echo(*serve)
	case *connect != "" && *serve == "" && *gap >= 0 && *duration > 0:
		err = measure(*connect, *gap, *duration)
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcprtt:", err)
		os.Exit(1)
	}
}

// echo serves one connection, echoing what it reads with a read and a
// write per message, as a hub relays, until it closes.
func echo(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return err
		}
	}
}

// measure sends a message, waits for its echo, pauses for gap, and prints
// the round trips' distribution after duration.
func measure(addr string, gap, duration time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	msg := make([]byte, size)
	var rtt []time.Duration
	for end := time.Now().Add(duration); time.Now().Before(end); {
		start := time.Now()
		if err := c.SetDeadline(start.Add(5 * time.Second)); err != nil {
			return err
		}
		if _, err := c.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, msg); err != nil {
			return err
		}
		rtt = append(rtt, time.Since(start))
		if gap > 0 {
			time.Sleep(gap)
		}
	}
	slices.Sort(rtt)
	q := func(f float64) time.Duration { return rtt[int(f*float64(len(rtt)-1))].Round(time.Microsecond) }
	fmt.Printf("gap %v: %d round trips, p50 %v, p90 %v, p99 %v, p99.9 %v, max %v\n",
		gap, len(rtt), q(0.5), q(0.9), q(0.99), q(0.999), q(1))
	return nil
}
