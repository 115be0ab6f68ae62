package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emmansun/gmsm/pkcs7"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/api"
	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/formats/certdoc"
	"github.com/dangan-archive/dangan/formats/pdfsig"
	"github.com/dangan-archive/dangan/signing"
)

// VerifyBenchResult is the final JSON line of `dangan bench verify`.
type VerifyBenchResult struct {
	PDFBytes          int     `json:"pdf_bytes"`
	VerifyRequests    int     `json:"verify_requests"`
	VerifyReqPerS     float64 `json:"verify_req_per_s"`
	VerifyP50ms       float64 `json:"verify_p50_ms"`
	VerifyP99ms       float64 `json:"verify_p99_ms"`
	VerifyCPUmsPerReq float64 `json:"verify_cpu_ms_per_req"` // server and load generator together
	// A foreign RSA-2048 signed PDF (signed by gmsm's pkcs7, SHA-256): its signature is
	// verified, its signer is untrusted.
	RSAPDFBytes       int     `json:"rsa_pdf_bytes"`
	RSAReqPerS        float64 `json:"rsa_pdf_req_per_s"`
	RSAP99ms          float64 `json:"rsa_pdf_p99_ms"`
	OFDBytes          int     `json:"ofd_bytes"`
	OFDReqPerS        float64 `json:"ofd_req_per_s"` // an SM2-sealed OFD (GB/T 38540)
	OFDP99ms          float64 `json:"ofd_p99_ms"`
	RSAVerifyPerS     float64 `json:"raw_rsa2048_verify_per_s_one_core"`
	StatusRequests    int     `json:"status_requests"`
	StatusReqPerS     float64 `json:"status_req_per_s"`
	StatusP99ms       float64 `json:"status_p99_ms"`
	SM3MBPerSOneCore  float64 `json:"raw_sm3_mb_per_s_one_core"`
	SM2VerifyPerSCore float64 `json:"raw_sm2_verify_per_s_one_core"`
	Clients           int     `json:"clients"`
	Cores             int     `json:"cores"`
}

func cmdBenchVerify(args []string) error {
	fs := flag.NewFlagSet("bench verify", flag.ExitOnError)
	seconds := fs.Float64("seconds", 5, "seconds of load for each of verification and status lookups")
	clients := fs.Int("clients", 16, "concurrent clients")
	fs.Parse(args)
	res, err := runBenchVerify(time.Duration(*seconds*float64(time.Second)), *clients, os.Stderr)
	if err != nil {
		return err
	}
	return printResult(res)
}

// benchCertificate is a certificate with enough data to make a signed PDF of about 100 KB.
func benchCertificate() archive.CertificateRequest {
	fields := []certdoc.Field{
		{Name: "经营场所", Value: "某县城关镇人民路十八号综合楼一层东侧门面"},
		{Name: "主体业态", Value: "餐饮服务经营者（小型餐馆）"},
		{Name: "经营项目", Value: "热食类食品制售、冷食类食品制售、生食类食品制售、半成品制售、自制饮品制售、糕点类食品制售（含裱花蛋糕）"},
		{Name: "法定代表人", Value: "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张"},
		{Name: "备注", Value: "本证照依据《中华人民共和国食品安全法》及相关规定颁发，持证者应当在经营场所显著位置悬挂或者摆放。"},
	}
	return archive.CertificateRequest{TypeCode: "11100000000013338W011", Title: "食品经营许可证", Number: "JY14301020012345",
		Holder: archive.CertHolder{Name: "某县张喆小吃店", Code: "91110108MA01A2B3CF", CodeType: "001"},
		Fields: fields, ValidFrom: time.Now().Format("2006") + "-01-01", ValidUntil: time.Now().AddDate(5, 0, 0).Format("2006") + "-12-31", IssuerName: "某县市场监督管理局"}
}

