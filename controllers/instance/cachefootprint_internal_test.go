package instance

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/scheme"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// BenchmarkCacheFootprint reports the heap that the cached children of one instance of the
// sample plan demo-basic hold (nine objects), as the manager caches them and, for comparison,
// as a default cache would (managed fields stripped, namespace index). The objects are decoded
// from the protobuf the API server sends, so each holds what a watched one holds.
//
//	go test ./controllers/instance/ -run '^$' -bench CacheFootprint
func BenchmarkCacheFootprint(b *testing.B) {
	const instances = 1000
	wire, kinds := childrenOnTheWire(b, instances)
	withNamespaceIndex := toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc}
	strip := cache.TransformStripManagedFields()
	for b.Loop() {
		b.ReportMetric(heapHeld(b, wire, kinds, trimForCache, toolscache.Indexers{})/instances, "B/instance")
		b.ReportMetric(heapHeld(b, wire, kinds, strip, withNamespaceIndex)/instances, "B/instance-untrimmed")
	}
}

// heapHeld decodes every object, transforms it and adds it to an indexer of its kind, and
// returns the heap that the indexers then hold.
func heapHeld(b *testing.B, wire [][]byte, kinds []string, transform toolscache.TransformFunc, idx toolscache.Indexers) float64 {
	codec := protobuf.NewSerializer(scheme.New(), scheme.New())
	indexers := map[string]toolscache.Indexer{}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i, raw := range wire {
		obj, _, err := codec.Decode(raw, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		kept, err := transform(obj)
		if err != nil {
			b.Fatal(err)
		}
		ix := indexers[kinds[i]]
		if ix == nil {
			ix = toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, idx)
			indexers[kinds[i]] = ix
		}
		if err := ix.Add(kept); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(indexers)
	return float64(after.HeapAlloc) - float64(before.HeapAlloc)
}

// childrenOnTheWire renders the children of n instances of demo-basic as the API server
// stores them (applied hash, owner reference, managed fields, server-set labels and status)
// and encodes them in protobuf.
func childrenOnTheWire(b *testing.B, n int) (wire [][]byte, kinds []string) {
	s := scheme.New()
	r := &Reconciler{Scheme: s}
	codec := protobuf.NewSerializer(s, s)
	plan := samplePlan(b)
	now := metav1.NewTime(time.Now())
	for i := range n {
		inst := &saasv1alpha1.MarketplaceInstance{ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("cs%011d", i), UID: types.UID(fmt.Sprintf("6f1c2a3b-0000-4000-8000-%012d", i))}}
		objs := []client.Object{render.Namespace(inst), render.ResourceQuota(inst, plan), render.LimitRange(inst, plan),
			render.CredentialsSecret(inst, render.AdminUserName(plan), "0123456789abcdefghij")}
		for _, np := range render.NetworkPolicies(inst, render.NetworkOptions{}) {
			objs = append(objs, np)
		}
		workload, err := render.Workload(inst, plan)
		if err != nil {
			b.Fatal(err)
		}
		for _, u := range workload {
			objs = append(objs, u)
		}
		for j, o := range objs {
			if o.GetObjectKind().GroupVersionKind().Kind != "Namespace" {
				o.SetNamespace(render.NamespaceName(inst.Name))
			}
			u, err := r.toUnstructured(inst, o)
			if err != nil {
				b.Fatal(err)
			}
			hash, err := hashObject(u)
			if err != nil {
				b.Fatal(err)
			}
			applied, err := u.MarshalJSON()
			if err != nil {
				b.Fatal(err)
			}
			typed, err := s.New(u.GroupVersionKind())
			if err != nil {
				b.Fatal(err)
			}
			if err := kruntime.DefaultUnstructuredConverter.FromUnstructured(u.Object, typed); err != nil {
				b.Fatal(err)
			}
			obj := typed.(client.Object)
			obj.SetAnnotations(merged(obj.GetAnnotations(), annotationAppliedHash, hash))
			obj.SetUID(types.UID(fmt.Sprintf("0a1b2c3d-1111-4000-%04d-%012d", j, i)))
			obj.SetResourceVersion(fmt.Sprint(100000 + i*len(objs) + j))
			obj.SetCreationTimestamp(now)
			obj.SetGeneration(1)
			obj.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "marketplace-operator", Operation: metav1.ManagedFieldsOperationApply,
				APIVersion: u.GetAPIVersion(), Time: &now, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: applied}}})
			serverSide(obj)
			var buf bytes.Buffer
			if err := codec.Encode(typed, &buf); err != nil {
				b.Fatal(err)
			}
			wire = append(wire, buf.Bytes())
			kinds = append(kinds, u.GetKind())
		}
	}
	return wire, kinds
}

// serverSide adds what the API server and controllers set: the namespace's name label and
// phase, a Deployment's revision and status, a quota's usage.
func serverSide(obj client.Object) {
	switch o := obj.(type) {
	case *corev1.Namespace:
		o.Labels = merged(o.Labels, "kubernetes.io/metadata.name", o.Name)
		o.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
		o.Status.Phase = corev1.NamespaceActive
	case *appsv1.Deployment:
		o.Annotations = merged(o.Annotations, "deployment.kubernetes.io/revision", "1")
		o.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, UpdatedReplicas: 1}
	case *corev1.ResourceQuota:
		o.Status.Hard, o.Status.Used = o.Spec.Hard, corev1.ResourceList{}
		for k := range o.Spec.Hard {
			o.Status.Used[k] = resource.MustParse("100m")
		}
	}
}

func merged(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

func samplePlan(b *testing.B) *saasv1alpha1.MarketplacePlan {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", testenv.SamplePlanFiles[0]))
	if err != nil {
		b.Fatal(err)
	}
	plan := &saasv1alpha1.MarketplacePlan{}
	if err := yaml.Unmarshal(raw, plan); err != nil {
		b.Fatal(err)
	}
	return plan
}
