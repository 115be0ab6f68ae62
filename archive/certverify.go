package archive

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/formats/certid"
	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/formats/ofd"
	"github.com/dangan-archive/dangan/signing"
	"github.com/dangan-archive/dangan/signing/ses"
)

// Verification of e-certificates: a PDF, an OFD or an identifier gives a report of checks,
// each with its outcome and, when it fails, why. Files signed elsewhere are verified as far
// as they allow; a good signature by a signer this archive does not trust is reported as
// exactly that, and the report is not valid.

// The checks a certificate report holds.
const (
	CheckIdentifier = "identifier"         // the identifier is well formed and names the signer's department
	CheckDocument   = "document-unchanged" // every digest matches: nothing changed or added since signing
	CheckSignature  = "signature"          // the signature value verifies with the signer's key
	CheckSigner     = "signer-trusted"     // the signer chains to a trusted root, valid and not revoked at signing
	CheckSeal       = "seal"               // the seal is made by a trusted seal maker, valid, held by the signer
	CheckTimestamp  = "timestamp"          // a trusted TSA timestamped the signature
	CheckStatus     = "status"             // the library's status of the certificate
	CheckRegistered = "registered-copy"    // the file is the copy the library issued
)

// CertCheck is one check of a certificate report.
type CertCheck struct {
	Check    string `json:"check"`
	Status   string `json:"status"` // eep.Pass, eep.Fail, eep.Warn (know this), eep.Skip (not checked)
	Where    string `json:"where,omitempty"`
	Detail   string `json:"detail,omitempty"`
	Expected string `json:"expected,omitempty"`
	Found    string `json:"found,omitempty"`
}

// CertReport is the result of verifying a certificate file or identifier.
type CertReport struct {
	Valid       bool        `json:"valid"`
	Kind        string      `json:"kind"` // pdf, ofd or identifier
	Identifier  string      `json:"identifier,omitempty"`
	SM3         string      `json:"sm3,omitempty"`        // of the file (OFD)
	SignedSM3   string      `json:"signed_sm3,omitempty"` // of the bytes a PDF's last signature covers
	Signers     []string    `json:"signers,omitempty"`
	SignedAt    *time.Time  `json:"signed_at,omitempty"`
	TimestampAt *time.Time  `json:"timestamp_at,omitempty"`
	Certificate *CertStatus `json:"certificate,omitempty"`
	// Signatures are the file's signatures, seals and document timestamps one by one.
	Signatures []SignatureSummary `json:"signatures,omitempty"`
	Checks     []CertCheck        `json:"checks"`
}

func (r *CertReport) add(c CertCheck) { r.Checks = append(r.Checks, c) }

// Failed lists the names of the checks that failed, once each.
func (r *CertReport) Failed() []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range r.Checks {
		if c.Status == eep.Fail && !seen[c.Check] {
			seen[c.Check] = true
			out = append(out, c.Check)
		}
	}
	return out
}

func (r *CertReport) finish() *CertReport {
	r.Valid = len(r.Checks) > 0
	for _, c := range r.Checks {
		if c.Status == eep.Fail {
			r.Valid = false
		}
	}
	return r
}

var identifierInFile = regexp.MustCompile(`1\.2\.156\.3005\.2\.[0-9A-Z]{21}\.[0-9A-Z]{18}\.[0-9A-Z]{1,32}\.[0-9]{3}\.[0-9A-Z]`)

// VerifyIdentifier reports an identifier's form and its status in the library.
func (a *Archive) VerifyIdentifier(s string) *CertReport {
	rep := &CertReport{Kind: "identifier", Identifier: s}
	if _, err := certid.Parse(s); err != nil {
		rep.add(CertCheck{Check: CheckIdentifier, Status: eep.Fail, Found: s, Detail: err.Error()})
		return rep.finish()
	}
	rep.add(CertCheck{Check: CheckIdentifier, Status: eep.Pass, Detail: "well formed, check character matches (GB/T 36904)"})
	a.statusChecks(rep, s, "", "")
	return rep.finish()
}

