package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// The endpoint's writes are JSON Patches that test what a call was decided on and change only
// what it changed. A resourceVersion lock would also fail on every status write of the
// reconciler, which follows each accepted call within milliseconds.

// jsonPatch is an RFC 6902 patch under construction.
type jsonPatch []map[string]any

func (p *jsonPatch) test(path string, v any) {
	*p = append(*p, map[string]any{"op": "test", "path": path, "value": v})
}

// set adds or replaces the member at path.
func (p *jsonPatch) set(path string, v any) {
	*p = append(*p, map[string]any{"op": "add", "path": path, "value": v})
}

func (p *jsonPatch) remove(path string) {
	*p = append(*p, map[string]any{"op": "remove", "path": path})
}

func (p jsonPatch) patch() (client.Patch, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return client.RawPatch(types.JSONPatchType, data), nil
}

// pointer is the JSON Pointer of a member path (RFC 6901 escaping).
func pointer(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(p))
	}
	return b.String()
}

// isTestFailed reports a patch refused because a tested value changed or vanished: another
// writer got there first, and the call must be decided again on a fresh read. The API server
// answers a failed test with a bare 422 (its cause is not passed on); an object that fails
// validation gets a 422 that names the offending fields, and is not retried.
func isTestFailed(err error) bool {
	var status apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !errors.As(err, &status) {
		return false
	}
	d := status.Status().Details
	return d == nil || len(d.Causes) == 0
}

// changePatch writes a call's decision: it tests what the decision read (the generation, which
// any spec change moves, and the endpoint's annotations: the calls not yet in status.history and
// the ordering timestamps, so calls on the instance stay serialised, across replicas too) and
// sets the annotations and top-level spec fields the call changed. Fields it did not change are
// not written, so a concurrent edit of another annotation or of status is kept.
func changePatch(inst, next *saasv1alpha1.MarketplaceInstance) (client.Patch, error) {
	var p jsonPatch
	var generation any // null: the API server sets one on create; only fakes have none
	if inst.Generation != 0 {
		generation = inst.Generation
	}
	p.test("/metadata/generation", generation)
	if inst.Annotations == nil {
		p.test("/metadata/annotations", nil)
		p.set("/metadata/annotations", next.Annotations)
	} else {
		for _, key := range []string{annotationKey(aspectState), annotationKey(aspectExpiry), annotationKey(aspectOrder), saasv1alpha1.AnnotationCalls} {
			old, had := inst.Annotations[key]
			var want any // null: the annotation must still be absent
			if had {
				want = old
			}
			p.test(pointer("metadata", "annotations", key), want)
			if v, ok := next.Annotations[key]; ok && (!had || v != old) {
				p.set(pointer("metadata", "annotations", key), v)
			}
		}
	}
	before, err := fields(inst.Spec)
	if err != nil {
		return nil, err
	}
	after, err := fields(next.Spec)
	if err != nil {
		return nil, err
	}
	for k, v := range after {
		if !bytes.Equal(before[k], v) {
			p.set(pointer("spec", k), v)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			p.remove(pointer("spec", k))
		}
	}
	return p.patch()
}

func fields(v any) (map[string]json.RawMessage, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	m := map[string]json.RawMessage{}
	return m, json.Unmarshal(data, &m)
}