func runBenchVerify(d time.Duration, clients int, progress io.Writer) (*VerifyBenchResult, error) {
	dir, err := os.MkdirTemp("", "dangan-bench-verify-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	res := &VerifyBenchResult{Clients: clients, Cores: runtime.NumCPU()}
	res.SM3MBPerSOneCore = sm3InMemory()
	if res.SM2VerifyPerSCore, err = sm2VerifyRate(); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "raw: SM3 %.0f MiB/s, SM2 verify %.0f/s on one core\n", res.SM3MBPerSOneCore, res.SM2VerifyPerSCore)

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := archive.Open(archive.Config{DataDir: dir, Logger: quiet, NoBackgroundAudit: true, NoConverters: true, ArchiveName: "dangan bench"})
	if err != nil {
		return nil, err
	}
	defer a.Close()
	issuer := archive.Principal{Role: archive.RoleIssuer, Org: "11430000006122244L"}
	c, err := a.IssueCertificate(context.Background(), issuer, benchCertificate())
	if err != nil {
		return nil, err
	}
	rc, _, err := a.CertificateFile(context.Background(), archive.Principal{Role: archive.RoleArchive}, c.Identifier, "pdf")
	if err != nil {
		return nil, err
	}
	pdf, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	res.PDFBytes = len(pdf)
	if rc, _, err = a.CertificateFile(context.Background(), archive.Principal{Role: archive.RoleArchive}, c.Identifier, "ofd"); err != nil {
		return nil, err
	}
	ofdDoc, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	res.OFDBytes = len(ofdDoc)
	rsaPDF, err := foreignRSAPDF()
	if err != nil {
		return nil, fmt.Errorf("make the RSA-signed PDF: %w", err)
	}
	res.RSAPDFBytes = len(rsaPDF)
	if res.RSAVerifyPerS, err = rsaVerifyRate(); err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: api.New(a, api.Options{Logger: quiet, PublicRate: -1})}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}

	// post verifies a file; ok is the verdict, or for a foreign file (whose signer is not
	// trusted) that every signature is intact.
	post := func(body []byte, ct string, foreign bool) (bool, error) {
		resp, err := client.Post(base+"/api/v1/verify?purpose=bench", ct, bytes.NewReader(body))
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		var rep struct {
			Valid      bool `json:"valid"`
			Signatures []struct {
				Intact bool `json:"intact"`
			} `json:"signatures"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil || resp.StatusCode != 200 {
			return false, fmt.Errorf("verify: %d %v", resp.StatusCode, err)
		}
		if foreign {
			return len(rep.Signatures) > 0 && rep.Signatures[0].Intact && !rep.Valid, nil
		}
		return rep.Valid, nil
	}
	verify := func() (bool, error) { return post(pdf, "application/pdf", false) }
	verifyRSA := func() (bool, error) { return post(rsaPDF, "application/pdf", true) }
	verifyOFD := func() (bool, error) { return post(ofdDoc, "application/ofd", false) }
	for name, fn := range map[string]func() (bool, error){"dangan's SM2 PDF": verify, "the RSA PDF": verifyRSA, "the sealed OFD": verifyOFD} {
		if ok, err := fn(); err != nil || !ok {
			return nil, fmt.Errorf("%s does not verify as expected: %v", name, err)
		}
	}
	statusURL := base + "/api/v1/certificates/" + c.Identifier
	status := func() (bool, error) {
		resp, err := client.Get(statusURL)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			return false, fmt.Errorf("status: %d %v", resp.StatusCode, err)
		}
		return strings.Contains(string(b), `"status": "valid"`), nil
	}

	stop, err := cpuProfile() // the verification's
	if err != nil {
		return nil, err
	}
	cpu0 := cpuTime()
	n, rate, lat, err := load(d, clients, verify)
	stop()
	if err != nil {
		return nil, err
	}
	res.VerifyCPUmsPerReq = float64((cpuTime() - cpu0).Microseconds()) / 1000 / float64(n)
	res.VerifyRequests, res.VerifyReqPerS, res.VerifyP50ms, res.VerifyP99ms = n, rate, pct(lat, 50), pct(lat, 99)
	fmt.Fprintf(progress, "verify: %d requests of a %d-byte signed PDF, %.0f/s, p50 %.1f ms, p99 %.1f ms\n", n, len(pdf), rate, res.VerifyP50ms, res.VerifyP99ms)
	if n, rate, lat, err = load(d, clients, verifyRSA); err != nil {
		return nil, err
	}
	res.RSAReqPerS, res.RSAP99ms = rate, pct(lat, 99)
	fmt.Fprintf(progress, "verify: %d requests of a %d-byte RSA-2048 signed PDF, %.0f/s, p99 %.1f ms (raw RSA-2048 verify %.0f/s on one core)\n", n, len(rsaPDF), rate, res.RSAP99ms, res.RSAVerifyPerS)
	if n, rate, lat, err = load(d, clients, verifyOFD); err != nil {
		return nil, err
	}
	res.OFDReqPerS, res.OFDP99ms = rate, pct(lat, 99)
	fmt.Fprintf(progress, "verify: %d requests of a %d-byte SM2-sealed OFD, %.0f/s, p99 %.1f ms\n", n, len(ofdDoc), rate, res.OFDP99ms)
	n, rate, lat, err = load(d, clients, status)
	if err != nil {
		return nil, err
	}
	res.StatusRequests, res.StatusReqPerS, res.StatusP99ms = n, rate, pct(lat, 99)
	fmt.Fprintf(progress, "status: %d lookups, %.0f/s, p99 %.1f ms\n", n, rate, res.StatusP99ms)
	return res, nil
}

// load runs fn from clients goroutines for d and returns the count, the rate and the
// latencies. Any error or false result stops it with an error.
func load(d time.Duration, clients int, fn func() (bool, error)) (int, float64, []time.Duration, error) {
	var mu sync.Mutex
	var all []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) {
				t := time.Now()
				ok, err := fn()
				if err == nil && !ok {
					err = fmt.Errorf("a check failed under load")
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, 0, nil, firstErr
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return len(all), float64(len(all)) / time.Since(start).Seconds(), all, nil
}

func pct(sorted []time.Duration, p int) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[min(len(sorted)-1, len(sorted)*p/100)].Microseconds()) / 1000
}

// sm2VerifyRate is how many SM2 signatures one core verifies a second here.
func sm2VerifyRate() (float64, error) {
	key, err := signing.GenerateKey()
	if err != nil {
		return 0, err
	}
	msg := sm3.Sum([]byte("dangan"))
	sig, err := signing.Sign(key, msg[:])
	if err != nil {
		return 0, err
	}
	n := 0
	start := time.Now()
	for time.Since(start) < 300*time.Millisecond {
		if err := signing.Verify(&key.PublicKey, msg[:], sig); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// foreignRSAPDF is a one-page PDF signed with an RSA-2048 key by gmsm's pkcs7 (SHA-256),
// as a bank's or another province's signer would send it.
func foreignRSAPDF() ([]byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "某银行电子回单专用"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := smx509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	doc, base, err := certdoc.PDF(&certdoc.Certificate{Title: "电子回单", Holder: "某县张喆小吃店", Issuer: "某银行",
		IssuedAt: time.Now(), ValidFrom: time.Now(), ValidUntil: time.Now().AddDate(1, 0, 0), Fields: benchCertificate().Fields})
	if err != nil {
		return nil, err
	}
	p, err := pdfsig.Prepare(doc, base, pdfsig.Field{Name: "bank", Time: time.Now()})
	if err != nil {
		return nil, err
	}
	var covered bytes.Buffer
	p.WriteSigned(&covered)
	sd, err := pkcs7.NewSignedData(covered.Bytes())
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, err
	}
	sd.Detach()
	cms, err := sd.Finish()
	if err != nil {
		return nil, err
	}
	return p.Fill(cms)
}

// rsaVerifyRate is how many RSA-2048 PKCS #1 v1.5 signatures one core verifies a second.
func rsaVerifyRate() (float64, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return 0, err
	}
	digest := sha256.Sum256([]byte("dangan"))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		return 0, err
	}
	n := 0
	start := time.Now()
	for time.Since(start) < 300*time.Millisecond {
		if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
