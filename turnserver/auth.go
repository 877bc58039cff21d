package turnserver

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/turn/v5"

	"github.com/rtckit/rtckit/peer"
)

// restVerdict is the outcome of checking a user name against TURN REST.
type restVerdict int

const (
	restValid     restVerdict = iota
	restMalformed             // not "expiry" or "expiry:user"
	restExpired               // expiry in the past
)

// parseRESTUsername splits a TURN REST user name into its expiry and user
// ID. The user ID is the part after the first colon, or the whole name when
// there is none, so that quotas follow the user rather than one credential.
func parseRESTUsername(username string, now time.Time) (userID string, v restVerdict) {
	ts, user, hasUser := strings.Cut(username, ":")
	expiry, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || expiry <= 0 {
		return "", restMalformed
	}
	userID = username
	if hasUser && user != "" {
		userID = user
	}
	if expiry < now.Unix() {
		return userID, restExpired
	}
	return userID, restValid
}

// authenticate is the server's pion AuthHandler: it looks the user name up
// among the static users first, then checks it as a TURN REST credential.
// It returns the user ID that allocations and quotas are keyed by, and the
// long-term key (MD5 of user:realm:password) that pion checks the
// MESSAGE-INTEGRITY with.
func (s *Server) authenticate(ra *turn.RequestAttributes) (userID string, key []byte, ok bool) {
	if ra.Realm != s.cfg.Realm {
		s.authFailed(ra, "wrong realm")
		return "", nil, false
	}
	if pass, found := s.cfg.Users[ra.Username]; found {
		return ra.Username, turn.GenerateAuthKey(ra.Username, ra.Realm, pass), true
	}
	if s.cfg.AuthSecret == "" {
		s.authFailed(ra, "unknown user")
		return "", nil, false
	}
	userID, v := parseRESTUsername(ra.Username, s.cfg.Now())
	switch v {
	case restMalformed:
		s.authFailed(ra, "unknown user, and not a TURN REST user name")
		return "", nil, false
	case restExpired:
		s.authFailed(ra, "expired TURN REST credential")
		return "", nil, false
	}
	return userID, turn.GenerateAuthKey(ra.Username, ra.Realm, peer.TURNRESTPassword(s.cfg.AuthSecret, ra.Username)), true
}

// authFailed counts and logs a refused credential; the user name is logged,
// the password never is (the server does not see it anyway).
func (s *Server) authFailed(ra *turn.RequestAttributes, reason string) {
	s.stats.authFailures.Add(1)
	s.log.Info("authentication refused", "user", ra.Username, "from", ra.SrcAddr, "method", ra.Method.String(), "reason", reason)
}

// onAuth receives pion's verdict on the MESSAGE-INTEGRITY of requests whose
// user name authenticate accepted: false means a wrong password. A TCP or
// TLS connection that carried an authenticated request is exempt from the
// authentication timeout from then on.
func (s *Server) onAuth(src, _ net.Addr, _, username, _, method string, verdict bool) {
	if verdict {
		s.authenticated(src)
		return
	}
	s.stats.authFailures.Add(1)
	s.log.Info("authentication refused", "user", username, "from", src, "method", method, "reason", "wrong password")
}

// quotaPendingTTL bounds how long an Allocate request that passed the quota
// check holds its slot without an allocation or an error being reported.
// pion reports one or the other before it handles the next request from the
// same connection, so this only guards against a lost event.
const quotaPendingTTL = 10 * time.Second

// quota counts allocations per user. An Allocate request that passes the
// check holds a pending slot until pion reports the allocation created (the
// slot becomes an allocation) or the request failed (the slot is freed), so
// that concurrent requests on different connections cannot overshoot the
// limit.
type quota struct {
	limit int // < 0: unlimited

	mu      sync.Mutex
	active  map[string]int         // user ID -> allocations
	allocs  map[string]string      // allocation key -> user ID
	pending map[string]pendingSlot // client address -> slot
	// released gets a value (if it has room) whenever an allocation is
	// forgotten, for Close to wait on.
	released chan struct{}
}

type pendingSlot struct {
	user string
	at   time.Time
}

func newQuota(limit int) *quota {
	return &quota{
		limit:    limit,
		active:   make(map[string]int),
		allocs:   make(map[string]string),
		pending:  make(map[string]pendingSlot),
		released: make(chan struct{}, 1),
	}
}

// admit reports whether user may create one more allocation from src, and
// if so holds a pending slot for it.
func (q *quota) admit(user string, src net.Addr, now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	held := q.active[user]
	for k, p := range q.pending {
		switch {
		case now.Sub(p.at) > quotaPendingTTL:
			delete(q.pending, k)
		case p.user == user && k != addrKey(src):
			held++
		}
	}
	if q.limit >= 0 && held >= q.limit {
		return false
	}
	q.pending[addrKey(src)] = pendingSlot{user: user, at: now}
	return true
}

// created turns src's pending slot into an allocation.
func (q *quota) created(key, user string, src net.Addr) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.pending, addrKey(src))
	if _, dup := q.allocs[key]; dup {
		return
	}
	q.allocs[key] = user
	q.active[user]++
}

// failed frees src's pending slot, if any.
func (q *quota) failed(src net.Addr) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.pending, addrKey(src))
}

// deleted forgets an allocation and reports whether it was known.
func (q *quota) deleted(key string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	user, ok := q.allocs[key]
	if !ok {
		return false
	}
	delete(q.allocs, key)
	if q.active[user]--; q.active[user] <= 0 {
		delete(q.active, user)
	}
	select {
	case q.released <- struct{}{}:
	default:
	}
	return true
}

// count returns the number of allocations held.
func (q *quota) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.allocs)
}

// addrKey names a client transport address with its protocol, so that a
// UDP and a TCP client on the same IP and port stay apart.
func addrKey(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.Network() + "/" + a.String()
}

// allocKey names an allocation by its 5-tuple.
func allocKey(src, dst net.Addr) string {
	return addrKey(src) + ">" + addrKey(dst)
}
