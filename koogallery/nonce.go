package koogallery

import (
	"sync"
	"time"
)

// nonceCache remembers accepted nonces until they can no longer pass the timestamp window. It is
// bounded: when every slot holds a live nonce it refuses new ones rather than evicting, because an
// evicted nonce could be replayed while its timestamp is still inside the window. A refusal is a
// failed call that KooGallery retries later; a replay accepted could apply an old call twice. The
// cache only admits nonces of correctly signed requests, so nobody without a key can fill it.
type nonceCache struct {
	mu    sync.Mutex
	max   int
	seen  map[string]time.Time
	order []nonceEntry // insertion order; expiries are non-decreasing when the clock is
	head  int
}

type nonceEntry struct {
	nonce  string
	expiry time.Time
}

type admitResult int

const (
	admitted admitResult = iota
	replayed
	full
)

func newNonceCache(limit int) *nonceCache {
	return &nonceCache{max: limit, seen: make(map[string]time.Time)}
}

// admit records nonce until expiry, unless it is already live or the cache is full.
func (c *nonceCache) admit(nonce string, now, expiry time.Time) admitResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweep(now)
	if exp, ok := c.seen[nonce]; ok && now.Before(exp) {
		return replayed
	}
	if len(c.seen) >= c.max {
		return full
	}
	c.seen[nonce] = expiry
	c.order = append(c.order, nonceEntry{nonce: nonce, expiry: expiry})
	return admitted
}

// sweep drops expired entries from the front of the insertion queue. An entry whose expiry is
// later than a newer one (the clock stepped back) is dropped as soon as it reaches the front and
// has expired, so the scan stays O(expired).
func (c *nonceCache) sweep(now time.Time) {
	for c.head < len(c.order) {
		e := c.order[c.head]
		if now.Before(e.expiry) {
			break
		}
		if exp, ok := c.seen[e.nonce]; ok && !now.Before(exp) {
			delete(c.seen, e.nonce)
		}
		c.order[c.head] = nonceEntry{}
		c.head++
	}
	if c.head > 1024 && c.head*2 > len(c.order) {
		c.order = append(c.order[:0:0], c.order[c.head:]...)
		c.head = 0
	}
}

func (c *nonceCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}
