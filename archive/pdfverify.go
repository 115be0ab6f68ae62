package archive

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/formats/pdfsig"
	"github.com/dangan-archive/dangan/signing"
)

// Verification of PDF signatures as other software makes them: every signature and
// document timestamp, each against the revision it signs, with what the updates after it
// changed; RSA, ECDSA, Ed25519 and SM2 in CMS (adbe.pkcs7.detached, adbe.pkcs7.sha1,
// ETSI.CAdES.detached), bare PKCS #1 (adbe.x509.rsa_sha1) and RFC 3161 document timestamps
// (ETSI.RFC3161).

// CheckChanges is the check of what was changed after a signature.
const CheckChanges = "changes-after-signing"

// SignatureSummary is one signature of a file, for a reader: what it signs and its verdict.
type SignatureSummary struct {
	Index     int        `json:"index"` // 1-based, in file order
	Kind      string     `json:"kind"`  // signature, document timestamp, seal
	Where     string     `json:"where"` // as the checks name it
	Revision  int        `json:"revision,omitempty"`
	Revisions int        `json:"revisions,omitempty"`
	Signer    string     `json:"signer,omitempty"`
	Anchor    string     `json:"trust_anchor,omitempty"` // the trusted root the signer chains to
	Algorithm string     `json:"algorithm,omitempty"`
	SignedAt  *time.Time `json:"signed_at,omitempty"`
	// Intact: the signature value verifies and what it covers is unchanged; Trusted: its
	// signer chains to a trust anchor; Valid: both, and nothing else failed for it.
	Intact  bool     `json:"intact"`
	Trusted bool     `json:"trusted"`
	Valid   bool     `json:"valid"`
	Covers  string   `json:"covers,omitempty"`  // what the file is relative to the signed revision
	Changes []string `json:"changes,omitempty"` // what the later updates changed
}

var oidSHA1WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}

// sigResult is what checking one signature value found.
type sigResult struct {
	sum        *SignatureSummary
	checks     []CertCheck
	signer     *smx509.Certificate
	certs      []*smx509.Certificate
	claimed    time.Time // the signer's claimed signing time, zero if none
	trustedAt  time.Time // the time of the signature's own trusted timestamp, zero if none
	docStampAt time.Time // for a document timestamp: its trusted time
	ok         bool      // the value verifies over unchanged bytes
	verified   *signing.Verified
}

// VerifyCertificatePDF verifies every signature of a PDF and, when it is an e-certificate,
// its status in the library.
func (a *Archive) VerifyCertificatePDF(doc []byte) *CertReport {
	rep := &CertReport{Kind: "pdf"}
	info := pdfsig.Inspect(doc)
	if len(info.Signatures) == 0 {
		rep.add(CertCheck{Check: CheckSignature, Status: eep.Fail, Detail: "the PDF has no signature"})
		a.identifierChecks(rep, doc, nil, "pdf", "")
		return rep.finish()
	}
	results := make([]*sigResult, len(info.Signatures))
	for i := range info.Signatures {
		results[i] = a.checkPDFSignature(rep, doc, info, i)
	}
	var firstSigner *smx509.Certificate
	for i, r := range results {
		s := info.Signatures[i]
		rep.Checks = append(rep.Checks, r.checks...)
		if r.sum.Kind == "signature" {
			// Certificates are checked at the earliest trusted time that shows the signature
			// existed: its own timestamp, or a document timestamp over a later revision.
			at, basis := r.trustedAt, "its timestamp"
			for j := i + 1; j < len(results); j++ {
				if t := results[j].docStampAt; !t.IsZero() && (at.IsZero() || t.Before(at)) && info.Signatures[j].Revision > s.Revision {
					at, basis = t, fmt.Sprintf("the document timestamp of signature %d", j+1)
				}
			}
			if at.IsZero() {
				at, basis = r.claimed, "the claimed signing time"
				if at.IsZero() {
					at, basis = a.now(), "the time of this check"
				}
				rep.add(CertCheck{Check: CheckTimestamp, Status: eep.Warn, Where: r.sum.Where,
					Detail: "no trusted timestamp shows when it was signed: the signer's certificate is checked at " + basis})
			}
			if !r.claimed.IsZero() {
				st := r.claimed
				r.sum.SignedAt, rep.SignedAt = &st, &st
			}
			r.sum.Anchor, r.sum.Trusted = a.signerChecks(rep, r.sum.Where, r.signer, r.certs, at, r.ok, basis)
			if r.sum.Trusted {
				a.revocationChecks(rep, r.sum.Where, r.signer, r.certs, at, info.DSS)
			}
			if firstSigner == nil {
				firstSigner = r.signer
			}
		}
		r.sum.Valid = r.sum.Intact && r.sum.Trusted && !failedAt(rep, r.sum.Where)
		rep.Signatures = append(rep.Signatures, *r.sum)
	}
	// The signed digest ties the file to the library's copy: the last signature's, when it
	// covers the whole file.
	last := info.Signatures[len(info.Signatures)-1]
	if r := results[len(results)-1]; r.ok && last.CoversWhole && r.sum.Kind == "signature" {
		if v := r.verified; v != nil && v.ContentDigestAlg == "SM3" {
			rep.SignedSM3 = hex.EncodeToString(v.ContentDigest) // the signature's own digest: no second pass
		} else {
			h := signing.NewSM3()
			last.WriteCovered(doc, h)
			rep.SignedSM3 = hex.EncodeToString(h.Sum(nil))
		}
	}
	a.identifierChecks(rep, doc, firstSigner, "pdf", rep.SignedSM3)
	return rep.finish()
}

