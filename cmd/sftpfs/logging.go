package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/sftpfs/sftpfs/internal/logx"
)

// parseLevel parses a -log-level value into a level that can change at
// run time (PUT /loglevel on the admin endpoint).
func parseLevel(s string) (*slog.LevelVar, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return nil, fmt.Errorf("invalid log level %q: use debug, info, warn or error", s)
	}
	lv := new(slog.LevelVar)
	lv.Set(level)
	return lv, nil
}

// levelLogger is the logger of every command: text lines on w (which
// keep the real level in the message when dockerd copies them) at the
// level lv holds, except that a volume with debug=true logs its own
// debug lines whatever it is (logx).
func levelLogger(w io.Writer, lv *slog.LevelVar) *slog.Logger {
	return slog.New(logx.NewHandler(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}), lv))
}
