package signal

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitTimeout bounds every wait of these tests.
const waitTimeout = 5 * time.Second

// fakeConn is a Conn with a bounded queue that tests read.
type fakeConn struct {
	q      chan []byte
	closed chan int
}

func newFakeConn(size int) *fakeConn {
	return &fakeConn{q: make(chan []byte, size), closed: make(chan int, 1)}
}

func (f *fakeConn) Send(msg []byte) bool {
	select {
	case f.q <- msg:
		return true
	default:
		return false
	}
}

func (f *fakeConn) Close(code int, _ string) {
	select {
	case f.closed <- code:
	default:
	}
}

// next returns the next message sent to f.
func (f *fakeConn) next(t *testing.T) Message {
	t.Helper()
	select {
	case b := <-f.q:
		var m Message
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("bad message %s: %v", b, err)
		}
		return m
	case <-time.After(waitTimeout):
		t.Fatal("no message")
		return Message{}
	}
}

// until returns the next message of type typ, skipping others.
func (f *fakeConn) until(t *testing.T, typ string) Message {
	t.Helper()
	for {
		if m := f.next(t); m.Type == typ {
			return m
		}
	}
}

// empty asserts that nothing is queued.
func (f *fakeConn) empty(t *testing.T) {
	t.Helper()
	select {
	case b := <-f.q:
		t.Fatalf("unexpected message %s", b)
	default:
	}
}

func send(c *Client, s string) { c.Handle([]byte(s)) }

// join connects a fake client and registers name.
func join(t *testing.T, h *Hub, name string, queue int) (*Client, *fakeConn) {
	t.Helper()
	f := newFakeConn(queue)
	c, err := h.Connect(f)
	if err != nil {
		t.Fatal(err)
	}
	if m := f.next(t); m.Type != TypeID || m.ID != c.ID() {
		t.Fatalf("first message %+v, want id %d", m, c.ID())
	}
	if m := f.next(t); m.Type != TypeICEServers || m.Version != ProtocolVersion {
		t.Fatalf("second message %+v, want ice-servers", m)
	}
	send(c, `{"type":"username","name":"`+name+`"}`)
	return c, f
}

func TestHubUniqueNames(t *testing.T) {
	h := NewHub(HubConfig{})
	_, fa := join(t, h, "alice", 64)
	if m := fa.until(t, TypeUserList); !slices.Equal(m.Users, []string{"alice"}) {
		t.Fatalf("userlist %v", m.Users)
	}
	c2, f2 := join(t, h, "alice", 64)
	m := f2.next(t)
	if m.Type != TypeRejectUsername || m.Name != "alice1" || m.ID != c2.ID() {
		t.Fatalf("got %+v, want rejectusername alice1", m)
	}
	if m := f2.until(t, TypeUserList); !slices.Equal(m.Users, []string{"alice", "alice1"}) {
		t.Fatalf("userlist %v", m.Users)
	}
	// Renaming to a taken name keeps one's own unique name.
	send(c2, `{"type":"username","name":"alice"}`)
	if m := f2.next(t); m.Type != TypeRejectUsername || m.Name != "alice1" {
		t.Fatalf("got %+v, want rejectusername alice1", m)
	}
	if m := f2.until(t, TypeUserList); !slices.Equal(m.Users, []string{"alice", "alice1"}) {
		t.Fatalf("userlist %v", m.Users)
	}
	send(c2, `{"type":"username","name":"carol"}`)
	if m := f2.until(t, TypeUserList); !slices.Equal(m.Users, []string{"alice", "carol"}) {
		t.Fatalf("userlist after rename %v", m.Users)
	}
	_, f3 := join(t, h, "<bob>", 64)
	if m := f3.next(t); m.Type != TypeRejectUsername || m.Name != "bob" {
		t.Fatalf("got %+v, want rejectusername bob", m)
	}
	long := strings.Repeat("x", MaxNameLen)
	join(t, h, long, 64)
	_, f5 := join(t, h, long, 64)
	if m := f5.next(t); m.Name != strings.Repeat("x", MaxNameLen-1)+"1" {
		t.Fatalf("got %q", m.Name)
	}
}

