package secure_test

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

// vectorsPath is the repository's copy of the conformance vectors, kept in
// the parent package's testdata (pkg/vlp/testdata).
var vectorsPath = filepath.Join("..", "testdata", "vlp-test-vectors.json")

type secureVector struct {
	ID                  string `json:"id"`
	Kind                string `json:"kind"`
	KeyHex              string `json:"key_hex"`
	MasterKeyHex        string `json:"master_key_hex"`
	AgentPid            uint32 `json:"agent_pid"`
	DerivedAgentKeyHex  string `json:"derived_agent_key_hex"`
	IVRandomHex         string `json:"iv_random_hex"`
	IVCounter           uint32 `json:"iv_counter"`
	PlaintextHex        string `json:"plaintext_hex"`
	ExpectedWireHex     string `json:"expected_wire_hex"`
	AgentID             uint32 `json:"agent_id"`
	InfoHex             string `json:"info_hex"`
	ExpectedOKMHex      string `json:"expected_okm_hex"`
	SessionSaltHex      string `json:"session_salt_hex"`
	PrefixIndex         uint32 `json:"prefix_index"`
	ExpectedIVPrefixHex string `json:"expected_iv_prefix_hex"`
	AgentKeyHex         string `json:"agent_key_hex"`
	Epoch               uint64 `json:"epoch"`
}

// loadSecureVectors reads the shared vectors file; a missing file fails the
// test (conformance is part of the contract).
func loadSecureVectors(t testing.TB) []secureVector {
	t.Helper()
	data, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatalf("conformance vectors: %v", err)
	}
	var vf struct {
		Secure []secureVector `json:"secure_frame_vectors"`
	}
	if err := json.Unmarshal(data, &vf); err != nil {
		t.Fatalf("conformance vectors %s: %v", vectorsPath, err)
	}
	if len(vf.Secure) == 0 {
		t.Fatal("conformance vectors: no secure_frame_vectors")
	}
	return vf.Secure
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func key(t testing.TB, s string) secure.Key {
	t.Helper()
	var k secure.Key
	if b := unhex(t, s); len(b) != len(k) {
		t.Fatalf("key %q is %d bytes", s, len(b))
	} else {
		copy(k[:], b)
	}
	return k
}

func frame32(t testing.TB, s string) *[vlp.FrameSize]byte {
	t.Helper()
	var f [vlp.FrameSize]byte
	if b := unhex(t, s); len(b) != len(f) {
		t.Fatalf("plaintext %q is %d bytes", s, len(b))
	} else {
		copy(f[:], b)
	}
	return &f
}

func iv8(t testing.TB, s string) [secure.IVRandomSize]byte {
	t.Helper()
	var iv [secure.IVRandomSize]byte
	if b := unhex(t, s); len(b) != len(iv) {
		t.Fatalf("iv %q is %d bytes", s, len(b))
	} else {
		copy(iv[:], b)
	}
	return iv
}

func TestSecureVectors(t *testing.T) {
	kinds := map[string]int{}
	for _, v := range loadSecureVectors(t) {
		kinds[v.Kind]++
		t.Run(v.ID, func(t *testing.T) {
			switch v.Kind {
			case "shared_key_seal":
				checkSharedVector(t, &v)
			case "master_key_seal":
				checkMasterVector(t, &v)
			case "kdf_agent_key":
				if got := secure.AgentInfo(v.AgentID); !bytes.Equal(got, unhex(t, v.InfoHex)) {
					t.Errorf("info = %x, want %s", got, v.InfoHex)
				}
				if got := secure.AgentKey(key(t, v.MasterKeyHex), v.AgentID); hex.EncodeToString(got[:]) != v.ExpectedOKMHex {
					t.Errorf("AgentKey = %x, want %s", got[:], v.ExpectedOKMHex)
				}
			case "kdf_iv_prefix":
				var salt [secure.SaltSize]byte
				copy(salt[:], unhex(t, v.SessionSaltHex))
				if got := secure.IVInfo(v.PrefixIndex); !bytes.Equal(got, unhex(t, v.InfoHex)) {
					t.Errorf("info = %x, want %s", got, v.InfoHex)
				}
				if got := secure.IVPrefix(salt, v.PrefixIndex); hex.EncodeToString(got[:]) != v.ExpectedIVPrefixHex {
					t.Errorf("IVPrefix = %x, want %s", got, v.ExpectedIVPrefixHex)
				}
				// The vector's description says the HKDF salt is the
				// session salt; docs/vlp.md §6 says that is wrong. Pin it.
				salted, err := hkdf.Key(sha256.New, salt[:], salt[:], string(unhex(t, v.InfoHex)), 8)
				if err != nil {
					t.Fatal(err)
				}
				if hex.EncodeToString(salted) == v.ExpectedIVPrefixHex {
					t.Error("the salted derivation also matches; the empty-salt rule is no longer pinned by this vector")
				}
			case "kdf_epoch_key":
				if got := secure.EpochInfo(v.Epoch); !bytes.Equal(got, unhex(t, v.InfoHex)) {
					t.Errorf("info = %x, want %s", got, v.InfoHex)
				}
				if got := secure.EpochKey(key(t, v.AgentKeyHex), v.Epoch); hex.EncodeToString(got[:]) != v.ExpectedOKMHex {
					t.Errorf("EpochKey = %x, want %s", got[:], v.ExpectedOKMHex)
				}
			default:
				t.Fatalf("unknown secure vector kind %q", v.Kind)
			}
		})
	}
	for _, k := range []string{"shared_key_seal", "master_key_seal", "kdf_agent_key", "kdf_iv_prefix", "kdf_epoch_key"} {
		if kinds[k] == 0 {
			t.Errorf("no %s vector seen", k)
		}
	}
}