func failedAt(rep *CertReport, where string) bool {
	for _, c := range rep.Checks {
		if c.Where == where && c.Status == eep.Fail {
			return true
		}
	}
	return false
}

// checkPDFSignature checks signature i's value, what it covers and what changed after it.
func (a *Archive) checkPDFSignature(rep *CertReport, doc []byte, info *pdfsig.Document, i int) *sigResult {
	s := info.Signatures[i]
	kind := "signature"
	if s.Type == "DocTimeStamp" || s.SubFilter == "ETSI.RFC3161" {
		kind = "document timestamp"
	}
	where := fmt.Sprintf("%s %d (revision %d of %d)", kind, i+1, s.Revision, s.Revisions)
	if s.Revision == 0 {
		where = fmt.Sprintf("%s %d", kind, i+1)
	}
	r := &sigResult{sum: &SignatureSummary{Index: i + 1, Kind: kind, Where: where, Revision: s.Revision, Revisions: s.Revisions}}
	add := func(c CertCheck) { c.Where = where; r.checks = append(r.checks, c) }
	if len(s.Problems) > 0 {
		add(CertCheck{Check: CheckDocument, Status: eep.Fail, Detail: "what the signature covers cannot be trusted: " + strings.Join(s.Problems, "; ")})
		return r
	}
	covered := func(w io.Writer) { s.WriteCovered(doc, w) }
	var v *signing.Verified
	var sigErr error
	var sigValue, token []byte
	switch {
	case kind == "document timestamp":
		tok, err := signing.ParseToken(s.Contents) // the zero padding after the DER is ignored
		if err != nil {
			add(CertCheck{Check: CheckSignature, Status: eep.Fail, Detail: "the document timestamp is not an RFC 3161 token: " + err.Error()})
			return r
		}
		r.signer, r.certs = tok.Signer, tok.Certs
		v, sigErr = tok.Verify(covered)
		if sigErr == nil {
			r.sum.SignedAt = &tok.GenTime
			if _, _, err := a.chainAt(tok.Signer, tok.Certs, tok.GenTime, smx509.ExtKeyUsageTimeStamping); err == nil {
				r.docStampAt = tok.GenTime
				r.sum.Trusted = true
				add(CertCheck{Check: CheckTimestamp, Status: eep.Pass, Found: tok.GenTime.UTC().Format(time.RFC3339), Detail: fmt.Sprintf("document timestamp by %q, a trusted TSA", name(tok.Signer))})
			} else {
				add(CertCheck{Check: CheckTimestamp, Status: eep.Fail, Found: tok.GenTime.UTC().Format(time.RFC3339),
					Detail: fmt.Sprintf("the document timestamp is mathematically valid, but its TSA %q is not trusted: %v", name(tok.Signer), err)})
			}
		}
	case s.SubFilter == "adbe.x509.rsa_sha1":
		for _, der := range s.Certs {
			if c, warn, err := signing.ParseCertificateLenient(der); err == nil {
				r.certs = append(r.certs, c)
				for _, w := range warn {
					add(CertCheck{Check: CheckSignature, Status: eep.Warn, Detail: w})
				}
			}
		}
		if len(r.certs) == 0 {
			add(CertCheck{Check: CheckSignature, Status: eep.Fail, Detail: "adbe.x509.rsa_sha1 without a readable /Cert: who signed cannot be known"})
			return r
		}
		r.signer = r.certs[0]
		if _, err := asn1.Unmarshal(s.Contents, &sigValue); err != nil {
			add(CertCheck{Check: CheckSignature, Status: eep.Fail, Detail: "the /Contents of an adbe.x509.rsa_sha1 signature is not a DER OCTET STRING: " + err.Error()})
			return r
		}
		v, sigErr = signing.VerifyMessage(r.signer.PublicKey, pkix.AlgorithmIdentifier{Algorithm: oidSHA1WithRSA}, nil, covered, sigValue)
		if t, err := pdfsig.ParseDate(s.Time); err == nil {
			r.claimed = t
		}
	default:
		d, err := signing.ParseDetached(s.Contents)
		if err != nil {
			add(CertCheck{Check: CheckSignature, Status: eep.Fail, Found: s.SubFilter, Detail: "the signature value is not a CMS SignedData that can be read: " + err.Error()})
			return r
		}
		r.signer, r.certs, r.claimed, token, sigValue = d.Signer, d.Certs, d.SigningTime, d.Token, d.SignatureValue()
		if r.claimed.IsZero() {
			if t, err := pdfsig.ParseDate(s.Time); err == nil {
				r.claimed = t
			}
		}
		for _, w := range d.Warnings {
			add(CertCheck{Check: CheckSignature, Status: eep.Warn, Detail: "encoding laxity: " + w})
		}
		if d.Signers > 1 {
			add(CertCheck{Check: CheckSignature, Status: eep.Warn, Detail: fmt.Sprintf("the SignedData has %d signers: the first is verified", d.Signers)})
		}
		switch {
		case d.HasContent && s.SubFilter == "adbe.pkcs7.sha1":
			// The content is the SHA-1 of the signed bytes; the signature is over it.
			if v, sigErr = d.VerifyContent(func(w io.Writer) { w.Write(d.Content) }); sigErr == nil {
				h := sha1.New()
				covered(h)
				if !bytes.Equal(h.Sum(nil), d.Content) {
					sigErr = signing.ErrDigestMismatch
				}
				v.Warnings = append(v.Warnings, "weak algorithm: SHA-1 (adbe.pkcs7.sha1)")
			}
		case d.HasContent:
			sigErr = fmt.Errorf("the SignedData encapsulates %d bytes of content, so its signature is over them and not over the document's bytes (a %s signature carries none)", len(d.Content), orDefault(s.SubFilter, "detached"))
		default:
			v, sigErr = d.VerifyContent(covered)
		}
	}
	switch {
	case errors.Is(sigErr, signing.ErrDigestMismatch):
		add(CertCheck{Check: CheckDocument, Status: eep.Fail, Detail: fmt.Sprintf("the signed bytes of revision %d have changed since signing: their digest is not the one signed", s.Revision)})
	case errors.Is(sigErr, signing.ErrUnsupportedAlgorithm):
		add(CertCheck{Check: CheckSignature, Status: eep.Fail, Detail: "cannot be verified here: " + sigErr.Error()})
	case sigErr != nil:
		add(CertCheck{Check: CheckSignature, Status: eep.Fail, Detail: sigErr.Error()})
	default:
		r.ok, r.sum.Intact, r.sum.Algorithm, r.verified = true, true, v.Algorithm, v
		add(CertCheck{Check: CheckDocument, Status: eep.Pass, Detail: fmt.Sprintf("the %d signed bytes of revision %d are unchanged", s.ByteRange[1]+s.ByteRange[3], s.Revision)})
		add(CertCheck{Check: CheckSignature, Status: eep.Pass, Found: v.Algorithm, Detail: fmt.Sprintf("%s signature verifies (%s)", v.Algorithm, orDefault(s.SubFilter, "no SubFilter"))})
		for _, w := range v.Warnings {
			add(CertCheck{Check: CheckSignature, Status: eep.Warn, Detail: w})
		}
	}
	if r.signer != nil {
		r.sum.Signer = name(r.signer)
	}
	if token != nil && kind == "signature" {
		r.trustedAt = a.signatureTimestamp(rep, add, token, sigValue)
	}
	a.changeChecks(add, doc, info, s, r.sum)
	return r
}

