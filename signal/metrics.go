package signal

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values of the counters.
const (
	// rateLimitedType counts messages dropped over the rate limit,
	// whatever their type.
	rateLimitedType = "rate-limited"

	dropSlowConsumer = "slow-consumer"
	dropTooLarge     = "too-large"

	rejectOrigin       = "origin"
	rejectToken        = "token"
	rejectFull         = "full"
	rejectShuttingDown = "shutting-down"
)

// Metrics are the hub's and server's Prometheus collectors. A nil *Metrics
// records nothing.
type Metrics struct {
	connections      prometheus.Gauge
	users            prometheus.Gauge
	connectionsTotal prometheus.Counter
	messages         *prometheus.CounterVec
	errors           *prometheus.CounterVec
	drops            *prometheus.CounterVec
	rejected         *prometheus.CounterVec
	loopTurns        prometheus.Histogram
	// byType holds the messages counter of each client type and
	// "invalid", looked up once.
	byType map[string]prometheus.Counter
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rtckit_signal_connections", Help: "Open WebSocket connections.",
		}),
		users: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rtckit_signal_users", Help: "Registered users, including those away within the resume grace period.",
		}),
		connectionsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtckit_signal_connections_total", Help: "WebSocket connections accepted.",
		}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtckit_signal_messages_total", Help: "Client messages received, by type (invalid: not decodable; rate-limited: dropped over the rate limit).",
		}, []string{"type"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtckit_signal_errors_total", Help: "Error messages sent to clients, by code.",
		}, []string{"code"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtckit_signal_drops_total", Help: "Clients disconnected by the server, by reason.",
		}, []string{"reason"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtckit_signal_rejected_total", Help: "WebSocket upgrades refused, by reason.",
		}, []string{"reason"}),
		loopTurns: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "rtckit_signal_loop_turn_seconds",
			Help: "Event-loop turns, from a wake-up to the end of the writes attempted for what it read (and the periodic sweep): a bound on a message's time in the hub after its read, not on its wait before the loop reads it.",
			// 5 µs to 41 ms.
			Buckets: prometheus.ExponentialBuckets(5e-6, 2, 14),
		}),
	}
	for _, c := range []prometheus.Collector{m.connections, m.users, m.connectionsTotal, m.messages, m.errors, m.drops, m.rejected, m.loopTurns} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.byType = map[string]prometheus.Counter{
		"invalid":       m.messages.WithLabelValues("invalid"),
		rateLimitedType: m.messages.WithLabelValues(rateLimitedType),
	}
	for typ := range clientTypes {
		m.byType[typ] = m.messages.WithLabelValues(typ)
	}
	// Every reason shows from the start, at 0, rather than after its
	// first event.
	for _, reason := range []string{dropSlowConsumer, dropTooLarge} {
		m.drops.WithLabelValues(reason)
	}
	for _, reason := range []string{rejectOrigin, rejectToken, rejectFull, rejectShuttingDown} {
		m.rejected.WithLabelValues(reason)
	}
	return m, nil
}

func (m *Metrics) connected(delta int) {
	if m == nil {
		return
	}
	m.connections.Add(float64(delta))
	if delta > 0 {
		m.connectionsTotal.Inc()
	}
}

func (m *Metrics) setUsers(n int) {
	if m != nil {
		m.users.Set(float64(n))
	}
}

func (m *Metrics) message(typ string) {
	if m == nil {
		return
	}
	c, ok := m.byType[typ]
	if !ok {
		c = m.byType["invalid"]
	}
	c.Inc()
}

func (m *Metrics) errorSent(code string) {
	if m != nil {
		m.errors.WithLabelValues(code).Inc()
	}
}

func (m *Metrics) dropped(reason string) {
	if m != nil {
		m.drops.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) reject(reason string) {
	if m != nil {
		m.rejected.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) loopTurn(d time.Duration) {
	if m != nil {
		m.loopTurns.Observe(d.Seconds())
	}
}
