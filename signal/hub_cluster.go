// What the hub shares with other hubs of a cluster: the Bus and Presence
// interfaces it calls, and the entry points a cluster calls back.

package signal

import "slices"

// Bus connects the hubs of a cluster: a message whose target is not a
// user of this hub is published, and the node holding the target hands it
// to its hub with Hub.Deliver. Only targeted messages cross a plain Bus;
// names, user lists and broadcasts stay per hub unless it also implements
// Presence.
type Bus interface {
	// Publish sends data, a relayed message already stamped with its
	// sender's name, toward the node holding the user named target, and
	// reports false when no node holds it. It is called with the hub
	// locked: it must not block and must not call into a hub before it
	// returns.
	Publish(target string, data []byte) bool
}

// Presence is implemented by a Bus that also shares users and broadcasts
// across the cluster (Cluster does). With it, names are unique across the
// nodes (best effort, see docs/signal-serve.md), user lists list every
// node's users, and messages without a target reach every node. Its
// methods are called with the hub locked: they must not block and must not
// call into a hub before they return.
type Presence interface {
	// Announce gives the hub's own users: the connected names and the
	// names reserved for a resume. It is called on every change, and may
	// also be called without one.
	Announce(users, away []string)
	// Broadcast sends data, a relayed message without a target, to the
	// other nodes, which hand it in with Hub.DeliverAll.
	Broadcast(data []byte)
}

// Deliver hands a message that arrived on the bus to the local user named
// target (queued while the user is away). It reports false when no such
// user is here. data is a relayed message as Publish received it.
func (h *Hub) Deliver(target string, data []byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	return h.deliverLocked(target, data, nil, "") == ""
}

// DeliverAll hands a message without a target that arrived on the bus to
// every local connection. data is a relayed message as Presence.Broadcast
// received it.
func (h *Hub) DeliverAll(data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	for c := range h.clients {
		h.sendRawLocked(c, data)
	}
}

// RemoteUsers are the users of the other nodes of a cluster, as a
// Presence bus gives them to Hub.SetRemoteUsers.
type RemoteUsers struct {
	// Users are connected names, shown in user lists.
	Users []string
	// Reserved are names held for a resume; like Users, local users
	// cannot take them.
	Reserved []string
	// Yield are names that users of this hub hold too (two nodes took a
	// name at the same time) and that the cluster gave to the other
	// node: the local holders are renamed as if they had asked for it
	// now, and told with rejectusername.
	Yield []string
}

// SetRemoteUsers replaces the users of the other nodes of a cluster.
// Every connection gets the new user list when it changed.
func (h *Hub) SetRemoteUsers(r RemoteUsers) {
	users := slices.Clone(r.Users)
	slices.Sort(users)
	users = slices.Compact(users)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	names := make(map[string]struct{}, len(r.Reserved)+len(users))
	for _, n := range slices.Concat(users, r.Reserved) {
		names[nameKey(n)] = struct{}{}
	}
	changed := !slices.Equal(users, h.remoteUsers)
	h.remoteUsers, h.remoteNames = users, names
	for _, name := range r.Yield {
		s := h.byName[name]
		if s == nil {
			continue
		}
		h.dropNameLocked(s)
		h.setNameLocked(s, h.freeNameLocked(name, s))
		h.log.Info("user renamed: the name was taken on another node at the same time", "name", name, "new", s.name)
		if s.client != nil {
			h.sendLocked(s.client, Message{Type: TypeRejectUsername, ID: s.client.id, Name: s.name})
		}
		changed = true
	}
	if changed {
		h.userListChangedLocked()
	}
}

// announceLocked gives a Presence bus this hub's users: connected, the
// connected names when the caller has them, and away.
func (h *Hub) announceLocked(connected []string) {
	p, ok := h.cfg.Bus.(Presence)
	if !ok || h.closed {
		return // Shutdown announced the end
	}
	if connected == nil {
		for c := range h.clients {
			if c.sess != nil && c.sess.client == c {
				connected = append(connected, c.sess.name)
			}
		}
	}
	users := slices.Clone(connected)
	slices.Sort(users)
	var away []string
	for name, s := range h.byName {
		if s.client == nil {
			away = append(away, name)
		}
	}
	slices.Sort(away)
	p.Announce(users, away)
}