func checkSharedVector(t *testing.T, v *secureVector) {
	k := key(t, v.KeyHex)
	s, err := secure.NewSharedSealer(k)
	if err != nil {
		t.Fatal(err)
	}
	o, err := secure.NewOpener(secure.OpenerConfig{SharedKeys: []secure.Key{k}})
	if err != nil {
		t.Fatal(err)
	}
	checkSealOpen(t, v, s, o, 0)
}

func checkMasterVector(t *testing.T, v *secureVector) {
	master := key(t, v.MasterKeyHex)
	if got := secure.AgentKey(master, v.AgentPid); hex.EncodeToString(got[:]) != v.DerivedAgentKeyHex {
		t.Errorf("AgentKey(pid %d) = %x, want %s", v.AgentPid, got[:], v.DerivedAgentKeyHex)
	}
	s, err := secure.NewMasterSealer(master, v.AgentPid)
	if err != nil {
		t.Fatal(err)
	}
	o, err := secure.NewOpener(secure.OpenerConfig{MasterKey: &master})
	if err != nil {
		t.Fatal(err)
	}
	checkSealOpen(t, v, s, o, -1)
}

// checkSealOpen seals the vector's plaintext under its IV with s and
// compares the wire bytes, then opens the expected wire with o: the
// plaintext, the OpenInfo (one attempt, KeyIndex wantKey) and a clean
// vlp.Decode of the result.
func checkSealOpen(t *testing.T, v *secureVector, s *secure.Sealer, o *secure.Opener, wantKey int) {
	t.Helper()
	pt := frame32(t, v.PlaintextHex)
	want := unhex(t, v.ExpectedWireHex)

	s.SetIV(iv8(t, v.IVRandomHex), v.IVCounter)
	buf := make([]byte, secure.MaxFrameSize)
	n := s.Seal(buf, pt)
	if !bytes.Equal(buf[:n], want) {
		t.Errorf("Seal:\n got %x\nwant %x", buf[:n], want)
	}

	var got [vlp.FrameSize]byte
	info, err := o.Open(&got, want)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got != *pt {
		t.Errorf("Open = %x, want %x", got, *pt)
	}
	wantIV := secure.IV{Random: iv8(t, v.IVRandomHex), Counter: v.IVCounter}
	if info.IV != wantIV || info.KeyIndex != wantKey || info.Attempts != 1 {
		t.Errorf("OpenInfo = %+v, want IV %+v, key %d, 1 attempt", info, wantIV, wantKey)
	}
	var f vlp.Frame
	if err := vlp.Decode(got[:], &f); err != nil {
		t.Errorf("plaintext does not decode: %v", err)
	}
}

// rfc5869 is an independent HKDF-SHA256 (extract with an empty salt, then
// expand) used to check the derivations that have no vector.
func rfc5869(ikm, info []byte, n int) []byte {
	prk := hmacSHA256(make([]byte, sha256.Size), ikm)
	var out, prev []byte
	for i := byte(1); len(out) < n; i++ {
		prev = hmacSHA256(prk, append(append(append([]byte(nil), prev...), info...), i))
		out = append(out, prev...)
	}
	return out[:n]
}

func hmacSHA256(key, msg []byte) []byte {
	var ipad, opad [64]byte
	copy(ipad[:], key)
	copy(opad[:], key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	inner := sha256.Sum256(append(ipad[:], msg...))
	outer := sha256.Sum256(append(opad[:], inner[:]...))
	return outer[:]
}

func TestPanicIVPrefix(t *testing.T) {
	var salt [secure.SaltSize]byte
	for i := range salt {
		salt[i] = byte(0xa0 + i)
	}
	tests := []struct {
		pid     uint32
		ts      uint64
		counter uint32
		info    string // hex
	}{
		{2, 0, 0, "76617274612d70616e69632d69762d763100" + "02000000" + "0000000000000000" + "00000000"},
		{0x01020304, 0x1122334455667788, 0xdeadbeef, "76617274612d70616e69632d69762d763100" + "04030201" + "8877665544332211" + "efbeadde"},
	}
	seen := map[[8]byte]bool{}
	for _, tt := range tests {
		info := secure.PanicIVInfo(tt.pid, tt.ts, tt.counter)
		if hex.EncodeToString(info) != tt.info {
			t.Errorf("info(%d, %d, %d) = %x, want %s", tt.pid, tt.ts, tt.counter, info, tt.info)
		}
		got := secure.PanicIVPrefix(salt, tt.pid, tt.ts, tt.counter)
		if want := rfc5869(salt[:], info, 8); !bytes.Equal(got[:], want) {
			t.Errorf("PanicIVPrefix = %x, want %x", got, want)
		}
		seen[got] = true
	}
	if len(seen) != len(tests) {
		t.Error("distinct inputs gave the same panic IV prefix")
	}
	// The independent HKDF agrees with the published vector too.
	var s2 [secure.SaltSize]byte
	for i := range s2 {
		s2[i] = byte(i + 1)
	}
	if got := rfc5869(s2[:], secure.IVInfo(7), 8); hex.EncodeToString(got) != "9fee777f36be69ce" {
		t.Errorf("reference HKDF disagrees with the kdf-iv-prefix check value: %x", got)
	}
}