// signatureTimestamp checks an RFC 3161 token over a signature value and returns its time
// when a trusted TSA made it.
func (a *Archive) signatureTimestamp(rep *CertReport, add func(CertCheck), token, sigValue []byte) time.Time {
	tok, err := signing.ParseToken(token)
	if err != nil {
		add(CertCheck{Check: CheckTimestamp, Status: eep.Fail, Detail: "the signature timestamp does not parse: " + err.Error()})
		return time.Time{}
	}
	if _, err := tok.Verify(func(w io.Writer) { w.Write(sigValue) }); err != nil {
		add(CertCheck{Check: CheckTimestamp, Status: eep.Fail, Detail: err.Error()})
		return time.Time{}
	}
	when := tok.GenTime.UTC().Format(time.RFC3339)
	if _, _, err := a.chainAt(tok.Signer, tok.Certs, tok.GenTime, smx509.ExtKeyUsageTimeStamping); err != nil {
		add(CertCheck{Check: CheckTimestamp, Status: eep.Warn, Found: when,
			Detail: fmt.Sprintf("the signature timestamp is mathematically valid, but its TSA %q is not trusted, so its time is not used: %v", name(tok.Signer), err)})
		return time.Time{}
	}
	add(CertCheck{Check: CheckTimestamp, Status: eep.Pass, Found: when, Detail: fmt.Sprintf("timestamped by %q", name(tok.Signer))})
	if rep.TimestampAt == nil {
		gt := tok.GenTime
		rep.TimestampAt = &gt
	}
	return tok.GenTime
}

