package webhook_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crzap "sigs.k8s.io/controller-runtime/pkg/log/zap"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/keys"
	"github.com/marketplace-operator/marketplace-operator/internal/rig"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
	"github.com/marketplace-operator/marketplace-operator/render"
	"github.com/marketplace-operator/marketplace-operator/webhook"
)

// leakRig is the operator under test, on an API server of its own, with everything it said
// kept: replies, instance snapshots, and the signatures of the requests it was sent.
type leakRig struct {
	t       *testing.T
	env     *testenv.Env
	addr    string
	basic   []byte // the current basic key: every reply is signed with it
	mu      sync.Mutex
	replies []string
	objects []string
	sigs    []string
}

// post sends a signed request and keeps its signature and the reply.
func (r *leakRig) post(g Gomega, path string, header http.Header, body []byte, sig string) koogallery.QueryInstanceReply {
	raw, replyHeader := postHTTP(g, "http://"+r.addr+path, header, body)
	r.mu.Lock()
	r.replies = append(r.replies, string(raw)+" "+replyHeader.Get(koogallery.HeaderBodySign))
	r.sigs = append(r.sigs, sig)
	r.mu.Unlock()
	var rep koogallery.QueryInstanceReply
	g.Expect(json.Unmarshal(raw, &rep)).To(Succeed())
	return rep
}

func (r *leakRig) basicCall(g Gomega, key []byte, req koogallery.BasicRequest) koogallery.QueryInstanceReply {
	body, err := koogallery.MarshalRequest(req)
	g.Expect(err).NotTo(HaveOccurred())
	q := koogallery.BasicQuery(key, body, simulator.RandomNonce(), koogallery.Timestamp(time.Now()))
	return r.post(g, webhook.DefaultPath+"?"+q.Encode(), nil, body, q.Get(koogallery.ParamSignature))
}

func (r *leakRig) kitCall(g Gomega, key []byte, req koogallery.KitRequest) string {
	body, err := koogallery.MarshalKitRequest(req)
	g.Expect(err).NotTo(HaveOccurred())
	h := http.Header{}
	koogallery.SetKitHeaders(h, key, body, simulator.RandomNonce(), koogallery.Timestamp(time.Now()))
	return r.post(g, req.Kind().Path(), h, body, h.Get(koogallery.HeaderSign)).ResultCode
}

// instance reads the instance and keeps a snapshot of it, whole.
func (r *leakRig) instance(g Gomega, name string) *saasv1alpha1.MarketplaceInstance {
	inst := &saasv1alpha1.MarketplaceInstance{}
	g.Expect(r.env.Client.Get(context.Background(), client.ObjectKey{Name: name}, inst)).To(Succeed())
	b, err := json.Marshal(inst)
	g.Expect(err).NotTo(HaveOccurred())
	r.mu.Lock()
	r.objects = append(r.objects, string(b))
	r.mu.Unlock()
	return inst
}

// until waits for cond on the instance, playing kube-controller-manager for its Deployments.
func (r *leakRig) until(name string, cond func(g Gomega, inst *saasv1alpha1.MarketplaceInstance)) {
	r.t.Helper()
	NewWithT(r.t).Eventually(func(g Gomega) {
		inst := r.instance(g, name)
		if ns := inst.Status.Namespace; ns != "" {
			_, err := testenv.MarkDeploymentsReady(context.Background(), r.env.Client, ns)
			g.Expect(err).NotTo(HaveOccurred())
		}
		cond(g, r.instance(g, name))
	}).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
}

func isTrue(cond string) func(Gomega, *saasv1alpha1.MarketplaceInstance) {
	return func(g Gomega, inst *saasv1alpha1.MarketplaceInstance) {
		g.Expect(meta.IsStatusConditionTrue(inst.Status.Conditions, cond)).To(BeTrue(), "%s in %+v", cond, inst.Status.Conditions)
	}
}

