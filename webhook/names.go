package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// Labels and annotations the webhook puts on MarketplaceInstances.
const (
	// LabelInstanceIDHash carries a hash of spec.instanceId (which may hold characters a label
	// value cannot), so an instance the cache has not seen yet can still be found by a label
	// selector on the API server.
	LabelInstanceIDHash = "saas.marketplace.dev/instance-id-hash"
	// AnnotationLastCallPrefix + aspect holds the signed timestamp (Unix ms) of the last call
	// applied to that aspect of the instance; see ordering.go.
	AnnotationLastCallPrefix = "saas.marketplace.dev/last-call-"
)

const (
	maxNameLength = 63
	// nameHashLength hex characters (40 bits) keep hashed names distinct and mostly readable.
	nameHashLength = 10
	// debugIDPrefix starts the instance IDs answered to debug calls; real instance IDs are
	// KooGallery businessIds (UUIDs).
	debugIDPrefix    = "debug-"
	debugIDHexLength = 24
)

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// instanceIDPattern and orderIDPattern mirror the CRD's validation, so a bad value is
	// answered 000002 before the API server is asked.
	instanceIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]+$`)
	orderIDPattern    = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
)

// InstanceName is the MarketplaceInstance name of an order line. It is deterministic, so a
// retried or concurrent newInstance finds the instance the first one created. The lower-cased
// order line ID is used when it is a DNS label (KooGallery's IDs, like
// CS2211181819B4LVS-000001, are); otherwise a readable prefix of it and a hash of the whole ID,
// never plain truncation, which would give two long IDs sharing a prefix the same instance.
func InstanceName(orderLineID string) string {
	lower := strings.ToLower(orderLineID)
	if len(lower) <= maxNameLength && dnsLabel.MatchString(lower) {
		return lower
	}
	var b strings.Builder
	dash := true // no leading dash
	for i := 0; i < len(lower); i++ {
		c := lower[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteByte(c)
			dash = false
		case !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	prefix := b.String()
	if n := maxNameLength - 1 - nameHashLength; len(prefix) > n {
		prefix = prefix[:n]
	}
	prefix = strings.Trim(prefix, "-")
	if prefix == "" {
		prefix = "order"
	}
	return prefix + "-" + shortHash(orderLineID, nameHashLength)
}

// debugInstanceID is the instance ID answered to a debug newInstance: derived from the order
// line, so the same debug case gets the same ID every day, and recognisable without any state.
func debugInstanceID(orderID, orderLineID string) string {
	return debugIDPrefix + shortHash(orderID+"\n"+orderLineID, debugIDHexLength)
}

func isDebugInstanceID(id string) bool {
	rest, ok := strings.CutPrefix(id, debugIDPrefix)
	if !ok || len(rest) != debugIDHexLength {
		return false
	}
	_, err := hex.DecodeString(rest)
	return err == nil
}

// InstanceIDHash is the LabelInstanceIDHash value of an instance with this instanceId.
func InstanceIDHash(id string) string { return shortHash(id, 40) }

func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}
