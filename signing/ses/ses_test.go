package ses

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dangan-archive/dangan/signing"
)

func readZip(t *testing.T, path, name string) []byte {
	t.Helper()
	z, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	f, err := z.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Two seal signatures made by other systems (ofdrw and a tax bureau's GOMAIN) verify: the
// seal maker's signature, the signer's, and the data hash over Signature.xml.
func TestCorpusSealsVerify(t *testing.T) {
	for _, name := range []string{"SESV4SignDoc.ofd", "v4signed.ofd"} {
		path := "../../../shared/corpus/ofd/" + name
		p, err := Parse(readZip(t, path, "Doc_0/Signs/Sign_0/SignedValue.dat"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := p.VerifySignature(); err != nil {
			t.Errorf("%s: signature: %v", name, err)
		}
		if err := p.Seal.VerifyMaker(); err != nil {
			t.Errorf("%s: seal: %v", name, err)
		}
		sum := sm3.Sum(readZip(t, path, "Doc_0/Signs/Sign_0/Signature.xml"))
		if string(sum[:]) != string(p.DataHash) || p.Property != "/Doc_0/Signs/Sign_0/Signature.xml" {
			t.Errorf("%s: data hash or property %q does not name Signature.xml", name, p.Property)
		}
		if p.Seal.Name == "" || len(p.Seal.Picture) == 0 {
			t.Errorf("%s: seal without name or picture", name)
		}
	}
}

func TestRoundTripAndTamper(t *testing.T) {
	root, err := signing.NewRoot(signing.CertSpec{CommonName: "root"})
	if err != nil {
		t.Fatal(err)
	}
	maker, _ := root.Issue(signing.CertSpec{CommonName: "制章人", Usage: signing.UsageSigning})
	holder, _ := root.Issue(signing.CertSpec{CommonName: "某县市场监督管理局", Usage: signing.UsageSigning})
	tsaID, _ := root.Issue(signing.CertSpec{CommonName: "tsa", Usage: signing.UsageTimestamping})
	now := time.Now().Truncate(time.Second)
	seal, err := MakeSeal(maker, SealInfo{ID: "S1", Name: "某县市场监督管理局电子印章", Holder: holder.Cert,
		Created: now, ValidFrom: now, ValidTo: now.AddDate(3, 0, 0), PictureType: "PNG", Picture: []byte("png"), WidthMM: 40, HeightMM: 40})
	if err != nil {
		t.Fatal(err)
	}
	hash := sm3.Sum([]byte("<Signature/>"))
	der, err := Sign(context.Background(), holder, seal, hash[:], "/Doc_0/Signs/Sign_0/Signature.xml", now, signing.NewTSA(tsaID))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.VerifySignature(); err != nil {
		t.Fatal(err)
	}
	if err := p.Seal.VerifyMaker(); err != nil {
		t.Fatal(err)
	}
	if !p.SignerHoldsSeal() || !p.Seal.ValidAt(now) || p.Seal.ValidAt(now.AddDate(4, 0, 0)) || !p.Time.Equal(now) {
		t.Fatalf("holder %v, validity, time %v", p.SignerHoldsSeal(), p.Time)
	}
	if _, err := p.VerifyTimeStamp(signing.NewPool(root.Cert)); err != nil {
		t.Fatalf("timestamp: %v", err)
	}
	// Every bit changed must fail parsing or one of the checks a verifier makes: the two
	// signatures, both chains, the timestamp. The copy of the root in the token's
	// certificate bag is never trusted from there, so changing it changes nothing.
	roots := signing.NewPool(root.Cert)
	rootAt := bytes.Index(der, root.Cert.Raw)
	caught := 0
	for i := range der {
		if rootAt >= 0 && i >= rootAt && i < rootAt+len(root.Cert.Raw) {
			continue
		}
		bad := append([]byte(nil), der...)
		bad[i] ^= 0x01
		q, err := Parse(bad)
		// A laxity the reader accepts is a warning: the file is then never called
		// well-formed, which is a catch too.
		if err != nil || q.VerifySignature() != nil || q.Seal.VerifyMaker() != nil || len(q.Warnings)+len(q.Seal.Warnings) > 0 {
			caught++
			continue
		}
		_, e1 := signing.VerifyChain(q.Signer, nil, roots, now)
		_, e2 := signing.VerifyChain(q.Seal.Maker, nil, roots, now)
		_, e3 := q.VerifyTimeStamp(roots)
		if e1 != nil || e2 != nil || e3 != nil {
			caught++
		} else {
			t.Errorf("byte %d changed and every check passed: % x", i, der[max(0, i-6):i+4])
		}
	}
	other, _ := root.Issue(signing.CertSpec{CommonName: "other", Usage: signing.UsageSigning})
	der2, _ := Sign(context.Background(), other, seal, hash[:], "/x", now, nil)
	p2, _ := Parse(der2)
	if p2.SignerHoldsSeal() {
		t.Error("a signer the seal does not list holds it")
	}
	if _, err := ParseSeal([]byte("not a seal")); !errors.Is(err, ErrFormat) {
		t.Errorf("ParseSeal(garbage) = %v", err)
	}
}
