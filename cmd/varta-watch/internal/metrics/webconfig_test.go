package metrics_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
)

// testPKI is a self-signed CA that signed a server certificate for
// 127.0.0.1 and a client certificate, all written as PEM files in dir.
type testPKI struct {
	dir                       string
	caFile, certFile, keyFile string
	clientCert, clientKey     string
	pool                      *x509.CertPool
	client                    tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "varta test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) (certPEM, keyPEM []byte) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips, KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(k)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	}
	p := testPKI{dir: dir, caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "server.pem"),
		keyFile: filepath.Join(dir, "server.key"), clientCert: filepath.Join(dir, "client.pem"), clientKey: filepath.Join(dir, "client.key")}
	sc, sk := issue(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	cc, ck := issue(3, "prometheus", x509.ExtKeyUsageClientAuth, nil)
	for name, b := range map[string][]byte{p.caFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		p.certFile: sc, p.keyFile: sk, p.clientCert: cc, p.clientKey: ck} {
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p.pool = x509.NewCertPool()
	p.pool.AddCert(ca)
	if p.client, err = tls.X509KeyPair(cc, ck); err != nil {
		t.Fatal(err)
	}
	return p
}

// webConfig writes a web configuration file into the PKI's directory.
func (p testPKI) webConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(p.dir, "web.yml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (p testPKI) tlsServer() string {
	return "tls_server_config:\n  cert_file: " + p.certFile + "\n  key_file: " + p.keyFile + "\n"
}

// httpsClient trusts the test CA and presents cert, if any.
func (p testPKI) httpsClient(certs ...tls.Certificate) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{RootCAs: p.pool, Certificates: certs}}}
}

func get(client *http.Client, url string, set func(*http.Request)) (int, string, error) {
	req, _ := http.NewRequest("GET", url, nil)
	if set != nil {
		set(req)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func withBearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func withBasic(user, pass string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

// TestWebConfigTLSWithBearerToken: TLS from the web config file, the
// bearer token still required; plain HTTP is refused.
func TestWebConfigTLSWithBearerToken(t *testing.T) {
	p := newTestPKI(t)
	base, c := startServer(t, metrics.ServerOptions{WebConfigFile: p.webConfig(t, p.tlsServer())})
	https := "https://" + strings.TrimPrefix(base, "http://") + "/metrics"
	client := p.httpsClient()
	tests := []struct {
		name string
		set  func(*http.Request)
		want int
	}{
		{"right token", withBearer(testToken), 200},
		{"no token", nil, 401},
		{"wrong token", withBearer(strings.Repeat("0", 64)), 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body, err := get(client, https, tc.set)
			if err != nil || code != tc.want {
				t.Fatalf("status %d err %v, want %d", code, err, tc.want)
			}
			if code == 200 && !strings.Contains(body, `varta_beats_total{pid="4242"} 7`) {
				t.Fatalf("body %.300q", body)
			}
		})
	}
	if n := c.PromAuthFailures.Load(); n != 2 {
		t.Errorf("auth failures %d, want 2", n)
	}
	// Plain HTTP to the TLS port gets no metrics.
	code, body, err := get(newClient(), base+"/metrics", withBearer(testToken))
	if err == nil && (code == 200 || strings.Contains(body, "varta_")) {
		t.Fatalf("plain HTTP served: %d %.200q", code, body)
	}
	// A client that does not trust the certificate fails the handshake.
	if _, _, err := get(&http.Client{Timeout: 5 * time.Second}, https, withBearer(testToken)); err == nil {
		t.Fatal("an untrusted certificate was accepted by the client")
	}
}

// TestWebConfigBasicAuth: basic_auth_users replaces the bearer token.
func TestWebConfigBasicAuth(t *testing.T) {
	p := newTestPKI(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg := p.webConfig(t, p.tlsServer()+"basic_auth_users:\n  prometheus: "+string(hash)+"\n")
	c := stats.New()
	reg := metrics.NewRegistry(c, nil, metrics.Options{})
	s, err := metrics.NewServer(metrics.ServerOptions{Addr: "127.0.0.1:0", WebConfigFile: cfg}, reg, c)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	defer func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	url := "https://" + s.Addr().String() + "/metrics"
	client := p.httpsClient()
	tests := []struct {
		name string
		set  func(*http.Request)
		want int
	}{
		{"right password", withBasic("prometheus", "s3cret"), 200},
		{"wrong password", withBasic("prometheus", "nope"), 401},
		{"unknown user", withBasic("root", "s3cret"), 401},
		{"no credentials", nil, 401},
		{"bearer instead", withBearer(testToken), 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, err := get(client, url, tc.set)
			if err != nil || code != tc.want {
				t.Fatalf("status %d err %v, want %d", code, err, tc.want)
			}
		})
	}
}

// TestWebConfigClientCertificates: client_auth_type
// RequireAndVerifyClientCert authenticates without a token; a client
// without a certificate fails the handshake.
func TestWebConfigClientCertificates(t *testing.T) {
	p := newTestPKI(t)
	cfg := p.webConfig(t, p.tlsServer()+"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: "+p.caFile+"\n")
	c := stats.New()
	s, err := metrics.NewServer(metrics.ServerOptions{Addr: "127.0.0.1:0", WebConfigFile: cfg}, metrics.NewRegistry(c, nil, metrics.Options{}), c)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	defer func() { s.Close(); <-done }()
	url := "https://" + s.Addr().String() + "/metrics"
	if code, _, err := get(p.httpsClient(p.client), url, nil); err != nil || code != 200 {
		t.Fatalf("with a client certificate: %d %v", code, err)
	}
	if code, _, err := get(p.httpsClient(), url, nil); err == nil {
		t.Fatalf("without a client certificate: status %d, want a failed handshake", code)
	}
}

func TestWebConfigErrors(t *testing.T) {
	p := newTestPKI(t)
	hash, _ := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	token := writeToken(t)
	tests := []struct {
		name      string
		cfg       string // "" = no web config
		tokenFile string
		wantSub   string
	}{
		{"no token, TLS only", p.tlsServer(), "", "bearer token file is required"},
		{"no token, no web config", "", "", "bearer token file is required"},
		{"token and basic auth", "basic_auth_users:\n  a: " + string(hash) + "\n", token, "choose one"},
		{"unknown key", "tls_server_config:\n  cert_fil: x\n", token, "web.yml"},
		{"missing key file", "tls_server_config:\n  cert_file: " + p.certFile + "\n  key_file: /nonexistent.key\n", token, "web.yml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := metrics.ServerOptions{Addr: "127.0.0.1:0", TokenFile: tc.tokenFile}
			if tc.cfg != "" {
				opts.WebConfigFile = p.webConfig(t, tc.cfg)
			}
			c := stats.New()
			s, err := metrics.NewServer(opts, metrics.NewRegistry(c, nil, metrics.Options{}), c)
			if err == nil {
				s.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.wantSub) {
				t.Fatalf("error %q does not contain %q", err, tc.wantSub)
			}
		})
	}
}
