package signing

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"
)

func TestDetachedRoundTripAndTamper(t *testing.T) {
	root, _ := NewRoot(CertSpec{CommonName: "root"})
	dept, _ := root.Issue(CertSpec{CommonName: "dept", Usage: UsageSigning})
	tsa, _ := root.Issue(CertSpec{CommonName: "tsa", Usage: UsageTimestamping})
	content := []byte("the byte ranges of a PDF")
	sum := sm3.Sum(content)
	at := time.Now().Truncate(time.Second)
	der, err := SignDetached(context.Background(), dept, sum[:], at, NewTSA(tsa))
	if err != nil {
		t.Fatal(err)
	}
	padded := append(append([]byte(nil), der...), make([]byte, 100)...) // as in /Contents
	d, err := ParseDetached(padded)
	if err != nil {
		t.Fatal(err)
	}
	h, err := d.NewHash()
	if err != nil {
		t.Fatal(err)
	}
	h.Write(content)
	if err := d.Verify(h.Sum(nil)); err != nil {
		t.Fatal(err)
	}
	if !d.SigningTime.Equal(at) || !d.Signer.Equal(dept.Cert) {
		t.Fatalf("signing time %v, signer %v", d.SigningTime, d.Signer.Subject)
	}
	if _, err := VerifyChain(d.Signer, d.Certs, NewPool(root.Cert), at); err != nil {
		t.Fatal(err)
	}
	info, err := d.VerifyToken(NewPool(root.Cert))
	if err != nil || info.GenTime.Before(at.Add(-time.Second)) {
		t.Fatalf("token: %v %v", info, err)
	}
	other := sm3.Sum([]byte("other content"))
	if err := d.Verify(other[:]); err == nil {
		t.Fatal("a signature verified over other content")
	}
	// Every bit flipped is caught by parsing, the signature, the chain or the token, but
	// inside the copies of the root in the certificate bags, which are never trusted.
	roots := NewPool(root.Cert)
	inRoot := func(i int) bool {
		for off := 0; ; {
			j := bytes.Index(der[off:], root.Cert.Raw)
			if j < 0 {
				return false
			}
			if i >= off+j && i < off+j+len(root.Cert.Raw) {
				return true
			}
			off += j + 1
		}
	}
	for i := range der {
		if inRoot(i) {
			continue
		}
		bad := append([]byte(nil), der...)
		bad[i] ^= 0x01
		q, err := ParseDetached(bad)
		// A laxity the reader accepts is reported as a warning: the file is then not
		// called well-formed, which is a catch too.
		if err != nil || q.Signer == nil || q.Verify(sum[:]) != nil || len(q.Warnings) > 0 {
			continue
		}
		if _, err := VerifyChain(q.Signer, q.Certs, roots, at); err != nil {
			continue
		}
		if _, err := q.VerifyToken(roots); err != nil {
			continue
		}
		t.Errorf("byte %d flipped and everything verifies: % x", i, der[i-4:i+4])
	}
}
