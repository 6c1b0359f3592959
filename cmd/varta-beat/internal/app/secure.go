package app

import (
	"github.com/varta-go/varta/pkg/agent"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

// loadKeys reads the secure UDP key file (secret-file rules: no symlink,
// regular file, owned by this uid, no group/other permission bits) into o.
func loadKeys(o *agent.Options, keyFile, masterFile string) error {
	switch {
	case keyFile != "":
		k, err := secure.ParseKeyFile(keyFile)
		if err != nil {
			return err
		}
		o.SharedKey = &k
	case masterFile != "":
		k, err := secure.ParseKeyFile(masterFile)
		if err != nil {
			return err
		}
		o.MasterKey = &k
	}
	return nil
}
