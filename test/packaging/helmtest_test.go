package packaging

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

const chartTestScript = "files/test-endpoint.py"

// The `helm test` hook: a pod, outside the manager's Service selector, running the chart's
// script against the marketplace Service with only the basic key mounted.
func TestHelmTestHook(t *testing.T) {
	t.Parallel()
	objs := chartRender(t, chartCreateKeys...)
	name := chartFullname + "-test-endpoint"
	pod := chartDecode[corev1.Pod](t, objs, "Pod/"+name)
	cm := chartDecode[corev1.ConfigMap](t, objs, "ConfigMap/"+name)
	for _, meta := range []map[string]string{pod.Annotations, cm.Annotations} {
		if meta["helm.sh/hook"] != "test" || !strings.Contains(meta["helm.sh/hook-delete-policy"], "before-hook-creation") {
			t.Errorf("hook annotations = %v, want a test hook replaced on each run", meta)
		}
	}
	svc := chartDecode[corev1.Service](t, objs, "Service/"+chartFullname+"-marketplace")
	selected := true
	for k, v := range svc.Spec.Selector {
		selected = selected && pod.Labels[k] == v
	}
	if selected {
		t.Errorf("the marketplace Service selects the test pod (labels %v): KooGallery's calls could reach it", pod.Labels)
	}

	script, err := os.ReadFile(filepath.Join(chartRepoRoot, chartPath, chartTestScript))
	if err != nil {
		t.Fatal(err)
	}
	// chartRender splits documents on their separator lines, which takes the last line break.
	if strings.TrimSuffix(cm.Data["test-endpoint.py"], "\n") != strings.TrimSuffix(string(script), "\n") {
		t.Errorf("the ConfigMap does not hold %s as it is", chartTestScript)
	}
	c := pod.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if want := "http://" + chartFullname + "-marketplace." + chartNamespace + ".svc:80/saasproduce"; env["ENDPOINT_URL"] != want {
		t.Errorf("ENDPOINT_URL = %q, want %q", env["ENDPOINT_URL"], want)
	}
	var keys *corev1.Volume
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Secret != nil {
			keys = &pod.Spec.Volumes[i]
		}
	}
	if keys == nil || keys.Secret.SecretName != chartFullname+"-keys" || len(keys.Secret.Items) != 1 || keys.Secret.Items[0].Key != "basic" {
		t.Errorf("keys volume = %s, want only the basic key of %s-keys", describeSecretVolume(keys), chartFullname)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		pod.Spec.SecurityContext == nil || pod.Spec.SecurityContext.RunAsNonRoot == nil || !*pod.Spec.SecurityContext.RunAsNonRoot {
		t.Errorf("the test pod must run as non-root with a read-only root filesystem")
	}
}

// The script itself, run as the pod runs it, against replies made by the project's own signing
// code: it passes a correct refusal and fails every reply KooGallery would not accept. kwok's
// pods never run, so this and test/e2e's TestHelmTestRequest are what prove `helm test` works.
func TestHelmTestScript(t *testing.T) {
	t.Parallel()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed to run the chart's helm test script: %v", err)
	}
	script := filepath.Join(chartRepoRoot, chartPath, chartTestScript)
	key := []byte("pkg-test-basic-key-7d1c")
	keysDir := t.TempDir()
	// As a Secret created from a file holds it: with a trailing newline, which the manager drops.
	if err := os.WriteFile(filepath.Join(keysDir, "basic"), append(key, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	refused := koogallery.Reply{ResultCode: koogallery.ResultAuthFailed, ResultMsg: "authentication failed"}
	for name, tc := range map[string]struct {
		reply func(w http.ResponseWriter)
		want  string // "" passes; otherwise in the failure message
	}{
		"signed refusal": {func(w http.ResponseWriter) { _ = koogallery.WriteReply(w, key, refused) }, ""},
		"other key":      {func(w http.ResponseWriter) { _ = koogallery.WriteReply(w, []byte("not-the-key"), refused) }, "does not verify"},
		"success": {func(w http.ResponseWriter) {
			_ = koogallery.WriteReply(w, key, koogallery.Reply{ResultCode: koogallery.ResultSuccess})
		}, "resultCode '000000'"},
		"unsigned": {func(w http.ResponseWriter) {
			_, _ = w.Write([]byte(`{"resultCode":"000001","resultMsg":"authentication failed"}`))
		}, "Body-Sign ''"},
		"body changed after signing": {func(w http.ResponseWriter) {
			w.Header().Set(koogallery.HeaderBodySign, koogallery.BodySign(key, []byte(`{"resultCode":"000001"}`)))
			_, _ = w.Write([]byte(`{"resultCode":"000001", "resultMsg":"x"}`))
		}, "does not verify"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var gotBody, gotSign string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b := make([]byte, 512)
				n, _ := r.Body.Read(b)
				gotBody, gotSign = string(b[:n]), r.Header.Get(koogallery.HeaderSign)+r.URL.RawQuery
				tc.reply(w)
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, python, script)
			cmd.Env = append(os.Environ(), "ENDPOINT_URL="+srv.URL+"/saasproduce", "KEYS_DIR="+keysDir, "PYTHONDONTWRITEBYTECODE=1")
			out, err := cmd.CombinedOutput()
			if strings.Contains(string(out), string(key)) {
				t.Errorf("the script printed the key")
			}
			if tc.want == "" && err != nil {
				t.Errorf("script failed on a correct reply: %v\n%s", err, out)
			}
			if tc.want != "" && (err == nil || !strings.Contains(string(out), tc.want)) {
				t.Errorf("script: %v\n%s\nwant a failure saying %q", err, out, tc.want)
			}
			if !strings.Contains(gotBody, `"activity"`) || gotSign != "" {
				t.Errorf("the script sent body %q with signature header and query %q, want an unsigned basic call", gotBody, gotSign)
			}
		})
	}
}
