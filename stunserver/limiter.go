package stunserver

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/rtckit/rtckit/internal/netaddr"
)

const (
	// maxLimiterEntries bounds the per-source rate limit table. A flood of
	// spoofed sources can fill it; see limiter.allow for what happens then.
	maxLimiterEntries = 16384
	// limiterSweepInterval is how often a full table may be swept for idle
	// entries, so that a flood does not turn every request into a full scan.
	limiterSweepInterval = time.Second
)

// limiter is a per-source token bucket rate limiter with a bounded table.
// It is safe for concurrent use.
type limiter struct {
	limit rate.Limit
	burst int
	max   int
	// idleAfter is how long an entry takes to refill its bucket completely;
	// an entry idle that long is indistinguishable from a new one and can be
	// evicted without changing any decision.
	idleAfter time.Duration
	now       func() time.Time

	mu        sync.Mutex
	entries   map[netip.Addr]*limiterEntry
	lastSweep time.Time
}

type limiterEntry struct {
	bucket *rate.Limiter
	seen   time.Time
}

// newLimiter returns a limiter allowing perSecond requests per source with
// the given burst. now may be nil for the wall clock.
func newLimiter(perSecond float64, burst, maxEntries int, now func() time.Time) *limiter {
	if now == nil {
		now = time.Now
	}
	burst = max(burst, 1)
	idle := time.Duration(float64(burst) / perSecond * float64(time.Second))
	idle = max(idle, time.Second)
	return &limiter{
		limit:     rate.Limit(perSecond),
		burst:     burst,
		max:       max(maxEntries, 1),
		idleAfter: idle,
		now:       now,
		entries:   make(map[netip.Addr]*limiterEntry),
	}
}

// allow reports whether one more request from ip may be answered now.
//
// When the table is full even after evicting idle entries, an arbitrary
// entry is evicted: the server stays available to new clients, and a
// spoofing flood can at worst reset one source's bucket, which still bounds
// what any one victim receives.
func (l *limiter) allow(ip netip.Addr) bool {
	key := netaddr.SourceKey(ip) // IPv6 sources are limited by /64
	now := l.now()

	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[key]
	if !ok {
		if len(l.entries) >= l.max {
			l.makeRoom(now)
		}
		e = &limiterEntry{bucket: rate.NewLimiter(l.limit, l.burst)}
		l.entries[key] = e
	}
	e.seen = now
	return e.bucket.AllowN(now, 1)
}

// makeRoom frees at least one table slot. The caller holds l.mu.
func (l *limiter) makeRoom(now time.Time) {
	if now.Sub(l.lastSweep) >= limiterSweepInterval {
		l.lastSweep = now
		for k, e := range l.entries {
			if now.Sub(e.seen) >= l.idleAfter {
				delete(l.entries, k)
			}
		}
	}
	for k := range l.entries {
		if len(l.entries) < l.max {
			break
		}
		delete(l.entries, k)
	}
}

// size returns the number of tracked sources.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}