func randomSecret(t *testing.T, prefix string) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// TestSecretsNeverLeak runs a buyer's whole life (create, credentials answered encrypted, kit
// syncs with a client secret, renewal signed with the previous key, upgrade, freeze, unfreeze,
// refused calls, an order Query Order does not know, release) against its own API server, with
// the manager logging at its most verbose into a buffer. Then no key, no credential and no
// request signature may appear in the log, in any Event, in any MarketplaceInstance as it was
// along the way, or in a reply (whose credentials are encrypted).
//
// The operator runs on an API server of its own: the suite's manager reconciles every instance
// of its API server and logs through the process-wide logger, at error level, to stderr.
func TestSecretsNeverLeak(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	e2, err := testenv.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = e2.Stop() })
	g.Expect(testenv.CreateSamplePlans(ctx, e2.Client)).To(Succeed())

	secrets := map[string]string{
		"basic key": randomSecret(t, "basic-"), "previous basic key": randomSecret(t, "basicprev-"),
		"kit key": randomSecret(t, "kit-"), "previous kit key": randomSecret(t, "kitprev-"),
		"Open API AK": randomSecret(t, "AK"), "Open API SK": randomSecret(t, "SK"),
		"kit client secret": randomSecret(t, "clientsecret-"),
	}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	g.Expect(err).NotTo(HaveOccurred())
	der := x509.MarshalPKCS1PrivateKey(priv)
	secrets["RSA private key (DER)"] = base64.StdEncoding.EncodeToString(der)[64:128]
	secrets["RSA private exponent"] = priv.D.String()
	dir := writeKeyDir(t, map[string][]byte{
		keys.FileBasic: []byte(secrets["basic key"]), keys.FileBasicPrevious: []byte(secrets["previous basic key"]),
		keys.FileKit: []byte(secrets["kit key"]), keys.FileKitPrevious: []byte(secrets["previous kit key"]),
		keys.FileAK: []byte(secrets["Open API AK"]), keys.FileSK: []byte(secrets["Open API SK"]),
		keys.FileKitRSA: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}),
	})

	// Query Order, keeping the signature of every request the operator makes to it.
	kooAPI := simulator.NewOpenAPIServer(secrets["Open API AK"], secrets["Open API SK"])
	apigSig := regexp.MustCompile(`Signature=([0-9a-fA-F]+)`)
	var apigMu sync.Mutex
	var apigSigs []string
	kooSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if m := apigSig.FindStringSubmatch(req.Header.Get("Authorization")); m != nil {
			apigMu.Lock()
			apigSigs = append(apigSigs, m[1])
			apigMu.Unlock()
		}
		kooAPI.ServeHTTP(w, req)
	}))
	t.Cleanup(kooSrv.Close)
	orders, err := openapi.NewClient(openapi.Config{Endpoint: kooSrv.URL, AK: secrets["Open API AK"], SK: secrets["Open API SK"], Timeout: 5 * time.Second})
	g.Expect(err).NotTo(HaveOccurred())
	register := func(product, sku string) (string, string) {
		orderID := fmt.Sprintf("CSLEAK%08d", orderSeq.Add(1))
		lineID := orderID + "-000001"
		kooAPI.RegisterOrder(openapi.Order{OrderID: orderID, OrderType: openapi.OrderTypeNew, CreateTime: time.Now().UTC(),
			Lines: []openapi.OrderLine{{OrderLineID: lineID, ChargingMode: openapi.ChargingPeriod, PeriodType: openapi.PeriodMonth, PeriodNum: 1,
				ExpireTime: time.Now().UTC().AddDate(0, 1, 0), Products: []openapi.Product{{ProductID: product, SKUCode: sku, ProductName: "demo"}}}},
		})
		return orderID, lineID
	}

	logs := &rig.LockedBuffer{}
	r := &leakRig{t: t, env: e2, basic: []byte(secrets["basic key"])}
	r.addr = startReplica(t, replicaConfig{
		Config: e2.Config, KeysDir: dir, Orders: orders, Reconcile: true,
		Logger:  crzap.New(crzap.WriteTo(logs), crzap.Level(zapcore.Level(-127))),
		Options: webhook.Options{AppInfoEncryptType: koogallery.EncryptAES256},
	})
	basic, basicPrev := []byte(secrets["basic key"]), []byte(secrets["previous basic key"])
	kit, kitPrev := []byte(secrets["kit key"]), []byte(secrets["previous kit key"])
	ok := Equal(koogallery.ResultSuccess)

	// Create, then the credentials: in the reply only encrypted, and they decrypt to the Secret's.
	orderID, lineID := register(testenv.BasicProduct, testenv.BasicSKU)
	name := webhook.InstanceName(lineID)
	id := businessID()
	g.Expect(r.basicCall(g, basic, &koogallery.NewInstanceRequest{OrderID: orderID, OrderLineID: lineID, BusinessID: id}).ResultCode).
		To(Equal(koogallery.ResultProcessing))
	r.until(name, isTrue(saasv1alpha1.ConditionReady))
	ns := r.instance(g, name).Status.Namespace
	creds := &corev1.Secret{}
	g.Expect(e2.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.CredentialsSecretName}, creds)).To(Succeed())
	password := string(creds.Data[render.CredentialsPasswordKey])
	g.Expect(password).NotTo(BeEmpty())
	secrets["tenant password"] = password
	q := r.basicCall(g, basic, &koogallery.QueryInstanceRequest{InstanceID: id})
	g.Expect(q.ResultCode).To(ok)
	g.Expect(q.EncryptType).To(Equal(koogallery.EncryptAES256))
	g.Expect(koogallery.DecryptCredential(secrets["basic key"], koogallery.EncryptAES256, q.Info[0].AppInfo.Password)).To(Equal(password))

	// Kit syncs, one signed with the previous kit key; the client secret is stored decrypted.
	clientSecret, err := koogallery.EncryptClientSecret(&priv.PublicKey, secrets["kit client secret"])
	g.Expect(err).NotTo(HaveOccurred())
	common := func() koogallery.KitCommon {
		return koogallery.NewKitCommon(id, false, koogallery.FormatKitTime(time.Now()))
	}
	g.Expect(r.kitCall(g, kit, &koogallery.TenantSyncRequest{KitCommon: common(), OrderID: orderID, TenantID: "T1", TenantCode: "acme",
		Name: "Acme", Flag: koogallery.NewInt(koogallery.FlagAdd)})).To(ok)
	g.Expect(r.kitCall(g, kitPrev, &koogallery.ApplicationSyncRequest{KitCommon: common(), TenantID: "T1", AppID: "A1", ClientID: "C1",
		ClientSecret: clientSecret, Flag: koogallery.NewInt(koogallery.FlagAdd)})).To(ok)
	apps := &corev1.Secret{}
	g.Expect(e2.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: webhook.KitAppsSecret}, apps)).To(Succeed())
	g.Expect(apps.Data).To(ContainElement(ContainSubstring(secrets["kit client secret"])))
	g.Expect(r.kitCall(g, kit, &koogallery.AuthSyncRequest{KitCommon: common(), TenantID: "T1", AppID: "A1",
		CurrentSyncTime: koogallery.FormatKitTime(time.Now()), Flag: koogallery.NewInt(koogallery.FlagAdd),
		UserList: koogallery.UserList{{UserName: "u1", Name: "User One", OrgCode: "o1", Role: koogallery.RoleAdmin, Enable: "true"}}})).To(ok)

	// Renewal signed with the previous basic key; upgrade (Query Order with AK/SK); freeze, unfreeze.
	renewID, renewLine := register(testenv.BasicProduct, testenv.BasicSKU)
	g.Expect(r.basicCall(g, basicPrev, &koogallery.RefreshInstanceRequest{Scene: koogallery.SceneRenewal, OrderID: renewID, OrderLineID: renewLine,
		InstanceID: id, ExpireTime: koogallery.FormatExpireTime(time.Now().AddDate(1, 0, 0))}).ResultCode).To(ok)
	upID, upLine := register(testenv.ProProduct, testenv.ProSKU)
	g.Expect(r.basicCall(g, basic, &koogallery.UpgradeInstanceRequest{InstanceID: id, OrderID: upID, OrderLineID: upLine}).ResultCode).
		To(BeElementOf(koogallery.ResultSuccess, koogallery.ResultProcessing))
	r.until(name, func(g Gomega, inst *saasv1alpha1.MarketplaceInstance) {
		g.Expect(inst.Status.Plan).To(Equal(testenv.ProPlan))
		isTrue(saasv1alpha1.ConditionReady)(g, inst)
	})
	g.Expect(r.basicCall(g, basic, &koogallery.UpdateInstanceStatusRequest{InstanceID: id, Status: koogallery.StatusFreeze}).ResultCode).To(ok)
	r.until(name, isTrue(saasv1alpha1.ConditionFrozen))
	g.Expect(r.basicCall(g, basic, &koogallery.UpdateInstanceStatusRequest{InstanceID: id, Status: koogallery.StatusUnfreeze}).ResultCode).To(ok)
	r.until(name, isTrue(saasv1alpha1.ConditionReady))

	// Refused calls: a wrong key, a replayed nonce.
	g.Expect(r.basicCall(g, []byte("not-the-key"), &koogallery.QueryInstanceRequest{InstanceID: id}).ResultCode).To(Equal(koogallery.ResultAuthFailed))
	body, err := koogallery.MarshalRequest(&koogallery.QueryInstanceRequest{InstanceID: id})
	g.Expect(err).NotTo(HaveOccurred())
	replay := koogallery.BasicQuery(basic, body, simulator.RandomNonce(), koogallery.Timestamp(time.Now()))
	for _, want := range []string{koogallery.ResultSuccess, koogallery.ResultAuthFailed} {
		g.Expect(r.post(g, webhook.DefaultPath+"?"+replay.Encode(), nil, body, replay.Get(koogallery.ParamSignature)).ResultCode).To(Equal(want))
	}

	// An order Query Order does not know: the failure lands in status and an Event.
	lostOrder := fmt.Sprintf("CSLOST%08d", orderSeq.Add(1))
	lost := webhook.InstanceName(lostOrder + "-000001")
	g.Expect(r.basicCall(g, basic, &koogallery.NewInstanceRequest{OrderID: lostOrder, OrderLineID: lostOrder + "-000001",
		BusinessID: businessID()}).ResultCode).To(Equal(koogallery.ResultProcessing))
	r.until(lost, func(g Gomega, inst *saasv1alpha1.MarketplaceInstance) {
		g.Expect(meta.IsStatusConditionFalse(inst.Status.Conditions, saasv1alpha1.ConditionOrderResolved)).To(BeTrue())
		g.Expect(inst.Status.OrderQuery).NotTo(BeNil())
	})

	// Release: the pro plan backs up first (play the Job controller, then the namespace one).
	g.Expect(r.basicCall(g, basic, &koogallery.ReleaseInstanceRequest{InstanceID: id}).ResultCode).To(ok)
	g.Expect(e2.Client.Delete(ctx, r.instance(g, lost))).To(Succeed())
	g.Eventually(func() error { return testenv.CompleteJob(ctx, e2.Client, ns, render.BackupJobName) }).WithTimeout(30 * time.Second).Should(Succeed())
	g.Eventually(func() error { return e2.FinalizeNamespace(ctx, ns) }).WithTimeout(30 * time.Second).Should(Succeed())
	for _, n := range []string{name, lost} {
		g.Eventually(func() bool {
			err := e2.Client.Get(ctx, client.ObjectKey{Name: n}, &saasv1alpha1.MarketplaceInstance{})
			return err != nil && client.IgnoreNotFound(err) == nil
		}).WithTimeout(30*time.Second).Should(BeTrue(), "instance %s released", n)
	}

	// Events are written asynchronously: await the last transition's, the release.
	events := &eventsv1.EventList{}
	g.Eventually(func(g Gomega) {
		g.Expect(e2.Client.List(ctx, events)).To(Succeed())
		g.Expect(events.Items).To(ContainElement(WithTransform(func(e eventsv1.Event) string { return e.Note }, HavePrefix("Released=True"))))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	legacy := &corev1.EventList{}
	g.Expect(e2.Client.List(ctx, legacy)).To(Succeed())
	remaining := &saasv1alpha1.MarketplaceInstanceList{}
	g.Expect(e2.Client.List(ctx, remaining)).To(Succeed())

	// The log is the manager's at its most verbose: it must hold the calls and the reconciles.
	log := logs.String()
	g.Expect(log).To(ContainSubstring(`"msg":"marketplace call"`))
	g.Expect(log).To(ContainSubstring(`"msg":"marketplace call refused"`))
	g.Expect(log).To(ContainSubstring("Reconcile"))

	haystacks := map[string]string{"the log": log, "the replies": strings.Join(r.replies, "\n"),
		"the instances": strings.Join(r.objects, "\n") + mustJSON(g, remaining), "the events": mustJSON(g, events) + mustJSON(g, legacy)}
	apigMu.Lock()
	g.Expect(apigSigs).NotTo(BeEmpty(), "the operator called Query Order")
	for i, s := range apigSigs {
		secrets[fmt.Sprintf("signature of Open API request %d", i)] = s
	}
	apigMu.Unlock()
	for i, s := range r.sigs {
		secrets[fmt.Sprintf("signature of KooGallery request %d", i)] = s
	}
	for where, hay := range haystacks {
		hay += decodedBase64(hay)
		for what, s := range secrets {
			if s != "" && (strings.Contains(hay, s) || strings.Contains(strings.ToLower(hay), strings.ToLower(s))) {
				t.Errorf("%s holds the %s", where, what)
			}
		}
	}
}

// base64Token is what a base64 value looks like in JSON: Secret data, for one.
var base64Token = regexp.MustCompile(`[A-Za-z0-9+/]{12,}={0,2}`)

// decodedBase64 is every base64 value found in s, decoded: a secret is no safer base64-encoded.
func decodedBase64(s string) string {
	var b strings.Builder
	for _, tok := range base64Token.FindAllString(s, -1) {
		if d, err := base64.StdEncoding.DecodeString(tok); err == nil {
			b.Write(d)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func mustJSON(g Gomega, v any) string {
	b, err := json.Marshal(v)
	g.Expect(err).NotTo(HaveOccurred())
	return string(b)
}