// statusChecks adds the library's status and, for a file, whether it is the issued copy.
func (a *Archive) statusChecks(rep *CertReport, identifier, format, fileSM3 string) {
	c, err := a.certificate(identifier)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			rep.add(CertCheck{Check: CheckStatus, Status: eep.Fail, Found: CertUnknown, Detail: "this certificate library has no certificate with this identifier"})
		} else {
			rep.add(CertCheck{Check: CheckStatus, Status: eep.Skip, Detail: "the library could not be read: " + err.Error()})
		}
		return
	}
	pub := c.Public(a.now())
	rep.Certificate = pub
	switch pub.Status {
	case CertValid:
		rep.add(CertCheck{Check: CheckStatus, Status: eep.Pass, Found: CertValid, Detail: "valid (01 有效) since " + pub.ValidFrom + untilText(pub.ValidUntil)})
	case CertRevoked:
		rep.add(CertCheck{Check: CheckStatus, Status: eep.Fail, Found: CertRevoked, Expected: CertValid,
			Detail: fmt.Sprintf("revoked (%s %s) at %s: %s", pub.RevokeCode, RevocationCodes[pub.RevokeCode], pub.RevokedAt.Format(time.RFC3339), pub.Reason)})
	case CertSuperseded:
		rep.add(CertCheck{Check: CheckStatus, Status: eep.Fail, Found: CertSuperseded, Expected: CertValid,
			Detail: "superseded (05 失效) by version " + pub.Successor})
	case CertExpired:
		rep.add(CertCheck{Check: CheckStatus, Status: eep.Fail, Found: CertExpired, Expected: CertValid, Detail: "expired (05 失效) after " + pub.ValidUntil})
	}
	if format == "" {
		return
	}
	// An OFD is compared whole; a PDF by what its signature covers (everything but the
	// signature value), which the signature check has tied to the file.
	want, what := c.OFDSM3, "the file's SM3"
	if format == "pdf" {
		want, what = c.PDFSignedSM3, "the SM3 of the signed bytes"
	}
	switch {
	case fileSM3 == "":
		rep.add(CertCheck{Check: CheckRegistered, Status: eep.Fail, Expected: want, Detail: "no verified signature covers the whole file, so it cannot be the copy the library issued"})
	case want == fileSM3:
		rep.add(CertCheck{Check: CheckRegistered, Status: eep.Pass, Detail: "the file is the " + strings.ToUpper(format) + " the library issued (" + what + " matches)"})
	default:
		rep.add(CertCheck{Check: CheckRegistered, Status: eep.Fail, Expected: want, Found: fileSM3, Detail: what + " differs from the " + strings.ToUpper(format) + " the library issued"})
	}
}

func untilText(until string) string {
	if until == "" {
		return ", no end"
	}
	return " until " + until
}

// identifierChecks finds the identifier in a file and checks it names the signer.
func (a *Archive) identifierChecks(rep *CertReport, text []byte, signer *smx509.Certificate, format, fileSM3 string) {
	m := identifierInFile.Find(text)
	if m == nil {
		rep.add(CertCheck{Check: CheckIdentifier, Status: eep.Skip, Detail: "the file carries no e-certificate identifier: it is verified as a signed document only"})
		return
	}
	rep.Identifier = string(m)
	id, err := certid.Parse(rep.Identifier)
	if err != nil {
		rep.add(CertCheck{Check: CheckIdentifier, Status: eep.Fail, Found: rep.Identifier, Detail: err.Error()})
		return
	}
	if signer != nil && signer.Subject.SerialNumber != "" && signer.Subject.SerialNumber != id.IssuerCode {
		rep.add(CertCheck{Check: CheckIdentifier, Status: eep.Fail, Expected: id.IssuerCode, Found: signer.Subject.SerialNumber,
			Detail: "the identifier names another issuing department than the one that signed"})
	} else {
		rep.add(CertCheck{Check: CheckIdentifier, Status: eep.Pass, Detail: "well formed, check character matches (GB/T 36904)"})
	}
	a.statusChecks(rep, rep.Identifier, format, fileSM3)
}

