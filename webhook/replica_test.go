package webhook_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/marketplace-operator/marketplace-operator/controllers/instance"
	"github.com/marketplace-operator/marketplace-operator/internal/keys"
	"github.com/marketplace-operator/marketplace-operator/internal/managercache"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/webhook"
)

// replicaConfig describes one more manager replica. Every replica of the Deployment serves the
// marketplace endpoint with its own cache and its own in-memory replay cache; only the leader
// reconciles. The suite's manager is the leader, so the replicas these tests add serve only,
// unless Reconcile is set (for an API server of their own).
type replicaConfig struct {
	Config    *rest.Config
	KeysDir   string
	Orders    openapi.OrderQuerier
	Options   webhook.Options
	Logger    logr.Logger
	Reconcile bool
}

// startReplica runs the replica until the test ends and returns the address its endpoint
// listens on.
func startReplica(t *testing.T, rc replicaConfig) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	store, err := keys.NewStore(rc.KeysDir)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Logger.GetSink() == nil {
		rc.Logger = logr.Discard()
	}
	mgr, err := ctrl.NewManager(rc.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Cache:                  managercache.Options(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 rc.Logger,
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rc.Reconcile {
		r := &instance.Reconciler{
			Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(),
			Recorder: mgr.GetEventRecorder("marketplace-operator"), Orders: rc.Orders, Clock: clock.RealClock{},
			Options: instance.Options{OrderBackoffBase: 200 * time.Millisecond},
		}
		if err := r.SetupWithManager(ctx, mgr); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := webhook.NewServer(mgr, store, rc.Orders, rc.Options)
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Add(store); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "replica manager:", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done; <-done })
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		go func() { done <- struct{}{} }()
		t.Fatal("replica cache did not sync")
	}
	go func() {
		defer func() { done <- struct{}{} }()
		if err := srv.ServeOn(ctx, ln); err != nil {
			fmt.Fprintln(os.Stderr, "replica endpoint:", err)
		}
	}()
	return ln.Addr().String()
}

// writeKeyDir writes a keys directory as the mounted Secret presents it.
func writeKeyDir(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// suiteKeyDir holds the suite's basic and kit keys, so replicas verify what the suite signs.
func suiteKeyDir(t *testing.T) string {
	t.Helper()
	return writeKeyDir(t, map[string][]byte{
		keys.FileBasic: basicKey, keys.FileKit: kitKey, keys.FileAK: []byte(testAK), keys.FileSK: []byte(testSK),
	})
}
