package signing

import (
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/smx509"
)

// countingKeys holds some keys elsewhere than pki/, as a device would.
type countingKeys struct {
	keys  map[string]crypto.Signer
	asked []string
}

func (c *countingKeys) Signer(name string, _ *smx509.Certificate) (crypto.Signer, error) {
	c.asked = append(c.asked, name)
	if k, ok := c.keys[name]; ok {
		return k, nil
	}
	return nil, ErrNoKey
}

// The PKI takes the keys a provider holds from it and the others from its files; a
// provider's key that does not match its certificate is refused.
func TestPKIKeysFromAProvider(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := OpenDevPKI(dir, nil, "测试档案馆", nil); err != nil {
		t.Fatal(err)
	}
	archiveKey, err := LoadKey(filepath.Join(dir, "archive.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The archive's key moves into the "device": the file is gone.
	if err := os.Remove(filepath.Join(dir, "archive.key")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenPKI(dir, nil, "测试档案馆", nil, nil); err == nil {
		t.Fatal("opened without the archive's key")
	}
	keys := &countingKeys{keys: map[string]crypto.Signer{"archive": archiveKey}}
	p, _, err := OpenPKI(dir, nil, "测试档案馆", nil, keys)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys.asked, ",") != "root,archive,tsa" || p.Archive.Key != archiveKey || p.TSA.Key == nil {
		t.Fatalf("asked %v", keys.asked)
	}
	sig, err := Sign(p.Archive.Key, []byte("移交清单"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(p.Archive.PublicKey(), []byte("移交清单"), sig); err != nil {
		t.Fatal(err)
	}
	wrong, _ := GenerateKey()
	keys = &countingKeys{keys: map[string]crypto.Signer{"archive": wrong}}
	if _, _, err := OpenPKI(dir, nil, "测试档案馆", nil, keys); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("a key that does not match: %v", err)
	}
	if errors.Is(err, ErrNoKey) {
		t.Fatal("a mismatch is not a missing key")
	}
}