// signerChecks checks a signer's chain to the trusted roots and anchors at t (found from
// basis) and its revocation. It returns the anchor's name and whether the signer is trusted.
func (a *Archive) signerChecks(rep *CertReport, where string, signer *smx509.Certificate, others []*smx509.Certificate, t time.Time, sigOK bool, basis string) (string, bool) {
	if signer == nil {
		rep.add(CertCheck{Check: CheckSigner, Status: eep.Fail, Where: where, Detail: "the signature carries no signer certificate: who signed cannot be known"})
		return "", false
	}
	cn := name(signer)
	rep.Signers = append(rep.Signers, cn)
	anchor, warn, err := a.chainAt(signer, others, t)
	for _, w := range warn {
		rep.add(CertCheck{Check: CheckSigner, Status: eep.Warn, Where: where, Detail: w})
	}
	if err != nil {
		detail := fmt.Sprintf("%q (issued by %q) is not trusted by this archive at %s (%s): %v", cn, signer.Issuer.CommonName, t.UTC().Format(time.RFC3339), basis, err)
		if sigOK {
			detail = "the signature is mathematically valid, but " + detail
		}
		rep.add(CertCheck{Check: CheckSigner, Status: eep.Fail, Where: where, Found: cn, Detail: detail})
		return "", false
	}
	if when, revoked := signing.RevokedBefore(a.pki.CRLs, signer, t); revoked {
		rep.add(CertCheck{Check: CheckSigner, Status: eep.Fail, Where: where, Found: cn, Detail: "the signer's certificate was revoked at " + when.Format(time.RFC3339)})
		return name(anchor), false
	}
	rep.add(CertCheck{Check: CheckSigner, Status: eep.Pass, Where: where, Found: cn,
		Detail: fmt.Sprintf("chains to the trust anchor %q and was valid at %s (%s)", name(anchor), t.Format(time.RFC3339), basis)})
	return name(anchor), true
}

// tokenCheck checks a signature's timestamp (an RFC 3161 token over sigValue) and
// returns the time to check certificates at: the token's when a trusted TSA made it, else t.
func (a *Archive) tokenCheck(rep *CertReport, where string, token, sigValue []byte, t time.Time) time.Time {
	if len(token) == 0 {
		rep.add(CertCheck{Check: CheckTimestamp, Status: eep.Warn, Where: where, Detail: "no timestamp: the signing time is only the signer's claim"})
		return t
	}
	if at := a.signatureTimestamp(rep, func(c CertCheck) { c.Where = where; rep.add(c) }, token, sigValue); !at.IsZero() {
		return at
	}
	return t
}

// ErrNotOFD is returned (wrapped) for an upload that is not an OFD package.
var ErrNotOFD = errors.New("not an OFD package")

// VerifyCertificateOFD verifies an OFD's signatures and seals and, when it is an
// e-certificate, its status.
func (a *Archive) VerifyCertificateOFD(doc []byte) (*CertReport, error) {
	z, err := zip.NewReader(bytes.NewReader(doc), int64(len(doc)))
	if err != nil {
		return nil, fieldErr("file", fmt.Errorf("%w: %w: %v", ErrBadUpload, ErrNotOFD, err))
	}
	rep := &CertReport{Kind: "ofd", SM3: sm3Hex(doc)}
	sigs, err := ofd.ReadSignatures(z)
	if errors.Is(err, ofd.ErrNoSignatures) {
		rep.add(CertCheck{Check: CheckSignature, Status: eep.Fail, Detail: "the OFD has no signatures"})
	} else if err != nil {
		return nil, fieldErr("file", fmt.Errorf("%w: %w: %v", ErrBadUpload, ErrNotOFD, err))
	}
	var firstSigner *smx509.Certificate
	for i, s := range sigs {
		before := len(rep.Checks)
		signer := a.checkOFDSignature(rep, s)
		if firstSigner == nil {
			firstSigner = signer
		}
		sum := SignatureSummary{Index: i + 1, Kind: "signature", Where: fmt.Sprintf("signature %s (%s)", s.ID, s.Type), Signer: name(signer), Intact: true, Valid: true}
		if s.Type == "Seal" {
			sum.Kind = "seal"
		}
		for _, c := range rep.Checks[before:] {
			switch {
			case c.Status == eep.Fail && (c.Check == CheckDocument || c.Check == CheckSignature):
				sum.Intact, sum.Valid = false, false
			case c.Status == eep.Fail:
				sum.Valid = false
			case c.Check == CheckSigner && c.Status == eep.Pass:
				sum.Trusted = true
			case c.Check == CheckSignature && c.Status == eep.Pass && s.Type == "Seal":
				sum.Algorithm = "SM2 with SM3 (" + c.Found + ")" // the seal's layout
			case c.Check == CheckSignature && c.Status == eep.Pass:
				sum.Algorithm = c.Found
			}
		}
		sum.Valid = sum.Valid && sum.Trusted
		sum.Covers = fmt.Sprintf("%d files by their digests", len(s.References))
		rep.Signatures = append(rep.Signatures, sum)
	}
	var ofdXML []byte
	if f, err := z.Open("OFD.xml"); err == nil {
		var b bytes.Buffer
		_, err = b.ReadFrom(io.LimitReader(f, 1<<20))
		f.Close()
		if err == nil {
			ofdXML = b.Bytes()
		}
	}
	a.identifierChecks(rep, ofdXML, firstSigner, "ofd", rep.SM3)
	return rep.finish(), nil
}

