package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// clockTicks is Linux's USER_HZ, the unit of CPU times in /proc/PID/stat.
const clockTicks = 100

// treeCPU is the CPU time (user and system) that process pid and its
// descendants have used so far, from /proc; zero when /proc is unreadable.
func treeCPU(pid int) time.Duration {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	parent := map[int]int{}
	ticks := map[int]int64{}
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// The command name, in parentheses, may hold spaces: the fields
		// that follow it are state, ppid, …, utime (14th) and stime (15th).
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) < 13 {
			continue
		}
		p, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		pp, _ := strconv.Atoi(string(f[1]))
		u, _ := strconv.ParseInt(string(f[11]), 10, 64)
		s, _ := strconv.ParseInt(string(f[12]), 10, 64)
		parent[p], ticks[p] = pp, u+s
	}
	var total int64
	for p, t := range ticks {
		for q := p; q > 1; q = parent[q] {
			if q == pid {
				total += t
				break
			}
		}
	}
	return time.Duration(total) * time.Second / clockTicks
}
