package render_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

func TestAppInfo(t *testing.T) {
	long := "https://example.com/" + strings.Repeat("p", render.MaxURLLength-len("https://example.com/"))
	cases := []struct {
		name          string
		front, admin  string
		want          v1alpha1.AppInfo
		wantErr       error
		contains      []string
		excludes      []string
		useBasicPlan  bool
		useSampleInst bool
	}{
		{name: "basic sample", useBasicPlan: true, useSampleInst: true, want: v1alpha1.AppInfo{
			FrontEndURL: "https://cs2211181819b4lvs-000001.apps.example.com/",
			AdminURL:    "https://cs2211181819b4lvs-000001.apps.example.com/admin",
		}},
		{name: "no admin URL", front: "https://{{ .Name }}.{{ .Values.domain }}", want: v1alpha1.AppInfo{FrontEndURL: "https://t1.example.com"}},
		{name: "admin URL that renders empty", front: "http://a.example", admin: `{{ if eq .SKU "pro" }}https://admin.example{{ end }}`,
			want: v1alpha1.AppInfo{FrontEndURL: "http://a.example"}},
		{name: "surrounding whitespace trimmed", front: "\n  https://a.example/x \n", want: v1alpha1.AppInfo{FrontEndURL: "https://a.example/x"}},
		{name: "exactly 512 characters", front: long, want: v1alpha1.AppInfo{FrontEndURL: long}},
		{name: "513 characters", front: long + "p", wantErr: render.ErrInvalidURL, contains: []string{"template appInfo.frontEndUrl:", "513", "512"}},
		{name: "not a URL", front: "{{ .Name }}", wantErr: render.ErrInvalidURL, contains: []string{"appInfo.frontEndUrl", `"t1"`}},
		{name: "relative", front: "/tenants/{{ .Name }}", wantErr: render.ErrInvalidURL, contains: []string{"absolute"}},
		{name: "scheme-relative", front: "//{{ .Name }}.example.com", wantErr: render.ErrInvalidURL},
		{name: "not http", front: "ftp://{{ .Name }}.example.com", wantErr: render.ErrInvalidURL},
		{name: "no host", front: "https:///path", wantErr: render.ErrInvalidURL},
		{name: "unparsable", front: "https://a b.example", wantErr: render.ErrInvalidURL},
		{name: "credentials", front: "https://admin:hunter2@a.example", wantErr: render.ErrInvalidURL,
			contains: []string{"credentials"}, excludes: []string{"hunter2"}},
		{name: "empty front end", front: "", wantErr: render.ErrInvalidURL, contains: []string{"appInfo.frontEndUrl", "empty"}},
		{name: "missing value in admin URL", front: "https://a.example", admin: "https://{{ .Values.adminHost }}/",
			contains: []string{"template appInfo.adminUrl:", "adminHost"}},
		{name: "both reported", front: "nope", admin: "/relative", wantErr: render.ErrInvalidURL,
			contains: []string{"appInfo.frontEndUrl", "appInfo.adminUrl"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan, inst := testPlan(), testInstance("t1")
			plan.Spec.AppInfo = v1alpha1.AppInfoTemplates{FrontEndURL: tc.front, AdminURL: tc.admin}
			if tc.useBasicPlan {
				plan = basicPlan(t)
			}
			if tc.useSampleInst {
				inst = sampleInstance(t, "demo-basic-monthly")
			}
			got, err := render.AppInfo(inst, plan)
			if tc.wantErr == nil && tc.contains == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Fatalf("got %+v, want %+v", got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error, got %+v", got)
			}
			if got != (v1alpha1.AppInfo{}) {
				t.Errorf("partial result %+v returned with an error", got)
			}
			want := tc.wantErr
			if want == nil {
				want = err // a template execution error: only its message is checked
			}
			checkErr(t, err, want, tc.contains, tc.excludes)
		})
	}
}

// memo is checked at KooGallery's 1024 characters as sent: non-ASCII counts as its 6-character
// \uXXXX escape.
func TestAppInfoMemo(t *testing.T) {
	plan := &v1alpha1.MarketplacePlan{Spec: v1alpha1.MarketplacePlanSpec{AppInfo: v1alpha1.AppInfoTemplates{FrontEndURL: "https://a.example"}}}
	inst := &v1alpha1.MarketplaceInstance{}
	for _, tc := range []struct {
		memo    string
		wantErr bool
	}{
		{memo: strings.Repeat("a", render.MaxMemoLength)},
		{memo: strings.Repeat("a", render.MaxMemoLength+1), wantErr: true},
		{memo: strings.Repeat("中", render.MaxMemoLength/6)},
		{memo: strings.Repeat("中", render.MaxMemoLength/6+1), wantErr: true},
	} {
		plan.Spec.AppInfo.Memo = tc.memo
		info, err := render.AppInfo(inst, plan)
		switch {
		case tc.wantErr && !errors.Is(err, render.ErrTooLong):
			t.Errorf("memo of %d runes: error %v, want ErrTooLong", len([]rune(tc.memo)), err)
		case !tc.wantErr && (err != nil || info.Memo != tc.memo):
			t.Errorf("memo of %d runes: %v", len([]rune(tc.memo)), err)
		}
	}
}
