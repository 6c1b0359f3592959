package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics/promtest"
	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// into dir and returns their paths and a pool trusting it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestWebConfigFileTLSAndBasicAuth runs the real daemon with
// --web-config-file (TLS with a self-signed certificate, basic auth in
// place of the bearer token, given through VARTA_WATCH_WEB_CONFIG_FILE):
// an HTTPS scrape with the password works, plain HTTP gets no metrics, a
// wrong or missing password gets 401, and the real Prometheus scrapes it
// over TLS with basic auth.
func TestWebConfigFileTLSAndBasicAuth(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	certFile, keyFile, pool := selfSigned(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("scrape-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "web.yml")
	body := fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  prometheus: %s\n", certFile, keyFile, hash)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	passFile := filepath.Join(dir, "pass")
	if err := os.WriteFile(passFile, []byte("scrape-pass"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startIn(t, dir, []string{"VARTA_WATCH_WEB_CONFIG_FILE=" + cfg},
		"--threshold-ms", "60000", "--prom-addr", "127.0.0.1:0")
	d.usePromAddr("", "")
	s := d.dial()
	for i := uint64(1); i <= 3; i++ {
		s.beat(i)
	}
	url := "https://" + d.promAddr + "/metrics"
	// An unknown user costs a bcrypt of cost 10 (exporter-toolkit compares
	// against a fixed hash so that timing does not reveal user names): slow
	// in the race-built daemon on a loaded machine, hence the long timeout.
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(c *http.Client, url, user, pass string) (int, string) {
		req, _ := http.NewRequest("GET", url, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := c.Do(req)
		if err != nil {
			return -1, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	series := fmt.Sprintf(`varta_beats_total{pid="%d"} 3`, os.Getpid())
	testsupport.Eventually(t, 10*time.Second, "an HTTPS scrape with the three beats", func() bool {
		code, body := get(client, url, "prometheus", "scrape-pass")
		return code == 200 && strings.Contains(body, series)
	})
	for _, tc := range []struct{ name, user, pass string }{
		{"wrong password", "prometheus", "nope"},
		{"unknown user", "admin", "scrape-pass"},
		{"no credentials", "", ""},
	} {
		if code, body := get(client, url, tc.user, tc.pass); code != 401 || strings.Contains(body, "varta_") {
			t.Errorf("%s: status %d, want 401 without metrics", tc.name, code)
		}
	}
	plain := &http.Client{Timeout: 10 * time.Second}
	if code, body := get(plain, "http://"+d.promAddr+"/metrics", "prometheus", "scrape-pass"); code == 200 || strings.Contains(body, "varta_") {
		t.Errorf("plain HTTP: status %d, served metrics", code)
	}

	p := promtest.StartPrometheusWith(t, d.promAddr, fmt.Sprintf(`    scheme: https
    tls_config:
      ca_file: %q
    basic_auth:
      username: prometheus
      password_file: %q
`, certFile, passFile))
	p.WaitForValue(t, fmt.Sprintf(`varta_beats_total{pid="%d"}`, os.Getpid()), 3, 90*time.Second)
}

// TestWebConfigFileErrorsAtStart: a web config file that cannot be used
// stops the daemon at start, naming the file.
func TestWebConfigFileErrorsAtStart(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	bad := filepath.Join(dir, "web.yml")
	os.WriteFile(bad, []byte("tls_server_config:\n  cert_file: /nonexistent.pem\n  key_file: /nonexistent.key\n"), 0o600)
	tok, _ := testsupport.TokenFile(t, dir)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing certificate", []string{"--prom-addr", "127.0.0.1:0", "--prom-token-file", tok, "--web-config-file", bad}, "web.yml"},
		{"web config without address", []string{"--web-config-file", bad}, "--prom-addr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--socket", filepath.Join(dir, "s.sock"), "--threshold-ms", "1000"}, tc.args...)
			cmd := exec.Command(binPath, args...)
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code == 0 || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit %d, output:\n%s\nwant a failure naming %q", code, out, tc.want)
			}
		})
	}
}
