// status.go serves the pool's state as JSON (/credpool/status) and puts a
// key back in rotation on request (/credpool/reset?key=<index>).

package proxy

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/credpool/credpool"
)

// keyStatus is one key in /credpool/status: its redacted label, never the
// key. Fields that do not apply are null.
type keyStatus struct {
	Index     int            `json:"index"` // the key's position in the pool, for /credpool/reset
	Label     string         `json:"label"`
	State     credpool.State `json:"state"`
	Reason    *string        `json:"reason"`    // why it last left ok; null if it never has
	ResetAt   *time.Time     `json:"reset_at"`  // when a cooling key returns
	Remaining *int64         `json:"remaining"` // the provider's last remaining-requests count
	Requests  uint64         `json:"requests"`
	Failures  uint64         `json:"failures"`
	Strikes   int            `json:"strikes"` // cooldowns in a row after which the key failed again at once
}

// newKeyStatus converts a credpool.KeyStatus.
func newKeyStatus(i int, s credpool.KeyStatus) keyStatus {
	k := keyStatus{Index: i, Label: s.Label, State: s.State, Requests: s.Requests, Failures: s.Failures, Strikes: s.Strikes}
	if s.Reason != "" {
		r := string(s.Reason)
		k.Reason = &r
	}
	if !s.ResetAt.IsZero() {
		t := s.ResetAt.UTC()
		k.ResetAt = &t
	}
	if s.Remaining >= 0 {
		n := s.Remaining
		k.Remaining = &n
	}
	return k
}

// poolStatus is /credpool/status: every key, and the store's health.
type poolStatus struct {
	Keys  []keyStatus  `json:"keys"`
	Store *storeStatus `json:"store"` // null without --store
}

// storeStatus is what the pool knows of its store.
type storeStatus struct {
	Up          bool       `json:"up"`            // its last answer was a success
	Loaded      bool       `json:"loaded"`        // the stored states have been loaded
	LastSync    *time.Time `json:"last_sync"`     // when it last answered; null before it ever did
	LastSyncAge *float64   `json:"last_sync_age"` // seconds since then
}

// newStoreStatus converts the pool's StoreHealth, if it has a store.
func newStoreStatus(pool *credpool.Transport, now time.Time) *storeStatus {
	h, ok := pool.StoreHealth()
	if !ok {
		return nil
	}
	s := &storeStatus{Up: h.Up, Loaded: h.Loaded}
	if !h.LastSync.IsZero() {
		t, age := h.LastSync.UTC(), now.Sub(h.LastSync).Seconds()
		s.LastSync, s.LastSyncAge = &t, &age
	}
	return s
}

// status answers GET /credpool/status with every key's state and the
// store's health.
func (p *Server) status(w http.ResponseWriter, _ *http.Request) {
	all := p.pool.Keys()
	out := poolStatus{Keys: make([]keyStatus, len(all)), Store: newStoreStatus(p.pool, time.Now())}
	for i, s := range all {
		out.Keys[i] = newKeyStatus(i, s)
	}
	writeJSON(w, http.StatusOK, out)
}

// reset answers POST /credpool/reset?key=<index>: the key is back in
// rotation, dead or cooling, and the answer is its new state.
func (p *Server) reset(w http.ResponseWriter, r *http.Request) {
	i, err := strconv.Atoi(r.URL.Query().Get("key"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "reset needs ?key=<index>, the key's index in /credpool/status", "bad_request")
		return
	}
	if err := p.pool.ResetKey(i); err != nil {
		writeError(w, http.StatusNotFound, err.Error(), "no_such_key")
		return
	}
	s := newKeyStatus(i, p.pool.Keys()[i])
	p.log.LogAttrs(r.Context(), slog.LevelInfo, "credpool proxy: key reset on request",
		slog.String("key", s.Label), slog.Int("index", i), slog.String("remote", r.RemoteAddr))
	writeJSON(w, http.StatusOK, s)
}
