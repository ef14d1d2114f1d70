package webhook

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// Instances whose order is not resolved (their OrderResolved condition is not True) are indexed
// by why, so that newInstance can count the ones that count against
// Options.MaxUnresolvedInstances, and the unresolved gauge can report them all, without a scan of
// every instance. Instances being deleted are left out: they are on their way out.
const (
	// UnresolvedIndex indexes unresolved instances by their reason label (unresolvedReasons).
	UnresolvedIndex = "status.orderUnresolved"
	// reasonPending is an instance whose OrderResolved condition is not set yet (or Unknown):
	// the reconciler has not looked at it, is paused, or is not running.
	reasonPending = "Pending"
	// reasonOther is any other reason, so that the label stays bounded.
	reasonOther = "Other"
)

// unresolvedReasons are the values of the gauge's reason label, in the order reported.
var unresolvedReasons = []string{
	reasonPending,
	saasv1alpha1.ReasonQueryFailed,
	saasv1alpha1.ReasonOrderNotFound,
	saasv1alpha1.ReasonUnknownSKU,
	saasv1alpha1.ReasonAmbiguousPlan,
	saasv1alpha1.ReasonPlanNotFound,
	reasonOther,
}

// limitedReasons are the reasons that count against Options.MaxUnresolvedInstances: orders
// Query Order does not know or does not answer for, which the reconciler retries forever and
// which anyone holding the basic key can create at will. Orders that resolved to a SKU no plan
// serves are real purchases waiting for the platform team; they do not count.
var limitedReasons = []string{saasv1alpha1.ReasonOrderNotFound, saasv1alpha1.ReasonQueryFailed}

// unresolvedReason is the reason label of an unresolved instance, and false for a resolved one
// or one being deleted.
func unresolvedReason(inst *saasv1alpha1.MarketplaceInstance) (string, bool) {
	if !inst.DeletionTimestamp.IsZero() {
		return "", false
	}
	c := meta.FindStatusCondition(inst.Status.Conditions, saasv1alpha1.ConditionOrderResolved)
	switch {
	case c == nil || c.Status == metav1.ConditionUnknown:
		return reasonPending, true
	case c.Status == metav1.ConditionTrue:
		return "", false
	case slices.Contains(unresolvedReasons, c.Reason) && c.Reason != reasonPending:
		return c.Reason, true
	}
	return reasonOther, true
}

func indexUnresolved(o client.Object) []string {
	if reason, ok := unresolvedReason(o.(*saasv1alpha1.MarketplaceInstance)); ok {
		return []string{reason}
	}
	return nil
}

// unresolvedSince is when the instance started waiting: when its OrderResolved condition last
// changed status, else when it was created.
func unresolvedSince(inst *saasv1alpha1.MarketplaceInstance) time.Time {
	if c := meta.FindStatusCondition(inst.Status.Conditions, saasv1alpha1.ConditionOrderResolved); c != nil && !c.LastTransitionTime.IsZero() {
		return c.LastTransitionTime.Time
	}
	return inst.CreationTimestamp.Time
}

// listUnresolved lists, from the cache behind r, the unresolved instances with the reason label,
// at most limit of them when limit > 0. The items are the cache's own objects: read them only.
func listUnresolved(ctx context.Context, r client.Reader, reason string, limit int) ([]saasv1alpha1.MarketplaceInstance, error) {
	opts := []client.ListOption{client.MatchingFields{UnresolvedIndex: reason}, client.UnsafeDisableDeepCopy}
	if limit > 0 {
		opts = append(opts, client.Limit(int64(limit)))
	}
	list := &saasv1alpha1.MarketplaceInstanceList{}
	if err := r.List(ctx, list, opts...); err != nil {
		return nil, fmt.Errorf("listing unresolved instances: %w", err)
	}
	return list.Items, nil
}

// countLimited counts the instances that count against the limit, stopping at limit: the cost of
// the count is bounded by the limit, not by how far an attacker got past it.
func countLimited(ctx context.Context, r client.Reader, limit int) (int, error) {
	n := 0
	for _, reason := range limitedReasons {
		if n >= limit {
			break
		}
		items, err := listUnresolved(ctx, r, reason, limit-n)
		if err != nil {
			return 0, err
		}
		n += len(items)
	}
	return n, nil
}

// unresolvedLimitReached reports whether newInstance must refuse to create an instance, with the
// count it decided on.
func (s *Server) unresolvedLimitReached(ctx context.Context) (int, bool, error) {
	limit := s.opts.MaxUnresolvedInstances
	if limit < 0 {
		return 0, false, nil
	}
	n, err := countLimited(ctx, s.client, limit)
	if err != nil {
		return 0, false, err
	}
	return n, n >= limit, nil
}

// collectTimeout bounds a scrape's wait for the cache (it waits for a cache still syncing).
const collectTimeout = 5 * time.Second

// unresolvedCollector reports the unresolved instances at scrape time, from the manager's cache
// that RegisterIndexes was first given: the manager's field indexer is its cache. A process runs
// one manager; tests that start more report the first one's.
type unresolvedCollector struct {
	count, oldest *prometheus.Desc
	now           func() time.Time

	mu     sync.Mutex
	reader client.Reader
}

func newUnresolvedCollector() *unresolvedCollector {
	return &unresolvedCollector{
		count: prometheus.NewDesc("marketplace_unresolved_instances",
			"MarketplaceInstances whose OrderResolved condition is not True, by reason (Pending: not set yet), as this replica's cache sees them. Instances being deleted are not counted.",
			[]string{"reason"}, nil),
		oldest: prometheus.NewDesc("marketplace_unresolved_instance_oldest_seconds",
			"How long the longest-waiting unresolved MarketplaceInstance has waited (since its OrderResolved condition last changed status, else since it was created), by reason; 0 when none waits.",
			[]string{"reason"}, nil),
		now: time.Now,
	}
}

// readFrom makes r the collector's source unless it has one.
func (c *unresolvedCollector) readFrom(r client.Reader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reader == nil {
		c.reader = r
	}
}

func (c *unresolvedCollector) source() client.Reader {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reader
}

// Describe implements prometheus.Collector.
func (c *unresolvedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.count
	ch <- c.oldest
}

// Collect implements prometheus.Collector. Without a synced cache it reports nothing rather than
// a wrong zero.
func (c *unresolvedCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.source()
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	now := c.now()
	counts := make([]int, len(unresolvedReasons))
	oldest := make([]float64, len(unresolvedReasons))
	for i, reason := range unresolvedReasons {
		items, err := listUnresolved(ctx, r, reason, 0)
		if err != nil {
			return
		}
		counts[i] = len(items)
		for j := range items {
			oldest[i] = max(oldest[i], now.Sub(unresolvedSince(&items[j])).Seconds())
		}
	}
	for i, reason := range unresolvedReasons {
		ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, float64(counts[i]), reason)
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, oldest[i], reason)
	}
}
