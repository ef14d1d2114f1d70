package logging

import "github.com/go-logr/logr"

// MaxVerbosity is the most verbose level the operator's loggers pass on. client-go logs whole
// request and response bodies at V(8) with the logger in the request's context, which is the
// operator's own: every Secret written that way (a tenant's credentials, the kit client
// secrets) would be logged in full, base64 being no protection. The operator's own messages use
// V(1) at most; client-go's request lines (V(6)) and headers (V(7), tokens masked) stay.
const MaxVerbosity = 7

// CapVerbosity returns l with every level above MaxVerbosity disabled, whatever the sink's own
// level (--zap-log-level takes any number).
func CapVerbosity(l logr.Logger) logr.Logger {
	sink := l.GetSink()
	if sink == nil {
		return l
	}
	if _, ok := sink.(capped); ok {
		return l
	}
	return l.WithSink(capped{sink: sink})
}

// capped forwards to sink the levels up to MaxVerbosity.
type capped struct{ sink logr.LogSink }

var _ logr.CallDepthLogSink = capped{}

// Init adds this sink's own frame, so the caller recorded is still the one that logged.
func (c capped) Init(info logr.RuntimeInfo) {
	info.CallDepth++
	c.sink.Init(info)
}

func (c capped) Enabled(level int) bool { return level <= MaxVerbosity && c.sink.Enabled(level) }

func (c capped) Info(level int, msg string, kv ...any) {
	if level <= MaxVerbosity {
		c.sink.Info(level, msg, kv...)
	}
}

func (c capped) Error(err error, msg string, kv ...any) { c.sink.Error(err, msg, kv...) }

func (c capped) WithValues(kv ...any) logr.LogSink { return capped{sink: c.sink.WithValues(kv...)} }

func (c capped) WithName(name string) logr.LogSink { return capped{sink: c.sink.WithName(name)} }

func (c capped) WithCallDepth(depth int) logr.LogSink {
	if cd, ok := c.sink.(logr.CallDepthLogSink); ok {
		return capped{sink: cd.WithCallDepth(depth)}
	}
	return c
}