// TestHubUserListPaced registers a thousand users at once: the user
// list goes out far fewer times than it changed (each list would
// otherwise be copied to every connection on every change), and the last
// one, held back until its turn, names everyone.
func TestHubUserListPaced(t *testing.T) {
	const users = 1000
	h := NewHub(HubConfig{MaxConnections: users + 1, Rate: -1, ResumeGrace: -1})
	_, watcher := join(t, h, "watcher", 4*users)
	for i := range users {
		join(t, h, fmt.Sprintf("user%04d", i), 4*users)
	}
	lists := 0
	for {
		m := watcher.until(t, TypeUserList)
		lists++
		if len(m.Users) == users+1 {
			break
		}
	}
	if lists > users/2 {
		t.Errorf("%d user lists for %d registrations: not paced", lists, users+1)
	}
	t.Logf("%d user lists for %d registrations", lists, users+1)
	h.Shutdown("done")
}

func TestHubSlowConsumerDropped(t *testing.T) {
	h := NewHub(HubConfig{Rate: -1})
	a, fa := join(t, h, "alice", 256)
	_, fslow := join(t, h, "slow", 4) // never read: its queue fills up
	_, fb := join(t, h, "bob", 256)
	for range 10 {
		send(a, `{"type":"message","text":"hi"}`)
	}
	select {
	case code := <-fslow.closed:
		if code != StatusPolicyViolation {
			t.Fatalf("slow client closed with %d", code)
		}
	case <-time.After(waitTimeout):
		t.Fatal("slow client not dropped")
	}
	// Everyone else got all ten messages.
	for _, f := range []*fakeConn{fa, fb} {
		for range 10 {
			if m := f.until(t, TypeMessage); m.Text != "hi" || m.Name != "alice" {
				t.Fatalf("got %+v", m)
			}
		}
	}
}

func TestHubRouting(t *testing.T) {
	h := NewHub(HubConfig{})
	a, fa := join(t, h, "alice", 64)
	b, fb := join(t, h, "bob", 64)
	fa.until(t, TypeUserList)
	fa.until(t, TypeUserList)
	fb.until(t, TypeUserList)

	send(a, `{"type":"video-offer","name":"mallory","target":"bob","sdp":{"type":"offer","sdp":"v=0"}}`)
	m := fb.next(t)
	if m.Type != TypeVideoOffer || m.Name != "alice" || string(m.SDP) != `{"type":"offer","sdp":"v=0"}` {
		t.Fatalf("bob got %+v", m)
	}
	send(b, `{"type":"hang-up","target":"nobody"}`)
	if m := fb.next(t); m.Type != TypeError || m.Code != CodeUnknownTarget || m.Target != "nobody" || m.Ref != TypeHangUp {
		t.Fatalf("got %+v", m)
	}
	// Broadcast without target: not echoed for call messages.
	send(a, `{"type":"hang-up"}`)
	if m := fb.next(t); m.Type != TypeHangUp || m.Name != "alice" {
		t.Fatalf("got %+v", m)
	}
	fa.empty(t)
}

func TestHubNotRegistered(t *testing.T) {
	h := NewHub(HubConfig{})
	f := newFakeConn(16)
	c, err := h.Connect(f)
	if err != nil {
		t.Fatal(err)
	}
	f.next(t)
	f.next(t)
	send(c, `{"type":"message","text":"x"}`)
	if m := f.next(t); m.Code != CodeNotRegistered || m.Ref != TypeMessage {
		t.Fatalf("got %+v", m)
	}
}

