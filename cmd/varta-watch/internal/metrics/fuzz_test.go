package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
)

// FuzzAuthorization sends arbitrary Authorization header values (network
// input) to the endpoint. It must never panic, answer 200 or 401 only, and
// answer 200 only for "<bearer, any case> <the token>" (surrounding spaces
// allowed); every 401 is counted.
func FuzzAuthorization(f *testing.F) {
	for _, s := range []string{"", "Bearer " + testToken, "bearer " + testToken, "BEARER  " + testToken + " ",
		"Basic " + testToken, "Bearer", "Bearer ", "Bearer " + testToken[:63], testToken, "Bearer\t" + testToken} {
		f.Add(s)
	}
	c := stats.New()
	reg := metrics.NewRegistry(c, &fakeSource{capacity: 1}, metrics.Options{Start: time.Now()})
	srv, err := metrics.NewServer(metrics.ServerOptions{Addr: "127.0.0.1:0", TokenFile: writeToken(f)}, reg, c)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	f.Fuzz(func(t *testing.T, value string) {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header["Authorization"] = []string{value}
		before := c.PromAuthFailures.Load()
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		scheme, cred, _ := strings.Cut(value, " ")
		valid := strings.EqualFold(scheme, "bearer") && strings.TrimSpace(cred) == testToken
		switch rec.Code {
		case http.StatusOK:
			if !valid {
				t.Fatalf("accepted %q", value)
			}
		case http.StatusUnauthorized:
			if valid {
				t.Fatalf("refused the right token in %q", value)
			}
			if c.PromAuthFailures.Load() != before+1 {
				t.Fatal("refusal not counted")
			}
		default:
			t.Fatalf("status %d for %q", rec.Code, value)
		}
	})
}
