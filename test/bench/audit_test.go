//go:build bench

package bench

import (
	"bufio"
	"encoding/json"
	"os"
	"sort"
	"time"
)

// auditPolicy logs every write to the kinds the operator manages, by anyone, with the
// response, so each write's resulting resourceVersion is known; and the operator's other
// writes (Events) and single-object reads without bodies: reads are not free for the API
// server either, and the cache should spare most of them. The API server skips storing an update that changes
// nothing and answers it with the object's current resourceVersion: a write whose answer
// repeats a resourceVersion an earlier write of that object already produced changed nothing.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
- level: Metadata
  users: ["marketplace-operator"]
  verbs: ["get"]
- level: None
  verbs: ["get", "list", "watch"]
- level: RequestResponse
  resources:
  - group: ""
    resources: ["namespaces", "namespaces/status", "namespaces/finalize", "resourcequotas", "resourcequotas/status",
      "limitranges", "secrets", "services", "services/status"]
  - group: apps
    resources: ["deployments", "deployments/status", "statefulsets", "statefulsets/status"]
  - group: batch
    resources: ["jobs", "jobs/status", "cronjobs", "cronjobs/status"]
  - group: networking.k8s.io
    resources: ["networkpolicies", "ingresses", "ingresses/status"]
  - group: saas.marketplace.dev
    resources: ["marketplaceinstances", "marketplaceinstances/status"]
- level: Metadata
  users: ["marketplace-operator"]
- level: None
`

type auditEvent struct {
	Verb string `json:"verb"`
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef struct {
		Resource, Namespace, Name, Subresource string
	} `json:"objectRef"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	ResponseObject *struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	} `json:"responseObject"`
	Received time.Time `json:"requestReceivedTimestamp"`
}

// writeAudit is what the audit log says of the operator's writes.
type writeAudit struct {
	Writes     int            // write requests the operator sent
	ByKind     map[string]int // resource[/subresource] verb -> count
	Failed     map[int]int    // HTTP status -> count, of writes the API server refused
	Unchanged  int            // successful writes that changed nothing
	UnchangedK map[string]int // the same, by resource[/subresource] verb
	Reads      map[string]int // the operator's gets, by resource[/subresource]
}

var writeVerbs = map[string]bool{"create": true, "update": true, "patch": true, "delete": true, "deletecollection": true}

func analyzeAudit(path, operator string) (writeAudit, error) {
	a := writeAudit{ByKind: map[string]int{}, Failed: map[int]int{}, UnchangedK: map[string]int{}, Reads: map[string]int{}}
	f, err := os.Open(path)
	if err != nil {
		return a, err
	}
	defer f.Close()
	var events []auditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e auditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return a, err
		}
		if writeVerbs[e.Verb] {
			events = append(events, e)
		}
		if e.Verb == "get" && e.User.Username == operator {
			a.Reads[e.ObjectRef.Resource+subresource(e.ObjectRef.Subresource)]++
		}
	}
	if err := sc.Err(); err != nil {
		return a, err
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].Received.Before(events[j].Received) })
	produced := map[string]bool{} // object + resourceVersion an earlier write produced
	for _, e := range events {
		kind := e.ObjectRef.Resource + subresource(e.ObjectRef.Subresource) + " " + e.Verb
		mine := e.User.Username == operator
		if mine {
			a.Writes++
			a.ByKind[kind]++
			if e.ResponseStatus.Code >= 300 {
				a.Failed[e.ResponseStatus.Code]++
			}
		}
		if e.ResponseStatus.Code >= 300 || e.ResponseObject == nil || e.ResponseObject.Metadata.ResourceVersion == "" {
			continue
		}
		key := e.ObjectRef.Resource + "/" + e.ObjectRef.Namespace + "/" + e.ObjectRef.Name + "@" + e.ResponseObject.Metadata.ResourceVersion
		if produced[key] && (e.Verb == "update" || e.Verb == "patch") && mine {
			a.Unchanged++
			a.UnchangedK[kind]++
		}
		produced[key] = true
	}
	return a, nil
}

func subresource(s string) string {
	if s == "" {
		return ""
	}
	return "/" + s
}
