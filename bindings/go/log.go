package kp

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// LogLevel is the syslog level of one of kp's log lines.
type LogLevel int32

// kp's log levels (syslog's; kp uses LogCrit to LogDebug).
const (
	LogEmerg   LogLevel = C.KP_LOG_EMERG
	LogAlert   LogLevel = C.KP_LOG_ALERT
	LogCrit    LogLevel = C.KP_LOG_CRIT
	LogErr     LogLevel = C.KP_LOG_ERR
	LogWarning LogLevel = C.KP_LOG_WARNING
	LogNotice  LogLevel = C.KP_LOG_NOTICE
	LogInfo    LogLevel = C.KP_LOG_INFO
	LogDebug   LogLevel = C.KP_LOG_DEBUG
)

func (l LogLevel) String() string {
	names := [...]string{"EMERG", "ALERT", "CRIT", "ERR", "WARNING", "NOTICE", "INFO", "DEBUG"}
	if l >= 0 && int(l) < len(names) {
		return names[l]
	}
	return fmt.Sprintf("LogLevel(%d)", int32(l))
}

// ProducerOption configures a Producer beyond its Config.
type ProducerOption func(*options)

type options struct {
	logFn func(level LogLevel, facility, message string)
}

// WithLogFunc routes kp's log lines to fn: level, facility ("broker",
// "protocol", "metadata", "producer", "txn", "security") and the text. The
// Config properties "log_level" (0-7, default 6) and "debug" (a comma list
// of facilities, or "all") choose the lines. fn runs one line at a time, in
// kp's order, on the producer's poller goroutine or in Flush/Close on the
// caller's goroutine (never on a kp thread); it must not call Flush or
// Close and should return soon. Without it kp logs nothing.
func WithLogFunc(fn func(level LogLevel, facility, message string)) ProducerOption {
	return func(o *options) { o.logFn = fn }
}

type logLine struct {
	level             LogLevel
	facility, message string
}

// takeLogs moves the lines kp logged during the last kp call out of C
// (drainMu held, so that they keep kp's order).
func (p *Producer) takeLogs() []logLine {
	if p.logq == nil {
		return nil
	}
	var n C.size_t
	var dropped C.uint64_t
	items := C.kpgo_logq_take(p.logq, &n, &dropped)
	lines := make([]logLine, 0, int(n)+1)
	for _, l := range unsafe.Slice(items, int(n)) {
		lines = append(lines, logLine{LogLevel(l.level), C.GoString(l.facility), C.GoString(l.message)})
	}
	C.kpgo_logs_free(items, n)
	if dropped > 0 {
		lines = append(lines, logLine{LogWarning, "producer",
			fmt.Sprintf("kp-go: %d log lines dropped (more than 10000 between two drains, or no memory)", uint64(dropped))})
	}
	return lines
}

// emitLogs passes lines to the log function; logMu keeps them in order.
func (p *Producer) emitLogs(lines []logLine) {
	for _, l := range lines {
		p.logFn(l.level, l.facility, l.message)
	}
	p.logMu.Unlock()
}
