package main

import (
	"strings"
	"testing"
)

func TestRows(t *testing.T) {
	rows, err := Rows([]byte(`# The file's own comment.

# A section heading, not a description.
image:
  # -- The image,
  # without tag.
  repository: mpo
  # -- Empty: appVersion.
  tag: ""
# -- Spread | pods.
affinity: {}
# -- Requests.
resources:
  requests:
    cpu: 100m
hosts: []
  #  - host: example.com
# -- Certificates.
tls: []
`))
	if err == nil || !strings.Contains(err.Error(), "hosts (line 16)") || strings.Contains(err.Error(), "tls") {
		t.Fatalf("err = %v, want only hosts reported undocumented", err)
	}
	rows, err = Rows([]byte(`image:
  # -- The image,
  # without tag.
  repository: mpo
  # -- Empty: appVersion.
  tag: ""
# -- Spread | pods.
affinity: {}
# -- Requests.
resources:
  requests:
    cpu: 100m
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Row{
		{"image.repository", "string", `"mpo"`, "The image, without tag."},
		{"image.tag", "string", `""`, "Empty: appVersion."},
		{"affinity", "object", "{}", "Spread | pods."},
		{"resources", "object", `{"requests":{"cpu":"100m"}}`, "Requests."},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows = %+v, want %+v", rows, want)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
	readme, err := Generate([]byte("name: c\nversion: 1.0.0\nappVersion: \"1.0.0\"\n"), []byte("# -- A | <B>.\nx: 1\n"))
	if err != nil || !strings.Contains(string(readme), "| `x` | int | `1` | A \\| &lt;B&gt;. |") {
		t.Errorf("Generate: %v\n%s", err, readme)
	}
}
