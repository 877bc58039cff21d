// Reading the hub's event-loop histogram from its /metrics: how long the
// hub works on what one wake-up of its loop read, to set beside the
// delivery latency.

package loadgen

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// loopTurnMetric is the hub's histogram of event-loop turns.
const loopTurnMetric = "rtckit_signal_loop_turn_seconds"

// maxMetricsBytes bounds the /metrics body read.
const maxMetricsBytes = 4 << 20

// LoopTurns summarises the hub's event-loop turns during a run: the time
// from a wake-up of its loop to the end of the writes attempted for what
// that wake-up read, counted per turn (one turn may carry many messages).
// Quantiles are bucket upper bounds ("at most"); -1 when a quantile lies
// above the largest bucket (41 ms).
type LoopTurns struct {
	Turns   uint64        `json:"turns"`
	P50Max  time.Duration `json:"p50_at_most_ns"`
	P99Max  time.Duration `json:"p99_at_most_ns"`
	P999Max time.Duration `json:"p999_at_most_ns"`
}

// bucketCounts maps a histogram's upper bounds (seconds) to cumulative
// counts.
type bucketCounts map[float64]uint64

// metricsURL is the hub's /metrics URL for its WebSocket URL.
func metricsURL(ws *url.URL) string {
	u := *ws
	u.Scheme = map[string]string{"ws": "http", "wss": "https"}[ws.Scheme]
	u.Path, u.RawQuery, u.Fragment, u.User = "/metrics", "", "", nil
	return u.String()
}

// scrapeLoopTurns reads the loop-turn histogram from the hub's /metrics.
func scrapeLoopTurns(ctx context.Context, client *http.Client, metrics string) (bucketCounts, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metrics, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("loadgen: %s: %s", metrics, resp.Status)
	}
	return parseLoopTurns(io.LimitReader(resp.Body, maxMetricsBytes))
}

// parseLoopTurns extracts the loop-turn histogram from a Prometheus text
// exposition.
func parseLoopTurns(r io.Reader) (bucketCounts, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("loadgen: reading /metrics: %w", err)
	}
	fam := families[loopTurnMetric]
	if fam == nil || len(fam.GetMetric()) == 0 || fam.GetMetric()[0].GetHistogram() == nil {
		return nil, fmt.Errorf("loadgen: /metrics has no %s (a hub without the event loop)", loopTurnMetric)
	}
	h := fam.GetMetric()[0].GetHistogram()
	counts := bucketCounts{math.Inf(1): h.GetSampleCount()}
	for _, b := range h.GetBucket() {
		counts[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	return counts, nil
}

// loopTurnsBetween summarises the turns counted from before to after; nil
// when there were none, or when the two readings do not belong to one run
// of one hub (other buckets, or counts that went down: a restart).
func loopTurnsBetween(before, after bucketCounts) *LoopTurns {
	if len(before) != len(after) {
		return nil
	}
	bounds := make([]float64, 0, len(after))
	for b := range after {
		bounds = append(bounds, b)
	}
	slices.Sort(bounds)
	delta := make([]uint64, len(bounds))
	for i, b := range bounds {
		was, ok := before[b]
		if !ok || after[b] < was {
			return nil
		}
		delta[i] = after[b] - was
	}
	if len(delta) == 0 || delta[len(delta)-1] == 0 {
		return nil
	}
	total := delta[len(delta)-1] // the +Inf bound counts every turn
	at := func(q float64) time.Duration {
		want := uint64(math.Ceil(q * float64(total)))
		for i, n := range delta {
			if n >= want {
				if math.IsInf(bounds[i], 1) {
					return -1
				}
				return time.Duration(bounds[i] * float64(time.Second))
			}
		}
		return -1
	}
	return &LoopTurns{Turns: total, P50Max: at(0.50), P99Max: at(0.99), P999Max: at(0.999)}
}

// metricsTimeout bounds one read of the hub's /metrics.
const metricsTimeout = 2 * time.Second

// metricsClient reads /metrics directly (no proxy) and keeps no
// connection open after a read.
var metricsClient = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// loopTurns reads the hub's loop-turn histogram; nil, logged, when it
// cannot.
func (r *run) loopTurns(ctx context.Context) bucketCounts {
	ctx, cancel := context.WithTimeout(ctx, metricsTimeout)
	defer cancel()
	u := metricsURL(r.url)
	counts, err := scrapeLoopTurns(ctx, metricsClient, u)
	if err != nil {
		r.log.Info("the hub's event-loop turns are not reported", "url", u, "err", err)
		return nil
	}
	return counts
}
