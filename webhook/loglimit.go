package webhook

import (
	"sync"
	"time"
)

// troubleLogInterval is how often one kind of refused or failed call is logged.
const troubleLogInterval = 10 * time.Second

// logLimiter lets one line per interval through for each kind of trouble (an activity and its
// result code, an interface and its refusal reason: bounded sets) and counts the others, which
// the next line reports. Refused and failed calls are logged at the default level, so an SRE
// sees them without debug logs; a flood of them (someone without the key, or KooGallery retrying
// against a broken tenant) costs one line per kind and interval.
type logLimiter struct {
	mu         sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}

// allow reports whether a line for key may be logged at now, and how many were held back since
// the last one.
func (l *logLimiter) allow(key string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.suppressed = map[string]time.Time{}, map[string]int{}
	}
	if t, ok := l.last[key]; ok && now.Sub(t) < troubleLogInterval {
		l.suppressed[key]++
		return false, 0
	}
	n := l.suppressed[key]
	delete(l.suppressed, key)
	l.last[key] = now
	return true, n
}
