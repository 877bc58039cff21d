package signal

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// testHeartbeat makes a lost node expire within a few hundred
// milliseconds; slowHeartbeat makes sure that a test passes without any
// expiry.
const (
	testHeartbeat = 100 * time.Millisecond
	slowHeartbeat = time.Minute
)

// startNATS runs an embedded NATS server on a random loopback port, with
// no files, and stops it at the end of the test.
func startNATS(t *testing.T) string {
	t.Helper()
	return runNATS(t, -1).ClientURL()
}

// runNATS runs an embedded NATS server on a loopback port (-1: a random
// one) until it is shut down or the test ends.
func runNATS(t *testing.T, port int) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(waitTimeout) {
		t.Fatal("NATS server not ready")
	}
	return ns
}

// clusterNode is one signaling server joined to a cluster.
type clusterNode struct {
	srv     *Server
	ts      *httptest.Server
	cluster *Cluster
}

// startClusterNode serves a hub joined to the cluster at natsURL, its
// users republished every heartbeat; the server is shut down, then the
// cluster closed, at the end of the test.
func startClusterNode(t *testing.T, natsURL string, heartbeat time.Duration, cfg Config) *clusterNode {
	t.Helper()
	return startClusterNodeWith(t, ClusterConfig{URL: natsURL, Heartbeat: heartbeat}, cfg)
}

// startClusterNodeWith is startClusterNode with a cluster configuration;
// its name is "test".
func startClusterNodeWith(t *testing.T, cc ClusterConfig, cfg Config) *clusterNode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cc.Name = "test"
	cl, err := NewCluster(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Hub.Bus = cl
	s, err := NewServer(cfg)
	if err != nil {
		_ = cl.Close()
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		ts.Close()
		if err := cl.Close(); err != nil && !errors.Is(err, ErrCluster) {
			t.Errorf("Close: %v", err)
		}
	})
	if err := cl.Start(s.Hub()); err != nil {
		t.Fatal(err)
	}
	return &clusterNode{srv: s, ts: ts, cluster: cl}
}

func (n *clusterNode) url() string { return wsURL(n.ts, "/") }

func TestClusterCall(t *testing.T) {
	natsURL := startNATS(t)
	a := startClusterNode(t, natsURL, slowHeartbeat, Config{})
	b := startClusterNode(t, natsURL, slowHeartbeat, Config{})

	alice := classic(t, a.url(), "alice", nil)
	alice.userlist("alice")
	bob := classic(t, b.url(), "bob", nil)
	bob.userlist("alice", "bob")
	alice.userlist("alice", "bob")

	// A call across the hubs, each message with its sender's name set by
	// the sender's hub (spoofing ignored).
	alice.sendRaw(`{"type":"video-offer","name":"mallory","target":"bob","sdp":{"type":"offer","sdp":"v=0\r\n"}}`)
	if m := bob.until(TypeVideoOffer); m.Name != "alice" || string(m.SDP) != `{"type":"offer","sdp":"v=0\r\n"}` {
		t.Fatalf("offer %+v", m)
	}
	bob.sendRaw(`{"type":"video-answer","name":"mallory","target":"alice","sdp":{"type":"answer","sdp":"v=0\r\n"}}`)
	if m := alice.until(TypeVideoAnswer); m.Name != "bob" || string(m.SDP) != `{"type":"answer","sdp":"v=0\r\n"}` {
		t.Fatalf("answer %+v", m)
	}
	alice.sendRaw(`{"type":"new-ice-candidate","target":"bob","candidate":{"candidate":"candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host","sdpMid":"0"}}`)
	if m := bob.until(TypeNewICECandidate); m.Name != "alice" || string(m.Candidate) != `{"candidate":"candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host","sdpMid":"0"}` {
		t.Fatalf("candidate %+v", m)
	}
	bob.sendRaw(`{"type":"new-ice-candidate","target":"alice","candidate":null}`)
	if m := alice.until(TypeNewICECandidate); m.Name != "bob" || string(m.Candidate) != "null" {
		t.Fatalf("end of candidates %+v", m)
	}
	bob.sendRaw(`{"type":"hang-up","name":"mallory","target":"alice"}`)
	if m := alice.until(TypeHangUp); m.Name != "bob" {
		t.Fatalf("hang-up %+v", m)
	}

	// A target on no hub is still an error for its sender.
	alice.sendRaw(`{"type":"video-offer","target":"carol","sdp":{"type":"offer","sdp":""}}`)
	if m := alice.until(TypeError); m.Code != CodeUnknownTarget || m.Target != "carol" || m.Ref != TypeVideoOffer {
		t.Fatalf("got %+v", m)
	}

	// Chat without a target reaches every hub, the sender included.
	bob.sendRaw(`{"type":"message","text":"<b>hi</b>","date":7}`)
	for _, c := range []*tclient{alice, bob} {
		if m := c.until(TypeMessage); m.Name != "bob" || m.Text != "&lt;b&gt;hi&lt;/b&gt;" || m.Date != "7" {
			t.Fatalf("%s got %+v", c.name, m)
		}
	}

	// A name held on another hub is taken: the second alice is renamed,
	// and both hubs list all three.
	alice2 := classic(t, b.url(), "alice", nil)
	if m := alice2.until(TypeRejectUsername); m.Name != "alice1" {
		t.Fatalf("got %+v, want alice renamed alice1", m)
	}
	alice2.userlist("alice", "alice1", "bob")
	alice.userlist("alice", "alice1", "bob")
	alice2.sendRaw(`{"type":"hang-up","target":"alice"}`)
	if m := alice.until(TypeHangUp); m.Name != "alice1" {
		t.Fatalf("hang-up %+v", m)
	}

	// A hub shutting down takes its users off the other hubs' lists at
	// once (no heartbeat expiry needed).
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.srv.Shutdown(ctx) }()
	if m := alice.until(TypeError); m.Code != CodeShutdown {
		t.Fatalf("got %+v", m)
	}
	alice.closed()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	bob.userlist("alice1", "bob")
	bob.sendRaw(`{"type":"hang-up","target":"alice"}`)
	if m := bob.until(TypeError); m.Code != CodeUnknownTarget {
		t.Fatalf("got %+v", m)
	}
	// Its name is free again.
	again := classic(t, b.url(), "alice", nil)
	again.userlist("alice", "alice1", "bob")
}