func (a *Archive) checkOFDSignature(rep *CertReport, s ofd.Signature) *smx509.Certificate {
	where := fmt.Sprintf("signature %s (%s)", s.ID, s.Type)
	for _, p := range s.Problems {
		rep.add(CertCheck{Check: CheckDocument, Status: eep.Fail, Where: where, Detail: p})
	}
	for _, r := range s.References {
		c := CertCheck{Check: CheckDocument, Where: r.File, Expected: r.Expected, Found: r.Found}
		switch {
		case r.Problem != "":
			c.Status, c.Detail = eep.Fail, r.Problem
		case r.Match:
			c.Status, c.Detail, c.Expected, c.Found = eep.Pass, "SM3 matches", "", ""
		default:
			c.Status, c.Detail = eep.Fail, "the file changed after signing: its SM3 is not the one in Signature.xml"
		}
		rep.add(c)
	}
	for _, f := range s.Unreferenced {
		rep.add(CertCheck{Check: CheckDocument, Status: eep.Fail, Where: f, Detail: "the file is not covered by " + where + ": added after signing"})
	}
	if s.Weak {
		rep.add(CertCheck{Check: CheckDocument, Status: eep.Warn, Where: where, Detail: "weak algorithm: the references are " + s.Digest + " digests (collisions are practical)"})
	}
	if s.OFDXMLOutside {
		var uncovered []string
		for _, d := range s.DocRoots {
			if !s.Covers(d) {
				uncovered = append(uncovered, d)
			}
		}
		if len(uncovered) == 0 {
			rep.add(CertCheck{Check: CheckDocument, Status: eep.Warn, Where: "OFD.xml",
				Detail: "OFD.xml is outside " + where + "'s references, as the format allows (it gains its Signatures entry when a document is signed); the document root it names is covered"})
		} else {
			rep.add(CertCheck{Check: CheckDocument, Status: eep.Fail, Where: "OFD.xml",
				Detail: "OFD.xml is outside " + where + "'s references and names a document root the signature does not cover: " + strings.Join(uncovered, ", ")})
		}
	}
	if s.SignedValue == nil {
		return nil
	}
	sigXMLSum := sm3.Sum(s.SignatureXML)
	if p, err := ses.Parse(s.SignedValue); err == nil {
		return a.checkSeal(rep, where, s, p, sigXMLSum[:])
	} else if s.Type == "Seal" {
		rep.add(CertCheck{Check: CheckSeal, Status: eep.Fail, Where: where, Detail: "the signed value is not a GB/T 38540 seal signature: " + err.Error()})
		return nil
	}
	// Type="Sign": a GB/T 35275 SignedData over SM3(Signature.xml), or a bare value.
	d, err := signing.ParseDetached(s.SignedValue)
	if err != nil {
		if _, nerr := signing.NormalizeSignature(s.SignedValue); nerr == nil {
			rep.add(CertCheck{Check: CheckSignature, Status: eep.Skip, Where: where, Detail: "a bare SM2 signature value without a certificate: it cannot be checked"})
			rep.add(CertCheck{Check: CheckSigner, Status: eep.Fail, Where: where, Detail: "no signer certificate: who signed cannot be known"})
			return nil
		}
		rep.add(CertCheck{Check: CheckSignature, Status: eep.Fail, Where: where, Detail: "unreadable signed value: " + err.Error()})
		return nil
	}
	// Over Signature.xml with the signer's digest: the algorithm registry's, so RSA and
	// ECDSA signers and signatures without signed attributes verify too.
	v, sigErr := d.VerifyContent(func(w io.Writer) { w.Write(s.SignatureXML) })
	switch {
	case errors.Is(sigErr, signing.ErrDigestMismatch):
		rep.add(CertCheck{Check: CheckDocument, Status: eep.Fail, Where: s.Path, Detail: "Signature.xml changed after signing"})
	case sigErr != nil:
		rep.add(CertCheck{Check: CheckSignature, Status: eep.Fail, Where: where, Detail: sigErr.Error()})
	default:
		rep.add(CertCheck{Check: CheckSignature, Status: eep.Pass, Where: where, Found: v.Algorithm, Detail: v.Algorithm + " signature over Signature.xml verifies"})
		for _, w := range v.Warnings {
			rep.add(CertCheck{Check: CheckSignature, Status: eep.Warn, Where: where, Detail: w})
		}
	}
	for _, w := range d.Warnings {
		rep.add(CertCheck{Check: CheckSignature, Status: eep.Warn, Where: where, Detail: "encoding laxity: " + w})
	}
	t := a.now()
	if !d.SigningTime.IsZero() {
		t = d.SigningTime
	}
	t = a.tokenCheck(rep, where, d.Token, d.SignatureValue(), t)
	a.signerChecks(rep, where, d.Signer, d.Certs, t, sigErr == nil, "the signing time")
	return d.Signer
}

