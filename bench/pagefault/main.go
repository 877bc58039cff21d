//go:build linux

// Command pagefault measures what this machine charges for a page fault:
// it maps fresh anonymous memory, writes one byte to each page (one fault
// each, as a growing Go heap takes them), then gives the pages back with
// MADV_DONTNEED (as Go's scavenger does) and touches them again. A call
// process takes tens of thousands of such faults while its heap grows to
// its garbage-collection goal, so their price is part of what a transfer
// costs (docs/benchmarks.md).
//
//	go run ./bench/pagefault -size 256MiB -rounds 3
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"
)

func main() {
	sizeMiB := flag.Int("size", 256, "MiB mapped per round")
	rounds := flag.Int("rounds", 3, "rounds to measure")
	flag.Parse()
	if *sizeMiB <= 0 || *rounds <= 0 {
		fmt.Fprintln(os.Stderr, "pagefault: -size and -rounds must be positive")
		os.Exit(2)
	}
	if err := measure(*sizeMiB<<20, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "pagefault:", err)
		os.Exit(1)
	}
}

// measure maps size bytes per round and reports the first-touch and the
// after-madvise fault costs.
func measure(size, rounds int) error {
	page := os.Getpagesize()
	pages := size / page
	fmt.Printf("page size %d B, %d pages per round\n", page, pages)
	for r := range rounds {
		mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			return fmt.Errorf("mmap: %w", err)
		}
		first := touch(mem, page)
		start := time.Now()
		madvErr := syscall.Madvise(mem, syscall.MADV_DONTNEED)
		release := time.Since(start)
		again := touch(mem, page)
		if err := errors.Join(madvErr, syscall.Munmap(mem)); err != nil {
			return err
		}
		fmt.Printf("round %d: first touch %.2f µs/fault, madvise(DONTNEED) %v, touch after madvise %.2f µs/fault\n",
			r+1, perPage(first, pages), release.Round(time.Microsecond), perPage(again, pages))
	}
	return nil
}

// touch writes one byte to every page of mem and returns the time it took.
func touch(mem []byte, page int) time.Duration {
	start := time.Now()
	for off := 0; off < len(mem); off += page {
		mem[off] = 1
	}
	return time.Since(start)
}

func perPage(d time.Duration, pages int) float64 {
	return float64(d.Nanoseconds()) / float64(pages) / 1e3
}
