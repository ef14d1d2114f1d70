package webhook

import (
	"net/http"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

// exchangeKind says which interface a request came in on.
type exchangeKind struct {
	kit     bool
	kitKind koogallery.KitKind
}

var basicExchange = exchangeKind{}

func exchangeFor(k koogallery.KitKind) exchangeKind { return exchangeKind{kit: true, kitKind: k} }

// activityUnknown labels basic calls whose activity could not be read (unsigned, malformed).
const activityUnknown = "unknown"

func (k exchangeKind) defaultActivity() string {
	if k.kit {
		return string(k.kitKind)
	}
	return activityUnknown
}

// exchange is one request and its single reply.
type exchange struct {
	w        http.ResponseWriter
	kind     exchangeKind
	key      func() []byte
	activity string
	code     string
	start    time.Time
	written  bool
}

// send writes v once as the signed reply: HTTP 200, application/json;charset=UTF-8, Body-Sign
// made with the key of the interface called (basic or kit). Later sends are dropped, so a panic
// after the reply cannot produce a second one.
func (e *exchange) send(v any) {
	if e.written {
		return
	}
	e.written = true
	e.code = resultCode(v)
	// A write error means the caller went away; KooGallery retries, nothing to do here.
	_ = koogallery.WriteReply(e.w, e.key(), v)
}

func (e *exchange) observe() {
	callbacks.WithLabelValues(e.activity, e.code).Inc()
	callbackLatency.WithLabelValues(e.activity).Observe(time.Since(e.start).Seconds())
}

// resultCode reads the code of any reply this package sends.
func resultCode(v any) string {
	switch r := v.(type) {
	case koogallery.Reply:
		return r.ResultCode
	case koogallery.NewInstanceReply:
		return r.ResultCode
	case koogallery.QueryInstanceReply:
		return r.ResultCode
	}
	return koogallery.ResultInternalError
}

func reply(code, msg string) koogallery.Reply {
	return koogallery.Reply{ResultCode: code, ResultMsg: msg}
}

func success(msg string) koogallery.Reply { return reply(koogallery.ResultSuccess, msg) }

// internalError never carries the cause: it is logged, and the caller only learns to retry.
func internalError() koogallery.Reply {
	return reply(koogallery.ResultInternalError, "internal error, please retry")
}

func notFound() koogallery.Reply {
	return reply(koogallery.ResultInstanceNotFound, "instance not found")
}

// verificationReply maps a failed verification to its answer. Every failure to prove who sent
// the call (missing, malformed or wrong signature, a replayed nonce, a timestamp outside the
// window or unreadable) is an authentication failure, 000001: the koogallery library files a
// stale or missing timestamp under 000002 as Huawei's demo does, but to KooGallery and to an
// attacker alike the answer is "not authenticated", and issue 5 asks for 000001. Only failures on
// our side (no key configured, replay cache full) stay 000005 so that KooGallery retries.
func verificationReply(err error) koogallery.Reply {
	r := koogallery.NewReply(err)
	if r.ResultCode != koogallery.ResultInternalError {
		r.ResultCode = koogallery.ResultAuthFailed
	}
	return r
}
