package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Peer is another dangan archive reached over HTTP: for a department's archive, the county
// archive, which receives its transfers and witnesses its log. Each trusts the other's root
// (pki/extra-roots.pem); Token is one the county archive issued to this archive (a
// department token for the department whose records it transfers, or an archive token).
type Peer struct {
	URL    string
	Token  string
	Client *http.Client
}

// peerClient is shared so that connections to the county archive are kept alive across the
// packages of a batch.
var peerClient = &http.Client{Timeout: time.Hour}

// PeerError is a problem answer from the peer.
type PeerError struct {
	Status      int
	Type        string // the problem type without its urn:dangan:problem: prefix
	Detail      string
	Field       string
	WitnessSize *uint64
}

func (e *PeerError) Error() string {
	return fmt.Sprintf("county archive answered %d %s: %s", e.Status, e.Type, e.Detail)
}

// Temporary reports whether a retry may succeed.
func (e *PeerError) Temporary() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests || e.Status == 499
}

func jsonBody(v any) func() (io.Reader, error) {
	return func() (io.Reader, error) {
		b, err := json.Marshal(v)
		return bytes.NewReader(b), err
	}
}

// call sends a request and decodes a 2xx JSON answer into out. A network failure wraps
// ErrUnavailable; a problem answer is a *PeerError.
func (p *Peer) call(ctx context.Context, method, path, ctype string, body func() (io.Reader, error), out any) error {
	var r io.Reader
	if body != nil {
		var err error
		if r, err = body(); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(p.URL, "/")+path, r)
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Authorization", "Bearer "+p.Token)
	c := p.Client
	if c == nil {
		c = peerClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%w: county archive %s: %v", ErrUnavailable, p.URL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%w: county archive %s: %v", ErrUnavailable, p.URL, err)
	}
	if resp.StatusCode >= 300 {
		var pr struct {
			Type        string  `json:"type"`
			Detail      string  `json:"detail"`
			Field       string  `json:"field"`
			WitnessSize *uint64 `json:"witness_size"`
		}
		json.Unmarshal(data, &pr)
		return &PeerError{Status: resp.StatusCode, Type: strings.TrimPrefix(pr.Type, "urn:dangan:problem:"), Detail: pr.Detail, Field: pr.Field, WitnessSize: pr.WitnessSize}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("county archive %s %s: the answer does not parse: %w", method, path, err)
		}
	}
	return nil
}
