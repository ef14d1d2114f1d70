package webhook

import (
	"context"
	"strconv"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

// usageInfo is the usage of a pay-per-use instance (§1.2 UsageInfo): the cumulative value the
// usage controller last measured and when, with the plan's dashboard URL. Nil for an instance that
// is not metered or not yet measured. A plan the cache cannot give answers without the URL: the
// usage is the instance's, and KooGallery must not be refused it over a link.
func (s *Server) usageInfo(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance) []koogallery.UsageInfo {
	u := inst.Status.Usage
	if u == nil {
		return nil
	}
	v, err := strconv.ParseFloat(u.Value, 64)
	if err != nil {
		return nil
	}
	info := koogallery.UsageInfo{UsageValue: v, StatisticalTime: koogallery.FormatStatisticalTime(u.StatisticalTime.Time)}
	if inst.Status.Plan != "" {
		plan := &saasv1alpha1.MarketplacePlan{}
		err := s.client.Get(ctx, client.ObjectKey{Name: inst.Status.Plan}, plan)
		switch {
		case err == nil && plan.Spec.Metering != nil:
			info.DashboardURL = plan.Spec.Metering.DashboardURL
		case err != nil && client.IgnoreNotFound(err) != nil:
			ctrl.LoggerFrom(ctx).Error(err, "reading the plan's dashboard URL", "marketplacePlan", inst.Status.Plan)
		}
	}
	return []koogallery.UsageInfo{info}
}
