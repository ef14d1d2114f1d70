package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"text/template"

	"github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// TemplateData is what every plan template can read. It deliberately holds no secret: a
// template error or a rendered object must never be able to leak one.
type TemplateData struct {
	// InstanceID is the instance ID reported to KooGallery.
	InstanceID string
	// Name is the MarketplaceInstance name.
	Name string
	// Namespace is the tenant namespace.
	Namespace string
	// Plan is the MarketplacePlan name.
	Plan string
	// SKU is the resolved order's SKU code, empty until the order is resolved.
	SKU string
	// CredentialsSecret is the name of the Secret holding the admin account, for secretKeyRef.
	CredentialsSecret string
	// Values are the plan's values.
	Values map[string]string
	// Order is what the buyer bought, from Query Order; zero until the order is resolved.
	Order OrderData
}

// OrderData is the buyer's order as templates see it. Params are typed by the buyer: paste them
// into YAML with quote, never bare.
type OrderData struct {
	// ProductID is the order line's product.
	ProductID string
	// Quantity is the order line's linearValue (seats, users); 1 when the SKU has none.
	Quantity int64
	// Params are the buyer-filled extendParams by name.
	Params map[string]string
	// ChargingMode is PERIOD, ONE_TIME, ON_DEMAND or ON_DEMAND_PKG.
	ChargingMode string
	// PeriodType and PeriodNum are the subscription period (month, 1).
	PeriodType string
	PeriodNum  int32
}

// NewTemplateData is the data inst's templates render with on plan.
func NewTemplateData(inst *v1alpha1.MarketplaceInstance, plan *v1alpha1.MarketplacePlan) TemplateData {
	data := TemplateData{
		InstanceID:        inst.Spec.InstanceID,
		Name:              inst.Name,
		Namespace:         NamespaceName(inst.Name),
		Plan:              plan.Name,
		CredentialsSecret: CredentialsSecretName,
		// A copy, never nil, so rendering cannot alias the plan held in the informer cache.
		Values: make(map[string]string, len(plan.Spec.Values)),
	}
	maps.Copy(data.Values, plan.Spec.Values)
	data.Order = NewOrderData(inst.Status.Order)
	if inst.Status.Order != nil {
		data.SKU = inst.Status.Order.SKUCode
	}
	return data
}

// NewOrderData is the template view of a resolved order (nil: not resolved yet).
func NewOrderData(o *v1alpha1.ResolvedOrder) OrderData {
	data := OrderData{Quantity: 1, Params: map[string]string{}}
	if o == nil {
		return data
	}
	data.ProductID, data.ChargingMode, data.PeriodType, data.PeriodNum = o.ProductID, o.ChargingMode, o.PeriodType, o.PeriodNum
	data.Quantity = Units(o)
	for _, p := range o.ExtendParams {
		data.Params[p.Name] = p.Value
	}
	return data
}

// Units is the quantity an order bought: its linearValue, or 1 for a SKU without one.
func Units(o *v1alpha1.ResolvedOrder) int64 {
	if o == nil || o.LinearValue <= 0 {
		return 1
	}
	return o.LinearValue
}

// maxRenderedSize bounds what one template may produce. An object has to fit in etcd (about
// 1.5 MiB) anyway; stopping early keeps a runaway range from eating the operator's memory.
const maxRenderedSize = 1 << 20

// Template names for the templates that are not manifests, as they appear in errors.
const (
	frontEndURLTemplate = "appInfo.frontEndUrl"
	adminURLTemplate    = "appInfo.adminUrl"
	memoTemplate        = "appInfo.memo"
	backupTemplate      = "backup.jobTemplate"
)

// Errors a template can fail with, wrapped in a TemplateError; match them with errors.Is.
var (
	// ErrRenderedTooLarge means the template produced more than 1 MiB.
	ErrRenderedTooLarge = errors.New("renders more than 1 MiB")
	// ErrObjectCount means the template rendered no object or more than one.
	ErrObjectCount = errors.New("must render exactly one object")
	// ErrInvalidObject means the output is not a well-formed Kubernetes object.
	ErrInvalidObject = errors.New("invalid object")
	// ErrForbiddenKind means the kind is cluster-scoped or must not be created in a tenant.
	ErrForbiddenKind = errors.New("forbidden kind")
	// ErrReservedName means the object would overwrite one the operator owns.
	ErrReservedName = errors.New("reserved name")
	// ErrForeignNamespace means the object names a namespace other than the tenant's.
	ErrForeignNamespace = errors.New("foreign namespace")
	// ErrDuplicate means two manifests share a name or render the same object.
	ErrDuplicate = errors.New("duplicate")
	// ErrInvalidURL means an appInfo template did not render a URL KooGallery accepts.
	ErrInvalidURL = errors.New("invalid URL")
	// ErrTooLong means a template rendered more than KooGallery accepts in its field.
	ErrTooLong = errors.New("too long")
)

// TemplateError says which template of a plan failed, so a condition can read
// "template <name>: <what is wrong>". Its message may quote a rendered kind, name, namespace or
// URL, never the content of an object, which may be a Secret.
type TemplateError struct {
	// Template is the manifest name, or appInfo.frontEndUrl, appInfo.adminUrl or
	// backup.jobTemplate.
	Template string
	// Err is what is wrong.
	Err error
}

// Error reads "template <name>: <what is wrong>", ready for a condition message.
func (e *TemplateError) Error() string {
	return "template " + e.Template + ": " + e.Err.Error()
}

// Unwrap lets errors.Is match the sentinel errors above through a TemplateError.
func (e *TemplateError) Unwrap() error { return e.Err }

// templateFuncs are the functions templates may call besides text/template's built-ins. quote
// exists because plan values are pasted into YAML: a quoted value cannot turn into a number, a
// boolean or extra fields.
var templateFuncs = template.FuncMap{
	"quote": quote,
}

// quote renders v as a JSON string, which is also a valid YAML double-quoted scalar.
func quote(v any) string {
	s, ok := v.(string)
	if !ok {
		s = fmt.Sprint(v)
	}
	b, err := json.Marshal(s)
	if err != nil {
		// Unreachable: every Go string marshals.
		return `""`
	}
	return string(b)
}

// renderText parses and executes one template. missingkey=error turns a typo in a .Values key
// into an error instead of an empty string that would quietly deploy something wrong.
func renderText(name, text string, data TemplateData) ([]byte, error) {
	tmpl, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs).Parse(text)
	if err != nil {
		return nil, err
	}
	var out limitedBuffer
	if err := tmpl.Execute(&out, data); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// limitedBuffer is a bytes.Buffer that refuses to grow past maxRenderedSize.
type limitedBuffer struct {
	bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxRenderedSize {
		return 0, ErrRenderedTooLarge
	}
	return b.Buffer.Write(p)
}
