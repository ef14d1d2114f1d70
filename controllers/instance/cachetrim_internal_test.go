package instance

import (
	"encoding/json"
	"testing"
	"unsafe"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/managercache"
)

// Two instances decoded apart share the strings every instance repeats, and keep their values.
func TestTrimInstance(t *testing.T) {
	now := metav1.Now()
	a, b := decoded(t, readyInstance(1, now)), decoded(t, readyInstance(2, now))
	if unsafe.StringData(a.Status.Order.SKUCode) == unsafe.StringData(b.Status.Order.SKUCode) {
		t.Fatal("decoded strings already share storage: the test proves nothing")
	}
	a.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "marketplace-operator"}}
	want := a.DeepCopy()
	want.ManagedFields = nil
	for _, o := range []any{a, b} {
		if _, err := managercache.TrimInstance(o); err != nil {
			t.Fatal(err)
		}
	}
	if !equality.Semantic.DeepEqual(a, want) {
		t.Errorf("values changed:\n%+v\nwant\n%+v", a, want)
	}
	for name, pair := range map[string][2]string{
		"condition reason": {a.Status.Conditions[2].Reason, b.Status.Conditions[2].Reason},
		"SKU":              {a.Status.Order.SKUCode, b.Status.Order.SKUCode},
		"resource kind":    {a.Status.Resources[0].Kind, b.Status.Resources[0].Kind},
		"history result":   {a.Status.History[0].Result, b.Status.History[0].Result},
	} {
		if unsafe.StringData(pair[0]) != unsafe.StringData(pair[1]) {
			t.Errorf("%s is not shared", name)
		}
	}
}

// decoded is inst as a watch delivers it: every string with storage of its own.
func decoded(t *testing.T, inst *saasv1alpha1.MarketplaceInstance) *saasv1alpha1.MarketplaceInstance {
	b, err := json.Marshal(inst)
	if err != nil {
		t.Fatal(err)
	}
	out := &saasv1alpha1.MarketplaceInstance{}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}