func TestHubMaxConnections(t *testing.T) {
	h := NewHub(HubConfig{MaxConnections: 2})
	c1, _ := h.Connect(newFakeConn(8))
	if _, err := h.Connect(newFakeConn(8)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Connect(newFakeConn(8)); err != ErrTooManyConnections {
		t.Fatalf("third connection: %v", err)
	}
	c1.Disconnect()
	c1.Disconnect() // idempotent
	if _, err := h.Connect(newFakeConn(8)); err != nil {
		t.Fatalf("after a disconnect: %v", err)
	}
}

func TestHubQueueFullAndResumeReplacesConnection(t *testing.T) {
	h := NewHub(HubConfig{QueueMessages: 2, QueueTTL: time.Minute})
	a, fa := join(t, h, "alice", 64)
	session := fa.until(t, TypeSession)
	b, fb := join(t, h, "bob", 64)
	fb.until(t, TypeUserList)

	a.Disconnect()
	for range 2 {
		send(b, `{"type":"hang-up","target":"alice"}`)
	}
	send(b, `{"type":"hang-up","target":"alice"}`)
	if m := fb.until(t, TypeError); m.Code != CodeQueueFull {
		t.Fatalf("got %+v", m)
	}

	// First resume.
	f2 := newFakeConn(64)
	a2, _ := h.Connect(f2)
	send(a2, `{"type":"resume","token":"`+session.Token+`"}`)
	s2 := f2.until(t, TypeSession)
	if s2.Name != "alice" || s2.Token == session.Token {
		t.Fatalf("session %+v", s2)
	}
	if m := f2.until(t, TypeHangUp); m.Name != "bob" {
		t.Fatalf("queued %+v", m)
	}
	f2.until(t, TypeHangUp)

	// The old token is spent; the new one moves the session and closes
	// the connection holding it.
	f3 := newFakeConn(64)
	a3, _ := h.Connect(f3)
	send(a3, `{"type":"resume","token":"`+session.Token+`"}`)
	if m := f3.until(t, TypeError); m.Code != CodeInvalidToken {
		t.Fatalf("got %+v", m)
	}
	f4 := newFakeConn(64)
	a4, _ := h.Connect(f4)
	send(a4, `{"type":"resume","token":"`+s2.Token+`"}`)
	f4.until(t, TypeSession)
	select {
	case code := <-f2.closed:
		if code != StatusReplaced {
			t.Fatalf("replaced connection closed with %d", code)
		}
	case <-time.After(waitTimeout):
		t.Fatal("replaced connection not closed")
	}
	a2.Disconnect() // the transport reports the end; alice stays on a4
	send(b, `{"type":"hang-up","target":"alice"}`)
	f4.until(t, TypeHangUp)

	// resume later than first is refused.
	send(a4, `{"type":"resume","token":"x"}`)
	if m := f4.until(t, TypeError); m.Code != CodeResumeLate {
		t.Fatalf("got %+v", m)
	}
	h.Shutdown("bye")
}

func TestHubShutdown(t *testing.T) {
	h := NewHub(HubConfig{})
	_, f := join(t, h, "alice", 64)
	h.Shutdown("maintenance")
	if m := f.until(t, TypeError); m.Code != CodeShutdown || m.Message != "maintenance" {
		t.Fatalf("got %+v", m)
	}
	if code := <-f.closed; code != StatusGoingAway {
		t.Fatalf("closed with %d", code)
	}
	if _, err := h.Connect(newFakeConn(4)); err != ErrClosed {
		t.Fatalf("Connect after Shutdown: %v", err)
	}
}

// memBus is an in-memory Bus between hubs: a directory of which hub holds
// which user, and one goroutine delivering asynchronously.
type memBus struct {
	mu   sync.Mutex
	dir  map[string]*Hub
	out  chan busMsg
	done chan struct{}
}

type busMsg struct {
	to     *Hub
	target string
	data   []byte
}

func newMemBus() *memBus {
	b := &memBus{dir: make(map[string]*Hub), out: make(chan busMsg, 16), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		for m := range b.out {
			m.to.Deliver(m.target, m.data)
		}
	}()
	return b
}

func (b *memBus) close() { close(b.out); <-b.done }

// node returns the Bus seen by hub self.
func (b *memBus) node(self func() *Hub) Bus { return busNode{b, self} }

type busNode struct {
	b    *memBus
	self func() *Hub
}

func (n busNode) Publish(target string, data []byte) bool {
	n.b.mu.Lock()
	to := n.b.dir[target]
	n.b.mu.Unlock()
	if to == nil || to == n.self() {
		return false
	}
	select {
	case n.b.out <- busMsg{to, target, data}:
		return true
	default:
		return false
	}
}

func TestHubBus(t *testing.T) {
	bus := newMemBus()
	defer bus.close()
	var a, b *Hub
	a = NewHub(HubConfig{Bus: bus.node(func() *Hub { return a })})
	b = NewHub(HubConfig{Bus: bus.node(func() *Hub { return b })})
	alice, fa := join(t, a, "alice", 64)
	_, fb := join(t, b, "bob", 64)
	bus.mu.Lock()
	bus.dir["alice"], bus.dir["bob"] = a, b
	bus.mu.Unlock()

	send(alice, `{"type":"video-offer","name":"eve","target":"bob","sdp":{"type":"offer","sdp":"v=0"}}`)
	if m := fb.until(t, TypeVideoOffer); m.Name != "alice" {
		t.Fatalf("bob got %+v", m)
	}
	send(alice, `{"type":"hang-up","target":"nobody"}`)
	if m := fa.until(t, TypeError); m.Code != CodeUnknownTarget {
		t.Fatalf("got %+v", m)
	}
	if b.Deliver("nobody", []byte(`{}`)) {
		t.Fatal("Deliver to an unknown user succeeded")
	}
	a.Shutdown("done")
	b.Shutdown("done")
}

// testClock is a hub clock that tests move by hand.
type testClock struct{ t time.Time }

func (c *testClock) now() time.Time          { return c.t }
func (c *testClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func withClock(h *Hub) *testClock            { c := &testClock{t: time.Now()}; h.now = c.now; return c }
func rateErrors(f *fakeConn) int {
	n := 0
	for {
		select {
		case b := <-f.q:
			if strings.Contains(string(b), CodeRateLimited) {
				n++
			}
		default:
			return n
		}
	}
}

// TestHubRateLimitedOncePerFlood: a client that keeps sending faster than
// its rate gets one rate-limited error, not one per refilled token; after
// it calmed down, a new flood gets a new one.
func TestHubRateLimitedOncePerFlood(t *testing.T) {
	h := NewHub(HubConfig{Rate: 20, Burst: 40})
	clock := withClock(h)
	c, f := join(t, h, "flood", 1024)
	f.until(t, TypeUserList)
	ping := `{"type":"ping","ts":1}`
	for range 100 { // the burst, then the flood
		send(c, ping)
	}
	for range 60 { // 100 messages/s against 20/s: a token now and then
		clock.advance(10 * time.Millisecond)
		send(c, ping)
	}
	if n := rateErrors(f); n != 1 {
		t.Fatalf("%d rate-limited errors for one flood, want 1", n)
	}
	clock.advance(1500 * time.Millisecond) // more than half the burst comes back
	for range 100 {
		send(c, ping)
	}
	if n := rateErrors(f); n != 1 {
		t.Fatalf("%d rate-limited errors for the second flood, want 1", n)
	}
}

// TestHubRateLimitedBurstOne: with a burst of one, a calm client gets a
// rate-limited error again for its next flood.
func TestHubRateLimitedBurstOne(t *testing.T) {
	h := NewHub(HubConfig{Rate: 20, Burst: 1})
	clock := withClock(h)
	c, f := join(t, h, "flood", 64)
	f.until(t, TypeUserList)
	for round := range 2 {
		for range 3 {
			send(c, `{"type":"ping","ts":1}`)
		}
		if m := f.until(t, TypeError); m.Code != CodeRateLimited {
			t.Fatalf("round %d: %+v", round, m)
		}
		clock.advance(200 * time.Millisecond) // the token comes back
	}
}

// TestHubNames: a rename that cleans up to the current name is still
// answered with the name held, and a numbered name is cut by characters.
func TestHubNames(t *testing.T) {
	h := NewHub(HubConfig{})
	c, f := join(t, h, "zed", 64)
	f.until(t, TypeUserList)
	send(c, `{"type":"username","name":" zed"}`)
	if m := f.next(t); m.Type != TypeRejectUsername || m.Name != "zed" {
		t.Fatalf("got %+v, want rejectusername zed", m)
	}
	long := strings.Repeat("é", MaxNameLen)
	_, f1 := join(t, h, long, 64)
	f1.until(t, TypeUserList)
	_, f2 := join(t, h, long, 64)
	want := strings.Repeat("é", MaxNameLen-1) + "1"
	if m := f2.until(t, TypeRejectUsername); m.Name != want {
		t.Fatalf("second %d×é got %q, want %q", MaxNameLen, m.Name, want)
	}
}

// TestHubUsersGaugeAfterExpiry: the users gauge drops a user whose resume
// grace period ended.
func TestHubUsersGaugeAfterExpiry(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	h := NewHub(HubConfig{Metrics: m, ResumeGrace: 20 * time.Millisecond})
	c, f := join(t, h, "alice", 64)
	f.until(t, TypeUserList)
	users := func() float64 {
		var d dto.Metric
		if err := m.users.Write(&d); err != nil {
			t.Fatal(err)
		}
		return d.GetGauge().GetValue()
	}
	b, bob := join(t, h, "bob", 64)
	bob.until(t, TypeUserList)
	if got := users(); got != 2 {
		t.Fatalf("users %v, want 2", got)
	}
	c.Disconnect()
	// A message for the away alice waits in her session; the session's
	// expiry at the end of the grace period tells bob it was not
	// delivered.
	send(b, `{"type":"hang-up","target":"alice"}`)
	if m := bob.until(t, TypeError); m.Code != CodeExpired {
		t.Fatalf("error %+v, want %s", m, CodeExpired)
	}
	// The expiry sets the gauge under the hub's lock, after that error:
	// routing another message takes the lock, so it waits for the gauge.
	send(b, `{"type":"hang-up","target":"alice"}`)
	if m := bob.until(t, TypeError); m.Code != CodeUnknownTarget {
		t.Fatalf("error %+v, want %s: alice's name outlived her session", m, CodeUnknownTarget)
	}
	if got := users(); got != 1 {
		t.Fatalf("users %v after alice's grace period, want 1", got)
	}
}

// TestHubNamesIgnoreCase: a name that differs from a taken one only in
// case or width is taken too, so that nobody can pose as another user;
// the holder itself may change its name's case.
func TestHubNamesIgnoreCase(t *testing.T) {
	h := NewHub(HubConfig{})
	c, f := join(t, h, "alice", 64)
	f.until(t, TypeUserList)
	for _, want := range []string{"Alice", "ALICE", "ａｌｉｃｅ"} {
		_, other := join(t, h, want, 64)
		if m := other.until(t, TypeRejectUsername); nameKey(m.Name) == nameKey("alice") {
			t.Errorf("%q registered as %q, which passes for alice", want, m.Name)
		}
	}
	send(c, `{"type":"username","name":"Alice"}`)
	for { // lists from the joins above may come first
		m := f.until(t, TypeUserList)
		if slices.Contains(m.Users, "Alice") && !slices.Contains(m.Users, "alice") {
			break
		}
	}
}

func TestNameKey(t *testing.T) {
	for _, same := range [][2]string{{"alice", "ALICE"}, {"alice", "ａｌｉｃｅ"}, {"Σίσυφος", "σίσυφοσ"}} {
		if nameKey(same[0]) != nameKey(same[1]) {
			t.Errorf("%q and %q differ", same[0], same[1])
		}
	}
	for _, diff := range [][2]string{{"alice", "alice1"}, {"bob", "b0b"}} {
		if nameKey(diff[0]) == nameKey(diff[1]) {
			t.Errorf("%q and %q are the same", diff[0], diff[1])
		}
	}
}