func TestClusterNodeLost(t *testing.T) {
	natsURL := startNATS(t)
	a := startClusterNode(t, natsURL, testHeartbeat, Config{})
	b := startClusterNode(t, natsURL, testHeartbeat, Config{})
	alice := classic(t, a.url(), "alice", nil)
	alice.userlist("alice")
	bob := classic(t, b.url(), "bob", nil)
	bob.userlist("alice", "bob")
	alice.userlist("alice", "bob")

	// Node a loses NATS without a word: b drops its users when a's
	// heartbeats stop, a drops b's, and a's hub goes on alone.
	a.cluster.nc.Close()
	bob.userlist("bob")
	alice.userlist("alice")
	alice.sendRaw(`{"type":"ping","ts":1}`)
	alice.until(TypePong)
	bob.sendRaw(`{"type":"video-offer","target":"alice","sdp":{"type":"offer","sdp":""}}`)
	if m := bob.until(TypeError); m.Code != CodeUnknownTarget {
		t.Fatalf("got %+v", m)
	}
}

func TestClusterReconnect(t *testing.T) {
	ns := runNATS(t, -1)
	natsURL := ns.ClientURL()
	port := ns.Addr().(*net.TCPAddr).Port
	cc := ClusterConfig{URL: natsURL, Heartbeat: testHeartbeat, ReconnectWait: 20 * time.Millisecond}
	a := startClusterNodeWith(t, cc, Config{})
	b := startClusterNodeWith(t, cc, Config{})
	bob := classic(t, b.url(), "bob", nil)
	bob.userlist("bob")

	// NATS restarts; alice registers on a meanwhile. Both nodes
	// reconnect, and bob sees alice once they exchanged their lists.
	ns.Shutdown()
	ns.WaitForShutdown()
	alice := classic(t, a.url(), "alice", nil)
	alice.until(TypeUserList)
	runNATS(t, port)
	bob.userlist("alice", "bob")
	bob.sendRaw(`{"type":"video-offer","target":"alice","sdp":{"type":"offer","sdp":"v=0"}}`)
	if m := alice.until(TypeVideoOffer); m.Name != "bob" {
		t.Fatalf("offer %+v", m)
	}
}

func TestClusterAwayUserKeepsName(t *testing.T) {
	natsURL := startNATS(t)
	a := startClusterNode(t, natsURL, slowHeartbeat, Config{Hub: HubConfig{ResumeGrace: time.Minute, QueueTTL: time.Minute}})
	b := startClusterNode(t, natsURL, slowHeartbeat, Config{})
	alice := classic(t, a.url(), "alice", nil)
	sess := alice.until(TypeSession)
	bob := classic(t, b.url(), "bob", nil)
	bob.userlist("alice", "bob")
	if err := alice.ws.Close(websocket.StatusGoingAway, "network change"); err != nil {
		t.Fatal(err)
	}
	bob.userlist("bob")
	// Away alice still holds her name across the cluster, and messages
	// for her wait on her hub.
	bob.sendRaw(`{"type":"new-ice-candidate","target":"alice","candidate":{"candidate":"c1"}}`)
	carol := classic(t, b.url(), "alice", nil)
	if m := carol.until(TypeRejectUsername); m.Name != "alice1" {
		t.Fatalf("got %+v", m)
	}
	back := mustDial(t, a.url(), nil)
	back.until(TypeICEServers)
	back.sendRaw(`{"type":"resume","token":"` + sess.Token + `"}`)
	// The candidate was queued, or is still on its way: either way it
	// comes, and may come before the last user list.
	listed, got := false, false
	for !listed || !got {
		switch m := back.recv(); m.Type {
		case TypeUserList:
			listed = slices.Equal(m.Users, []string{"alice", "alice1", "bob"})
		case TypeNewICECandidate:
			if m.Name != "bob" || string(m.Candidate) != `{"candidate":"c1"}` {
				t.Fatalf("candidate %+v", m)
			}
			got = true
		}
	}
}

