package instance

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/scheme"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// TestLiveCacheBehindWithoutGeneration: the API server gives a ResourceQuota no generation, so
// a cache that has not yet seen the quota the inventory says was applied shows only its
// absence. live then reads the API server instead of reporting the quota missing (which
// re-applied an unchanged quota, a write that changed nothing, when the quota's watch lagged
// behind); an object the inventory does not hold is absent without a read.
func TestLiveCacheBehindWithoutGeneration(t *testing.T) {
	const name = "cs1-000001"
	ns := render.NamespaceName(name)
	quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: render.QuotaName, Namespace: ns},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("4")}}}
	gvk := corev1.SchemeGroupVersion.WithKind("ResourceQuota")
	for _, tc := range []struct {
		name      string
		inventory bool
		wantFound bool
		wantReads int
	}{
		{"applied before, cache behind", true, true, 1},
		{"never applied", false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reads := 0
			apiServer := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(quota.DeepCopy()).
				WithInterceptorFuncs(interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
					reads++
					return c.Get(ctx, key, obj, opts...)
				}}).Build()
			r := &Reconciler{Client: fake.NewClientBuilder().WithScheme(scheme.New()).Build(), APIReader: apiServer, Scheme: scheme.New()}
			inst := &saasv1alpha1.MarketplaceInstance{ObjectMeta: metav1.ObjectMeta{Name: name}}
			s := newScope(inst, time.Now())
			if tc.inventory {
				s.recordApplied(refFor(gvk, render.QuotaName), "h1", 0)
			}
			live, err := r.live(context.Background(), s, gvk, ns, render.QuotaName)
			if err != nil {
				t.Fatal(err)
			}
			if found := live != nil; found != tc.wantFound {
				t.Errorf("found = %v, want %v", found, tc.wantFound)
			}
			if reads != tc.wantReads {
				t.Errorf("reads from the API server = %d, want %d", reads, tc.wantReads)
			}
		})
	}
}
