package metricsauth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// allowTTL is how long a caller that was let in is let in again without asking the API server:
// a scraper comes back every 15 to 60 seconds with the same token. Refusals are not kept, so a
// token or a role binding fixed by its owner works at the next scrape.
const allowTTL = time.Minute

// maxAllowed bounds the remembered callers; there are a few scrapers, not thousands.
const maxAllowed = 64

// reviewTimeout bounds the two reviews of one request.
const reviewTimeout = 10 * time.Second

// Filter is a metricsserver.FilterProvider: it builds the filter from the manager's config.
func Filter(cfg *rest.Config, httpClient *http.Client) (metricsserver.Filter, error) {
	s := runtime.NewScheme()
	if err := authenticationv1.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := authorizationv1.AddToScheme(s); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: s, HTTPClient: httpClient})
	if err != nil {
		return nil, fmt.Errorf("creating the metrics endpoint's review client: %w", err)
	}
	g := &guard{reviews: c, allowed: map[[sha256.Size]byte]time.Time{}, now: time.Now}
	return func(log logr.Logger, next http.Handler) (http.Handler, error) {
		return g.handler(log, next), nil
	}, nil
}

type guard struct {
	reviews client.Client
	now     func() time.Time

	mu      sync.Mutex
	allowed map[[sha256.Size]byte]time.Time // hash of token, verb and path → until when
}

func (g *guard) handler(log logr.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		token, ok := bearer(req)
		if !ok {
			http.Error(w, "Unauthorized: a bearer token is required", http.StatusUnauthorized)
			return
		}
		verb := strings.ToLower(req.Method)
		key := sha256.Sum256([]byte(verb + " " + req.URL.Path + " " + token))
		if g.remembered(key) {
			next.ServeHTTP(w, req)
			return
		}
		ctx, cancel := context.WithTimeout(req.Context(), reviewTimeout)
		defer cancel()
		code, user, err := g.review(ctx, token, verb, req.URL.Path)
		switch {
		case err != nil:
			// err carries a URL or the API server's message, never a review's body (the token).
			log.Error(err, "Reviewing a metrics request failed")
			http.Error(w, "Reviewing the request failed", http.StatusInternalServerError)
		case code == http.StatusUnauthorized:
			http.Error(w, "Unauthorized", code)
		case code == http.StatusForbidden:
			log.V(4).Info("Metrics request denied", "user", user, "path", req.URL.Path)
			http.Error(w, fmt.Sprintf("Forbidden: user %s may not %s %s", user, verb, req.URL.Path), code)
		default:
			g.remember(key)
			next.ServeHTTP(w, req)
		}
	})
}

// review asks the API server who token is and whether it may verb path. It returns
// http.StatusOK, StatusUnauthorized or StatusForbidden, and the user's name once known.
func (g *guard) review(ctx context.Context, token, verb, path string) (int, string, error) {
	tr := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}
	if err := g.reviews.Create(ctx, tr); err != nil {
		return 0, "", fmt.Errorf("creating a token review: %w", err)
	}
	if !tr.Status.Authenticated {
		return http.StatusUnauthorized, "", nil
	}
	u := tr.Status.User
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra(u.Extra),
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: path, Verb: verb},
	}}
	if err := g.reviews.Create(ctx, sar); err != nil {
		return 0, u.Username, fmt.Errorf("creating a subject access review for %s: %w", u.Username, err)
	}
	if !sar.Status.Allowed || sar.Status.Denied {
		return http.StatusForbidden, u.Username, nil
	}
	return http.StatusOK, u.Username, nil
}

func (g *guard) remembered(key [sha256.Size]byte) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.allowed[key]
	return ok && g.now().Before(until)
}

func (g *guard) remember(key [sha256.Size]byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for k, until := range g.allowed {
		if !now.Before(until) {
			delete(g.allowed, k)
		}
	}
	if len(g.allowed) < maxAllowed {
		g.allowed[key] = now.Add(allowTTL)
	}
}

// bearer returns the request's bearer token.
func bearer(req *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(req.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "bearer") && token != ""
}

func extra(in map[string]authenticationv1.ExtraValue) map[string]authorizationv1.ExtraValue {
	if in == nil {
		return nil
	}
	out := make(map[string]authorizationv1.ExtraValue, len(in))
	for k, v := range in {
		out[k] = authorizationv1.ExtraValue(v)
	}
	return out
}
