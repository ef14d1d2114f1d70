package rig

import (
	"context"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestCRDNames(t *testing.T) {
	got, err := crdNames([]byte("customresourcedefinition.apiextensions.k8s.io/a.example.com\ncustomresourcedefinition.apiextensions.k8s.io/b.example.com\n"))
	if err != nil || strings.Join(got, ",") != "a.example.com,b.example.com" {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "configmap/x\n"} {
		if _, err := crdNames([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func crd(name string, conditions ...apiextensionsv1.CustomResourceDefinitionCondition) *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: apiextensionsv1.CustomResourceDefinitionStatus{Conditions: conditions}}
}

var established = apiextensionsv1.CustomResourceDefinitionCondition{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue}

// settling serves each CRD without conditions for its first reads, as the API server does
// right after the CRD is created, then established.
type settling struct {
	client.Reader
	reads map[string]int
}

func (s *settling) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	s.reads[key.Name]++
	if s.reads[key.Name] <= 3 {
		crd(key.Name).DeepCopyInto(obj.(*apiextensionsv1.CustomResourceDefinition))
		return nil
	}
	return s.Reader.Get(ctx, key, obj, opts...)
}

func TestWaitEstablished(t *testing.T) {
	s := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	reader := fake.NewClientBuilder().WithScheme(s).WithObjects(
		crd("a.example.com", established),
		crd("b.example.com", established),
		crd("pending.example.com", apiextensionsv1.CustomResourceDefinitionCondition{Type: apiextensionsv1.NamesAccepted, Status: apiextensionsv1.ConditionTrue}),
	).Build()
	ctx := context.Background()

	if err := waitEstablished(ctx, &settling{Reader: reader, reads: map[string]int{}}, []string{"a.example.com", "b.example.com"}, 10*time.Second); err != nil {
		t.Errorf("CRDs established after a few reads: %v", err)
	}
	err := waitEstablished(ctx, reader, []string{"a.example.com", "pending.example.com", "missing.example.com"}, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "not established within 300ms: pending.example.com, missing.example.com") {
		t.Errorf("want the CRDs still pending named, got %v", err)
	}
}
