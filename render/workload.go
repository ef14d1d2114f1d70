package render

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// forbiddenKinds cannot be created by a plan: they are cluster-scoped (the tenant namespace
// would be silently ignored and the object would affect every tenant) or they reach beyond the
// tenant (RBAC, admission, API registration). Kinds are matched whatever their group, which
// also catches a wrong apiVersion. This is a guard against plan mistakes, not a complete list
// of cluster-scoped kinds: that needs discovery, which the reconciler's RESTMapper has.
var forbiddenKinds = map[string]bool{
	"Namespace":                        true,
	"Node":                             true,
	"PersistentVolume":                 true,
	"ClusterRole":                      true,
	"ClusterRoleBinding":               true,
	"CustomResourceDefinition":         true,
	"MutatingWebhookConfiguration":     true,
	"ValidatingWebhookConfiguration":   true,
	"ValidatingAdmissionPolicy":        true,
	"ValidatingAdmissionPolicyBinding": true,
	"MutatingAdmissionPolicy":          true,
	"MutatingAdmissionPolicyBinding":   true,
	"StorageClass":                     true,
	"VolumeAttributesClass":            true,
	"PriorityClass":                    true,
	"RuntimeClass":                     true,
	"IngressClass":                     true,
	"APIService":                       true,
	"CertificateSigningRequest":        true,
	"CSIDriver":                        true,
	"FlowSchema":                       true,
	"PriorityLevelConfiguration":       true,
}

// reservedNames are the objects the operator renders itself. A template reusing one would
// fight the operator for it, for example reopening a frozen tenant's traffic or replacing the
// buyer's password.
var reservedNames = map[string][]string{
	"ResourceQuota": {QuotaName},
	"LimitRange":    {LimitRangeName},
	"NetworkPolicy": {DenyIngressPolicyName, AllowIngressPolicyName, EgressPolicyName},
	"Secret":        {CredentialsSecretName},
	"ConfigMap":     {EntitlementConfigMapName},
	"Job":           {BackupJobName},
}

