package logx

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Handler passes records at or above a level that can change at run time
// (a *slog.LevelVar) to an inner handler, which must itself accept every
// level (its own level at slog.LevelDebug or lower). A handler derived with
// WithFloor also passes records at or above its floor: `debug=true` on one
// volume shows that volume's debug lines while the process stays at info.
type Handler struct {
	inner slog.Handler
	level slog.Leveler
	floor slog.Leveler // nil: none
}

// NewHandler returns a Handler over inner filtered by level.
func NewHandler(inner slog.Handler, level slog.Leveler) *Handler {
	return &Handler{inner: inner, level: level}
}

// Enabled reports whether l passes the process level or the floor.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool {
	if l >= h.level.Level() {
		return true
	}
	return h.floor != nil && l >= h.floor.Level()
}

// Handle passes r on.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error { return h.inner.Handle(ctx, r) }

// WithAttrs keeps the levels.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{inner: h.inner.WithAttrs(as), level: h.level, floor: h.floor}
}

// WithGroup keeps the levels.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{inner: h.inner.WithGroup(name), level: h.level, floor: h.floor}
}

// WithFloor returns l with its records at or above floor always logged,
// whatever the process level. A logger not built on a Handler (tests, the
// discard logger) is returned unchanged: its level is its own business.
func WithFloor(l *slog.Logger, floor slog.Leveler) *slog.Logger {
	h, ok := l.Handler().(*Handler)
	if !ok {
		return l
	}
	return slog.New(&Handler{inner: h.inner, level: h.level, floor: floor})
}

// Every bounds how often a repeating event is logged: Allow says yes at
// most once per interval and reports how many were held back since the
// last yes, so the line that is logged can say so. The zero interval
// allows everything. Safe for concurrent use.
type Every struct {
	interval time.Duration

	mu      sync.Mutex
	last    time.Time
	started bool
	held    int
}

// NewEvery returns an Every with the given interval.
func NewEvery(interval time.Duration) *Every { return &Every{interval: interval} }

// Allow reports whether the event at now may be logged and how many events
// were suppressed since the last allowed one.
func (e *Every) Allow(now time.Time) (ok bool, suppressed int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started && now.Sub(e.last) < e.interval {
		e.held++
		return false, 0
	}
	e.started, e.last = true, now
	suppressed, e.held = e.held, 0
	return true, suppressed
}

// Restart counts now as an allowed event and forgets the held count: after
// a state change, whose own line is logged anyway, the repeats of the new
// state wait a full interval.
func (e *Every) Restart(now time.Time) {
	e.mu.Lock()
	e.started, e.last, e.held = true, now, 0
	e.mu.Unlock()
}