func TestClusterConfig(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"nats://127.0.0.1:4222", true},
		{"nats://user:pass@nats.example.net:4222", true},
		{"tls://nats.example.net", true},
		{"nats://a:4222,nats://b:4222", true},
		{"", false},
		{"http://nats.example.net", false},
		{"nats://", false},
		{"127.0.0.1:4222", false},
		{"nats://host/path", false},
		{"nats://host:4222,", false},
	} {
		if err := CheckClusterURL(tc.url); (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
			t.Errorf("CheckClusterURL(%q) = %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"default", true},
		{"eu-west_1", true},
		{"", false},
		{"a.b", false},
		{"a b", false},
		{"*", false},
	} {
		if err := CheckClusterName(tc.name); (err == nil) != tc.ok {
			t.Errorf("CheckClusterName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := NewCluster(ctx, ClusterConfig{URL: "nats://127.0.0.1:4222", Name: "a.b"}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("NewCluster with a bad name: %v", err)
	}
}

func TestClusterUnreachable(t *testing.T) {
	// A port nothing listens on: take a free one from a NATS server that
	// is then stopped.
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(waitTimeout) {
		t.Fatal("NATS server not ready")
	}
	url := ns.ClientURL()
	ns.Shutdown()
	ns.WaitForShutdown()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := NewCluster(ctx, ClusterConfig{URL: url, ConnectTimeout: time.Second}); !errors.Is(err, ErrCluster) {
		t.Fatalf("NewCluster = %v, want ErrCluster", err)
	}
}

// TestClusterNameRace plays a node, with raw NATS messages, that took a
// name at the same time as a local user: the lowest node id keeps it.
func TestClusterNameRace(t *testing.T) {
	natsURL := startNATS(t)
	b := startClusterNode(t, natsURL, slowHeartbeat, Config{})
	alice := classic(t, b.url(), "alice", nil)
	alice.userlist("alice")

	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	inbox, err := nc.SubscribeSync("rtckit.signal.test.node.0")
	if err != nil {
		t.Fatal(err)
	}
	// Node "0" sorts before every random node id.
	if err := nc.Publish("rtckit.signal.test.presence", []byte(`{"node":"0","seq":1,"users":["alice"],"ttl_ms":60000}`)); err != nil {
		t.Fatal(err)
	}
	if m := alice.until(TypeRejectUsername); m.Name != "alice1" {
		t.Fatalf("got %+v, want alice renamed alice1", m)
	}
	alice.userlist("alice", "alice1")

	// A message for alice now goes to node 0, stamped by alice1's hub.
	alice.sendRaw(`{"type":"hang-up","name":"alice","target":"alice"}`)
	msg, err := inbox.NextMsg(waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Node   string  `json:"node"`
		Target string  `json:"target"`
		Data   Message `json:"data"`
	}
	if err := json.Unmarshal(msg.Data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Node != b.cluster.NodeID() || got.Target != "alice" || got.Data.Type != TypeHangUp || got.Data.Name != "alice1" {
		t.Fatalf("relayed %s", msg.Data)
	}

	// A node leaving drops its users at once.
	if err := nc.Publish("rtckit.signal.test.presence", []byte(`{"node":"0","seq":2,"leave":true}`)); err != nil {
		t.Fatal(err)
	}
	alice.userlist("alice1")
}

// TestClusterApplyYieldsCaseVariants: when two nodes took names that
// differ only in case at the same time, the node with the higher id
// renames its holder, as for equal names.
func TestClusterApplyYieldsCaseVariants(t *testing.T) {
	h := NewHub(HubConfig{})
	_, f := join(t, h, "alice", 64)
	f.until(t, TypeUserList)
	cl := &Cluster{cfg: ClusterConfig{NodeID: "b"}, users: []string{"alice"}}
	cl.apply(h, map[string]*remoteNode{"a": {users: []string{"Alice"}}})
	if m := f.until(t, TypeRejectUsername); nameKey(m.Name) == nameKey("alice") {
		t.Fatalf("renamed to %q, which still passes for Alice of node a", m.Name)
	}
	h.Shutdown("done")
}