func (a *Archive) checkSeal(rep *CertReport, where string, s ofd.Signature, p *ses.Signature, sigXMLSum []byte) *smx509.Certificate {
	if bytes.Equal(p.DataHash, sigXMLSum) {
		rep.add(CertCheck{Check: CheckDocument, Status: eep.Pass, Where: s.Path, Detail: "the seal signature's data hash is the SM3 of Signature.xml"})
	} else {
		rep.add(CertCheck{Check: CheckDocument, Status: eep.Fail, Where: s.Path, Detail: "Signature.xml changed after sealing: its SM3 is not the signed data hash"})
	}
	if prop := strings.TrimSpace(p.Property); prop != "" && strings.TrimPrefix(prop, "/") != s.Path {
		rep.add(CertCheck{Check: CheckDocument, Status: eep.Warn, Where: s.Path, Expected: "/" + s.Path, Found: p.Property, Detail: "the seal signature names another Signature.xml path"})
	}
	sigErr := p.VerifySignature()
	if sigErr != nil {
		rep.add(CertCheck{Check: CheckSignature, Status: eep.Fail, Where: where, Detail: "the seal signature does not verify: " + sigErr.Error()})
	} else {
		rep.add(CertCheck{Check: CheckSignature, Status: eep.Pass, Where: where, Found: p.Layout, Detail: "SM2 signature over TBS_Sign verifies (" + p.Layout + ")"})
	}

	t := p.Time
	signedAt := p.Time
	rep.SignedAt = &signedAt
	t = a.tokenCheck(rep, where, p.TimeStamp, p.SignatureValue(), t)
	a.signerChecks(rep, where, p.Signer, nil, t, sigErr == nil, "the signing time")

	seal := p.Seal
	sealWhere := fmt.Sprintf("seal %q", seal.Name)
	var problems []string
	if err := seal.VerifyMaker(); err != nil {
		problems = append(problems, "the seal maker's signature does not verify: "+err.Error())
	} else if _, err := signing.VerifyChain(seal.Maker, nil, a.Trust(), t); err != nil {
		problems = append(problems, fmt.Sprintf("the seal maker %q is not trusted: %v", seal.Maker.Subject.CommonName, err))
	}
	if !seal.ValidAt(t) {
		problems = append(problems, fmt.Sprintf("the seal was not valid at %s (valid %s to %s)", t.Format(time.RFC3339), seal.ValidFrom.Format(time.RFC3339), seal.ValidTo.Format(time.RFC3339)))
	}
	if !p.SignerHoldsSeal() {
		problems = append(problems, "the signer's certificate is not one the seal lists")
	}
	if s.SealFile != nil && !bytes.Equal(s.SealFile, seal.Raw) {
		problems = append(problems, "Seal.esl differs from the seal inside the signature")
	}
	for _, w := range append(p.Warnings, seal.Warnings...) {
		rep.add(CertCheck{Check: CheckSignature, Status: eep.Warn, Where: where, Detail: "encoding laxity: " + w})
	}
	if len(problems) > 0 {
		rep.add(CertCheck{Check: CheckSeal, Status: eep.Fail, Where: sealWhere, Detail: strings.Join(problems, "; ")})
	} else {
		rep.add(CertCheck{Check: CheckSeal, Status: eep.Pass, Where: sealWhere,
			Detail: fmt.Sprintf("made by %q, valid at signing, held by the signer", seal.Maker.Subject.CommonName)})
	}
	return p.Signer
}
