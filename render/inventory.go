package render

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// AppliedHash is what the inventory (status.resources) records of an object as it was applied:
// a short hash of the object the reconciler sent, so an unchanged object need not be sent again.
func AppliedHash(u *unstructured.Unstructured) (string, error) {
	b, err := json.Marshal(u.Object) // encoding/json sorts map keys: stable
	if err != nil {
		return "", fmt.Errorf("hashing %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

// SortInventory puts inventory entries in the order status.resources keeps them: by API
// version, kind and name.
func SortInventory(refs []v1alpha1.ResourceRef) {
	slices.SortFunc(refs, func(a, b v1alpha1.ResourceRef) int {
		return strings.Compare(a.APIVersion+"/"+a.Kind+"/"+a.Name, b.APIVersion+"/"+b.Kind+"/"+b.Name)
	})
}
