package metrics

import (
	"fmt"
	"os"

	"github.com/prometheus/exporter-toolkit/web"
	yaml "go.yaml.in/yaml/v2"
)

// webConfigInfo is what NewServer needs to know about a web configuration
// file before serving: whether it authenticates clients itself.
type webConfigInfo struct {
	tls        bool // tls_server_config is set: the endpoint speaks HTTPS only
	basicAuth  bool // basic_auth_users is not empty
	clientCert bool // client_auth_type is RequireAndVerifyClientCert
}

// authenticates reports whether the file alone authenticates every client.
func (i webConfigInfo) authenticates() bool { return i.basicAuth || i.clientCert }

// loadWebConfig validates an exporter-toolkit web configuration file the
// way the toolkit will use it (strict YAML, certificate and key files
// readable and matching, bcrypt hashes) and reports what it enables.
// Errors name the file.
func loadWebConfig(path string) (webConfigInfo, error) {
	var info webConfigInfo
	if err := web.Validate(path); err != nil {
		return info, fmt.Errorf("web config file %q: %w", path, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return info, fmt.Errorf("web config file %q: %w", path, err)
	}
	var c web.Config
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return info, fmt.Errorf("web config file %q: %w", path, err)
	}
	info.tls = c.TLSConfig.IsEnabled()
	info.basicAuth = len(c.Users) > 0
	info.clientCert = info.tls && c.TLSConfig.ClientAuth == "RequireAndVerifyClientCert"
	return info, nil
}