// Workload renders the plan's manifests for inst, in manifest order. Each object is in the
// tenant namespace and carries the common labels plus the plan and template labels (ours win
// over the template's); nothing below metadata is changed, in particular not pod templates or
// selectors, whose change would break rollouts. Freezing is not rendered here: the reconciler
// scales the rendered workloads down.
//
// Roles and RoleBindings must stay within policy and what the operator holds (checkRBAC).
//
// The error names every failing template (errors.As finds the first *TemplateError). It may
// quote an object's kind, name or namespace, never its content.
func Workload(inst *v1alpha1.MarketplaceInstance, plan *v1alpha1.MarketplacePlan, policy Policy) ([]*unstructured.Unstructured, error) {
	data := NewTemplateData(inst, plan)
	ours := mergeLabels(Labels(inst), map[string]string{v1alpha1.LabelPlan: plan.Name})
	objs := make([]*unstructured.Unstructured, 0, len(plan.Spec.Manifests))
	var errs []error
	// Two manifests rendering one object would undo each other on every apply, and the object
	// would be listed twice in status.resources, the applied set pruning compares with.
	renderedBy := make(map[objectKey]string, len(plan.Spec.Manifests))
	seenTemplate := make(map[string]bool, len(plan.Spec.Manifests))
	templates := make([]string, 0, len(plan.Spec.Manifests))
	for _, m := range plan.Spec.Manifests {
		if seenTemplate[m.Name] {
			errs = append(errs, &TemplateError{Template: m.Name, Err: fmt.Errorf("%w manifest name", ErrDuplicate)})
			continue
		}
		seenTemplate[m.Name] = true
		obj, err := renderManifest(m, data, ours)
		if err == nil {
			err = claim(renderedBy, obj, m.Name)
		}
		if err != nil {
			errs = append(errs, &TemplateError{Template: m.Name, Err: err})
			continue
		}
		objs = append(objs, obj)
		templates = append(templates, m.Name)
	}
	roles := renderedRoles(objs)
	for i, obj := range objs {
		if err := checkRBAC(obj, data.Namespace, roles, policy); err != nil {
			errs = append(errs, &TemplateError{Template: templates[i], Err: err})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return objs, nil
}

// objectKey identifies an object within the tenant namespace.
type objectKey struct {
	group, kind, name string
}

// claim records that template rendered obj, or says which template already did.
func claim(renderedBy map[objectKey]string, obj *unstructured.Unstructured, template string) error {
	gvk := obj.GroupVersionKind()
	key := objectKey{group: gvk.Group, kind: gvk.Kind, name: obj.GetName()}
	if other, ok := renderedBy[key]; ok {
		return fmt.Errorf("%w object: %s %q is also rendered by template %s", ErrDuplicate, gvk.Kind, key.name, other)
	}
	renderedBy[key] = template
	return nil
}

// renderManifest renders, decodes, checks and labels one manifest.
func renderManifest(m v1alpha1.ManifestTemplate, data TemplateData, ours map[string]string) (*unstructured.Unstructured, error) {
	rendered, err := renderText(m.Name, m.Template, data)
	if err != nil {
		return nil, err
	}
	obj, err := decodeOne(rendered)
	if err != nil {
		return nil, err
	}
	if err := checkObject(obj, data.Namespace); err != nil {
		return nil, err
	}
	labels, err := objectLabels(obj)
	if err != nil {
		return nil, err
	}
	obj.SetNamespace(data.Namespace)
	obj.SetLabels(mergeLabels(labels, mergeLabels(ours, map[string]string{v1alpha1.LabelTemplate: m.Name})))
	return obj, nil
}

// checkObject refuses what must not be applied into a tenant namespace. Messages name the kind
// and metadata only: the object may be a Secret.
func checkObject(obj *unstructured.Unstructured, namespace string) error {
	kind, err := checkType(obj)
	if err != nil {
		return err
	}
	if _, hasItems := obj.Object["items"]; hasItems && strings.HasSuffix(kind, "List") {
		return fmt.Errorf("%w %s: render one object per manifest, not a list", ErrForbiddenKind, kind)
	}
	if forbiddenKinds[kind] {
		return fmt.Errorf("%w %s: it is cluster-scoped or reaches beyond the tenant", ErrForbiddenKind, kind)
	}
	name, _, err := unstructured.NestedString(obj.Object, "metadata", "name")
	if err != nil || name == "" {
		return fmt.Errorf("%w: metadata.name is required", ErrInvalidObject)
	}
	for _, reserved := range reservedNames[kind] {
		if name == reserved {
			return fmt.Errorf("%w: %s %q is rendered by the operator", ErrReservedName, kind, name)
		}
	}
	return checkNamespace(obj, namespace)
}

// checkType requires the apiVersion and kind server-side apply needs, and returns the kind.
// The unstructured accessors' own errors are not wrapped because they print the offending
// value.
func checkType(obj *unstructured.Unstructured) (string, error) {
	apiVersion, _, err := unstructured.NestedString(obj.Object, "apiVersion")
	if err != nil || apiVersion == "" {
		return "", fmt.Errorf("%w: apiVersion is required", ErrInvalidObject)
	}
	if _, err := schema.ParseGroupVersion(apiVersion); err != nil {
		return "", fmt.Errorf("%w: apiVersion must be group/version or version", ErrInvalidObject)
	}
	kind, _, err := unstructured.NestedString(obj.Object, "kind")
	if err != nil || kind == "" {
		return "", fmt.Errorf("%w: kind is required", ErrInvalidObject)
	}
	return kind, nil
}

// checkNamespace allows no namespace or the tenant's own: a template naming another namespace
// is a mistake or an escape attempt, and quietly moving it would hide either.
func checkNamespace(obj *unstructured.Unstructured, namespace string) error {
	ns, _, err := unstructured.NestedString(obj.Object, "metadata", "namespace")
	if err != nil {
		return fmt.Errorf("%w: metadata.namespace must be a string", ErrInvalidObject)
	}
	if ns != "" && ns != namespace {
		return fmt.Errorf("%w %q: objects go to the tenant namespace %q; leave metadata.namespace empty", ErrForeignNamespace, ns, namespace)
	}
	return nil
}

// objectLabels are the template's own labels, refused when malformed rather than silently
// replaced.
func objectLabels(obj *unstructured.Unstructured) (map[string]string, error) {
	labels, _, err := unstructured.NestedStringMap(obj.Object, "metadata", "labels")
	if err != nil {
		return nil, fmt.Errorf("%w: metadata.labels must map strings to strings", ErrInvalidObject)
	}
	return labels, nil
}
