//go:build go1.21

package kp

import (
	"context"
	"log/slog"
)

// WithLogger routes kp's log lines to l (see WithLogFunc): ERR and more
// severe as slog.LevelError, WARNING as LevelWarn, NOTICE and INFO as
// LevelInfo, DEBUG as LevelDebug, with the attributes "facility" and
// "syslog_level".
func WithLogger(l *slog.Logger) ProducerOption {
	return WithLogFunc(func(level LogLevel, facility, message string) {
		l.Log(context.Background(), SlogLevel(level), message,
			slog.String("facility", facility), slog.Int("syslog_level", int(level)))
	})
}

// SlogLevel is the slog level WithLogger gives a kp log level.
func SlogLevel(level LogLevel) slog.Level {
	switch {
	case level <= LogErr:
		return slog.LevelError
	case level == LogWarning:
		return slog.LevelWarn
	case level <= LogInfo:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}
