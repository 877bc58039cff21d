// Configuration and validation of a hub cluster.

package signal

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// ClusterConfig configures a Cluster. URL is required; other zero fields
// take their defaults.
type ClusterConfig struct {
	// URL is the NATS server, nats://[user:pass@]host:port (tls:// for
	// TLS); several, separated by commas, are tried in turn.
	URL string
	// Name separates clusters sharing one NATS server: letters, digits,
	// "-" and "_".
	Name string
	// NodeID names this node on the subjects; a random id when empty.
	NodeID string
	// Heartbeat is how often this node republishes its users; the others
	// drop them after three heartbeats without one.
	Heartbeat time.Duration
	// ConnectTimeout, ReconnectWait and MaxReconnects bound connecting
	// and reconnecting to NATS.
	ConnectTimeout time.Duration
	ReconnectWait  time.Duration
	MaxReconnects  int
	// Logger receives structured logs (never credentials); nil discards
	// them.
	Logger *slog.Logger
}

// CheckClusterURL checks a --cluster value: one or more comma-separated
// nats:// or tls:// URLs with a host. Errors wrap ErrInvalidConfig.
func CheckClusterURL(s string) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("%w: no NATS URL", ErrInvalidConfig)
	}
	for part := range strings.SplitSeq(s, ",") {
		u, err := url.Parse(strings.TrimSpace(part))
		if err != nil {
			return fmt.Errorf("%w: NATS URL: %v", ErrInvalidConfig, redactURLError(err))
		}
		if u.Scheme != "nats" && u.Scheme != "tls" {
			return fmt.Errorf("%w: NATS URL %q: scheme must be nats:// or tls://", ErrInvalidConfig, u.Redacted())
		}
		if u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return fmt.Errorf("%w: NATS URL %q: want nats://host:port", ErrInvalidConfig, u.Redacted())
		}
	}
	return nil
}

// redactURLError drops the URL, which may hold a password, from a parse
// error.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// CheckClusterName checks a cluster name. Errors wrap ErrInvalidConfig.
func CheckClusterName(name string) error {
	if !clusterNameRE.MatchString(name) {
		return fmt.Errorf("%w: cluster name %q: 1 to 64 letters, digits, - or _", ErrInvalidConfig, name)
	}
	return nil
}

func (c ClusterConfig) withDefaults() ClusterConfig {
	if c.Name == "" {
		c.Name = DefaultClusterName
	}
	if c.NodeID == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b) // crypto/rand.Read never fails
		c.NodeID = hex.EncodeToString(b)
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultClusterConnectTimeout
	}
	if c.ReconnectWait <= 0 {
		c.ReconnectWait = DefaultClusterReconnectWait
	}
	if c.MaxReconnects == 0 {
		c.MaxReconnects = DefaultClusterMaxReconnects
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