// changeChecks reports what the file is relative to the revision a signature signs.
func (a *Archive) changeChecks(add func(CertCheck), doc []byte, info *pdfsig.Document, s pdfsig.SignatureInfo, sum *SignatureSummary) {
	if s.Revision == 0 {
		return
	}
	trailing := trailingBytes(doc)
	switch {
	case s.Revision == s.Revisions && trailing == 0:
		sum.Covers = "the whole file"
		add(CertCheck{Check: CheckChanges, Status: eep.Pass, Detail: "the file is exactly the signed revision: nothing was added after signing"})
		return
	case trailing > 0:
		sum.Covers = fmt.Sprintf("revision %d; %d bytes follow the last revision", s.Revision, trailing)
		add(CertCheck{Check: CheckChanges, Status: eep.Fail, Detail: fmt.Sprintf("%d bytes follow the file's last %%%%EOF: they are outside every revision", trailing)})
	}
	counts := map[string]int{}
	var bad []string
	for _, c := range s.Changes {
		counts[c.Kind]++
		if !c.Allowed {
			bad = append(bad, fmt.Sprintf("revision %d: %s", c.Revision, c.Detail))
		}
	}
	var kinds []string
	for k, n := range counts {
		kinds = append(kinds, fmt.Sprintf("%s ×%d", k, n))
	}
	sort.Strings(kinds)
	sum.Changes = kinds
	later := s.Revisions - s.Revision
	if len(bad) > 0 {
		sum.Covers = fmt.Sprintf("revision %d of %d; later revisions change it in ways a signature does not allow", s.Revision, s.Revisions)
		add(CertCheck{Check: CheckChanges, Status: eep.Fail, Found: strings.Join(bad, "; "),
			Detail: fmt.Sprintf("the %d later revision(s) change what was signed: the document shown is not the one signed", later)})
		return
	}
	if later > 0 {
		sum.Covers = fmt.Sprintf("revision %d of %d; the file extends it with permitted changes", s.Revision, s.Revisions)
		add(CertCheck{Check: CheckChanges, Status: eep.Pass, Found: strings.Join(kinds, ", "),
			Detail: fmt.Sprintf("the file is the signed revision extended by %d later revision(s) with permitted changes only (annotations, form fields, later signatures and timestamps, validation data, metadata)", later)})
	}
}

// trailingBytes counts the non-white bytes after the file's last %%EOF.
func trailingBytes(doc []byte) int {
	end := bytes.LastIndex(doc, []byte("%%EOF"))
	if end < 0 {
		return 0
	}
	return len(bytes.TrimSpace(doc[end+len("%%EOF"):]))
}

// chainAt checks a certificate against the archive's roots and the trust anchors for
// documents made elsewhere, returning the anchor it chains to.
func (a *Archive) chainAt(c *smx509.Certificate, others []*smx509.Certificate, at time.Time, usage ...smx509.ExtKeyUsage) (*smx509.Certificate, []string, error) {
	if c == nil {
		return nil, nil, errors.New("no certificate")
	}
	chain, warn, err := signing.VerifyChainForDocument(c, others, a.docTrust(), append(a.pki.Roots(), a.anchors...), at, usage...)
	if err != nil {
		return nil, nil, err
	}
	return chain[len(chain)-1], warn, nil
}

func name(c *smx509.Certificate) string {
	if c == nil {
		return ""
	}
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName
	}
	return c.Subject.String()
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
