package managercache

import (
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/marketplace-operator/marketplace-operator/internal/scheme"
)

// Holds answers for exactly the kinds the cache is configured with.
func TestHoldsEveryChildKind(t *testing.T) {
	s := scheme.New()
	kinds := ChildKinds()
	for _, o := range kinds {
		gvk, err := apiutil.GVKForObject(o, s)
		if err != nil {
			t.Fatal(err)
		}
		if !Holds(gvk) {
			t.Errorf("%s is a child kind the cache holds, but Holds says no", gvk)
		}
	}
	if len(held) != len(kinds) {
		t.Errorf("Holds knows %d kinds, the cache holds %d", len(held), len(kinds))
	}
}
