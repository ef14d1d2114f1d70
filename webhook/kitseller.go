package webhook

import (
	"context"
	"fmt"
	"strings"
	"sync"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// sellerNamespace is where the kit syncs of the seller's own app (those with an empty
// instanceId: the seller applying for app credentials) are stored: the operator's own
// namespace, the namespace of the ServiceAccount it runs as, which is the one namespace besides
// the tenant namespaces that the admission policy lets it write in. The API server says who the
// operator is (a SelfSubjectReview, which every authenticated user may create); the answer is
// kept once learnt. An operator that does not run as a ServiceAccount (a development run with a
// person's credentials, whom the admission policy does not confine) uses the default namespace.
// The zero value is ready to use.
type sellerNamespace struct {
	mu sync.Mutex
	ns string
}

// sellerScope is the scope of the seller's own kit data.
func (k *kitStore) sellerScope(ctx context.Context) (kitScope, error) {
	k.seller.mu.Lock()
	defer k.seller.mu.Unlock()
	if k.seller.ns == "" {
		// The API server ignores the name of a review; clients that check names want one.
		review := &authenticationv1.SelfSubjectReview{ObjectMeta: metav1.ObjectMeta{Name: "marketplace-operator"}}
		if err := k.client.Create(ctx, review); err != nil {
			return kitScope{}, fmt.Errorf("asking the API server who the operator is: %w", err)
		}
		ns, ok := serviceAccountNamespace(review.Status.UserInfo.Username)
		if !ok {
			ns = metav1.NamespaceDefault
		}
		k.seller.ns = ns
	}
	return kitScope{ns: k.seller.ns}, nil
}

// serviceAccountNamespace is the namespace in a ServiceAccount's user name
// (system:serviceaccount:<namespace>:<name>).
func serviceAccountNamespace(user string) (string, bool) {
	rest, ok := strings.CutPrefix(user, "system:serviceaccount:")
	if !ok {
		return "", false
	}
	ns, name, ok := strings.Cut(rest, ":")
	if !ok || ns == "" || name == "" {
		return "", false
	}
	return ns, true
}
