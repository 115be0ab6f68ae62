package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/signing/tlsconf"
)

func initArchive(t *testing.T, data string, extra ...string) {
	t.Helper()
	if out, err := exec.Command(binary, append([]string{"init", "--data", data}, extra...)...).CombinedOutput(); err != nil {
		t.Fatalf("init %s: %v\n%s", data, err, out)
	}
}

func tlsFlags(data string) []string {
	dev := tlsconf.DevFiles(filepath.Join(data, "pki"))
	return []string{"--tls-cert", dev.ServerCert, "--tls-key", dev.ServerKey}
}

// serve refuses plain HTTP off loopback unless told --insecure-http, and says why.
func TestServeRefusesPlainHTTPOffLoopback(t *testing.T) {
	data := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	_, p, _ := strings.Cut(port, ":")
	cmd := exec.Command(binary, "serve", "--data", data, "--addr", "0.0.0.0:"+p)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refusing to serve plain HTTP on 0.0.0.0:"+p) || !strings.Contains(string(out), "--tls-cert") ||
		!strings.Contains(string(out), "--insecure-http") {
		t.Fatalf("serve on 0.0.0.0 without TLS: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(data, "index.db")); err == nil {
		t.Fatal("the refused start made an archive")
	}
	cmd = exec.Command(binary, "serve", "--data", data, "--addr", "0.0.0.0:"+p, "--insecure-http")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitFor(t, func() bool {
		resp, err := http.Get("http://127.0.0.1:" + p + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// serve --tls-cert speaks TLS 1.3 (OpenSSL says so) and HTTP/2, sends HSTS, answers a
// plain-HTTP request with an error, and takes a renewed certificate on SIGHUP.
func TestServeTLS(t *testing.T) {
	data := t.TempDir()
	initArchive(t, data, "--tls-hosts", "localhost,127.0.0.1")
	srv, err := startServer(binary, data, tlsFlags(data)...)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Kill()
	addr := strings.TrimPrefix(srv.URL, "https://")
	resp, err := srv.Client.Get(srv.URL + "/api/v1/trust")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.TLS == nil || resp.TLS.Version != tls.VersionTLS13 ||
		resp.Header.Get("Strict-Transport-Security") != "max-age=31536000" {
		t.Fatalf("over TLS: %s, %+v, HSTS %q", resp.Proto, resp.TLS, resp.Header.Get("Strict-Transport-Security"))
	}
	first := resp.TLS.PeerCertificates[0].SerialNumber

	dev := tlsconf.DevFiles(filepath.Join(data, "pki"))
	out, err := exec.Command("openssl", "s_client", "-connect", addr, "-CAfile", dev.Root, "-servername", "localhost",
		"-verify_return_error", "-brief").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "Protocol version") {
		t.Fatalf("openssl s_client: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Protocol version: TLSv1.3") || !strings.Contains(string(out), "Verification: OK") {
		t.Fatalf("openssl s_client:\n%s", out)
	}
	// TLS 1.1 is refused.
	out, _ = exec.Command("openssl", "s_client", "-connect", addr, "-CAfile", dev.Root, "-tls1_1", "-brief").CombinedOutput()
	if strings.Contains(string(out), "Protocol version: TLSv1.1") {
		t.Fatalf("TLS 1.1 was accepted:\n%s", out)
	}

	// Plain HTTP to the TLS port gets no answer from dangan.
	if resp, err := http.Get("http://" + addr + "/api/v1/trust"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || bytes.Contains(body, []byte("BEGIN CERTIFICATE")) {
			t.Fatalf("plain HTTP was served: %d %s", resp.StatusCode, body)
		}
	}

	// A new certificate (other host names), then SIGHUP: new connections get it.
	initArchive(t, data, "--tls-hosts", "localhost,127.0.0.1,archive.example")
	srv.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool {
		c, err := tlsClientFor(data) // a new connection
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Get(srv.URL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.Cmp(first) != 0 && len(resp.TLS.PeerCertificates[0].DNSNames) == 2
	})
}

// Two archives over mutual TLS: the department's archive transfers to the county archive,
// which requires client certificates and binds the department's token to its certificate.
// A client without a certificate, or with one from a root the county does not trust, is
// refused at the handshake; the bound token with another certificate gets 401.
func TestMutualTLSTransfer(t *testing.T) {
	root := t.TempDir()
	deptData, countyData, strangerData := filepath.Join(root, "dept"), filepath.Join(root, "county"), filepath.Join(root, "stranger")
	initArchive(t, deptData)
	initArchive(t, countyData, "--tls-hosts", "localhost,127.0.0.1")
	initArchive(t, strangerData)
	// Trust, as the README sets it up: the county takes the department's signing root and
	// its TLS root; the department takes the county's signing root.
	deptRoots := append(must(os.ReadFile(filepath.Join(deptData, "pki", "root.pem"))), must(os.ReadFile(filepath.Join(deptData, "pki", "tls-root.pem")))...)
	os.WriteFile(filepath.Join(countyData, "pki", "extra-roots.pem"), deptRoots, 0o644)
	copyFile(t, filepath.Join(countyData, "pki", "root.pem"), filepath.Join(deptData, "pki", "extra-roots.pem"))
	out, err := exec.Command(binary, "token", "create", "--data", countyData, "--role", "department", "--org", BenchUSCC,
		"--note", "dept transfers", "--ttl", "720h", "--client-cert", filepath.Join(deptData, "pki", "tls-client.pem")).Output()
	if err != nil {
		t.Fatal(err)
	}
	countyTok := lastWord(string(out))
	tokFile := filepath.Join(root, "county-token")
	os.WriteFile(tokFile, []byte(countyTok), 0o600)

	const offset = "26280h" // three years ahead: the permanent cases of 2016-2018 are due
	county, err := startServer(binary, countyData, append(tlsFlags(countyData), "--clock-offset", offset, "--tls-client-auth", "require")...)
	if err != nil {
		t.Fatal(err)
	}
	defer county.Kill()
	dept, err := startServer(binary, deptData, "--clock-offset", offset, "--county-url", county.URL,
		"--county-token-file", tokFile, "--county-tls-root", filepath.Join(countyData, "pki", "tls-root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	defer dept.Kill()
	tok, err := dept.Token(archive.RoleDepartment, BenchUSCC)
	if err != nil {
		t.Fatal(err)
	}
	files, order := smallFiles(t)
	for i := 0; i < 6; i++ {
		meta := benchCase(fmt.Sprintf("MTLS-%d", i), order)
		meta["retention"] = "Y"
		meta["accepted_at"] = fmt.Sprintf("%d-03-01T09:00:00+08:00", 2016+i%3)
		meta["finished_at"] = fmt.Sprintf("%d-03-05T16:30:00+08:00", 2016+i%3)
		if status, body, err := postMultipart(http.DefaultClient, dept.URL, tok, meta, files, order); err != nil || status != http.StatusCreated {
			t.Fatalf("ingest: %d %v %s", status, err, body)
		}
	}
	var tr archive.Transfer
	postJSON(t, dept.URL+"/api/v1/transfers", tok, map[string]any{"due": true}, &tr, http.StatusAccepted)
	if tr.Total != 6 {
		t.Fatalf("a batch of %d", tr.Total)
	}
	waitFor(t, func() bool {
		getJSON(t, dept.URL+"/api/v1/transfers/"+tr.Batch, tok, &tr)
		if tr.Status == archive.TransferFailed {
			t.Fatalf("transfer failed: %s", tr.Error)
		}
		return tr.Status == archive.TransferDone
	})
	if len(tr.Accepted) != 6 || tr.Receipt == nil {
		t.Fatalf("transfer: %+v", tr)
	}
	// At the county archive (reached over mTLS with its own client certificate), the six
	// packages are there.
	countyArchive, err := county.Token(archive.RoleArchive, "")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, county.URL+"/api/v1/statistics", nil)
	req.Header.Set("Authorization", "Bearer "+countyArchive)
	resp, err := county.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Total struct{ Count int } `json:"total"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Total.Count != 6 {
		t.Fatalf("the county archive holds %d packages", st.Total.Count)
	}

	// Without a client certificate, or with a stranger's: no connection.
	countyRoots, _, err := tlsconf.LoadPool(filepath.Join(countyData, "pki", "tls-root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	stranger := tlsconf.DevFiles(filepath.Join(strangerData, "pki"))
	strangerCert, err := tlsconf.NewReloader(stranger.ClientCert, stranger.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, cert := range map[string]*tlsconf.Reloader{"no certificate": nil, "a stranger's certificate": strangerCert} {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsconf.Client(countyRoots, cert)}, Timeout: time.Minute}
		resp, err := c.Get(county.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: HTTP %d", name, resp.StatusCode)
		}
		if !strings.Contains(err.Error(), "tls") && !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("%s: not refused at the handshake: %v", name, err)
		}
	}
	// The department's token with the county's own client certificate: 401.
	req, _ = http.NewRequest(http.MethodGet, county.URL+"/api/v1/packages", nil)
	req.Header.Set("Authorization", "Bearer "+countyTok)
	resp, err = county.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !bytes.Contains(body, []byte("client certificate")) {
		t.Fatalf("the bound token with another certificate: %d %s", resp.StatusCode, body)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// dangan token create/list/revoke work offline on the data directory, and the server then
// refuses the revoked token with 401.
func TestTokenCLI(t *testing.T) {
	data := t.TempDir()
	initArchive(t, data)
	out, err := exec.Command(binary, "token", "create", "--data", data, "--role", "auditor", "--note", "审计 李", "--ttl", "2h").Output()
	if err != nil {
		t.Fatal(err)
	}
	tok := lastWord(string(out))
	out, err = exec.Command(binary, "token", "list", "--data", data, "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var list []archive.TokenInfo
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var id string
	for _, ti := range list {
		if ti.Note == "审计 李" {
			id = ti.ID
			if ti.State != "valid" || ti.Expires.Sub(ti.Created) != 2*time.Hour {
				t.Fatalf("listed: %+v", ti)
			}
		}
	}
	if id == "" || bytes.Contains(out, []byte(tok)) {
		t.Fatalf("list: %s", out)
	}
	if out, err := exec.Command(binary, "token", "revoke", "--data", data, id).CombinedOutput(); err != nil || !strings.Contains(string(out), "revoked token "+id) {
		t.Fatalf("revoke: %v %s", err, out)
	}
	if out, err := exec.Command(binary, "token", "revoke", "--data", data, "0123456789ab").CombinedOutput(); err == nil {
		t.Fatalf("revoking an unknown token: %s", out)
	}
	srv, err := startServer(binary, data)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Kill()
	status, body := get(t, srv.URL+"/api/v1/audits", tok)
	if status != http.StatusUnauthorized || !bytes.Contains(body, []byte("revoked")) {
		t.Fatalf("the revoked token: %d %s", status, body)
	}
}
