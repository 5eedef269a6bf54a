package admin

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves /metrics from reg and /loglevel for level.
func Handler(reg *prometheus.Registry, level *slog.LevelVar, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /loglevel", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, strings.ToLower(level.Level().String()))
	})
	mux.HandleFunc("PUT /loglevel", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var l slog.Level
		if err := l.UnmarshalText([]byte(strings.TrimSpace(string(body)))); err != nil {
			http.Error(w, fmt.Sprintf("invalid log level %q: send debug, info, warn or error", strings.TrimSpace(string(body))),
				http.StatusBadRequest)
			return
		}
		old := level.Level()
		level.Set(l)
		// Logged at the higher of both levels, so it shows either way.
		log.Log(r.Context(), max(old, l, slog.LevelInfo), "log level changed", "from", old.String(), "to", l.String())
		fmt.Fprintln(w, strings.ToLower(l.String()))
	})
	return mux
}

// Server is a running endpoint.
type Server struct {
	srv  *http.Server
	addr string
	done chan struct{}
}

// Listen starts serving h on addr ("127.0.0.1:9464", ":0" in tests).
func Listen(addr string, h http.Handler, log *slog.Logger) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics address %q: %w (expected HOST:PORT, e.g. 127.0.0.1:9464)", addr, err)
	}
	s := &Server{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, addr: l.Addr().String(), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("the metrics endpoint stopped", "addr", s.addr, "error", err)
		}
	}()
	log.Info("serving metrics and the log level", "addr", s.addr, "metrics", "http://"+s.addr+"/metrics", "loglevel", "http://"+s.addr+"/loglevel")
	return s, nil
}

// Addr is the address actually listened on.
func (s *Server) Addr() string { return s.addr }

// Close stops the endpoint.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}
